"""Liveblog: live social reporting of events.

Layers, imports pointing down only: web -> capture | archive -> streams -> storage -> models, settings, errors.
"""

__version__ = "0.1.0"

"""Social feeds: hashtag posts from X, Mastodon, Bluesky and RSS/Atom, collected into sessions.

One module per network, each with a `build(settings) -> list[Source]`; adding a source is one
module here, its settings block in settings.py, and one line in SOURCE_MODULES.
"""

from __future__ import annotations

from liveblog.capture.feeds.base import Source
from liveblog.settings import Settings

SOURCE_MODULES = ("x", "mastodon", "bluesky", "rss")


def build_sources(settings: Settings) -> list[Source]:
    import importlib

    sources: list[Source] = []
    for name in SOURCE_MODULES:
        module = importlib.import_module(f"liveblog.capture.feeds.{name}")
        sources.extend(module.build(settings))
    return sources

"""All SQL lives in this package. Everything above it deals in dataclasses from liveblog.models,
through the typed operations of interface.Unit (see interface.py)."""

from liveblog.storage.db import Database
from liveblog.storage.interface import Op, Store, Unit

Tx = Unit  # an op's unit of work, as code above storage sees it

__all__ = ["Database", "Op", "Store", "Tx", "Unit"]

"""All SQL lives in this package. Everything above it deals in dataclasses from liveblog.models,
through the typed operations of interface.Unit (see interface.py)."""

from liveblog.storage.access import LOGIN_DAYS, hash_token
from liveblog.storage.db import Database
from liveblog.storage.interface import Op, Store, Unit

Tx = Unit  # an op's unit of work, as code above storage sees it

__all__ = ["LOGIN_DAYS", "Database", "Op", "Store", "Tx", "Unit", "hash_token"]

"""All SQL lives in this package. Everything above it deals in dataclasses from liveblog.models."""

from liveblog.storage.db import Database, Tx

__all__ = ["Database", "Tx"]

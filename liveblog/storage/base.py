"""What every SQLite query mixin works on: a connection, and (in a write) the changes it made.

A unit of work is one object with every typed storage operation as a method (the mixins in
repo.py, access.py, votes.py, ...). Reads get one on a read-only connection inside a snapshot;
writes get one inside the writer's transaction, where `changes` collects the stream changes to
publish and `after_commit` the callbacks to run once the batch is on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from liveblog.models import Change


class UnitBase:
    __slots__ = ("conn", "changes", "after_commit")

    def __init__(self, conn: Any) -> None:
        # aiosqlite's API: an aiosqlite.Connection for reads, a SyncConnection in the writer thread.
        self.conn = conn
        self.changes: list[Change] = []
        self.after_commit: list[Callable[[], None]] = []

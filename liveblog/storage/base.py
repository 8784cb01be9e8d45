"""What every SQLite query mixin works on: a connection, and (in a write) the changes it made.

A unit of work is one object with every typed storage operation as a method (the mixins in
repo.py, access.py, votes.py, ...). Reads get one on a read-only connection inside a snapshot;
writes get one inside the writer's transaction, where `changes` collects the stream changes to
publish and `after_commit` the callbacks to run once the batch is on disk. Mixins written once
for both backends (OpsBase) use only `db`, the query layer's seam (sql.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from liveblog.models import Change
from liveblog.storage.sql import Sql


class OpsBase:
    """What a query mixin written once for both backends sees of its unit (SQLite's UnitBase,
    PostgreSQL's PgUnitBase): `db`, and in a write the changes to publish and the callbacks."""

    __slots__ = ()
    db: Sql
    changes: list[Change]
    after_commit: list[Callable[[], None]]

    if TYPE_CHECKING:  # the stream's operations, which each backend's unit has (repo.py)

        async def next_seq(self, session_id: str) -> int: ...

        async def store_change(
            self, session_id: str, seq: int, op: str, item_id: int | None, fields: dict[str, Any]
        ) -> Change: ...

        async def append_change(
            self, session_id: str, op: str, item_id: int | None, build: Callable[[int], dict[str, Any]]
        ) -> Change: ...


class UnitBase(OpsBase):
    __slots__ = ("conn", "db", "changes", "after_commit")

    def __init__(self, conn: Any, db: Sql) -> None:
        # aiosqlite's API: an aiosqlite.Connection for reads, a SyncConnection in the writer thread.
        self.conn = conn
        self.db = db
        self.changes: list[Change] = []
        self.after_commit: list[Callable[[], None]] = []

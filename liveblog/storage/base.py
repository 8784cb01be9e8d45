"""What every query mixin works on: the unit's `db` (the query layer's seam, sql.py) and, in a
write, the changes it made and the callbacks to run once the batch is on disk.

A unit of work is one object with every typed storage operation as a method: the mixins of each
domain (repo.py, access.py, votes.py, ...), each written once for both backends and combined in
unit.py. Reads get a unit inside a snapshot; writes get one inside the writer's transaction,
where `changes` collects the stream changes to publish and `after_commit` the callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from liveblog.models import Change
from liveblog.storage.sql import Sql


class OpsBase:
    """What a query mixin sees of its unit: `db`, and in a write the changes to publish and the
    callbacks."""

    def __init__(self, db: Sql) -> None:
        self.db = db
        self.changes: list[Change] = []
        self.after_commit: list[Callable[[], None]] = []

    if TYPE_CHECKING:  # the stream's operations, which every unit has (repo.py)

        async def next_seq(self, session_id: str) -> int: ...

        async def store_change(
            self, session_id: str, seq: int, op: str, item_id: int | None, fields: dict[str, Any]
        ) -> Change: ...

        async def append_change(
            self, session_id: str, op: str, item_id: int | None, build: Callable[[int], dict[str, Any]]
        ) -> Change: ...

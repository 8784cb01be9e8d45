"""What every PostgreSQL query mixin works on: an asyncpg connection inside a transaction (or a
read-only snapshot), and in a write the changes it made and its after-commit callbacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from liveblog.models import Change
from liveblog.storage.base import OpsBase
from liveblog.storage.postgres.driver import PgSql


class PgUnitBase(OpsBase):
    __slots__ = ("conn", "db", "changes", "after_commit", "acks", "batch_acks")

    def __init__(self, conn: Any, batch_acks: list[tuple[str, str, str]] | None = None) -> None:
        self.conn = conn  # an asyncpg.Connection (or pool proxy) with a transaction open
        self.db = PgSql(conn)
        self.changes: list[Change] = []
        self.after_commit: list[Callable[[], None]] = []
        # complete_client_op's responses (session_id, client_id, JSON), written by the store for
        # the whole batch in one statement before COMMIT (one round trip less per note). In a
        # read unit (no batch) they are written at once. `batch_acks`: the ops before this one.
        self.acks: list[tuple[str, str, str]] = []
        self.batch_acks = batch_acks

    async def write_acks(self, acks: list[tuple[str, str, str]]) -> None:
        await write_acks(self.conn, acks)


async def write_acks(conn: Any, acks: list[tuple[str, str, str]]) -> None:
    """Store client ops' responses (session_id, client_id, JSON), all in one statement."""
    if acks:
        await conn.execute(
            "UPDATE client_ops AS c SET response = v.response"
            " FROM unnest($1::text[], $2::text[], $3::text[]) AS v(session_id, client_id, response)"
            " WHERE c.session_id = v.session_id AND c.client_id = v.client_id",
            [a[0] for a in acks],
            [a[1] for a in acks],
            [a[2] for a in acks],
        )

"""The PostgreSQL unit of work: every typed storage operation (interface.Unit) on one asyncpg
connection. One mixin per domain, like storage/unit.py on SQLite."""

from __future__ import annotations

from liveblog.storage.postgres.access import PgAccessOps
from liveblog.storage.postgres.votes import PgVoteOps


class PgUnit(PgVoteOps, PgAccessOps):
    """One read snapshot or one write op's share of a group-commit transaction."""

"""The archive on PostgreSQL: storage/archive.py's portable SQL runs unchanged (portable.py);
the two statements that use SQLite functions have their own SQL here. Full-text search over
PostgreSQL's own tsvector index is not built yet: `search` says so (503), never a driver error."""

from __future__ import annotations

from typing import Any

from liveblog.errors import Unavailable
from liveblog.storage.archive import ArchiveOps
from liveblog.storage.postgres.base import PgUnitBase
from liveblog.storage.postgres.portable import portable

_PortableArchive: Any = portable(ArchiveOps, own=PgUnitBase)


class PgArchiveOps(_PortableArchive):
    async def activity(self, event_id: str) -> list[tuple[str, int]]:
        """Items typed per quarter hour over the event ('YYYY-MM-DDTHH:MM' in UTC, count)."""
        rows = await self.conn.fetch(
            "SELECT substr(i.typed_at, 1, 14) || lpad((substr(i.typed_at, 15, 2)::integer / 15 * 15)::text, 2, '0')"
            " AS slot, count(*) FROM items i JOIN sessions s ON s.id = i.session_id"
            " WHERE s.event_id = $1 AND i.deleted = 0 GROUP BY slot ORDER BY slot",
            event_id,
        )
        return [(r[0], int(r[1])) for r in rows]

    async def poll_turnout(self, event_id: str) -> list[tuple[int, str, str, int]]:
        """(poll id, session id, question, voters) for every poll that opened, in time order."""
        rows = await self.conn.fetch(
            "SELECT i.id, i.session_id, i.body, coalesce((i.data::jsonb ->> 'voters')::integer, 0)"
            " FROM items i JOIN sessions s ON s.id = i.session_id"
            " WHERE s.event_id = $1 AND i.kind = 'poll' AND i.deleted = 0"
            " AND i.data::jsonb ->> 'state' <> 'draft' ORDER BY i.sort_at, i.id",
            event_id,
        )
        return [(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    async def search(self, query: Any) -> Any:
        raise Unavailable("search is not available on PostgreSQL yet (docs/archive.md)")

"""SQL for the archive: knowledge-page records and summaries, tags, edit history, the event
archive's counts and charts, and full-text search (SQLite FTS5, kept by triggers: schema.py)."""

from __future__ import annotations

from typing import Any

from liveblog.models import (
    ArchiveRecord,
    ItemVersion,
    SearchHit,
    SearchQuery,
    SearchResult,
    Session,
    utcnow,
)
from liveblog.storage.repo import StreamOps, _session

# Results counted at most for "N results": counting every match of a common word in millions of
# rows costs more than the page itself; past this the page says "more than".
SEARCH_COUNT_CAP = 1000

# Column weights for bm25: a word in a session's title counts most, then its tags, then text.
_BM25 = "bm25(search_index, 4.0, 1.0, 3.0)"


def fts_query(terms: tuple[str, ...]) -> str:
    """Each term quoted as an FTS5 string (so no word is read as an operator), all required."""
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in terms)


def _record(row: Any) -> ArchiveRecord:
    return ArchiveRecord(
        session_id=row["session_id"],
        summary=row["summary"],
        summary_html=row["summary_html"],
        summary_by=row["summary_by"],
        archived_at=row["archived_at"],
        updated_at=row["updated_at"],
        tags_synced_at=row["tags_synced_at"],
    )


class ArchiveOps(StreamOps):
    # -- records and summaries -------------------------------------------------------------------

    async def get_archive(self, session_id: str) -> ArchiveRecord | None:
        async with self.conn.execute("SELECT * FROM archives WHERE session_id = ?", (session_id,)) as cur:
            row = await cur.fetchone()
        return _record(row) if row else None

    async def insert_archive(self, session_id: str, summary: str, summary_html: str, *, archived_at: str | None = None
    ) -> bool:
        """Mark a session archived, with its first summary; False when it already was (one statement)."""
        now = utcnow()
        async with self.conn.execute(
            "INSERT INTO archives (session_id, summary, summary_html, summary_by, archived_at, updated_at, tags_synced_at)"
            " VALUES (?, ?, ?, '', ?, ?, '') ON CONFLICT (session_id) DO NOTHING RETURNING 1",
            (session_id, summary, summary_html, archived_at or now, now),
        ) as cur:
            return await cur.fetchone() is not None

    async def set_summary(self, session_id: str, summary: str, summary_html: str, by: str) -> None:
        await self.conn.execute(
            "UPDATE archives SET summary = ?, summary_html = ?, summary_by = ?, updated_at = ? WHERE session_id = ?",
            (summary, summary_html, by, utcnow(), session_id),
        )

    async def unarchived_ended_sessions(self) -> list[str]:
        async with self.conn.execute(
            "SELECT s.id FROM sessions s LEFT JOIN archives a ON a.session_id = s.id"
            " WHERE s.state = 'ended' AND a.session_id IS NULL ORDER BY s.ended_at"
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def overdue_sessions(self, local_now: str) -> list[str]:
        """Sessions not ended whose scheduled end (venue wall-clock, YYYY-MM-DDTHH:MM) is before local_now."""
        async with self.conn.execute(
            "SELECT id FROM sessions WHERE state <> 'ended' AND kind = 'session' AND ends_at < ? ORDER BY ends_at", (local_now,)
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def stale_tag_sessions(self) -> list[str]:
        """Archived sessions edited since their tags were last derived from their hashtags."""
        async with self.conn.execute(
            "SELECT a.session_id FROM archives a JOIN sessions s ON s.id = a.session_id"
            " WHERE s.updated_at > a.tags_synced_at"
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    # -- tags ------------------------------------------------------------------------------------

    async def set_session_tags(self, session_id: str, source: str, tags: list[str]) -> None:
        """Make the session's tags from `source` exactly `tags` (already normalised)."""
        current = {t for (t,) in await self.conn.execute_fetchall(
            "SELECT tag FROM session_tags WHERE session_id = ? AND source = ?", (session_id, source)
        )}
        for tag in current - set(tags):
            await self.conn.execute(
                "DELETE FROM session_tags WHERE session_id = ? AND tag = ? AND source = ?", (session_id, tag, source)
            )
        for tag in [t for t in dict.fromkeys(tags) if t not in current]:
            await self.conn.execute(
                "INSERT INTO session_tags (session_id, tag, source) VALUES (?, ?, ?)", (session_id, tag, source)
            )
        now = utcnow()
        if source == "hashtag":
            await self.conn.execute(
                "UPDATE archives SET tags_synced_at = ?, updated_at = ? WHERE session_id = ?", (now, now, session_id)
            )
        else:
            await self.conn.execute("UPDATE archives SET updated_at = ? WHERE session_id = ?", (now, session_id))

    async def session_tags(self, session_id: str) -> list[tuple[str, str]]:
        """(tag, source) pairs, sorted by tag."""
        rows = await self.conn.execute_fetchall(
            "SELECT tag, source FROM session_tags WHERE session_id = ? ORDER BY tag, source", (session_id,)
        )
        return [(r[0], r[1]) for r in rows]

    async def sessions_with_tag(self, tag: str) -> list[Session]:
        """Archived sessions with the tag, across events, newest first."""
        async with self.conn.execute(
            "SELECT s.* FROM sessions s JOIN archives a ON a.session_id = s.id"
            " WHERE s.id IN (SELECT session_id FROM session_tags WHERE tag = ?) ORDER BY s.starts_at DESC",
            (tag,),
        ) as cur:
            return [_session(r) for r in await cur.fetchall()]

    async def related_sessions(self, session_id: str, limit: int) -> list[tuple[Session, int]]:
        """Other archived sessions sharing tags with this one, most shared tags first."""
        async with self.conn.execute(
            "SELECT s.*, r.shared FROM (SELECT o.session_id AS id, count(DISTINCT o.tag) AS shared"
            "  FROM session_tags t JOIN session_tags o ON o.tag = t.tag AND o.session_id <> t.session_id"
            "  WHERE t.session_id = ? GROUP BY o.session_id) r"
            " JOIN sessions s ON s.id = r.id JOIN archives a ON a.session_id = s.id"
            " ORDER BY r.shared DESC, s.starts_at DESC LIMIT ?",
            (session_id, limit),
        ) as cur:
            return [(_session(r), int(r["shared"])) for r in await cur.fetchall()]

    async def top_tags(self, event_id: str | None, limit: int) -> list[tuple[str, int]]:
        """(tag, sessions with it) over archived sessions, of one event or of all."""
        sql = (
            "SELECT t.tag, count(DISTINCT t.session_id) AS n FROM session_tags t"
            " JOIN archives a ON a.session_id = t.session_id JOIN sessions s ON s.id = t.session_id"
        )
        args: list[Any] = []
        if event_id is not None:
            sql += " WHERE s.event_id = ?"
            args.append(event_id)
        sql += " GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT ?"
        rows = await self.conn.execute_fetchall(sql, (*args, limit))
        return [(r[0], int(r[1])) for r in rows]

    async def upvote_counts(self, session_id: str) -> dict[int, int]:
        """Upvotes per question of a session, counted from the votes themselves (exact, unlike the
        coalesced count a live question carries)."""
        rows = await self.conn.execute_fetchall(
            "SELECT u.question_id, count(*) FROM upvotes u JOIN items i ON i.id = u.question_id"
            " WHERE i.session_id = ? GROUP BY u.question_id",
            (session_id,),
        )
        return {int(r[0]): int(r[1]) for r in rows}

    # -- edits after the event -------------------------------------------------------------------

    async def item_history(self, session_id: str) -> dict[int, list[ItemVersion]]:
        """Earlier versions of the session's edited items, oldest first, by item id."""
        rows = await self.conn.execute_fetchall(
            "SELECT h.* FROM item_history h JOIN items i ON i.id = h.item_id WHERE i.session_id = ?"
            " ORDER BY h.item_id, h.version",
            (session_id,),
        )
        out: dict[int, list[ItemVersion]] = {}
        for r in rows:
            out.setdefault(r["item_id"], []).append(
                ItemVersion(r["item_id"], r["version"], r["body"], r["html"], r["written_at"], r["replaced_at"])
            )
        return out

    # -- the event archive -----------------------------------------------------------------------

    async def session_counts(self, event_id: str) -> dict[str, dict[str, int]]:
        """Per session of the event: items per kind (not deleted), poll votes and question upvotes."""
        out: dict[str, dict[str, int]] = {}
        rows = await self.conn.execute_fetchall(
            "SELECT i.session_id, i.kind, count(*) FROM items i JOIN sessions s ON s.id = i.session_id"
            " WHERE s.event_id = ? AND i.deleted = 0 GROUP BY i.session_id, i.kind",
            (event_id,),
        )
        for sid, kind, n in rows:
            out.setdefault(sid, {})[kind] = int(n)
        for table, key, column in (("votes", "votes", "poll_id"), ("upvotes", "upvotes", "question_id")):
            rows = await self.conn.execute_fetchall(
                f"SELECT i.session_id, count(*) FROM {table} v JOIN items i ON i.id = v.{column}"
                " JOIN sessions s ON s.id = i.session_id WHERE s.event_id = ? GROUP BY i.session_id",
                (event_id,),
            )
            for sid, n in rows:
                out.setdefault(sid, {})[key] = int(n)
        return out

    async def activity(self, event_id: str) -> list[tuple[str, int]]:
        """Items typed per quarter hour over the event ('YYYY-MM-DDTHH:MM' in UTC, count)."""
        rows = await self.conn.execute_fetchall(
            "SELECT substr(i.typed_at, 1, 14) || printf('%02d', CAST(substr(i.typed_at, 15, 2) AS INTEGER) / 15 * 15)"
            " AS slot, count(*) FROM items i JOIN sessions s ON s.id = i.session_id"
            " WHERE s.event_id = ? AND i.deleted = 0 GROUP BY slot ORDER BY slot",
            (event_id,),
        )
        return [(r[0], int(r[1])) for r in rows]

    async def poll_turnout(self, event_id: str) -> list[tuple[int, str, str, int]]:
        """(poll id, session id, question, voters) for every poll that opened, in time order."""
        rows = await self.conn.execute_fetchall(
            "SELECT i.id, i.session_id, i.body, coalesce(json_extract(i.data, '$.voters'), 0)"
            " FROM items i JOIN sessions s ON s.id = i.session_id"
            " WHERE s.event_id = ? AND i.kind = 'poll' AND i.deleted = 0"
            " AND json_extract(i.data, '$.state') <> 'draft' ORDER BY i.sort_at, i.id",
            (event_id,),
        )
        return [(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    # -- search ----------------------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchResult:
        """Ranked full-text matches with highlighted snippets, filtered, one page at a time."""
        if not query.terms:
            return SearchResult((), 0, False)
        where = ["search_index MATCH ?"]
        args: list[Any] = [fts_query(query.terms)]
        if query.event_id:
            where.append("f.event_id = ?")
            args.append(query.event_id)
        if query.kinds:
            where.append(f"f.kind IN ({', '.join('?' for _ in query.kinds)})")
            args.extend(query.kinds)
        if query.date_from:
            where.append("f.at >= ?")
            args.append(query.date_from)
        if query.date_to:
            where.append("f.at < ?")
            args.append(query.date_to + "~")  # after every time of that day
        if query.tag:
            where.append("f.session_id IN (SELECT session_id FROM session_tags WHERE tag = ?)")
            args.append(query.tag)
        cond = " AND ".join(where)
        # Two steps: rank the matches by rowid alone (cheap columns), then build snippets and
        # join titles for the one page of rows. Asking for snippets in the ranked query computes
        # one for every match before sorting: three times slower for a common word.
        ranked = await self.conn.execute_fetchall(
            f"SELECT f.rowid FROM search_index f WHERE {cond} ORDER BY {_BM25} LIMIT ? OFFSET ?",
            (*args, query.limit + 1, query.offset),
        )
        page_ids = [r[0] for r in ranked[: query.limit]]
        hits_by_rowid: dict[int, SearchHit] = {}
        if page_ids:
            marks = ", ".join("?" for _ in page_ids)
            for r in await self.conn.execute_fetchall(
                "SELECT f.rowid, f.kind, f.ref, f.session_id, f.event_id, f.at,"
                " snippet(search_index, -1, char(2), char(3), '…', 16), f.title, s.title, e.title, s.kind"
                " FROM search_index f JOIN sessions s ON s.id = f.session_id JOIN events e ON e.id = f.event_id"
                f" WHERE search_index MATCH ? AND f.rowid IN ({marks})",
                (args[0], *page_ids),
            ):
                hits_by_rowid[r[0]] = SearchHit(
                    kind=r[1], ref=str(r[2]), session_id=r[3], event_id=r[4], at=r[5], snippet=r[6], title=r[7],
                    session_title=r[8], event_title=r[9], in_event_feed=r[10] == "event_feed",
                )
        hits = tuple(hits_by_rowid[i] for i in page_ids if i in hits_by_rowid)
        rows = ranked
        if query.offset == 0 and len(rows) <= query.limit:
            total = len(rows)  # all of them are on this page: no need to count again
        else:
            count_rows = await self.conn.execute_fetchall(
                f"SELECT count(*) FROM (SELECT 1 FROM search_index f WHERE {cond} LIMIT {SEARCH_COUNT_CAP + 1})", args
            )
            total = int(count_rows[0][0])
        return SearchResult(hits, total, len(rows) > query.limit)

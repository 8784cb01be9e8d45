"""SQL for the archive: knowledge-page records and summaries, tags, edit history, the event
archive's counts and charts, and full-text search (SQLite FTS5, kept by triggers: schema.py).
Written once for both backends, against the query layer (sql.py), but for search: PostgreSQL
has its own (postgres/archive.py)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from liveblog.models import (
    ArchiveRecord,
    ItemVersion,
    SearchDocument,
    SearchHit,
    SearchQuery,
    SearchResult,
    Session,
    utcnow,
)
from liveblog.storage.base import OpsBase
from liveblog.storage.repo import session_of
from liveblog.storage.searchtext import facet, match_expression, query_words, rank_bm25, snippet, stems
from liveblog.storage.sql import Query

# Rows counted at most per word for BM25's word weights: past this a word is common, and how
# common matters little (counting every match of a common word in millions costs more than the page).
SEARCH_COUNT_CAP = 1000

# A tag filter of at most this many sessions, and a date filter of at most this many days, are
# words in the index (facets) ORed together; wider ones read each matching row (most pass).
FACET_SESSIONS = 64
FACET_DAYS = 62


def _days(date_from: str | None, date_to: str | None) -> list[str] | None:
    """Every day from date_from to date_to (YYYY-MM-DD, both given, inclusive) when they are few."""
    if not date_from or not date_to:
        return None
    try:
        first, last = date.fromisoformat(date_from), date.fromisoformat(date_to)
    except ValueError:
        return None
    if (last - first).days >= FACET_DAYS:
        return None
    return [(first + timedelta(days=n)).isoformat() for n in range(max(0, (last - first).days + 1))]


_ACTIVITY = Query(
    lambda d: (
        f"SELECT {d.quarter_hour('i.typed_at')} AS slot, count(*) FROM items i JOIN sessions s"
        " ON s.id = i.session_id WHERE s.event_id = ? AND i.deleted = 0 GROUP BY slot ORDER BY slot"
    )
)
_POLL_TURNOUT = Query(
    lambda d: (
        f"SELECT i.id, i.session_id, i.body, coalesce({d.json_int('i.data', 'voters')}, 0)"
        " FROM items i JOIN sessions s ON s.id = i.session_id"
        " WHERE s.event_id = ? AND i.kind = 'poll' AND i.deleted = 0"
        f" AND {d.json_text('i.data', 'state')} <> 'draft' ORDER BY i.sort_at, i.id"
    )
)


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


class ArchiveOps(OpsBase):
    # -- records and summaries -------------------------------------------------------------------

    async def get_archive(self, session_id: str) -> ArchiveRecord | None:
        row = await self.db.fetch_one("SELECT * FROM archives WHERE session_id = ?", (session_id,))
        return _record(row) if row else None

    async def insert_archive(
        self, session_id: str, summary: str, summary_html: str, *, archived_at: str | None = None
    ) -> bool:
        """Mark a session archived, with its first summary; False when it already was (one statement)."""
        now = utcnow()
        row = await self.db.fetch_one(
            "INSERT INTO archives (session_id, summary, summary_html, summary_by, archived_at, updated_at, tags_synced_at)"
            " VALUES (?, ?, ?, '', ?, ?, '') ON CONFLICT (session_id) DO NOTHING RETURNING 1",
            (session_id, summary, summary_html, archived_at or now, now),
        )
        return row is not None

    async def set_summary(self, session_id: str, summary: str, summary_html: str, by: str) -> None:
        await self.db.execute(
            "UPDATE archives SET summary = ?, summary_html = ?, summary_by = ?, updated_at = ? WHERE session_id = ?",
            (summary, summary_html, by, utcnow(), session_id),
        )

    async def unarchived_ended_sessions(self) -> list[str]:
        rows = await self.db.fetch_all(
            "SELECT s.id FROM sessions s LEFT JOIN archives a ON a.session_id = s.id"
            " WHERE s.state = 'ended' AND a.session_id IS NULL ORDER BY s.ended_at"
        )
        return [r[0] for r in rows]

    async def overdue_sessions(self, local_now: str) -> list[str]:
        """Sessions not ended whose scheduled end (venue wall-clock, YYYY-MM-DDTHH:MM) is before
        local_now; cancelled ones never took place, so they are not ended (docs/programme.md)."""
        rows = await self.db.fetch_all(
            "SELECT id FROM sessions WHERE state <> 'ended' AND kind = 'session' AND cancelled = 0 AND ends_at < ?"
            " ORDER BY ends_at",
            (local_now,),
        )
        return [r[0] for r in rows]

    async def stale_tag_sessions(self) -> list[str]:
        """Archived sessions edited since their tags were last derived from their hashtags."""
        rows = await self.db.fetch_all(
            "SELECT a.session_id FROM archives a JOIN sessions s ON s.id = a.session_id"
            " WHERE s.updated_at > a.tags_synced_at"
        )
        return [r[0] for r in rows]

    # -- tags ------------------------------------------------------------------------------------

    async def set_session_tags(self, session_id: str, source: str, tags: list[str]) -> None:
        """Make the session's tags from `source` exactly `tags` (already normalised)."""
        current = {
            t
            for (t,) in await self.db.fetch_all(
                "SELECT tag FROM session_tags WHERE session_id = ? AND source = ?", (session_id, source)
            )
        }
        for tag in current - set(tags):
            await self.db.execute(
                "DELETE FROM session_tags WHERE session_id = ? AND tag = ? AND source = ?",
                (session_id, tag, source),
            )
        for tag in [t for t in dict.fromkeys(tags) if t not in current]:
            await self.db.execute(
                "INSERT INTO session_tags (session_id, tag, source) VALUES (?, ?, ?)",
                (session_id, tag, source),
            )
        now = utcnow()
        if source == "hashtag":
            await self.db.execute(
                "UPDATE archives SET tags_synced_at = ?, updated_at = ? WHERE session_id = ?",
                (now, now, session_id),
            )
        else:
            await self.db.execute(
                "UPDATE archives SET updated_at = ? WHERE session_id = ?", (now, session_id)
            )

    async def session_tags(self, session_id: str) -> list[tuple[str, str]]:
        """(tag, source) pairs, sorted by tag."""
        rows = await self.db.fetch_all(
            "SELECT tag, source FROM session_tags WHERE session_id = ? ORDER BY tag, source", (session_id,)
        )
        return [(r[0], r[1]) for r in rows]

    async def sessions_with_tag(self, tag: str) -> list[Session]:
        """Archived sessions with the tag, across events, newest first."""
        rows = await self.db.fetch_all(
            "SELECT s.* FROM sessions s JOIN archives a ON a.session_id = s.id"
            " WHERE s.id IN (SELECT session_id FROM session_tags WHERE tag = ?) ORDER BY s.starts_at DESC",
            (tag,),
        )
        return [session_of(r) for r in rows]

    async def related_sessions(self, session_id: str, limit: int) -> list[tuple[Session, int]]:
        """Other archived sessions sharing tags with this one, most shared tags first."""
        rows = await self.db.fetch_all(
            "SELECT s.*, r.shared FROM (SELECT o.session_id AS id, count(DISTINCT o.tag) AS shared"
            "  FROM session_tags t JOIN session_tags o ON o.tag = t.tag AND o.session_id <> t.session_id"
            "  WHERE t.session_id = ? GROUP BY o.session_id) r"
            " JOIN sessions s ON s.id = r.id JOIN archives a ON a.session_id = s.id"
            " ORDER BY r.shared DESC, s.starts_at DESC LIMIT ?",
            (session_id, limit),
        )
        return [(session_of(r), int(r["shared"])) for r in rows]

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
        rows = await self.db.fetch_all(sql, (*args, limit))
        return [(r[0], int(r[1])) for r in rows]

    async def upvote_counts(self, session_id: str) -> dict[int, int]:
        """Upvotes per question of a session, counted from the votes themselves (exact, unlike the
        coalesced count a live question carries)."""
        rows = await self.db.fetch_all(
            "SELECT u.question_id, count(*) FROM upvotes u JOIN items i ON i.id = u.question_id"
            " WHERE i.session_id = ? GROUP BY u.question_id",
            (session_id,),
        )
        return {int(r[0]): int(r[1]) for r in rows}

    # -- edits after the event -------------------------------------------------------------------

    async def item_history(self, session_id: str) -> dict[int, list[ItemVersion]]:
        """Earlier versions of the session's edited items, oldest first, by item id."""
        rows = await self.db.fetch_all(
            "SELECT h.* FROM item_history h JOIN items i ON i.id = h.item_id WHERE i.session_id = ?"
            " ORDER BY h.item_id, h.version",
            (session_id,),
        )
        out: dict[int, list[ItemVersion]] = {}
        for r in rows:
            out.setdefault(r["item_id"], []).append(
                ItemVersion(
                    r["item_id"], r["version"], r["body"], r["html"], r["written_at"], r["replaced_at"]
                )
            )
        return out

    # -- the event archive -----------------------------------------------------------------------

    async def session_counts(self, event_id: str) -> dict[str, dict[str, int]]:
        """Per session of the event: items per kind (not deleted), poll votes and question upvotes."""
        out: dict[str, dict[str, int]] = {}
        rows = await self.db.fetch_all(
            "SELECT i.session_id, i.kind, count(*) FROM items i JOIN sessions s ON s.id = i.session_id"
            " WHERE s.event_id = ? AND i.deleted = 0 GROUP BY i.session_id, i.kind",
            (event_id,),
        )
        for sid, kind, n in rows:
            out.setdefault(sid, {})[kind] = int(n)
        for table, key, column in (("votes", "votes", "poll_id"), ("upvotes", "upvotes", "question_id")):
            rows = await self.db.fetch_all(
                f"SELECT i.session_id, count(*) FROM {table} v JOIN items i ON i.id = v.{column}"
                " JOIN sessions s ON s.id = i.session_id WHERE s.event_id = ? GROUP BY i.session_id",
                (event_id,),
            )
            for sid, n in rows:
                out.setdefault(sid, {})[key] = int(n)
        return out

    async def activity(self, event_id: str) -> list[tuple[str, int]]:
        """Items typed per quarter hour over the event ('YYYY-MM-DDTHH:MM' in UTC, count)."""
        return [(r[0], int(r[1])) for r in await self.db.fetch_all(_ACTIVITY, (event_id,))]

    async def poll_turnout(self, event_id: str) -> list[tuple[int, str, str, int]]:
        """(poll id, session id, question, voters) for every poll that opened, in time order."""
        rows = await self.db.fetch_all(_POLL_TURNOUT, (event_id,))
        return [(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    # -- search ----------------------------------------------------------------------------------

    async def _search_languages(self, event_id: str | None) -> list[str]:
        """The languages a search must stem its words in: the event's, or every event's."""
        if event_id:
            rows = await self.db.fetch_all("SELECT language FROM events WHERE id = ?", (event_id,))
        else:
            rows = await self.db.fetch_all("SELECT DISTINCT language FROM events")
        return sorted(r[0] for r in rows)

    async def search(self, query: SearchQuery) -> SearchResult:
        """Ranked full-text matches with highlighted snippets, filtered, one page at a time.

        The matches are read newest first (rowid order, which FTS5 follows without sorting) up to
        the query's window; past it only those are ranked, and the result says so (`limited`).
        They are ranked here by BM25 over the stems the index stores: FTS5's own bm25() first
        counts every row holding each word, which for a common word in millions is most of the
        cost that the window saves."""
        if not query.terms:
            return SearchResult((), 0, False)
        languages = await self._search_languages(query.event_id)
        facets: list[list[str]] = []
        where = ["search_terms MATCH ?"]
        args: list[Any] = []
        if query.event_id:
            facets.append([facet("ev", query.event_id)])
        if query.kinds:
            facets.append([facet("k", k) for k in query.kinds])
        if query.tag:
            sessions = [
                r[0]
                for r in await self.db.fetch_all(
                    "SELECT DISTINCT session_id FROM session_tags WHERE tag = ? LIMIT ?",
                    (query.tag, FACET_SESSIONS + 1),
                )
            ]
            if not sessions:
                return SearchResult((), 0, False)
            if len(sessions) <= FACET_SESSIONS:  # a few sessions: words in the index
                facets.append([facet("s", sid) for sid in sessions])
            else:  # a common tag: most matches pass, so reading each row's session costs little
                where.append("d.session_id IN (SELECT session_id FROM session_tags WHERE tag = ?)")
                args.append(query.tag)
        days = _days(query.date_from, query.date_to)
        if days == []:
            return SearchResult((), 0, False)  # the last day is before the first
        if days is not None:
            facets.append([f"d_{day.replace('-', '')}" for day in days])
        else:
            if query.date_from:
                where.append("d.at >= ?")
                args.append(query.date_from)
            if query.date_to:
                where.append("d.at < ?")
                args.append(query.date_to + "~")  # after every time of that day
        match = match_expression(query.terms, languages, facets, query.phrases)
        if not match:
            return SearchResult((), 0, False)
        args.insert(0, match)
        # Filters that are not words in the index read the row.
        join = " JOIN search_index d ON d.id = t.rowid" if len(where) > 1 else ""
        rows = await self.db.fetch_all(
            f"SELECT t.rowid, t.title, t.body, t.tags FROM search_terms t{join} WHERE {' AND '.join(where)}"
            " ORDER BY t.rowid DESC LIMIT ?",
            (*args, query.window + 1),
        )
        limited = len(rows) > query.window
        rows = rows[: query.window]
        wanted = {w for lang in languages for w in query_words(lang, query.terms)}
        ranked = rank_bm25(rows, wanted, await self._doc_counts(wanted))
        page_ids = ranked[query.offset : query.offset + query.limit]
        hits = await self._hits(page_ids, query.terms)
        return SearchResult(hits, len(ranked), query.offset + query.limit < len(ranked), limited)

    async def search_documents(self, event_id: str) -> list[SearchDocument]:
        """Every row the search index holds for an event, oldest first, with its words stemmed
        as the index stems them in the event's language. The static site's offline index is made
        from them, so it finds what the server's search finds."""
        rows = await self.db.fetch_all(
            "SELECT d.kind, d.ref, d.session_id, d.title, d.body, d.tags, e.language FROM search_index d"
            " JOIN events e ON e.id = d.event_id WHERE d.event_id = ? ORDER BY d.at, d.ref",
            (event_id,),
        )
        return [
            SearchDocument(
                kind=r[0],
                ref=str(r[1]),
                session_id=r[2],
                title=r[3],
                body=r[4],
                tags=r[5],
                words=(" ".join(stems(r[6], r[3])), " ".join(stems(r[6], r[4])), " ".join(stems(r[6], r[5]))),
            )
            for r in rows
        ]

    async def _doc_counts(self, words: set[str]) -> tuple[int, dict[str, int]]:
        """(rows in the index, about; rows holding each word, counted up to SEARCH_COUNT_CAP),
        for BM25's word weights: a rare word counts more than a common one. One statement."""
        order = sorted(words)
        counts = "".join(
            ", (SELECT count(*) FROM (SELECT 1 FROM search_terms WHERE search_terms MATCH ? LIMIT ?))"
            for _ in order
        )
        # Items are most rows and their rowids are id * 8: the largest rowid / 8 is near the count
        # (a count(*) would read the whole table).
        rows = await self.db.fetch_all(
            f"SELECT (SELECT max(id) FROM search_index){counts}",
            [v for w in order for v in (f'"{w}"', SEARCH_COUNT_CAP)],
        )
        row = rows[0]
        return max(1, int(row[0] or 0) // 8), {w: int(row[i + 1]) for i, w in enumerate(order)}

    async def _hits(self, page_ids: list[int], terms: tuple[str, ...]) -> tuple[SearchHit, ...]:
        """The page's rows in the given order, with snippets cut in each event's language."""
        if not page_ids:
            return ()
        marks = ", ".join("?" for _ in page_ids)
        by_id: dict[int, SearchHit] = {}
        for r in await self.db.fetch_all(
            "SELECT d.id, d.kind, d.ref, d.session_id, d.event_id, d.at, d.title, d.body, d.tags, e.language,"
            " s.title, e.title, s.kind FROM search_index d JOIN sessions s ON s.id = d.session_id"
            f" JOIN events e ON e.id = d.event_id WHERE d.id IN ({marks})",
            page_ids,
        ):
            by_id[r[0]] = SearchHit(
                kind=r[1],
                ref=str(r[2]),
                session_id=r[3],
                event_id=r[4],
                at=r[5],
                snippet=snippet((r[7], r[8], r[6]), r[9], terms),
                title=r[6],
                session_title=r[10],
                event_title=r[11],
                in_event_feed=r[12] == "event_feed",
            )
        return tuple(by_id[i] for i in page_ids if i in by_id)

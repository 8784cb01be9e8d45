"""The archive on PostgreSQL: storage/archive.py, written once against the query layer, runs as
it is; search has its own SQL here, over PostgreSQL's own full-text index (`search_index`,
kept by triggers: postgres/schema.py step 5).
It finds what SQLite's FTS5 finds (every word required, stemmed in the event's language,
diacritics folded);
ranking (ts_rank, not bm25) and snippets (ts_headline) may differ."""

from __future__ import annotations

from typing import Any

from liveblog.models import MARK_END, MARK_START, SEARCH_LANGUAGES, SearchHit, SearchQuery, SearchResult
from liveblog.storage.archive import ArchiveOps

# The text search configuration of each event language (postgres/schema.py steps 5 and 7).
_CONFIGS = {lang: f"liveblog_search_{lang}" for lang in SEARCH_LANGUAGES if lang != "en"}


def config_of(language: str) -> str:
    """The text search configuration for an event's language (English for anything unknown)."""
    return _CONFIGS.get(language, "liveblog_search")


# ts_rank weights for D, C, B, A: body (C) 0.25, tags (B) 0.75, title (A) 1, as bm25's 1, 3, 4.
_WEIGHTS = "{0.1, 0.25, 0.75, 1.0}"
# What a snippet is cut from: the text and tags (a session's title shows apart), else the title.
_SNIPPET_TEXT = (
    "coalesce(nullif(concat_ws(' ', nullif(btrim(f.body), ''), nullif(btrim(f.tags), '')), ''), f.title)"
)
# One fragment of about SQLite's snippet length (16 tokens), marked as SQLite's snippet marks.
_HEADLINE = (
    f'StartSel="{MARK_START}", StopSel="{MARK_END}", MaxWords=16, MinWords=8, ShortWord=2, MaxFragments=1'
)


class PgArchiveOps(ArchiveOps):
    conn: Any  # the unit's asyncpg connection (postgres/unit.py)

    async def search(self, query: SearchQuery) -> SearchResult:
        """Ranked full-text matches with highlighted snippets, filtered, one page at a time."""
        if not query.terms:
            return SearchResult((), 0, False)
        configs = sorted({config_of(lang) for lang in await self._search_languages(query.event_id)})
        if not configs:
            return SearchResult((), 0, False)
        # plainto_tsquery reads its text as words only (no operators) and requires every one, and
        # phraseto_tsquery each quoted phrase's words side by side, in order; each row is matched
        # in its own event's configuration (one GIN lookup per language).
        phrases = [" ".join(p) for p in query.phrases if len(p) > 1]
        args: list[Any] = [" ".join(query.terms), *phrases]

        def tsquery(c: str) -> str:
            return " && ".join(
                [
                    f"plainto_tsquery('{c}', $1)",
                    *(f"phraseto_tsquery('{c}', ${n})" for n in range(2, len(phrases) + 2)),
                ]
            )

        match = " OR ".join(
            f"(f.config = '{c}'::regconfig AND f.document @@ ({tsquery(c)}))" for c in configs
        )
        where = [f"({match})"]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if query.event_id:
            where.append(f"f.event_id = {arg(query.event_id)}")
        if query.kinds:
            where.append(f"f.kind = ANY({arg(list(query.kinds))}::text[])")
        # Timestamps are ISO 8601 text: compared byte by byte, whatever the database's collation.
        if query.date_from:
            where.append(f'f.at COLLATE "C" >= {arg(query.date_from)}')
        if query.date_to:
            where.append(f'f.at COLLATE "C" < {arg(query.date_to + "~")}')  # after every time of that day
        if query.tag:
            where.append(
                f"f.session_id IN (SELECT session_id FROM session_tags WHERE tag = {arg(query.tag)})"
            )
        cond = " AND ".join(where)
        n = len(args)
        # As on SQLite: the newest matches up to the query's window (newest by time here), ranked
        # among themselves, so a common word does not rank millions of rows; `doc` breaks ties so
        # that pages never overlap or skip a match. Then snippets for the one page.
        rows = await self.conn.fetch(
            f"SELECT m.doc, ts_rank('{_WEIGHTS}', m.document, plainto_tsquery(m.config, $1)) AS rank"
            f" FROM (SELECT f.doc, f.document, f.config FROM search_index f WHERE {cond}"
            f' ORDER BY f.at COLLATE "C" DESC, f.doc DESC LIMIT ${n + 1}) m',
            *args,
            query.window + 1,
        )
        limited = len(rows) > query.window
        ranked = [r[0] for r in sorted(rows[: query.window], key=lambda r: (-r[1], r[0]))]
        page_ids = ranked[query.offset : query.offset + query.limit]
        hits_by_doc: dict[str, SearchHit] = {}
        if page_ids:
            for r in await self.conn.fetch(
                "SELECT f.doc, f.kind, f.ref, f.session_id, f.event_id, f.at,"
                f" ts_headline(f.config, {_SNIPPET_TEXT},"
                " plainto_tsquery(f.config, $1), $3), f.title, s.title, e.title, s.kind"
                " FROM search_index f JOIN sessions s ON s.id = f.session_id JOIN events e ON e.id = f.event_id"
                " WHERE f.doc = ANY($2::text[])",
                args[0],
                page_ids,
                _HEADLINE,
            ):
                hits_by_doc[r[0]] = SearchHit(
                    kind=r[1],
                    ref=r[2],
                    session_id=r[3],
                    event_id=r[4],
                    at=r[5],
                    snippet=r[6],
                    title=r[7],
                    session_title=r[8],
                    event_title=r[9],
                    in_event_feed=r[10] == "event_feed",
                )
        hits = tuple(hits_by_doc[d] for d in page_ids if d in hits_by_doc)
        return SearchResult(hits, len(ranked), query.offset + query.limit < len(ranked), limited)

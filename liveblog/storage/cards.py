"""SQL for knowledge-page cards (`item_cards`): each note's or post's HTML on a knowledge page,
rendered once and kept, so a page is read as its cards in order instead of rendered again; and
each page's cards assembled (`card_sections`), so an unchanged page is read as one row.

A card is stored with the item version it was rendered from and a *card key* that the page
chooses (its template's version and what else the card shows). It is used only while both still
match, so an edit (every edit bumps `items.version`), a template change or a late write of a card
rendered from an older version can never show a stale card: it is rendered again instead.
An assembled section is kept with the session's stream position (epoch and last seq) and is
used only at that position: every change to a session's items takes a new seq, so any edit,
moderation or vote (and any comment, which costs only a reassembly from the kept cards) moves
the page past its section. Written once for both backends, against the query layer (sql.py).
"""

from __future__ import annotations

from liveblog.models import CardSection, Item, ItemCard, RenderedCard, utcnow
from liveblog.storage.base import OpsBase
from liveblog.storage.redaction import HIDDEN_SOCIAL_STATES
from liveblog.storage.repo import item_of
from liveblog.storage.sql import Query

_MARKS = ", ".join("?" for _ in HIDDEN_SOCIAL_STATES)
_ITEM_CARDS = Query(
    lambda d: (
        "SELECT i.id, i.kind, i.key_point, c.html,"
        f" coalesce(c.words, CASE WHEN i.kind = 'note' THEN {d.word_count('i.body')} END), i.version,"
        f" CASE WHEN i.kind = 'social' AND {d.json_text('i.data', 'state')} IN ({_MARKS}) THEN 1 ELSE 0 END"
        " FROM items i"
        " LEFT JOIN item_cards c ON c.item_id = i.id AND c.card_key = ? AND c.item_version = i.version"
        " WHERE i.session_id = ? AND i.deleted = 0 ORDER BY i.sort_at, i.id"
    )
)

# Rows per statement: 6 parameters a row stays far below both databases' limits (SQLite 32,766,
# PostgreSQL 32,767), and a 2,000-card page still takes only a few statements.
_CHUNK = 500


class CardOps(OpsBase):
    async def list_item_cards(self, session_id: str, card_key: str) -> list[ItemCard]:
        """Every item of the session not deleted, in page order (sort time, then id), with its
        stored card when one made under `card_key` from the item's current version is kept, the
        words of each note and whether a post is hidden: what a page counts and leaves out,
        without reading the items (ItemCard)."""
        rows = await self.db.fetch_all(_ITEM_CARDS, (*HIDDEN_SOCIAL_STATES, card_key, session_id))
        make = ItemCard._make
        return [make(r) for r in rows]

    async def list_page_items(self, session_id: str) -> list[Item]:
        """What a knowledge page shows in full besides its cards: key points, polls and
        questions (not deleted), in page order (by the partial index `items_shown`)."""
        rows = await self.db.fetch_all(
            "SELECT * FROM items WHERE session_id = ? AND deleted = 0"
            " AND (kind IN ('poll', 'question') OR (kind = 'note' AND key_point = 1)) ORDER BY sort_at, id",
            (session_id,),
        )
        return [item_of(r) for r in rows]

    async def get_card_section(self, session_id: str, card_key: str) -> CardSection | None:
        """The session's assembled cards under `card_key`, if made at its current stream position."""
        rows = await self.db.fetch_all(
            "SELECT c.* FROM card_sections c JOIN sessions s ON s.id = c.session_id"
            " AND s.stream_epoch = c.stream_epoch AND s.last_seq = c.last_seq"
            " WHERE c.session_id = ? AND c.card_key = ?",
            (session_id, card_key),
        )
        if not rows:
            return None
        r = rows[0]
        return CardSection(
            r["session_id"],
            r["card_key"],
            r["stream_epoch"],
            r["last_seq"],
            r["notes_html"],
            r["posts_html"],
            r["notes"],
            r["posts"],
            r["words"],
        )

    async def put_card_section(self, section: CardSection) -> None:
        """Keep a session's assembled cards (one row per session; one made at an earlier stream
        position, written late, never replaces a later one)."""
        await self.db.execute(
            "INSERT INTO card_sections (session_id, card_key, stream_epoch, last_seq, notes_html, posts_html,"
            " notes, posts, words) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET card_key = excluded.card_key,"
            " stream_epoch = excluded.stream_epoch, last_seq = excluded.last_seq,"
            " notes_html = excluded.notes_html, posts_html = excluded.posts_html, notes = excluded.notes,"
            " posts = excluded.posts, words = excluded.words"
            " WHERE excluded.stream_epoch <> card_sections.stream_epoch OR excluded.last_seq >= card_sections.last_seq",
            (
                section.session_id,
                section.card_key,
                section.stream_epoch,
                section.last_seq,
                section.notes_html,
                section.posts_html,
                section.notes,
                section.posts,
                section.words,
            ),
        )

    async def get_items(self, item_ids: list[int]) -> dict[int, Item]:
        """These items (deleted ones too), by id; ids that do not exist are left out."""
        out: dict[int, Item] = {}
        ids = sorted(set(item_ids))
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = await self.db.fetch_all(
                f"SELECT * FROM items WHERE id IN ({', '.join('?' * len(chunk))})", tuple(chunk)
            )
            for r in rows:
                out[r["id"]] = item_of(r)
        return out

    async def put_item_cards(self, card_key: str, cards: list[RenderedCard]) -> None:
        """Keep these cards (one per item: a newer one replaces the item's earlier card)."""
        now = utcnow()
        newest: dict[int, RenderedCard] = {}  # one row per item in a statement (PostgreSQL insists)
        for c in cards:
            if c.item_id not in newest or c.item_version >= newest[c.item_id].item_version:
                newest[c.item_id] = c
        cards = list(newest.values())
        for start in range(0, len(cards), _CHUNK):
            chunk = cards[start : start + _CHUNK]
            args: list[object] = []
            for c in chunk:
                args += [c.item_id, card_key, c.item_version, c.html, c.words, now]
            await self.db.execute(
                "INSERT INTO item_cards (item_id, card_key, item_version, html, words, rendered_at) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
                + " ON CONFLICT (item_id) DO UPDATE SET card_key = excluded.card_key,"
                " item_version = excluded.item_version, html = excluded.html, words = excluded.words,"
                " rendered_at = excluded.rendered_at"
                # A card rendered from an older version, written late, never replaces a newer one.
                " WHERE excluded.item_version >= item_cards.item_version",
                tuple(args),
            )

    async def count_item_cards(self, session_id: str, card_key: str) -> int:
        """Cards kept under `card_key` for the session's items (current or not)."""
        rows = await self.db.fetch_all(
            "SELECT count(*) FROM item_cards c JOIN items i ON i.id = c.item_id WHERE i.session_id = ? AND c.card_key = ?",
            (session_id, card_key),
        )
        return int(rows[0][0])

    # -- a long stream in pages (issue 17 item 7) ------------------------------------------------
    # A live page shows only its newest cards; older ones are read a page at a time, keyed by
    # position (the items_by_time order: sort time, then id), never by an offset from the newest
    # end, which moves as items arrive. Polls and questions are not cards (the audience panel).

    async def list_stream_page(self, session_id: str, before: int | None, limit: int) -> list[Item]:
        """Up to `limit` notes and posts (not deleted) placed before item `before` (all, for
        None), newest first. The cursor item may itself be deleted since: its place still counts."""
        sql = "SELECT * FROM items WHERE session_id = ? AND deleted = 0 AND kind IN ('note', 'social')"
        args: list[object] = [session_id]
        if before is not None:
            sql += " AND (sort_at, id) < (SELECT sort_at, id FROM items WHERE id = ? AND session_id = ?)"
            args += [before, session_id]
        rows = await self.db.fetch_all(sql + " ORDER BY sort_at DESC, id DESC LIMIT ?", (*args, limit))
        return [item_of(r) for r in rows]

    async def count_stream_upto(self, session_id: str, item_id: int | None) -> int:
        """Notes and posts (not deleted) placed at or before item `item_id` (all, for None):
        an item's place counted from the oldest, which numbers the stream's pages."""
        sql = "SELECT count(*) FROM items WHERE session_id = ? AND deleted = 0 AND kind IN ('note', 'social')"
        args: list[object] = [session_id]
        if item_id is not None:
            sql += " AND (sort_at, id) <= (SELECT sort_at, id FROM items WHERE id = ? AND session_id = ?)"
            args += [item_id, session_id]
        return int(await self.db.fetch_value(sql, tuple(args)))

    async def list_stream_numbered(self, session_id: str, first: int, limit: int) -> list[Item]:
        """Notes and posts (not deleted) from the `first`-th from the oldest (0-based), oldest
        first: a numbered page. Counted from the oldest end, so new items never move a page."""
        rows = await self.db.fetch_all(
            "SELECT * FROM items WHERE session_id = ? AND deleted = 0 AND kind IN ('note', 'social')"
            " ORDER BY sort_at, id LIMIT ? OFFSET ?",
            (session_id, limit, first),
        )
        return [item_of(r) for r in rows]

    async def list_key_points(self, session_id: str) -> list[Item]:
        """The session's key points (not deleted), oldest first."""
        rows = await self.db.fetch_all(
            "SELECT * FROM items WHERE session_id = ? AND deleted = 0 AND key_point = 1"
            " AND kind IN ('note', 'social') ORDER BY sort_at, id",
            (session_id,),
        )
        return [item_of(r) for r in rows]

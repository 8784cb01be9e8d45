"""SQL for the programme's own operations beyond repo.py's rows: what a session holds, deleting
a session (with what it holds, once exported), noting an export, and finding the sessions an imported schedule made (by the guid
or UID of their entry). Written once for both backends, against the query layer (sql.py).
"""

from __future__ import annotations

from liveblog.models import Session
from liveblog.storage.base import OpsBase
from liveblog.storage.repo import session_of

# What a session holds that people made: deleting it would lose them.
_HOLDINGS = ("items", "media", "comments", "social_routes")
# Rows that hang off the session's items, by the column naming the item (children first).
_ITEM_ROWS = (
    ("votes", "poll_id"),
    ("upvotes", "question_id"),
    ("item_history", "item_id"),
    ("item_cards", "item_id"),
)
# What else refers to a session, deleted with it (children first). A table missed here fails the
# delete on its foreign key instead of leaving rows that point nowhere.
_SESSION_ROWS = (
    "questions",
    "items",
    "media",
    "comments",
    "social_routes",
    "search_index",
    "card_sections",
    "comment_threads",
    "session_tags",
    "archives",
    "feed_reads",
    "feed_policies",
    "invites",
    "client_ops",
    "changes",
    "moderation_log",
    "question_answers",
    "speaker_links",
)


class ProgrammeOps(OpsBase):
    async def count_session_holdings(self, session_id: str) -> int:
        """Notes, posts, polls and questions (deleted ones too: their history is in the stream),
        photos, comments, and social posts routed to the session."""
        counts = " + ".join(f"(SELECT COUNT(*) FROM {table} WHERE session_id = ?)" for table in _HOLDINGS)
        rows = await self.db.fetch_all(f"SELECT {counts}", (session_id,) * len(_HOLDINGS))
        return int(list(rows)[0][0])

    async def delete_session(self, session_id: str) -> None:
        """Delete a programme session and everything it holds and that refers to it (the caller
        checked it may: it holds nothing, or its export was taken since its last change)."""
        for table, column in _ITEM_ROWS:
            await self.db.execute(
                f"DELETE FROM {table} WHERE {column} IN (SELECT id FROM items WHERE session_id = ?)",
                (session_id,),
            )
        for table in _SESSION_ROWS:
            await self.db.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
        await self.db.execute("DELETE FROM sessions WHERE id = ? AND kind = 'session'", (session_id,))

    async def mark_exported(self, session_id: str) -> int | None:
        """Note that an organiser took the session's export now: its stream position, or None."""
        rows = await self.db.fetch_all(
            "UPDATE sessions SET exported_seq = last_seq WHERE id = ? AND kind = 'session' RETURNING last_seq",
            (session_id,),
        )
        rows = list(rows)
        return int(rows[0][0]) if rows else None

    async def sessions_by_source(self, event_id: str) -> dict[str, Session]:
        """The event's sessions made by a programme import, by their entry's guid/UID."""
        rows = await self.db.fetch_all(
            "SELECT * FROM sessions WHERE event_id = ? AND kind = 'session' AND source_uid IS NOT NULL",
            (event_id,),
        )
        return {row["source_uid"]: session_of(row) for row in rows}

"""Redaction at the source: when an item or a comment stops being public (deleted, hidden, a
post removed), every earlier change of it in the session's change log is rewritten, in the same
transaction, to its redacted form (`models.redacted_change`), and an item's earlier versions
and kept cards are deleted. Every output reads these (websocket and SSE resume, replay, exports,
pages), so none of them can hand the text out again.

Portable SQL (`?` placeholders) on an aiosqlite-shaped connection: SQLite's own, or PostgreSQL's
through `postgres.portable.AiosqliteShim`, so both backends run this one text."""

from __future__ import annotations

import json
import re
from typing import Any

from liveblog.models import Comment, Item, redacted_change

PUBLIC_QUESTION_STATES = ("visible", "answered")
HIDDEN_SOCIAL_STATES = ("pending", "rejected", "hidden")
_COMMENT_OPS = ("comment.created", "comment.updated", "comment.deleted")
# A photo in a note's stored change (its HTML shows every photo the note has).
_PHOTO = re.compile(r"/media/([A-Za-z0-9_-]+)")


def item_is_public(kind: str, deleted: bool, data: dict[str, Any]) -> bool:
    if deleted:
        return False
    if kind == "question":
        return data.get("state") in PUBLIC_QUESTION_STATES
    if kind == "social":
        return data.get("state") not in HIDDEN_SOCIAL_STATES
    if kind == "poll":
        return data.get("state") != "draft"
    return True


async def _rewrite(conn: Any, session_id: str, rows: list[Any]) -> list[int]:
    seqs = []
    for seq, payload in rows:
        new = redacted_change(json.loads(payload))
        await conn.execute(
            "UPDATE changes SET op = ?, payload = ? WHERE session_id = ? AND seq = ?",
            (new["op"], json.dumps(new, separators=(",", ":")), session_id, seq),
        )
        seqs.append(int(seq))
    return seqs


async def redact_item_changes(conn: Any, session_id: str, item_id: int) -> list[int]:
    """Redact every stored change of an item no longer public; the seqs rewritten."""
    rows = await conn.execute_fetchall(
        "SELECT seq, payload FROM changes WHERE session_id = ? AND item_id = ? AND op <> 'item.redacted'"
        " ORDER BY seq",
        (session_id, item_id),
    )
    return await _rewrite(conn, session_id, [(r[0], r[1]) for r in rows])


async def redact_comment_changes(conn: Any, comment: Comment) -> list[int]:
    """Redact every stored change of a comment no longer public; the seqs rewritten. Comment
    changes carry no item id: their payloads name the comment first (`"comment":{"id":N,`)."""
    rows = await conn.execute_fetchall(
        "SELECT seq, payload FROM changes WHERE session_id = ? AND op IN (?, ?, ?) AND payload LIKE ?"
        " ORDER BY seq",
        (comment.session_id, *_COMMENT_OPS, f'%"comment":{{"id":{comment.id},%'),
    )
    mine = [(r[0], r[1]) for r in rows if json.loads(r[1])["comment"]["id"] == comment.id]
    return await _rewrite(conn, comment.session_id, mine)


async def drop_unshown_photos(conn: Any, session_id: str, media_ids: set[str]) -> None:
    """Delete the session's photos among `media_ids` that nothing public of the session shows
    any more (a note, an earlier version of one, the summary): a deleted note's photos go with it."""
    for media_id in sorted(media_ids):
        pattern = f"%/media/{media_id}%"
        shown = await conn.execute_fetchall(
            "SELECT 1 FROM items WHERE session_id = ? AND deleted = 0 AND html LIKE ?"
            " UNION ALL SELECT 1 FROM item_history h JOIN items i ON i.id = h.item_id"
            " WHERE i.session_id = ? AND i.deleted = 0 AND h.html LIKE ?"
            " UNION ALL SELECT 1 FROM archives WHERE session_id = ? AND summary_html LIKE ?",
            (session_id, pattern, session_id, pattern, session_id, pattern),
        )
        if not shown:
            await conn.execute("DELETE FROM media WHERE id = ? AND session_id = ?", (media_id, session_id))


async def item_change_fields(conn: Any, item: Item) -> dict[str, Any]:
    """The fields of an item's new change (stamped with its seq). An item no longer public has
    its earlier changes redacted first, and the change names them (`redacts`) for the hubs."""
    fields: dict[str, Any] = {"item": item.to_wire()}
    if not item_is_public(item.kind, item.deleted, item.data):
        # Its earlier versions and rendered cards go too: nothing of it is left to show. So do
        # a deleted note's photos (collected posts' images may be shared by other streams).
        photos: set[str] = set()
        if item.kind == "note":
            for r in await conn.execute_fetchall(
                "SELECT payload FROM changes WHERE session_id = ? AND item_id = ?", (item.session_id, item.id)
            ):
                photos.update(_PHOTO.findall(r[0]))
        await conn.execute("DELETE FROM item_history WHERE item_id = ?", (item.id,))
        await conn.execute("DELETE FROM item_cards WHERE item_id = ?", (item.id,))
        if photos:
            await drop_unshown_photos(conn, item.session_id, photos)
        redacts = await redact_item_changes(conn, item.session_id, item.id)
        if redacts:
            fields["redacts"] = redacts
    return fields


async def comment_change_fields(conn: Any, comment: Comment) -> dict[str, Any]:
    """The same for a comment's new change."""
    fields: dict[str, Any] = {"comment": comment.to_wire()}
    if not comment.public:
        redacts = await redact_comment_changes(conn, comment)
        if redacts:
            fields["redacts"] = redacts
    return fields

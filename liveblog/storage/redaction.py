"""Redaction at the source: when an item or a comment stops being public (deleted, hidden, a
post removed), every earlier change of it in the session's change log is rewritten, in the same
transaction, to its redacted form (`models.redacted_change`), and an item's earlier versions
and kept cards are deleted. Every output reads these (websocket and SSE resume, replay, exports,
pages), so none of them can hand the text out again.

Portable SQL (`?` placeholders) on an aiosqlite-shaped connection: SQLite's own, or PostgreSQL's
through `postgres.portable.AiosqliteShim`, so both backends run this one text."""

from __future__ import annotations

import json
from typing import Any

from liveblog.models import Comment, Item, redacted_change

PUBLIC_QUESTION_STATES = ("visible", "answered")
HIDDEN_SOCIAL_STATES = ("pending", "rejected", "hidden")
_COMMENT_OPS = ("comment.created", "comment.updated", "comment.deleted")


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


async def item_change_fields(conn: Any, item: Item) -> dict[str, Any]:
    """The fields of an item's new change (stamped with its seq). An item no longer public has
    its earlier changes redacted first, and the change names them (`redacts`) for the hubs."""
    fields: dict[str, Any] = {"item": item.to_wire()}
    if not item_is_public(item.kind, item.deleted, item.data):
        # Its earlier versions and rendered cards go too: nothing of it is left to show.
        await conn.execute("DELETE FROM item_history WHERE item_id = ?", (item.id,))
        await conn.execute("DELETE FROM item_cards WHERE item_id = ?", (item.id,))
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

"""Redaction at the source: when an item or a comment stops being public (deleted, hidden, a
post removed), every earlier change of it in the session's change log is rewritten, in the same
transaction, to its redacted form (`models.redaction`), and an item's earlier versions, kept
cards (its own, and its page's assembled run) and fediverse activities' text are deleted. Every output reads these (websocket
and SSE resume, replay, exports, pages), so none of them can hand the text out again.

Written once for both backends, against the query layer (sql.py): each function takes a unit's `db`."""

from __future__ import annotations

import json
import re
from typing import Any

from liveblog.models import Comment, Item, redaction
from liveblog.storage.sql import Sql

PUBLIC_QUESTION_STATES = ("visible", "answered")
# An answer written after the talk (storage/answers.py) is public only in this state. Answers are
# not in the change log: every read of them for readers (pages, exports, the asker's account
# page) takes only this state, and an export blanks a hidden one's text (LaterAnswer.to_export).
PUBLIC_ANSWER_STATE = "visible"
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


async def _rewrite(db: Sql, session_id: str, seqs: list[int], **whose: int) -> list[int]:
    """Rewrite these changes to their redaction (`whose`: item_id= or comment_id=)."""
    for seq in seqs:
        new = redaction(seq, **whose)
        await db.execute(
            "UPDATE changes SET op = ?, payload = ? WHERE session_id = ? AND seq = ?",
            (new["op"], json.dumps(new, separators=(",", ":")), session_id, seq),
        )
    return seqs


async def redact_item_changes(db: Sql, session_id: str, item_id: int) -> list[int]:
    """Redact every stored change of an item no longer public; the seqs rewritten."""
    rows = await db.fetch_all(
        "SELECT seq FROM changes WHERE session_id = ? AND item_id = ? AND op <> 'item.redacted' ORDER BY seq",
        (session_id, item_id),
    )
    return await _rewrite(db, session_id, [int(r[0]) for r in rows], item_id=item_id)


async def redact_comment_changes(
    db: Sql, session_id: str, comment_id: int, *, text_only: bool = False
) -> list[int]:
    """Redact every stored change of a comment no longer public (`text_only`: those that show its
    text); the seqs rewritten. Comment changes carry no item id: their payloads name it."""
    rows = await db.fetch_all(
        "SELECT seq, payload FROM changes WHERE session_id = ? AND op IN (?, ?, ?) AND payload LIKE ?"
        " ORDER BY seq",
        (session_id, *_COMMENT_OPS, f'%"id":{comment_id}%'),
    )
    mine = []
    for seq, text in ((int(r[0]), r[1]) for r in rows):
        payload = json.loads(text)
        shown = payload.get("comment") if isinstance(payload, dict) else None
        if isinstance(shown, dict) and shown.get("id") == comment_id and (not text_only or "html" in shown):
            mine.append(seq)
    return await _rewrite(db, session_id, mine, comment_id=comment_id)


async def redact_imported(
    db: Sql, session_id: str, items: list[dict[str, Any]], comments: list[dict[str, Any]]
) -> None:
    """After an import wrote a session's rows: an export holds no removed text, but one from an
    older version or written by hand may. Redact the changes of what its rows say is removed (a
    comment's, only those showing its text: an export's own keep their place and round-trip)."""
    for item in items:
        if not item_is_public(item["kind"], bool(item["deleted"]), item["data"]):
            await redact_item_changes(db, session_id, item["id"])
    for c in comments:
        if c["deleted"] or c["state"] != "visible":
            await redact_comment_changes(db, session_id, c["id"], text_only=True)


async def drop_unshown_photos(db: Sql, session_id: str, media_ids: set[str]) -> None:
    """Delete the session's photos among `media_ids` that nothing public of the session shows
    any more (a note, an earlier version of one, the summary): a deleted note's photos go with it."""
    for media_id in sorted(media_ids):
        pattern = f"%/media/{media_id}%"
        shown = await db.fetch_all(
            "SELECT 1 FROM items WHERE session_id = ? AND deleted = 0 AND html LIKE ?"
            " UNION ALL SELECT 1 FROM item_history h JOIN items i ON i.id = h.item_id"
            " WHERE i.session_id = ? AND i.deleted = 0 AND h.html LIKE ?"
            " UNION ALL SELECT 1 FROM archives WHERE session_id = ? AND summary_html LIKE ?",
            (session_id, pattern, session_id, pattern, session_id, pattern),
        )
        if not shown:
            await db.execute("DELETE FROM media WHERE id = ? AND session_id = ?", (media_id, session_id))


async def withdraw_federated(db: Sql, item_id: int) -> None:
    """An item no longer public: the fediverse activities published of it (a note's Create and
    Updates) lose their text and their pending deliveries go, in the removal's own transaction:
    the publisher, off the commit path, may be seconds behind (docs/federation.md)."""
    await db.execute(
        "DELETE FROM federation_deliveries WHERE activity IN"
        " (SELECT id FROM federation_activities WHERE item_id = ? AND withdrawn = 0)",
        (item_id,),
    )
    await db.execute(
        "UPDATE federation_activities SET withdrawn = 1, body = '{}' WHERE item_id = ? AND withdrawn = 0",
        (item_id,),
    )


async def item_change_fields(db: Sql, item: Item) -> dict[str, Any]:
    """The fields of an item's new change (stamped with its seq). An item no longer public has
    its earlier changes redacted first, and the change names them (`redacts`) for the hubs."""
    fields: dict[str, Any] = {"item": item.to_wire()}
    if not item_is_public(item.kind, item.deleted, item.data):
        # Its earlier versions and rendered cards go too: nothing of it is left to show. So do
        # a deleted note's photos (collected posts' images may be shared by other streams).
        photos: set[str] = set()
        if item.kind == "note":
            for r in await db.fetch_all(
                "SELECT payload FROM changes WHERE session_id = ? AND item_id = ?", (item.session_id, item.id)
            ):
                photos.update(_PHOTO.findall(r[0]))
        await db.execute("DELETE FROM item_history WHERE item_id = ?", (item.id,))
        await db.execute("DELETE FROM item_cards WHERE item_id = ?", (item.id,))
        await db.execute("DELETE FROM card_sections WHERE session_id = ?", (item.session_id,))
        if photos:
            await drop_unshown_photos(db, item.session_id, photos)
        await withdraw_federated(db, item.id)
        redacts = await redact_item_changes(db, item.session_id, item.id)
        if redacts:
            fields["redacts"] = redacts
    return fields


async def comment_change_fields(db: Sql, comment: Comment) -> dict[str, Any]:
    """The same for a comment's new change."""
    fields: dict[str, Any] = {"comment": comment.to_wire()}
    if not comment.public:
        redacts = await redact_comment_changes(db, comment.session_id, comment.id)
        if redacts:
            fields["redacts"] = redacts
    return fields

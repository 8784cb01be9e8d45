"""Typed capture messages: a decoded JSON object (streams.protocol.decode_json) becomes one of
these or a BadRequest naming the field, before any storage is touched (docs/protocol.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from liveblog.capture import validate
from liveblog.errors import BadRequest

NOTE_TYPES = ("note.create", "note.update", "note.delete")
# The fields each message type takes; any other is refused by name (docs/protocol.md).
_TARGET = ("item_id", "target_client_id")
MESSAGE_FIELDS = {
    "note.create": ("type", "client_id", "body", "key_point", "typed_at"),
    "note.update": ("type", "client_id", *_TARGET, "body", "key_point"),
    "note.delete": ("type", "client_id", *_TARGET),
}


@dataclass(frozen=True)
class NoteCreate:
    client_id: str
    body: str
    key_point: bool
    typed_at: str | None  # normalised UTC, or None for "when the server received it"


@dataclass(frozen=True)
class NoteUpdate:
    client_id: str
    target: int | str  # the note's item id, or the client id of its note.create
    body: str | None
    key_point: bool | None


@dataclass(frozen=True)
class NoteDelete:
    client_id: str
    target: int | str


CaptureMessage = NoteCreate | NoteUpdate | NoteDelete


def capture_message(message: Any, *, note_bytes: int) -> CaptureMessage:
    if not isinstance(message, dict):
        raise BadRequest("a capture message is a JSON object", code="invalid_json")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in NOTE_TYPES:
        raise BadRequest(
            f"unknown message type {str(kind)[:40]!r}; expected one of {', '.join(NOTE_TYPES)}",
            code="unknown_type",
            field="type",
        )
    validate.known_fields(message, MESSAGE_FIELDS[kind], f"a {kind} message")
    cid = validate.client_id(message)
    if kind == "note.create":
        body = validate.text(message, "body", max_bytes=note_bytes)
        assert body is not None
        return NoteCreate(
            cid, body, bool(validate.boolean(message, "key_point")), validate.timestamp(message, "typed_at")
        )
    if kind == "note.update":
        body = validate.text(message, "body", max_bytes=note_bytes, required=False)
        key_point = validate.boolean(message, "key_point", default=None)
        if body is None and key_point is None:
            raise BadRequest("an update needs body or key_point", code="missing_field", field="body")
        return NoteUpdate(cid, _target(message), body, key_point)
    return NoteDelete(cid, _target(message))


def _target(message: dict[str, Any]) -> int | str:
    item_id = validate.integer(message, "item_id", required=False)
    if item_id is not None:
        return item_id
    if message.get("target_client_id") is None:
        raise BadRequest("item_id or target_client_id is required", code="missing_field", field="item_id")
    return validate.client_id(message, "target_client_id")

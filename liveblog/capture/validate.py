"""Small validators shared by every capture path; each failure names the field and a stable code."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from liveblog.errors import BadRequest, TooLarge
from liveblog.streams.protocol import MAX_INT
from liveblog.text import xml_chars

CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def known_fields(message: dict[str, Any], allowed: Collection[str], what: str) -> None:
    """Refuse fields the receiver does not take, naming them (400 `unknown_field`): a misspelt or
    unsupported field that was silently dropped would let the sender believe it was applied."""
    unknown = [name for name in message if name not in allowed]
    if unknown:
        names = ", ".join(repr(name[:60]) for name in unknown[:10])
        raise BadRequest(
            f"unknown field{'s' if len(unknown) > 1 else ''} {names} in {what}, which takes"
            f" {', '.join(sorted(allowed))}",
            code="unknown_field",
            field=unknown[0][:100],
        )


def require(message: dict[str, Any], name: str) -> Any:
    if name not in message or message[name] is None:
        raise BadRequest(f"field {name!r} is required", code="missing_field", field=name)
    return message[name]


def client_id(message: dict[str, Any], name: str = "client_id") -> str:
    value = require(message, name)
    if not isinstance(value, str) or not CLIENT_ID.match(value):
        raise BadRequest(
            f"{name} must be 1-100 characters of letters, digits and _.:- (a UUID is ideal)",
            code="invalid_field",
            field=name,
        )
    return value


def text(
    message: dict[str, Any], name: str, *, max_bytes: int, required: bool = True, allow_empty: bool = False
) -> str | None:
    if not required and message.get(name) is None:
        return None
    value = require(message, name)
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", code="invalid_field", field=name)
    value = xml_chars(value)
    size = len(value.encode())
    if size > max_bytes:
        raise TooLarge(f"{name} is {size} bytes; the limit is {max_bytes}", field=name)
    if not allow_empty and not value.strip():
        raise BadRequest(f"{name} must not be empty", code="empty", field=name)
    return value


def boolean(message: dict[str, Any], name: str, default: bool | None = False) -> bool | None:
    value = message.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false", code="invalid_field", field=name)
    return value


def integer(message: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    if not required and message.get(name) is None:
        return None
    value = require(message, name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise BadRequest(f"{name} must be a whole number from 0 to 2**63-1", code="invalid_field", field=name)
    return value


def timestamp(message: dict[str, Any], name: str) -> str | None:
    """An ISO 8601 time with a zone, normalised to UTC 'YYYY-MM-DDTHH:MM:SS.mmmZ'."""
    value = message.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be an ISO 8601 time", code="invalid_field", field=name)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{name} must be an ISO 8601 time, not {value!r}", code="invalid_field", field=name
        ) from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name} must include a time zone (e.g. Z)", code="invalid_field", field=name)
    if not 2000 <= parsed.year <= 2999:
        raise BadRequest(f"{name} is out of range", code="invalid_field", field=name)
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


MAX_REASON_BYTES = 500  # a sentence or two: the ledger shows it in a table row


def moderation_reason(value: Any) -> str:
    """The optional reason given for a moderation action (the ledger's `reason`), "" for none."""
    return (
        text({"reason": value}, "reason", max_bytes=MAX_REASON_BYTES, required=False, allow_empty=True) or ""
    ).strip()

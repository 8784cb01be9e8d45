"""The public wire protocol (docs/protocol.md): version, close codes, frames encoded once, and
the one JSON decoder every message and request body that enters goes through.

A Frame holds a message's JSON text and, computed at most once, its complete websocket frame, so
sending one change to 5,000 viewers encodes it once rather than 5,000 times.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections import Counter
from typing import Any

from liveblog.errors import BadRequest, TooLarge

PROTOCOL_VERSION = 1
SUBPROTOCOL = "liveblog.v1"
TOKEN_SUBPROTOCOL_PREFIX = "liveblog.token."


class CloseCode:
    """Websocket close codes Liveblog sends. 1000-2999 are the RFC's; 4000-4999 are ours."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down: reconnect after a short pause
    INVALID_DATA = 1007  # a text frame that is not UTF-8 (sent by the server library)
    MESSAGE_TOO_BIG = 1009  # a message over limits.frame_bytes (liveblog.web.wsproto)
    SERVICE_RESTART = 1012  # sent on shutdown (liveblog.web.wsproto): reconnect
    TRY_AGAIN_LATER = 1013  # overloaded: the reason says "retry after N s" (retry_after_reason)
    BAD_REQUEST = 4400  # malformed connection parameters (since, epoch)
    UNAUTHORIZED = 4401  # missing, unknown or revoked note-taker token
    FORBIDDEN = 4403  # the token does not cover this session
    NOT_FOUND = 4404  # no such session
    TOO_SLOW = 4408  # the viewer did not keep up: resume from your last seq
    RELOAD = 4409  # your position cannot be resumed: reload the snapshot
    REVOKED = 4410  # the credential that opened this socket was revoked: do not reconnect with it


def retry_after_reason(seconds: float) -> str:
    """The close reason of a 1013: clients read the number and wait at least that long, jittered."""
    return f"overloaded: retry after {seconds:g} s"


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def ws_text_frame(payload: bytes) -> bytes:
    """A complete, unmasked, unfragmented server-to-client text frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def ws_close_frame(code: int, reason: str = "") -> bytes:
    # At most 123 bytes of reason (RFC 6455 5.5), cut on a character boundary so it stays UTF-8.
    payload = struct.pack("!H", code) + reason.encode()[:123].decode("utf-8", "ignore").encode()
    return struct.pack("!BB", 0x88, len(payload)) + payload


class Frame:
    """One outgoing message, encoded once and shared by every recipient."""

    __slots__ = ("seq", "text", "kind", "_ws", "_sse")

    def __init__(self, text: str, seq: int | None = None, kind: str | None = None) -> None:
        self.text = text
        self.seq = seq
        self.kind = kind  # the message's "type", when known without parsing
        self._ws: bytes | None = None
        self._sse: tuple[str, bytes] | None = None

    @classmethod
    def of(cls, message: dict[str, Any]) -> Frame:
        kind = message.get("type")
        seq = message.get("seq") if kind == "change" else None
        return cls(dumps(message), seq, kind if isinstance(kind, str) else None)

    def sse_bytes(self, epoch: str) -> bytes:
        """The Server-Sent Events form of this frame, encoded once for every SSE client (the
        stream's epoch is the same for all of them, so it is cached with it)."""
        cached = self._sse
        if cached is not None and cached[0] == epoch:
            return cached[1]
        kind = self.kind
        if kind is None:
            try:
                parsed = json.loads(self.text)
                kind = str(parsed.get("type", "message")) if isinstance(parsed, dict) else "message"
            except ValueError:
                kind = "message"
            self.kind = kind
        lines = [f"id: {epoch}:{self.seq}"] if self.seq is not None else []
        lines.append(f"event: {kind}")
        lines.append(f"data: {self.text}")
        body = ("\n".join(lines) + "\n\n").encode("utf-8", "replace")
        self._sse = (epoch, body)
        return body

    @property
    def ws_bytes(self) -> bytes:
        if self._ws is None:
            # Text that is not Unicode cannot enter (decode_json refuses lone surrogates); should
            # one appear anyway it becomes U+003F here rather than an exception that kills a sender.
            self._ws = ws_text_frame(self.text.encode("utf-8", "replace"))
        return self._ws

    def __len__(self) -> int:
        return len(self.text)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Frame(seq={self.seq}, {self.text[:60]!r})"


class FrameBatch:
    """Several frames going to the same subscribers together (the changes one commit made to a
    stream): one write of their websocket frames, joined once for every recipient, instead of
    one write per frame per viewer. A burst of 20 social posts to 1,000 viewers is 1,000
    socket writes, not 20,000 (docs/performance.md)."""

    __slots__ = ("frames", "_ws", "size")

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self._ws: bytes | None = None
        self.size = sum(len(f.text) for f in frames)

    @property
    def ws_bytes(self) -> bytes:
        if self._ws is None:
            self._ws = b"".join(f.ws_bytes for f in self.frames)
        return self._ws

    def __len__(self) -> int:
        return len(self.frames)


# -- decoding ------------------------------------------------------------------------------------
#
# Everything that enters as JSON (websocket frames, API bodies) is decoded by decode_json, which
# refuses, with a BadRequest naming the field where it can, what the rest of the server cannot
# handle: nesting past MAX_DEPTH (the stdlib parser recurses, and so would everything after it),
# lone surrogates (valid JSON escapes, but not text: encoding them to UTF-8 for SQLite or a
# frame fails), integers SQLite cannot store, and numbers that are not finite.

# The deepest message the protocol has is 3 levels (a poll's options list in an object); 16
# leaves room for additions and refuses the 1,000-level nesting that broke the parser.
MAX_DEPTH = 16
# SQLite's integers (and every id) are signed 64-bit.
MIN_INT, MAX_INT = -(2**63), 2**63 - 1
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
# Not text: lone surrogates, and NUL (valid JSON as \u0000, refused by PostgreSQL's TEXT).
_SURROGATE = re.compile("[\ud800-\udfff\x00]")

# Input refused, by reason, since the process started: shown at GET /api/v1/metrics, so that a
# flood of bad frames is visible without filling the log.
REJECTED: Counter[str] = Counter()


def parse_seq(raw: str) -> int:
    """A sequence number as sent in a query or Last-Event-ID; ValueError unless 0 to 10**18."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ValueError(f"a position is a whole number from 0 to 10**18, not {raw[:40]!r}")
    return int(raw)


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number", code="invalid_json")


def _depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (strings, which may hold brackets, skipped)."""
    depth = deepest = 0
    for ch in re.sub(r"[^\[\]{}]", "", _STRING.sub('""', text)):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _check(value: Any, field: str | None, depth: int) -> None:
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise BadRequest(
                "text must be Unicode without NUL: a lone surrogate (\\ud800-\\udfff) or \\u0000 is not",
                code="invalid_field",
                field=field,
            )
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise BadRequest(
                "a number is out of range (64-bit integers only)", code="invalid_field", field=field
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BadRequest("a number is out of range", code="invalid_field", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            if _SURROGATE.search(key):
                raise BadRequest("a key must be Unicode without NUL", code="invalid_json")
            _check(item, field if depth else key, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, field, depth + 1)


def parse_json(raw: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a UTF-8 JSON text nested at most `max_depth` deep, without NaN or Infinity;
    BadRequest (invalid_json) otherwise, never RecursionError. Its values are not checked."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("JSON must be UTF-8 text", code="invalid_json") from None
    # Counting brackets first is cheap; only a text that could be too deep is scanned.
    if raw.count("[") + raw.count("{") > max_depth and _depth(raw) > max_depth:
        raise BadRequest(f"JSON nested deeper than {max_depth} levels", code="invalid_json")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as exc:  # also an integer of more than 4,300 digits
        raise BadRequest(f"that is not JSON ({exc})", code="invalid_json") from None


def decode_json(raw: str | bytes, *, max_bytes: int | None = None) -> Any:
    """The value of a JSON text, bounded in size, depth, text and numbers; BadRequest (400, code
    invalid_json or invalid_field) or TooLarge (413) otherwise."""
    try:
        if max_bytes is not None and len(raw) > max_bytes:
            raise TooLarge(f"over {max_bytes} bytes")
        value = parse_json(raw)
        _check(value, None, 0)
        return value
    except BadRequest as exc:
        REJECTED[exc.code] += 1
        raise

"""The public wire protocol (docs/protocol.md): version, close codes, frames encoded once.

A Frame holds a message's JSON text and, computed at most once, its complete websocket frame, so
sending one change to 5,000 viewers encodes it once rather than 5,000 times.
"""

from __future__ import annotations

import json
import struct
from typing import Any

PROTOCOL_VERSION = 1
SUBPROTOCOL = "liveblog.v1"
TOKEN_SUBPROTOCOL_PREFIX = "liveblog.token."


class CloseCode:
    """Websocket close codes Liveblog sends. 1000-2999 are the RFC's; 4000-4999 are ours."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down: reconnect after a short pause
    MESSAGE_TOO_BIG = 1009  # a frame over limits.frame_bytes (sent by the server library)
    SERVICE_RESTART = 1012  # sent by uvicorn on shutdown: reconnect
    BAD_REQUEST = 4400  # malformed connection parameters (since, epoch)
    UNAUTHORIZED = 4401  # missing, unknown or revoked note-taker token
    FORBIDDEN = 4403  # the token does not cover this session
    NOT_FOUND = 4404  # no such session
    TOO_SLOW = 4408  # the viewer did not keep up: resume from your last seq
    RELOAD = 4409  # your position cannot be resumed: reload the snapshot
    REVOKED = 4410  # the credential that opened this socket was revoked: do not reconnect with it


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
    payload = struct.pack("!H", code) + reason.encode()[:120]
    return struct.pack("!BB", 0x88, len(payload)) + payload


class Frame:
    """One outgoing message, encoded once and shared by every recipient."""

    __slots__ = ("seq", "text", "_ws")

    def __init__(self, text: str, seq: int | None = None) -> None:
        self.text = text
        self.seq = seq
        self._ws: bytes | None = None

    @classmethod
    def of(cls, message: dict[str, Any]) -> Frame:
        seq = message.get("seq") if message.get("type") == "change" else None
        return cls(dumps(message), seq)

    @property
    def ws_bytes(self) -> bytes:
        if self._ws is None:
            self._ws = ws_text_frame(self.text.encode())
        return self._ws

    def __len__(self) -> int:
        return len(self.text)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Frame(seq={self.seq}, {self.text[:60]!r})"

"""A minimal websocket client on asyncio.Protocol, cheap enough to hold thousands of viewers.

The `websockets` client costs several times more CPU per received message than the server
side we want to measure, and the load generator shares this machine's two cores with the
server. This client does only what a viewer needs: a proper handshake (random key, optional
subprotocols), parsing of unmasked server frames, masked pong/close/text frames going out.
Every received text message is handed to a callback with the time the bytes arrived.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

OnMessage = Callable[["RawWebSocket", bytes, int], None]


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A complete client-to-server frame (clients must mask, RFC 6455 section 5.3)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = os.urandom(4)
    if n:
        repeated = (key * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")
    else:
        masked = b""
    return header + key + masked


class HandshakeError(Exception):
    pass


class RawWebSocket(asyncio.Protocol):
    """One client connection. `opened` resolves after the 101 response; `closed` on disconnect."""

    def __init__(
        self, host: str, path: str, on_message: OnMessage, subprotocols: list[str] | None = None
    ) -> None:
        self.host = host
        self.path = path
        self.on_message = on_message
        self.subprotocols = subprotocols or []
        self.transport: asyncio.Transport | None = None
        self.upgraded = False
        self.buf = bytearray()
        self.fragments: list[bytes] = []
        self.close_code: int | None = None
        self.got_first = False  # free for the caller: e.g. "the hello has arrived"
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.subprotocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(self.subprotocols))
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status:
                if not self.opened.done():
                    self.opened.set_exception(HandshakeError(status.decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            del buf[: end + 4]
            self.upgraded = True
            if not self.opened.done():
                self.opened.set_result(None)
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if size - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode == OP_TEXT or opcode == OP_BINARY:
                if fin:
                    self.on_message(self, payload, now)
                else:
                    self.fragments = [payload]
            elif opcode == OP_CONT:
                self.fragments.append(payload)
                if fin:
                    whole = b"".join(self.fragments)
                    self.fragments = []
                    self.on_message(self, whole, now)
            elif opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.send_frame(OP_CLOSE, payload[:2])
                assert self.transport is not None
                self.transport.close()
                break
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(f"connection lost before the handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- sending ---------------------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked_frame(opcode, payload))

    def send_text(self, text: str | bytes) -> None:
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked_frame(OP_CLOSE, struct.pack("!H", code)))
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def connect(
    host: str,
    port: int,
    path: str,
    on_message: OnMessage,
    subprotocols: list[str] | None = None,
    timeout: float = 30,
) -> RawWebSocket:
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(
        loop.create_connection(
            lambda: RawWebSocket(f"{host}:{port}", path, on_message, subprotocols), host, port
        ),
        timeout,
    )
    await asyncio.wait_for(proto.opened, timeout)
    return proto

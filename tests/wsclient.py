"""A small protocol client for tests and the benchmark: every receive has a deadline."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

RECEIVE_TIMEOUT = 10.0


async def connect(
    url: str, *, token: str | None = None, origin: str | None = None, **kwargs: Any
) -> ClientConnection:
    subprotocols = ["liveblog.v1"]
    if token:
        subprotocols.append("liveblog.token." + token)
    headers = {"Origin": origin} if origin else None
    return await websockets.connect(
        url,
        subprotocols=subprotocols,
        additional_headers=headers,
        compression=None,
        open_timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )


async def recv(ws: ClientConnection, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    return json.loads(raw)  # type: ignore[no-any-return]


async def recv_until(
    ws: ClientConnection, predicate: Any, timeout: float = RECEIVE_TIMEOUT
) -> list[dict[str, Any]]:
    """Messages received up to and including the first one matching predicate."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            seen.append(message)
            if predicate(message):
                return seen


async def recv_type(ws: ClientConnection, kind: str, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
    return (await recv_until(ws, lambda m: m.get("type") == kind, timeout))[-1]


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


def raw_handshake(port: int, path: str, subprotocols: str = "", rcvbuf: int | None = None) -> socket.socket:
    """A plain socket through a websocket handshake on 127.0.0.1, reading nothing after the
    101 response (read byte by byte): a client whose reading the test controls."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    key = base64.b64encode(os.urandom(16)).decode()
    protocols = f"Sec-WebSocket-Protocol: {subprotocols}\r\n" if subprotocols else ""
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{protocols}\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def masked_frame(first: int, payload: bytes, *, masked: bool = True) -> bytes:
    """A client frame (masked, as RFC 6455 requires, unless `masked` is False): `first` is FIN,
    the reserved bits and the opcode. The length takes 7, 16 or 64 bits, the fewest that hold it."""
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        header = struct.pack("!BB", first, bit | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, bit | 127, n)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    key = (mask * (n // 4 + 1))[:n]
    return header + mask + (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def server_frames(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """The complete server frames (unmasked) at the start of `data`: opcode, payload, and where
    the frame ends in `data`."""
    i = 0
    while i + 2 <= len(data):
        opcode, n, start = data[i] & 0x0F, data[i + 1] & 0x7F, i + 2
        if n == 126:
            (n,), start = struct.unpack("!H", data[start : start + 2]), start + 2
        elif n == 127:
            (n,), start = struct.unpack("!Q", data[start : start + 8]), start + 8
        if start + n > len(data):
            return
        i = start + n
        yield opcode, data[start:i], i

"""A small protocol client for tests and the benchmark: every receive has a deadline."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
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

"""A test-only echo app under uvicorn with Liveblog's websocket protocol class and the production
options (liveblog/web/serving.py), inside the test's event loop: for tests of the protocol class
itself (framing, close codes, pings). The echo endpoint exists here and nowhere in the
production routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from liveblog.web.serving import uvicorn_options
from liveblog.web.wsproto import FastWebSocketProtocol
from tests.conftest import eventually, free_port, make_settings


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Every message sent straight back; the close handshake is the protocol class's own."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


@dataclass
class EchoServer:
    url: str  # ws://127.0.0.1:port
    port: int
    server: uvicorn.Server

    def connection(self, client: tuple[str, int]) -> FastWebSocketProtocol | None:
        """The server's end of the websocket whose client end is bound to `client`."""
        for conn in self.server.server_state.connections:
            if isinstance(conn, FastWebSocketProtocol) and conn.client == client:
                return conn
        return None


@asynccontextmanager
async def echo_server(tmp_path: Path, *, max_bytes: int, stall_seconds: float) -> AsyncIterator[EchoServer]:
    """The echo app on 127.0.0.1: messages of up to `max_bytes` (ws_max_size), and the stall
    rule's budget `stall_seconds` (streams.stall_seconds: pings every half of it)."""
    port = free_port()
    options = {
        **uvicorn_options(make_settings(tmp_path)),
        "ws_max_size": max_bytes,
        "ws_ping_interval": stall_seconds / 2,
    }
    config = uvicorn.Config(
        echo, host="127.0.0.1", port=port, **options, log_level="critical", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    def started() -> bool:
        if task.done():
            task.result()
        return bool(server.started)

    await eventually(started, 10, "the echo server to start")
    try:
        yield EchoServer(f"ws://127.0.0.1:{port}", port, server)
    finally:
        server.should_exit = True
        async with asyncio.timeout(15):
            await task

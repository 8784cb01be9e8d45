"""Server-Sent Events: the same stream as the live websocket, for clients that cannot use one.

Event ids are "<epoch>:<seq>", so a browser's automatic Last-Event-ID resumes exactly where it
stopped, and a position from another incarnation of the stream is recognised.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from liveblog.errors import BadRequest
from liveblog.services import Services
from liveblog.streams.hub import ReloadRequired
from liveblog.streams.protocol import Frame, parse_seq
from liveblog.web.outlets import QueueOutlet

RETRY_MS = 2000  # browsers reconnect after this; jitter comes from their own scheduling


def parse_last_event_id(value: str | None) -> tuple[int | None, str | None]:
    if not value:
        return None, None
    epoch, _, seq = value.rpartition(":")
    if epoch and not (epoch.isascii() and epoch.isalnum() and len(epoch) <= 64):
        raise BadRequest("Last-Event-ID must look like <epoch>:<seq>", code="bad_position")
    try:
        return parse_seq(seq), epoch or None
    except ValueError:
        raise BadRequest("Last-Event-ID must look like <epoch>:<seq>", code="bad_position") from None


class SSEStream:
    def __init__(self, services: Services, session_id: str, since: int | None, epoch: str | None) -> None:
        self.services = services
        self.session_id = session_id
        self.since = since
        self.epoch = epoch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                    (b"x-accel-buffering", b"no"),  # tell nginx not to buffer the stream
                ],
            }
        )
        hub = self.services.hub
        ended = asyncio.Event()

        async def emit(frame: Frame) -> None:
            # Encoded once per frame for all SSE clients (it used to parse every frame's JSON
            # again for each client to find its type).
            channel = hub.channels.get(self.session_id)
            body = frame.sse_bytes(channel.epoch if channel and channel.epoch else "")
            await send({"type": "http.response.body", "body": body, "more_body": True})

        async def close(code: int, reason: str) -> None:
            ended.set()

        outlet = QueueOutlet(emit, close, self.services.settings.streams.viewer_buffer_bytes)
        await send(
            {"type": "http.response.body", "body": f"retry: {RETRY_MS}\n\n".encode(), "more_body": True}
        )

        async def wait_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    ended.set()
                    return

        watcher = asyncio.create_task(wait_disconnect())
        try:
            async with hub.subscribe(
                self.session_id, outlet, since=self.since, epoch=self.epoch, hello={"role": "viewer"}
            ):
                await ended.wait()
        except ReloadRequired as reload:
            outlet.write(
                Frame.of(
                    {
                        "type": "reload",
                        "code": "reload",
                        "reason": reload.reason,
                        "epoch": reload.epoch,
                        "seq": reload.head,
                    }
                )
            )
            with contextlib.suppress(Exception):
                await asyncio.wait_for(outlet.drain(), 5)
        finally:
            watcher.cancel()
            await outlet.aclose()
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def sse_response(request: Request, services: Services, session_id: str) -> Any:
    since, epoch = parse_last_event_id(request.headers.get("last-event-id"))
    if since is None and request.query_params.get("since"):
        try:
            since = parse_seq(request.query_params["since"])
        except ValueError:
            raise BadRequest("since must be a whole number from 0 to 10**18", code="bad_position") from None
        epoch = request.query_params.get("epoch") or None
        if epoch is not None and not (epoch.isascii() and epoch.isalnum() and len(epoch) <= 64):
            raise BadRequest("epoch is not valid", code="bad_position")
    return SSEStream(services, session_id, since, epoch)

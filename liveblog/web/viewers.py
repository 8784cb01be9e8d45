"""The viewers' websocket, served as a lean raw-ASGI handler ahead of Starlette.

Viewers are the many (thousands per session, mostly idle), so their connections carry as little
as possible: no Starlette request objects or middleware frames per connection, and on the fast
path (liveblog/web/wsproto.py) the handshake's headers are released once the socket is accepted. Same protocol and
rules as every other endpoint (docs/protocol.md); the Origin check is the same function.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers, QueryParams

from liveblog.errors import NotFound
from liveblog.services import Services
from liveblog.streams.hub import Channel, Outlet, ReloadRequired, StreamHub
from liveblog.streams.protocol import SUBPROTOCOL, CloseCode, Frame, dumps, retry_after_reason
from liveblog.web.outlets import QueueOutlet
from liveblog.web.security import origin_allowed, trusted_origins
from liveblog.web.sockets import decode, error_message, parse_position, reply
from liveblog.web.wsproto import FastSend

VIEWER_PATH = re.compile(r"^/ws/v1/sessions/([^/]+)$")
_HELLO = {"role": "viewer"}
_PONG = Frame.of({"type": "pong"})
_READ_ONLY = Frame.of(error_message("unknown_type", "viewers may only send ping on this socket"))

Scope = dict[str, Any]


async def serve_viewer(
    services: Services, scope: Scope, receive: Any, send: Any, session_id: str, fast: FastSend | None
) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    if not origin_allowed(
        Headers(scope=scope), trusted_origins(services.settings), scope.get("scheme", "ws")
    ):
        await send({"type": "websocket.close", "code": CloseCode.FORBIDDEN})  # HTTP 403 to the handshake
        return
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL if SUBPROTOCOL in offered else None})
    hub = services.hub
    streams = services.settings.streams
    if streams.max_viewers and hub.viewer_sockets >= streams.max_viewers:
        # Full: shed it, with a hint the page's client honours (jittered), rather than swap or run
        # out of file descriptors (docs/protocol.md, "Load shedding").
        hub.shed += 1
        reason = retry_after_reason(streams.retry_after_seconds)
        await send({"type": "websocket.close", "code": CloseCode.TRY_AGAIN_LATER, "reason": reason})
        return
    hub.viewer_sockets += 1
    handed_over = False
    try:
        handed_over = await _serve(services, scope, receive, send, session_id, fast)
    finally:
        if not handed_over:
            hub.viewer_sockets -= 1


async def _serve(
    services: Services, scope: Scope, receive: Any, send: Any, session_id: str, fast: FastSend | None
) -> bool:
    """Serve one viewer; True if the connection was handed over (it is counted until it ends)."""
    try:
        since, epoch = parse_position(QueryParams(scope.get("query_string", b"").decode("latin-1")))
    except ValueError as exc:
        await send({"type": "websocket.send", "text": dumps(error_message("bad_position", str(exc)))})
        await send({"type": "websocket.close", "code": CloseCode.BAD_REQUEST})
        return False
    limit = services.settings.streams.viewer_buffer_bytes
    outlet: Outlet
    if fast is not None:
        outlet = fast.outlet(limit)
        # The protocol keeps no copy of the scope: dropping its headers here frees the handshake
        # (~3.5 KiB per idle viewer with a browser's headers).
        scope["headers"] = ()
    else:
        outlet = _queue_outlet(send, limit)
    hub = services.hub
    try:
        try:
            channel = await hub.join(session_id, outlet, since=since, epoch=epoch, hello=_HELLO)
        except ReloadRequired as reload:
            message = {
                "type": "reload",
                "code": "reload",
                "reason": reload.reason,
                "epoch": reload.epoch,
                "seq": reload.head,
            }
            await _finish(outlet, CloseCode.RELOAD, message)
            return False
        except NotFound:
            await _finish(
                outlet, CloseCode.NOT_FOUND, error_message("unknown_session", "there is no such session")
            )
            return False
        if fast is not None:
            # Joined: all a viewer may still send is a ping, answered at once. The connection
            # is handed to the protocol with that answer, and this task (its frames, the scope)
            # ends: an idle viewer costs a few objects, not a coroutine chain.
            fast.hand_over(_on_message(hub, channel, outlet))
            return True
        try:
            while not outlet.closed:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return False
                reply(outlet, _answer(message))
        finally:
            hub.leave(channel, outlet)
        if not outlet.closed:
            outlet.close(CloseCode.NORMAL)
        return False
    finally:
        if isinstance(outlet, QueueOutlet):
            await outlet.aclose()


def _on_message(hub: StreamHub, channel: Channel, outlet: Outlet) -> Callable[[dict[str, Any]], None]:
    """What a handed-over viewer's connection does with each message (FastSend.hand_over)."""

    def on_message(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.disconnect":
            hub.leave(channel, outlet)
            hub.viewer_sockets -= 1
        elif not outlet.closed:
            reply(outlet, _answer(message))

    return on_message


def _answer(message: dict[str, Any]) -> Frame:
    text = message.get("text")
    parsed, error = decode(text if text is not None else bytes(message.get("bytes") or b""))
    if parsed is None:
        return Frame.of(error or {})
    return _PONG if parsed.get("type") == "ping" else _READ_ONLY


def _queue_outlet(send: Any, limit: int) -> QueueOutlet:
    """The portable path (any ASGI server, the test client)."""

    async def send_frame(frame: Frame) -> None:
        await send({"type": "websocket.send", "text": frame.text})

    async def close(code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code, "reason": reason})

    return QueueOutlet(send_frame, close, limit)


async def _finish(outlet: Outlet, code: int, message: dict[str, Any]) -> None:
    outlet.write(Frame(json.dumps(message)))
    outlet.close(code, message.get("code", ""))
    if isinstance(outlet, QueueOutlet):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(outlet.drain(), 5)

"""The note-takers' capture socket, and the protocol helpers both websocket endpoints share.

(The viewers' socket is served by viewers.py, ahead of Starlette.) Both speak docs/protocol.md.
Frames to the client all go through one Outlet, so replies (acks, errors) and stream changes never
interleave mid-frame and stay in the order they were produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from liveblog.access.sockets import invite_key
from liveblog.capture.notes import Author
from liveblog.errors import Forbidden, LiveblogError, NotFound, Unauthorized, Unavailable
from liveblog.metrics import CAPTURE_SECONDS
from liveblog.models import Ack, Invite
from liveblog.services import Services
from liveblog.streams.hub import Outlet, ReloadRequired
from liveblog.streams.protocol import (
    REJECTED,
    SUBPROTOCOL,
    TOKEN_SUBPROTOCOL_PREFIX,
    CloseCode,
    Frame,
    decode_json,
    parse_seq,
)
from liveblog.web.outlets import QueueOutlet, fast_send
from liveblog.web.security import origin_allowed, trusted_origins

log = logging.getLogger(__name__)

# Capture messages accepted but not yet acknowledged, per socket. Beyond this the socket stops
# reading until acks go out: the client's outbox holds the rest, the server's memory does not.
MAX_IN_FLIGHT = 256


def _services(ws: WebSocket) -> Services:
    return ws.app.state.services


def error_message(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "error",
        "code": code,
        "message": message,
        **{k: v for k, v in extra.items() if v is not None},
    }


def parse_position(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    """`since` and `epoch` from a connection's query; ValueError says what is wrong."""
    raw_since = params.get("since")
    epoch = params.get("epoch") or None
    since = None
    if raw_since not in (None, ""):
        since = parse_seq(raw_since)
    if epoch is not None and (len(epoch) > 64 or not epoch.isalnum()):
        raise ValueError("epoch is not valid")
    return since, epoch


class _InvalidUTF8Filter(logging.Filter):
    """uvicorn logs every text frame that is not UTF-8 as an ERROR with a traceback (and closes
    the socket with 1007, as RFC 6455 says): anyone could fill the log that way. Count them
    instead (GET /api/v1/metrics) and note each at debug level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Invalid UTF-8 sequence received from client.":
            REJECTED["invalid_utf8"] += 1
            log.debug("a websocket sent a text frame that is not UTF-8: closed with 1007")
            return False
        return True


def quiet_invalid_utf8_frames() -> None:
    """Install the filter on uvicorn's logger once (it survives uvicorn's logging setup)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _InvalidUTF8Filter) for f in logger.filters):
        logger.addFilter(_InvalidUTF8Filter())


def _outlet(ws: WebSocket, services: Services) -> Outlet:
    limit = services.settings.streams.viewer_buffer_bytes
    fast = fast_send(ws.scope)
    if fast is not None:
        return fast.outlet(limit)

    async def close(code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await ws.close(code, reason)

    async def send(frame: Frame) -> None:
        await ws.send_text(frame.text)

    return QueueOutlet(send, close, limit)


async def _accept(ws: WebSocket) -> bool:
    """Refuse foreign origins at the handshake (HTTP 403); accept with our subprotocol if offered."""
    services = _services(ws)
    if not origin_allowed(ws.headers, trusted_origins(services.settings), ws.scope.get("scheme", "ws")):
        await ws.close(code=CloseCode.FORBIDDEN)
        return False
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    return True


async def _finish(
    ws: WebSocket, outlet: Outlet | None, code: int, message: dict[str, Any] | None = None
) -> None:
    """Say why (if there is something to say) and close, unless the outlet closed already."""
    if outlet is not None:
        if message is not None:
            outlet.write(Frame.of(message))
        outlet.close(code, message.get("code", "") if message else "")
        if isinstance(outlet, QueueOutlet):
            # Let the pump deliver the last frames and the close.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(outlet.drain(), 5)
    elif ws.application_state == WebSocketState.CONNECTED:
        if message is not None:
            await ws.send_text(json.dumps(message))
        await ws.close(code)


async def _receive_text(ws: WebSocket) -> str | None | bytes:
    """The next text message; None when the peer has gone, bytes for an (unsupported) binary one."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        return None
    if message.get("text") is not None:
        return str(message["text"])
    return bytes(message.get("bytes") or b"")


def reply(outlet: Outlet, message: dict[str, Any] | Frame) -> None:
    """Write a reply (ack, error, pong). Never dropped on an open socket: if the outlet refuses
    it (its buffer is full), the socket is closed with 4408, so the client resumes and resends
    whatever was not acknowledged."""
    frame = message if isinstance(message, Frame) else Frame.of(message)
    if not outlet.write(frame) and not outlet.closed:
        outlet.close(CloseCode.TOO_SLOW, "too slow: resume from your last seq")


def decode(raw: str | bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(message, None) for a JSON object; (None, error frame) for anything else, including JSON
    the server refuses to handle (too deep, lone surrogates, numbers out of range)."""
    if isinstance(raw, bytes):
        REJECTED["unsupported_binary"] += 1
        return None, error_message("unsupported_binary", "send JSON text frames, not binary")
    try:
        message = decode_json(raw)
    except LiveblogError as exc:
        return None, error_message(exc.code, exc.message, field=exc.field)
    if not isinstance(message, dict):
        REJECTED["invalid_json"] += 1
        return None, error_message("invalid_json", "a message is a JSON object")
    return message, None


async def capture_socket(ws: WebSocket) -> None:
    """A note-taker's connection: the same stream, plus note messages answered by acks."""
    services = _services(ws)
    if not await _accept(ws):
        return
    try:
        # One read for the session and the invite: joins come in bursts (a room reconnecting).
        _, invite = await services.accounts.capture_door(_token_from(ws), ws.path_params["session_id"])
    except NotFound:
        await _finish(
            ws, None, CloseCode.NOT_FOUND, error_message("unknown_session", "there is no such session")
        )
        return
    except (Unauthorized, Forbidden) as exc:
        code = CloseCode.UNAUTHORIZED if isinstance(exc, Unauthorized) else CloseCode.FORBIDDEN
        await _finish(ws, None, code, error_message(exc.code, exc.message))
        return
    await _serve(ws, invite)


def _token_from(ws: WebSocket) -> str | None:
    for proto in ws.scope.get("subprotocols") or []:
        if proto.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return str(proto[len(TOKEN_SUBPROTOCOL_PREFIX) :])
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


async def _serve(ws: WebSocket, invite: Invite) -> None:
    services = _services(ws)
    session_id = ws.path_params["session_id"]
    try:
        since, epoch = parse_position(ws.query_params)
    except ValueError as exc:
        await _finish(ws, None, CloseCode.BAD_REQUEST, error_message("bad_position", str(exc)))
        return
    outlet = _outlet(ws, services)
    hello = {"role": "note-taker", "you": {"name": invite.name, "invite": invite.id}}

    def revoked(reason: str) -> None:
        # Called by the access layer once the revocation is durable: say why, then close.
        if not outlet.closed:
            outlet.write(Frame.of(error_message("revoked", "your invite was revoked by the organiser")))
            outlet.close(CloseCode.REVOKED, reason)

    forget = services.accounts.sockets.register(invite_key(invite.id), revoked)
    try:
        async with services.hub.subscribe(
            session_id, outlet, since=since, epoch=epoch, note_taker=invite.name, hello=hello
        ):
            await _capture_loop(ws, outlet, services, session_id, Author.from_invite(invite))
    except ReloadRequired as reload:
        await _finish(
            ws,
            outlet,
            CloseCode.RELOAD,
            {
                "type": "reload",
                "code": "reload",
                "reason": reload.reason,
                "epoch": reload.epoch,
                "seq": reload.head,
            },
        )
        return
    except NotFound:
        await _finish(
            ws, outlet, CloseCode.NOT_FOUND, error_message("unknown_session", "there is no such session")
        )
        return
    finally:
        forget()
        if isinstance(outlet, QueueOutlet) and outlet.closed is False:
            await outlet.aclose()
    if not outlet.closed and ws.application_state == WebSocketState.CONNECTED:
        outlet.close(CloseCode.NORMAL)


async def _next_message(ws: WebSocket, outlet: Outlet) -> dict[str, Any] | None:
    """The next JSON object from the client; answers bad frames and pings itself.
    None when the peer has gone or the outlet was closed."""
    while not outlet.closed:
        raw = await _receive_text(ws)
        if raw is None or outlet.closed:  # gone, or closed (revoked) while this frame was in flight
            return None
        message, error = decode(raw)
        if message is None:
            reply(outlet, error or {})
        elif message.get("type") == "ping":
            reply(outlet, {"type": "pong"})
        else:
            return message
    return None


class _Acks:
    """A capture socket's messages in flight, answered in the order they came in (the writer
    commits them in that order too). Each write's future is answered by the writer after its
    commit; its done callback writes the ack, with no task per note or per socket. One timer per
    socket, re-armed only when it fires, bounds the wait for the oldest: past the database's
    write timeout the note-taker is told to resend (the write may still commit: the resend is
    then answered as a duplicate)."""

    def __init__(self, outlet: Outlet, timeout: float) -> None:
        self.outlet = outlet
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        # (client id, the write's future or the error that refused the message, started, deadline)
        self.entries: deque[tuple[str | None, asyncio.Future[Ack] | Exception, float, float]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.waiter: asyncio.Future[None] | None = None  # the reading side, waiting for room or the end
        self.closed = False

    def add(self, client_id: str | None, outcome: asyncio.Future[Ack] | Exception, started: float) -> None:
        self.entries.append((client_id, outcome, started, self.loop.time() + self.timeout))
        if isinstance(outcome, asyncio.Future):
            outcome.add_done_callback(self._done)
        if self.timer is None:
            self.timer = self.loop.call_at(self.entries[0][3], self._expire)
        self._flush()

    def _done(self, future: asyncio.Future[Ack]) -> None:
        if not future.cancelled():
            future.exception()  # retrieved: a write answered after its wait timed out logs nothing
        self._flush()

    def _flush(self) -> None:
        """Answer the oldest messages whose outcome is known, in order."""
        entries = self.entries
        while entries and not self.closed:
            client_id, outcome, started, _ = entries[0]
            if isinstance(outcome, asyncio.Future):
                if not outcome.done():
                    break
                if outcome.cancelled():
                    self._answer(client_id, asyncio.CancelledError(), started)
                elif outcome.exception() is not None:
                    self._answer(client_id, outcome.exception(), started)
                else:
                    self._answer(client_id, outcome.result(), started)
            else:
                self._answer(client_id, outcome, started)
            entries.popleft()
            self._wake()

    def _answer(self, client_id: str | None, outcome: Ack | BaseException | None, started: float) -> None:
        if isinstance(outcome, Ack):
            CAPTURE_SECONDS.observe(time.monotonic() - started)
            reply(self.outlet, outcome.to_wire())
        elif isinstance(outcome, LiveblogError):
            reply(
                self.outlet,
                error_message(outcome.code, outcome.message, client_id=client_id, field=outcome.field),
            )
        else:
            log.error("capture failed", exc_info=outcome)
            reply(
                self.outlet,
                error_message(
                    "internal", "the server failed to save this; send it again", client_id=client_id
                ),
            )

    def _expire(self) -> None:
        """The timer: the oldest messages past their deadline are answered as not committed in time."""
        self.timer = None
        now = self.loop.time()
        while self.entries and not self.closed and self.entries[0][3] <= now:
            client_id, _, started, _ = self.entries.popleft()
            self._answer(
                client_id, Unavailable("the database did not commit in time; try again shortly"), started
            )
            self._wake()
            self._flush()
        if self.entries and not self.closed:
            self.timer = self.loop.call_at(self.entries[0][3], self._expire)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def until(self, at_most: int) -> None:
        """Wait until at most `at_most` messages are unanswered (each is, by its deadline)."""
        async with asyncio.timeout(self.timeout + 5):
            while len(self.entries) > at_most and not self.closed:
                self.waiter = self.loop.create_future()
                await self.waiter

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


async def _capture_loop(
    ws: WebSocket, outlet: Outlet, services: Services, session_id: str, author: Author
) -> None:
    acks = _Acks(outlet, services.settings.database.write_timeout_seconds)
    try:
        while True:
            if len(acks.entries) >= MAX_IN_FLIGHT:
                await acks.until(MAX_IN_FLIGHT - 1)
            message = await _next_message(ws, outlet)
            if message is None:
                break
            cid = message.get("client_id") if isinstance(message.get("client_id"), str) else None
            started = time.monotonic()
            outcome: asyncio.Future[Ack] | Exception
            try:
                # Awaited in turn, so the writes queue in the order the messages came in; it
                # suspends only to render a long note or for room in the writer's queue.
                outcome = await services.notes.submit(session_id, author, message)
            except Exception as exc:
                outcome = exc
            acks.add(cid, outcome, started)
        # The peer went away: its writes are queued and commit anyway; answer what can be.
        with contextlib.suppress(TimeoutError):
            await acks.until(0)
    finally:
        acks.close()

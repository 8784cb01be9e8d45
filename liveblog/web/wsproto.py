"""Liveblog's own websocket protocol for uvicorn (`uvicorn.run(app, ws=FastWebSocketProtocol)`).

It speaks plain ASGI websockets to any app, and offers one extension in the scope,
`scope["extensions"]["liveblog.fast_send"]`: an object with a documented `write_frame`,
`closed`, `buffered`, `drain`, `close` and `hand_over` (`FastSend` below). With `hand_over` an
app that only answers what comes in (the viewers' socket) ends its task and keeps the connection:
an idle viewer then costs no task and no coroutine frames (docs/performance.md, memory). The hub writes each change's
websocket frame, encoded once for all viewers, straight to the connection's transport through
it. Because the extension travels in the scope, middleware that wraps `send` (tracing, error
reporting) leaves the fast path on. The only uvicorn contract used is the one for `ws=` classes:
the constructor's `config`, `server_state` and `app_state`, `shutdown()`, and the connection set.
Frames are parsed by websockets' documented sans-I/O `Protocol`, except whole pongs and text
frames, read in `data_received` while that parser is between frames (`_take_frames`;
docs/architecture.md, "Frames from the client"). The handshake uvicorn hands over (a request
its HTTP parser has already read) is checked and answered here when it is the plain kind every
browser sends; anything else goes to websockets' `ServerProtocol`, which answers it
(405, 426, 400...). A crowd reconnecting at once is mostly handshakes (docs/architecture.md,
"The accept and resume path").

It also owns two per-connection bounds (docs/protocol.md, "Slow and stalled connections"): the
socket's kernel send buffer is fixed (SO_SNDBUF), and a connection that has been sent data but
has not answered a ping within `streams.stall_seconds` is closed with 4408.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import logging
import os
import random
import socket
import struct
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote

from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import Side, State
from websockets.server import ServerProtocol
from websockets.utils import accept_key

try:  # websockets' C unmasking, as its own parser uses; the pure-Python one where it is not built
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

from liveblog.streams.hub import Outlet
from liveblog.streams.protocol import REJECTED, CloseCode, Frame, FrameBatch, ws_close_frame
from liveblog.streams.uring import LOST
from liveblog.web.memory import RELEASER

log = logging.getLogger(__name__)
access_log = logging.getLogger("uvicorn.error")  # where uvicorn's own websocket protocols log

FAST_SEND = "liveblog.fast_send"

# The kernel's send buffer per websocket (Linux doubles the value for its bookkeeping). Linux
# autotuning grows it to megabytes for a peer that stops reading; fixed, a stalled viewer costs
# at most this in the kernel plus `streams.viewer_buffer_bytes` in the process. 32 KiB is some
# 30 notes: plenty for a live stream, and replays are paced by `drain()` anyway.
SEND_BUFFER_BYTES = 32 * 1024
# An idle connection (nothing sent since its last pong) is still pinged this often, to find
# peers that vanished without a FIN. Busy connections are pinged every stall_seconds / 2.
IDLE_PING_SECONDS = 30.0
# How long a connection closing on a close frame we sent waits for the peer's reply (or, after a
# protocol error, for the peer to close) while reading on. Closing a socket with the peer's data
# unread makes the kernel send a reset, and a client still sending then loses the close frame.
CLOSE_TIMEOUT_SECONDS = 5.0
# On shutdown, a peer gets this long to take what is buffered for it and answer the 1012 (under
# uvicorn's timeout_graceful_shutdown, liveblog.cli.GRACEFUL_SECONDS).
SHUTDOWN_GRACE_SECONDS = 1.0
# Messages the app has not taken yet at which the connection stops reading (uvicorn stops at one).
# Two, so that an app waiting in receive() takes each message as it comes while the socket stays
# readable: pausing and resuming it for every message cost two epoll_ctl calls per note on the
# capture socket (docs/performance.md, "The note's own cost"). Memory stays bounded: two messages
# of at most ws_max_size, plus what one read held.
INBOX_MESSAGES = 2
_PING = b"\x89\x04"  # a ping frame with a 4-byte payload follows
_PING_PAYLOADS = random.Random()  # seeded from os.urandom once
# Frames from clients taken whole in data_received, without websockets' parser (see _take_frames):
# counted for the tests and benchmarks that check the fast path is taken.
FAST_FRAMES = {"pong": 0, "text": 0}


class FastSend(Protocol):
    """What `scope["extensions"]["liveblog.fast_send"]` offers (after `websocket.accept`)."""

    @property
    def closed(self) -> bool:
        """True once a close frame was sent or the connection is gone: writes are refused."""
        ...

    @property
    def buffered(self) -> int:
        """Bytes written but not yet handed to the kernel."""
        ...

    def write_frame(self, data: bytes) -> None:
        """Write complete, unmasked server frames (`streams.protocol.ws_text_frame`), one or several
        joined (`streams.protocol.FrameBatch`)."""
        ...

    def outlet(self, limit: int) -> Outlet:
        """This connection as the hub's outlet (`streams.hub.Outlet`): `write(frame)` and
        `write_batch(batch)` write their websocket bytes if the connection is open and at most
        `limit` bytes wait unsent before them, and return False otherwise (nothing written)."""
        ...

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark (or the socket is gone)."""
        ...

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame and close; the app's `receive()` then returns `websocket.disconnect`."""
        ...

    def hand_over(self, on_message: Callable[[dict[str, Any]], None]) -> None:
        """From now on every ASGI message for the app (`websocket.receive`, then one
        `websocket.disconnect`) is passed to `on_message` as it comes, those already waiting first,
        instead of to `receive()`; and the app returning no longer closes the connection. The
        callback must not block: it runs in the protocol's `data_received`."""
        ...


class FastWebSocketProtocol(asyncio.Protocol):
    __slots__ = (
        "config", "app", "loop", "app_state", "connections", "tasks", "default_headers",
        "transport", "conn", "response", "client", "path", "inbox", "waiter", "read_paused",
        "write_waiter", "handshake_complete", "close_sent", "disconnected", "close_timer",
        "ping_timer", "pong_payload", "sent_since_ping", "stall_seconds", "fragments", "fragment_text",
        "discarding", "on_message", "fd", "direct", "limit", "frame_left", "stash",
    )  # fmt: skip

    stalled_total = 0  # connections closed because they stopped answering pings (all instances)

    def __init__(
        self, config: Any, server_state: Any, app_state: dict[str, Any] | None = None, _loop: Any = None
    ) -> None:
        if not config.loaded:
            config.load()  # pragma: no cover
        self.config = config
        self.app = config.loaded_app
        self.loop: asyncio.AbstractEventLoop = _loop or asyncio.get_running_loop()
        self.app_state = app_state or {}
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        # websockets' frame parser, made when the handshake comes (_fast_handshake or ServerProtocol).
        self.conn: WsProtocol = None  # type: ignore[assignment]
        # The handshake's answer until the app accepts: Sec-WebSocket-Accept (a plain handshake
        # checked here) or websockets' Response.
        self.response: Any = None
        self.client: tuple[str, int] | None = None
        self.path = ""
        self.inbox: list[dict[str, Any]] = []  # rarely more than one: a list is ~600 bytes less than a deque
        self.on_message: Callable[[dict[str, Any]], None] | None = None  # see hand_over
        self.waiter: asyncio.Future[None] | None = None
        self.read_paused = False
        self.write_waiter: asyncio.Future[None] | None = None
        self.handshake_complete = False
        self.close_sent = False
        self.disconnected = False
        self.close_timer: asyncio.TimerHandle | None = None
        self.ping_timer: asyncio.TimerHandle | None = None
        # Our last ping's payload until its pong comes, then b"" (answered); None before any.
        self.pong_payload: bytes | None = None
        self.sent_since_ping = False  # data written since our last ping
        # uvicorn's ping interval is our stall budget: ping when busy every half, wait the other half.
        interval = config.ws_ping_interval
        self.stall_seconds: float | None = float(interval) * 2 if interval else None
        self.fragments: list[bytes] | None = None
        self.fragment_text = False
        self.discarding = False  # failed (1002, 1007, 1009): the peer's data is read and dropped
        # The socket's descriptor, for writing straight to it (see _write); -1 where that is not
        # safe (TLS, another event loop's transport). `direct` is True only while the transport
        # holds no unsent bytes and is not closing: bytes written to the socket then keep order.
        self.fd = -1
        self.direct = False
        self.limit = 0  # the byte bound on what waits unsent, as an outlet (see outlet)
        # Where websockets' parser is in the stream of frames from the client, followed through
        # every byte handed to it (_follow): bytes left until the next frame starts, and the start
        # of a frame header split across reads. Only at 0 with no stash is the parser between
        # frames with nothing buffered, and a whole frame may be taken without it (_take_frames).
        # -1: never again (the handshake was not the plain kind, or the connection is closing).
        self.frame_left = -1
        self.stash = b""

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            except OSError:  # pragma: no cover - not every platform allows it
                log.debug("could not set SO_SNDBUF", exc_info=True)
        if sock is not None and _plain_asyncio_transport(transport):
            self.fd = sock.fileno()
        peer = transport.get_extra_info("peername")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) and len(peer) >= 2 else None

    def connection_lost(self, exc: Exception | None) -> None:
        # asyncio has closed the socket: its descriptor's number may already name the next
        # connection's, so nothing more goes straight to it.
        self.direct = False
        self.fd = -1
        _break_transport_cycle(self.transport)
        self._stop_timers()
        self.connections.discard(self)
        if not self.disconnected:
            self.disconnected = True
            self._deliver({"type": "websocket.disconnect", "code": 1005 if self.handshake_complete else 1006})
        self.handshake_complete = True
        self._wake_writers()

    def eof_received(self) -> bool | None:
        self.direct = False  # the transport closes itself now
        return None  # close our side too

    def pause_writing(self) -> None:
        if self.write_waiter is None:
            self.write_waiter = self.loop.create_future()

    def resume_writing(self) -> None:
        self._wake_writers()

    def _wake_writers(self) -> None:
        waiter, self.write_waiter = self.write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return  # read, so that closing never finds it unread (see _fail_parsing)
        if self.conn is None:
            if self._fast_handshake(data):
                return
            # Not the plain handshake: websockets checks it, and answers what is wrong.
            self.conn = ServerProtocol(max_size=self.config.ws_max_size, logger=log)
        if self.frame_left >= 0:
            if not self.frame_left and not self.stash and self.fragments is None and not self.close_sent:
                taken = self._take_frames(data)
                if taken:
                    if taken == len(data):
                        return
                    data = data[taken:]
            self._follow(data)
        self.conn.receive_data(data)
        if self.conn.parser_exc is not None or self.conn.handshake_exc is not None:
            self.frame_left = -1
            if self.conn.close_rcvd is not None:
                self._closed_mid_message()
            else:
                self._fail_parsing()
            return
        for event in self.conn.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, WsFrame):
                self._frame(event)
        if self.close_sent or self.conn.state is not State.OPEN:
            self.frame_left = -1  # closing: websockets has the rest

    # -- uvicorn's side ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """uvicorn is stopping: close with 1012 (service restart) so clients come back."""
        if not self.handshake_complete:
            self._reject(HTTPStatus.SERVICE_UNAVAILABLE)
        else:
            # The close frame goes first, and the socket stays open, read, until the peer answers:
            # closed with its messages unread, the kernel would reset it and the 1012 be lost.
            self.close(CloseCode.SERVICE_RESTART)
        if not self.disconnected:
            # A peer that has stopped reading would hold the shutdown until uvicorn's deadline.
            self._stop_timers()
            self.close_timer = self.loop.call_later(SHUTDOWN_GRACE_SECONDS, self._reset)

    # -- handshake -----------------------------------------------------------------------------

    def _fast_handshake(self, data: bytes) -> bool:
        """The handshake a browser sends (one complete GET with Upgrade: websocket, Connection:
        Upgrade, version 13 and a 16-byte key), checked and opened without websockets' HTTP
        parser: uvicorn's own has already read it. False for anything else, untouched."""
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep or rest:
            return False
        try:
            lines = head.decode("ascii").split("\r\n")
        except UnicodeDecodeError:
            return False
        request_line = lines[0].split(" ")
        if len(request_line) != 3 or request_line[0] != "GET" or request_line[2] != "HTTP/1.1":
            return False
        key = version = None
        upgrade: list[str] = []
        connection: list[str] = []
        subprotocols: list[str] = []
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                return False
            name = name.strip().lower()
            value = value.strip()
            if name == "sec-websocket-key":
                if key is not None:
                    return False
                key = value
            elif name == "sec-websocket-version":
                if version is not None:
                    return False
                version = value
            elif name == "upgrade":
                upgrade.extend(t.strip().lower() for t in value.split(","))
            elif name == "connection":
                connection.extend(t.strip().lower() for t in value.split(","))
            elif name == "sec-websocket-protocol":
                subprotocols.extend(t.strip() for t in value.split(","))
            headers.append((name.encode(), value.encode()))
        if upgrade != ["websocket"] or "upgrade" not in connection or version != "13" or key is None:
            return False
        try:
            if len(base64.b64decode(key.encode(), validate=True)) != 16:
                return False
        except binascii.Error:
            return False
        self.conn = WsProtocol(Side.SERVER, state=State.OPEN, max_size=self.config.ws_max_size, logger=log)
        self.frame_left = 0  # the request was all of this read: the first frame starts the next one
        self.response = accept_key(key)
        self._open(request_line[1], headers, subprotocols)
        return True

    def _handshake(self, request: Request) -> None:
        assert isinstance(self.conn, ServerProtocol)
        response = self.conn.accept(request)
        if response.status_code != 101:
            self.close_sent = self.handshake_complete = True
            self.conn.send_response(response)
            self._flush_conn()
            self.transport.close()
            return
        self.response = response
        subprotocols = [
            token.strip()
            for header in request.headers.get_all("Sec-WebSocket-Protocol")
            for token in header.split(",")
        ]
        headers = [(k.lower().encode("ascii"), v.encode("latin-1")) for k, v in request.headers.raw_items()]
        self._open(request.path, headers, subprotocols)

    def _open(self, target: str, headers: list[tuple[bytes, bytes]], subprotocols: list[str]) -> None:
        """The handshake is valid: the app gets its scope and decides (accept or close)."""
        raw_path, _, query = target.partition("?")
        root = self.config.root_path
        self.path = root + unquote(raw_path)
        scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if self.transport.get_extra_info("sslcontext") else "ws",
            "server": _address(self.transport.get_extra_info("sockname")),
            "client": self.client,
            "root_path": root,
            "path": self.path,
            "raw_path": (root + raw_path).encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {FAST_SEND: self},
        }
        self._deliver({"type": "websocket.connect"})
        # The scope goes to the app and is not kept here: the app may drop it (and its headers).
        task = self.loop.create_task(self._run_asgi(scope))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_asgi(self, scope: dict[str, Any]) -> None:
        try:
            result = await self.app(scope, self.receive, self.send)
        except ConnectionError:
            pass
        except BaseException:
            access_log.exception("Exception in ASGI application\n")
            if not self.handshake_complete:
                self._reject(HTTPStatus.INTERNAL_SERVER_ERROR)
        else:
            if not self.handshake_complete:
                access_log.error("ASGI callable returned without completing handshake.")
                self._reject(HTTPStatus.INTERNAL_SERVER_ERROR)
            elif result is not None:  # pragma: no cover
                access_log.error("ASGI callable should return None, but returned '%s'.", result)
            elif self.on_message is not None:
                return  # handed over (hand_over): the connection lives on without the app's task
        if self.close_timer is None:
            self.direct = False
            self.transport.close()

    def _reject(self, status: HTTPStatus) -> None:
        if self.handshake_complete:
            return
        self.handshake_complete = self.close_sent = True
        if isinstance(self.conn, ServerProtocol):
            self.conn.send_response(self.conn.reject(status, ""))
            self._flush_conn()
        else:  # the plain handshake (or none yet): the same answer, written here
            self._write(
                f"HTTP/1.1 {status.value} {status.phrase}\r\nDate: {email.utils.formatdate(usegmt=True)}\r\n"
                "Connection: close\r\nContent-Length: 0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".encode()
            )
        self.transport.close()

    # -- ASGI ----------------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        while not self.inbox:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        message = self.inbox.pop(0)
        if self.read_paused and len(self.inbox) < INBOX_MESSAGES and not self.disconnected:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def _deliver(self, message: dict[str, Any]) -> None:
        handler = self.on_message
        if handler is not None:
            if message["type"] == "websocket.disconnect":
                self.on_message = None  # the last message it gets: exactly one disconnect
            handler(message)
            return
        self.inbox.append(message)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def send(self, message: dict[str, Any]) -> None:
        if self.write_waiter is not None:
            await asyncio.shield(self.write_waiter)
        if self.disconnected:
            raise ConnectionResetError("the websocket is closed")
        kind = message["type"]
        if not self.handshake_complete:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._deliver({"type": "websocket.disconnect", "code": 1006})
                access_log.info('%s - "WebSocket %s" 403', _client(self.client), self.path)
                self._reject(HTTPStatus.FORBIDDEN)
            else:
                raise RuntimeError(f"Expected 'websocket.accept' or 'websocket.close', got {kind!r}")
            return
        if self.close_sent:
            if kind in ("websocket.send", "websocket.close"):
                return  # after our close: nothing more goes out (the spec lets us ignore it)
            raise RuntimeError(f"Unexpected ASGI message {kind!r} after 'websocket.close'")
        if kind == "websocket.send":
            text = message.get("text")
            if text is not None:
                self.write_frame(_frame(0x81, text.encode()))
            else:
                self.write_frame(_frame(0x82, bytes(message.get("bytes") or b"")))
        elif kind == "websocket.close":
            self.close(int(message.get("code") or 1000), message.get("reason") or "")
        else:
            raise RuntimeError(f"Expected 'websocket.send' or 'websocket.close', got {kind!r}")

    def _accept(self, message: dict[str, Any]) -> None:
        access_log.info('%s - "WebSocket %s" [accepted]', _client(self.client), self.path)
        response, self.response = self.response, None  # the handshake is not kept once sent
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in [*self.default_headers, *message.get("headers", [])]
        ]
        if message.get("subprotocol"):
            headers.append(("Sec-WebSocket-Protocol", message["subprotocol"]))
        if self.transport.is_closing():
            return
        self.handshake_complete = True
        if isinstance(response, str):  # the plain handshake: its 101, written here
            lines = [
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                f"Sec-WebSocket-Accept: {response}",
                *(f"{name}: {value}" for name, value in headers),
            ]
            self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        else:
            assert isinstance(self.conn, ServerProtocol)
            del response.headers["Date"]
            response.headers.update(headers)
            self.conn.send_response(response)
            self._flush_conn()
        self._schedule_ping(IDLE_PING_SECONDS)

    # -- liveblog.fast_send (FastSend) ---------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.close_sent or self.disconnected or self.transport.is_closing()

    @property
    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def write_frame(self, data: bytes) -> None:
        if not self.sent_since_ping:
            self._busy()
        self._write(data)

    def outlet(self, limit: int) -> FastWebSocketProtocol:
        self.limit = limit
        return self

    def write(self, frame: Frame | FrameBatch) -> bool:
        """As the hub's outlet: the frame's (or the batch's) websocket bytes, unless the
        connection is closed or over `limit` bytes wait unsent (the bound is on the backlog
        before this frame, so memory stays under limit + one frame, and a single large note
        never trips a healthy viewer on a fresh, small-window socket)."""
        # The fan-out calls this once per viewer per change, so the usual case (the transport
        # holds nothing: `direct`) reads only this object's own slots and makes one system call.
        # Otherwise the transport is asked, as before: closing, or over the limit, is a refusal.
        data = frame.ws_bytes
        if not self.direct or self.close_sent or self.disconnected:
            if self.close_sent or self.disconnected:
                return False
            transport = self.transport
            if transport.is_closing():
                return False
            backlog = transport.get_write_buffer_size()
            if backlog > self.limit:
                return False
            if not backlog and self.fd >= 0 and self.handshake_complete:
                self.direct = True
        if not self.sent_since_ping:
            self._busy()
        if self.direct:  # _write's usual case, inline: this runs once per viewer per change
            try:
                sent = os.write(self.fd, data)
            except OSError:  # would block, or the peer is gone: as in _write
                sent = 0
            if sent == len(data):
                return True
            data = data[sent:]
            self.direct = False
        self.transport.write(data)
        return True

    write_batch = write  # a FrameBatch's frames joined: one write (one syscall) for a burst

    def direct_fd(self) -> int:
        """The socket's descriptor if the next frame may go straight to it, else -1 (then
        `write`). The hub's send ring (streams/uring.py) writes a pass's frame to all such sockets
        with one system call and reports each one's result to `direct_rest`."""
        if not self.direct or self.close_sent or self.disconnected:
            return -1
        if not self.sent_since_ping:
            self._busy()
        return self.fd

    def direct_rest(self, data: bytes, sent: int) -> bool:
        """After the send ring wrote `data` to this socket: what the kernel did not take goes to
        the transport, as after a short write in `write` (an error there: the transport meets it
        too and closes). False when what reached the socket is unknown (the ring broke): the
        connection is aborted, and the viewer resumes from its last seq."""
        if sent == len(data):
            return True
        self.direct = False
        if sent == LOST:
            self.close_sent = True
            self.transport.abort()
            return False
        self.transport.write(data[sent:] if sent > 0 else data)
        return True

    def _write(self, data: bytes) -> None:
        """Bytes to the peer, in order. While the transport holds nothing (`direct`) they go
        straight to the socket: one system call, none of the transport's Python (a fan-out to
        5,000 viewers is 5,000 of these). What the kernel does not take goes to the transport,
        which writes it when the socket can take more and pauses the writers (`drain`) past its
        high-water mark, as before; and until it is empty again, everything goes behind it."""
        if self.direct and not self.close_sent:
            try:
                sent = os.write(self.fd, data)
            except OSError:
                # It would block (the kernel's buffer is full), or the peer is gone (reset,
                # broken pipe): then the transport's own write meets the same error and closes
                # the connection as asyncio does (connection_lost follows).
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        self.direct = False
        self.transport.write(data)

    def _busy(self) -> None:
        """The first write since our last ping: probe sooner (see _ping)."""
        self.sent_since_ping = True
        if self.stall_seconds is None or not self.handshake_complete:
            return
        # The timer already fires within half the budget after a ping (see _ping); an idle
        # connection's probe is further away: bring it forward.
        timer, soon = self.ping_timer, self.stall_seconds / 2
        if timer is None or timer.when() > self.loop.time() + soon:
            self._schedule_ping(soon)

    async def drain(self) -> None:
        if self.write_waiter is not None:
            await asyncio.shield(self.write_waiter)

    def hand_over(self, on_message: Callable[[dict[str, Any]], None]) -> None:
        waiting, self.inbox = self.inbox, []
        self.on_message = on_message
        for message in waiting:
            on_message(message)
        if self.read_paused and not self.disconnected:
            self.read_paused = False
            self.transport.resume_reading()

    def close(self, code: int, reason: str = "") -> None:
        if self.close_sent or self.disconnected:
            return
        self.close_sent = True
        self._stop_timers()
        self._deliver({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._write(ws_close_frame(code, reason))
        if self.read_paused:  # read on, so that the peer's closing reply is seen
            self.read_paused = False
            self.transport.resume_reading()
        # The peer gets this long to take the close frame and reply; then the socket is cut.
        self.close_timer = self.loop.call_later(CLOSE_TIMEOUT_SECONDS, self._reset)

    # -- frames from the peer ------------------------------------------------------------------

    def _take_frames(self, data: bytes) -> int:
        """Whole pongs and text frames at the start of `data`, taken here as websockets' parser
        would take them, without it: its generator, its buffer and its Frame objects cost more
        than the frame (1,250 pongs a second at 5,000 busy viewers; a note-taker's every
        message). Called only while that parser is between frames with nothing buffered, and
        outside a fragmented message (where websockets' size limit is what the message has left).
        Taken: masked, FIN, no reserved bits, all in `data`, within the size limit; a pong of at
        most 125 bytes; a text frame with a 7- or 16-bit length. Anything else stops here, and
        it and all after it go to websockets, in order. Returns the bytes taken."""
        pos, size = 0, len(data)
        limit = self.config.ws_max_size  # websockets' max_size (_fast_handshake)
        while pos + 6 <= size and not self.close_sent:
            first, length = data[pos], data[pos + 1] ^ 0x80  # the mask bit set: 0-127
            if length < 126:
                start = pos + 6
            elif length == 126 and first == 0x81 and pos + 8 <= size:
                length, start = int.from_bytes(data[pos + 2 : pos + 4], "big"), pos + 8
            else:  # unmasked (websockets answers 1002), a 64-bit length, or a split header
                break
            end = start + length
            if end > size or (limit is not None and length > limit):
                break  # split across reads, or too big: websockets waits, or answers 1009
            if first == 0x8A:  # a pong
                FAST_FRAMES["pong"] += 1
                if (
                    self.pong_payload
                    and apply_mask(data[start:end], data[start - 4 : start]) == self.pong_payload
                ):
                    self.pong_payload = b""  # answered; the ping's timer decides what comes next (_ping)
            elif first == 0x81:  # a whole text message
                FAST_FRAMES["text"] += 1
                self.fragment_text = True
                self._message(apply_mask(data[start:end], data[start - 4 : start]))
            else:
                break
            pos = end
        return pos

    def _follow(self, data: bytes) -> None:
        """Walk the frame headers in `data`, which goes to websockets' parser next, so that
        `frame_left` and `stash` say where that parser will be once it has read it: the same
        header rules (2 bytes, a 16- or 64-bit length, a 4-byte mask), whatever the frame."""
        left, size = self.frame_left, len(data)
        if left >= size:
            self.frame_left = left - size
            return
        if self.stash:  # (left is 0) a header split across reads: its start, then this read
            data, size = self.stash + data, len(self.stash) + size
        pos = left
        while size - pos >= 2:
            length = data[pos + 1] & 0x7F
            head = (
                pos + (6 if data[pos + 1] & 0x80 else 2) + (2 if length == 126 else 8 if length == 127 else 0)
            )
            if head > size:
                break
            if length == 126:
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            elif length == 127:
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            pos = head + length
            if pos >= size:
                self.frame_left, self.stash = pos - size, b""
                return
        self.frame_left, self.stash = 0, data[pos:]

    def _frame(self, frame: WsFrame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self.fragment_text = opcode is Opcode.TEXT
            if frame.fin:
                self._message(bytes(frame.data))
            else:
                self.fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT:
            if self.fragments is not None:
                self.fragments.append(bytes(frame.data))
                if frame.fin:
                    data, self.fragments = b"".join(self.fragments), None
                    self._message(data)
        elif opcode is Opcode.PING:
            if not self.close_sent:
                self._flush_conn()  # websockets queued the pong
        elif opcode is Opcode.PONG:
            if self.pong_payload and bytes(frame.data) == self.pong_payload:
                self.pong_payload = b""  # answered; the ping's timer decides what comes next (_ping)
        elif opcode is Opcode.CLOSE:
            if self.close_sent:  # the peer answered our close: done
                self.transport.close()
                return
            rcvd = self.conn.close_rcvd
            self._deliver(
                {
                    "type": "websocket.disconnect",
                    "code": rcvd.code if rcvd else 1005,
                    "reason": rcvd.reason if rcvd else "",
                }
            )
            self.close_sent = True
            self._stop_timers()
            self._flush_conn()  # websockets queued the closing reply
            self.transport.close()

    def _message(self, data: bytes) -> None:
        if self.close_sent:
            return  # past our close: discard, keep reading for the peer's reply
        if self.fragment_text:
            try:
                text = data.decode()
            except UnicodeDecodeError:
                REJECTED["invalid_utf8"] += 1
                log.debug("invalid UTF-8 in a text frame")
                self.close(1007, "invalid UTF-8")
                return
            self._deliver({"type": "websocket.receive", "text": text})
        else:
            self._deliver({"type": "websocket.receive", "bytes": data})
        # Stop reading while the app has INBOX_MESSAGES messages it has not taken.
        if not self.read_paused and self.on_message is None and len(self.inbox) >= INBOX_MESSAGES:
            self.read_paused = True
            self.transport.pause_reading()

    def _flush_conn(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self._write(b"".join(data))

    def _closed_mid_message(self) -> None:
        """The peer's close came between the fragments of a message, which RFC 6455 (5.4) allows:
        websockets fails that with 1002 ("incomplete fragmented message"); answer it as any close,
        echoing its code (Autobahn case 7.1.5). Its queued 1002 is dropped."""
        rcvd = self.conn.close_rcvd
        assert rcvd is not None
        self.conn.data_to_send()
        if not self.close_sent:
            self._deliver({"type": "websocket.disconnect", "code": rcvd.code, "reason": rcvd.reason})
            self.close_sent = True
            self._write(b"\x88\x00" if rcvd.code == 1005 else ws_close_frame(rcvd.code))
        self._stop_timers()
        self.transport.close()

    def _fail_parsing(self) -> None:
        """A protocol error (or a bad handshake): websockets queued the answer; send it and close."""
        if not self.handshake_complete:
            self.handshake_complete = self.close_sent = True
            self._flush_conn()
            self.transport.close()
            return
        sent = self.conn.close_sent
        if sent is not None and sent.code == 1007:  # a text frame that is not UTF-8: counted, not logged
            REJECTED["invalid_utf8"] += 1
            log.debug("invalid UTF-8 in a text frame: closed with 1007")
        if not self.close_sent:
            self._deliver({"type": "websocket.disconnect", "code": sent.code if sent else 1002, "reason": ""})
        self.close_sent = True
        self._stop_timers()
        self._flush_conn()  # the close frame
        # Then our end of the stream, but read on, dropping what comes, until the peer ends its
        # own (eof_received) or the timeout: a peer still sending (the rest of an oversized
        # message) would otherwise get a reset, and lose the close frame with it.
        self.discarding = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(CLOSE_TIMEOUT_SECONDS, self._reset)

    # -- pings: keepalive and stall detection ----------------------------------------------------

    def _schedule_ping(self, delay: float) -> None:
        if self.ping_timer is not None:
            self.ping_timer.cancel()
        self.ping_timer = self.loop.call_later(delay, self._ping)

    def _ping(self) -> None:
        """One timer per connection, set once per ping, never moved by a pong: it fires half the
        stall budget after each ping. Unanswered: the peer has stopped reading. Answered, and
        data sent since: ping again (so a busy connection is pinged every stall_seconds / 2,
        and one that stops reading is closed within stall_seconds of the first frame it did
        not take). Answered and nothing sent: probe again after IDLE_PING_SECONDS. At 5,000
        busy viewers that is 1,250 timers a second fewer to cancel and set than when each pong
        moved the timer (docs/performance.md, issue 22)."""
        self.ping_timer = None
        if self.closed:
            return
        payload = self.pong_payload
        if payload:  # no pong within the budget
            self._stalled()
            return
        if payload is not None and not self.sent_since_ping:
            self.pong_payload = None  # answered, idle since: the idle probe comes later
            self.ping_timer = self.loop.call_later(IDLE_PING_SECONDS, self._ping)
            return
        # Only matched against the pong: no secret, so no system call (os.urandom) per ping. A
        # peer that answers pings it never read gains nothing: what it does not read fills its
        # send buffer and the viewer is dropped as too slow all the same.
        self.pong_payload = _PING_PAYLOADS.getrandbits(32).to_bytes(4, "big")
        self.sent_since_ping = False
        self._write(_PING + self.pong_payload)
        busy = self.stall_seconds / 2 if self.stall_seconds else IDLE_PING_SECONDS
        self.ping_timer = self.loop.call_later(busy, self._ping)

    def _stalled(self) -> None:
        """Sent data, pinged, no pong in time: the peer has stopped reading (or is gone)."""
        FastWebSocketProtocol.stalled_total += 1
        log.info("closing a websocket that stopped reading (%s bytes unsent)", self.buffered)
        self.close(CloseCode.TOO_SLOW, "too slow: resume from your last seq")
        # It will not read the close frame either: free its buffers now (the peer sees a reset).
        self._reset()

    def _reset(self) -> None:
        """Cut the connection with a TCP reset, dropping what is buffered in the process *and* in
        the kernel. `transport.abort()` alone drops only the process's buffer: the kernel would
        keep the socket (orphaned, up to SO_SNDBUF of unsent data) and end it with a FIN once
        the peer read again, so the peer saw a clean end of stream after a cut-off frame."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:  # linger on, timeout 0: close() sends RST and discards the send queue
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:  # pragma: no cover - already closed
                pass
        dropped = self.buffered
        self.transport.abort()
        RELEASER.dropped(dropped, self.loop.call_later)  # a wave of these: give the memory back

    def _stop_timers(self) -> None:
        if self.ping_timer is not None:
            self.ping_timer.cancel()
            self.ping_timer = None
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None


def _plain_asyncio_transport(transport: asyncio.BaseTransport) -> bool:
    """True for asyncio's own plain TCP transport, whose buffer is the only place bytes wait
    before the socket: writing straight to the socket while that buffer is empty keeps the
    stream in order. Not for TLS (the socket carries ciphertext) nor other loops' transports."""
    return (
        type(transport).__module__ == "asyncio.selector_events"
        and transport.get_extra_info("sslcontext") is None
    )


def _break_transport_cycle(transport: asyncio.BaseTransport | None) -> None:
    """Let a closed connection's transport be freed by reference counting, as it closes.

    Python 3.11's selector transport keeps a bound method of itself (`_read_ready_cb`), so every
    transport is a reference cycle (python/cpython#100348, cleared on close() from 3.12). A
    viewer connected for a minute has by then been moved to the collector's oldest generation,
    which is only collected once the objects moved there since the last full pass number a
    quarter of those that survived it (some 100,000 after start-up): the soak's closed
    connections piled up there, about 2 KiB each, for minutes at a time, and the memory of the
    objects freed then was kept in pymalloc's arenas (docs/performance.md, "Soak: closed
    connections waiting for the collector").
    Called from connection_lost: the transport has stopped reading and will not call it again.
    Transports without the attribute (uvloop's, later Pythons' once closed) are left alone."""
    if transport is not None and getattr(transport, "_read_ready_cb", None) is not None:
        transport._read_ready_cb = None  # type: ignore[attr-defined]


def _frame(first: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", first, n) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


def _address(value: Any) -> tuple[str, int] | None:
    return (str(value[0]), int(value[1])) if isinstance(value, tuple) and len(value) >= 2 else None


def _client(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else ""

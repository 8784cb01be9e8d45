"""Outlets: how the hub's frames reach a websocket or an SSE response.

`TransportOutlet` is the fast path under uvicorn's websockets-sansio protocol: the frame's bytes,
encoded once for all viewers, go straight to the connection's transport, whose unsent bytes are
the viewer's bounded buffer. `QueueOutlet` is the portable path for any ASGI server (and the
test client): a bounded queue drained by one task per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from liveblog.streams.protocol import Frame, ws_close_frame

log = logging.getLogger(__name__)

try:  # the fast path needs uvicorn's sans-I/O websocket protocol; without it we fall back
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

# How long a closing slow viewer gets to take its close frame before the socket is cut.
CLOSE_GRACE_SECONDS = 5.0

SCOPE_KEY = "liveblog.ws_protocol"


class TransportOutlet:
    def __init__(self, proto: Any, limit: int) -> None:
        self.proto = proto
        self.transport: asyncio.WriteTransport = proto.transport
        self.limit = limit
        self._closed = False

    @property
    def closed(self) -> bool:
        if not self._closed and (self.proto.close_sent or self.proto.disconnected or self.transport.is_closing()):
            self._closed = True
        return self._closed

    def write(self, frame: Frame) -> bool:
        if self.closed:
            return False
        # The bound is on the backlog before this frame, so memory stays under limit + one frame
        # and a single large note never trips a healthy viewer on a fresh (small-window) socket.
        if self.transport.get_write_buffer_size() > self.limit:
            return False
        self.transport.write(frame.ws_bytes)
        return True

    async def drain(self) -> None:
        if not self.closed:
            await self.proto.writable.wait()

    def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self._closed = True
        # Written past the limit on purpose: one small frame so the viewer learns why.
        self.proto.close_sent = True
        self.transport.write(ws_close_frame(code, reason))
        self.transport.close()  # flushes what is buffered, then closes
        transport = self.transport
        asyncio.get_running_loop().call_later(CLOSE_GRACE_SECONDS, transport.abort)


class QueueOutlet:
    """A bounded queue of frames (by bytes) sent by one pump task through an async `send`."""

    def __init__(self, send: Callable[[Frame], Awaitable[None]], close: Callable[[int, str], Awaitable[None]], limit: int) -> None:
        self._send = send
        self._close = close
        self.limit = limit
        self.queue: deque[Frame] = deque()
        self.queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._closed = False
        self._close_with: tuple[int, str] | None = None
        self._task = asyncio.create_task(self._pump())

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, frame: Frame) -> bool:
        if self._closed:
            return False
        if self.queued_bytes > self.limit:  # same rule as TransportOutlet
            return False
        self.queue.append(frame)
        self.queued_bytes += len(frame.text)
        self._empty.clear()
        self._wakeup.set()
        return True

    async def drain(self) -> None:
        if not self._closed:
            await self._empty.wait()

    def close(self, code: int, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self.queue.clear()
        self._close_with = (code, reason)
        self._wakeup.set()

    async def _pump(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self.queue:
                    frame = self.queue.popleft()
                    self.queued_bytes -= len(frame.text)
                    await self._send(frame)
                self._empty.set()
                if self._close_with is not None:
                    await self._close(*self._close_with)
                    return
        except Exception:  # the peer has gone: nothing more can be sent
            log.debug("outlet pump stopped", exc_info=True)
            self._closed = True
            self._empty.set()

    async def aclose(self) -> None:
        self._closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

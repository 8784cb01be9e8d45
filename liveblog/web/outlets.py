"""Outlets: how the hub's frames reach a websocket or an SSE response.

The fast path, under Liveblog's own websocket protocol for uvicorn (liveblog/web/wsproto.py), is
the connection itself (`fast_send(scope).outlet(limit)`): the frame's bytes, encoded once for
all viewers, go straight to its socket, and the transport's unsent bytes are the viewer's bounded
buffer. `QueueOutlet` is the portable path for any ASGI server (and the test client): a bounded
queue drained by one task per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from liveblog.streams.protocol import Frame, FrameBatch
from liveblog.web.wsproto import FAST_SEND, FastSend

log = logging.getLogger(__name__)


class QueueOutlet:
    """A bounded queue of frames (by bytes) sent by one pump task through an async `send`."""

    def __init__(
        self,
        send: Callable[[Frame], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        limit: int,
    ) -> None:
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
        if self.queued_bytes > self.limit:  # same rule as the fast path (FastWebSocketProtocol.write)
            return False
        self.queue.append(frame)
        self.queued_bytes += len(frame.text)
        self._empty.clear()
        self._wakeup.set()
        return True

    def write_batch(self, batch: FrameBatch) -> bool:
        if self._closed or self.queued_bytes > self.limit:
            return False
        self.queue.extend(batch.frames)
        self.queued_bytes += batch.size
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


def fast_send(scope: Mapping[str, Any]) -> FastSend | None:
    """The server's `liveblog.fast_send` extension, if it offers one."""
    extensions = scope.get("extensions") or {}
    fast: FastSend | None = extensions.get(FAST_SEND)
    return fast

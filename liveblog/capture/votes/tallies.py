"""The tally coalescer: a burst of votes becomes a few tally changes in the stream, the last one exact."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING

from liveblog.storage import Tx

if TYPE_CHECKING:
    from liveblog.capture.votes.service import Audience

from liveblog.capture.votes.common import _epoch

log = logging.getLogger(__name__)

# How often the coalescer drops stale flood/IP counters when nothing else wakes it.
HOUSEKEEPING_SECONDS = 30.0

# -- the coalescer -----------------------------------------------------------------------------


class TallyCoalescer:
    """One task for all polls: a per-poll (per-question) dirty flag, flushed at most once per
    interval each, first flush at once after a quiet spell; and the poll close deadlines."""

    def __init__(self, audience: Audience, interval_ms: int) -> None:
        self.audience = audience
        self.interval = max(interval_ms, 0) / 1000
        self._dirty: set[tuple[str, int]] = set()
        self._last: dict[tuple[str, int], float] = {}
        self._deadlines: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0  # write transactions made, for tests and the benchmark

    def mark(self, kind: str, item_id: int) -> None:
        self._dirty.add((kind, item_id))
        self._wake.set()

    def set_deadline(self, poll_id: int, closes_at: str | None) -> None:
        if closes_at is None:
            self._deadlines.pop(poll_id, None)
        else:
            self._deadlines[poll_id] = _epoch(closes_at)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="liveblog-tally-coalescer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._dirty:  # what voters were told is counted reaches the stream before we close
            try:
                await self._flush(list(self._dirty), [], claim=False)
            except Exception:  # the votes themselves are stored; only the last tally change is missing
                log.exception("writing the last tallies at shutdown failed")

    async def flush_now(self) -> None:
        """Write every pending tally at once (e.g. before a snapshot that must show them)."""
        if self._dirty:
            await self._flush(list(self._dirty), [])

    async def run(self) -> None:
        """Flush tallies and close due polls forever (run under the service supervisor)."""
        last_housekeeping = time.monotonic()
        while True:
            self._wake.clear()
            now = time.monotonic()
            due = [k for k in self._dirty if now - self._last.get(k, -math.inf) >= self.interval]
            wall = time.time()
            closing = [p for p, t in self._deadlines.items() if t <= wall]
            if due or closing:
                try:
                    await self._flush(due, closing)
                except Exception:
                    log.exception("writing tallies failed; retrying after the interval")
                    self._dirty.update(due)
                    for poll_id in closing:  # still to close: due at once on the retry
                        self._deadlines.setdefault(poll_id, wall)
                    for key in due:
                        self._last[key] = time.monotonic()
                    await asyncio.sleep(max(self.interval, 0.05))
                continue
            if now - last_housekeeping > HOUSEKEEPING_SECONDS:
                last_housekeeping = now
                self.audience.housekeeping()
                self._last = {
                    k: t for k, t in self._last.items() if now - t < self.interval or k in self._dirty
                }
            waits = [self._last[k] + self.interval - now for k in self._dirty]
            waits += [t - wall for t in self._deadlines.values()]
            timeout = max(0.0, min(waits, default=HOUSEKEEPING_SECONDS))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _claimed(
        self, due: list[tuple[str, int]], closing: list[int]
    ) -> tuple[list[tuple[str, int]], list[int]]:
        """With several processes: only the tallies this process may write in this interval (one
        writer per poll per interval across processes; a poll claimed elsewhere stays dirty here
        and is written in a later interval if still needed, so the last tally is always exact)."""
        shared = self.audience.flood.shared
        if not shared.available:
            return due, closing
        mine = []
        for kind, item_id in due:
            if await shared.claim(f"tally:{kind}:{item_id}", self.interval) is False:
                self._dirty.add((kind, item_id))
                self._last[(kind, item_id)] = time.monotonic()
            else:
                mine.append((kind, item_id))
        closers = [p for p in closing if await shared.claim(f"close:{p}", 10.0) is not False]
        return mine, closers

    async def _flush(self, due: list[tuple[str, int]], closing: list[int], *, claim: bool = True) -> None:
        audience = self.audience
        # At shutdown (claim=False) this process writes what it counted whatever the others do.
        due, closing_mine = await self._claimed(due, closing) if claim else (due, closing)
        for poll_id in closing:
            if poll_id not in closing_mine:
                self._deadlines.pop(poll_id, None)  # another process closes it
        closing = closing_mine
        if not due and not closing:
            return

        # Cleared before the write is queued, on the event loop (ops run in the writer thread and
        # must not touch loop state): a vote committed after this point marks its poll again,
        # and the tally this write computes includes every vote committed before it.
        now = time.monotonic()
        for key in due:
            self._dirty.discard(key)
            self._last[key] = now
        for poll_id in closing:
            self._deadlines.pop(poll_id, None)

        async def op(tx: Tx) -> None:
            for kind, item_id in due:
                if kind == "poll":
                    await audience._write_tally(tx, item_id)
                else:
                    await audience._write_upvotes(tx, item_id)
            for poll_id in closing:
                await audience._auto_close(tx, poll_id)

        self.flushes += 1
        await audience.db.write(op)

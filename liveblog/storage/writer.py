"""What both stores share: the queue of write ops with backpressure, the supervised loop that
takes them in batches, what follows a commit (changes published in order, after-commit
callbacks, callers answered), and reads' timeout. A store subclasses `GroupCommitWriter` and
supplies `_run_batch`, how one batch runs in one transaction on its database (the SQLite writer
thread, or awaited statements on PostgreSQL), ending in `_settle`; and `_snapshot`, a unit in one
read-only snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from liveblog.errors import Unavailable
from liveblog.metrics import COMMIT_SECONDS
from liveblog.models import Change
from liveblog.storage.interface import Op

log = logging.getLogger(__name__)
T = TypeVar("T")

# Writes waiting for the writer at most. Past this, callers wait for room (backpressure)
# instead of growing memory: ~10 s of writes at the measured ~2,000 ops/s. A semaphore, not a
# bounded queue: its waiters are served strictly in order (Python >= 3.11.1), so one socket's
# note.create and a following note.update can never swap places.
MAX_QUEUED = 20_000

# Ops taken into one transaction at most. Large enough to amortise the fsync under a burst,
# small enough that one transaction never holds the write lock for long (~ms).
MAX_BATCH = 64


@dataclass
class Job:
    op: Op[Any]
    future: asyncio.Future[Any]
    queued: float = field(default_factory=time.monotonic)


# What `_run_batch` gives `_settle` for each op: (ok, result or exception, its unit), where a
# unit has `changes` (to publish) and `after_commit` (callbacks).
Outcome = tuple[bool, Any, Any]


class GroupCommitWriter:
    """One writer task per process: `write(op)` queues, the task commits batches of ops."""

    def __init__(self, write_timeout: float, read_timeout: float, pool_sizes: dict[str, int]) -> None:
        self.write_timeout = write_timeout
        self.read_timeout = read_timeout
        self.pool_sizes = pool_sizes  # readers per pool: "live" (streams, capture), "pages"
        self.on_commit: Callable[[list[Change]], None] = lambda changes: None
        self._jobs: asyncio.Queue[Job | None] = asyncio.Queue()
        self._room = asyncio.Semaphore(MAX_QUEUED)
        self._closing = False
        self._writer_task: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed, for the benchmark and tests
        self.writer_failures = 0  # times the writer loop itself failed and was restarted
        self.last_writer_error: str | None = None

    def _start_writer(self, name: str) -> None:
        self._writer_task = asyncio.create_task(self._supervised_writer(), name=name)

    async def _stop_writer(self) -> None:
        self._closing = True
        if self._writer_task is not None:
            self._jobs.put_nowait(None)  # finish queued work first, then stop
            await self._writer_task
            self._writer_task = None

    async def read(
        self, fn: Callable[[Any], Awaitable[T]], *, timeout: float | None = None, pool: str = "live"
    ) -> T:
        """Run fn(unit) in one consistent read snapshot, within the read timeout."""
        try:
            async with asyncio.timeout(timeout if timeout is not None else self.read_timeout):
                async with self._snapshot(pool) as unit:
                    return await fn(unit)
        except TimeoutError:
            raise Unavailable("the database did not answer in time; try again shortly") from None

    def _snapshot(self, pool: str) -> AbstractAsyncContextManager[Any]:
        """A unit in one read-only snapshot, on a connection of `pool` ("live" or "pages")."""
        raise NotImplementedError

    @property
    def healthy(self) -> bool:
        """False once the writer has stopped for good (closed, or not running)."""
        return self._writer_task is not None and not self._writer_task.done()

    @property
    def queue_depth(self) -> int:
        """Writes waiting for the writer (not yet in a transaction)."""
        return self._jobs.qsize()

    async def write(self, op: Op[T], *, timeout: float | None = None) -> T:
        """Run op in a write transaction; returns once it is committed (and its changes published).

        Past the timeout the caller gets Unavailable, but the op stays queued and may still
        commit (it cannot be taken back safely once queued)."""
        try:
            async with asyncio.timeout(timeout if timeout is not None else self.write_timeout):
                # A caller that goes away (a dropped websocket) cancels only its wait: the op,
                # once queued, runs and commits; its cancelled future is then left unanswered.
                return await (await self.enqueue(op))
        except TimeoutError:
            raise Unavailable("the database did not commit in time; try again shortly") from None

    async def enqueue(self, op: Op[T], *, timeout: float | None = None) -> asyncio.Future[T]:
        """Queue op and return its future, answered once it is committed (and its changes
        published) or has failed. Suspends only while the queue is full (backpressure), for at
        most the write timeout; the caller bounds its own wait for the future. Capture uses this
        to keep no task per note (docs/performance.md, "The note's own cost")."""
        if self._writer_task is None or self._writer_task.done():
            raise Unavailable("the database writer is not running")
        if self._room.locked():
            try:
                async with asyncio.timeout(timeout if timeout is not None else self.write_timeout):
                    await self._room.acquire()
            except TimeoutError:
                raise Unavailable("the database did not commit in time; try again shortly") from None
        else:
            await self._room.acquire()  # there is room: returns without suspending
        if self._closing:  # queued behind the stop marker, it would never run: refuse instead
            self._room.release()
            raise Unavailable("the database is closing")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait(Job(op, future))
        return future

    async def _supervised_writer(self) -> None:
        """Run the write loop; if it fails (a bug, never an op's own error), log it, fail the
        jobs it held, and start again after a short back-off, so no caller waits forever."""
        backoff = 0.05
        while True:
            try:
                await self._write_loop()
                return
            except Exception as exc:
                self.writer_failures += 1
                self.last_writer_error = f"{type(exc).__name__}: {exc}"
                log.exception("database writer failed; restarting in %.2fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            job = await self._jobs.get()
            if job is None:
                break
            batch = [job]
            while len(batch) < MAX_BATCH and not self._jobs.empty():
                nxt = self._jobs.get_nowait()
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            for _ in batch:
                self._room.release()
            try:
                await self._run_batch(batch)
            except Exception:
                # Whatever happened, nobody waits forever: the batch's callers get a clear error
                # (a capture client resends with the same client id, answered as a duplicate if
                # the batch did commit).
                for j in batch:
                    if not j.future.done():
                        j.future.set_exception(Unavailable("the database writer failed; try again"))
                raise

    async def _run_batch(self, batch: list[Job]) -> None:
        """Run the batch's ops in one transaction, then `_settle`; or fail every job."""
        raise NotImplementedError

    def _fail(self, batch: list[Job], error: Exception) -> None:
        """Nothing of the batch was committed: every caller gets `error`."""
        for job in batch:
            if not job.future.done():
                job.future.set_exception(error)

    def _settle(self, batch: list[Job], done: list[Outcome]) -> None:
        """After COMMIT: publish the committed ops' changes in order, run each op's callbacks,
        then answer each caller in order (an op that failed gets its exception).

        The changes of consecutive ops go out in one call: the hub writes them to each viewer
        in one write, one fan-out pass for the batch instead of one per op, which at a
        saturated core let the passes pile up (docs/performance.md, item 5). An op's callbacks
        still run after its own and earlier ops' changes are published and before any later
        op's (a revoked login is closed before the next note reaches it)."""
        self.commits += 1
        pending: list[Change] = []
        for ok, _, unit in done:
            if not ok:
                continue
            pending += unit.changes
            if unit.after_commit:
                pending = self._publish(pending)
                for callback in unit.after_commit:
                    try:
                        callback()
                    except Exception:  # one bad callback must not stop the writer or the others
                        log.exception("after-commit callback failed")
        self._publish(pending)
        for job, (ok, result, _) in zip(batch, done, strict=True):
            if not ok:
                if not job.future.done():
                    job.future.set_exception(result)
                continue
            if not job.future.done():
                job.future.set_result(result)
            COMMIT_SECONDS.observe(time.monotonic() - job.queued)

    def _publish(self, changes: list[Change]) -> list[Change]:
        """Hand committed changes to `on_commit` (if any); returns a new empty list."""
        if changes:
            try:
                self.on_commit(changes)
            except Exception:  # a publishing bug must not turn a committed write into an error
                log.exception("publishing committed changes failed")
        return []

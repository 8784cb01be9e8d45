"""The database handle: one writer connection with group commit, a small pool of readers.

Every write runs as an *op* (an async function of a Tx) queued to the single writer task. The
writer runs all queued ops in one `BEGIN IMMEDIATE` transaction and one fsync, in one trip to
the writer thread (see syncconn.py), then hands their stream changes to `on_commit` in
sequence order, and only then resolves each caller's future: an acknowledgement built from that
result means the data is on disk. Reads use aiosqlite connections, each read in one snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosqlite

from liveblog.models import Change
from liveblog.storage.schema import MIGRATIONS
from liveblog.storage.syncconn import SyncConnection, run_now

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
class Tx:
    """A write transaction in progress: the connection and the stream changes it made.

    `conn` has aiosqlite's API (in the writer thread it is a SyncConnection). Ops run in the
    writer thread: they may only use `conn`; anything that touches in-memory, event-loop state
    goes in `after_commit`, which runs on the event loop once the batch is committed."""

    conn: Any
    changes: list[Change] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


Op = Callable[[Tx], Coroutine[Any, Any, T]]


@dataclass
class _Job:
    op: Op[Any]
    future: asyncio.Future[Any]


class Database:
    def __init__(self, path: str, *, synchronous: str = "FULL", readers: int = 2) -> None:
        self.path = path
        self.synchronous = synchronous.upper()
        self.reader_count = readers
        self.on_commit: Callable[[list[Change]], None] = lambda changes: None
        self._writer: sqlite3.Connection | None = None
        # The writer thread: owns the one write connection, runs whole batches.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liveblog-writer")
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._jobs: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._room = asyncio.Semaphore(MAX_QUEUED)
        self._closing = False
        self._writer_task: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed, for the benchmark and tests

    async def _connect_reader(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA busy_timeout = 10000")
        await conn.execute("PRAGMA query_only = ON")
        return conn

    def _open_writer(self) -> None:
        """In the writer thread: open the write connection and bring the schema up to date."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        self._writer = conn
        self._migrate(conn)

    def _in_writer(self, fn: Any, *args: Any) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        await self._in_writer(self._open_writer)
        for _ in range(self.reader_count):
            reader = await self._connect_reader()
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)
        self._writer_task = asyncio.create_task(self._write_loop(), name="liveblog-db-writer")

    async def close(self) -> None:
        self._closing = True
        if self._writer_task is not None:
            self._jobs.put_nowait(None)  # finish queued work first, then stop
            await self._writer_task
            self._writer_task = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._writer is not None:
            await self._in_writer(self._close_writer)
        self._executor.shutdown(wait=True)

    def _close_writer(self) -> None:
        assert self._writer is not None
        # Fold the WAL back into the main file so a clean shutdown leaves one file.
        with contextlib.suppress(sqlite3.Error):
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._writer.close()
        self._writer = None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"database {self.path} is at schema version {version}, newer than this Liveblog "
                f"({len(MIGRATIONS)}): upgrade Liveblog"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("applying migration %d to %s", number, self.path)
            # The version bump is inside the same transaction as the step: a crash mid-migration
            # leaves the old version number and a re-runnable step.
            conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")

    async def pragma(self, name: str) -> Any:
        """Read a PRAGMA on the write connection (for tests and diagnostics)."""
        assert self._writer is not None
        writer = self._writer
        return await self._in_writer(lambda: writer.execute(f"PRAGMA {name}").fetchone()[0])

    @property
    def schema_version(self) -> int:
        return len(MIGRATIONS)

    # -- reads ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only connection for the caller's exclusive use (one snapshot per BEGIN)."""
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                await conn.rollback()
            self._readers.put_nowait(conn)

    async def read(self, fn: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run fn in one consistent read snapshot."""
        async with self.reader() as conn:
            await conn.execute("BEGIN")
            try:
                return await fn(conn)
            finally:
                await conn.rollback()

    # -- writes --------------------------------------------------------------------------------

    async def write(self, op: Op[T]) -> T:
        """Run op in a write transaction; returns once it is committed (and its changes published)."""
        if self._writer_task is None:
            raise RuntimeError("database is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._room.acquire()
        if self._closing:  # queued behind the stop marker, it would never run: refuse instead
            self._room.release()
            raise RuntimeError("database is closing")
        self._jobs.put_nowait(_Job(op, future))
        # shield: a caller that goes away (a dropped websocket) must not cancel a write under way.
        return await asyncio.shield(future)

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
            await self._run_batch(batch)

    def _batch_sync(self, ops: list[Op[Any]]) -> list[tuple[Any, Tx]]:
        """In the writer thread: BEGIN, every op, COMMIT. Raises (rolled back) if any op fails."""
        conn = self._writer
        assert conn is not None
        adapter = SyncConnection(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            done: list[tuple[Any, Tx]] = []
            for op in ops:
                tx = Tx(adapter)
                done.append((run_now(op(tx)), tx))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return done

    async def _run_batch(self, batch: list[_Job]) -> None:
        try:
            done = await self._in_writer(self._batch_sync, [job.op for job in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(exc)
                return
            # One op failed: nothing of the batch is on disk. Run each alone so only it fails.
            for job in batch:
                await self._run_batch([job])
            return
        self.commits += 1
        for job, (result, tx) in zip(batch, done, strict=True):
            if tx.changes:
                try:
                    self.on_commit(tx.changes)
                except Exception:  # a publishing bug must not turn a committed write into an error
                    log.exception("publishing committed changes failed")
            for callback in tx.after_commit:
                callback()
            if not job.future.done():
                job.future.set_result(result)

"""The database handle: one writer connection with group commit, a small pool of readers.

Every write runs as an *op* (an async function of a Tx) queued to the single writer task. The
writer runs all queued ops in one `BEGIN IMMEDIATE` transaction and one fsync, then hands their
stream changes to `on_commit` in sequence order, and only then resolves each caller's future:
an acknowledgement built from that result means the data is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosqlite

from liveblog.models import Change
from liveblog.storage.schema import MIGRATIONS

log = logging.getLogger(__name__)
T = TypeVar("T")

# Ops taken into one transaction at most. Large enough to amortise the fsync under a burst,
# small enough that one transaction never holds the write lock for long (~ms).
MAX_BATCH = 64


@dataclass
class Tx:
    """A write transaction in progress: the connection and the stream changes it made."""

    conn: aiosqlite.Connection
    changes: list[Change] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


Op = Callable[[Tx], Awaitable[T]]


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
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._jobs: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed, for the benchmark and tests

    async def _connect(self, *, readonly: bool) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA busy_timeout = 10000")
        await conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            await conn.execute("PRAGMA query_only = ON")
        else:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

    async def open(self) -> None:
        self._writer = await self._connect(readonly=False)
        await self._migrate(self._writer)
        for _ in range(self.reader_count):
            reader = await self._connect(readonly=True)
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)
        self._writer_task = asyncio.create_task(self._write_loop(), name="liveblog-db-writer")

    async def close(self) -> None:
        if self._writer_task is not None:
            self._jobs.put_nowait(None)  # finish queued work first, then stop
            await self._writer_task
            self._writer_task = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._writer is not None:
            # Fold the WAL back into the main file so a clean shutdown leaves one file.
            with contextlib.suppress(Exception):
                await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await self._writer.close()
            self._writer = None

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        async with conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = row[0] if row else 0
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"database {self.path} is at schema version {version}, newer than this Liveblog "
                f"({len(MIGRATIONS)}): upgrade Liveblog"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("applying migration %d to %s", number, self.path)
            # executescript commits first; the version bump is inside the same script so a
            # crash mid-migration leaves the old version number and a re-runnable step.
            await conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")

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
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[_Job]) -> None:
        conn = self._writer
        assert conn is not None
        try:
            await conn.execute("BEGIN IMMEDIATE")
            done: list[tuple[_Job, Any, Tx]] = []
            for job in batch:
                tx = Tx(conn)
                done.append((job, await job.op(tx), tx))
            await conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            # One op failed: nothing of the batch is on disk. Run each alone so only it fails.
            for job in batch:
                await self._run_batch([job])
            return
        self.commits += 1
        for job, result, tx in done:
            if tx.changes:
                try:
                    self.on_commit(tx.changes)
                except Exception:  # a publishing bug must not turn a committed write into an error
                    log.exception("publishing committed changes failed")
            for callback in tx.after_commit:
                callback()
            if not job.future.done():
                job.future.set_result(result)

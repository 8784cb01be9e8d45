"""The database handle: one writer connection with group commit, a small pool of readers.

Every write runs as an *op* (an async function of a Tx) queued to the single writer task. The
writer runs all queued ops in one `BEGIN IMMEDIATE` transaction and one fsync, in one trip to
the writer thread (see `run_now`), then hands their stream changes to `on_commit` in
sequence order, and only then resolves each caller's future: an acknowledgement built from that
result means the data is on disk. Reads use aiosqlite connections, each read in one snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import aiosqlite

from liveblog.errors import Unavailable
from liveblog.storage.interface import Op
from liveblog.storage.schema import SQLITE_SCRIPTS
from liveblog.storage.searchtext import register as register_search_words
from liveblog.storage.sql import WORD_COUNT_FUNCTION, AiosqliteSql, SqliteSql, register_word_count
from liveblog.storage.unit import SqliteUnit
from liveblog.storage.writer import GroupCommitWriter, Job
from liveblog.text import word_count

log = logging.getLogger(__name__)
T = TypeVar("T")

# Page cache per read connection, in KiB (see _connect_reader).
READER_CACHE_KIB = 1024


Tx = SqliteUnit  # what an op receives on this backend (typed as interface.Unit above storage)


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a write op to its end synchronously, in the writer thread: there the unit's `db` is
    `SqliteSql`, whose methods never suspend, so a whole batch (BEGIN, every op, COMMIT) is one
    trip to the thread instead of one per statement (~19 per note made capture slow)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a write op awaited something other than the database; ops must only use tx.db")


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring a database up to this version's schema, one numbered step per transaction.
    The connection can write to the search index from then on (its stemming function)."""
    register_search_words(conn)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(SQLITE_SCRIPTS):
        raise RuntimeError(
            f"database {path} is at schema version {version}, newer than this Liveblog "
            f"({len(SQLITE_SCRIPTS)}): upgrade Liveblog"
        )
    for number, script in enumerate(SQLITE_SCRIPTS[version:], start=version + 1):
        log.info("applying migration %d to %s", number, path)
        # The version bump is inside the same transaction as the step: a crash mid-migration
        # leaves the old version number and a re-runnable step.
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")


class Database(GroupCommitWriter):
    """The SQLite store (interface.Store): one writer thread with group commit, two reader pools.

    Readers come in two pools so that live work (resumes, capture checks) is never queued
    behind page loads and searches: `read(fn)` uses the live pool, `read(fn, pool="pages")`
    the pages pool. Every read and write has a timeout; past it the caller gets Unavailable
    (503, or a close code on a socket). A write that timed out may still commit: capture
    messages carry a client id, so the client's resend is answered as a duplicate.
    """

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "FULL",
        readers: int = 2,
        page_readers: int = 2,
        read_timeout: float = 10.0,
        write_timeout: float = 30.0,
    ) -> None:
        super().__init__(write_timeout, read_timeout, {"live": readers, "pages": page_readers})
        self.path = path
        self.synchronous = synchronous.upper()
        self._writer: sqlite3.Connection | None = None
        # The writer thread: owns the one write connection, runs whole batches.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liveblog-writer")
        self._pools: dict[str, asyncio.Queue[aiosqlite.Connection]] = {}
        self._all_readers: list[aiosqlite.Connection] = []

    async def _connect_reader(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA busy_timeout = 10000")
        await conn.execute("PRAGMA query_only = ON")
        await conn.create_function(WORD_COUNT_FUNCTION, 1, word_count, deterministic=True)
        # Each connection's page cache grows to cache_size as the file grows (SQLite's default is
        # 2 MiB): bounded, but with four readers it is most of the memory that kept rising in the
        # soak after the Python heap had levelled off. 1 MiB each holds a 2,000-note page's rows;
        # the OS page cache serves the rest.
        await conn.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
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
        register_word_count(conn)
        migrate(conn, self.path)

    def _in_writer(self, fn: Any, *args: Any) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        await self._in_writer(self._open_writer)
        for pool, size in self.pool_sizes.items():
            queue: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
            for _ in range(max(1, size)):
                reader = await self._connect_reader()
                self._all_readers.append(reader)
                queue.put_nowait(reader)
            self._pools[pool] = queue
        self._start_writer("liveblog-db-writer")

    async def close(self) -> None:
        await self._stop_writer()
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        self._pools.clear()
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

    async def pragma(self, name: str) -> Any:
        """Read a PRAGMA on the write connection (for tests and diagnostics)."""
        assert self._writer is not None
        writer = self._writer
        return await self._in_writer(lambda: writer.execute(f"PRAGMA {name}").fetchone()[0])

    @property
    def schema_version(self) -> int:
        return len(SQLITE_SCRIPTS)

    async def ping(self) -> bool:
        """True while the file is open and still at its path: there is no server to lose, but a
        file deleted or moved under a running process takes every later write with it."""
        return self._writer is not None and os.path.exists(self.path)

    # -- reads ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def reader(self, pool: str = "live") -> AsyncIterator[aiosqlite.Connection]:
        """A read-only connection for the caller's exclusive use (one snapshot per BEGIN)."""
        queue = self._pools.get(pool)
        if queue is None:
            raise Unavailable("the database is not open")
        conn = await queue.get()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                await conn.rollback()
            queue.put_nowait(conn)

    @contextlib.asynccontextmanager
    async def _snapshot(self, pool: str) -> AsyncIterator[SqliteUnit]:
        async with self.reader(pool) as conn:  # rolled back as it goes back to the pool
            await conn.execute("BEGIN")
            yield SqliteUnit(AiosqliteSql(conn))

    # -- writes: GroupCommitWriter (storage/writer.py) runs the queue; a batch runs here --------

    def _batch_sync(self, ops: list[Op[Any]]) -> list[tuple[bool, Any, SqliteUnit]]:
        """In the writer thread: BEGIN, each op in its own SAVEPOINT (an op alone in its batch: in
        the transaction itself, `_alone_sync`), one COMMIT.

        An op that raises is rolled back to its savepoint alone: the rest of the batch still
        commits, once. Returns (ok, result or exception, unit) per op."""
        conn = self._writer
        assert conn is not None
        db = SqliteSql(conn)
        conn.execute("BEGIN IMMEDIATE")
        if len(ops) == 1:
            return self._alone_sync(conn, db, ops[0])
        try:
            done: list[tuple[bool, Any, SqliteUnit]] = []
            for op in ops:
                unit = SqliteUnit(db)
                conn.execute("SAVEPOINT op")
                try:
                    result = run_now(op(unit))
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    done.append((False, exc, unit))
                    continue
                conn.execute("RELEASE op")
                done.append((True, result, unit))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return done

    @staticmethod
    def _alone_sync(
        conn: sqlite3.Connection, db: SqliteSql, op: Op[Any]
    ) -> list[tuple[bool, Any, SqliteUnit]]:
        """A batch of one op (a note at a time, the common case): its transaction is its
        savepoint. If it raises, ROLLBACK takes back exactly what ROLLBACK TO would have, and
        nothing is committed; SAVEPOINT and RELEASE, two statements per note, are saved. (If
        SQLite had already rolled the transaction back, ROLLBACK fails as ROLLBACK TO would have,
        and the batch fails the same way.)"""
        unit = SqliteUnit(db)
        try:
            try:
                result = run_now(op(unit))
            except Exception as exc:
                conn.execute("ROLLBACK")
                return [(False, exc, unit)]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return [(True, result, unit)]

    async def _run_batch(self, batch: list[Job]) -> None:
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()
        ops = [job.op for job in batch]

        def finish(error: BaseException | None) -> None:
            if not finished.done():  # the writer task may have been cancelled (closing)
                if error is None:
                    finished.set_result(None)
                else:
                    finished.set_exception(error)

        def settle(done: list[tuple[bool, Any, SqliteUnit]]) -> None:
            # On the loop, in the pass that sees the thread finish: publishing and answering the
            # callers here rather than in the writer task, once woken, saves a pass of the loop
            # per batch (docs/performance.md, "The note's own cost").
            try:
                self._settle(batch, done)
            except Exception as exc:  # a bug: the writer loop fails and is restarted
                finish(exc)
                return
            finish(None)

        def failed(exc: BaseException) -> None:
            # BEGIN or COMMIT failed (disk full, I/O error): nothing is on disk.
            if isinstance(exc, sqlite3.Error):
                log.error("write transaction failed: %s", exc)
                self._fail(batch, Unavailable(f"the database could not commit: {exc}"))
                finish(None)
            else:
                finish(exc)

        def in_thread() -> None:
            try:
                done = self._batch_sync(ops)
            except BaseException as exc:
                loop.call_soon_threadsafe(failed, exc)
                return
            loop.call_soon_threadsafe(settle, done)

        self._executor.submit(in_thread)
        await finished

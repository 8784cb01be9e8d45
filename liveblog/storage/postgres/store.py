"""The PostgreSQL store (interface.Store): the same contract as the SQLite one, on asyncpg.

Writes keep SQLite's shape on purpose: one writer connection per process takes every queued op
into one transaction (group commit) and publishes the changes of each op after COMMIT, in order.
An op that fails rolls back alone, as in its own SAVEPOINT: a batch is first run without
savepoints (they cost two round trips per op) and, only if one of its ops fails, rolled back and
rerun with each op in a savepoint. Ops are awaited for real here. Several processes each have
their own writer: sequence numbers stay contiguous because `next_seq` is an UPDATE ... RETURNING
that keeps the session's row locked until commit, and a client id claimed by two processes at
once is decided by the primary key (the second INSERT waits, then does nothing). Two batches
that lock two sessions in opposite orders may deadlock; PostgreSQL aborts one, which is rerun
whole (ops have no effects outside their transaction until after commit).
Reads run in a REPEATABLE READ, READ ONLY transaction on one of two pools ("live", "pages").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import asyncpg

from liveblog.errors import BadRequest, Unavailable
from liveblog.storage.interface import Op
from liveblog.storage.postgres.unit import PgUnit, write_acks
from liveblog.storage.schema import POSTGRES_SCRIPTS as MIGRATIONS
from liveblog.storage.writer import GroupCommitWriter, Job

log = logging.getLogger(__name__)
T = TypeVar("T")

# A batch chosen as a deadlock victim is rerun at most this often (each rerun waits a little
# longer, with jitter, so two processes do not collide in step again).
BATCH_RETRIES = 8
# Any constant: the advisory lock that lets one process at a time run migrations.
MIGRATION_LOCK = 0x6C6976_65626C6F

# Errors after which rerunning the whole transaction is correct and will likely succeed.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# Errors that mean the server or the connection is gone (not an op's fault).
CONNECTION_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)


class _RetryBatch(Exception):
    pass


class _Isolate(Exception):
    """An op failed in a batch run without savepoints: roll back, rerun with them."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def domain_error(exc: Exception) -> Exception:
    """The interface speaks domain errors, not a driver's. PostgreSQL refuses some input SQLite
    stores (a NUL character in text, an integer beyond 64 bits, a value of the wrong type):
    that is bad input, answered like any other (400 invalid_field), never a 500."""
    if isinstance(exc, asyncpg.DataError):
        return BadRequest(f"a value cannot be stored: {str(exc).splitlines()[0][:200]}", code="invalid_field")
    return exc


async def migrate(conn: asyncpg.Connection, where: str = "") -> int:
    """Bring the database up to this version's schema, one numbered step per transaction.

    Processes starting together take turns (an advisory lock); a step and its version bump
    commit together, so a crash leaves the old number and a re-runnable step."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS liveblog_schema (version INTEGER NOT NULL)")
        if await conn.fetchval("SELECT version FROM liveblog_schema") is None:
            await conn.execute("INSERT INTO liveblog_schema (version) VALUES (0)")
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            version = int(await conn.fetchval("SELECT version FROM liveblog_schema"))
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"database {where} is at schema version {version}, newer than this Liveblog "
                    f"({len(MIGRATIONS)}): upgrade Liveblog"
                )
            if version == len(MIGRATIONS):
                return version
            log.info("applying migration %d to %s", version + 1, where)
            await conn.execute(MIGRATIONS[version])
            await conn.execute("UPDATE liveblog_schema SET version = $1", version + 1)


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}@{host}"


class PostgresStore(GroupCommitWriter):
    """interface.Store on PostgreSQL. `url` is a libpq URL: postgresql://user:pass@host/db."""

    def __init__(
        self,
        url: str,
        *,
        readers: int = 2,
        page_readers: int = 2,
        read_timeout: float = 10.0,
        write_timeout: float = 30.0,
    ) -> None:
        super().__init__(write_timeout, read_timeout, {"live": readers, "pages": page_readers})
        self.url = url
        self._writer: asyncpg.Connection | None = None
        self._pools: dict[str, asyncpg.Pool] = {}
        self.reconnects = 0
        self.retried_batches = 0
        self.isolated_batches = 0  # batches rerun op by op in savepoints because one op failed

    @property
    def where(self) -> str:
        return redact(self.url)

    async def open(self) -> None:
        try:
            self._writer = await asyncpg.connect(self.url)
        except CONNECTION_ERRORS as exc:
            raise Unavailable(f"cannot connect to PostgreSQL at {self.where}: {exc}") from None
        await migrate(self._writer, self.where)
        for pool, size in self.pool_sizes.items():
            self._pools[pool] = await asyncpg.create_pool(self.url, min_size=1, max_size=max(1, size))
        self._start_writer("liveblog-pg-writer")

    async def close(self) -> None:
        await self._stop_writer()
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()
        if self._writer is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await self._writer.close()
            self._writer = None

    @property
    def schema_version(self) -> int:
        return len(MIGRATIONS)

    async def ping(self) -> bool:
        """True when the database answers a trivial query (for /healthz)."""
        try:
            async with asyncio.timeout(2):
                pool = self._pools.get("live")
                if pool is None:
                    return False
                async with pool.acquire() as conn:
                    return bool(await conn.fetchval("SELECT 1") == 1)
        except (TimeoutError, *CONNECTION_ERRORS):
            return False

    # -- reads ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _snapshot(self, pool: str) -> AsyncIterator[PgUnit]:
        chosen = self._pools.get(pool)
        if chosen is None:
            raise Unavailable("the database is not open")
        try:
            async with chosen.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                yield PgUnit(conn)
        except CONNECTION_ERRORS as exc:
            raise Unavailable(f"the database is unreachable: {exc}") from None
        except asyncpg.DataError as exc:
            raise domain_error(exc) from None

    # -- writes: GroupCommitWriter (storage/writer.py) runs the queue; a batch runs here --------

    async def _connection(self) -> asyncpg.Connection:
        """The writer connection, reconnecting once if the server dropped it."""
        if self._writer is None or self._writer.is_closed():
            self.reconnects += 1
            self._writer = await asyncpg.connect(self.url)
        return self._writer

    async def _attempt(
        self, conn: asyncpg.Connection, ops: list[Op[Any]], isolate: bool
    ) -> list[tuple[bool, Any, PgUnit]]:
        """Run the ops in one transaction. `isolate`: each in a SAVEPOINT, so that a failing op
        rolls back alone. Without it (the first try of a batch) an op that fails raises
        `_Isolate` and the transaction rolls back whole: SAVEPOINT and RELEASE are two round
        trips per op that a batch where every op succeeds, nearly all of them, does not need."""
        done: list[tuple[bool, Any, PgUnit]] = []
        acks: list[tuple[str, str, str]] = []  # client ops' responses, written together at the end
        await conn.execute("BEGIN")
        try:
            for op in ops:
                unit = PgUnit(conn, acks)
                try:
                    if isolate:
                        await conn.execute("SAVEPOINT op")
                    result = await op(unit)
                    if isolate:  # in a transaction an op's swallowed error aborted, this raises
                        await conn.execute("RELEASE SAVEPOINT op")
                except RETRYABLE as exc:
                    raise _RetryBatch() from exc
                except CONNECTION_ERRORS:
                    raise
                except Exception as exc:
                    if not isolate:
                        raise _Isolate(domain_error(exc)) from exc
                    await conn.execute("ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op")
                    done.append((False, domain_error(exc), unit))
                    continue
                done.append((True, result, unit))
                acks.extend(unit.acks)
            await write_acks(conn, acks)
            status = await conn.execute("COMMIT")
        except BaseException:
            if not conn.is_closed() and conn.is_in_transaction():
                with contextlib.suppress(*CONNECTION_ERRORS):
                    await conn.execute("ROLLBACK")
            raise
        if status != "COMMIT":
            # PostgreSQL answers COMMIT with ROLLBACK when a statement failed and nothing raised
            # (an op caught a database error and returned): rerun with savepoints, where that
            # op's RELEASE fails and it alone is rolled back.
            if isolate:
                raise RuntimeError(f"COMMIT answered {status!r} in a batch run op by op")
            raise _Isolate(Unavailable("the write was rolled back; try again"))
        return done

    async def _run_batch(self, batch: list[Job]) -> None:
        ops = [job.op for job in batch]
        done: list[tuple[bool, Any, PgUnit]] | None = None
        isolate = False
        attempt = 0
        while attempt < BATCH_RETRIES:
            try:
                conn = await self._connection()
                done = await self._attempt(conn, ops, isolate)
                break
            except _Isolate as failed:  # rolled back whole; nothing was committed
                if len(ops) == 1:  # the op failed alone: that is its outcome
                    done = [(False, failed.error, PgUnit(conn))]
                    break
                isolate = True  # rerun at once, each op in its savepoint, to commit the others
                self.isolated_batches += 1
            except (
                _RetryBatch,
                *RETRYABLE,
            ):  # a deadlock victim (or a failed COMMIT serialisation): rerun whole
                self.retried_batches += 1
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
                attempt += 1
            except CONNECTION_ERRORS as exc:
                # The outcome of an interrupted COMMIT is unknown: the callers are told to retry, and
                # capture's client ids make a retry of something that did commit a duplicate, not a copy.
                log.error("write transaction failed: %s", exc)
                if self._writer is not None:
                    self._writer.terminate()
                    self._writer = None
                self._fail(batch, Unavailable(f"the database could not commit: {exc}"))
                return
        if done is None:
            self._fail(batch, Unavailable("the database stayed too busy to commit; try again"))
            return
        self._settle(batch, done)

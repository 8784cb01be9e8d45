"""Run a write batch in the writer thread in one go: an aiosqlite-shaped face on sqlite3.

Write ops are written once, as `async def op(tx)`, against aiosqlite's API (the same query
functions serve the async read connections). In the writer thread, `tx.conn` is this adapter
instead: every `await` on it completes at once, so the op's coroutine runs to the end in a
single `send(None)`. A whole batch (BEGIN, every op, COMMIT) is then one trip to the writer
thread instead of one trip per statement, which is what made capture slow (~19 trips per note).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Coroutine, Generator, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class Ready:
    """An awaitable whose value is already there: awaiting it never suspends."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # pragma: no cover - makes this a generator


class SyncCursor:
    __slots__ = ("_cur",)

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur

    @property
    def lastrowid(self) -> int | None:
        return self._cur.lastrowid

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def fetchone(self) -> Ready:
        return Ready(self._cur.fetchone())

    def fetchall(self) -> Ready:
        return Ready(self._cur.fetchall())


class _Result(Ready):
    """What `execute` returns: awaitable, and an async context manager, like aiosqlite's."""

    async def __aenter__(self) -> SyncCursor:
        return self.value

    async def __aexit__(self, *exc: object) -> None:
        self.value._cur.close()


class SyncConnection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> _Result:
        return _Result(SyncCursor(self._conn.execute(sql, tuple(parameters))))

    def execute_fetchall(self, sql: str, parameters: Iterable[Any] = ()) -> Ready:
        return Ready(self._conn.execute(sql, tuple(parameters)).fetchall())

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that only awaits Ready values to its end, synchronously."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a write op awaited something other than the database; ops must only use tx.conn")

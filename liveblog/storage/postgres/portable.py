"""Run a portable SQLite mixin on PostgreSQL unchanged: an aiosqlite-shaped face on asyncpg.

Some domains write their SQL once, portably (`?` placeholders, ON CONFLICT … RETURNING, no
SQLite-only functions, as most of storage/archive.py). Rather than keep a second copy of such a
mixin, `portable(Mixin)` makes a class whose methods run the mixin's own methods against this
shim: `?` becomes `$1, $2, …`, and `execute` returns an awaitable async context manager whose
cursor has fetchone/fetchall/rowcount, as aiosqlite's does. A domain whose SQL is not portable
gets its own module here instead (repo.py, archive.py).

On its way out: only the archive (postgres/archive.py) still runs through it. A mixin written
against the query layer (storage/sql.py) runs on PostgreSQL as it is, and says itself whether
rows come back.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Iterable
from typing import Any

from liveblog.storage.sql import dollar_placeholders as to_dollar


class _Cursor:
    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid = None

    async def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> list[Any]:
        return self._rows


class _Pending:
    """What `execute` returns: awaitable (a cursor) and usable as `async with … as cur`."""

    def __init__(self, conn: Any, sql: str, args: tuple[Any, ...]) -> None:
        self._conn, self._sql, self._args = conn, sql, args
        self._cursor: _Cursor | None = None

    async def _run(self) -> _Cursor:
        if self._cursor is None:
            sql = to_dollar(self._sql)
            head = sql.lstrip()[:6].upper()
            if " RETURNING " in sql.upper() or head in ("SELECT", "WITH ") or head.startswith("WITH"):
                rows = await self._conn.fetch(sql, *self._args)
                self._cursor = _Cursor(list(rows), len(rows))
            else:
                status = await self._conn.execute(sql, *self._args)
                count = int(status.rsplit(" ", 1)[-1]) if status and status.rsplit(" ", 1)[-1].isdigit() else -1
                self._cursor = _Cursor([], count)
        return self._cursor

    def __await__(self) -> Generator[Any, None, _Cursor]:
        return self._run().__await__()

    async def __aenter__(self) -> _Cursor:
        return await self._run()

    async def __aexit__(self, *exc: object) -> None:
        return None


class AiosqliteShim:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> _Pending:
        return _Pending(self._conn, sql, tuple(parameters))

    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] = ()) -> list[Any]:
        return list(await self._conn.fetch(to_dollar(sql), *tuple(parameters)))


class _Face:
    """What the mixin's methods see as `self`: the shim as `conn`, the unit's changes/callbacks,
    and every other operation of the PostgreSQL unit (a mixin calling `self.append_change`
    gets PostgreSQL's)."""

    def __init__(self, unit: Any) -> None:
        self.conn = AiosqliteShim(unit.conn)
        self.changes = unit.changes
        self.after_commit = unit.after_commit
        self._unit = unit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unit, name)


def portable(mixin: type, *, own: type) -> type:
    """A class with `mixin`'s own public methods, run on PostgreSQL through the shim. Methods the
    mixin inherits (from StreamOps…) are not taken: the PostgreSQL unit has its own."""
    methods: dict[str, Any] = {}
    for name, fn in vars(mixin).items():
        if name.startswith("__") or not callable(fn):
            continue

        def make(fn: Any) -> Any:
            @functools.wraps(fn)
            async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
                return await fn(_Face(self), *args, **kwargs)

            return method

        methods[name] = make(fn)
    return type(f"Pg{mixin.__name__}", (own,), methods)

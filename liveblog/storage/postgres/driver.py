"""The query layer's PostgreSQL driver (storage/sql.py's seam over asyncpg): `?` placeholders
become `$n` (rendered once per statement), asyncpg's constraint errors the layer's own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from liveblog.storage.sql import (
    POSTGRES,
    ForeignKeyViolation,
    IntegrityError,
    Row,
    Sql,
    Statement,
    UniqueViolation,
)


def pg_error(exc: asyncpg.IntegrityConstraintViolationError) -> IntegrityError:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(str(exc))
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return ForeignKeyViolation(str(exc))
    return IntegrityError(str(exc))


def rows_changed(status: str) -> int:
    """The row count of a command tag ("UPDATE 3", "INSERT 0 1", "DELETE 0")."""
    count = status.rsplit(" ", 1)[-1]
    return int(count) if count.isdigit() else 0


class PgSql(Sql):
    """An asyncpg connection inside the unit's transaction (or read-only snapshot)."""

    __slots__ = ("_conn",)
    dialect = POSTGRES

    def __init__(self, conn: Any) -> None:
        self._conn = conn  # an asyncpg.Connection (or a pool's proxy of one)

    async def execute(self, statement: Statement, args: Sequence[Any] = ()) -> int:
        try:
            return rows_changed(await self._conn.execute(self.sql(statement), *args))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise pg_error(exc) from exc

    async def fetch_all(self, statement: Statement, args: Sequence[Any] = ()) -> list[Row]:
        try:
            return list(await self._conn.fetch(self.sql(statement), *args))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise pg_error(exc) from exc

    async def fetch_one(self, statement: Statement, args: Sequence[Any] = ()) -> Row | None:
        try:
            return await self._conn.fetchrow(self.sql(statement), *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise pg_error(exc) from exc

    async def fetch_value(self, statement: Statement, args: Sequence[Any] = ()) -> Any:
        try:
            return await self._conn.fetchval(self.sql(statement), *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise pg_error(exc) from exc

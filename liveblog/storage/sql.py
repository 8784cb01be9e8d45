"""The query layer: one seam that every query written once runs through, on either backend.

A query mixin (votes.py, access.py) asks its unit's `db` (an `Sql`) to `execute`, `fetch_all`,
`fetch_one` or `fetch_value` one statement. The caller says which, so nothing guesses from the
SQL text whether rows come back. SQL is written with `?` placeholders; what differs between
SQLite and PostgreSQL is asked of the dialect (`Query` builds a statement once per dialect).
The SQLite drivers are here; PostgreSQL's (asyncpg) is in postgres/driver.py.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from liveblog.text import WHITESPACE, word_count

# A row as either driver returns it (sqlite3.Row, asyncpg.Record): by index or by column name.
Row = Any


# -- errors: a driver's constraint errors, as the query layer names them -------------------------


class IntegrityError(Exception):
    """A statement broke a constraint (the driver's own error is its __cause__)."""


class UniqueViolation(IntegrityError):
    """A row with that key or unique value exists already."""


class ForeignKeyViolation(IntegrityError):
    """A row names another row that does not exist."""


# -- dialects ----------------------------------------------------------------------------------


class Dialect:
    """What differs between the backends' SQL, as fragments a query splices in.

    What is the same on both is written out in queries and not asked of the dialect:
    `INSERT … ON CONFLICT (…) DO UPDATE SET x = excluded.x | DO NOTHING`, `RETURNING` (SQLite
    3.35 and later), booleans (0/1 integers in both schemas) and timestamps (ISO 8601 text in
    both, made in Python, so times compare as text; `quarter_hour` cuts one for a chart).
    Full-text search is each backend's own (archive.py, postgres/archive.py)."""

    name = ""
    # Values one `one_of` test takes at most (SQLite limits a statement's parameters).
    list_limit: int | None = None

    def render(self, sql: str) -> str:
        """The statement with this backend's placeholders for `?`."""
        raise NotImplementedError

    def json_text(self, document: str, key: str) -> str:
        """A top-level field of a JSON text column (a string field comes back as text)."""
        raise NotImplementedError

    def json_is_true(self, document: str, key: str) -> str:
        """A condition: the JSON text column's top-level field is true."""
        raise NotImplementedError

    def json_int(self, document: str, key: str) -> str:
        """A top-level integer field of a JSON text column, as an integer (NULL when absent)."""
        raise NotImplementedError

    def quarter_hour(self, timestamp: str) -> str:
        """The quarter hour an ISO 8601 text timestamp falls in, as 'YYYY-MM-DDTHH:MM'."""
        raise NotImplementedError

    def word_count(self, text: str) -> str:
        """The words of a text column as `liveblog.text.word_count` counts them (str.split's)."""
        raise NotImplementedError

    def equals_nocase(self, column: str) -> str:
        """A condition: a name column equals the parameter, whatever the case (account names)."""
        raise NotImplementedError

    def one_of(
        self, column: str, values: Sequence[Any], sql_type: str = "text"
    ) -> tuple[str, tuple[Any, ...]]:
        """A condition `column` is one of `values` (at most `list_limit` of them), and its parameters."""
        raise NotImplementedError

    def ids_after_explicit(self) -> str | None:
        """A statement that makes every database-assigned id ({id} columns) continue after the
        largest stored, once rows were written with ids of their own (an import); None when
        the backend does that by itself."""
        raise NotImplementedError

    def chunks(self, values: Sequence[Any]) -> Iterator[Sequence[Any]]:
        """`values` in slices that `one_of` takes (none for no values)."""
        step = self.list_limit or len(values) or 1
        for start in range(0, len(values), step):
            yield values[start : start + step]


# SQLite counts words with Python's own function, registered on each connection (db.py).
WORD_COUNT_FUNCTION = "liveblog_word_count"


def register_word_count(conn: sqlite3.Connection) -> None:
    """Make `liveblog_word_count(text)` callable by this connection's SQL."""
    conn.create_function(WORD_COUNT_FUNCTION, 1, word_count, deterministic=True)


# A word for PostgreSQL's regular expressions: a run of anything but the characters Python's
# str.split() takes for whitespace, each written as a \uXXXX escape (all are in the BMP).
_PG_WORD = "[^" + "".join(f"\\u{ord(c):04x}" for c in WHITESPACE) + "]+"


class SqliteDialect(Dialect):
    name = "sqlite"
    list_limit = 500  # well under SQLite's limit on parameters (999 in older builds)

    def render(self, sql: str) -> str:
        return sql  # `?` is SQLite's own placeholder

    def json_text(self, document: str, key: str) -> str:
        return f"json_extract({document}, '$.{key}')"

    def json_is_true(self, document: str, key: str) -> str:
        return f"json_extract({document}, '$.{key}') = 1"  # JSON true reads as 1

    def json_int(self, document: str, key: str) -> str:
        return f"json_extract({document}, '$.{key}')"  # a JSON number reads as one

    def quarter_hour(self, timestamp: str) -> str:
        return f"substr({timestamp}, 1, 14) || printf('%02d', CAST(substr({timestamp}, 15, 2) AS INTEGER) / 15 * 15)"

    def word_count(self, text: str) -> str:
        return f"{WORD_COUNT_FUNCTION}({text})"  # Python's own (register_word_count)

    def equals_nocase(self, column: str) -> str:
        return f"{column} = ?"  # the column is declared COLLATE NOCASE (schema.py), and indexed so

    def one_of(
        self, column: str, values: Sequence[Any], sql_type: str = "text"
    ) -> tuple[str, tuple[Any, ...]]:
        return f"{column} IN ({', '.join('?' for _ in values)})", tuple(values)

    def ids_after_explicit(self) -> str | None:
        return None  # a rowid (and AUTOINCREMENT's sqlite_sequence) moves past any id written


class PostgresDialect(Dialect):
    name = "postgres"

    def render(self, sql: str) -> str:
        return dollar_placeholders(sql)

    def json_text(self, document: str, key: str) -> str:
        return f"{document}::jsonb ->> '{key}'"

    def json_is_true(self, document: str, key: str) -> str:
        return f"{document}::jsonb -> '{key}' = 'true'::jsonb"

    def json_int(self, document: str, key: str) -> str:
        return f"({document}::jsonb ->> '{key}')::integer"

    def quarter_hour(self, timestamp: str) -> str:
        return f"substr({timestamp}, 1, 14) || lpad((substr({timestamp}, 15, 2)::integer / 15 * 15)::text, 2, '0')"

    def word_count(self, text: str) -> str:
        # Each match a word (regexp_count would do, from PostgreSQL 15 on).
        return f"(SELECT count(*) FROM regexp_matches({text}, '{_PG_WORD}', 'g'))"

    def equals_nocase(self, column: str) -> str:
        return f"lower({column}) = lower(?)"  # the unique index is on lower(username) (schema.py step 1)

    def one_of(
        self, column: str, values: Sequence[Any], sql_type: str = "text"
    ) -> tuple[str, tuple[Any, ...]]:
        return f"{column} = ANY(?::{sql_type}[])", (list(values),)

    def ids_after_explicit(self) -> str | None:
        # An identity's sequence does not move when a row gives its own id: the next row
        # assigned one would collide. As postgres/copy.py does after copying, for every table.
        return (
            "DO $$ DECLARE c record; BEGIN"
            " FOR c IN SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND is_identity = 'YES' LOOP"
            " EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, %L),"
            " COALESCE((SELECT max(%I) FROM %I), 0) + 1, false)',"
            " c.table_name, c.column_name, c.column_name, c.table_name);"
            " END LOOP; END $$"
        )


SQLITE = SqliteDialect()
POSTGRES = PostgresDialect()


@functools.lru_cache(maxsize=4096)
def dollar_placeholders(sql: str) -> str:
    """`?` → `$1, $2, …` in order, outside quoted literals and identifiers. Queries are written
    with `?` only; a `?` in SQL text is never anything else (no jsonb `?` operator is used).
    Cached: each statement's text is rendered once per process."""
    out: list[str] = []
    n = 0
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""  # a doubled quote ('' inside a literal) closes and reopens: same result
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    if quote:
        raise ValueError(f"unterminated quote in SQL: {sql[:80]!r}")
    return "".join(out)


class Query:
    """A statement whose text depends on the dialect, built once per dialect and kept.

    VOTE_STATE = Query(lambda d: f"SELECT {d.json_text('data', 'state')} FROM items WHERE id = ?")
    """

    __slots__ = ("build", "_texts")

    def __init__(self, build: Callable[[Dialect], str]) -> None:
        self.build = build
        self._texts: dict[str, str] = {}

    def text(self, dialect: Dialect) -> str:
        text = self._texts.get(dialect.name)
        if text is None:
            text = self._texts[dialect.name] = dialect.render(self.build(dialect))
        return text


Statement = str | Query


# -- the seam ----------------------------------------------------------------------------------


class Sql:
    """One connection inside a unit's transaction, as query mixins see it. Every method runs one
    statement; `execute` answers how many rows it changed."""

    dialect: Dialect = SQLITE

    def sql(self, statement: Statement) -> str:
        if isinstance(statement, Query):
            return statement.text(self.dialect)
        return self.dialect.render(statement)

    async def execute(self, statement: Statement, args: Sequence[Any] = ()) -> int:
        raise NotImplementedError

    async def fetch_all(self, statement: Statement, args: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError

    async def fetch_one(self, statement: Statement, args: Sequence[Any] = ()) -> Row | None:
        """The first row, or None: for statements of at most one row (add LIMIT 1 otherwise)."""
        raise NotImplementedError

    async def fetch_value(self, statement: Statement, args: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None for no row."""
        row = await self.fetch_one(statement, args)
        return None if row is None else row[0]


def sqlite_error(exc: sqlite3.IntegrityError) -> IntegrityError:
    """sqlite3's constraint error as the query layer's, by SQLite's extended result code."""
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        return UniqueViolation(str(exc))
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return ForeignKeyViolation(str(exc))
    return IntegrityError(str(exc))


class SqliteSql(Sql):
    """The writer thread's driver: plain sqlite3 calls. Its methods never suspend, so a write op
    still runs to its end in one `send(None)` (db.run_now)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Statement, args: Sequence[Any] = ()) -> int:
        try:
            return self._conn.execute(self.sql(statement), args).rowcount
        except sqlite3.IntegrityError as exc:
            raise sqlite_error(exc) from exc

    async def fetch_all(self, statement: Statement, args: Sequence[Any] = ()) -> list[Row]:
        try:
            return self._conn.execute(self.sql(statement), args).fetchall()
        except sqlite3.IntegrityError as exc:
            raise sqlite_error(exc) from exc

    async def fetch_one(self, statement: Statement, args: Sequence[Any] = ()) -> Row | None:
        try:
            cur = self._conn.execute(self.sql(statement), args)
            try:
                return cur.fetchone()
            finally:
                cur.close()
        except sqlite3.IntegrityError as exc:
            raise sqlite_error(exc) from exc


class AiosqliteSql(Sql):
    """The readers' driver: an aiosqlite connection (one read snapshot)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn  # an aiosqlite.Connection

    async def execute(self, statement: Statement, args: Sequence[Any] = ()) -> int:
        try:
            async with self._conn.execute(self.sql(statement), args) as cur:
                return int(cur.rowcount)
        except sqlite3.IntegrityError as exc:
            raise sqlite_error(exc) from exc

    async def fetch_all(self, statement: Statement, args: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(self.sql(statement), args))

    async def fetch_one(self, statement: Statement, args: Sequence[Any] = ()) -> Row | None:
        # One trip to aiosqlite's thread instead of three (execute, fetchone, close): with three,
        # reading a vote's context fell from ~4,000 to ~2,500 reads/s (a timed loop of 4,000).
        rows = await self._conn.execute_fetchall(self.sql(statement), args)
        return rows[0] if rows else None

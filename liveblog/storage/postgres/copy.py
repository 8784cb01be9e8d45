"""`liveblog migrate-to-postgres`: copy an SQLite database into an empty PostgreSQL one.

Both schemas share their migration numbers and their column types are chosen so that rows copy
unchanged (postgres/schema.py). The copy runs in one PostgreSQL transaction with COPY, table by
table in foreign-key order, reports progress as it goes, moves the identity sequences past the
copied ids, and compares every table's row count before committing: a mismatch commits nothing.
SQLite-only tables (FTS5 indexes and their shadow tables) are skipped, and so is what SQLite's
search indexes (`search_index`): PostgreSQL builds its own from the copied rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from liveblog.errors import BadRequest, LiveblogError
from liveblog.storage.db import migrate as migrate_sqlite
from liveblog.storage.postgres.store import migrate as migrate_postgres
from liveblog.storage.postgres.store import redact

# Parents before children; tables not listed (added later) follow, alphabetically.
ORDER = [
    "events",
    "sessions",
    "items",
    "changes",
    "client_ops",
    "accounts",
    "login_sessions",
    "invites",
    "media",
    "votes",
    "upvotes",
    "questions",
    "social_posts",
    "social_routes",
    "feed_rules",
    "feed_policies",
]
# Tables PostgreSQL's own triggers fill as the rows above are copied.
DERIVED = {"search_index"}
# Rows per COPY: big enough to be fast, small enough that progress moves and memory stays low.
CHUNK = 2000

Progress = Callable[[int, int], None]  # (rows copied, rows in all)


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int


class CopyFailed(LiveblogError):
    """A CLI-only failure (never sent to a client)."""


def _sqlite_tables(src: sqlite3.Connection) -> list[str]:
    rows = src.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    virtual = {name for name, sql in rows if sql and sql.upper().startswith("CREATE VIRTUAL")}
    # An FTS5 table `x` keeps its index in shadow tables `x_data`, `x_idx`, `x_content`, ...
    shadow = {name for name, _ in rows if any(name.startswith(v + "_") for v in virtual)}
    return [name for name, _ in rows if name not in virtual and name not in shadow and name not in DERIVED]


async def copy_sqlite_to_postgres(
    sqlite_path: str, url: str, progress: Progress | None = None
) -> list[Copied]:
    src = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        migrate_sqlite(src, sqlite_path)  # an older file is brought up to this version first
        src.execute("BEGIN")  # one snapshot of the source, even if a server still writes to it
        tables = _sqlite_tables(src)
        try:
            dest = await asyncpg.connect(url)
        except (OSError, asyncpg.PostgresError) as exc:
            raise CopyFailed(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from None
        try:
            await migrate_postgres(dest, redact(url))
            return await _copy(src, dest, tables, progress)
        finally:
            await dest.close()
    finally:
        src.close()


async def _copy(
    src: sqlite3.Connection, dest: asyncpg.Connection, tables: list[str], progress: Progress | None
) -> list[Copied]:
    pg_tables = {
        r[0]
        for r in await dest.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    }
    wanted = [t for t in ORDER if t in tables] + sorted(t for t in tables if t not in ORDER)
    missing = [t for t in wanted if t not in pg_tables]
    if missing:
        raise CopyFailed(
            f"PostgreSQL has no table for {', '.join(missing)}: is this Liveblog older than the file?"
        )
    for table in wanted:
        if await dest.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")'):
            raise BadRequest(
                f"the PostgreSQL database is not empty (table {table} has rows): migrate into a new database"
            )
    counts = {t: int(src.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in wanted}
    total = sum(counts.values())
    done = 0
    if progress:
        progress(0, total)
    copied: list[Copied] = []
    async with dest.transaction():
        for table in wanted:
            pg_columns = [
                r[0]
                for r in await dest.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
                    " AND table_name = $1 ORDER BY ordinal_position",
                    table,
                )
            ]
            src_columns = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")')]
            columns = [c for c in src_columns if c in pg_columns]
            select = ", ".join(f'"{c}"' for c in columns)
            cursor = src.execute(f'SELECT {select} FROM "{table}"')
            while rows := cursor.fetchmany(CHUNK):
                await dest.copy_records_to_table(table, records=rows, columns=columns)
                done += len(rows)
                if progress:
                    progress(done, total)
            # Identity columns continue after the copied ids.
            for (column,) in await dest.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
                " AND table_name = $1 AND is_identity = 'YES'",
                table,
            ):
                await dest.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                    f' COALESCE((SELECT max("{column}") FROM "{table}"), 0) + 1, false)'
                )
            copied.append(Copied(table, counts[table]))
        # The check: every table holds exactly what the source held, or nothing is committed.
        for table in wanted:
            got = int(await dest.fetchval(f'SELECT count(*) FROM "{table}"'))
            if got != counts[table]:
                raise CopyFailed(
                    f"table {table}: {counts[table]} rows in SQLite but {got} in PostgreSQL; nothing copied"
                )
    return copied

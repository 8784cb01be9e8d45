"""One schema history for both backends: databases made by an earlier release (tests/data/upgrade,
made by release ef3ca2e at schema versions 10 and 15) upgrade in place with the current code,
keep their version numbering and every row, and end with exactly the schema of a fresh database."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from liveblog.models import SearchQuery
from liveblog.storage.db import Database
from liveblog.storage.interface import Store
from liveblog.storage.postgres import PostgresStore
from liveblog.storage.schema import Step, script
from liveblog.storage.sql import POSTGRES, SQLITE
from tests.servers import PostgresServer, postgres_bindir
from tests.test_storage import note_op

FIXTURES = Path(__file__).parent / "data" / "upgrade"
VERSIONS = [10, 15]
Rows = dict[str, list[dict[str, Any]]]

# -- what a database holds: its schema and its rows, read straight from the catalog -----------


def sqlite_schema(path: Path) -> list[tuple[str, str, str, str]]:
    """Every table, index, trigger and view with the exact SQL SQLite keeps for it."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()


def sqlite_rows(path: Path) -> Rows:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted((dict(r) for r in conn.execute(f'SELECT * FROM "{t}"')), key=repr) for t in tables}
    finally:
        conn.close()


# Columns in order (not their attnum: a restored dump renumbers what a dropped column left),
# indexes, constraints, triggers, functions with their source, text search setup, extensions.
PG_CATALOG = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity,
               identity_generation, is_generated, generation_expression, collation_name
        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 2",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger
        WHERE NOT tgisinternal ORDER BY 1, 2""",
    "functions": """
        SELECT proname, pg_get_function_identity_arguments(oid), prosrc FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "text_search": """
        SELECT c.cfgname, m.maptokentype, m.mapseqno, d.dictname, d.dictinitoption
        FROM pg_ts_config c JOIN pg_ts_config_map m ON m.mapcfg = c.oid JOIN pg_ts_dict d ON d.oid = m.mapdict
        WHERE c.cfgnamespace = 'public'::regnamespace ORDER BY 1, 2, 3""",
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
}


async def pg_schema(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in PG_CATALOG.items()}
    finally:
        await conn.close()


async def pg_rows(url: str) -> Rows:
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        out: Rows = {}
        for (table,) in tables:
            found = await conn.fetch(f'SELECT * FROM "{table}"')
            out[table] = sorted(
                ({k: str(v) if k == "document" else v for k, v in r.items()} for r in found), key=repr
            )
        return out
    finally:
        await conn.close()


def restore(server: PostgresServer, url: str, dump: Path) -> None:
    """Load a plain pg_dump file as its README says: psql, stopping at the first error."""
    subprocess.run(
        [str(postgres_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
        input=dump.read_text(encoding="utf-8"),
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def kept(before: Rows, after: Rows) -> Rows:
    """`after` restricted to the tables and columns `before` had: what an upgrade must keep."""
    return {t: sorted(({k: r[k] for k in rows[0]} for r in after[t]), key=repr) if rows else after[t]
            for t, rows in before.items()}  # fmt: skip


def redacted_by_step_11(before: Rows) -> Rows:
    """What migration 11 makes of a version-10 database's rows: earlier changes of a removed item
    or comment become their redacted form; pages' assembled cards are dropped."""
    expected = {t: [dict(r) for r in rows] for t, rows in before.items()}
    redactions = {
        2: {"op": "item.redacted", "item_id": 2},  # the deleted note's creation
        9: {"op": "comment.redacted", "comment_id": 2},  # the hidden comment's creation
    }
    for change in expected["changes"]:
        if change["session_id"] == "s1" and change["seq"] in redactions:
            change["op"] = redactions[change["seq"]]["op"]
            payload = {"type": "change", "seq": change["seq"]} | redactions[change["seq"]]
            change["payload"] = json.dumps(payload, separators=(",", ":"))
    expected["changes"].sort(key=repr)
    expected["card_sections"] = []
    return expected


async def check_reads(store: Store, version: int) -> None:
    """The upgraded database through the store, as the app reads it, and a write after it."""
    event = await store.read(lambda r: r.get_event("ev1"))
    assert event is not None and event.title == "Upgrade Conf" and event.hashtags == ("upconf",)
    items = await store.read(lambda r: r.list_items("s1"))
    assert [i.body for i in items][:2] == ["Wombats dig long burrows", "Best burrow?"]
    assert await store.read(lambda r: r.stream_head("s1")) == ("epoch1", 11)
    log = "\n".join(await store.read(lambda r: r.changes_between("s1", 0, 11)))
    assert "Wombats dig burrows" in log
    assert "A secret that was deleted" not in log and "A rude comment" not in log
    assert await store.read(lambda r: r.get_media("m1")) == ("image/png", b"\x89PNG\r\n\x1a\n\x00\x01\xff")
    history = await store.read(lambda r: r.item_history("s1"))
    assert [v.body for v in history[1]] == ["Wombats dig burrows"]
    for words, found in ((("wombat",), "note"), (("seance",), "session"), (("lovely",), "comment")):
        hits = (await store.read(lambda r, w=words: r.search(SearchQuery(terms=w)))).hits  # type: ignore[misc]
        assert found in {h.kind for h in hits}, (words, hits)
    comments = await store.read(lambda r: r.list_comments("s1"))
    assert sorted(c.body for c in comments) == ["A rude comment", "Lovely talk"]
    ledger = await store.read(lambda r: r.moderation_log("ev1"))
    assert [e.reason for e in ledger] == (["rude", "off topic"] if version >= 15 else [])

    # Ids and seqs carry on from the old rows.
    assert await store.write(note_op("s1", "after-upgrade")) == (8, 12)


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_sqlite_database_of_an_earlier_release_upgrades_in_place(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.sqlite3"
    shutil.copy(FIXTURES / f"v{version}.sqlite3", path)
    before = sqlite_rows(path)
    db = Database(str(path), read_timeout=5, write_timeout=10)
    await db.open()
    try:
        assert await db.pragma("user_version") == db.schema_version >= 15
        upgraded = sqlite_rows(path)
        assert kept(before, upgraded) == (before if version >= 11 else redacted_by_step_11(before))
        await check_reads(db, version)
    finally:
        await db.close()
    fresh = tmp_path / "fresh.sqlite3"
    db = Database(str(fresh))
    await db.open()
    await db.close()
    assert sqlite_schema(path) == sqlite_schema(fresh)


@pytest.mark.parametrize("version", VERSIONS)
async def test_postgres_database_of_an_earlier_release_upgrades_in_place(
    pg_server: PostgresServer, pg_url: str, version: int
) -> None:
    await asyncio.to_thread(restore, pg_server, pg_url, FIXTURES / f"v{version}.sql")
    before = await pg_rows(pg_url)
    assert before["liveblog_schema"] == [{"version": version}]
    store = PostgresStore(pg_url, read_timeout=5, write_timeout=10)
    await store.open()
    try:
        upgraded = await pg_rows(pg_url)
        assert upgraded["liveblog_schema"] == [{"version": store.schema_version}]
        assert store.schema_version >= 15
        expected = before if version >= 11 else redacted_by_step_11(before)
        expected["liveblog_schema"] = upgraded["liveblog_schema"]
        assert kept(before, upgraded) == expected
        await check_reads(store, version)
    finally:
        await store.close()
    fresh = await pg_server.new_database()
    try:
        store = PostgresStore(fresh)
        await store.open()
        await store.close()
        assert await pg_schema(pg_url) == await pg_schema(fresh)
    finally:
        await pg_server.drop_database(fresh)


def test_the_fixtures_are_what_their_readme_says() -> None:
    """Each fixture is at the version its name says (a regenerated file would show here first)."""
    for version in VERSIONS:
        conn = sqlite3.connect(FIXTURES / f"v{version}.sqlite3")
        try:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        finally:
            conn.close()
        dump = (FIXTURES / f"v{version}.sql").read_text(encoding="utf-8")
        assert f"COPY public.liveblog_schema (version) FROM stdin;\n{version}\n" in dump


def test_a_type_word_no_dialect_knows_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown type word \{uuid\}"):
        script(Step(both="CREATE TABLE t (id {uuid})"), SQLITE)
    assert script(Step(both="CREATE TABLE t (id {id}, b {blob})", postgres=";"), POSTGRES) == (
        "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, b BYTEA);"
    )
    assert script("CREATE TABLE t (id {id}, data TEXT DEFAULT '{}')", SQLITE) == (
        "CREATE TABLE t (id INTEGER PRIMARY KEY, data TEXT DEFAULT '{}')"
    )

"""The query layer (liveblog/storage/sql.py): placeholders, statements built per dialect, and the
seam's answers (rows changed, constraint errors) the same on both backends."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

from liveblog.storage import Store
from liveblog.storage.sql import (
    POSTGRES,
    SQLITE,
    ForeignKeyViolation,
    Query,
    UniqueViolation,
    dollar_placeholders,
)
from tests.test_storage import seed, store  # noqa: F401 (the fixture over both backends)


def test_placeholders_are_numbered_outside_quoted_text_only() -> None:
    sql = "SELECT '?', \"a?b\", 'it''s ?' FROM t WHERE a = ? AND b = ?::text[] AND c = '?'"
    assert (
        dollar_placeholders(sql)
        == "SELECT '?', \"a?b\", 'it''s ?' FROM t WHERE a = $1 AND b = $2::text[] AND c = '?'"
    )
    assert SQLITE.render(sql) == sql


def test_an_unterminated_quote_is_refused_naming_the_statement() -> None:
    with pytest.raises(ValueError, match="unterminated quote in SQL: .*WHERE a = 'x"):
        dollar_placeholders("SELECT 1 FROM t WHERE a = 'x")


def test_a_query_is_built_once_per_dialect() -> None:
    built: list[str] = []

    def build(d: Any) -> str:
        built.append(d.name)
        return f"SELECT id FROM items WHERE {d.json_is_true('data', 'pinned')} AND session_id = ?"

    query = Query(build)
    for _ in range(3):
        assert (
            query.text(SQLITE)
            == "SELECT id FROM items WHERE json_extract(data, '$.pinned') = 1 AND session_id = ?"
        )
        assert (
            query.text(POSTGRES)
            == "SELECT id FROM items WHERE data::jsonb -> 'pinned' = 'true'::jsonb AND session_id = $1"
        )
    assert built == ["sqlite", "postgres"]


async def test_the_seam_answers_alike_on_both_backends(store: Store) -> None:  # noqa: F811
    await seed(store)

    async def accounts(tx: Any) -> int:
        for name in ("ada", "bo"):
            await tx.db.execute(
                "INSERT INTO accounts (username, password_hash, role, created_at) VALUES (?, ?, 'reader', '2026')",
                (name, "x"),
            )
        return int(await tx.db.execute("UPDATE accounts SET role = ? WHERE role = 'reader'", ("organiser",)))

    assert await store.write(accounts) == 2  # rows changed

    async def duplicate(tx: Any) -> None:
        await tx.db.execute(
            "INSERT INTO accounts (username, password_hash, role, created_at) VALUES (?, 'x', 'reader', '2026')",
            ("ada",),
        )

    with pytest.raises(UniqueViolation):
        await store.write(duplicate)

    async def dangling(tx: Any) -> None:
        await tx.db.execute(
            "INSERT INTO login_sessions (token_hash, account_id, created_at, expires_at) VALUES (?, ?, '2026', '2027')",
            ("t", 999_999),
        )

    with pytest.raises(ForeignKeyViolation):
        await store.write(dangling)
    assert await store.read(lambda r: r.db.fetch_value("SELECT count(*) FROM accounts")) == 2
    assert (
        await store.read(lambda r: r.db.fetch_one("SELECT id FROM accounts WHERE username = ?", ("nobody",)))
        is None
    )


async def test_inactive_invites_are_found_among_more_ids_than_one_statement_takes(store: Store) -> None:  # noqa: F811
    sid = await seed(store)
    session = await store.read(lambda r: r.get_session(sid))
    assert session is not None

    async def invites(tx: Any) -> list[str]:
        ids = [(await tx.insert_invite(session.event_id, sid, f"taker {n}"))[0].id for n in range(3)]
        await tx.revoke_invite(ids[1])
        return ids

    ids = await store.write(invites)
    unknown = [f"inv-none-{n}" for n in range(1_200)]  # past SQLite's 500 a statement
    asked = unknown[:700] + ids + unknown[700:]
    assert await store.read(lambda r: r.inactive_invites(asked)) == unknown[:700] + [ids[1]] + unknown[700:]


def test_a_module_written_once_speaks_only_through_the_query_layer() -> None:
    # Its SQL runs on PostgreSQL as it is, with no shim: a `conn` call in it (SQLite's API and
    # placeholders) would work on SQLite and fail only on PostgreSQL. Mixins on OpsBase are such
    # modules, and redaction.py, whose functions take a unit's `db`.
    storage = Path(__file__).resolve().parent.parent / "liveblog" / "storage"
    texts = {p.name: p.read_text() for p in storage.glob("*.py") if p.name != "base.py"}
    written_once = {name for name, text in texts.items() if "import OpsBase" in text} | {"redaction.py"}
    assert written_once >= {
        "repo.py",
        "votes.py",
        "access.py",
        "comments.py",
        "cards.py",
        "exports.py",
        "feeds.py",
        "programme.py",
        "archive.py",
    }
    assert sorted(name for name in written_once if "conn." in texts[name] or "conn," in texts[name]) == []


async def test_the_dialects_time_and_json_functions_answer_alike(store: Store) -> None:  # noqa: F811
    sid = await seed(store)
    session = await store.read(lambda r: r.get_session(sid))
    assert session is not None

    async def items(tx: Any) -> None:
        for n, (kind, at, data) in enumerate(
            [
                ("note", "2026-11-30T09:07:59.123Z", {}),
                ("note", "2026-11-30T09:14:00Z", {}),
                ("note", "2026-11-30T09:45:00Z", {}),
                ("poll", "2026-11-30T09:50:00Z", {"state": "closed", "voters": 12}),
                ("poll", "2026-11-30T09:55:00Z", {"state": "open"}),
                ("poll", "2026-11-30T09:56:00Z", {"state": "draft", "voters": 3}),
            ]
        ):
            await tx.insert_item(
                session_id=sid,
                kind=kind,
                client_id=f"c{n}",
                author="a",
                author_ref=None,
                body=f"b{n}",
                html="",
                key_point=False,
                data=data,
                typed_at=at,
            )

    await store.write(items)
    activity = await store.read(lambda r: r.activity(session.event_id))
    assert activity == [("2026-11-30T09:00", 2), ("2026-11-30T09:45", 4)]
    turnout = await store.read(lambda r: r.poll_turnout(session.event_id))
    assert [(body, voters) for _, _, body, voters in turnout] == [("b3", 12), ("b4", 0)]


# What PostgreSQL's unit may define itself: hot paths a benchmark shows are worth it (each names
# `bench.` and its figure where it stands), and its own full-text search (the dialect leaves
# search to each backend). Anything else it defines is a second copy of a query, or an operation
# SQLite lacks: write it once in the domain's mixin instead (docs/architecture.md).
PG_OWN = {
    "insert_item": "bench.",
    "complete_client_op": "bench.",
    "claimed_client_op": "bench.",
    "search": "",
}


def test_postgresql_defines_only_its_benchmarked_hot_paths_and_its_search() -> None:
    from liveblog.storage.postgres.unit import PgUnit
    from liveblog.storage.unit import Operations, SqliteUnit

    assert [n for n, v in vars(SqliteUnit).items() if callable(v)] == []  # SQLite runs Operations as written
    own = {
        name: value
        for cls in PgUnit.__mro__
        if cls.__module__.startswith("liveblog.storage.postgres.")
        for name, value in vars(cls).items()
        if callable(value) and name != "__init__"
    }
    assert sorted(own) == sorted(PG_OWN), "PostgreSQL's unit defines operations of its own (see PG_OWN)"
    assert {name for name in own if hasattr(Operations, name)} >= {"insert_item", "complete_client_op"}
    for name, marker in PG_OWN.items():
        assert marker in inspect.getsource(own[name]), f"PgUnit.{name} does not name the benchmark it wins"


def test_no_postgresql_module_imports_a_private_helper_of_another_module() -> None:
    postgres = Path(__file__).resolve().parent.parent / "liveblog" / "storage" / "postgres"
    private = []
    for path in postgres.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not (node.module or "").startswith(
                "liveblog.storage.postgres"
            ):
                private += [
                    f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")
                ]
    assert private == []

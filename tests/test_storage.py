"""The storage interface (liveblog/storage/interface.py), tested through its operations only.

Every test here takes the `store` fixture and uses nothing but `Store.write`, `Store.read` and
the typed operations of a unit, so a second backend runs them unchanged: add it to
`STORE_BACKENDS` below. Tests of one backend's internals (its migrations from an old file, its
writer thread) are marked with that backend's name at the end of this file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from liveblog.errors import BadRequest, Conflict, NotFound, Unavailable
from liveblog.models import Change, SearchQuery
from liveblog.storage import Database, Store, Unit
from liveblog.storage.postgres import PostgresStore
from liveblog.storage.schema import MIGRATIONS

STORE_BACKENDS = ["sqlite", "postgres"]


async def open_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    store: Store
    if backend == "sqlite":
        store = Database(str(tmp_path / "store.sqlite3"), read_timeout=5, write_timeout=10)
    elif backend == "postgres":
        server = request.getfixturevalue("pg_server")
        url = await server.new_database()
        request.addfinalizer(lambda: asyncio.run(server.drop_database(url)))
        store = PostgresStore(url, read_timeout=5, write_timeout=10)
    else:
        raise AssertionError(f"unknown backend {backend}")
    await store.open()
    return store


@pytest.fixture(params=STORE_BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(request.param, tmp_path, request)
    published: list[Change] = []
    s.on_commit = published.extend
    s.published = published  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        await s.close()


async def seed(store: Store) -> str:
    async def op(tx: Unit) -> str:
        event = await tx.insert_event({"title": "Storage Day", "starts_on": "2026-11-30", "ends_on": "2026-11-30"})
        session = await tx.insert_session(
            event.id, {"title": "Keynote", "starts_at": "2026-11-30T09:00:00Z", "ends_at": "2026-11-30T10:00:00Z"}
        )
        return session.id

    return await store.write(op)


def note_op(session_id: str, client_id: str, body: str = "a note") -> Any:
    async def op(tx: Unit) -> tuple[int, int]:
        if await tx.claim_client_op(session_id, client_id, body) is not None:
            item = await tx.find_item_by_client_id(session_id, client_id)
            assert item is not None
            return item.id, -1
        item, change = await tx.insert_item(
            session_id=session_id, kind="note", client_id=client_id, author="Ana", author_ref="inv-1",
            body=body, html=f"<p>{body}</p>", key_point=False, data={}, typed_at="2026-11-30T09:05:00Z",
        )
        await tx.complete_client_op(session_id, client_id, {"item_id": item.id, "seq": change.seq})
        return item.id, change.seq

    return op


async def test_sequence_numbers_are_contiguous_under_concurrent_writes(store: Store) -> None:
    sid = await seed(store)
    results = await asyncio.gather(*(store.write(note_op(sid, f"c{i}")) for i in range(150)))
    seqs = sorted(seq for _, seq in results)
    assert seqs == list(range(1, 151))
    head = await store.read(lambda r: r.stream_head(sid))
    assert head is not None and head[1] == 150
    stored = await store.read(lambda r: r.changes_between(sid, 0, 10**9))
    assert len(stored) == 150
    published = [c.seq for c in store.published if c.session_id == sid]  # type: ignore[attr-defined]
    assert published == list(range(1, 151))  # published in commit order, each once


async def test_an_items_seq_is_the_seq_of_its_latest_change(store: Store) -> None:
    sid = await seed(store)
    item_id, seq = await store.write(note_op(sid, "n1"))

    async def edit(tx: Unit) -> tuple[Any, Change]:
        return await tx.update_item(item_id, {"body": "edited", "html": "<p>edited</p>"})

    item, change = await store.write(edit)
    assert change.seq == seq + 1 == item.seq
    assert change.payload["item"]["seq"] == change.seq
    assert item.version == 2


async def test_a_client_id_is_claimed_once_even_when_racing(store: Store) -> None:
    sid = await seed(store)
    results = await asyncio.gather(*(store.write(note_op(sid, "same")) for _ in range(20)))
    assert len({item_id for item_id, _ in results}) == 1
    assert sum(1 for _, seq in results if seq != -1) == 1
    items = await store.read(lambda r: r.list_items(sid))
    assert [i.client_id for i in items] == ["same"]


async def test_one_failing_op_rolls_back_only_itself_and_the_batch_commits_once(store: Store) -> None:
    sid = await seed(store)

    async def bad(tx: Unit) -> None:
        await tx.insert_item(
            session_id=sid, kind="note", client_id="bad", author="x", author_ref=None, body="half",
            html="", key_point=False, data={}, typed_at="2026-11-30T09:05:00Z",
        )
        raise Conflict("refused after writing", code="test_refusal")

    before = store.commits
    outcomes = await asyncio.gather(
        store.write(note_op(sid, "a")), store.write(bad), store.write(note_op(sid, "b")), return_exceptions=True
    )
    assert isinstance(outcomes[1], Conflict)
    assert not isinstance(outcomes[0], BaseException) and not isinstance(outcomes[2], BaseException)
    # One transaction for the three (group commit kept), the bad op's rows rolled back alone.
    assert store.commits - before == 1
    items = await store.read(lambda r: r.list_items(sid))
    assert [i.client_id for i in items] == ["a", "b"]
    # The failed op's sequence number was rolled back too: no hole in the stream.
    assert sorted(seq for _, seq in outcomes[0:3:2]) == [1, 2]  # type: ignore[misc]


async def test_upvotes_and_votes_count_once(store: Store) -> None:
    sid = await seed(store)

    async def question(tx: Unit) -> int:
        item, _ = await tx.insert_item(
            session_id=sid, kind="question", client_id="q1", author="", author_ref=None, body="Why?",
            html="", key_point=False, data={"state": "visible"}, typed_at="2026-11-30T09:05:00Z",
        )
        return item.id

    qid = await store.write(question)

    async def upvote(tx: Unit) -> bool:
        return await tx.insert_upvote(qid, "p1")

    firsts = await asyncio.gather(*(store.write(upvote) for _ in range(5)))
    assert firsts.count(True) == 1
    assert await store.read(lambda r: r.count_upvotes(qid)) == 1


async def test_an_unknown_session_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.write(note_op("no-such-session", "x"))
    assert await store.read(lambda r: r.get_session("no-such-session")) is None


async def test_an_events_own_feed_is_a_stream_but_no_programme_session(store: Store) -> None:
    session_id = await seed(store)
    event_id = (await store.read(lambda r: r.get_session(session_id))).event_id
    assert await store.read(lambda r: r.get_event_feed(event_id)) is None

    async def ensure(tx: Unit) -> Any:
        return await tx.ensure_event_feed(event_id)

    feed = await store.write(ensure)
    again = await store.write(ensure)  # idempotent: one feed per event
    assert feed.id == again.id and feed.is_event_feed and feed.event_id == event_id and feed.stream_epoch
    item_id, seq = await store.write(note_op(feed.id, "c1"))  # it carries a stream like a session's
    await store.write(note_op(feed.id, "c2", "another note"))
    newest = await store.read(lambda r: r.list_items(feed.id, newest=1))
    assert [i.body for i in newest] == ["another note"] and len(await store.read(lambda r: r.list_items(feed.id))) == 2
    assert seq == 1 and (await store.read(lambda r: r.stream_head(feed.id))) == (feed.stream_epoch, 2)
    # Programme reads never see it; stream reads do.
    assert await store.read(lambda r: r.get_session(feed.id)) is None
    assert [s.id for s in await store.read(lambda r: r.list_sessions(event_id))] == [session_id]
    assert feed.id not in [s.id for s in await store.read(lambda r: r.list_live_sessions())]
    found = await store.read(lambda r: r.get_stream_session(feed.id))
    assert found is not None and found.is_event_feed and found.last_seq == 2
    assert (await store.read(lambda r: r.get_event_feed(event_id))).id == feed.id
    with pytest.raises(NotFound):
        await store.write(lambda tx: tx.ensure_event_feed("no-such-event"))
    # Its items are found by search, marked as the event's feed's.
    result = await store.read(lambda r: r.search(SearchQuery(terms=("note",))))
    assert [h.in_event_feed for h in result.hits if h.ref == str(item_id)] == [True]


async def test_renaming_a_social_author_renames_their_stored_posts(store: Store) -> None:
    from liveblog.models import SocialPost

    session_id = await seed(store)
    event_id = (await store.read(lambda r: r.get_session(session_id))).event_id
    did = "did:plc:ana4xq2tsuk7mlvp"

    def post(n: int, handle: str) -> SocialPost:
        return SocialPost(network="bluesky", post_id=f"at://{did}/app.bsky.feed.post/3k{n}", author_handle=handle,
                          author_name=handle, text=f"post {n} #test", url="", posted_at="2026-11-30T09:00:00.000Z")

    async def store_posts(tx: Unit) -> None:
        for n, handle in enumerate((did, did, "ana.old.example", "someone.else")):
            row = await tx.insert_social_post(post(n, handle))
            assert row is not None
            await tx.insert_social_route(row, event_id, session_id, "pending")

    await store.write(store_posts)

    async def rename(tx: Unit) -> Any:
        return await tx.rename_social_author("bluesky", [did, "ana.old.example"], "ana.bsky.social", "Ana Lima")

    routes = await store.write(rename)
    assert len(routes) == 3 and {(r.post.author_handle, r.post.author_name) for r in routes} == {
        ("ana.bsky.social", "Ana Lima")}
    stored = await store.read(lambda r: r.list_social_routes(session_id=session_id))
    assert sorted(r.post.author_handle for r in stored) == ["ana.bsky.social"] * 3 + ["someone.else"]
    assert await store.write(rename) == []  # nothing left under the old names
    assert await store.write(lambda tx: tx.rename_social_author("bluesky", [], "x", "y")) == []


async def test_a_failing_after_commit_callback_does_not_stop_the_writer(store: Store, caplog: Any) -> None:
    sid = await seed(store)

    async def op(tx: Unit) -> str:
        tx.after_commit.append(lambda: 1 / 0)  # type: ignore[func-returntype, return-value]
        return "committed"

    with caplog.at_level(logging.ERROR):
        assert await asyncio.wait_for(store.write(op), 10) == "committed"
    assert "after-commit callback failed" in caplog.text
    # Later writes still complete (before the fix the writer task had died and they hung).
    item_id, seq = await asyncio.wait_for(store.write(note_op(sid, "after")), 10)
    assert seq == 1


# -- SQLite only ---------------------------------------------------------------------------------


async def test_sqlite_writer_that_fails_is_restarted_and_nobody_waits_forever(
    tmp_path: Path, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(str(tmp_path / "w.sqlite3"), write_timeout=10)
    await db.open()
    try:
        sid = await seed(db)
        real = db._run_batch
        calls = {"n": 0}

        async def broken_once(batch: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("writer bug")
            await real(batch)

        monkeypatch.setattr(db, "_run_batch", broken_once)
        with caplog.at_level(logging.ERROR):
            with pytest.raises(Unavailable):
                await asyncio.wait_for(db.write(note_op(sid, "lost")), 10)
        assert "database writer failed" in caplog.text
        assert db.writer_failures == 1 and db.healthy
        assert (await asyncio.wait_for(db.write(note_op(sid, "next")), 10))[1] == 1
    finally:
        await db.close()


async def test_sqlite_read_past_its_timeout_is_unavailable(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "t.sqlite3"), readers=1)
    await db.open()
    try:
        async with db.reader():  # the only live reader is busy
            with pytest.raises(Unavailable):
                await db.read(lambda r: r.list_events(), timeout=0.2)
            # The pages pool is separate: a page load does not queue behind live work.
            assert await db.read(lambda r: r.list_events(), timeout=5, pool="pages") == []
    finally:
        await db.close()


async def test_sqlite_upgrade_of_a_version_1_database_that_holds_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(f"BEGIN;\n{MIGRATIONS[0]}\nPRAGMA user_version = 1;\nCOMMIT;")
    conn.execute(
        "INSERT INTO events (id, title, starts_on, ends_on, hashtags, created_at, updated_at)"
        " VALUES ('ev', 'Old Event', '2025-05-01', '2025-05-01', '[\"old\"]', 't', 't')"
    )
    conn.execute(
        "INSERT INTO sessions (id, event_id, title, starts_at, ends_at, state, stream_epoch, last_seq, created_at,"
        " updated_at) VALUES ('s1', 'ev', 'Old Session', '2025-05-01T09:00:00Z', '2025-05-01T10:00:00Z', 'ended',"
        " 'e1', 1, 't', 't')"
    )
    conn.execute(
        "INSERT INTO items (session_id, kind, client_id, author, body, html, key_point, data, typed_at, received_at,"
        " sort_at, updated_at, deleted, version, seq) VALUES ('s1', 'note', 'c1', 'Ana', 'kept', '<p>kept</p>', 1,"
        " '{}', '2025-05-01T09:05:00Z', '2025-05-01T09:05:00Z', '2025-05-01T09:05:00Z', 't', 0, 1, 1)"
    )
    conn.execute(
        "INSERT INTO changes (session_id, seq, op, item_id, payload, created_at)"
        " VALUES ('s1', 1, 'item.created', 1, '{\"type\":\"change\",\"seq\":1}', 't')"
    )
    conn.close()

    db = Database(str(path))
    await db.open()
    try:
        assert await db.pragma("user_version") == len(MIGRATIONS)
        event = await db.read(lambda r: r.get_event("ev"))
        assert event is not None and event.hashtags == ("old",)
        items = await db.read(lambda r: r.list_items("s1"))
        assert [(i.body, i.key_point) for i in items] == [("kept", True)]
        assert await db.read(lambda r: r.stream_head("s1")) == ("e1", 1)
        assert await db.read(lambda r: r.changes_between("s1", 0, 5)) == ['{"type":"change","seq":1}']
        found = await db.read(lambda r: r.search(SearchQuery(terms=("kept",))))
        assert [(h.kind, h.ref) for h in found.hits] == [("note", "1")]  # indexed by the archive's step
    finally:
        await db.close()


async def test_postgres_upgrade_of_a_version_4_database_indexes_what_it_holds(pg_url: str) -> None:
    import asyncpg

    from liveblog.storage.postgres.schema import MIGRATIONS as PG_MIGRATIONS

    conn = await asyncpg.connect(pg_url)
    try:
        for step in PG_MIGRATIONS[:4]:
            await conn.execute(step)
        await conn.execute("CREATE TABLE liveblog_schema (version INTEGER NOT NULL); INSERT INTO liveblog_schema VALUES (4)")
        await conn.execute(
            "INSERT INTO events (id, title, starts_on, ends_on, created_at, updated_at)"
            " VALUES ('ev', 'Old Event', '2025-05-01', '2025-05-01', 't', 't');"
            "INSERT INTO sessions (id, event_id, title, starts_at, ends_at, state, stream_epoch, last_seq, created_at,"
            " updated_at) VALUES ('s1', 'ev', 'Old Séance', '2025-05-01T09:00', '2025-05-01T10:00', 'ended', 'e1', 3,"
            " 't', 't');"
            "INSERT INTO items (id, session_id, kind, client_id, body, data, typed_at, received_at, sort_at, updated_at,"
            " deleted, seq) VALUES"
            " (1, 's1', 'note', 'c1', 'kept wombats', '{}', '2025-05-01T09:05:00Z', 't', 't', 't', 0, 1),"
            " (2, 's1', 'note', 'c2', 'deleted wombats', '{}', '2025-05-01T09:06:00Z', 't', 't', 't', 1, 2),"
            " (3, 's1', 'poll', 'c3', 'draft wombats?', '{\"state\": \"draft\"}', '2025-05-01T09:07:00Z', 't', 't',"
            " 't', 0, 3)"
        )
    finally:
        await conn.close()
    store = PostgresStore(pg_url)
    await store.open()
    try:
        found = await store.read(lambda r: r.search(SearchQuery(terms=("wombat",))))
        assert [(h.kind, h.ref) for h in found.hits] == [("note", "1")]
        found = await store.read(lambda r: r.search(SearchQuery(terms=("seance",))))
        assert [(h.kind, h.ref, h.title) for h in found.hits] == [("session", "s1", "Old Séance")]
    finally:
        await store.close()


# -- PostgreSQL only: several writers on one database, as several app processes are ---------------


async def test_postgres_writers_in_two_processes_share_contiguous_seqs_and_claim_a_client_id_once(
    pg_url: str,
) -> None:
    # Each PostgresStore has its own writer connection and group commit, exactly as two app
    # processes do; opening both at once also runs the migrations concurrently (advisory lock).
    a, b = PostgresStore(pg_url, write_timeout=20), PostgresStore(pg_url, write_timeout=20)
    await asyncio.gather(a.open(), b.open())
    try:
        sid = await seed(a)
        writes = [(a if i % 2 else b).write(note_op(sid, f"c{i}")) for i in range(200)]
        # The same client id sent to both processes at once, several times over.
        writes += [s.write(note_op(sid, "raced")) for _ in range(5) for s in (a, b)]
        results = await asyncio.gather(*writes)
        seqs = sorted(seq for _, seq in results if seq != -1)
        assert seqs == list(range(1, 202))  # 200 notes + the raced one, no hole, no duplicate
        assert len({item_id for item_id, _ in results[200:]}) == 1
        assert await a.read(lambda r: r.count_items(sid)) == 201
        stored = await b.read(lambda r: r.changes_between(sid, 0, 10**9))
        assert len(stored) == 201
        assert a.schema_version == b.schema_version
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_postgres_batches_that_deadlock_across_processes_are_rerun_whole(pg_url: str) -> None:
    a, b = PostgresStore(pg_url, write_timeout=30), PostgresStore(pg_url, write_timeout=30)
    await a.open()
    await b.open()
    published: dict[str, list[int]] = {"a": [], "b": []}
    a.on_commit = lambda changes: published["a"].extend(c.seq for c in changes)
    b.on_commit = lambda changes: published["b"].extend(c.seq for c in changes)
    try:
        s1, s2 = await seed(a), await seed(a)

        locked = {"a": asyncio.Event(), "b": asyncio.Event()}

        def two_sessions(first: str, second: str, tag: str, other: str) -> Any:
            async def op(tx: Unit) -> None:
                # Lock one session's row, wait until the other writer holds the other row, then
                # ask for the row it holds: PostgreSQL finds the cycle and aborts one transaction.
                # (A rerun finds the other's event already set and goes straight on.)
                await tx.append_change(first, "test.touch", None, lambda seq: {"tag": tag})
                locked[tag].set()
                await asyncio.wait_for(locked[other].wait(), 10)
                await tx.append_change(second, "test.touch", None, lambda seq: {"tag": tag})

            return op

        await asyncio.gather(a.write(two_sessions(s1, s2, "a", "b")), b.write(two_sessions(s2, s1, "b", "a")))
        assert a.retried_batches + b.retried_batches >= 1
        for sid in (s1, s2):
            head = await a.read(lambda r, sid=sid: r.stream_head(sid))  # type: ignore[misc]
            assert head is not None and head[1] == 2  # each op committed once: one change per session each
            stored = await a.read(lambda r, sid=sid: r.changes_between(sid, 0, 99))  # type: ignore[misc]
            assert sorted(json.loads(t)["tag"] for t in stored) == ["a", "b"]
        # Each process published what it committed, once (the aborted attempt published nothing).
        assert len(published["a"]) == len(published["b"]) == 2
        assert sorted(published["a"] + published["b"]) == [1, 1, 2, 2]
    finally:
        await a.close()
        await b.close()


async def test_input_a_backend_cannot_store_is_bad_input_not_a_crash(store: Store) -> None:
    # SQLite stores a NUL character and looks up a float id without complaint; PostgreSQL refuses
    # both. Either way the caller gets a domain answer: stored, not found, or 400 - never a driver error.
    sid = await seed(store)
    try:
        item_id, _ = await store.write(note_op(sid, "nul", "before\x00after"))
    except BadRequest:
        pass
    else:
        assert item_id > 0
    try:
        found = await store.read(lambda r: r.get_session(1.5))  # type: ignore[arg-type]
    except BadRequest:
        pass
    else:
        assert found is None
    # The writer is fine afterwards.
    assert (await store.write(note_op(sid, "after")))[1] > 0


async def test_the_moderation_queue_lists_comments_by_state_newest_first(store: Store) -> None:
    sid = await seed(store)

    async def op(tx: Unit) -> list[int]:
        reader = await tx.insert_account("rosa", "x", role="reader")
        ids = []
        for n, state in enumerate(["pending", "visible", "pending", "hidden", "pending"]):
            comment, _ = await tx.insert_comment(session_id=sid, parent_id=None, account_id=reader.id, author="rosa",
                                                 body=f"c{n}", html=f"<p>c{n}</p>", state=state, ip="127.0.0.1")
            ids.append(comment.id)
        await tx.update_comment(ids[4], {"deleted": True, "body": "", "html": ""}, op="comment.deleted")
        return ids

    ids = await store.write(op)
    pending = await store.read(lambda r: r.comments_in_state("pending", 10))
    assert [c.id for c in pending] == [ids[2], ids[0]]  # the deleted one is gone from the queue
    assert [c.id for c in await store.read(lambda r: r.comments_in_state("hidden", 10))] == [ids[3]]
    assert [c.id for c in await store.read(lambda r: r.comments_in_state("pending", 1))] == [ids[2]]


def test_postgres_has_every_operation_of_the_interface() -> None:
    # mypy cannot see through the portable mixins (postgres/portable.py), so this says it: an
    # operation added to interface.Unit without a PostgreSQL version fails here, not in production.
    from liveblog.storage.postgres.unit import PgUnit

    operations = [n for n in dir(Unit) if not n.startswith("_") and callable(getattr(Unit, n))]
    assert [n for n in operations if not hasattr(PgUnit, n)] == []

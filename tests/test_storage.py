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
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from liveblog.errors import BadRequest, Conflict, NotFound, Unavailable
from liveblog.models import CardSection, Change, ItemCard, RenderedCard, SearchQuery
from liveblog.storage import Database, Store, Unit
from liveblog.storage.postgres import PostgresStore
from liveblog.storage.schema import POSTGRES_SCRIPTS, SQLITE_SCRIPTS

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
        event = await tx.insert_event(
            {"title": "Storage Day", "starts_on": "2026-11-30", "ends_on": "2026-11-30"}
        )
        session = await tx.insert_session(
            event.id,
            {"title": "Keynote", "starts_at": "2026-11-30T09:00:00Z", "ends_at": "2026-11-30T10:00:00Z"},
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
            session_id=session_id,
            kind="note",
            client_id=client_id,
            author="Ana",
            author_ref="inv-1",
            body=body,
            html=f"<p>{body}</p>",
            key_point=False,
            data={},
            typed_at="2026-11-30T09:05:00Z",
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


async def test_an_item_updated_with_no_fields_gets_a_new_version_and_change(store: Store) -> None:
    sid = await seed(store)
    item_id, seq = await store.write(note_op(sid, "n1"))
    item, change = await store.write(lambda tx: tx.update_item(item_id, {}, op="item.updated"))
    assert (item.version, item.seq, change.seq) == (2, seq + 1, seq + 1)


async def test_ping_answers_while_the_database_is_there(store: Store, tmp_path: Path) -> None:
    assert await store.ping() is True
    if isinstance(store, Database):  # moved away under the running process: later writes would be lost
        Path(store.path).rename(tmp_path / "moved.sqlite3")
        assert await store.ping() is False


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
            session_id=sid,
            kind="note",
            client_id="bad",
            author="x",
            author_ref=None,
            body="half",
            html="",
            key_point=False,
            data={},
            typed_at="2026-11-30T09:05:00Z",
        )
        raise Conflict("refused after writing", code="test_refusal")

    before = store.commits
    outcomes = await asyncio.gather(
        store.write(note_op(sid, "a")),
        store.write(bad),
        store.write(note_op(sid, "b")),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], Conflict)
    assert not isinstance(outcomes[0], BaseException) and not isinstance(outcomes[2], BaseException)
    # One transaction for the three (group commit kept), the bad op's rows rolled back alone.
    assert store.commits - before == 1
    items = await store.read(lambda r: r.list_items(sid))
    assert [i.client_id for i in items] == ["a", "b"]
    # The failed op's sequence number was rolled back too: no hole in the stream.
    assert sorted(seq for _, seq in outcomes[0:3:2]) == [1, 2]  # type: ignore[misc]


async def test_a_batch_is_published_in_one_call_in_order_without_its_failed_ops(store: Store) -> None:
    # Each call is a fan-out pass: notes committed together must go to the viewers as one burst
    # (one write each), not one pass per note. One pass each let the passes pile up when a core
    # was saturated: 5,000 viewers, 25 notes/s, p50 0.5 s (docs/performance.md, item 5).
    # An op's after-commit callbacks still come between its changes and the next op's.
    sid = await seed(store)
    calls: list[Any] = []
    store.on_commit = lambda changes: calls.append([c.seq for c in changes])

    async def bad(tx: Unit) -> None:
        await note_op(sid, "bad")(tx)
        raise Conflict("refused after writing", code="test_refusal")

    async def with_callback(tx: Unit) -> tuple[int, int]:
        tx.after_commit.append(lambda: calls.append("callback"))
        return await note_op(sid, "b")(tx)

    before = store.commits
    # Queued without yielding to the loop in between: the writer takes them as one batch.
    futures = [
        await store.enqueue(note_op(sid, "a")),
        await store.enqueue(bad),
        await store.enqueue(with_callback),
        await store.enqueue(note_op(sid, "c")),
        await store.enqueue(note_op(sid, "d")),
    ]
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert store.commits - before == 1
    assert isinstance(outcomes[1], Conflict)
    assert [seq for _, seq in outcomes[0:1] + outcomes[2:]] == [1, 2, 3, 4]  # type: ignore[misc]
    assert calls == [[1, 2], "callback", [3, 4]]


async def test_a_failing_op_alone_in_its_batch_rolls_back_everything_it_wrote(store: Store) -> None:
    # A batch of one op runs without a savepoint on SQLite: its transaction is rolled back
    # instead, which must take back exactly what the savepoint would have (claim, item, seq).
    sid = await seed(store)

    async def bad(tx: Unit) -> None:
        await note_op(sid, "bad")(tx)
        raise Conflict("refused after writing", code="test_refusal")

    with pytest.raises(Conflict):
        await store.write(bad)
    assert await store.read(lambda r: r.list_items(sid)) == []
    # The client id was not claimed, the seq not taken: both are free for the next write.
    _, seq = await store.write(note_op(sid, "bad"))
    assert seq == 1  # not -1 (a resend of a claimed id), not 2 (a hole in the stream)
    assert [i.client_id for i in await store.read(lambda r: r.list_items(sid))] == ["bad"]


async def test_a_changes_stored_text_is_exactly_its_published_payload(store: Store) -> None:
    # Resumes send the stored text, live viewers the published payload: they must be the same
    # bytes (the PostgreSQL insert_item builds the text inside its one statement).
    sid = await seed(store)

    async def op(tx: Unit) -> Change:
        _, change = await tx.insert_item(
            session_id=sid,
            kind="note",
            client_id="t1",
            author='Zoë "Z" O\'Neil',
            author_ref="inv-1",
            body='ünïcode \\ "quotes" </script> \u2028',
            html="<p>x &amp; y</p>",
            key_point=True,
            data={"photo": {"w": 3, "ratio": 1.5}, "tags": ["a", "é"], "empty": None},
            typed_at="2026-11-30T09:05:00Z",
        )
        return change

    change = await store.write(op)
    (text,) = await store.read(lambda r: r.changes_between(sid, 0, 10**9))
    assert text == json.dumps(change.payload, separators=(",", ":"), ensure_ascii=False)
    assert (
        json.loads(text)["item"]["id"] > 0 and json.loads(text)["item"]["seq"] == json.loads(text)["seq"] == 1
    )


async def test_a_resend_in_the_same_batch_gets_the_stored_ack(store: Store) -> None:
    # A note-taker's outbox may send a note again before the first copy is committed: both ops
    # land in one group commit, and the second must read the first's ack, not an empty one.
    sid = await seed(store)

    def capture(client_id: str) -> Any:
        async def op(tx: Unit) -> dict[str, Any]:
            found = await tx.claim_client_op(sid, client_id, "fp")
            if found is not None:
                return found[1] | {"resend": True}
            item, change = await tx.insert_item(
                session_id=sid,
                kind="note",
                client_id=client_id,
                author="Ana",
                author_ref=None,
                body="b",
                html="<p>b</p>",
                key_point=False,
                data={},
                typed_at="2026-11-30T09:05:00Z",
            )
            response = {"item_id": item.id, "seq": change.seq}
            await tx.complete_client_op(sid, client_id, response)
            return response

        return op

    first, again, other = await asyncio.gather(
        store.write(capture("dup")), store.write(capture("dup")), store.write(capture("other"))
    )
    assert again == first | {"resend": True} and first["seq"] == 1 and other["seq"] == 2
    assert await store.write(capture("dup")) == first | {"resend": True}  # and in a later transaction
    assert await store.write(capture("other")) == other | {"resend": True}


async def test_inactive_invites_are_the_revoked_and_unknown_ones(store: Store) -> None:
    sid = await seed(store)

    async def invite_three(tx: Unit) -> list[str]:
        session = await tx.get_session(sid)
        assert session is not None
        ids = [(await tx.insert_invite(session.event_id, sid, name))[0].id for name in ("Ada", "Bo", "Cy")]
        await tx.revoke_invite(ids[1])
        return ids

    ids = await store.write(invite_three)
    asked = [*ids, "no-such-invite"] + [f"x{n}" for n in range(600)]  # more than one SQLite chunk
    inactive = await store.read(lambda r: r.inactive_invites(asked))
    assert inactive == [ids[1], "no-such-invite"] + [f"x{n}" for n in range(600)]
    assert await store.read(lambda r: r.inactive_invites([])) == []


async def test_upvotes_and_votes_count_once(store: Store) -> None:
    sid = await seed(store)

    async def question(tx: Unit) -> int:
        item, _ = await tx.insert_item(
            session_id=sid,
            kind="question",
            client_id="q1",
            author="",
            author_ref=None,
            body="Why?",
            html="",
            key_point=False,
            data={"state": "visible"},
            typed_at="2026-11-30T09:05:00Z",
        )
        return item.id

    qid = await store.write(question)

    async def upvote(tx: Unit) -> bool:
        return await tx.insert_upvote(qid, "p1")

    firsts = await asyncio.gather(*(store.write(upvote) for _ in range(5)))
    assert firsts.count(True) == 1
    assert await store.read(lambda r: r.count_upvotes(qid)) == 1


async def found(store: Store, text: str, **filters: Any) -> list[str]:
    result = await store.read(lambda r: r.search(SearchQuery(terms=tuple(text.split()), **filters)))
    return sorted(h.ref for h in result.hits)


async def test_a_quoted_phrase_matches_its_words_in_order(store: Store) -> None:
    """'"stay interviews"' finds the phrase, not a text that has both words apart; the phrase's
    words are stemmed like the rest ('stay interview' finds 'stay interviews')."""

    async def programme(tx: Unit) -> str:
        event = await tx.insert_event(
            {"title": "Retention", "starts_on": "2026-11-30", "ends_on": "2026-11-30"}
        )
        session = await tx.insert_session(
            event.id, {"title": "Keynote", "starts_at": "2026-11-30T09:00", "ends_at": "2026-11-30T10:00"}
        )
        return session.id

    sid = await store.write(programme)
    phrase, _ = await store.write(note_op(sid, "p1", "We ran stay interviews with every new starter"))
    apart, _ = await store.write(note_op(sid, "p2", "Interviews showed people stay for their manager"))

    async def phrase_search(phrases: tuple[tuple[str, ...], ...], *words: str) -> list[str]:
        terms = tuple(dict.fromkeys([*words, *(w for p in phrases for w in p)]))
        result = await store.read(lambda r: r.search(SearchQuery(terms=terms, phrases=phrases)))
        return sorted(h.ref for h in result.hits)

    assert await found(store, "stay interviews") == sorted([str(phrase), str(apart)])
    assert await phrase_search((("stay", "interviews"),)) == [str(phrase)]
    assert await phrase_search((("stay", "interview"),)) == [str(phrase)]  # stemmed
    assert await phrase_search((("interviews", "stay"),)) == []
    assert await phrase_search((("stay", "interviews"),), "starter") == [str(phrase)]
    assert await phrase_search((("stay", "interviews"),), "manager") == []


async def test_search_stems_each_event_in_its_own_language(store: Store) -> None:
    async def programme(tx: Unit) -> tuple[str, str, str, str]:
        day = {"starts_on": "2026-11-30", "ends_on": "2026-11-30"}
        en = await tx.insert_event({"title": "Policy Day", **day, "language": "en"})
        fr = await tx.insert_event({"title": "Journée", **day, "language": "fr"})
        slot = {"starts_at": "2026-11-30T09:00", "ends_at": "2026-11-30T10:00"}
        s_en = await tx.insert_session(en.id, {"title": "Keynote", **slot})
        s_fr = await tx.insert_session(fr.id, {"title": "Ouverture", **slot})
        return en.id, fr.id, s_en.id, s_fr.id

    en, fr, s_en, s_fr = await store.write(programme)
    policies, _ = await store.write(note_op(s_en, "c1", "New policies, and the guests mangeaient"))
    mangeaient, _ = await store.write(note_op(s_fr, "c2", "Les élèves mangeaient des pommes"))
    # Each event's words stem in its own language, and one search finds both.
    assert await found(store, "policy") == [str(policies)]
    assert await found(store, "manger") == [str(mangeaient)]  # French stems; English keeps "mangeaient"
    assert await found(store, "mangeaient") == sorted([str(policies), str(mangeaient)])
    assert await found(store, "ELEVE manger") == [str(mangeaient)]  # diacritics folded, every word required
    assert await found(store, "manger", event_id=en) == []
    assert await found(store, "manger", event_id=fr) == [str(mangeaient)]
    (hit,) = (await store.read(lambda r: r.search(SearchQuery(terms=("policy",))))).hits
    assert "\x02policies\x03" in hit.snippet  # the word as written is marked
    # A new language re-stems what the event holds, in the same transaction.
    await store.write(lambda tx: tx.update_event(en, {"language": "none"}))
    assert await found(store, "policy") == []
    assert await found(store, "POLICIES") == [str(policies)]
    await store.write(lambda tx: tx.update_event(en, {"language": "en"}))
    assert await found(store, "policy") == [str(policies)]


async def test_a_note_is_in_the_index_in_the_transaction_that_writes_it(store: Store) -> None:
    sid = await seed(store)

    async def write_then_fail(tx: Unit) -> None:
        await note_op(sid, "c1", "Quokkas thrive on islands")(tx)
        # Findable inside the writing transaction...
        assert [h.kind for h in (await tx.search(SearchQuery(terms=("quokka",)))).hits] == ["note"]
        raise Conflict("rolled back")

    with pytest.raises(Conflict):
        await store.write(write_then_fail)
    assert await found(store, "quokka") == []  # ...and gone with it when it rolls back
    item_id, _ = await store.write(note_op(sid, "c2", "Quokkas thrive on islands"))
    assert await found(store, "quokka island") == [str(item_id)]  # findable as soon as the write returns


async def test_search_past_its_window_ranks_and_pages_only_the_newest_matches(store: Store) -> None:
    sid = await seed(store)

    def typed(n: int) -> Any:
        async def op(tx: Unit) -> int:
            item, _ = await tx.insert_item(
                session_id=sid,
                kind="note",
                client_id=f"c{n}",
                author="Ana",
                author_ref="inv-1",
                body="wombat " * (1 + n % 3) + f"note {n}",
                html="",
                key_point=False,
                data={},
                typed_at=f"2026-11-30T09:{n:02d}:00Z",
            )
            return item.id

        return op

    ids = [await store.write(typed(n)) for n in range(8)]
    window = SearchQuery(terms=("wombat",), window=5, limit=2)
    pages = [
        await store.read(lambda r, o=offset: r.search(replace(window, offset=o))) for offset in (0, 2, 4, 6)
    ]
    assert [(p.limited, p.total, p.more) for p in pages] == [
        (True, 5, True),
        (True, 5, True),
        (True, 5, False),
        (True, 5, False),
    ]
    seen = [h.ref for p in pages for h in p.hits]
    assert sorted(seen) == sorted(str(i) for i in ids[3:])  # the newest five, each once
    assert seen[0] == str(ids[5])  # ranked among themselves: the most wombats first
    # Under the window every match is ranked and counted; filters apply before it.
    everything = await store.read(lambda r: r.search(replace(window, window=100, limit=20)))
    assert (
        not everything.limited
        and everything.total == 8
        and everything.hits[0].ref in (str(ids[2]), str(ids[5]))
    )
    questions = await store.read(lambda r: r.search(replace(window, kinds=("question",))))
    assert (questions.limited, questions.total, questions.hits) == (False, 0, ())
    early = await store.read(lambda r: r.search(replace(window, date_to="2026-11-30", limit=20)))
    assert early.limited and early.total == 5


@pytest.mark.parametrize(
    "tag_sessions_as_words", [64, 1]
)  # SQLite: the tag filter as index words, or by rows
async def test_search_filters_by_tag_and_dates_find_the_same_however_they_run(
    store: Store, tag_sessions_as_words: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liveblog.storage.archive

    monkeypatch.setattr(liveblog.storage.archive, "FACET_SESSIONS", tag_sessions_as_words)

    async def programme(tx: Unit) -> list[str]:
        event = await tx.insert_event({"title": "Days", "starts_on": "2026-03-01", "ends_on": "2026-06-30"})
        ids = []
        for n in range(3):
            session = await tx.insert_session(
                event.id,
                {"title": f"Room {n}", "starts_at": "2026-03-01T09:00", "ends_at": "2026-03-01T10:00"},
            )
            ids.append(session.id)
        await tx.set_session_tags(ids[0], "organiser", ["otters"])
        await tx.set_session_tags(ids[1], "organiser", ["otters"])
        return ids

    sessions = await store.write(programme)

    def typed(sid: str, n: int, day: str) -> Any:
        async def op(tx: Unit) -> int:
            item, _ = await tx.insert_item(
                session_id=sid,
                kind="note",
                client_id=f"c{n}",
                author="Ana",
                author_ref=None,
                body=f"otter {n}",
                html="",
                key_point=False,
                data={},
                typed_at=f"{day}T23:59:00Z",
            )
            return item.id

        return op

    march = await store.write(typed(sessions[0], 1, "2026-03-02"))
    april = await store.write(typed(sessions[1], 2, "2026-04-10"))
    june = await store.write(typed(sessions[2], 3, "2026-06-20"))
    notes = {"kinds": ("note",)}
    assert await found(store, "otter", tag="otters", **notes) == sorted([str(march), str(april)])
    assert await found(store, "otter", tag="badgers", **notes) == []
    assert await found(store, "otter", date_from="2026-03-02", date_to="2026-03-02") == [str(march)]
    assert await found(store, "otter", date_from="2026-04-01", date_to="2026-04-30") == [str(april)]
    assert await found(store, "otter", date_from="2026-03-02", date_to="2026-06-20") == sorted(
        [str(march), str(april), str(june)]
    )  # a wide range (more days than are words)
    assert await found(store, "otter", date_from="2026-04-11", **notes) == [str(june)]
    assert await found(store, "otter", date_to="2026-04-09", **notes) == [str(march)]
    assert await found(store, "otter", date_from="2026-04-11", date_to="2026-04-09") == []
    assert await found(store, "otter", tag="otters", date_from="2026-04-01", date_to="2026-04-30") == [
        str(april)
    ]


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
    assert [i.body for i in newest] == ["another note"] and len(
        await store.read(lambda r: r.list_items(feed.id))
    ) == 2
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
        return SocialPost(
            network="bluesky",
            post_id=f"at://{did}/app.bsky.feed.post/3k{n}",
            author_handle=handle,
            author_name=handle,
            text=f"post {n} #test",
            url="",
            posted_at="2026-11-30T09:00:00.000Z",
        )

    async def store_posts(tx: Unit) -> None:
        for n, handle in enumerate((did, did, "ana.old.example", "someone.else")):
            row = await tx.insert_social_post(post(n, handle))
            assert row is not None
            await tx.insert_social_route(row, event_id, session_id, "pending")

    await store.write(store_posts)

    async def rename(tx: Unit) -> Any:
        return await tx.rename_social_author(
            "bluesky", [did, "ana.old.example"], "ana.bsky.social", "Ana Lima"
        )

    routes = await store.write(rename)
    assert len(routes) == 3 and {(r.post.author_handle, r.post.author_name) for r in routes} == {
        ("ana.bsky.social", "Ana Lima")
    }
    stored = await store.read(lambda r: r.list_social_routes(session_id=session_id))
    assert sorted(r.post.author_handle for r in stored) == ["ana.bsky.social"] * 3 + ["someone.else"]
    assert await store.write(rename) == []  # nothing left under the old names
    assert await store.write(lambda tx: tx.rename_social_author("bluesky", [], "x", "y")) == []


async def test_authors_still_named_by_did_are_found_after_a_restart(store: Store) -> None:
    from liveblog.models import SocialPost

    session_id = await seed(store)
    event_id = (await store.read(lambda r: r.get_session(session_id))).event_id

    async def store_posts(tx: Unit) -> None:
        for n, (network, handle) in enumerate(
            [
                ("bluesky", "did:plc:b"),
                ("bluesky", "did:plc:a"),
                ("bluesky", "did:plc:a"),
                ("bluesky", "dida.example"),
                ("bluesky", "ana.bsky.social"),
                ("mastodon", "did:plc:z"),
            ]
        ):
            row = await tx.insert_social_post(
                SocialPost(
                    network=network,
                    post_id=f"p{n}",
                    author_handle=handle,
                    author_name=handle,
                    text="#test",
                    url="",
                    posted_at="2026-11-30T09:00:00.000Z",
                )
            )
            assert row is not None
            await tx.insert_social_route(row, event_id, session_id, "approved")

    await store.write(store_posts)
    found = await store.read(lambda r: r.social_authors_with_prefix("bluesky", "did:", 10))
    assert found == ["did:plc:a", "did:plc:b"]
    assert await store.read(lambda r: r.social_authors_with_prefix("bluesky", "did:", 1)) == ["did:plc:a"]


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
    conn.executescript(f"BEGIN;\n{SQLITE_SCRIPTS[0]}\nPRAGMA user_version = 1;\nCOMMIT;")
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
        assert await db.pragma("user_version") == len(SQLITE_SCRIPTS)
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

    conn = await asyncpg.connect(pg_url)
    try:
        for step in POSTGRES_SCRIPTS[:4]:
            await conn.execute(step)
        await conn.execute(
            "CREATE TABLE liveblog_schema (version INTEGER NOT NULL); INSERT INTO liveblog_schema VALUES (4)"
        )
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


async def test_postgres_an_op_that_swallows_a_database_error_fails_alone_and_nothing_is_lost(
    pg_url: str,
) -> None:
    # A batch first runs without savepoints. An op that catches a database error and returns
    # leaves PostgreSQL's transaction aborted, and COMMIT then silently rolls back everything:
    # the writer must notice, and rerun the batch op by op so the others still commit.
    store = PostgresStore(pg_url, write_timeout=20)
    await store.open()
    try:
        sid = await seed(store)
        await store.write(note_op(sid, "taken"))

        async def swallows(tx: Unit) -> str:
            try:
                await tx.insert_item(
                    session_id=sid,
                    kind="note",
                    client_id="taken",
                    author="x",
                    author_ref=None,
                    body="again",
                    html="",
                    key_point=False,
                    data={},
                    typed_at="2026-11-30T09:05:00Z",
                )
            except Conflict:
                return "carried on"
            return "inserted"

        outcomes = await asyncio.gather(
            store.write(note_op(sid, "a")),
            store.write(swallows),
            store.write(note_op(sid, "b")),
            return_exceptions=True,
        )
        assert isinstance(outcomes[1], Exception)  # never "carried on" as if it had committed
        assert [o[0] > 0 for o in outcomes[0:3:2]] == [True, True]  # type: ignore[index]
        items = await store.read(lambda r: r.list_items(sid))
        assert [i.client_id for i in items] == ["taken", "a", "b"]
        assert store.isolated_batches == 1
        # Alone in its batch, it fails the same way.
        with pytest.raises(Exception) as alone:
            await store.write(swallows)
        assert not isinstance(alone.value, AssertionError)
    finally:
        await store.close()


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
            comment, _ = await tx.insert_comment(
                session_id=sid,
                parent_id=None,
                account_id=reader.id,
                author="rosa",
                body=f"c{n}",
                html=f"<p>c{n}</p>",
                state=state,
                ip="127.0.0.1",
            )
            ids.append(comment.id)
        await tx.update_comment(ids[4], {"deleted": True, "body": "", "html": ""}, op="comment.deleted")
        return ids

    ids = await store.write(op)
    pending = await store.read(lambda r: r.comments_in_state("pending", 10))
    assert [c.id for c in pending] == [ids[2], ids[0]]  # the deleted one is gone from the queue
    assert [c.id for c in await store.read(lambda r: r.comments_in_state("hidden", 10))] == [ids[3]]
    assert [c.id for c in await store.read(lambda r: r.comments_in_state("pending", 1))] == [ids[2]]


def test_both_units_have_every_operation_of_the_interface() -> None:
    # An operation declared in interface.Unit but left out of the mixins (or a mixin left out of
    # storage/unit.py's Operations) fails here, not in production.
    from liveblog.storage.postgres.unit import PgUnit
    from liveblog.storage.unit import SqliteUnit

    operations = [n for n in dir(Unit) if not n.startswith("_") and callable(getattr(Unit, n))]
    assert [n for n in operations if not hasattr(PgUnit, n) or not hasattr(SqliteUnit, n)] == []


async def test_knowledge_page_cards_are_used_only_for_the_item_version_and_key_they_were_made_for(
    store: Store,
) -> None:
    sid = await seed(store)
    first, _ = await store.write(note_op(sid, "n1", "first"))
    second, _ = await store.write(note_op(sid, "n2", "second"))
    deleted, _ = await store.write(note_op(sid, "n3", "gone"))

    async def delete(tx: Unit) -> None:
        await tx.update_item(deleted, {"deleted": True})

    await store.write(delete)

    async def cards(key: str = "k1") -> list[ItemCard]:
        return await store.read(lambda r: r.list_item_cards(sid, key))

    # Nothing kept yet: every item (in page order, deleted ones left out) is to be rendered.
    assert [(c.item_id, c.kind, c.html) for c in await cards()] == [
        (first, "note", None),
        (second, "note", None),
    ]
    items = await store.read(lambda r: r.get_items([first, deleted, 10**9]))
    assert sorted(items) == [first, deleted] and items[first].body == "first" and items[deleted].deleted

    async def put(key: str, *rendered: RenderedCard) -> None:
        await store.write(lambda tx: tx.put_item_cards(key, list(rendered)))

    await put(
        "k1",
        RenderedCard(first, 1, "<article>first</article>", 1),
        RenderedCard(second, 1, "<article>2</article>", 1),
    )
    assert [(c.html, c.words) for c in await cards()] == [
        ("<article>first</article>", 1),
        ("<article>2</article>", 1),
    ]
    # Another key (a changed template): none of them.
    assert [c.html for c in await cards("k2")] == [None, None]
    # An edit bumps the item's version: its card is no longer used; the other one still is.

    async def edit(tx: Unit) -> None:
        await tx.update_item(first, {"body": "first, edited", "html": "<p>first, edited</p>"})

    await store.write(edit)
    assert [c.html for c in await cards()] == [None, "<article>2</article>"]
    await put("k1", RenderedCard(first, 2, "<article>edited</article>", 2))
    assert [c.html for c in await cards()] == ["<article>edited</article>", "<article>2</article>"]
    # A card rendered from the older version, written late, does not replace the newer one.
    await put("k1", RenderedCard(first, 1, "<article>first</article>", 1))
    assert [c.html for c in await cards()] == ["<article>edited</article>", "<article>2</article>"]
    # Many at once (more than one statement's worth), and replaced under a new key.
    many = [(await store.write(note_op(sid, f"m{n}", f"note {n}")))[0] for n in range(3)]
    await put(
        "k2", *[RenderedCard(i, 1, f"<a>{i}</a>", 0) for i in many * 1], RenderedCard(second, 1, "<b/>", 0)
    )
    assert await store.read(lambda r: r.count_item_cards(sid, "k2")) == 4
    assert await store.read(lambda r: r.count_item_cards(sid, "k1")) == 1
    big = [RenderedCard(i, 1, f"<a>{i}</a>", 0) for i in many] * 400  # 1,200 rows, repeats included
    await store.write(lambda tx: tx.put_item_cards("k3", big[:600]))
    assert await store.read(lambda r: r.count_item_cards(sid, "k3")) == 3


async def test_a_pages_assembled_cards_are_used_only_at_the_stream_position_they_were_made_at(
    store: Store,
) -> None:
    sid = await seed(store)
    first, _ = await store.write(note_op(sid, "n1", "first"))

    async def key_point(tx: Unit) -> None:
        await tx.update_item(first, {"key_point": True})

    await store.write(key_point)
    await store.write(note_op(sid, "n2", "second"))
    head = await store.read(lambda r: r.stream_head(sid))
    assert head is not None
    epoch, seq = head
    section = CardSection(sid, "k1", epoch, seq, "<article>1</article>\n<article>2</article>", "", 2, 0, 2)
    await store.write(lambda tx: tx.put_card_section(section))
    assert await store.read(lambda r: r.get_card_section(sid, "k1")) == section
    assert await store.read(lambda r: r.get_card_section(sid, "k2")) is None
    # What a page shows in full beside its cards: the key point (not plain notes).
    assert [i.id for i in await store.read(lambda r: r.list_page_items(sid))] == [first]
    # Any change to the stream moves the page past its section.
    await store.write(note_op(sid, "n3", "third"))
    assert await store.read(lambda r: r.get_card_section(sid, "k1")) is None
    newer = CardSection(sid, "k1", epoch, seq + 1, "<article>all three</article>", "", 3, 0, 3)
    await store.write(lambda tx: tx.put_card_section(newer))
    assert await store.read(lambda r: r.get_card_section(sid, "k1")) == newer
    # One assembled at an earlier position, written late, does not replace it.
    await store.write(lambda tx: tx.put_card_section(section))
    assert await store.read(lambda r: r.get_card_section(sid, "k1")) == newer

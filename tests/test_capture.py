"""Note capture on a real SQLite file: idempotency, validation, ownership, ordering, durability."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from typing import Any

import pytest

from liveblog.capture.notes import Author, NoteCapture
from liveblog.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from liveblog.services import Services
from tests.conftest import Seed

ADA = Author(name="Ada", ref="inv-ada")
GRACE = Author(name="Grace", ref="inv-grace")


def note(cid: str, body: str = "a note", **extra: Any) -> dict[str, Any]:
    return {"type": "note.create", "client_id": cid, "body": body, **extra}


async def items(services: Services, session_id: str) -> list[Any]:
    return await services.db.read(lambda r: r.list_items(session_id))


async def test_resend_of_a_client_id_returns_the_original_ack_and_creates_nothing(
    services: Services, seeded: Seed
) -> None:
    first = await services.notes.handle(seeded.session_id, ADA, note("n-1"))
    again = await services.notes.handle(seeded.session_id, ADA, note("n-1"))
    assert (again.item_id, again.seq) == (first.item_id, first.seq)
    assert not first.duplicate and again.duplicate
    assert [i.client_id for i in await items(services, seeded.session_id)] == ["n-1"]


async def test_same_client_id_with_a_different_body_is_refused(services: Services, seeded: Seed) -> None:
    await services.notes.handle(seeded.session_id, ADA, note("n-1", "first"))
    with pytest.raises(Conflict) as info:
        await services.notes.handle(seeded.session_id, ADA, note("n-1", "second"))
    assert info.value.code == "client_id_conflict"
    assert [i.body for i in await items(services, seeded.session_id)] == ["first"]


async def test_concurrent_resends_create_one_note(services: Services, seeded: Seed) -> None:
    acks = await asyncio.gather(
        *(services.notes.handle(seeded.session_id, ADA, note("same")) for _ in range(20))
    )
    assert len({a.item_id for a in acks}) == 1
    assert sum(not a.duplicate for a in acks) == 1
    assert len(await items(services, seeded.session_id)) == 1


async def test_sequence_numbers_are_contiguous_under_concurrent_writers(
    services: Services, seeded: Seed
) -> None:
    start = (await services.programme.session(seeded.session_id)).last_seq
    commits_before = services.db.commits
    acks = await asyncio.gather(
        *(
            services.notes.handle(seeded.session_id, ADA if i % 2 else GRACE, note(f"c-{i}", f"note {i}"))
            for i in range(100)
        )
    )
    assert sorted(a.seq for a in acks) == list(range(start + 1, start + 101))
    changes = await services.db.read(lambda r: r.changes_between(seeded.session_id, 0, 10**9))
    assert len(changes) == start + 100
    # Group commit really happened: the 100 notes, queued together, took a handful of
    # transactions (at most MAX_BATCH each), not one per note.
    assert services.db.commits - commits_before <= 10


async def test_one_failing_op_in_a_batch_does_not_lose_the_others(services: Services, seeded: Seed) -> None:
    await services.notes.handle(seeded.session_id, ADA, note("taken", "original"))
    results = await asyncio.gather(
        *(services.notes.handle(seeded.session_id, ADA, note(f"ok-{i}")) for i in range(5)),
        services.notes.handle(seeded.session_id, ADA, note("taken", "conflicting")),
        *(services.notes.handle(seeded.session_id, ADA, note(f"ok-{i}")) for i in range(5, 10)),
        return_exceptions=True,
    )
    assert isinstance(results[5], Conflict)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 10
    assert len(await items(services, seeded.session_id)) == 11


async def test_the_note_keeps_typed_time_and_received_time(services: Services, seeded: Seed) -> None:
    await services.notes.handle(seeded.session_id, ADA, note("t", typed_at="2026-05-14T09:12:30+01:00"))
    (item,) = await items(services, seeded.session_id)
    assert item.typed_at == "2026-05-14T08:12:30.000Z"
    assert item.received_at > item.typed_at


async def test_offline_notes_sort_by_the_time_they_were_typed(services: Services, seeded: Seed) -> None:
    await services.notes.handle(
        seeded.session_id, ADA, note("late", "typed second", typed_at="2026-05-14T09:20:00Z")
    )
    await services.notes.handle(
        seeded.session_id, GRACE, note("early", "typed first", typed_at="2026-05-14T09:10:00Z")
    )
    assert [i.body for i in await items(services, seeded.session_id)] == ["typed first", "typed second"]


async def test_edit_and_delete_by_item_id_or_client_id(services: Services, seeded: Seed) -> None:
    ack = await services.notes.handle(seeded.session_id, ADA, note("n", "- one"))
    await services.notes.handle(
        seeded.session_id,
        ADA,
        {
            "type": "note.update",
            "client_id": "e1",
            "item_id": ack.item_id,
            "body": "- two",
            "key_point": True,
        },
    )
    (item,) = await items(services, seeded.session_id)
    assert (item.body, item.key_point, item.version) == ("- two", True, 2)
    assert "<li>two</li>" in item.html
    await services.notes.handle(
        seeded.session_id, ADA, {"type": "note.delete", "client_id": "d1", "target_client_id": "n"}
    )
    assert await items(services, seeded.session_id) == []
    with pytest.raises(Conflict):
        await services.notes.handle(
            seeded.session_id, ADA, {"type": "note.delete", "client_id": "d2", "item_id": ack.item_id}
        )


async def test_only_the_author_edits_a_note(services: Services, seeded: Seed) -> None:
    ack = await services.notes.handle(seeded.session_id, ADA, note("n"))
    with pytest.raises(Forbidden):
        await services.notes.handle(
            seeded.session_id,
            GRACE,
            {"type": "note.update", "client_id": "x", "item_id": ack.item_id, "body": "mine now"},
        )


@pytest.mark.parametrize(
    ("message", "error", "code"),
    [
        ("not an object", BadRequest, "invalid_json"),
        ({"type": "note.shout", "client_id": "a"}, BadRequest, "unknown_type"),
        ({"type": "note.create", "body": "x"}, BadRequest, "missing_field"),
        ({"type": "note.create", "client_id": "has space", "body": "x"}, BadRequest, "invalid_field"),
        ({"type": "note.create", "client_id": "a", "body": "   "}, BadRequest, "empty"),
        ({"type": "note.create", "client_id": "a", "body": 5}, BadRequest, "invalid_field"),
        (
            {"type": "note.create", "client_id": "a", "body": "x", "key_point": "yes"},
            BadRequest,
            "invalid_field",
        ),
        (
            {"type": "note.create", "client_id": "a", "body": "x", "typed_at": "yesterday"},
            BadRequest,
            "invalid_field",
        ),
        (
            {"type": "note.create", "client_id": "a", "body": "x", "typed_at": "2026-05-14T09:00:00"},
            BadRequest,
            "invalid_field",
        ),
        ({"type": "note.create", "client_id": "a", "body": "x" * 70000}, TooLarge, "too_large"),
        ({"type": "note.update", "client_id": "a", "item_id": 999, "body": "x"}, NotFound, "unknown_item"),
        ({"type": "note.update", "client_id": "a", "body": "x"}, BadRequest, "missing_field"),
    ],
)
async def test_bad_input_gets_a_clear_error_and_writes_nothing(
    services: Services, seeded: Seed, message: Any, error: type[Exception], code: str
) -> None:
    before = (await services.programme.session(seeded.session_id)).last_seq
    with pytest.raises(error) as info:
        await services.notes.handle(seeded.session_id, ADA, message)
    assert info.value.code == code
    assert (await services.programme.session(seeded.session_id)).last_seq == before
    assert await items(services, seeded.session_id) == []


async def test_notes_to_an_ended_session_are_refused_unless_typed_before_it_ended(
    services: Services, seeded: Seed
) -> None:
    await services.programme.set_state(seeded.session_id, "ended")
    with pytest.raises(Conflict) as info:
        await services.notes.handle(seeded.session_id, ADA, note("late"))
    assert info.value.code == "session_ended"
    # Typed offline during the session, arriving after it ended: kept.
    ack = await services.notes.handle(
        seeded.session_id, ADA, note("offline", typed_at="2026-01-01T10:00:00Z")
    )
    assert ack.item_id > 0


async def test_unknown_session(services: Services) -> None:
    with pytest.raises(NotFound):
        await services.notes.handle("nope", ADA, note("a"))


@pytest.mark.parametrize(
    "backend", ["sqlite"], indirect=True
)  # SQLite's own file format, on any test backend
async def test_the_database_is_a_real_wal_file_with_full_sync(services: Services, seeded: Seed) -> None:
    await services.notes.handle(seeded.session_id, ADA, note("n"))
    conn = sqlite3.connect(services.db.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == services.db.schema_version
    finally:
        conn.close()
    assert await services.db.pragma("synchronous") == 2  # FULL


async def test_items_say_which_invite_wrote_a_note_but_never_who_asked_a_question(
    services: Services, seeded: Seed
) -> None:
    from liveblog.capture.votes import Voter

    await services.notes.handle(seeded.session_id, ADA, note("n"))
    await services.audience.ask(
        seeded.session_id, Voter("secret-participant"), {"client_id": "q", "body": "Anonymous?"}
    )
    wire = {i.kind: i.to_wire() for i in await items(services, seeded.session_id)}
    assert wire["note"]["author_ref"] == "inv-ada"
    assert wire["question"]["author_ref"] is None
    assert "secret-participant" not in str(wire["question"])


async def test_a_full_write_queue_makes_callers_wait_in_order(services: Services, seeded: Seed) -> None:
    # Two places of room: the rest wait, and are written in the order they asked.
    services.db._room = asyncio.Semaphore(2)
    acks = await asyncio.gather(
        *(services.notes.handle(seeded.session_id, ADA, note(f"q{i}", f"note {i}")) for i in range(30))
    )
    assert [a.seq for a in acks] == sorted(a.seq for a in acks)
    update = services.notes.handle(
        seeded.session_id,
        ADA,
        {"type": "note.update", "client_id": "u", "target_client_id": "q29", "body": "edited"},
    )
    create = services.notes.handle(seeded.session_id, ADA, note("q30", "after"))
    await asyncio.gather(update, create)
    assert [i.body for i in await items(services, seeded.session_id)][-2:] == ["edited", "after"]


async def test_a_backdated_note_cannot_reopen_a_session_ended_longer_ago_than_the_grace(
    services: Services, seeded: Seed
) -> None:
    """The rule (docs/protocol.md, 'Notes typed before a session ended'): after the end, a note is
    accepted only if typed before the end AND it arrives within limits.late_note_grace_minutes."""
    await services.programme.set_state(seeded.session_id, "ended")
    strict = NoteCapture(
        services.db, dataclasses.replace(services.settings.limits, late_note_grace_minutes=0)
    )
    with pytest.raises(Conflict) as info:
        await strict.handle(seeded.session_id, ADA, note("backdated", typed_at="2026-01-01T10:00:00Z"))
    assert info.value.code == "session_ended"
    assert await items(services, seeded.session_id) == []


async def test_an_update_with_no_real_change_appends_nothing_to_the_stream(
    services: Services, seeded: Seed
) -> None:
    session = await services.programme.session(seeded.session_id)
    same = await services.programme.update_session(
        seeded.session_id, {"title": session.title, "room": session.room}
    )
    assert same.last_seq == session.last_seq
    assert same.updated_at == session.updated_at
    changed = await services.programme.update_session(
        seeded.session_id, {"title": session.title + " (moved)"}
    )
    assert changed.last_seq == session.last_seq + 1


def test_capture_messages_are_validated_into_typed_messages_before_storage() -> None:
    from liveblog.capture.messages import NoteCreate, NoteDelete, NoteUpdate, capture_message

    create = capture_message(
        {"type": "note.create", "client_id": "c", "body": "hi", "typed_at": "2026-05-14T11:12:30.1+02:00"},
        note_bytes=100,
    )
    assert create == NoteCreate("c", "hi", False, "2026-05-14T09:12:30.100Z")
    assert capture_message(
        {"type": "note.update", "client_id": "u", "item_id": 7, "key_point": True}, note_bytes=100
    ) == (NoteUpdate("u", 7, None, True))
    assert capture_message(
        {"type": "note.delete", "client_id": "d", "target_client_id": "c"}, note_bytes=100
    ) == (NoteDelete("d", "c"))
    for bad, code, field in [
        ({"type": ["note.create"], "client_id": "c"}, "unknown_type", "type"),
        ({"type": "note.delete", "client_id": "d"}, "missing_field", "item_id"),
        ({"type": "note.delete", "client_id": "d", "item_id": 2**63}, "invalid_field", "item_id"),
        ({"type": "note.update", "client_id": "u", "item_id": 1}, "missing_field", "body"),
        ({"type": "note.create", "client_id": "c", "body": "x" * 101}, "too_large", "body"),
    ]:
        with pytest.raises(BadRequest) as info:
            capture_message(bad, note_bytes=100)
        assert (info.value.code, info.value.field) == (code, field), bad


def test_a_nul_character_is_refused_as_text_for_every_backend() -> None:
    """NUL is valid JSON (\\u0000) but not text PostgreSQL can store; refused where all JSON enters,
    naming the field, so both backends answer the same 400 instead of one storing it."""
    from liveblog.streams.protocol import decode_json

    with pytest.raises(BadRequest) as info:
        decode_json('{"type": "note.create", "client_id": "c", "body": "a\\u0000b"}')
    assert (info.value.code, info.value.field) == ("invalid_field", "body")
    with pytest.raises(BadRequest):
        decode_json('{"a\\u0000": 1}')
    assert decode_json('{"body": "tab\\tand newline\\n"}') == {"body": "tab\tand newline\n"}

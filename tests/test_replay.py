"""Replay: built from the stored stream, its steps keep the original order and relative times
(the schedule is tested, not the wall clock), and what it shows at a moment is exact."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from liveblog.archive.exports import export_json
from liveblog.archive.replay import duration, schedule, state_at
from liveblog.capture.imports import import_json
from liveblog.capture.notes import Author
from liveblog.services import Services
from tests.archive_fixtures import fill_session
from tests.conftest import BACKENDS, LiveServer, Seed, seed, settings_for


def change(seq: int, at: str, op: str, **payload: object) -> dict[str, object]:
    return {
        "seq": seq,
        "op": op,
        "created_at": at,
        "item_id": None,
        "payload": {"type": "change", "seq": seq, "op": op, **payload},
    }


def note(item_id: int, body: str) -> dict[str, object]:
    return {
        "id": item_id,
        "kind": "note",
        "body": body,
        "html": f"<p>{body}</p>",
        "deleted": False,
        "data": {},
    }


def test_the_schedule_keeps_order_and_relative_times() -> None:
    changes = [
        change(3, "2026-05-14T09:10:30.000Z", "item.updated", item=note(1, "first, edited")),
        change(1, "2026-05-14T09:00:00.000Z", "item.created", item=note(1, "first")),
        change(2, "2026-05-14T09:00:02.500Z", "item.created", item=note(2, "second")),
        change(4, "2026-05-14T09:10:30.000Z", "item.deleted", item_id=2),
        change(5, "2026-05-14T09:10:29.000Z", "item.created", item=note(3, "clock stepped back")),
    ]
    steps = schedule(changes)
    assert [s.seq for s in steps] == [1, 2, 3, 4, 5]
    assert [s.at_ms for s in steps] == [
        0,
        2500,
        630_000,
        630_000,
        630_000,
    ]  # never earlier than the one before
    assert duration(steps) == 630_000
    assert state_at(steps, 0) == [note(1, "first")]
    assert [i["body"] for i in state_at(steps, 2499)] == ["first"]
    assert [i["body"] for i in state_at(steps, 2500)] == ["first", "second"]
    assert [i["body"] for i in state_at(steps, 630_000)] == ["first, edited", "clock stepped back"]
    # At 16x the same steps come 16 times sooner: the client divides offsets by the speed.
    assert [s.at_ms / 16 for s in steps][:2] == [0, 156.25]


def test_compact_changes_update_the_item() -> None:
    poll = {
        "id": 9,
        "kind": "poll",
        "body": "Q?",
        "html": "",
        "deleted": False,
        "data": {"state": "open", "tally": {"a": 0}, "voters": 0},
    }
    steps = schedule(
        [
            change(1, "2026-05-14T09:00:00.000Z", "item.created", item=poll),
            change(
                2, "2026-05-14T09:00:05.000Z", "poll.tally", item_id=9, version=2, tally={"a": 3}, voters=3
            ),
        ]
    )
    assert state_at(steps, 4999)[0]["data"]["voters"] == 0
    assert state_at(steps, 5000)[0]["data"] == {"state": "open", "tally": {"a": 3}, "voters": 3}


def test_comments_made_after_the_talk_are_no_steps_of_it() -> None:
    """The comment thread goes on for days on the knowledge page; the replay shows what the session
    said, so comments (and their edits and removals) neither appear nor stretch its timeline."""
    comment = {"id": 4, "session_id": "s", "body": "Thanks!", "html": "<p>Thanks!</p>", "state": "visible"}
    steps = schedule(
        [
            change(1, "2026-05-14T09:00:00.000Z", "item.created", item=note(1, "first")),
            change(2, "2026-05-14T09:30:00.000Z", "item.created", item=note(2, "last")),
            change(3, "2026-05-16T18:00:00.000Z", "comment.created", comment=comment),
            change(4, "2026-05-16T18:05:00.000Z", "comment.updated", comment=comment),
            change(5, "2026-05-17T08:00:00.000Z", "comment.deleted", comment_id=4),
        ]
    )
    assert [s.seq for s in steps] == [1, 2]
    assert duration(steps) == 30 * 60_000


# This and a few other tests that once failed only on PostgreSQL run on both backends in the
# default run, so that parity is kept without running the whole suite twice (docs/architecture.md).
@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_sessions_replay_is_its_stored_stream_in_order(
    live: LiveServer, request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    # The session is recorded on another instance and travels to the served one in an export
    # whose change times are spread out, as a real session's would be (the typed way stored
    # changes get times of our choosing): the offsets must follow them.
    source = Services.build(
        settings_for(request, tmp_path, backend, database={"path": str(tmp_path / "source.sqlite3")})
    )
    await source.open()
    try:
        seeded = await seed(source)
        filled = await fill_session(source, seeded)
        await source.programme.set_state(seeded.session_id, "ended")
        doc = await export_json(source.db, seeded.event_id)
    finally:
        await source.close()
    (bundle,) = [b for b in doc["sessions"] if b["session"]["id"] == seeded.session_id]
    for n, c in enumerate(bundle["changes"]):
        c["created_at"] = f"2026-05-14T09:{n:02d}:00.000Z"
    await import_json(live.services.db, doc)
    stored = await live.services.db.read(lambda r: r.public_changes(seeded.session_id))
    async with live.client() as c:
        data = (await c.get(f"/archive/sessions/{seeded.session_id}/replay.json")).json()
        page = await c.get(f"/archive/sessions/{seeded.session_id}/replay")
        assert page.status_code == 200 and 'id="replay-scrubber"' in page.text
    steps = data["steps"]
    assert len(stored) == len(bundle["changes"]) > 10
    assert [s["seq"] for s in steps] == list(range(1, len(stored) + 1))
    assert [s["t"] for s in steps] == [n * 60_000 for n in range(len(stored))]
    assert data["duration_ms"] == (len(stored) - 1) * 60_000 and data["speeds"] == [1, 4, 16]
    created = [s["payload"]["item"]["id"] for s in steps if s["op"] == "item.created"]
    assert created == sorted(created)  # items appear in the order they were posted
    assert {filled.note_id, filled.post_id, filled.poll_id, filled.question_id} <= set(created)
    # The final state has every public item, with the poll's final tally.
    final = {i["id"]: i for i in state_at(schedule(stored), 10**9)}
    assert final[filled.poll_id]["data"]["state"] == "closed" and final[filled.poll_id]["data"]["voters"] == 3


async def test_a_deleted_note_never_appears_in_the_replay(services: Services, seeded: Seed) -> None:
    invite = await services.accounts.invite_for_token(seeded.token)
    assert invite is not None
    author = Author.from_invite(invite)
    ack = await services.notes.handle(
        seeded.session_id,
        author,
        {"type": "note.create", "client_id": str(uuid.uuid4()), "body": "a libellous remark"},
    )
    await services.notes.handle(
        seeded.session_id,
        author,
        {"type": "note.delete", "client_id": str(uuid.uuid4()), "item_id": ack.item_id},
    )
    changes = await services.db.read(lambda r: r.public_changes(seeded.session_id))
    assert "libellous" not in repr(changes)
    assert [c["op"] for c in changes if c["item_id"] == ack.item_id] == ["item.redacted", "item.redacted"]

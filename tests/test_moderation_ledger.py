"""The public moderation ledger (docs/archive.md): every moderation action is logged with who,
when, what and an optional reason, in the action's own transaction; organisers read it per
event and per session, knowledge pages show its counts, and exports carry it.

Runs on either backend (LIVEBLOG_TEST_BACKEND=postgres for PostgreSQL)."""

from __future__ import annotations

import pytest

from liveblog.capture.notes import Author
from liveblog.capture.votes.common import Moderator, Voter
from liveblog.errors import BadRequest
from liveblog.services import Services
from tests.conftest import Seed


def entries(log: list, **match: object) -> list:
    return [e for e in log if all(getattr(e, k) == v for k, v in match.items())]


async def test_every_moderation_action_is_logged_with_who_and_what(services: Services, seeded: Seed) -> None:
    svc, sid = services, seeded.session_id
    reader, _ = await svc.readers.register("loud", "a long password")
    comment = await svc.comments.post(sid, reader, "Buy cheap watches")
    await svc.comments.moderate(comment.id, "hide", "orga", "spam")
    await svc.comments.moderate(comment.id, "show", "orga")
    await svc.comments.moderate(comment.id, "delete", "orga", "spam after all")
    await svc.readers.ban(reader.id, "orga", "spammer")

    question, _ = await svc.audience.ask(sid, Voter("asker"), {"body": "Is it recorded?"})
    ada = Moderator("Ada", seeded.invite_id)
    await svc.audience.moderate_question(question.id, ada, {"action": "pin"})
    await svc.audience.moderate_question(question.id, ada, {"action": "hide", "reason": "off topic"})

    note_taker = Author("Ada", seeded.invite_id)
    await svc.notes.handle(sid, note_taker, {"type": "note.create", "client_id": "n1", "body": "Own note"})
    await svc.notes.handle(sid, note_taker, {"type": "note.create", "client_id": "n2", "body": "Rude note"})
    await svc.notes.handle(sid, note_taker, {"type": "note.delete", "client_id": "d1", "target_client_id": "n1"})
    organiser = await svc.db.read(lambda r: r.get_account(1))
    assert organiser is not None
    await svc.notes.handle(sid, Author.organiser(organiser), {"type": "note.delete", "client_id": "d2",
                                                              "target_client_id": "n2"})

    log = await svc.db.read(lambda r: r.moderation_log(seeded.event_id))
    assert [(e.action, e.target_kind) for e in reversed(log)] == [
        ("hide", "comment"), ("show", "comment"), ("delete", "comment"), ("ban", "account"),
        ("pin", "question"), ("hide", "question"), ("delete", "note"),  # a note-taker's own deletion is not moderation
    ]
    hide = entries(log, action="hide", target_kind="comment")[0]
    assert (hide.actor, hide.target_id, hide.session_id, hide.event_id, hide.reason) == (
        "orga", str(comment.id), sid, seeded.event_id, "spam")
    assert hide.at.startswith("20")
    ban = entries(log, action="ban")[0]
    assert (ban.actor, ban.target_id, ban.session_id, ban.reason) == ("orga", str(reader.id), None, "spammer")
    assert entries(log, target_kind="question", action="hide")[0].actor == "Ada"
    assert entries(log, target_kind="question", action="hide")[0].reason == "off topic"
    assert entries(log, target_kind="note")[0].actor == organiser.username
    # Per session: the ban (no session's) and the other session's nothing.
    assert len(await svc.db.read(lambda r: r.moderation_log(seeded.event_id, sid))) == 6
    assert await svc.db.read(lambda r: r.moderation_log(seeded.event_id, seeded.other_session_id)) == []
    # Counts: each target by its last action (shown again, then deleted: one deleted comment).
    counts = await svc.db.read(lambda r: r.moderation_counts(sid))
    assert counts == {("comment", "delete"): 1, ("question", "hide"): 1, ("note", "delete"): 1}


async def test_a_refused_action_logs_nothing_and_a_bad_reason_is_refused(services: Services, seeded: Seed) -> None:
    svc = services
    question, _ = await svc.audience.ask(seeded.session_id, Voter("asker"), {"body": "Why?"})
    ada = Moderator("Ada", seeded.invite_id)
    with pytest.raises(BadRequest) as refused:
        await svc.audience.moderate_question(question.id, ada, {"action": "hide", "reason": "x" * 501})
    assert refused.value.field == "reason"
    with pytest.raises(BadRequest):
        await svc.audience.moderate_question(question.id, ada, {"action": "hide", "reason": 7})
    with pytest.raises(BadRequest):
        await svc.comments.moderate(1, "shout", "orga")
    assert await svc.db.read(lambda r: r.moderation_log(seeded.event_id)) == []

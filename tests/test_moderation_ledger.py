"""The public moderation ledger (docs/archive.md): every moderation action is logged with who,
when, what and an optional reason, in the action's own transaction; organisers read it per
event and per session, knowledge pages show its counts, and exports carry it.

Runs on either backend (LIVEBLOG_TEST_BACKEND=postgres for PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liveblog.archive.exports import export_json
from liveblog.archive.ledger import public_summary
from liveblog.capture.imports import import_json
from liveblog.capture.notes import Author
from liveblog.capture.votes.common import Moderator, Voter
from liveblog.errors import BadRequest
from liveblog.services import Services
from tests.conftest import ORGANISER, LiveServer, Seed, make_settings, organiser_csrf


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
    await svc.notes.handle(
        sid, note_taker, {"type": "note.delete", "client_id": "d1", "target_client_id": "n1"}
    )
    organiser = await svc.db.read(lambda r: r.get_account(1))
    assert organiser is not None
    await svc.notes.handle(
        sid, Author.organiser(organiser), {"type": "note.delete", "client_id": "d2", "target_client_id": "n2"}
    )

    log = await svc.db.read(lambda r: r.moderation_log(seeded.event_id))
    assert [(e.action, e.target_kind) for e in reversed(log)] == [
        ("hide", "comment"),
        ("show", "comment"),
        ("delete", "comment"),
        ("ban", "account"),
        ("pin", "question"),
        ("hide", "question"),
        ("delete", "note"),  # a note-taker's own deletion is not moderation
    ]
    hide = entries(log, action="hide", target_kind="comment")[0]
    assert (hide.actor, hide.target_id, hide.session_id, hide.event_id, hide.reason) == (
        "orga",
        str(comment.id),
        sid,
        seeded.event_id,
        "spam",
    )
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


async def test_a_refused_action_logs_nothing_and_a_bad_reason_is_refused(
    services: Services, seeded: Seed
) -> None:
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


async def test_organisers_read_the_log_and_readers_see_the_counts(live: LiveServer, seeded: Seed) -> None:
    svc, sid = live.services, seeded.session_id
    page = f"/organise/events/{seeded.event_id}/moderation"
    async with (
        live.client(
            cookies={"lb_login": seeded.login_token},
            headers=organiser_csrf(seeded.login_token),
            follow_redirects=False,
        ) as org,
        live.client(follow_redirects=False) as anon,
    ):
        assert (await anon.get(page)).status_code in (303, 401)  # organisers only
        empty = (await org.get(page)).text
        assert "Nothing has been moderated in this event yet." in empty and "<table" not in empty
        ada = Moderator("Ada", seeded.invite_id)
        for n, body in enumerate(["Why?", "Buy watches", "Buy more watches"]):
            question, _ = await svc.audience.ask(sid, Voter(f"asker{n}"), {"body": body})
            if n:
                await svc.audience.moderate_question(
                    question.id, ada, {"action": "hide", "reason": "advertising"}
                )
        reader, _ = await svc.readers.register("loud", "a long password")
        comment = await svc.comments.post(sid, reader, "Rude words")
        r = await org.post(f"/comments/{comment.id}/moderate", data={"action": "hide", "reason": "rude <b>"})
        assert r.status_code == 303
        queue = (await org.get("/organise/comments")).text  # the queue's form asks for a reason
        assert f'<label class="visually-hidden" for="reason-{comment.id}">' in queue
        assert f'id="reason-{comment.id}" name="reason"' in queue
        log = (await org.get(page)).text
        rows = log.split("<tbody>")[1].split("</tbody>")[0].count("<tr>")
        assert rows == 3
        assert '<td data-label="Reason">rude &lt;b&gt;</td>' in log and ">advertising</td>" in log
        assert f'<td data-label="Who">{ORGANISER[0]}</td>' in log and ">Ada</td>" in log
        assert f">comment #{comment.id}</td>" in log and f'href="?session={sid}">Keynote</a>' in log
        assert '<th scope="col">Reason</th>' in log
        other = (await org.get(page, params={"session": seeded.other_session_id})).text
        assert "Nothing has been moderated in Workshop yet." in other
        assert (await org.get(page, params={"session": "nope"})).status_code == 404
        await svc.programme.set_state(sid, "ended")
        knowledge = (await anon.get(f"/archive/sessions/{sid}")).text
        assert "Moderation: 2 questions hidden · 1 comment hidden." in knowledge
        assert "advertising" not in knowledge and "rude" not in knowledge.lower()


def test_public_counts_read_well() -> None:
    assert public_summary({}) == ""
    assert (
        public_summary(
            {("question", "hide"): 3, ("question", "merge"): 1, ("post", "reject"): 10, ("post", "remove"): 2}
        )
        == "3 questions hidden, 1 merged · 12 posts not shown"
    )
    assert public_summary({("comment", "delete"): 1, ("note", "delete"): 2, ("comment", "approve"): 4}) == (
        "1 comment removed · 2 notes removed by the organisers"
    )


async def test_the_export_carries_the_ledger_and_import_restores_it(
    services: Services, seeded: Seed, tmp_path: Path
) -> None:
    svc, sid = services, seeded.session_id
    reader, _ = await svc.readers.register("loud", "a long password")
    comment = await svc.comments.post(sid, reader, "Rude words")
    await svc.comments.moderate(comment.id, "hide", "orga", "rude")
    await svc.readers.ban(reader.id, "orga")
    question, _ = await svc.audience.ask(seeded.other_session_id, Voter("asker"), {"body": "Why?"})
    await svc.audience.moderate_question(question.id, Moderator("Ada", seeded.invite_id), {"action": "hide"})
    doc = await export_json(svc.db, seeded.event_id)
    assert [(e["action"], e["session_id"], e["reason"]) for e in doc["moderation"]] == [
        ("hide", sid, "rude"),
        ("ban", None, ""),
        ("hide", seeded.other_session_id, ""),
    ]
    one = await export_json(svc.db, seeded.event_id, [seeded.other_session_id])
    assert [e["target_kind"] for e in one["moderation"]] == ["question"]  # only the exported session's

    def broken(n: int, **change: object) -> dict:
        copy = json.loads(json.dumps(doc))
        copy["moderation"][n].update(change)
        return copy

    for bad, field in (
        (broken(0, action="smite"), "moderation[0].action"),
        (broken(1, target_kind="event"), "moderation[1].target_kind"),
        (broken(0, session_id="elsewhere"), "moderation[0].session_id"),
        (broken(2, reason="x" * 501), "moderation[2].reason"),
        (broken(0, at="yesterday"), "moderation[0].at"),
        (broken(0, target_id=""), "moderation[0].target_id"),
        (broken(1, actor=None), "moderation[1].actor"),
    ):
        with pytest.raises(BadRequest) as refused:
            await import_json(svc.db, bad)
        assert refused.value.code == "invalid_export" and field in refused.value.message, (
            field,
            refused.value,
        )

    (tmp_path / "fresh").mkdir()
    fresh = Services.build(make_settings(tmp_path / "fresh"))
    await fresh.open()
    try:
        await import_json(fresh.db, json.loads(json.dumps(doc)))
        again = await export_json(fresh.db, seeded.event_id)
        assert again["moderation"] == doc["moderation"]
        counts = await fresh.db.read(lambda r: r.moderation_counts(sid))
        assert counts == {("comment", "hide"): 1}
    finally:
        await fresh.close()


async def test_a_deleted_sessions_entries_go_with_it(
    services: Services, seeded: Seed, tmp_path: Path
) -> None:
    """The export names only sessions that exist: a deleted session's entries must not stay
    behind, or the event's export would no longer import."""
    svc = services
    question, _ = await svc.audience.ask(seeded.session_id, Voter("asker"), {"body": "Why?"})
    await svc.audience.moderate_question(question.id, Moderator("Ada", seeded.invite_id), {"action": "hide"})
    await svc.programme.set_state(seeded.session_id, "ended")
    await svc.programme.mark_exported(seeded.session_id)
    await svc.programme.delete_session(seeded.session_id)
    assert await svc.db.read(lambda r: r.moderation_log(seeded.event_id)) == []
    doc = await export_json(svc.db, seeded.event_id)
    (tmp_path / "fresh").mkdir()
    fresh = Services.build(make_settings(tmp_path / "fresh"))
    await fresh.open()
    try:
        assert await import_json(fresh.db, doc) == (seeded.event_id, 1)
    finally:
        await fresh.close()


async def test_an_event_may_show_its_reasons_on_knowledge_pages(live: LiveServer, seeded: Seed) -> None:
    svc, sid = live.services, seeded.session_id
    ada = Moderator("Ada", seeded.invite_id)
    for n in range(3):
        question, _ = await svc.audience.ask(sid, Voter(f"asker{n}"), {"body": f"Buy watches {n}"})
        await svc.audience.moderate_question(
            question.id, ada, {"action": "hide", "reason": "off topic" if n else "advertising"}
        )
    await svc.programme.set_state(sid, "ended")
    page = f"/archive/sessions/{sid}"
    async with (
        live.client(
            cookies={"lb_login": seeded.login_token},
            headers=organiser_csrf(seeded.login_token),
            follow_redirects=False,
        ) as org,
        live.client() as anon,
    ):
        assert "off topic" not in (await anon.get(page)).text  # not unless the organiser chooses
        form = (await org.get(f"/organise/events/{seeded.event_id}")).text
        assert 'id="public_reasons" name="public_reasons">' in form  # off by default
        r = await org.post(
            f"/organise/events/{seeded.event_id}",
            data={
                "form": "event",
                "title": "Test Summit",
                "starts_on": "2026-05-14",
                "ends_on": "2026-05-15",
                "hashtags": "#test",
                "language": "en",
                "show_viewers": "on",
                "public_reasons": "on",
            },
        )
        assert r.status_code in (200, 303), r.text
        assert (await svc.programme.event(seeded.event_id)).public_reasons
        shown = (await anon.get(page)).text
        assert "Moderation: 3 questions hidden. Reasons given: off topic (2), advertising." in shown
    doc = await export_json(svc.db, seeded.event_id)
    assert doc["event"]["public_reasons"] is True

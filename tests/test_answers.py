"""Questions outlive the talk (docs/archive.md, "Answered after the talk"): a speaker link shows
a session's unanswered questions, most voted first, once it ended; the speaker's written answers
show on the knowledge page, in exports, on the asker's account page and as chapters; organisers
hide and show them in the public moderation ledger; a hidden answer's text never leaves.

Storage is exercised on both backends."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from liveblog.archive.chapters import page_chapters
from liveblog.archive.exports import export_json, session_markdown
from liveblog.capture.imports import import_json
from liveblog.capture.votes.common import Moderator, Voter
from liveblog.errors import BadRequest, Conflict, NotFound, Unauthorized
from liveblog.services import Services
from liveblog.settings import Settings
from liveblog.web.app import make_templates
from liveblog.web.static_site import export_site
from tests.conftest import BACKENDS, LiveServer, Seed, csrf_header, organiser_csrf, seed, settings_for

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


async def ended_with_questions(svc: Services, seeded: Seed) -> dict[str, int]:
    """The seeded session with three questions (one answered in the talk, one hidden), ended."""
    sid = seeded.session_id
    reader, _ = await svc.readers.register("curious", "a long password")
    asked = {}
    for who, body in (
        (f"account:{reader.id}", "Will the slides be online?"),
        ("p_anonymousasker000001", "How does it scale?"),
        ("p_anonymousasker000002", "What about pay?"),
        ("p_anonymousasker000003", "Buy cheap watches"),
    ):
        item, _ = await svc.audience.ask(sid, Voter(who), {"body": body})
        asked[body] = item.id
    for n in range(3):  # "How does it scale?" is the most voted
        await svc.audience.upvote(asked["How does it scale?"], Voter(f"p_voter{n:017d}"))
    ada = Moderator("Ada", seeded.invite_id)
    await svc.audience.moderate_question(asked["What about pay?"], ada, {"action": "answer"})
    await svc.audience.moderate_question(asked["Buy cheap watches"], ada, {"action": "hide"})
    await svc.programme.set_state(sid, "ended")
    return {"reader": reader.id, **asked}


@contextlib.asynccontextmanager
async def fresh_instance(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[Services]:
    """Another, empty instance on the same backend, to import into."""
    (tmp_path / "other").mkdir()
    other = Services.build(settings_for(request, tmp_path / "other", backend))
    await other.open()
    try:
        yield other
    finally:
        await other.close()


async def test_a_speaker_link_shows_the_unanswered_questions_most_voted_first(
    services: Services, seeded: Seed
) -> None:
    svc, sid = services, seeded.session_id
    link, token = await svc.answers.make_link(sid, "Dr Ada Lovelace")
    assert (await svc.answers.link_for_token(token)).id == link.id
    page = await svc.answers.page(link)
    assert not page.ended and page.questions == []  # nothing until the session ends

    asked = await ended_with_questions(svc, seeded)
    page = await svc.answers.page(await svc.answers.link_for_token(token))
    assert [q.item.body for q in page.questions] == ["How does it scale?", "Will the slides be online?"]
    assert [q.votes for q in page.questions] == [3, 0]

    # An answered or hidden question cannot be answered; nor another session's; nor nothing.
    with pytest.raises(Conflict):
        await svc.answers.answer(link, asked["What about pay?"], "Later")
    with pytest.raises(Conflict):
        await svc.answers.answer(link, asked["Buy cheap watches"], "Later")
    with pytest.raises(NotFound):
        await svc.answers.answer(link, 999_999, "Later")
    with pytest.raises(BadRequest) as empty:
        await svc.answers.answer(link, asked["How does it scale?"], "  \n ")
    assert empty.value.field == "body"
    with pytest.raises(BadRequest) as long:
        await svc.answers.answer(link, asked["How does it scale?"], "x" * 10_001)
    assert long.value.code == "too_long"

    first = await svc.answers.answer(
        link, asked["How does it scale?"], "By **sharding**.<script>x()</script>"
    )
    assert "<strong>sharding</strong>" in first.html and "<script" not in first.html
    again = await svc.answers.answer(link, asked["How does it scale?"], "By sharding, and caching.")
    assert again.answered_at == first.answered_at and again.body == "By sharding, and caching."

    # Revoked: the link works no more, and the answer stays.
    await svc.answers.revoke_link(sid, link.id)
    with pytest.raises(Unauthorized):
        await svc.answers.link_for_token(token)
    with pytest.raises(NotFound):
        await svc.answers.revoke_link(seeded.other_session_id, link.id)
    knowledge = await svc.archive.knowledge(sid)
    later = {q.item.body: q.later for q in knowledge.questions}
    assert later["How does it scale?"] is not None and later["How does it scale?"].author == "Dr Ada Lovelace"
    assert later["Will the slides be online?"] is None


async def test_answers_reach_the_asker_and_are_moderated_in_the_ledger(
    services: Services, seeded: Seed
) -> None:
    svc, sid = services, seeded.session_id
    asked = await ended_with_questions(svc, seeded)
    link, _ = await svc.answers.make_link(sid, "Grace")
    await svc.answers.answer(
        link, asked["Will the slides be online?"], "Yes: [slides](https://example.org/s)"
    )
    mine = await svc.answers.for_asker(asked["reader"])
    assert [(q, title) for _, q, title in mine] == [("Will the slides be online?", "Keynote")]
    assert 'href="https://example.org/s"' in mine[0][0].html

    await svc.answers.moderate(asked["Will the slides be online?"], "hide", "orga", "wrong slides")
    assert await svc.answers.for_asker(asked["reader"]) == []
    page = await svc.archive.knowledge(sid)
    assert all(q.later is None for q in page.questions)
    exported = json.dumps(await export_json(svc.db, seeded.event_id))
    assert "example.org/s" not in exported  # the hidden text never leaves
    log = await svc.db.read(lambda r: r.moderation_log(seeded.event_id, sid))
    assert [(e.action, e.target_kind, e.target_id, e.reason) for e in log[:1]] == [
        ("hide", "answer", str(asked["Will the slides be online?"]), "wrong slides")
    ]
    with pytest.raises(BadRequest):
        await svc.answers.moderate(asked["Will the slides be online?"], "delete", "orga")

    await svc.answers.moderate(asked["Will the slides be online?"], "show", "orga")
    assert len(await svc.answers.for_asker(asked["reader"])) == 1


async def test_exports_carry_the_answers_and_import_restores_them(
    services: Services, seeded: Seed, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    svc, sid = services, seeded.session_id
    asked = await ended_with_questions(svc, seeded)
    link, _ = await svc.answers.make_link(sid, "Grace")
    await svc.answers.answer(link, asked["How does it scale?"], "By *sharding*.")
    await svc.answers.answer(link, asked["Will the slides be online?"], "Secret")
    await svc.answers.moderate(asked["Will the slides be online?"], "hide", "orga")

    page = await svc.archive.knowledge(sid)
    markdown = session_markdown(page, None)
    assert "Answered after the talk by Grace" in markdown and "By *sharding*." in markdown
    await svc.programme.update_session(
        sid, {"recording_url": "https://media.example.org/keynote.webm", "recording_offset": 0}
    )
    page = await svc.archive.knowledge(sid)
    titles = [c.title for c in page_chapters(page, ZoneInfo(svc.settings.archive.timezone))]
    assert "Q: How does it scale?" in titles  # answered after the talk: a chapter where it was asked
    assert "Q: Will the slides be online?" not in titles  # its answer is hidden
    exported = await export_json(svc.db, seeded.event_id)
    session = next(s for s in exported["sessions"] if s["session"]["id"] == sid)
    by_id = {a["question_id"]: a for a in session["answers"]}
    assert by_id[asked["How does it scale?"]]["body"] == "By *sharding*."
    assert (
        by_id[asked["Will the slides be online?"]] | {"body": "", "html": ""}
        == by_id[asked["Will the slides be online?"]]
    )
    assert by_id[asked["Will the slides be online?"]]["state"] == "hidden"

    async with fresh_instance(tmp_path, backend, request) as other:
        await import_json(other.db, json.loads(json.dumps(exported)))
        restored = await other.archive.knowledge(sid)
        later = {q.item.body: q.later for q in restored.questions}
        assert (
            later["How does it scale?"] is not None and later["How does it scale?"].body == "By *sharding*."
        )
        assert later["Will the slides be online?"] is None


async def test_an_import_with_a_bad_answer_is_refused_naming_the_field(
    services: Services, seeded: Seed, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    svc, sid = services, seeded.session_id
    asked = await ended_with_questions(svc, seeded)
    link, _ = await svc.answers.make_link(sid, "Grace")
    await svc.answers.answer(link, asked["How does it scale?"], "By sharding.")
    exported = await export_json(svc.db, seeded.event_id)
    async with fresh_instance(tmp_path, backend, request) as other:
        for breakage, field in (
            ({"state": "gone"}, "state"),
            ({"question_id": 123456789}, "question_id"),
            ({"body": 7}, "body"),
            ({"answered_at": "yesterday"}, "answered_at"),
        ):
            bad = json.loads(json.dumps(exported))
            answers = next(s for s in bad["sessions"] if s["session"]["id"] == sid)["answers"]
            answers[0].update(breakage)
            with pytest.raises(BadRequest) as refused:
                await import_json(other.db, bad)
            assert re.search(
                rf"answers\[0\]\.{field}\b", str(refused.value.message) + str(refused.value.field)
            )
            assert await other.db.read(lambda r: r.get_session(sid)) is None  # nothing half-imported


async def test_the_pages_over_http(live: LiveServer, seeded: Seed) -> None:
    svc, sid = live.services, seeded.session_id
    asked = await ended_with_questions(svc, seeded)
    organiser_headers = organiser_csrf(seeded.login_token)
    async with live.client(cookies={"lb_login": seeded.login_token}) as orga, live.client() as speaker:
        # The organiser makes a speaker link on the session page.
        made = await orga.post(
            f"/organise/sessions/{sid}",
            data={"form": "speaker_link", "name": "Grace Hopper"},
            headers=organiser_headers,
        )
        assert made.status_code == 200, made.text
        url = re.search(r'id="speaker-url" class="code" readonly value="([^"]+)"', made.text)
        assert url is not None
        path = url.group(1).removeprefix(live.url)
        page = await speaker.get(path)
        assert page.status_code == 200
        assert page.text.index("How does it scale?") < page.text.index("Will the slides be online?")
        assert "What about pay?" not in page.text and "Buy cheap watches" not in page.text
        browser = csrf_header({"lb_csrf": speaker.cookies["lb_csrf"]})
        question = str(asked["How does it scale?"])
        answered = await speaker.post(
            path, data={"question_id": question, "body": "By **sharding**."}, headers=browser
        )
        assert answered.status_code == 303
        refused = await speaker.post(path, data={"question_id": question, "body": ""}, headers=browser)
        assert refused.status_code == 400 and "write an answer first" in refused.text
        assert 'aria-invalid="true"' in refused.text
        knowledge = await speaker.get(f"/archive/sessions/{sid}")
        assert "Answered after the talk" in knowledge.text and "<strong>sharding</strong>" in knowledge.text
        # The organiser hides it; the page no longer has it.
        hidden = await orga.post(
            f"/answers/{question}/moderate",
            data={"action": "hide", "reason": "off topic"},
            headers=organiser_headers,
        )
        assert hidden.status_code == 303
        assert "sharding" not in (await speaker.get(f"/archive/sessions/{sid}")).text
        # Not even on the speaker's page: a hidden answer's text is the organisers' alone.
        again = await speaker.get(path)
        assert "hidden by the organisers" in again.text and "sharding" not in again.text
        # Nobody else moderates.
        assert (
            await speaker.post(f"/answers/{question}/moderate", data={"action": "show"}, headers=browser)
        ).status_code == 401
        # The reader who asked while logged in finds the answer on their account page.
        async with live.client() as reader:
            login = await reader.post(
                "/account/login", data={"username": "curious", "password": "a long password"}
            )
            assert login.status_code in (200, 303)
            mine = await reader.get("/account")
            assert "None yet" in mine.text
            slides = str(asked["Will the slides be online?"])
            await speaker.post(path, data={"question_id": slides, "body": "Yes, *tonight*."}, headers=browser)
            mine = await reader.get("/account")
            assert "Will the slides be online?" in mine.text and "<em>tonight</em>" in mine.text
            assert "How does it scale?" not in mine.text  # asked by someone else
        # A revoked link shows a clear refusal.
        links = await svc.answers.links(sid)
        await orga.post(
            f"/organise/sessions/{sid}",
            data={"form": "speaker_revoke", "link_id": links[0].id},
            headers=organiser_headers,
        )
        gone = await speaker.get(path)
        assert gone.status_code == 401 and "revoked" in gone.text


async def test_search_finds_shown_answers_and_links_to_them_on_their_page(
    live: LiveServer, seeded: Seed, tmp_path: Path
) -> None:
    """A shown answer is found by the archive's search (server and static site) like any item,
    its result linking to the answer on its knowledge page; a hidden one is not, nor the answer
    to a question hidden since; a rewritten one is found by its new words only."""
    svc, sid = live.services, seeded.session_id
    asked = await ended_with_questions(svc, seeded)
    question = asked["How does it scale?"]
    link, _ = await svc.answers.make_link(sid, "Grace")
    await svc.answers.answer(link, question, "By **zanzibarite** sharding.")
    anchor = f"/archive/sessions/{sid}#answer-{question}"

    async def found(word: str, kind: str = "") -> bool:
        """Whether the server's search finds the word in the answer, linked to it (and only it)."""
        async with live.client() as c:
            r = await c.get("/search", params={"q": word, **({"kind": kind} if kind else {})})
        assert r.status_code == 200
        hit = f"<mark>{word}</mark>" in r.text
        assert hit == (f'href="{anchor}"' in r.text), r.text
        stored = await svc.archive.search(svc.archive.query(word, kind=kind or None))
        assert hit == (
            [(h.kind, h.ref, h.session_id) for h in stored.hits] == [("answer", str(question), sid)]
        )
        return hit

    async def in_static_site(word: str) -> bool:
        site = tmp_path / f"site-{word}"
        await export_site(svc, make_templates(svc.settings.archive.timezone).env, seeded.event_id, site)
        index = (site / "search-index.js").read_text(encoding="utf-8")
        page = (site / "sessions" / f"{sid}.html").read_text(encoding="utf-8")
        return (
            word in index
            and f"sessions/{sid}.html#answer-{question}" in index
            and f'id="answer-{question}"' in page
        )

    assert await found("zanzibarite") and await found("zanzibarite", "answer")
    assert not await found("zanzibarite", "comment")
    async with live.client() as c:
        page = await c.get(f"/archive/sessions/{sid}")
    assert f'id="answer-{question}"' in page.text  # where the result leads
    assert await in_static_site("zanzibarite")

    await svc.answers.moderate(question, "hide", "orga")
    assert not await found("zanzibarite")
    assert not await in_static_site("zanzibarite")
    await svc.answers.moderate(question, "show", "orga")
    assert await found("zanzibarite")

    # The question hidden takes its answer out of search with it; shown again, it comes back.
    ada = Moderator("Ada", seeded.invite_id)
    await svc.audience.moderate_question(question, ada, {"action": "hide"})
    assert not await found("zanzibarite")
    await svc.audience.moderate_question(question, ada, {"action": "approve"})
    assert await found("zanzibarite")

    await svc.answers.answer(link, question, "By caching, with quixotrope.")
    assert not await found("zanzibarite") and await found("quixotrope")
    # A new answer to a hidden one stays hidden (and unfound) until shown.
    await svc.answers.moderate(question, "hide", "orga")
    await svc.answers.answer(link, question, "By vorpalisation.")
    assert not await found("vorpalisation")


async def test_migration_19_indexes_the_answers_written_before_it(settings: Settings, backend: str) -> None:
    """A database at version 18 holds answers but no index rows for them: the upgrade indexes
    the shown ones (not the hidden) and from then on its triggers keep them."""
    svc = Services.build(settings)
    await svc.open()
    try:
        seeded = await seed(svc)
        asked = await ended_with_questions(svc, seeded)
        link, _ = await svc.answers.make_link(seeded.session_id, "Grace")
        await svc.answers.answer(link, asked["How does it scale?"], "By ptarmigan sharding.")
        await svc.answers.answer(link, asked["Will the slides be online?"], "Secret snarkleberry.")
        await svc.answers.moderate(asked["Will the slides be online?"], "hide", "orga")
    finally:
        await svc.close()
    # Back to version 18: step 19's triggers and rows gone.
    undo = [f"DROP TRIGGER search_answer_{t}" for t in ("insert", "update", "question")]
    if backend == "sqlite":
        raw = sqlite3.connect(settings.database.path)
        with raw:
            for statement in [
                *undo,
                "DELETE FROM search_index WHERE kind = 'answer'",
                "PRAGMA user_version = 18",
            ]:
                raw.execute(statement)
        raw.close()
    else:
        conn = await asyncpg.connect(settings.database.url)
        try:
            for statement in [
                *(f"{u} ON {'items' if u.endswith('question') else 'question_answers'}" for u in undo),
                "DROP FUNCTION search_answer_question(), search_answer(), search_answer_index(BIGINT)",
                "DELETE FROM search_index WHERE kind = 'answer'",
                "UPDATE liveblog_schema SET version = 18",
            ]:
                await conn.execute(statement)
        finally:
            await conn.close()
    svc = Services.build(settings)
    await svc.open()  # upgrades to 19
    try:
        hits = (await svc.archive.search(svc.archive.query("ptarmigan"))).hits
        assert [(h.kind, h.ref) for h in hits] == [("answer", str(asked["How does it scale?"]))]
        assert (await svc.archive.search(svc.archive.query("snarkleberry"))).hits == ()
        await svc.answers.moderate(asked["Will the slides be online?"], "show", "orga")
        assert len((await svc.archive.search(svc.archive.query("snarkleberry"))).hits) == 1
    finally:
        await svc.close()

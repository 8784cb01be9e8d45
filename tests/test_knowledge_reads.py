"""A knowledge page read with no cards kept (the first views of a long session, a new card
template) reads in full only the items whose cards it renders: its notes' words and which posts
are hidden come from SQL (storage/cards.py), on either backend, and the page is the same as the
one made from kept cards, with no moderated text in it."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from liveblog.capture.notes import Author
from liveblog.models import Session
from liveblog.services import Services
from liveblog.storage import Tx, Unit
from liveblog.text import WHITESPACE, word_count
from liveblog.web.paging import KNOWLEDGE_PAGE
from tests.archive_fixtures import fill_session, note, social_post
from tests.conftest import LiveServer, Seed
from tests.test_archive import end, same_page, settled

NOTES = 260  # past web/archive.py's RENDER_ALL_CARDS (200): a page renders only its own cards
SECRET = "SECRET-TEXT"  # in every post and question a page must not show


async def long_moderated_session(svc: Services, seeded: Seed) -> str:
    """The seeded session, ended: every kind of item, NOTES notes with every kind of whitespace
    in them (one edited), approved posts, posts held, rejected, hidden and removed, a hidden
    question."""
    sid = seeded.session_id
    filled = await settled(svc, await fill_session(svc, seeded))
    invite = await svc.accounts.invite_for_token(seeded.token)
    assert invite is not None
    ada = Author.from_invite(invite)
    for n in range(NOTES):
        # XML-safe whitespace only: a note's text keeps no control character (text.xml_chars).
        await note(
            svc, sid, ada, f"point {n}\u00a0after a no-break space\u3000ideographic  two\tthree x\u200by"
        )
    await svc.notes.handle(
        sid,
        ada,
        {
            "type": "note.update",
            "client_id": "edit",
            "item_id": filled.note_id,
            "body": "Edited, in five words",
        },
    )
    for n in range(60):
        await social_post(svc, sid, f"Approved post {n}")
    for state in ("pending", "rejected", "hidden"):
        await social_post(svc, sid, f"{SECRET} {state} post", state)
    removed = await social_post(svc, sid, f"{SECRET} removed post")

    async def remove(tx: Tx) -> None:
        await tx.update_item(removed, {"deleted": True, "body": "", "html": ""}, op="item.deleted")

    await svc.db.write(remove)
    from liveblog.capture.votes import Moderator, Voter

    question, _ = await svc.audience.ask(sid, Voter("troll"), {"body": f"{SECRET} question"})
    await svc.audience.moderate_question(question.id, Moderator("Ada", invite.id), {"action": "hide"})
    await end(svc, sid)
    return sid


def visible_words(items: list[Any]) -> int:
    return sum(word_count(i.body) for i in items if i.kind == "note" and not i.deleted)


async def test_a_view_with_no_cards_kept_reads_no_note_or_post_in_full(
    live: LiveServer, seeded: Seed
) -> None:
    # It read every item of the session in full (7,000 for a long one), only for the words of
    # its notes and to leave hidden posts out: it now reads those in SQL, and the items whose
    # cards a page renders when it renders them (Archive.fill).
    svc = live.services
    sid = await long_moderated_session(svc, seeded)
    cards = live.server.config.app.state.cards
    view = await svc.archive.knowledge_view(sid, cards.key)
    assert view.section is None and view.to_render == len(view.notes) + len(view.posts)
    # Only the key points and the notes answering questions are read (the page shows them apart).
    apart = {i.id for i in view.key_points} | {q.answer.id for q in view.questions if q.answer}
    assert {slot.item_id for slot in view.notes + view.posts if slot.item is not None} <= apart
    items = await svc.db.read(lambda r: r.list_items(sid))
    assert view.word_count == visible_words(items)
    shown = {i.id for i in items if i.kind == "social" and not i.deleted and SECRET not in i.body}
    assert {slot.item_id for slot in view.posts} == shown
    # The items of the cards a page renders are read then, with their earlier versions.
    first = await svc.archive.fill(view, view.notes[:KNOWLEDGE_PAGE])
    assert all(slot.item is not None for slot in first.notes[:KNOWLEDGE_PAGE])
    assert all(slot.item is None for slot in first.notes[KNOWLEDGE_PAGE:])
    assert first.word_count == view.word_count and list(first.history)  # the edited note's


async def test_a_post_removed_between_the_view_and_its_cards_is_not_rendered(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    sid = await long_moderated_session(svc, seeded)
    view = await svc.archive.knowledge_view(sid, live.server.config.app.state.cards.key)
    post = view.posts[0].item_id

    async def remove(tx: Tx) -> None:
        await tx.update_item(post, {"deleted": True, "body": "", "html": ""}, op="item.deleted")

    await svc.db.write(remove)
    filled = await svc.archive.fill(view, view.posts[:KNOWLEDGE_PAGE])  # read again, in one snapshot
    assert post not in {slot.item_id for slot in filled.posts}
    assert all(slot.item is not None for slot in filled.notes + filled.posts if slot.html is None)
    assert filled.version != view.version and filled.session.id == sid


async def test_a_page_with_no_cards_kept_is_the_page_its_kept_cards_make(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    sid = await long_moderated_session(svc, seeded)
    items = await svc.db.read(lambda r: r.list_items(sid))
    pages = -(-sum(1 for i in items if i.kind == "note" and not i.deleted) // KNOWLEDGE_PAGE)
    urls = [f"/archive/sessions/{sid}"] + [f"/archive/sessions/{sid}/page/{n}" for n in range(2, pages + 1)]

    async def read_all() -> list[str]:
        out = []
        async with live.client() as c:
            for url in urls:
                r = await c.get(url)
                assert r.status_code == 200, (url, r.text[-500:])
                out.append(same_page(r.text))
            after = re.search(r'section=notes" data-after="(\d+)"', out[0])  # "More notes"
            assert after is not None
            r = await c.get(f"/archive/sessions/{sid}/cards", params={"section": "notes", "after": after[1]})
            assert r.status_code == 200, r.text
            out.append(json.loads(r.text)["html"])
        return out

    lazily = await read_all()  # nothing kept: each page renders its own cards
    assert "Edited after the event" not in "".join(lazily) and "Edited" in lazily[0]
    await svc.archive.cards_kept()
    await svc.archive.warm_cards(sid)  # every card kept, and the assembled section
    session: Session = await svc.programme.session(sid)
    key = live.server.config.app.state.cards.key(session)
    assert await svc.db.read(lambda r: r.get_card_section(sid, key)) is not None
    svc.archive.invalidate({sid})
    kept = await read_all()
    assert kept == lazily
    for html in lazily:
        assert SECRET not in html
    wordcount = re.search(r'"wordCount": (\d+)', lazily[0])
    assert wordcount is not None and int(wordcount.group(1)) == visible_words(items)


async def test_words_are_counted_alike_in_python_and_in_sql(live: LiveServer) -> None:
    texts = [
        "",
        "one",
        "  two  words ",
        "a" + WHITESPACE + "b",
        "".join(f"w{c}" for c in WHITESPACE) + "end",
        "zero\u200bwidth\ufeffjoined",  # not whitespace in Python either
        "tab\tnew\nline\r\nvertical\x0bfeed\x0c fs\x1cgs\x1drs\x1eus\x1f nel\x85 done",
    ]

    async def counted(r: Unit) -> list[int]:
        db: Any = r.db  # type: ignore[attr-defined]
        sql = f"SELECT {db.dialect.word_count('?')}"
        return [int(await db.fetch_value(sql, (t,))) for t in texts]

    assert await live.services.db.read(counted) == [word_count(t) for t in texts]


def test_the_whitespace_list_is_pythons() -> None:
    assert set(WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


async def test_a_view_asked_for_while_the_warm_reads_every_item_is_that_read(
    live: LiveServer, seeded: Seed
) -> None:
    # The archive's warm reads every item to render; a reader's view asked for meanwhile needs a
    # part of that: it waits for the warm's read instead of reading at the same time.
    svc = live.services
    sid = await long_moderated_session(svc, seeded)
    key = live.server.config.app.state.cards.key
    warm, view = await asyncio.gather(
        svc.archive.knowledge_view(sid, key, render_all=True), svc.archive.knowledge_view(sid, key)
    )
    assert view is warm
    assert all(slot.item is not None for slot in view.notes + view.posts)
    assert await svc.archive.fill(view, view.notes + view.posts) is view  # nothing left to read

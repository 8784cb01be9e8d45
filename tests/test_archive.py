"""Knowledge pages, tags and search over a real server and SQLite file: ending a session makes a
page with every kind of item, search finds words from notes, posts, comments and summaries (a
new note right after its ack), tag pages and related sessions link up, and pages answer 304 when
unchanged. Search tests run on both backends (SQLite's FTS5 and PostgreSQL's tsvector index):
ranking may differ between them, what is found may not."""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from liveblog.archive.tags import normalise_tag, parse_tags, search_terms
from liveblog.capture.notes import Author
from liveblog.errors import BadRequest
from liveblog.models import MARK_END, MARK_START, utcnow
from liveblog.services import Services
from liveblog.web.app import create_app
from liveblog.web.archive import highlight, plain_text
from tests.archive_fixtures import Filled, fill_session, note, organiser_account
from tests.conftest import BACKENDS, LiveServer, Seed, eventually, organiser_csrf, page_csrf, settings_for

both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


async def end(services: Services, session_id: str) -> None:
    await services.programme.set_state(session_id, "ended")


async def settled(services: Services, filled: Filled) -> Filled:
    """Wait for the question's upvote count, which the tally coalescer writes a moment later
    (a change of its own): pages compared before and after must not straddle it."""

    async def written() -> bool:
        item = await services.db.read(lambda r: r.get_item(filled.question_id))
        return item is not None and item.data.get("votes") == 2

    await eventually(written, what="the question's upvote count")
    return filled


def same_page(html: str) -> str:
    """A page without its JSON-LD modification time: a page read before the background job
    archived it is the page archiving makes, except that archiving is a modification."""
    return re.sub(r'"dateModified": "[^"]*"', "", html)


async def test_ending_a_session_makes_a_page_with_every_kind_of_item(live: LiveServer, seeded: Seed) -> None:
    svc = live.services
    filled = await settled(svc, await fill_session(svc, seeded))  # no tally change between the two views
    async with live.client() as c:
        before = await c.get(f"/archive/sessions/{seeded.session_id}")
        assert before.status_code == 404  # still live: no knowledge page yet
        await end(svc, seeded.session_id)
        page = await c.get(f"/archive/sessions/{seeded.session_id}")
        assert page.status_code == 200
        html = page.text
        # The live URL keeps working and shows the page (tested in detail below).
        live_url = await c.get(f"/sessions/{seeded.session_id}")
        assert live_url.status_code == 200 and same_page(live_url.text) == same_page(html)
    # In order: head, summary (from the key points), key points, notes, posts, polls, questions.
    order = [
        html.index(s)
        for s in (
            'id="session-title"',
            'id="summary"',
            'id="kp-heading"',
            'id="notes-heading"',
            'id="posts-heading"',
            'id="polls-heading"',
            'id="questions-heading"',
        )
    ]
    assert order == sorted(order)
    summary = html[html.index('id="summary"') : html.index('id="kp-heading"')]
    assert "Chlorophyll absorbs red and blue light" in summary
    assert "Keynote" in html and "Hall" in html and "09:00" in html
    for item_id in (
        filled.note_id,
        filled.photo_note_id,
        filled.key_note_id,
        filled.post_id,
        filled.poll_id,
        filled.question_id,
        filled.answer_id,
    ):
        assert f'id="item-{item_id}"' in html  # every item keeps its permalink
    assert "<strong>make sugar</strong>" in html and 'href="https://example.org/leaf"' in html
    assert '<img src="/media/0123456789abcdef"' in html
    assert "zeaxanthin" in html and html.lower().count("original post") == 1  # credited once
    polls = html[html.index('id="polls-heading"') : html.index('id="questions-heading"')]
    assert "Favourite pigment?" in polls and "3 voters" in polls
    assert re.search(r"Chlorophyll</th><td>2</td>", polls) and re.search(r"Carotene</th><td>1</td>", polls)
    questions = html[html.index('id="questions-heading"') :]
    assert "Why are leaves green, not black?" in questions and "<strong>2</strong> votes" in questions
    assert "Answered" in questions and "xanthophyll" in questions
    # Notes in typed order.
    notes = html[html.index('id="notes-heading"') : html.index('id="posts-heading"')]
    positions = [
        notes.index(f'id="item-{i}"') for i in (filled.note_id, filled.photo_note_id, filled.key_note_id)
    ]
    assert positions == sorted(positions)


async def test_the_live_url_of_an_ended_session_shows_its_knowledge_page(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    sid = seeded.session_id
    filled = await settled(svc, await fill_session(svc, seeded))
    await end(svc, sid)
    stable, at_live = f"/archive/sessions/{sid}", f"/sessions/{sid}"
    async with live.client() as c:
        first = await c.get(at_live)  # nobody opened the knowledge page yet: read as it will be
        assert first.status_code == 200
        svc.archive.page_cache.clear()
        page = await c.get(stable)
        # The same page, freshly rendered at either URL, with the stable URL as canonical.
        assert same_page(first.text) == same_page(page.text)
        assert f'<link rel="canonical" href="{live.url}{stable}">' in first.text
        assert 'id="notes-heading"' in first.text and f'id="item-{filled.note_id}"' in first.text
        await svc.archive.settle()  # the background job archives it, as its first reader asked
        svc.archive.page_cache.clear()
        first, page = await c.get(at_live), await c.get(stable)
        # Cacheable exactly as the knowledge page is: the same validators, 304 when unchanged.
        for name in ("etag", "last-modified", "cache-control"):
            assert first.headers[name] == page.headers[name], name
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert (await c.get(at_live, headers={"if-none-match": etag})).status_code == 304
        assert (await c.get(at_live, headers={"if-modified-since": modified})).status_code == 304
        svc.archive.page_cache.clear()
        assert (await c.get(at_live, headers={"if-none-match": etag})).status_code == 304
    # Organisers get the page with its forms, and a way to the session's organiser tools
    # (remove notes, polls and questions, invites, reopen), which stay usable after the end.
    async with live.client(
        cookies={"lb_login": seeded.login_token},
        headers=organiser_csrf(seeded.login_token),
        follow_redirects=False,
    ) as org:
        mine = await org.get(at_live)
        assert mine.status_code == 200 and "Edit the summary" in mine.text
        links = set(re.findall(r'href="([^"]+)"', mine.text))
        assert {f"/organise/sessions/{sid}", f"/organise/sessions/{sid}/moderate"} <= links
        tools = await org.get(f"/organise/sessions/{sid}")
        assert stable in set(re.findall(r'href="([^"]+)"', tools.text))
        removed = await org.post(
            f"/organise/sessions/{sid}", data={"form": "remove_note", "item_id": str(filled.note_id)}
        )
        assert removed.status_code == 303
    async with live.client() as c:
        assert f'id="item-{filled.note_id}"' not in (await c.get(at_live)).text


async def test_edits_after_the_event_are_marked_and_keep_their_history(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    filled = await fill_session(svc, seeded)
    await end(svc, seeded.session_id)
    account = await organiser_account(svc)
    await svc.notes.handle(
        seeded.session_id,
        Author.organiser(account),
        {
            "type": "note.update",
            "client_id": str(uuid.uuid4()),
            "item_id": filled.note_id,
            "body": "Photosynthesis makes glucose",
        },
    )
    async with live.client() as c:
        html = (await c.get(f"/archive/sessions/{seeded.session_id}")).text
    card = html[html.index(f'id="item-{filled.note_id}"') :]
    card = card[: card.index("</article>")]
    assert "Photosynthesis makes glucose" in card
    assert "Edited after the event" in card
    assert "Earlier versions (1)" in card and "<strong>make sugar</strong>" in card


async def kept_and_fresh(live: LiveServer, c: httpx.AsyncClient, url: str) -> tuple[str, str]:
    """The page as served from the cards kept in storage, and as freshly rendered (no card
    kept under the key a new template version would have; and none kept from it, so the kept
    ones stay), each with the page cache cleared."""
    cards, archive = live.server.config.app.state.cards, live.services.archive
    archive.page_cache.clear()
    kept = await c.get(url)
    await archive.cards_kept()
    version = cards.version
    cards.version = f"fresh-{uuid.uuid4()}"

    def keep_nothing(*args: Any) -> None:
        return None

    archive.keep_cards_later = keep_nothing  # type: ignore[method-assign]
    try:
        archive.page_cache.clear()
        fresh = await c.get(url)
    finally:
        cards.version = version
        del archive.keep_cards_later
    assert kept.status_code == fresh.status_code == 200
    return kept.text, fresh.text


@both_backends
async def test_a_page_made_of_kept_cards_is_byte_for_byte_a_fresh_render(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    sid = seeded.session_id
    filled = await settled(svc, await fill_session(svc, seeded))
    invite, _ = await svc.accounts.invite(seeded.event_id, sid, '<img src=x onerror="alert(1)">')
    hostile = await note(
        svc, sid, Author.from_invite(invite), "A note <script>alert(2)</script> by a **hostile** name"
    )
    account = await organiser_account(svc)
    organiser = Author.organiser(account)

    async def edit(item_id: int, body: str) -> None:
        await svc.notes.handle(
            sid,
            organiser,
            {"type": "note.update", "client_id": str(uuid.uuid4()), "item_id": item_id, "body": body},
        )

    await edit(filled.note_id, "Edited during the event")  # a history, and an "Edited" badge
    await end(svc, sid)
    url = f"/archive/sessions/{sid}"
    cards = live.server.config.app.state.cards

    async def to_render() -> list[int]:
        session = await svc.programme.session(sid)
        listed = await svc.db.read(lambda r: r.list_item_cards(sid, cards.key(session)))
        return [c.item_id for c in listed if c.html is None and c.kind in ("note", "social")]

    async with live.client() as c:
        first = (await c.get(url)).text  # the first view renders every card; the job keeps them
        await svc.archive.cards_kept()
        assert await to_render() == []
        kept, fresh = await kept_and_fresh(live, c, url)
        assert kept == fresh and same_page(kept) == same_page(first)
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in kept and "<img src=x" not in kept
        assert "<script>alert(2)" not in kept and "&lt;script&gt;alert(2)" in kept
        # An edit after the event: only that card is rendered again, the rest are read.
        await edit(filled.note_id, "Edited **after** the event")
        assert await to_render() == [filled.note_id]
        kept, fresh = await kept_and_fresh(live, c, url)
        assert kept == fresh and "Edited after the event" in kept and "<strong>after</strong>" in kept
        # A note removed by an organiser (the moderation form): gone, the same either way.
        async with live.client(
            cookies={"lb_login": seeded.login_token},
            headers=organiser_csrf(seeded.login_token),
            follow_redirects=False,
        ) as org:
            removed = await org.post(
                f"/organise/sessions/{sid}", data={"form": "remove_note", "item_id": str(hostile)}
            )
            assert removed.status_code == 303
        kept, fresh = await kept_and_fresh(live, c, url)
        assert kept == fresh and f'id="item-{hostile}"' not in kept and f'id="item-{filled.note_id}"' in kept
        # A comment moves the stream on (the assembled cards are made again from kept ones).
        reader, _ = await svc.readers.register("cardreader", "a long password")
        await svc.comments.post(sid, reader, "Thanks for the notes")
        kept, fresh = await kept_and_fresh(live, c, url)
        assert kept == fresh and "Thanks for the notes" in kept


async def test_the_background_check_keeps_a_new_pages_cards_before_its_first_view(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    sid = seeded.session_id
    await settled(svc, await fill_session(svc, seeded))
    await end(svc, sid)
    cards = live.server.config.app.state.cards
    session = await svc.programme.session(sid)
    assert await svc.db.read(lambda r: r.count_item_cards(sid, cards.key(session))) == 0
    assert await svc.archive.archive_due() == [sid]
    listed = await svc.db.read(lambda r: r.list_item_cards(sid, cards.key(session)))
    assert [c.item_id for c in listed if c.kind in ("note", "social") and c.html is None] == []
    assert await svc.db.read(lambda r: r.get_card_section(sid, cards.key(session))) is not None
    async with live.client() as c:
        kept, fresh = await kept_and_fresh(live, c, f"/archive/sessions/{sid}")
    assert kept == fresh
    # An app built again over the same services (a restart in one process) takes the warmer over.
    first = svc.archive._card_warmer
    create_app(live.services.settings, live.services)
    assert svc.archive._card_warmer is not None and svc.archive._card_warmer is not first


@both_backends
async def test_search_finds_notes_posts_comments_and_summaries_with_highlights(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    await fill_session(svc, seeded)
    await end(svc, seeded.session_id)
    await svc.archive.archive_session(seeded.session_id)
    await svc.archive.set_summary(seeded.session_id, "A tour of photosynthetic pigments", "org")
    reader, _ = await svc.readers.register("searchreader", "a long password")
    await svc.comments.post(seeded.session_id, reader, "Does anthocyanin count as a pigment?")
    async with live.client() as c:
        for word, kind in (
            ("xanthophyll", "note"),
            ("zeaxanthin", "social"),
            ("photosynthetic", "summary"),
            ("anthocyanin", "comment"),
        ):
            r = await c.get("/search", params={"q": word})
            assert r.status_code == 200
            assert f"<mark>{word}</mark>" in r.text.lower() or "<mark>" in r.text, word
            assert f"/archive/sessions/{seeded.session_id}" in r.text
            assert f'<span class="badge">{kind.capitalize()}</span>' in r.text, (word, r.text[-3000:])
        # Stemming and folded diacritics: "absorbing" finds "absorbs", "pigmént" finds "pigments".
        r = await c.get("/search", params={"q": "absorbing"})
        assert "Chlorophyll" in r.text and "<mark>absorbs</mark>" in r.text
        r = await c.get("/search", params={"q": "pigmént"})
        assert "zeaxanthin" in r.text
        # Filters: another event, a kind, a tag that does not match: nothing.
        r = await c.get("/search", params={"q": "xanthophyll", "event": "no-such-event"})
        assert "0 results" in r.text
        r = await c.get("/search", params={"q": "xanthophyll", "kind": "social"})
        assert "0 results" in r.text
        # Bad filters are a clear 400, never a 500.
        assert (await c.get("/search", params={"q": "x", "from": "yesterday"})).status_code == 400
        assert (await c.get("/search", params={"q": "x", "kind": "nope"})).status_code == 400
        assert (await c.get("/search", params={"q": "x", "page": "-1"})).status_code == 400
        # FTS syntax typed into the box is just words.
        assert (await c.get("/search", params={"q": 'NEAR( "AND OR * ^'})).status_code == 200
        # A quoted phrase must stand together: "red and blue" is in one note; "red blue" is not a phrase in any.
        r = await c.get("/search", params={"q": '"red and blue"'})
        assert "1 result" in r.text and "Chlorophyll" in r.text
        r = await c.get("/search", params={"q": '"blue red"'})
        assert "0 results" in r.text
        r = await c.get("/search", params={"q": "blue red"})
        assert "1 result" in r.text


@both_backends
async def test_a_new_note_is_findable_right_after_its_ack(services: Services, seeded: Seed) -> None:
    invite = await services.accounts.invite_for_token(seeded.token)
    assert invite is not None
    item_id = await note(services, seeded.session_id, Author.from_invite(invite), "Quokkas are marsupials")
    result = await services.archive.search(services.archive.query("quokka"))
    assert [h.ref for h in result.hits] == [str(item_id)] and result.total == 1
    # Deleted: gone from the index in the same transaction.
    await services.notes.handle(
        seeded.session_id,
        Author.from_invite(invite),
        {"type": "note.delete", "client_id": str(uuid.uuid4()), "item_id": item_id},
    )
    assert (await services.archive.search(services.archive.query("quokka"))).total == 0


@both_backends
async def test_search_pages_through_results(services: Services, seeded: Seed) -> None:
    invite = await services.accounts.invite_for_token(seeded.token)
    assert invite is not None
    for n in range(45):
        await note(services, seeded.session_id, Author.from_invite(invite), f"wombat number {n}")
    seen: list[str] = []
    for page in (1, 2, 3):
        result = await services.archive.search(services.archive.query("wombat", page=page))
        assert result.total == 45
        assert result.more == (page < 3)
        seen.extend(h.ref for h in result.hits)
    assert len(seen) == 45 == len(set(seen))


async def test_a_search_past_its_window_says_so(live: LiveServer, seeded: Seed) -> None:
    svc = live.services
    svc.archive.settings = dataclasses.replace(svc.archive.settings, search_window=20)
    invite = await svc.accounts.invite_for_token(seeded.token)
    assert invite is not None
    for n in range(21):
        await note(svc, seeded.session_id, Author.from_invite(invite), f"wombat number {n}")
    async with live.client() as c:
        r = await c.get("/search", params={"q": "wombat"})
        assert "More than 20 results: showing the best of the newest 20 matches; narrow your search" in r.text
        svc.archive.settings = dataclasses.replace(svc.archive.settings, search_page_size=5)
        r = await c.get("/search", params={"q": "wombat", "page": "2"})
        assert '<ol class="search-results" start="6">' in r.text  # numbered on from page 1's five
        r = await c.get("/search", params={"q": "wombat number 7"})
        assert "1 result" in r.text and "narrow" not in r.text


@both_backends
async def test_search_filters_require_every_word_and_fold_accents(services: Services, seeded: Seed) -> None:
    invite = await services.accounts.invite_for_token(seeded.token)
    assert invite is not None
    ada = Author.from_invite(invite)
    creme = await note(services, seeded.session_id, ada, "Crème brûlée served at the café")
    naive = await note(services, seeded.session_id, ada, "A naive resume of the morning")
    other = await note(services, seeded.other_session_id, ada, "Crème caramel in the workshop")
    archive = services.archive

    async def refs(text: str, **filters: Any) -> list[str]:
        return sorted(h.ref for h in (await archive.search(archive.query(text, **filters))).hits)

    # Accents folded both ways, any case.
    assert await refs("creme brulee") == [str(creme)]
    assert await refs("CAFÉ") == [str(creme)]
    assert await refs("naïve résumé") == [str(naive)]
    # Every word is required; words typed as operators are words.
    assert await refs("creme") == sorted([str(creme), str(other)])
    assert await refs("creme workshop") == [str(other)]
    assert await refs("creme OR naive") == []
    # The snippet marks the matched words.
    (hit,) = (await archive.search(archive.query("brulee"))).hits
    assert f"{MARK_START}brûlée{MARK_END}" in hit.snippet and hit.kind == "note"
    assert hit.session_title == "Keynote" and hit.event_title == "Test Summit"
    # Filters: kind, event, session tag, dates (typed today, UTC).
    assert await refs("creme", kind="note") == sorted([str(creme), str(other)])
    assert await refs("creme", kind="comment") == []
    assert await refs("creme", event_id=seeded.event_id) == sorted([str(creme), str(other)])
    assert await refs("creme", event_id="no-such-event") == []
    today = utcnow()[:10]
    assert await refs("creme", date_from=today, date_to=today) == sorted([str(creme), str(other)])
    assert await refs("creme", date_to="2026-01-01") == []
    assert await refs("creme", date_from="2099-01-01") == []
    await services.programme.update_session(seeded.other_session_id, {"hashtags": ["#Dessert"]})
    await services.programme.set_state(seeded.other_session_id, "live")
    await end(services, seeded.other_session_id)
    await archive.archive_due()
    assert await refs("creme", tag="dessert") == [str(other)]
    # Sessions are found by their title and tags.
    found = (await archive.search(archive.query("workshop dessert", kind="session"))).hits
    assert [h.ref for h in found] == [seeded.other_session_id]


@both_backends
async def test_new_events_are_searched_in_the_configured_language(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    svc = Services.build(settings_for(request, tmp_path, backend, archive={"language": "de"}))
    await svc.open()
    try:
        event = await svc.programme.create_event(
            {"title": "Tagung", "starts_on": "2026-06-01", "ends_on": "2026-06-01"}
        )
        assert event.language == "de"
        session = await svc.programme.create_session(
            event.id,
            {"title": "Häuser der Zukunft", "starts_at": "2026-06-01T09:00", "ends_at": "2026-06-01T10:00"},
        )
        found = await svc.archive.search(svc.archive.query("Haus"))  # German stems: Häuser, Haus
        assert [(h.kind, h.ref) for h in found.hits] == [("session", session.id)]
    finally:
        await svc.close()


@both_backends
async def test_comments_leave_search_when_hidden_or_deleted(services: Services, seeded: Seed) -> None:
    reader, _ = await services.readers.register("commenter", "a long password")
    comment = await services.comments.post(seeded.session_id, reader, "The platypus lays eggs")
    archive = services.archive
    assert [h.ref for h in (await archive.search(archive.query("platypus"))).hits] == [str(comment.id)]
    await services.comments.moderate(comment.id, "hide")
    assert (await archive.search(archive.query("platypus"))).total == 0
    await services.comments.moderate(comment.id, "show")
    assert (await archive.search(archive.query("platypus"))).total == 1
    await services.comments.edit(comment.id, reader, "Echidnas lay eggs too")
    assert (await archive.search(archive.query("platypus"))).total == 0
    assert (await archive.search(archive.query("echidna"))).total == 1
    await services.comments.moderate(comment.id, "delete")
    assert (await archive.search(archive.query("echidna"))).total == 0


@both_backends
async def test_tag_pages_and_related_sessions(live: LiveServer, seeded: Seed) -> None:
    svc = live.services
    await svc.programme.update_session(seeded.session_id, {"hashtags": ["#Botany", "#Light"]})
    await svc.programme.update_session(seeded.other_session_id, {"hashtags": ["#botany"]})
    await svc.programme.set_state(seeded.other_session_id, "live")
    for sid in (seeded.session_id, seeded.other_session_id):
        await end(svc, sid)
    assert set(await svc.archive.archive_due()) == {seeded.session_id, seeded.other_session_id}
    await svc.archive.set_organiser_tags(seeded.other_session_id, "Plant Science, #LIGHT")
    async with live.client() as c:
        tag = await c.get("/tags/botany")
        assert tag.status_code == 200
        assert (
            f"/archive/sessions/{seeded.session_id}" in tag.text
            and f"/archive/sessions/{seeded.other_session_id}" in tag.text
        )
        assert "Test Summit" in tag.text
        # "#BOTANY", "Botany" and "botany" are one tag.
        assert (await c.get("/tags/%23BOTANY")).text.count("/archive/sessions/") == 2
        light = await c.get("/tags/light")
        assert light.text.count('class="arch-card"') == 2  # hashtag on one, organiser tag on the other
        page = await c.get(f"/archive/sessions/{seeded.session_id}")
        related = page.text[page.text.index('id="related-heading"') :]
        assert f'href="/archive/sessions/{seeded.other_session_id}"' in related and "2 shared tags" in related
        other = await c.get(f"/archive/sessions/{seeded.other_session_id}")
        assert (
            f'href="/archive/sessions/{seeded.session_id}"'
            in other.text[other.text.index('id="related-heading"') :]
        )
        assert 'href="/tags/plantscience"' in other.text
        # Tags are searchable too.
        found = await c.get("/search", params={"q": "plantscience"})
        assert f"/archive/sessions/{seeded.other_session_id}" in found.text
        r = await c.get("/search", params={"q": "Keynote", "tag": "light"})
        assert f"/archive/sessions/{seeded.session_id}" in r.text


async def test_knowledge_pages_answer_304_when_unchanged(live: LiveServer, seeded: Seed) -> None:
    await end(live.services, seeded.session_id)
    await live.services.archive.archive_session(seeded.session_id)  # as the background job does
    url = f"/archive/sessions/{seeded.session_id}"
    async with live.client() as c:
        first = await c.get(url)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert (await c.get(url, headers={"if-none-match": etag})).status_code == 304
        assert (await c.get(url, headers={"if-modified-since": modified})).status_code == 304
        again = await c.get(url)  # from the in-memory cache: the same bytes
        assert again.text == first.text and again.headers["etag"] == etag
        await live.services.archive.set_summary(seeded.session_id, "Now with a summary", "org")
        changed = await c.get(url, headers={"if-none-match": etag})
        assert (
            changed.status_code == 200
            and changed.headers["etag"] != etag
            and "Now with a summary" in changed.text
        )
        # Any commit to the session's stream (here a comment) shows at once, cache or not.
        reader, _ = await live.services.readers.register("cachereader", "a long password")
        await live.services.comments.post(seeded.session_id, reader, "fresh comment")
        assert "fresh comment" in (await c.get(url)).text


async def test_organisers_edit_the_summary_and_tags_from_the_page(live: LiveServer, seeded: Seed) -> None:
    await end(live.services, seeded.session_id)
    url = f"/archive/sessions/{seeded.session_id}"
    async with live.client(follow_redirects=False) as anon:
        assert (await anon.post(f"{url}/summary", data={"summary": "x"})).status_code == 401
        assert "Edit the summary" not in (await anon.get(url)).text
    async with live.client(
        cookies={"lb_login": seeded.login_token},
        headers=organiser_csrf(seeded.login_token),
        follow_redirects=False,
    ) as org:
        assert "Edit the summary" in (await org.get(url)).text
        r = await org.post(f"{url}/summary", data={"summary": "**Plants** <script>alert(1)</script>"})
        assert r.status_code == 303
        r = await org.post(f"{url}/tags", data={"tags": "Botany, Light"})
        assert r.status_code == 303
        # A cross-site form post is refused.
        r = await org.post(
            f"{url}/summary", data={"summary": "pwned"}, headers={"origin": "https://evil.example"}
        )
        assert r.status_code == 403
    async with live.client() as c:
        html = (await c.get(url)).text
    assert "<strong>Plants</strong>" in html and "<script>alert" not in html and "pwned" not in html
    assert 'href="/tags/botany"' in html


async def test_scheduled_end_rule_ends_and_archives_overdue_sessions(
    services: Services, seeded: Seed
) -> None:
    archive = services.archive
    # The default rule waits for an organiser.
    assert await archive.archive_due("2026-05-14T23:00") == []
    archive.settings = type(archive.settings)(end_rule="scheduled", grace_minutes=30)
    # 10:20 is before the keynote's end (10:00) plus grace: nothing yet.
    assert await archive.archive_due("2026-05-14T10:20") == []
    assert set(await archive.archive_due("2026-05-14T12:31")) == {seeded.session_id, seeded.other_session_id}
    session = await services.programme.session(seeded.session_id)
    assert session.state == "ended" and session.ended_at


def test_tags_are_normalised() -> None:
    assert normalise_tag("#Machine Learning") == "machinelearning"
    assert normalise_tag("  #AI ") == normalise_tag("ai") == "ai"
    assert normalise_tag("Cafe\u0301") == "caf\u00e9"  # NFC: one code point
    assert normalise_tag("a/b?c#") == "abc"
    assert parse_tags("#AI, ml ,#Foo#Bar, ai") == ["ai", "ml", "foo", "bar"]
    assert search_terms('NEAR("x" AND y*)') == ("NEAR", "x", "AND", "y")


async def test_search_query_rejects_bad_filters(services: Services) -> None:
    with pytest.raises(BadRequest):
        services.archive.query("x", date_to="2026-13-01")


@both_backends
async def test_a_draft_poll_is_findable_only_once_it_opens(services: Services, seeded: Seed) -> None:
    from liveblog.capture.votes import Moderator

    invite = await services.accounts.invite_for_token(seeded.token)
    assert invite is not None
    mod = Moderator("Ada", invite.id)
    poll = await services.audience.create_poll(
        seeded.session_id,
        mod,
        {"question": "Secret capybara question?", "kind": "single", "options": ["a", "b"]},
    )
    assert (await services.archive.search(services.archive.query("capybara"))).total == 0
    await services.audience.set_poll_state(poll.id, mod, {"state": "open"})
    result = await services.archive.search(services.archive.query("capybara"))
    assert [h.ref for h in result.hits] == [str(poll.id)]


async def test_note_takers_write_the_summary_through_their_invite(live: LiveServer, seeded: Seed) -> None:
    url = f"/n/{seeded.token}/sessions/{seeded.session_id}/summary"
    async with live.client(follow_redirects=False) as c:
        assert (await c.get(url)).status_code == 404  # not ended yet: no knowledge page
        await end(live.services, seeded.session_id)
        notetaker = await c.get(f"/n/{seeded.token}/sessions/{seeded.session_id}")
        assert url in notetaker.text
        form = await c.get(url)
        assert form.status_code == 200
        r = await c.post(url, data={"summary": "Written by *Ada*", "csrf_token": page_csrf(form.text)})
        assert r.status_code == 303
        assert (
            await c.post(
                f"/n/not-a-token/sessions/{seeded.session_id}/summary",
                data={"summary": "x", "csrf_token": page_csrf(form.text)},
            )
        ).status_code == 401
        page = (await c.get(f"/archive/sessions/{seeded.session_id}")).text
    assert "Written by <em>Ada</em>" in page
    record = await live.services.db.read(lambda r: r.get_archive(seeded.session_id))
    assert record is not None and record.summary_by == "Ada"


async def test_a_cached_public_page_carries_nobodys_csrf_token(live: LiveServer, seeded: Seed) -> None:
    await end(live.services, seeded.session_id)
    await live.services.archive.archive_session(seeded.session_id)  # as the background job does
    url = f"/archive/sessions/{seeded.session_id}"
    async with live.client() as first, live.client() as second:
        a = (await first.get(url)).text
        b = (await second.get(url)).text
    assert a == b and '<meta name="csrf-token" content="">' in a


async def test_counts_are_in_the_right_number(live: LiveServer, seeded: Seed) -> None:
    """'1 post', never '1 posts': the event's archive page and its Markdown say each count with its
    noun in the right number (the filled session has 1 post, 1 question, 4 notes and no comment)."""
    await fill_session(live.services, seeded)
    await end(live.services, seeded.session_id)
    await live.services.archive.archive_session(
        seeded.session_id
    )  # archived now, not by the background check
    async with live.client() as c:
        page = (await c.get(f"/events/{seeded.event_id}/archive")).text
        md = (await c.get(f"/events/{seeded.event_id}/archive.md")).text
    for text in (page, md):
        assert "4 notes · 1 post · 5 votes · 1 question · 0 comments" in text
        assert not re.search(r"\b1 (notes|posts|votes|questions|comments|sessions|voters)\b", text)
    assert "1 of 2 sessions archived" in page
    assert "Favourite pigment?</text>" in page and "Keynote: Favourite" not in page  # turnout by question


def test_search_snippets_show_markdown_as_the_reader_sees_it() -> None:
    """Snippets come from what people typed (Markdown). A fediverse reply's body keeps its links
    as autolinks and escapes its other punctuation; none of that shows in a snippet."""
    snippet = f"read <https://a.example/x> on \\*{MARK_START}stars{MARK_END}\\* and [the link](https://b.example) \\[1\\]"
    assert str(highlight(snippet)) == "read https://a.example/x on *<mark>stars</mark>* and the link [1]"
    # The static site's offline index reads the same text.
    assert plain_text("**Bold** \\_x\\_ <https://c.example>") == "Bold _x_ https://c.example"


async def test_the_first_summary_is_the_key_points_in_page_order(services: Services, seeded: Seed) -> None:
    """Archiving seeds the summary from the key points (now read alone, not with every note):
    in page order, deleted ones and other notes, polls and questions left out."""
    sid = seeded.session_id
    await fill_session(services, seeded)  # a key point, other notes, a post, a poll, a question
    ada = Author(name="Ada", ref="inv-ada")
    await note(services, sid, ada, "Plain note before")
    await note(services, sid, ada, "First key point\nits second line is not in the summary", key_point=True)
    gone = await note(services, sid, ada, "A key point deleted", key_point=True)
    await note(services, sid, ada, "Plain note between")
    later = await note(services, sid, ada, "Made a key point later")
    made_key = {"type": "note.update", "client_id": "kp", "item_id": later, "body": "Made a key point later"}
    await services.notes.handle(sid, ada, {**made_key, "key_point": True})
    await services.notes.handle(sid, ada, {"type": "note.delete", "client_id": "del", "item_id": gone})
    await end(services, sid)
    page = await services.archive.knowledge(sid)  # read before the job archived it: as it will be
    await services.archive.archive_session(sid)
    archived = await services.archive.knowledge(sid)
    for summary in (page.record.summary, archived.record.summary):
        assert (
            summary == "- Chlorophyll absorbs red and blue light\n- First key point\n- Made a key point later"
        )

"""A long session's pages stay light (issue 17 item 7), on a real server over a real SQLite file:
the first HTML of the live and the knowledge page of a session of 2,000 notes and 5,000 social
posts fits its budget in bytes (times are the benchmark's: bench/pageload.py), the older-cards
endpoint pages by position, and bad cursors are refused by name. What a reader sees (scrolling,
pages without JavaScript, live notes meanwhile) is in tests/browser/test_long_sessions.py."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.pageload import fill_sessions
from liveblog.capture.notes import Author
from liveblog.services import Services
from liveblog.settings import Settings
from liveblog.web.app import make_templates
from liveblog.web.archive import Cards
from tests.conftest import BACKENDS, LiveServer, Seed, make_settings, run_server, seed

FIRST_HTML_BUDGET = 150_000  # bytes (issue 17 item 7)


async def long_sessions(
    tmp_path: Path, session_ids: Callable[[Seed], list[str]], notes: int, posts: int
) -> tuple[Settings, Seed]:
    """A seeded SQLite file of its own (whatever backend the suite runs on), the other session
    live, the sessions `session_ids` picks holding `notes` notes and `posts` posts each, written
    straight into the file (bench/pageload.py) while no services hold it open."""
    settings = make_settings(tmp_path, database={"path": str(tmp_path / "long.sqlite3")})
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        await services.programme.set_state(s.other_session_id, "live")
    finally:
        await services.close()
    fill_sessions(settings.database.path, session_ids(s), notes, posts)
    return settings, s


async def test_the_first_html_of_a_long_session_stays_within_its_budget(tmp_path: Path) -> None:
    settings, s = await long_sessions(tmp_path, lambda s: [s.session_id, s.other_session_id], 2000, 5000)
    services = Services.build(settings)
    await services.open()
    try:
        await services.programme.set_state(s.other_session_id, "ended")
        async with (
            run_server(settings, services) as live,
            httpx.AsyncClient(base_url=live.url, timeout=60) as http,
        ):
            page = await http.get(f"/sessions/{s.session_id}")
            assert page.status_code == 200
            assert len(page.content) <= FIRST_HTML_BUDGET, f"live page: {len(page.content):,} bytes"
            # (the card <template> the script clones for live items holds one more, of item 0)
            assert len(re.findall(r'<article class="item [^"]*" id="item-[1-9]', page.text)) == 50
            assert 'rel="next"' in page.text and "Older notes" in page.text

            knowledge = await http.get(f"/sessions/{s.other_session_id}")
            assert knowledge.status_code == 200
            assert "knowledge" in knowledge.text
            assert len(knowledge.content) <= FIRST_HTML_BUDGET, (
                f"knowledge page: {len(knowledge.content):,} bytes"
            )
            assert len(re.findall(r'<article class="arch-item ', knowledge.text)) == 100  # 50 notes, 50 posts

            # The rest of the notes, a page at a time after the last one shown, each once.
            more = re.search(r'data-url="([^"]+section=notes)" data-after="(\d+)"', knowledge.text)
            assert more is not None
            url, after = more.group(1).replace("&amp;", "&"), more.group(2)
            seen = re.findall(r'<article class="arch-item arch-note[^"]*" id="item-(\d+)"', knowledge.text)
            while after is not None:
                page = (await http.get(f"{url}&after={after}")).json()
                seen += re.findall(r'id="item-(\d+)"', page["html"])
                after = page["after"]
            assert len(seen) == len(set(seen)) == 2000
            assert [int(i) for i in seen] == sorted(int(i) for i in seen)  # written in order: ids rise
            # The permalink of the last note: the numbered page that holds it.
            found = await http.get(f"/archive/sessions/{s.other_session_id}/items/{seen[-1]}")
            assert found.status_code == 303
            assert (
                found.headers["location"] == f"/archive/sessions/{s.other_session_id}/page/40#item-{seen[-1]}"
            )
            bad = await http.get(f"{url}&after=first")
            assert bad.status_code == 400 and "after must be an item id" in bad.text
    finally:
        await services.close()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_older_pages_are_read_by_position_and_numbered_pages_from_the_oldest(
    live: LiveServer, seeded: Seed
) -> None:
    """The older-cards cursor is an item's place, which still counts once that item is deleted;
    numbered pages count from the oldest item; permalinks go to the page that holds them."""
    svc = live.services
    invite = await svc.accounts.invite_for_token(seeded.token)
    assert invite is not None
    author = Author.from_invite(invite)
    sid = seeded.session_id

    async def capture(message: dict[str, object]) -> int:
        return (await svc.notes.handle(sid, author, {"client_id": str(uuid.uuid4()), **message})).item_id

    ids = [await capture({"type": "note.create", "body": f"Note {n}"}) for n in range(130)]
    card_ids = re.compile(r'<article class="item [^"]*" id="item-([1-9]\d*)"')  # not the template's
    async with live.client() as http:
        page = (await http.get(f"/sessions/{sid}")).text
        assert [int(i) for i in card_ids.findall(page)] == ids[::-1][:50]
        link = re.search(r'id="older-link" href="([^"]+)" rel="next" data-before="(\d+)"', page)
        assert link is not None and link.groups() == (f"/sessions/{sid}/page/2", str(ids[80]))

        await capture({"type": "note.delete", "item_id": ids[80]})  # the cursor itself goes
        older = (await http.get(f"/sessions/{sid}/older", params={"before": ids[80]})).json()
        assert [int(i) for i in card_ids.findall(older["html"])] == ids[79:29:-1]
        assert older["before"] == ids[30]
        assert older["seq"] == (await svc.programme.session(sid)).last_seq
        oldest = (await http.get(f"/sessions/{sid}/older", params={"before": ids[30]})).json()
        assert [int(i) for i in card_ids.findall(oldest["html"])] == ids[29::-1] and oldest["before"] is None

        first = (await http.get(f"/sessions/{sid}/page/1")).text
        assert [int(i) for i in card_ids.findall(first)] == ids[49::-1]
        last = (await http.get(f"/sessions/{sid}/page/3")).text  # 129 items: 101-129
        assert [int(i) for i in card_ids.findall(last)] == ids[:100:-1]
        assert f'<link rel="prev" href="/sessions/{sid}">' in last.replace("\n", "")
        assert (await http.get(f"/sessions/{sid}/page/4")).status_code == 404
        assert (await http.get(f"/sessions/{sid}/page/0")).status_code == 404

        for bad in ("abc", "-1", str(10**9)):
            refused = await http.get(f"/sessions/{sid}/older", params={"before": bad})
            assert refused.status_code == 400, bad
            assert (
                "before must be an item id" in refused.text
                or "is not an item of this session" in refused.text
            )

        found = await http.get(f"/sessions/{sid}/items/{ids[0]}")
        assert (
            found.status_code == 303 and found.headers["location"] == f"/sessions/{sid}/page/1#item-{ids[0]}"
        )
        newest = await http.get(f"/sessions/{sid}/items/{ids[-1]}")
        assert newest.headers["location"] == f"/sessions/{sid}#item-{ids[-1]}"
        assert (await http.get(f"/sessions/{sid}/items/{ids[80]}")).status_code == 404  # deleted


async def test_a_knowledge_page_cut_from_cards_rendered_on_demand_is_the_page_cut_from_kept_ones(
    tmp_path: Path,
) -> None:
    """A long page viewed before its cards are kept renders only its own (SlotCards); once the
    archive has kept and assembled them, the same page is the same bytes."""
    settings = make_settings(tmp_path, database={"path": str(tmp_path / "long.sqlite3")})
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        await services.programme.set_state(s.other_session_id, "live")
    finally:
        await services.close()
    fill_sessions(settings.database.path, [s.other_session_id], 300, 300)
    services = Services.build(settings)
    await services.open()
    try:
        sid = s.other_session_id
        await services.programme.set_state(sid, "ended")
        async with run_server(settings, services) as live, live.client() as http:
            on_demand = await http.get(f"/archive/sessions/{sid}/page/2")
            assert on_demand.status_code == 200
            await services.archive.cards_kept()
            await services.archive.warm_cards(sid)  # every card kept, and assembled
            services.archive.page_cache.clear()
            kept = await http.get(f"/archive/sessions/{sid}/page/2")
            assert kept.text == on_demand.text
    finally:
        await services.close()


def test_serve_compiles_every_template_before_its_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's first view after a start compiled its templates (the knowledge page's first load
    paid ~100-300 ms for them). `liveblog serve` compiles every template at start-up, so its first
    requests compile none; an app made any other way (tests: many per process) leaves them to
    their first use."""
    import gc

    from starlette.testclient import TestClient

    from liveblog.cli import main
    from liveblog.web import serving
    from liveblog.web.app import create_app

    def compiled_by_first_requests(app: Any) -> list[str]:
        env = app.state.templates.env
        names: list[str] = []
        compile_ = env.compile

        def counting(source: str, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
            names.append(str(name))
            return compile_(source, name, *args, **kwargs)

        monkeypatch.setattr(env, "compile", counting)
        with TestClient(app) as client:
            names.clear()  # what start-up compiled
            assert client.get("/").status_code == 200
            assert client.get("/archive/sessions/no-such-session").status_code == 404  # its page
        return names

    (tmp_path / "other").mkdir()
    assert compiled_by_first_requests(create_app(make_settings(tmp_path / "other"))) != []
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "serve.sqlite3"}"\n')
    monkeypatch.setenv("LIVEBLOG_SECRET_KEY", "a test key")
    by_serve: list[list[str]] = []

    def serve(app: Any, listening: Any, **options: Any) -> bool:  # serving.serve, as far as the lifespan
        by_serve.append(compiled_by_first_requests(app))
        return True

    monkeypatch.setattr(serving, "serve", serve)
    try:
        assert main(["--config", str(config), "serve"]) == 0
    finally:
        gc.unfreeze()  # serve froze what this process had made (one app per process)
    assert by_serve == [[]]


async def test_a_page_rendered_while_the_archive_warms_a_long_session_waits_for_one_piece(
    tmp_path: Path,
) -> None:
    """The archive's check renders a just-ended session's cards in the one render thread, where
    big pages render too. All of a long session's cards were one job, and a page asked for
    meanwhile (the first view after a start) waited for all of them; now each piece of
    WARM_PIECE cards is a job, and the page's comes after the piece under way."""
    import asyncio
    import threading

    from liveblog.web import render
    from liveblog.web.app import make_templates
    from liveblog.web.archive import WARM_PIECE, Cards, card_warmer

    settings, s = await long_sessions(tmp_path, lambda s: [s.other_session_id], WARM_PIECE * 2, 50)
    services = Services.build(settings)
    await services.open()
    try:
        await services.programme.set_state(s.other_session_id, "ended")
        cards = Cards(make_templates().env)  # no app: the archive's own check warms nothing here
        order: list[str] = []
        rendering, queued = threading.Event(), threading.Event()
        card = cards._card

        def held_card(*args: object) -> object:
            order.append("card")
            if len(order) == 1:  # the warm holds the render thread until the page is queued
                rendering.set()
                assert queued.wait(10)
            return card(*args)

        cards._card = held_card
        warming = asyncio.ensure_future(card_warmer(services, cards)(s.other_session_id))
        assert await asyncio.to_thread(rendering.wait, 10)
        page = asyncio.get_running_loop().run_in_executor(render._RENDERER, order.append, "page")
        queued.set()
        await asyncio.wait_for(asyncio.gather(warming, page), 60)
        assert order.count("card") == WARM_PIECE * 2 + 50
        assert order.index("page") == WARM_PIECE  # after the first piece, not after every card
        view = await services.archive.knowledge_view(s.other_session_id, cards.key)
        assert view.section is not None  # and the warm kept the assembled cards, as before
    finally:
        await services.close()


@contextlib.asynccontextmanager
async def ended_long_session(
    tmp_path: Path, notes: int, posts: int
) -> AsyncIterator[tuple[Settings, Services, str, Cards]]:
    """Open services over a session of `notes` notes and `posts` posts, ended (not archived
    yet), and the knowledge page's cards (no app: the archive's check warms nothing here)."""
    settings, s = await long_sessions(tmp_path, lambda s: [s.other_session_id], notes, posts)
    services = Services.build(settings)
    await services.open()
    try:
        await services.programme.set_state(s.other_session_id, "ended")
        yield settings, services, s.other_session_id, Cards(make_templates().env)
    finally:
        await services.close()


@contextlib.asynccontextmanager
async def page_readers_held(settings: Settings, services: Services) -> AsyncIterator[None]:
    """Every reader of the pages' pool held: reads asked for meanwhile wait, under way."""
    async with contextlib.AsyncExitStack() as held:
        for _ in range(settings.database.page_readers):
            await held.enter_async_context(services.db.reader("pages"))
        yield


async def test_a_knowledge_view_asked_for_while_the_same_is_read_waits_for_that_read(tmp_path: Path) -> None:
    """The first view within a second of a start came while the archive's check was reading the
    session it had just archived, every item in full (7,000: ~150 ms alone): it read them all
    again at the same time, and both reads took twice as long. A view asked for while the same
    one is being read, with nothing committed to the session since, now waits for that read."""
    async with ended_long_session(tmp_path, 300, 100) as (_, services, sid, cards):
        await services.archive.archive_session(sid)
        key = cards.key
        first, second = await asyncio.wait_for(
            asyncio.gather(
                services.archive.knowledge_view(sid, key), services.archive.knowledge_view(sid, key)
            ),
            30,
        )
        assert second is first  # one read
        assert len(first.notes) == 300 and len(first.posts) == 100
        again = await services.archive.knowledge_view(sid, key)
        assert again is not first  # a read done is not kept: the next view reads


async def test_a_knowledge_view_asked_for_after_a_change_reads_again(tmp_path: Path) -> None:
    """A view asked for after a commit that changed the session, or kept its cards, does not wait
    for a read asked for before that commit: it reads, and shows the change."""
    from liveblog.models import RenderedCard

    async with ended_long_session(tmp_path, 30, 10) as (settings, services, sid, cards):
        await services.archive.archive_session(sid)
        key = cards.key
        view = services.archive.knowledge_view
        earlier = await view(sid, key)
        some = earlier.notes[0]
        assert some.html is None and some.item is not None
        async with page_readers_held(settings, services):
            before = asyncio.ensure_future(view(sid, key))
            await services.archive.set_summary(sid, "What changed", "organiser")
            after_change = asyncio.ensure_future(view(sid, key))
            card = RenderedCard(some.item_id, some.item.version, "<article>kept</article>", 3)
            await services.archive.keep_cards(sid, earlier.card_key, [card], None)
            after_keep = asyncio.ensure_future(view(sid, key))
        pages = await asyncio.wait_for(asyncio.gather(before, after_change, after_keep), 30)
        assert len({id(p) for p in pages}) == 3  # three reads
        assert pages[1].record.summary == "What changed"
        assert pages[2].notes[0].html == "<article>kept</article>"


async def test_the_archive_warms_a_session_after_a_view_being_read_not_at_the_same_time(
    tmp_path: Path,
) -> None:
    """The first view after a start often comes while its session is being archived: its read
    began before the archive's commit, so the archive's warm may not share it, and both read
    every item at the same time (~300 ms each for 7,000, ~150 ms alone). The warm now reads
    after the view's read is done."""
    from liveblog.web.archive import card_warmer

    async with ended_long_session(tmp_path, 300, 100) as (settings, services, sid, cards):
        services.archive.warm_cards_with(card_warmer(services, cards))
        order: list[str] = []
        read_view = services.archive._read_view

        async def recorded(*args: Any) -> Any:
            order.append("read")
            try:
                return await read_view(*args)
            finally:
                order.append("done")

        services.archive._read_view = recorded  # type: ignore[method-assign]
        async with page_readers_held(settings, services):
            viewing = asyncio.ensure_future(services.archive.knowledge_view(sid, cards.key))
            assert await services.archive.archive_session(sid)  # after the view was asked for
            warming = asyncio.ensure_future(services.archive.warm_cards(sid))
        view, _ = await asyncio.wait_for(asyncio.gather(viewing, warming), 30)
        assert order == ["read", "done", "read", "done"]  # one after the other
        assert len(view.notes) == 300 and len(view.posts) == 100
        assert (await services.archive.knowledge_view(sid, cards.key)).section is not None  # warmed

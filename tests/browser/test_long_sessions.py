"""A long session in headless Chromium (issue 17 item 7): the live page shows its newest 50 items
and loads older ones as the reader scrolls, in order and each once; without JavaScript the
numbered pages reach every item (live and knowledge page); live notes, edits and deletions keep
arriving while older pages load, and a page read before a change gets it on top."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from liveblog.capture.notes import Author
from liveblog.services import Services
from tests.browser.conftest import ThreadServer

pytestmark = pytest.mark.browser

ITEMS = "#items > article.item"


async def note_taker(svc: Services, token: str) -> Author:
    invite = await svc.accounts.invite_for_token(token)
    assert invite is not None
    return Author.from_invite(invite)


def add_notes(server: ThreadServer, count: int, *, key_every: int = 0) -> list[int]:
    """`count` notes through the capture path (as the seeded note-taker), oldest first; their ids."""
    assert server.seed is not None
    token, session_id = server.seed.token, server.session_id

    async def write(svc: Services) -> list[int]:
        author = await note_taker(svc, token)
        ids = []
        for n in range(count):
            ack = await svc.notes.handle(
                session_id,
                author,
                {
                    "type": "note.create",
                    "client_id": str(uuid.uuid4()),
                    "body": f"Note number {n}",
                    "key_point": bool(key_every) and n % key_every == 0,
                },
            )
            ids.append(ack.item_id)
        return ids

    return server.call(write, timeout=120)


def change(server: ThreadServer, message: dict[str, Any]) -> int:
    """One capture message (note.create, note.update, note.delete) as the seeded note-taker;
    returns the session's seq after it."""
    assert server.seed is not None
    token, session_id = server.seed.token, server.session_id

    async def write(svc: Services) -> int:
        author = await note_taker(svc, token)
        return (await svc.notes.handle(session_id, author, {"client_id": str(uuid.uuid4()), **message})).seq

    return server.call(write)


def shown_ids(page: Page) -> list[int]:
    return page.eval_on_selector_all(ITEMS, "els => els.map((el) => Number(el.dataset.id))")


def scroll_to_end(page: Page) -> None:
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")


def open_live(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_a_long_stream_shows_its_newest_page_and_loads_older_ones_in_order_as_the_reader_scrolls(
    browser_context: Any, server: ThreadServer
) -> None:
    ids = add_notes(server, 120, key_every=40)
    page = browser_context().new_page()
    open_live(page, server.viewer_url())
    expect(page.locator(ITEMS)).to_have_count(50)
    assert shown_ids(page) == ids[::-1][:50]
    # Every key point is listed, loaded or not: an old one links to its permalink.
    expect(page.locator("#key-points li")).to_have_count(3)
    expect(page.locator(f'#key-points a[href="/sessions/{server.session_id}/items/{ids[0]}"]')).to_have_count(
        1
    )

    scroll_to_end(page)
    expect(page.locator(ITEMS)).to_have_count(100)
    scroll_to_end(page)
    expect(page.locator(ITEMS)).to_have_count(120)
    expect(page.locator("#older-link")).to_have_count(0)  # nothing older left
    assert shown_ids(page) == ids[::-1]  # newest first, every one once
    expect(page.locator(f'#key-points a[href="#item-{ids[0]}"]')).to_have_count(1)

    # A permalink to an item on a page not loaded yet leads to the page that holds it.
    fresh = browser_context().new_page()
    fresh.goto(f"{server.viewer_url()}#item-{ids[3]}")
    expect(fresh).to_have_url(re.compile(rf"/sessions/{server.session_id}/page/1#item-{ids[3]}$"))
    expect(fresh.locator(f"#item-{ids[3]}")).to_be_visible()


def test_without_javascript_the_numbered_pages_reach_every_item(
    browser_context: Any, server: ThreadServer
) -> None:
    ids = add_notes(server, 120, key_every=50)
    page = browser_context(java_script_enabled=False).new_page()
    page.goto(server.viewer_url())
    seen = shown_ids(page)
    assert seen == ids[::-1][:50]
    visited = 0
    while page.locator('a[rel="next"]').count():
        assert page.locator('link[rel="next"]').count() == 1  # in the head too, for crawlers
        page.locator('a[rel="next"]').first.click()
        visited += 1
        assert page.locator('link[rel="prev"]').count() == 1
        canonical = page.locator('link[rel="canonical"]').get_attribute("href")
        assert canonical is not None and canonical.endswith(page.url.removeprefix(server.url))
        seen += [i for i in shown_ids(page) if i not in seen]
        assert visited < 10, "the pages link in a circle"
    assert sorted(seen) == sorted(ids)
    # A permalink resolves to the page that holds the item.
    page.goto(f"/sessions/{server.session_id}/items/{ids[60]}")
    expect(page.locator(f"#item-{ids[60]}")).to_have_count(1)

    # The knowledge page, once the session has ended: every note on one of its numbered pages.
    sid = server.session_id
    server.call(lambda svc: svc.programme.set_state(sid, "ended"))
    page.goto(server.viewer_url())
    expect(page.locator("body.knowledge")).to_have_count(1)
    notes = page.eval_on_selector_all("article.arch-note", "els => els.map((el) => Number(el.id.slice(5)))")
    assert notes == ids[:50]  # in reading order
    # A key point on a later page links to its permalink, which leads there.
    page.locator(f'.key-points a[href="/archive/sessions/{sid}/items/{ids[100]}"]').click()
    expect(page).to_have_url(re.compile(rf"/archive/sessions/{sid}/page/3#item-{ids[100]}$"))
    page.goto(server.viewer_url())
    while page.locator('nav.pager a[rel="next"]').count():
        page.locator('nav.pager a[rel="next"]').click()
        notes += page.eval_on_selector_all(
            "article.arch-note", "els => els.map((el) => Number(el.id.slice(5)))"
        )
    assert notes == ids
    page.goto(f"/archive/sessions/{sid}/items/{ids[110]}")
    expect(page).to_have_url(re.compile(rf"/archive/sessions/{sid}/page/3#item-{ids[110]}$"))


def test_a_knowledge_page_loads_its_later_notes_as_the_reader_scrolls(
    browser_context: Any, server: ThreadServer
) -> None:
    ids = add_notes(server, 120)
    sid = server.session_id
    server.call(lambda svc: svc.programme.set_state(sid, "ended"))
    page = browser_context().new_page()
    page.goto(f"/archive/sessions/{sid}")
    notes = page.locator("article.arch-note")
    expect(notes).to_have_count(50)
    for count in (100, 120):
        page.locator("a.more-link").first.scroll_into_view_if_needed()
        expect(notes).to_have_count(count)
    expect(page.locator("a.more-link")).to_have_count(0)
    assert (
        page.eval_on_selector_all("article.arch-note", "els => els.map((el) => Number(el.id.slice(5)))")
        == ids
    )


# Holds each older page's response until the test releases it, so that a change can be made
# between the server reading the page and the page reaching the stream.
HOLD_OLDER_PAGES = """
(() => {
  const real = window.fetch.bind(window);
  window.__held = null;
  window.fetch = async (input, init) => {
    const response = await real(input, init);
    if (!String(input).includes("/older?")) return response;
    const body = await response.text();
    await new Promise((release) => { window.__held = { release, seq: JSON.parse(body).seq }; });
    window.__held = null;
    return new Response(body, { status: response.status, headers: response.headers });
  };
})();
"""


def test_live_notes_and_changes_arrive_while_older_pages_load(
    browser_context: Any, server: ThreadServer
) -> None:
    ids = add_notes(server, 120)
    ctx = browser_context()
    ctx.add_init_script(HOLD_OLDER_PAGES)
    page = ctx.new_page()
    open_live(page, server.viewer_url())
    expect(page.locator(ITEMS)).to_have_count(50)

    def stream_seq() -> int:
        return int(page.evaluate("window.liveblogViewer.stream.seq"))

    # Changed before their page loads: the page is read after, and has them.
    seq = change(server, {"type": "note.update", "item_id": ids[60], "body": "Edited before its page loaded"})
    seq = change(server, {"type": "note.delete", "item_id": ids[61]})
    page.wait_for_function("(seq) => window.liveblogViewer.stream.seq >= seq", arg=seq)
    # A live note while the reader is at the top: shown at once, at the top.
    change(server, {"type": "note.create", "body": "Arrived while reading"})
    expect(page.locator(ITEMS).first).to_contain_text("Arrived while reading")

    scroll_to_end(page)
    page.wait_for_function("() => window.__held !== null")
    read_at = int(page.evaluate("window.__held.seq"))
    # Changed after the server read that page, before it reached the page: applied on top.
    seq = change(
        server, {"type": "note.update", "item_id": ids[55], "body": "Edited while its page was on the way"}
    )
    seq = change(server, {"type": "note.delete", "item_id": ids[56]})
    page.wait_for_function("(seq) => window.liveblogViewer.stream.seq >= seq", arg=seq)
    assert read_at < seq
    page.evaluate("window.__held.release()")
    # 50 of the head, the live note, a page of 50 (read after one deletion) less the later one
    expect(page.locator(ITEMS)).to_have_count(50 + 1 + 50 - 1)
    expect(page.locator(f"#item-{ids[55]}")).to_contain_text("Edited while its page was on the way")
    expect(page.locator(f"#item-{ids[56]}")).to_have_count(0)
    expect(page.locator(f"#item-{ids[60]}")).to_contain_text("Edited before its page loaded")
    expect(page.locator(f"#item-{ids[61]}")).to_have_count(0)

    # A live note while the reader is down among older pages: waiting, counted, not jumped to.
    page.evaluate("window.__autoRelease = setInterval(() => window.__held && window.__held.release(), 50)")
    scroll_to_end(page)
    expect(page.locator(ITEMS)).to_have_count(120 - 2 + 1)
    scroll_to_end(page)
    change(server, {"type": "note.create", "body": "Arrived while reading old notes"})
    expect(page.locator("#new-items")).to_have_text("1 new item")
    page.locator("#new-items").click()
    assert stream_seq() >= seq
    expected = [i for i in ids if i not in (ids[56], ids[61])]
    shown = shown_ids(page)
    assert shown[2:] == expected[::-1]  # the two live notes on top, then every note once, in order
    assert len(set(shown)) == len(shown)


def test_oldest_first_readers_load_older_items_above_with_a_click(
    browser_context: Any, server: ThreadServer
) -> None:
    ids = add_notes(server, 70)
    ctx = browser_context()
    ctx.add_init_script("localStorage.setItem('liveblog.viewer.order', 'oldest')")
    page = ctx.new_page()
    open_live(page, server.viewer_url())
    expect(page.locator("#order-toggle")).to_have_text("Oldest first")
    assert shown_ids(page) == ids[20:]
    # The link sits at the older end (above), and loads only when asked: no scrolling jumps.
    assert page.evaluate("document.getElementById('older-more').nextElementSibling.id") == "items"
    page.locator("#older-link").click()
    expect(page.locator(ITEMS)).to_have_count(70)
    assert shown_ids(page) == ids
    expect(page.locator("#older-link")).to_have_count(0)

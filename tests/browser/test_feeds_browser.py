"""Collected social posts in a real browser: a hostile post is inert, and the viewer page never
asks any origin but ours (images and avatars are our own stripped copies)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, expect

from liveblog.models import SocialPost
from liveblog.services import Services
from liveblog.storage import Tx
from tests.browser.conftest import ThreadServer

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadServer]:
    srv = ThreadServer(tmp_path, feeds={"fetch_media": False, "moderate_by_default": False}).start()
    try:
        yield srv
    finally:
        srv.stop()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 80, 40)).save(out, "PNG")
    return out.getvalue()


def hostile(media_id: str) -> SocialPost:
    return SocialPost(
        network="mastodon",
        post_id="https://social.example/users/eve/statuses/666",
        author_handle="eve@social.example",
        author_name='Eve <img src="https://tracker.example/eve.png">',
        text=(
            '<script>window.pwned = 1</script><b>not bold</b> <img src=x onerror="window.pwned=2"> '
            "click javascript:window.pwned=3 or https://example.org/ok #test @ana@social.example"
        ),
        url="https://social.example/@eve/666",
        posted_at="2026-05-14T09:30:00.000Z",
        hashtags=("test",),
        media=(
            {
                "type": "image",
                "url": "https://files.social.example/a.png",
                "alt": "A slide",
                "width": 40,
                "height": 30,
                "local": f"/media/{media_id}",
            },
            {"type": "image", "url": "https://files.social.example/b.png", "alt": "Not fetched"},
        ),
        avatar_url="https://files.social.example/avatar.png",
        avatar_local=f"/media/{media_id}",
    )


def post_it(server: ThreadServer, make: Callable[[str], SocialPost] = hostile) -> None:
    """Collect one Mastodon post, made by `make` around the id of an image stored as ours."""

    async def run(svc: Services) -> None:
        async def op(tx: Tx) -> str:
            return await tx.insert_media(server.session_id, "image/png", _png(), "test")

        media_id = await svc.db.write(op)
        svc.feeds.poll_now()
        await svc.feeds.ingest("mastodon", [make(media_id)])

    server.call(run)


def marked_sensitive(media_id: str) -> SocialPost:
    """A post whose author marked its picture sensitive (as mastodon.social's recorded one in
    tests/data/mastodon)."""
    return SocialPost(
        network="mastodon",
        post_id="https://social.example/users/ana/statuses/7",
        author_handle="ana@social.example",
        author_name="Ana",
        text="image post #test",
        url="https://social.example/@ana/7",
        posted_at="2026-05-14T09:30:00.000Z",
        hashtags=("test",),
        media=(
            {
                "type": "image",
                "url": "https://files.social.example/c.png",
                "alt": "furry cube",
                "local": f"/media/{media_id}",
                "sensitive": True,
            },
        ),
    )


def test_a_hostile_post_is_inert_and_the_viewer_asks_only_our_origin(
    server: ThreadServer, browser_context: Callable[..., BrowserContext]
) -> None:
    page = browser_context().new_page()
    asked: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server.viewer_url())
    expect(page.locator("body")).to_be_visible()
    post_it(server)
    card = page.locator("article.item-social")
    expect(card).to_have_count(1)  # arrived live, rendered by the page's script
    for view in ("live", "reloaded"):
        if view == "reloaded":
            page.reload()
            expect(card).to_have_count(1)  # rendered by the server
        body = card.locator(".item-body")
        expect(body).to_contain_text("<script>window.pwned = 1</script><b>not bold</b>")
        assert card.locator("script, b, iframe, object, embed").count() == 0
        hrefs = card.locator(".item-body a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
        assert hrefs and all(h.startswith("https://") for h in hrefs), hrefs
        assert "https://example.org/ok" in hrefs and "https://social.example/@eve/666" in hrefs
        assert "https://social.example/tags/test" in hrefs and "https://social.example/@ana" in hrefs
        srcs = card.locator("img").evaluate_all("els => els.map(e => e.getAttribute('src'))")
        assert srcs and all(s.startswith("/media/") for s in srcs), srcs
        expect(card.locator("img.social-image")).to_have_attribute("alt", "A slide")
        expect(card.locator("a.social-media-link")).to_contain_text("Not fetched")
        expect(card.locator(".social-network")).to_have_text("Mastodon")
        # The post shows its author's name and handle: the card's header keeps the name for
        # screen readers (it labels the card) but does not show it a second time.
        author = card.locator(".item-meta .author")
        assert (
            author.inner_text().strip() and author.inner_text() in card.locator(".social-name").inner_text()
        )
        box = author.bounding_box()
        assert box is not None and box["width"] <= 1 and box["height"] <= 1, box
        page.wait_for_function("() => [...document.images].every(i => i.complete)")
        assert page.evaluate("() => window.pwned") is None
    assert dialogs == []
    ours = server.url
    foreign = [u for u in asked if not u.startswith((ours, "data:", "blob:"))]
    assert foreign == [], foreign
    assert any("/media/" in u for u in asked)  # the images did load, from us


@pytest.fixture
def moderated(tmp_path: Path) -> Iterator[ThreadServer]:
    srv = ThreadServer(tmp_path, feeds={"fetch_media": False, "moderate_by_default": True}).start()
    try:
        yield srv
    finally:
        srv.stop()


def plain(n: int, who: str) -> SocialPost:
    return SocialPost(
        network="x",
        post_id=str(1_900_000_000_000_000_000 + n),
        author_handle=who,
        author_name=who.title(),
        text=f"Post {n} from {who} #test",
        url=f"https://x.com/{who}/status/{n}",
        posted_at=f"2026-05-14T09:3{n}:00.000Z",
        hashtags=("test",),
    )


def test_moderators_see_the_queue_live_and_decide_with_one_key(moderated: ThreadServer, browser: Any) -> None:
    server = moderated
    assert server.seed is not None
    mod_ctx = browser.new_context(base_url=server.url)
    view_ctx = browser.new_context(base_url=server.url)
    try:
        mod_ctx.add_cookies([{"name": "lb_login", "value": server.seed.login_token, "url": server.url}])
        mod = mod_ctx.new_page()
        errors: list[str] = []
        mod.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        mod.on("pageerror", lambda e: errors.append(str(e)))
        mod.goto(f"/organise/sessions/{server.session_id}/social")
        expect(mod.locator("#queue-empty")).to_be_visible()
        viewer = view_ctx.new_page()
        viewer.goto(server.viewer_url())

        async def arrive(svc: Services) -> None:
            await svc.feeds.ingest("x", [plain(1, "ana"), plain(2, "spammer"), plain(3, "spammer")])

        server.call(arrive)
        queue = mod.locator("#social-queue > li")
        try:
            expect(queue).to_have_count(3)  # arrived live, nobody reloaded
        except AssertionError:
            raise AssertionError(f"{errors} {mod.locator('#social-status').text_content()}") from None
        expect(viewer.locator("article.item-social")).to_have_count(0)  # waiting posts are not public
        expect(queue.first).to_contain_text("Post 1 from ana")
        mod.keyboard.press("a")  # approve the focused (first) post
        expect(viewer.locator("article.item-social")).to_have_count(1)
        expect(viewer.locator("article.item-social")).to_contain_text("Post 1 from ana")
        expect(queue).to_have_count(2)
        mod.keyboard.press("b")  # block the next post's account: both of its posts leave the queue
        mod.get_by_role("dialog").get_by_role("button", name="Block").click()  # it asks first
        expect(queue).to_have_count(0)
        expect(viewer.locator("article.item-social")).to_have_count(1)
    finally:
        mod_ctx.close()
        view_ctx.close()


def test_the_feed_panel_shows_each_source_live_and_sets_the_events_moderation(
    moderated: ThreadServer, browser: Any
) -> None:
    server = moderated
    assert server.seed is not None
    ctx = browser.new_context(base_url=server.url)
    try:
        ctx.add_cookies([{"name": "lb_login", "value": server.seed.login_token, "url": server.url}])
        page = ctx.new_page()
        page.goto(f"/organise/events/{server.seed.event_id}/feeds")
        row = page.locator('#feed-sources tr[data-network="x"]')
        expect(row).to_contain_text("LIVEBLOG_X_BEARER_TOKEN")  # off, and why, with no network at all

        async def arrive(svc: Services) -> None:
            await svc.feeds.ingest("x", [plain(4, "ana")])

        server.call(arrive)
        expect(page.locator("#feed-summary")).to_contain_text("Waiting for moderation: 1")  # live, no reload
        checkbox = page.locator("#event-moderate")
        expect(checkbox).to_be_checked()
        checkbox.uncheck()

        def policy() -> bool:
            async def read(svc: Services) -> bool:
                return await svc.feeds.moderation.moderates(server.seed.event_id, "")  # type: ignore[union-attr]

            return not server.call(read)

        server.wait_for(policy, message="the event's posts to go straight in")
    finally:
        ctx.close()


def test_a_note_taker_quotes_a_post_into_a_note(moderated: ThreadServer, browser: Any) -> None:
    server = moderated
    assert server.seed is not None
    ctx = browser.new_context(base_url=server.url)
    try:
        page = ctx.new_page()
        page.goto(f"/n/{server.seed.token}/sessions/{server.session_id}/social")
        expect(page.locator("#queue-empty")).to_be_visible()

        async def arrive(svc: Services) -> None:
            await svc.feeds.ingest("x", [plain(5, "ana")])

        server.call(arrive)
        page.get_by_role("button", name="Quote into a note").click()
        expect(page.locator("#social-status")).to_have_text("Quoted into a note.")
        notes = server.wait_for(
            lambda: [i for i in server.items() if i.kind == "note"], message="the quoting note"
        )
        assert (
            notes[0].body.startswith("> Post 5 from ana #test")
            and "— Ana on [X](https://x.com/ana/status/5)" in notes[0].body
        )
        assert notes[0].author == "Ada"  # the note-taker's own note
    finally:
        ctx.close()


def event_posts(server: ThreadServer, texts: list[str]) -> str:
    """Posts that match only the event's hashtag while no session is live: the event's own feed.
    Returns the feed's stream id."""

    async def run(svc: Services) -> str:
        from datetime import datetime, timedelta

        ids = server.seed
        assert ids is not None
        if (await svc.programme.session(ids.session_id)).state != "ended":
            await svc.programme.set_state(ids.session_id, "ended")
            soon = datetime.now() + timedelta(minutes=5)
            # The event runs on to today, so that the next session may fall within its days.
            await svc.programme.update_event(ids.event_id, {"ends_on": soon.strftime("%Y-%m-%d")})
            await svc.programme.create_session(
                ids.event_id,
                {
                    "title": "After the break",
                    "starts_at": soon.strftime("%Y-%m-%dT%H:%M"),
                    "ends_at": (soon + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
                    "room": "Hall",
                },
            )

            async def op(tx: Tx) -> str:
                return await tx.insert_media(ids.session_id, "image/png", _png(), "test")

            media_id = await svc.db.write(op)
        else:
            media_id = ""
        svc.feeds.poll_now()  # forget the cached list of collecting sessions
        posts = []
        for n, text in enumerate(texts):
            post = plain(n, f"guest{len(text)}")
            posts.append(
                SocialPost(
                    **{
                        **post.to_dict(),
                        "text": f"{text} #test",
                        "post_id": f"{post.post_id}{len(text)}",
                        "links": (),
                        "hashtags": ("test",),
                        "mentions": (),
                        "media": (
                            {
                                "type": "image",
                                "url": "https://cdn.example/p.png",
                                "alt": "The hall filling up",
                                "width": 40,
                                "height": 30,
                                "local": f"/media/{media_id}",
                            },
                        )
                        if media_id and n == 0
                        else (),
                        "relation": {},
                    }
                )
            )
        result = await svc.feeds.ingest("x", posts)
        assert all(r == [""] for r in result.routed.values()), result.routed
        feed = await svc.programme.event_feed(ids.event_id)
        assert feed is not None
        return feed.id

    return server.call(run)


def test_the_event_page_and_around_the_event_live_screenshots_and_axe(
    server: ThreadServer, browser_context: Callable[..., BrowserContext], screenshot_dir: Path
) -> None:
    from tests.browser.conftest import DESKTOP, PHONE
    from tests.browser.test_ui import serious_axe_violations, sideways

    ids = server.seed
    assert ids is not None
    event_posts(
        server,
        [
            "Doors are open, coffee in the foyer",
            "Great turnout this morning",
            "Slides from yesterday are online at https://example.org/slides",
        ],
    )
    problems: dict[str, list[str]] = {}
    asked: list[str] = []
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        ctx = browser_context(
            viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE, bypass_csp=True
        )  # axe is injected as an inline script
        page = ctx.new_page()
        page.on("request", lambda r: asked.append(r.url))
        page.goto(f"{server.url}/events/{ids.event_id}")
        section = page.locator("#around")
        expect(section.locator("article.item-social")).to_have_count(3)
        expect(section).to_contain_text("Slides from yesterday")
        page.screenshot(path=str(screenshot_dir / f"event-around-section-{label}.png"), full_page=True)
        for name in ("event", "archive", "around"):
            if name == "archive":
                page.goto(f"{server.url}/events/{ids.event_id}/archive")
                expect(page.locator(".around-archive article.item-social")).to_have_count(3)
                page.screenshot(
                    path=str(screenshot_dir / f"event-around-archive-{label}.png"), full_page=True
                )
            if name == "around":
                page.goto(f"{server.url}/events/{ids.event_id}")
                section.get_by_role("link", name="All 3 posts around the event, live").click()
                expect(page.locator("#connection")).to_have_attribute("data-state", "live")
                expect(page.locator("#items article.item-social")).to_have_count(3)
                page.wait_for_function("() => [...document.images].every(i => i.complete)")
                page.screenshot(path=str(screenshot_dir / f"event-around-page-{label}.png"), full_page=True)
            if bad := sideways(page, viewport["width"]):
                problems[f"{name}-{label} sideways"] = bad
            if bad := serious_axe_violations(page):
                problems[f"{name}-{label}"] = bad
        if label == "desktop":
            # A post arriving while the page is open appears without a reload.
            event_posts(server, ["The afternoon starts in ten minutes, grab a seat"])
            expect(page.locator("#items article.item-social")).to_have_count(4)
            expect(page.locator("#items")).to_contain_text("grab a seat")
            page.screenshot(path=str(screenshot_dir / "event-around-live-desktop.png"), full_page=True)
    assert problems == {}
    foreign = [u for u in asked if not u.startswith((server.url, "data:", "blob:"))]
    assert foreign == [], foreign


def test_moderating_the_events_own_feed_with_one_key_each(
    moderated: ThreadServer, browser: Any, screenshot_dir: Path
) -> None:
    from tests.browser.test_ui import serious_axe_violations

    server = moderated
    ids = server.seed
    assert ids is not None
    event_posts(
        server, ["Doors are open, coffee in the foyer", "Buy cheap followers now", "Is the keynote recorded?"]
    )
    ctx = browser.new_context(base_url=server.url, bypass_csp=True)  # axe is injected as an inline script
    ctx.set_default_timeout(15_000)
    try:
        ctx.add_cookies([{"name": "lb_login", "value": ids.login_token, "url": server.url}])
        page = ctx.new_page()
        viewer = ctx.new_page()
        viewer.goto(f"{server.url}/events/{ids.event_id}/around")
        expect(viewer.locator("#connection")).to_have_attribute("data-state", "live")
        expect(viewer.locator("#no-items")).to_be_visible()  # nothing approved yet: nothing shown
        page.goto(f"{server.url}/organise/events/{ids.event_id}/social")
        expect(page.locator("h1")).to_have_text("Social posts: Around the event")
        queue = page.locator("#social-queue > li")
        expect(queue).to_have_count(3)
        page.screenshot(path=str(screenshot_dir / "event-around-moderation-desktop.png"), full_page=True)
        assert serious_axe_violations(page) == []
        assert (
            page.get_by_role("button", name="Quote into a note").count() == 0
        )  # no notes in the event's feed

        def focus_on(text: str) -> None:  # j/k move the focus (the queue starts at its top)
            texts = queue.all_inner_texts()
            for _ in texts:
                page.keyboard.press("k")
            for _ in range(next(i for i, t in enumerate(texts) if text in t)):
                page.keyboard.press("j")
            expect(page.locator("#social-queue > li.focused")).to_contain_text(text)

        focus_on("Doors are open")
        page.keyboard.press("a")
        expect(queue).to_have_count(2)
        expect(viewer.locator("#items article.item-social")).to_have_count(1)  # live, without a reload
        expect(viewer.locator("#items")).to_contain_text("Doors are open")
        focus_on("keynote recorded")
        page.keyboard.press("b")  # block its account: it asks first (Cancel keeps it)
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # the keys go to the dialog now
        page.keyboard.press("Enter")
        expect(dialog).to_be_hidden()
        expect(queue).to_have_count(2)
        page.keyboard.press("b")
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        page.keyboard.press("Tab")
        expect(dialog.get_by_role("button", name="Block")).to_be_focused()
        page.keyboard.press("Escape")  # changed their mind after all
        expect(dialog).to_be_hidden()
        # A person quicker than the page's next frame: no to the question's account, then the
        # spammer's blocked at once. Chromium fires a dialog's close event at a frame, which came
        # after the next question (under load it failed here: the queue kept the spam).
        spam = next(i for i, t in enumerate(queue.all_inner_texts()) if "cheap followers" in t)
        for key in ("b", "Enter", "j" if spam else "k", "b", "Tab", "Enter"):
            page.keyboard.press(key)
        expect(queue).to_have_count(1)
        expect(queue).to_contain_text("keynote recorded")  # the question still waits
        expect(viewer.locator("#items")).not_to_contain_text("cheap followers")
        page.keyboard.press("b")
        dialog.get_by_role("button", name="Block").click()
        expect(queue).to_have_count(0)
        expect(page.locator("#queue-empty")).to_be_visible()
    finally:
        ctx.close()


# Holds the moderation page's next queue response (read by the server before what comes next)
# until the test releases it; window.__held says where it is: "held", then "applied" once the
# page has read it.
HOLD_NEXT_QUEUE = """
(() => {
  const real = window.fetch.bind(window);
  window.__hold = false;
  window.fetch = async (input, init) => {
    const response = await real(input, init);
    if (!window.__hold || !String(input).endsWith("/queue")) return response;
    window.__hold = false;
    const body = await response.text();
    await new Promise((release) => { window.__release = release; window.__held = "held"; });
    const late = new Response(body, { status: response.status, headers: response.headers });
    const json = late.json.bind(late);
    late.json = async () => {
      const data = await json();
      queueMicrotask(() => { window.__held = "applied"; });  // before the page's next task
      return data;
    };
    return late;
  };
})();
"""


def test_a_queue_read_before_a_block_but_answered_after_it_does_not_bring_the_post_back(
    moderated: ThreadServer, browser: Any
) -> None:
    """The queue refreshes on every hint and after every action, and the answers can arrive out
    of order (a loaded server, a slow read): one read before a Block but answered after the
    Block's own refresh showed the blocked post waiting again, and nothing refreshed after it."""
    from liveblog.capture.feeds.routing import queue_changed

    server = moderated
    ids = server.seed
    assert ids is not None
    feed = event_posts(server, ["Buy cheap followers now"])
    ctx = browser.new_context(base_url=server.url)
    ctx.set_default_timeout(15_000)
    try:
        ctx.add_cookies([{"name": "lb_login", "value": ids.login_token, "url": server.url}])
        page = ctx.new_page()
        page.add_init_script(HOLD_NEXT_QUEUE)
        page.goto(f"{server.url}/organise/events/{ids.event_id}/social")
        queue = page.locator("#social-queue > li")
        expect(queue).to_have_count(1)
        page.evaluate("window.__hold = true")

        async def hint(svc: Services) -> None:  # as when another post arrives: the page reads again
            queue_changed(svc.hub, feed)

        server.call(hint)
        page.wait_for_function("() => window.__held === 'held'")  # read with the post still waiting
        page.keyboard.press("b")
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(queue).to_have_count(0)
        page.evaluate("window.__release()")
        page.wait_for_function("() => window.__held === 'applied'")
        assert queue.count() == 0, "the older answer brought the blocked post back"
    finally:
        ctx.close()


def test_the_feed_panel_fits_a_phone_and_says_what_each_number_counts(
    server: ThreadServer, browser_context: Callable[..., BrowserContext], screenshot_dir: Path
) -> None:
    from tests.browser.conftest import PHONE
    from tests.browser.test_ui import sideways

    assert server.seed is not None

    async def arrive(svc: Services) -> None:
        await svc.feeds.ingest("x", [plain(4, "ana")])

    server.call(arrive)
    ctx = browser_context(viewport=PHONE, is_mobile=True, has_touch=True)
    ctx.add_cookies([{"name": "lb_login", "value": server.seed.login_token, "url": server.url}])
    page = ctx.new_page()
    page.goto(f"{server.url}/organise/events/{server.seed.event_id}/feeds")
    row = page.locator('#feed-sources tr[data-network="x"]')
    expect(row).to_contain_text("LIVEBLOG_X_BEARER_TOKEN")
    expect(row).to_contain_text("1 for this event")  # its posts here, beside its totals over every event
    expect(row).to_contain_text("all events")
    page.screenshot(path=str(screenshot_dir / "feed-panel-phone.png"), full_page=True)
    assert sideways(page, PHONE["width"]) == []


def test_media_marked_sensitive_shows_only_when_the_reader_opens_it(
    server: ThreadServer, browser_context: Callable[..., BrowserContext]
) -> None:
    """A picture its author marked sensitive is folded under a line the reader clicks, live and
    after a reload."""
    page = browser_context().new_page()
    page.goto(server.viewer_url())
    expect(page.locator("body")).to_be_visible()
    post_it(server, marked_sensitive)
    card = page.locator("article.item-social")
    expect(card).to_have_count(1)
    for view in ("live", "reloaded"):
        if view == "reloaded":
            page.reload()
            expect(card).to_have_count(1)
        image = card.locator("img.social-image")
        expect(image).to_have_count(1)
        # Folded: its <details> closed and the picture not rendered. (Not getClientRects: a
        # closed <details>' content is content-visibility: hidden, which Chromium may still lay
        # out when asked for its boxes; checkVisibility says whether it is shown.)
        assert card.locator("details.social-sensitive").evaluate("d => d.open") is False, view
        assert image.evaluate("i => i.checkVisibility()") is False, view
        card.locator("details.social-sensitive summary").click()
        expect(image).to_be_visible()
        expect(image).to_have_attribute("alt", "furry cube")

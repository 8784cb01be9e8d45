"""Collected social posts in a real browser: a hostile post is inert, and the viewer page never
asks any origin but ours (images and avatars are our own stripped copies)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

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
        text=('<script>window.pwned = 1</script><b>not bold</b> <img src=x onerror="window.pwned=2"> '
              'click javascript:window.pwned=3 or https://example.org/ok #test @ana@social.example'),
        url="https://social.example/@eve/666",
        posted_at="2026-05-14T09:30:00.000Z",
        hashtags=("test",),
        media=({"type": "image", "url": "https://files.social.example/a.png", "alt": "A slide", "width": 40,
                "height": 30, "local": f"/media/{media_id}"},
               {"type": "image", "url": "https://files.social.example/b.png", "alt": "Not fetched"}),
        avatar_url="https://files.social.example/avatar.png",
        avatar_local=f"/media/{media_id}",
    )


def post_it(server: ThreadServer) -> None:
    async def run(svc: Services) -> None:
        async def op(tx: Tx) -> str:
            return await tx.insert_media(server.session_id, "image/png", _png(), "test")

        media_id = await svc.db.write(op)
        svc.feeds.poll_now()
        await svc.feeds.ingest("mastodon", [hostile(media_id)])

    server.call(run)


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
    return SocialPost(network="x", post_id=str(1_900_000_000_000_000_000 + n), author_handle=who, author_name=who.title(),
                      text=f"Post {n} from {who} #test", url=f"https://x.com/{who}/status/{n}",
                      posted_at=f"2026-05-14T09:3{n}:00.000Z", hashtags=("test",))


def test_moderators_see_the_queue_live_and_decide_with_one_key(
    moderated: ThreadServer, browser: Any
) -> None:
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
                return await svc.feeds.moderates(server.seed.event_id, "")  # type: ignore[union-attr]

            return not server.call(read)

        server.wait_for(policy, message="the event's posts to go straight in")
    finally:
        ctx.close()

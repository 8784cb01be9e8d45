"""Collected social posts in a real browser: a hostile post is inert, and the viewer page never
asks any origin but ours (images and avatars are our own stripped copies)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
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

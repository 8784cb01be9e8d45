"""What a reader sees of the fediverse, in Debian's chromium (docs/federation.md): a note's likes
and boosts appearing, changing and going on the live page without a reload, and on an open
knowledge page; and a reply from
the fediverse arriving live as a comment written as @user@instance, with the avatar its author
has on their server, copied to our media."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from liveblog.capture.notes import Author
from liveblog.services import Services
from tests.browser.conftest import ThreadServer
from tests.browser.test_ui import serious_axe_violations
from tests.conftest import eventually, query
from tests.fediverse_peer import Peer, avatar_colour, running_peer

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadServer]:
    """The seeded server, with the test fediverse server beside it (private addresses allowed)."""
    srv = ThreadServer(tmp_path, federation={"allow_private_addresses": True}).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def peer(server: ThreadServer) -> Iterator[Peer]:
    """tests/fediverse_peer.py on the server's loop, its account alice following the session."""
    stack = contextlib.AsyncExitStack()

    async def start(svc: Services) -> Peer:
        return await stack.enter_async_context(running_peer())

    remote = server.call(start)
    try:
        remote.add("alice")
        follow = {
            "id": f"{remote.actor('alice')}/follows/1",
            "type": "Follow",
            "actor": remote.actor("alice"),
            "object": f"{server.url}/ap/sessions/{server.session_id}",
        }

        async def followed(svc: Services) -> None:
            answer = await remote.post(f"{server.url}/ap/inbox", follow, as_="alice")
            assert answer.status_code == 202, answer.text
            await remote.wait_for("Accept")

        server.call(followed)
        yield remote
    finally:

        async def stop(svc: Services) -> None:
            await stack.aclose()

        server.call(stop)


def published(server: ThreadServer, peer: Peer, body: str) -> tuple[int, str]:
    """A note written in the session, as alice's server received it: (item id, Note id)."""
    seed = server.seed
    assert seed is not None

    async def write(svc: Services) -> tuple[int, str]:
        invite = await svc.accounts.invite_for_token(seed.token)
        assert invite is not None
        message = {"client_id": str(uuid.uuid4()), "type": "note.create", "body": body}
        ack = await svc.notes.handle(seed.session_id, Author.from_invite(invite), message)

        def arrived() -> str | None:
            for d in peer.received:
                if d.activity.get("type") == "Create" and d.activity["object"]["id"].endswith(
                    f"/{ack.item_id}"
                ):
                    return str(d.activity["object"]["id"])
            return None

        return ack.item_id, await eventually(arrived, 10, "the Create at alice's server")

    return server.call(write)


def send(server: ThreadServer, peer: Peer, activity: dict[str, Any]) -> None:
    async def post(svc: Services) -> None:
        answer = await peer.post(f"{server.url}/ap/inbox", activity, as_="alice")
        assert answer.status_code == 202, answer.text

    server.call(post)


def test_likes_and_boosts_appear_on_the_live_page_without_a_reload(
    browser_context: Any, server: ThreadServer, peer: Peer
) -> None:
    item_id, note = published(server, peer, "Leaves turn light into sugar")
    page = browser_context(bypass_csp=True).new_page()  # axe is injected as an inline script
    page.goto(server.viewer_url())
    card = page.locator(f"#item-{item_id}")
    expect(card).to_contain_text("Leaves turn light into sugar")
    line = card.locator(".item-reactions")
    expect(line).to_have_count(0)  # nothing yet: no line at all

    alice = peer.actor("alice")
    like = {"id": f"{alice}/likes/1", "type": "Like", "actor": alice, "object": note}
    send(server, peer, like)
    expect(line.locator("[aria-hidden=true]")).to_have_text("♥ 1")
    expect(line).to_match_aria_snapshot("- paragraph: 1 like on the fediverse")  # what is read out
    send(server, peer, {"id": f"{alice}/boosts/1", "type": "Announce", "actor": alice, "object": note})
    expect(line.locator("[aria-hidden=true]")).to_have_text("♥ 1 · ⟳ 1")
    expect(line.locator(".visually-hidden")).to_have_text("1 like and 1 boost")
    assert line.evaluate("(el) => el.querySelector('.visually-hidden').getBoundingClientRect().width") <= 1
    assert serious_axe_violations(page) == []

    # The same line as the server renders for a page loaded now.
    live_html = line.evaluate("(el) => el.outerHTML")
    fresh = browser_context().new_page()
    fresh.goto(server.viewer_url())
    expect(fresh.locator(f"#item-{item_id} .item-reactions")).to_have_count(1)
    assert fresh.locator(f"#item-{item_id} .item-reactions").evaluate("(el) => el.outerHTML") == live_html

    # An edit of the note, arriving live, keeps its counts under it.
    seed = server.seed
    assert seed is not None

    async def edit(svc: Services) -> None:
        invite = await svc.accounts.invite_for_token(seed.token)
        assert invite is not None
        message = {
            "client_id": str(uuid.uuid4()),
            "type": "note.update",
            "item_id": item_id,
            "body": "Leaves turn light into sugars",
        }
        await svc.notes.handle(seed.session_id, Author.from_invite(invite), message)

    server.call(edit)
    expect(card.locator(".item-body")).to_have_text("Leaves turn light into sugars")
    expect(card.locator(".item-reactions [aria-hidden=true]")).to_have_text("♥ 1 · ⟳ 1")

    # Taken back (Undo): the count goes down, live; with none left, the line goes.
    send(server, peer, {"id": f"{alice}/undo/1", "type": "Undo", "actor": alice, "object": like})
    expect(line.locator("[aria-hidden=true]")).to_have_text("⟳ 1")
    send(
        server, peer, {"id": f"{alice}/undo/2", "type": "Undo", "actor": alice, "object": f"{alice}/boosts/1"}
    )
    expect(line).to_have_count(0)
    expect(card).to_contain_text("Leaves turn light into sugar")


def shown_colour(page: Page, selector: str) -> list[int]:
    """The colour of the middle pixel of an image as the browser decoded it."""
    colour: list[int] = page.locator(selector).evaluate(
        """(img) => {
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const g = canvas.getContext("2d");
            g.drawImage(img, 0, 0);
            return Array.from(g.getImageData(img.naturalWidth >> 1, img.naturalHeight >> 1, 1, 1).data.slice(0, 3));
        }"""
    )
    return colour


def test_a_reply_from_the_fediverse_arrives_live_with_its_authors_avatar(
    browser_context: Any, server: ThreadServer, peer: Peer
) -> None:
    _, note = published(server, peer, "Chlorophyll absorbs red and blue")
    page = browser_context().new_page()
    page.goto(server.viewer_url())
    expect(page.locator("#no-comments")).to_be_visible()

    alice = peer.actor("alice")
    reply = {
        "id": f"{alice}/statuses/1",
        "type": "Note",
        "attributedTo": alice,
        "inReplyTo": note,
        "content": "<p>And reflects green!</p>",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
    }
    # Alice's server is slow to give her avatar: the reply waits for it, and is shown with it.
    peer.avatars_held = True
    create = {"id": f"{reply['id']}/activity", "type": "Create", "actor": alice, "object": reply}
    assert server.loop is not None
    sent = asyncio.run_coroutine_threadsafe(
        peer.post(f"{server.url}/ap/inbox", create, as_="alice"), server.loop
    )
    server.wait_for(lambda: "/avatars/alice.png" in peer.fetches, message="the avatar asked for")

    async def comments(svc: Services) -> list[tuple[Any, ...]]:
        return await query(svc.db, "SELECT id FROM comments")

    assert server.call(comments) == []  # not before its avatar is here

    async def release(svc: Services) -> None:
        peer.avatars_release.set()

    server.call(release)
    assert sent.result(15).status_code == 202
    comment = page.locator("#comment-list > li.comment")
    expect(comment).to_have_count(1)  # live: no reload
    expect(comment.locator(".comment-author")).to_have_text(f"@alice@{peer.url.removeprefix('http://')}")
    expect(comment.locator(".comment-body")).to_have_text("And reflects green!")
    avatar = comment.locator("img.comment-avatar")
    expect(avatar).to_have_count(1)
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=avatar.element_handle(), timeout=15_000
    )
    # The author's own picture (the peer draws each account's in its own colour), from our media,
    # not a stand-in.
    assert shown_colour(page, "#comment-list img.comment-avatar") == list(avatar_colour("alice"))


@pytest.mark.parametrize("later", [False, True], ids=["first page", "page 2"])
def test_a_like_arriving_later_shows_on_the_open_knowledge_page(
    browser_context: Any, server: ThreadServer, peer: Peer, later: bool
) -> None:
    """On its first page and on the numbered pages after it, which follow the stream too."""
    from tests.browser.test_long_sessions import add_notes

    earlier = add_notes(server, 50) if later else []  # the first page's notes: the next is on page 2
    item_id, note = published(server, peer, "Stomata close at noon")
    assert item_id > max(earlier, default=0)

    async def end(svc: Services) -> None:
        await svc.programme.set_state(server.session_id, "ended")

    server.call(end)
    url = f"/archive/sessions/{server.session_id}" + ("/page/2" if later else "")
    page = browser_context().new_page()
    page.goto(url)
    card = page.locator(f"#item-{item_id}")
    expect(card).to_contain_text("Stomata close at noon")
    expect(card.locator(".item-reactions")).to_have_count(0)
    alice = peer.actor("alice")
    send(server, peer, {"id": f"{alice}/boosts/9", "type": "Announce", "actor": alice, "object": note})
    expect(card.locator(".item-reactions")).to_match_aria_snapshot("- paragraph: 1 boost on the fediverse")
    expect(card.locator(".item-reactions [aria-hidden=true]")).to_have_text("⟳ 1")
    send(server, peer, {"id": f"{alice}/likes/9", "type": "Like", "actor": alice, "object": note})
    expect(card.locator(".item-reactions [aria-hidden=true]")).to_have_text("♥ 1 · ⟳ 1")
    # The same line as the server renders for the page loaded now.
    live_html = card.locator(".item-reactions").evaluate("(el) => el.outerHTML")
    fresh = browser_context().new_page()
    fresh.goto(url)
    line = fresh.locator(f"#item-{item_id} .item-reactions")
    expect(line).to_have_count(1)
    assert line.evaluate("(el) => el.outerHTML") == live_html

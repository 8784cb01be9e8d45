"""Replies come back (docs/federation.md): a reply to one of our notes becomes a comment on the
session under the event's comment policy, its author's edits and deletes are honoured, likes
and boosts are counted, and blocked accounts and servers are ignored."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from liveblog.archive.exports import export_json
from liveblog.capture.imports import rerender
from liveblog.capture.notes import Author
from liveblog.web.app import make_templates
from liveblog.web.static_site import export_site
from tests.conftest import eventually, query
from tests.fediverse_peer import AP_JSON
from tests.test_federation_follow import World, make_world
from tests.test_federation_publish import arrivals, followed, write


@pytest.fixture
async def world(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> AsyncIterator[World]:
    async for w in make_world(request, tmp_path, backend):
        yield w


async def published_note(world: World) -> str:
    """A note of the session, as its followers received it: its id."""
    await followed(world, "alice")
    await write(world, {"type": "note.create", "body": "Churn falls when onboarding is short"})
    (create,) = await arrivals(world, "Create")
    return str(create.activity["object"]["id"])


def reply(world: World, who: str, number: int, to: str, content: str) -> dict[str, Any]:
    actor = world.peer.actor(who)
    note = {
        "id": f"{actor}/statuses/{number}",
        "type": "Note",
        "attributedTo": actor,
        "inReplyTo": to,
        "content": content,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
    }
    return {"id": f"{note['id']}/activity", "type": "Create", "actor": actor, "object": note}


async def comments_of(world: World) -> list[int]:
    return [r[0] for r in await query(world.live.services.db, "SELECT account_id FROM comments ORDER BY id")]


async def comments(world: World) -> list[tuple[Any, ...]]:
    return await query(
        world.live.services.db,
        "SELECT author, body, html, state, deleted FROM comments ORDER BY id",
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_reply_becomes_a_comment_and_its_author_edits_and_deletes_it(world: World) -> None:
    note_id = await published_note(world)
    host = world.peer.url.removeprefix("http://")
    answer = await world.peer.post(
        f"{world.live.url}/ap/inbox",
        reply(
            world,
            "alice",
            1,
            note_id,
            '<p>Agreed! <script>alert(1)</script><a href="https://x.example">source</a></p>',
        ),
        as_="alice",
    )
    assert answer.status_code == 202, answer.text
    [(author, body, html, state, deleted)] = await comments(world)
    assert author == f"@alice@{host}"
    assert state == "visible" and not deleted
    assert body == "Agreed! [source](<https://x.example>)"  # Markdown: the link kept (and the HTML)
    assert "<script>" not in html and 'rel="nofollow noopener noreferrer ugc"' in html
    # Shown live: the comment is a change of the session's stream.
    thread = await world.live.services.comments.thread(world.seed.session_id)
    assert [n.comment.author for n in thread.roots] == [f"@alice@{host}"]
    # Its avatar was copied to our media, and is shown beside the comment.
    avatar = await query(world.live.services.db, "SELECT avatar FROM federation_authors")
    assert avatar[0][0] and (await world.live.services.programme.media(avatar[0][0])) is not None
    async with world.live.client() as client:
        page = (await client.get(f"/sessions/{world.seed.session_id}")).text
        account_id = (await comments_of(world))[0]
        assert f'<img class="comment-avatar" src="/ap/avatars/{account_id}"' in page
        shown = await client.get(f"/ap/avatars/{account_id}", follow_redirects=True)
    assert shown.status_code == 200 and shown.headers["content-type"].startswith("image/")
    assert shown.url.path == f"/media/{avatar[0][0]}"

    # Another account cannot edit or delete it; its author can.
    world.peer.add("mallory")
    edit = reply(world, "alice", 1, note_id, "<p>Agreed, with a caveat</p>")
    forged = {**edit, "type": "Update", "actor": world.peer.actor("mallory")}
    await world.peer.post(f"{world.live.url}/ap/inbox", forged, as_="mallory")
    assert (await comments(world))[0][1] == "Agreed! [source](<https://x.example>)"
    await world.peer.post(f"{world.live.url}/ap/inbox", {**edit, "type": "Update", "id": "u1"}, as_="alice")
    assert (await comments(world))[0][1] == "Agreed, with a caveat"
    delete = {
        "id": "d1",
        "type": "Delete",
        "actor": world.peer.actor("alice"),
        "object": edit["object"]["id"],
    }
    await world.peer.post(f"{world.live.url}/ap/inbox", delete, as_="alice")
    assert (await comments(world))[0][3:] == ("visible", 1)
    assert (await comments(world))[0][1] == ""


async def test_replies_wait_for_moderation_when_the_event_premoderates(world: World) -> None:
    note_id = await published_note(world)
    await world.live.services.comments.set_premoderation(world.seed.event_id, True)
    await world.peer.post(
        f"{world.live.url}/ap/inbox", reply(world, "alice", 2, note_id, "hello"), as_="alice"
    )
    queue = await world.live.services.comments.moderation_queue()
    assert [c.body for c in queue.pending] == ["hello"]
    # A reply to that reply, once approved, is threaded under it.
    await world.live.services.comments.moderate(queue.pending[0].id, "approve", by="org")
    parent = reply(world, "alice", 2, note_id, "hello")["object"]["id"]
    await world.peer.post(
        f"{world.live.url}/ap/inbox", reply(world, "alice", 3, parent, "and more"), as_="alice"
    )
    rows = await query(world.live.services.db, "SELECT parent_id, body FROM comments ORDER BY id")
    assert rows[1] == (queue.pending[0].id, "and more")
    # Both are on the knowledge page once approved, as @user@instance with the avatar, threaded.
    (second,) = (await world.live.services.comments.moderation_queue()).pending
    await world.live.services.comments.moderate(second.id, "approve", by="org")
    s = world.seed
    await world.live.services.programme.set_state(s.session_id, "ended")
    account_id = (await comments_of(world))[0]
    async with world.live.client() as reader:
        page = (await reader.get(f"/archive/sessions/{s.session_id}")).text
    host = world.peer.url.removeprefix("http://")
    thread = page[page.index('id="comment-list"') :]
    assert thread.count(f'<strong class="comment-author">@alice@{host}</strong>') == 2
    assert thread.count(f'<img class="comment-avatar" src="/ap/avatars/{account_id}"') == 2
    assert thread.index("hello") < thread.index('class="replies"') < thread.index("and more")


async def test_likes_and_boosts_are_counted_once_and_undone(world: World) -> None:
    note_id = await published_note(world)
    alice = world.peer.actor("alice")
    like = {"id": f"{alice}/likes/1", "type": "Like", "actor": alice, "object": note_id}
    boost = {"id": f"{alice}/boosts/1", "type": "Announce", "actor": alice, "object": note_id}
    for activity in (like, {**like, "id": f"{alice}/likes/again"}, boost):
        assert (await world.peer.post(f"{world.live.url}/ap/inbox", activity, as_="alice")).status_code == 202

    async def counts() -> tuple[int, int]:
        async with world.live.client() as client:
            doc = (await client.get(note_id.removeprefix(world.live.url), headers={"accept": AP_JSON})).json()
        return doc["likes"]["totalItems"], doc["shares"]["totalItems"]

    assert await counts() == (1, 1)
    s = world.seed
    async with world.live.client(cookies={"lb_login": s.login_token}) as client:
        page = (await client.get(f"/organise/events/{s.event_id}/fediverse")).text
    assert "1 like · 1 boost" in page  # shown to organisers, discreetly
    undo = {"id": f"{alice}/undo/9", "type": "Undo", "actor": alice, "object": like}
    await world.peer.post(f"{world.live.url}/ap/inbox", undo, as_="alice")
    assert await counts() == (0, 1)


async def stream_of(world: World) -> list[tuple[int, str, str]]:
    rows = await query(
        world.live.services.db,
        f"SELECT seq, op, payload FROM changes WHERE session_id = '{world.seed.session_id}' ORDER BY seq",
    )
    return [(int(seq), str(op), str(payload)) for seq, op, payload in rows]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_likes_and_boosts_are_shown_on_public_pages_and_change_live(world: World) -> None:
    note_id = await published_note(world)
    item_id = int(note_id.rsplit("/", 1)[-1])
    s = world.seed
    alice, bob = world.peer.actor("alice"), world.peer.add("bob")
    like = {"id": f"{alice}/likes/1", "type": "Like", "actor": alice, "object": note_id}
    for activity, who in (
        (like, "alice"),
        ({**like, "id": f"{alice}/likes/again"}, "alice"),  # counted once: no change
        ({"id": f"{bob}/likes/1", "type": "Like", "actor": bob, "object": note_id}, "bob"),
        ({"id": f"{bob}/boosts/1", "type": "Announce", "actor": bob, "object": note_id}, "bob"),
    ):
        assert (await world.peer.post(f"{world.live.url}/ap/inbox", activity, as_=who)).status_code == 202
    undo = {"id": f"{alice}/undo/1", "type": "Undo", "actor": alice, "object": like["id"]}  # by id
    await world.peer.post(f"{world.live.url}/ap/inbox", undo, as_="alice")

    # Each count that changed is a change of the session's stream, in seq order, without holes.
    changes = await stream_of(world)
    assert [seq for seq, _, _ in changes] == list(range(1, len(changes) + 1))
    shown = [json.loads(p) for _, op, p in changes if op == "note.reactions"]
    assert [(c["item_id"], c["kind"], c["likes"], c["boosts"]) for c in shown] == [
        (item_id, "note", 1, 0),
        (item_id, "note", 2, 0),
        (item_id, "note", 2, 1),
        (item_id, "note", 1, 1),
    ]
    assert [c["seq"] for c in shown] == [seq for seq, op, _ in changes if op == "note.reactions"]

    line = '<span aria-hidden="true">♥ 1 · ⟳ 1</span><span class="visually-hidden">1 like and 1 boost</span> on the fediverse'
    async with world.live.client() as reader:  # anyone: no login
        page = (await reader.get(f"/sessions/{s.session_id}")).text
        card = page[page.index(f'id="item-{item_id}"') :]
        assert line in card[: card.index("</article>")]
        assert 'id="reactions-template"' in page  # what the script fills when they change live
        snapshot = (await reader.get(f"/api/v1/sessions/{s.session_id}/items")).json()
        assert snapshot["reactions"] == {str(item_id): {"likes": 1, "boosts": 1}}
        assert snapshot["seq"] == changes[-1][0]

        # The knowledge page shows them too, and again once they change (its cards are kept).
        await world.live.services.programme.set_state(s.session_id, "ended")
        knowledge = (await reader.get(f"/archive/sessions/{s.session_id}")).text
        card = knowledge[knowledge.index(f'id="item-{item_id}"') :]
        assert line in card[: card.index("</article>")]
        await world.live.services.archive.cards_kept()
        boost = {"id": f"{alice}/boosts/1", "type": "Announce", "actor": alice, "object": note_id}
        await world.peer.post(f"{world.live.url}/ap/inbox", boost, as_="alice")
        knowledge = (await reader.get(f"/archive/sessions/{s.session_id}")).text
        assert '♥ 1 · ⟳ 2</span><span class="visually-hidden">1 like and 2 boosts</span>' in knowledge
        # The replay plays what the session said: likes, which come at any time (days later
        # too), are not steps of it, so they never stretch it.
        replay = (await reader.get(f"/archive/sessions/{s.session_id}/replay.json")).json()
        assert [step["op"] for step in replay["steps"] if step["op"] == "note.reactions"] == []
        markdown = (await reader.get(f"/archive/sessions/{s.session_id}.md")).text
        assert "_1 like and 2 boosts on the fediverse_" in markdown
        # The static site shows them as the knowledge page does.
        site = world.live.services.settings.database.path + ".site"
        await export_site(world.live.services, make_templates().env, s.event_id, Path(site))
        saved = (Path(site) / "sessions" / f"{s.session_id}.html").read_text()
        assert '♥ 1 · ⟳ 2</span><span class="visually-hidden">1 like and 2 boosts</span>' in saved

        # A deleted note (by an organiser, after the end) takes its counts with it, from the
        # pages and from the stream.
        organiser = Author("org", "account:1", is_moderator=True)
        await world.live.services.notes.handle(
            s.session_id, organiser, {"client_id": "gone", "type": "note.delete", "item_id": item_id}
        )
        knowledge = (await reader.get(f"/archive/sessions/{s.session_id}")).text
        assert knowledge.count('class="item-reactions') == 1  # the script's template only
        snapshot = (await reader.get(f"/api/v1/sessions/{s.session_id}/items")).json()
    assert snapshot["reactions"] == {}
    assert [op for _, op, _ in await stream_of(world) if op == "note.reactions"] == []


async def test_blocked_accounts_and_servers_are_ignored(world: World) -> None:
    note_id = await published_note(world)
    fed = world.live.services.federation
    assert fed is not None
    await fed.block(world.peer.actor("alice"))
    assert await query(world.live.services.db, "SELECT count(*) FROM federation_followers") == [(0,)]
    await world.peer.post(
        f"{world.live.url}/ap/inbox", reply(world, "alice", 4, note_id, "blocked"), as_="alice"
    )
    assert await comments(world) == []
    await fed.unblock(world.peer.actor("alice"))

    world.peer.add("bob")
    host = world.peer.url.removeprefix("http://")
    await fed.block(host)  # the whole server
    await world.peer.post(
        f"{world.live.url}/ap/inbox", reply(world, "bob", 5, note_id, "also blocked"), as_="bob"
    )
    answer = await world.peer.post(world.inbox, world.follow("bob"), as_="bob")
    assert answer.status_code == 202
    assert await comments(world) == []
    assert await query(world.live.services.db, "SELECT count(*) FROM federation_followers") == [(0,)]
    await fed.unblock(host)
    await world.peer.post(f"{world.live.url}/ap/inbox", reply(world, "bob", 6, note_id, "welcome"), as_="bob")
    assert [c[1] for c in await comments(world)] == ["welcome"]


async def test_a_webmention_of_a_knowledge_page_waits_for_moderation(world: World) -> None:
    s = world.seed
    target = f"{world.live.url}/archive/sessions/{s.session_id}"
    async with world.live.client() as browser:
        page = (await browser.get(f"/sessions/{s.session_id}")).text
    assert f'<link rel="webmention" href="{world.live.url}/webmention">' in page
    async with world.live.client() as client:  # a sender: no cookies of ours

        async def mention(source: str, to: str = target) -> int:
            answer = await client.post("/webmention", data={"source": source, "target": to})
            return answer.status_code

        source = f"{world.peer.url}/posts/notes"
        world.peer.pages["/posts/notes"] = (
            f'<title>My conference notes</title><p>See <a href="{target}">this</a>.</p>'
        )
        assert await mention(source) == 202

        async def pending() -> list[Any]:
            return [
                (c.author, c.body) for c in (await world.live.services.comments.moderation_queue()).pending
            ]

        host = world.peer.url.removeprefix("http://")
        await eventually(pending, 10, "the mention in the moderation queue")
        assert await pending() == [(host, f"Mentioned in [My conference notes](<{source}>)")]

        # The source no longer links to us: the comment goes (W3C Webmention, "deleting").
        world.peer.pages["/posts/notes"] = "<title>My conference notes</title><p>Nothing here.</p>"
        assert await mention(source) == 202

        async def deleted() -> bool:
            return [c[4] for c in await comments(world)] == [1]

        await eventually(deleted, 10, "the mention to be withdrawn")

        # Not ours, or not a URL: refused at once, naming the field.
        bad = await client.post(
            "/webmention", data={"source": source, "target": "https://elsewhere.example/x"}
        )
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "target"
        assert await mention("ftp://x") == 400


_LINK = re.compile(r'<a href="([^"]*)"[^>]*>(.*?)</a>', re.S)


async def test_links_in_a_reply_survive_export_and_import(world: World) -> None:
    """A reply's HTML is rendered again from its body on import (docs/archive.md): the body
    keeps its links as Markdown, so the imported comment links where the reply did (a link, a
    Mastodon mention, a long URL shown shortened), and its other text stays text."""
    note_id = await published_note(world)
    host = world.peer.url
    content = (
        '<p>See <a href="https://x.example/a_b?c=(d)">the *notes*</a> by <span class="h-card">'
        f'<a href="{host}/@bob" class="u-url mention">@<span>bob</span></a></span> and '
        '<a href="https://x.example/long/path"><span class="invisible">https://</span>'
        '<span class="ellipsis">x.example/long</span><span class="invisible">/path</span></a></p>'
        "<p># 2*3*4_5 [not a link](javascript:alert(1)) &lt;b&gt;</p>"
    )
    answer = await world.peer.post(
        f"{world.live.url}/ap/inbox", reply(world, "alice", 1, note_id, content), as_="alice"
    )
    assert answer.status_code == 202, answer.text
    doc = await export_json(world.live.services.db, world.seed.event_id)
    [session] = [b for b in doc["sessions"] if b["session"]["id"] == world.seed.session_id]
    [comment] = session["comments"]
    live_html = comment["html"]
    rerender(doc)
    imported = comment["html"]
    assert (
        _LINK.findall(imported)
        == _LINK.findall(live_html)
        == [
            ("https://x.example/a_b?c=(d)", "the *notes*"),
            (f"{host}/@bob", "@bob"),
            ("https://x.example/long/path", ANY),
        ]
    )
    assert 'rel="nofollow noopener noreferrer ugc"' in imported
    assert "# 2*3*4_5 [not a link](javascript:alert(1)) &lt;b&gt;" in imported

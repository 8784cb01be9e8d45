"""Moderating collected posts: decisions reach viewers live, rules apply to what waits, and a
post renders as inert text with only its links, mentions and hashtags live."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from liveblog.capture.feeds.render import quote_markdown, render_post
from liveblog.demo.fakes import FakeNetworks, serve_fakes
from liveblog.models import SocialPost
from liveblog.services import Services
from tests.conftest import LiveServer, Seed, eventually, run_server, seed
from tests.test_feeds_x import feed_settings
from tests.wsclient import connect, recv_type, recv_until


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, Seed, FakeNetworks]]:
    async with serve_fakes() as fake:
        settings = feed_settings(tmp_path, fake, feeds={"moderate_by_default": True})
        svc = Services.build(settings)
        await svc.open()
        try:
            ids = await seed(svc)
            async with run_server(settings, svc) as live:
                yield live, ids, fake
        finally:
            await svc.close()


def auth(seeded: Seed) -> dict[str, str]:
    return {"authorization": f"Bearer {seeded.token}"}


async def pending(live: LiveServer, ids: Seed, n: int) -> list[dict[str, Any]] | None:
    async with live.client() as http:
        data = (await http.get(f"/api/v1/sessions/{ids.session_id}/feeds/queue", headers=auth(ids))).json()
    return data["pending"] if len(data["pending"]) >= n else None


async def test_approve_and_remove_reach_viewers_live(world: tuple[LiveServer, Seed, FakeNetworks]) -> None:
    live, ids, fake = world
    url = f"{live.ws_url}/ws/v1/sessions/{ids.session_id}"
    async with await connect(url) as viewer:
        hello = await recv_type(viewer, "hello")
        await recv_type(viewer, "synced")
        fake.add_tweet("ana", "Ana", "Waiting for a moderator #test")
        fake.add_tweet("bo", "Bo", "Also waiting #test")
        live.services.feeds.poll_now()
        # Moderators (and viewers) hear that the queue changed, without any of its content.
        hint = await recv_type(viewer, "feed.queue")
        assert set(hint) == {"type", "session_id"}
        queue = await eventually(lambda: pending(live, ids, 2), what="two posts waiting")
        ana = next(r for r in queue if r["post"]["author_handle"] == "ana")
        bo = next(r for r in queue if r["post"]["author_handle"] == "bo")
        async with live.client() as http:
            r = await http.post(
                f"/api/v1/sessions/{ids.session_id}/feeds/posts/{ana['post_row']}",
                json={"action": "approve"},
                headers=auth(ids),
            )
            assert r.status_code == 200 and r.json()["state"] == "approved"
            created = (await recv_until(viewer, lambda m: m.get("op") == "item.created"))[-1]
            assert created["seq"] > hello["seq"] and created["item"]["kind"] == "social"
            assert "Waiting for a moderator" in created["item"]["html"]
            r = await http.post(
                f"/api/v1/sessions/{ids.session_id}/feeds/posts/{bo['post_row']}",
                json={"action": "reject", "reason": "advertising"},
                headers=auth(ids),
            )
            assert r.json()["state"] == "rejected"
            r = await http.post(
                f"/api/v1/sessions/{ids.session_id}/feeds/posts/{ana['post_row']}",
                json={"action": "remove"},
                headers=auth(ids),
            )
            assert r.json()["state"] == "removed"
            deleted = (await recv_until(viewer, lambda m: m.get("op") == "item.deleted"))[-1]
            assert deleted["item"]["id"] == created["item"]["id"] and deleted["seq"] == created["seq"] + 1
            # A removed post cannot come back; nobody without a login or invite may moderate.
            r = await http.post(
                f"/api/v1/sessions/{ids.session_id}/feeds/posts/{ana['post_row']}",
                json={"action": "approve"},
                headers=auth(ids),
            )
            assert r.status_code == 409 and r.json()["error"]["code"] == "post_removed"
            r = await http.post(
                f"/api/v1/sessions/{ids.session_id}/feeds/posts/{bo['post_row']}", json={"action": "approve"}
            )
            assert r.status_code == 401
    # Each decision is in the moderation ledger, with who took it (docs/archive.md).
    log = await live.services.db.read(lambda r: r.moderation_log(ids.event_id, ids.session_id))
    assert [(e.action, e.target_kind, e.target_id, e.actor, e.reason) for e in reversed(log)] == [
        ("approve", "post", str(ana["post_row"]), "Ada", ""),
        ("reject", "post", str(bo["post_row"]), "Ada", "advertising"),
        ("remove", "post", str(ana["post_row"]), "Ada", ""),
    ]
    # A viewer resuming from before gets the same sequenced changes, the removed post's text
    # redacted (docs/archive.md, "What is redacted").
    async with await connect(f"{url}?since={hello['seq']}&epoch={hello['epoch']}") as again:
        replay = await recv_until(again, lambda m: m.get("type") == "synced")
        ops = [m["op"] for m in replay if m.get("type") == "change"]
        assert ops == ["item.redacted", "item.deleted"]
        assert "Waiting for a moderator" not in str(replay)


async def test_blocking_an_account_removes_its_waiting_posts(
    world: tuple[LiveServer, Seed, FakeNetworks],
) -> None:
    live, ids, fake = world
    fake.add_tweet("spam", "Spammer", "Buy now #test")
    fake.add_tweet("spam", "Spammer", "Buy again #test")
    fake.add_tweet("cy", "Cy", "A fair point about cheap tickets #test")
    fake.add_tweet("dee", "Dee", "Good talk #test")
    live.services.feeds.poll_now()
    await eventually(lambda: pending(live, ids, 4), what="four posts waiting")
    async with live.client() as http:
        rules = f"/api/v1/events/{ids.event_id}/feeds/rules"
        r = await http.post(rules, json={"kind": "block_author", "value": "x:spam"}, headers=auth(ids))
        assert r.status_code == 201 and r.json()["decided"] == 2
        r = await http.post(rules, json={"kind": "block_word", "value": "Cheap tickets"}, headers=auth(ids))
        assert r.json()["decided"] == 1
        r = await http.post(rules, json={"kind": "allow_author", "value": "x:dee"}, headers=auth(ids))
        assert r.json()["decided"] == 1
        # Each post a new rule decided is in the moderation ledger, the rule as its reason.
        log = await live.services.db.read(lambda r: r.moderation_log(ids.event_id, ids.session_id))
        assert sorted((e.action, e.actor, e.reason) for e in log) == [
            ("approve", "Ada", "rule: allow_author x:dee"),
            ("reject", "Ada", "rule: block_author x:spam"),
            ("reject", "Ada", "rule: block_author x:spam"),
            ("reject", "Ada", "rule: block_word cheap tickets"),
        ]
        data = (await http.get(f"/api/v1/sessions/{ids.session_id}/feeds/queue", headers=auth(ids))).json()
        assert data["pending"] == []
        # Later posts by the blocked account never wait; the allowed author goes straight in.
        fake.add_tweet("spam", "Spammer", "Third try #test")
        fake.add_tweet("dee", "Dee", "Another good point #test")
        live.services.feeds.poll_now()

        async def dee_twice() -> bool:
            items = await live.services.programme.items(ids.session_id, kind="social")
            return len(items) == 2

        await eventually(dee_twice, what="both of dee's posts in the stream")
        data = (await http.get(f"/api/v1/sessions/{ids.session_id}/feeds/queue", headers=auth(ids))).json()
        assert data["pending"] == []
        items = await live.services.programme.items(ids.session_id, kind="social")
        assert {i.data["handle"] for i in items} == {"dee"}
        r = await http.post(rules, json={"kind": "block_author", "value": "nobody"}, headers=auth(ids))
        assert r.status_code == 400


async def test_the_status_panel_and_quotes(world: tuple[LiveServer, Seed, FakeNetworks]) -> None:
    live, ids, fake = world
    fake.add_tweet("ana", "Ana", "Quote me #test")
    live.services.feeds.poll_now()
    queue = await eventually(lambda: pending(live, ids, 1), what="a post waiting")
    async with live.client() as http:
        r = await http.get(f"/api/v1/events/{ids.event_id}/feeds/status")
        assert r.status_code == 401
        headers = {"authorization": f"Bearer {ids.login_token}"}
        data = (await http.get(f"/api/v1/events/{ids.event_id}/feeds/status", headers=headers)).json()
        assert data["event"]["pending"] == 1 and data["event"]["collected"] == {"x": 1}
        assert data["sources"][0]["network"] == "x" and data["sources"][0]["state"] == "running"
        assert data["event"]["x_reads"] == 1
        async with http.stream(
            "GET", f"/api/v1/events/{ids.event_id}/feeds/status/stream", headers=headers
        ) as s:
            async for line in s.aiter_lines():
                if line.startswith("data: "):
                    assert '"network":"x"' in line
                    break
        q = (
            await http.get(
                f"/api/v1/sessions/{ids.session_id}/feeds/posts/{queue[0]['post_row']}/quote",
                headers=auth(ids),
            )
        ).json()
        assert (
            q["markdown"].startswith("> Quote me #test")
            and "— Ana on [X](https://x.com/ana/status/" in q["markdown"]
        )
        for path in (f"/organise/events/{ids.event_id}/feeds", f"/organise/sessions/{ids.session_id}/social"):
            page = await http.get(path, headers=headers)
            assert page.status_code == 200, path
        page = await http.get(f"/n/{ids.token}/sessions/{ids.session_id}/social")
        assert page.status_code == 200 and "social.js" in page.text


HOSTILE = SocialPost(
    network="mastodon",
    post_id="https://social.example/users/eve/statuses/1",
    author_handle="eve@social.example",
    author_name='<img src=x onerror="alert(1)">Eve',
    text='<script>alert("x")</script> <b>bold</b> javascript:alert(1) see https://example.org/a?b=1&c=2. '
    "@ana@other.example #Test",
    url="javascript:alert(2)",
    posted_at="2026-05-14T09:10:00.000Z",
    media=(
        {
            "type": "image",
            "url": "https://cdn.example/x.png",
            "alt": '"><script>',
            "local": "/media/../../etc",
        },
    ),
)


def test_a_hostile_post_renders_as_inert_text() -> None:
    html = render_post(HOSTILE)
    parser = _Elements()
    parser.feed(html)
    assert {tag for tag, _ in parser.seen} <= {"div", "p", "span", "a"}
    for tag, attrs in parser.seen:
        assert all(not name.startswith("on") for name, _ in attrs), (tag, attrs)
        if tag == "a":
            assert dict(attrs)["href"].startswith("https://"), attrs
    assert "&lt;script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html  # shown as text
    assert "javascript:alert(1)" in html  # shown, never linked
    assert '<a class="social-link" href="https://example.org/a?b=1&amp;c=2"' in html
    assert 'href="https://other.example/@ana"' in html
    assert "Original post" in html and "social-original" not in html  # no safe original URL: no link
    assert quote_markdown(HOSTILE).startswith('> <script>alert("x")</script>')


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, attrs))


def test_an_author_without_a_display_name_is_named_once() -> None:
    # A Bluesky author not resolved yet (or without a display name) has only a handle: it is
    # shown once, not as both name and handle.
    post = SocialPost(
        network="bluesky",
        post_id="at://did:plc:ana/app.bsky.feed.post/1",
        author_handle="ana.bsky.social",
        author_name="ana.bsky.social",
        text="Hello #test",
        url="https://bsky.app/profile/ana.bsky.social/post/1",
        posted_at="2026-05-14T09:10:00.000Z",
    )
    assert render_post(post).count("ana.bsky.social</span>") == 1
    named = dataclasses.replace(post, author_name="Ana Lima")
    html = render_post(named)
    assert (
        '<span class="social-name">Ana Lima</span>' in html
        and '<span class="social-handle">@ana.bsky.social</span>' in html
    )

"""The event's own feed ("Around the event"): posts under the event's hashtags while no session is
live are moderated like a session's, stream live with seqs and resume, have their media fetched to
our origin, and appear on the event page, its own page, the event archive, the exports and search.
End to end with the fake networks on loopback and a real server."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from liveblog.demo.fakes import FakeNetworks, serve_fakes
from liveblog.models import event_feed_id
from liveblog.services import Services
from tests.conftest import FAST_HASHER, ORGANISER, LiveServer, eventually, make_settings, run_server
from tests.test_feeds_x import feed_settings
from tests.wsclient import connect, recv_type, recv_until


class World:
    def __init__(
        self,
        live: LiveServer,
        fake: FakeNetworks,
        event_id: str,
        session_id: str,
        event_token: str,
        session_token: str,
    ) -> None:
        self.live, self.fake, self.event_id, self.session_id = live, fake, event_id, session_id
        self.event_token, self.session_token = event_token, session_token
        self.feed_id = event_feed_id(event_id)

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {token or self.event_token}"}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with serve_fakes() as fake:
        settings = feed_settings(tmp_path, fake, feeds={"moderate_by_default": True, "fetch_media": True})
        svc = Services.build(settings)
        await svc.open()
        try:
            svc.accounts.hasher = FAST_HASHER
            # A session starting in five minutes: collecting (lead time), not live, so posts that
            # match only the event's hashtag go to the event's own feed.
            soon = datetime.now() + timedelta(minutes=5)
            event = await svc.programme.create_event(
                {
                    "title": "Around Summit",
                    "starts_on": soon.date().isoformat(),
                    "ends_on": soon.date().isoformat(),
                    "hashtags": ["#test"],
                }
            )
            session = await svc.programme.create_session(
                event.id,
                {
                    "title": "Opening",
                    "starts_at": soon.strftime("%Y-%m-%dT%H:%M"),
                    "ends_at": (soon + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
                    "hashtags": ["#opening"],
                },
            )
            _, event_token = await svc.accounts.invite(event.id, None, "Whole event")
            _, session_token = await svc.accounts.invite(event.id, session.id, "One session")
            await svc.accounts.create_organiser(*ORGANISER)
            async with run_server(settings, svc) as live:
                yield World(live, fake, event.id, session.id, event_token, session_token)
        finally:
            await svc.close()


async def queue(w: World, n: int) -> list[dict[str, Any]] | None:
    async with w.live.client() as http:
        data = (await http.get(f"/api/v1/sessions/{w.feed_id}/feeds/queue", headers=w.auth())).json()
    return data["pending"] if len(data["pending"]) >= n else None


async def test_event_posts_are_moderated_streamed_and_resumed(world: World) -> None:
    w = world
    async with w.live.client() as http:
        # The page exists before any post: it creates the feed's stream so a viewer can follow it.
        page = await http.get(f"/events/{w.event_id}/around")
        assert page.status_code == 200 and "Around the event" in page.text and "No posts yet" in page.text
    url = f"{w.live.ws_url}/ws/v1/sessions/{w.feed_id}"
    async with await connect(url) as viewer:
        hello = await recv_type(viewer, "hello")
        await recv_type(viewer, "synced")
        w.fake.add_tweet("ana", "Ana", "Doors open soon #test", image_alt="The queue outside")
        w.fake.add_tweet("spam", "Spammer", "Cheap tickets #test")
        w.fake.add_tweet("ola", "Ola", "See you at the opening #opening")  # the session's own tag: not here
        w.live.services.feeds.poll_now()
        hint = await recv_type(viewer, "feed.queue")
        assert set(hint) == {"type", "session_id"}  # no content leaks before a moderator decides
        waiting = await eventually(lambda: queue(w, 2), what="two posts waiting in the event's feed")
        assert {r["post"]["author_handle"] for r in waiting} == {"ana", "spam"}
        ana = next(r for r in waiting if r["post"]["author_handle"] == "ana")
        # Media of event-level posts is fetched to our own origin like a session's.
        assert ana["post"]["avatar_local"].startswith("/media/")
        assert ana["post"]["media"][0]["local"].startswith("/media/")
        async with w.live.client() as http:
            # A note-taker invited to one session may not moderate the event's feed.
            r = await http.get(f"/api/v1/sessions/{w.feed_id}/feeds/queue", headers=w.auth(w.session_token))
            assert r.status_code == 403
            r = await http.post(
                f"/api/v1/events/{w.event_id}/feeds/rules",
                json={"kind": "block_author", "value": "x:spam"},
                headers=w.auth(),
            )
            assert r.status_code == 201 and r.json()["decided"] == 1
            r = await http.post(
                f"/api/v1/sessions/{w.feed_id}/feeds/posts/{ana['post_row']}",
                json={"action": "approve"},
                headers=w.auth(),
            )
            assert r.status_code == 200 and r.json()["state"] == "approved"
            created = (await recv_until(viewer, lambda m: m.get("op") == "item.created"))[-1]
            assert created["seq"] > hello["seq"] and created["item"]["kind"] == "social"
            assert "Doors open soon" in created["item"]["html"] and 'src="/media/' in created["item"]["html"]
            assert w.fake.base_url not in created["item"]["html"]
            media_id = created["item"]["html"].split('class="social-image" src="/media/')[1].split('"')[0]
            image = await http.get(f"/media/{media_id}")
            assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
            # Nobody writes notes into the event's feed, not even a note-taker invited to the whole event.
            r = await http.post(
                f"/api/v1/sessions/{w.feed_id}/capture",
                json={"client_id": "n1", "body": "hi"},
                headers=w.auth(),
            )
            assert r.status_code in (403, 404)
            # It is no programme session: not listed, and its session URL leads to its page.
            sessions = (await http.get(f"/api/v1/events/{w.event_id}/sessions")).json()["sessions"]
            assert [s["id"] for s in sessions] == [w.session_id]
            r = await http.get(f"/sessions/{w.feed_id}")
            assert r.status_code == 308 and r.headers["location"] == f"/events/{w.event_id}/around"
            ola = await w.live.services.programme.items(w.feed_id, kind="social")
            assert [i.data["handle"] for i in ola] == ["ana"]
            # Removing it later is a deletion change, like in a session.
            r = await http.post(
                f"/api/v1/sessions/{w.feed_id}/feeds/posts/{ana['post_row']}",
                json={"action": "remove"},
                headers=w.auth(),
            )
            assert r.json()["state"] == "removed"
            deleted = (await recv_until(viewer, lambda m: m.get("op") == "item.deleted"))[-1]
            assert deleted["seq"] == created["seq"] + 1
    async with await connect(f"{url}?since={hello['seq']}&epoch={hello['epoch']}") as again:
        replay = await recv_until(again, lambda m: m.get("type") == "synced")
        # The removed post's creation is redacted (docs/archive.md, "What is redacted").
        assert [m["op"] for m in replay if m.get("type") == "change"] == ["item.redacted", "item.deleted"]


async def test_event_posts_show_on_pages_archive_exports_and_search(world: World) -> None:
    w = world
    async with w.live.client() as http:
        r = await http.post(
            f"/api/v1/events/{w.event_id}/feeds/policy",
            json={"moderate": False},
            headers={"authorization": f"Bearer {await _login(http)}"},
        )
        assert r.status_code == 200
    w.fake.add_tweet("bea", "Bea", "Coffee before the keynote #test")
    w.live.services.feeds.poll_now()

    async def posted() -> list[Any]:
        return await w.live.services.programme.items(w.feed_id, kind="social")

    await eventually(posted, what="the post in the event's feed (no moderation)")
    async with w.live.client() as http:
        event_page = (await http.get(f"/events/{w.event_id}")).text
        assert "Around the event" in event_page and "Coffee before the keynote" in event_page
        around = (await http.get(f"/events/{w.event_id}/around")).text
        assert "Coffee before the keynote" in around and f'data-session="{w.feed_id}"' in around
        embed = (await http.get(f"/embed/sessions/{w.feed_id}")).text
        assert "Coffee before the keynote" in embed
        archive = (await http.get(f"/events/{w.event_id}/archive")).text
        assert "Around the event" in archive and "Coffee before the keynote" in archive
        md = (await http.get(f"/events/{w.event_id}/archive.md")).text
        assert "## Around the event" in md and "Coffee before the keynote" in md
        doc = (await http.get(f"/events/{w.event_id}/archive.json")).json()
        assert [s["session"]["id"] for s in doc["sessions"]] == [w.session_id]
        feed = doc["event_feed"]
        assert feed["session"]["kind"] == "event_feed"
        assert any("Coffee before the keynote" in i["body"] for i in feed["items"])
        found = (await http.get("/search", params={"q": "coffee keynote"})).text
        # A hit's permalink, which leads to the around page (or the numbered page holding an old post).
        permalink = re.search(rf'href="(/sessions/{w.feed_id}/items/\d+)"', found)
        assert permalink is not None, found
        landing = await http.get(permalink.group(1))
        assert landing.status_code == 303
        assert landing.headers["location"].startswith(f"/events/{w.event_id}/around#item-")
        assert f"/events/{w.event_id}/around</loc>" in (await http.get("/sitemap.xml")).text


async def _login(http: Any) -> str:
    r = await http.post("/api/v1/login", json={"username": ORGANISER[0], "password": ORGANISER[1]})
    return str(r.json()["token"])


async def test_event_posts_survive_export_import_and_the_static_site(world: World, tmp_path: Path) -> None:

    from liveblog.archive.exports import comparable
    from liveblog.capture.imports import import_json
    from liveblog.web.app import make_templates
    from liveblog.web.static_site import export_site
    from tests.conftest import make_settings
    from tests.test_static_site import crawl

    w = world
    svc = w.live.services
    await svc.feeds.moderation.set_policy(w.event_id, "", False)
    w.fake.add_tweet("cai", "Cai", "Lunch queue is long #test", image_alt="The lunch queue")
    svc.feeds.poll_now()

    async def posted() -> list[Any]:
        return await svc.programme.items(w.feed_id, kind="social")

    await eventually(posted, what="the post in the event's feed")
    doc = await svc.archive.export(w.event_id)
    assert doc["event_feed"]["media"], "its image and avatar travel with the export"
    fresh = Services.build(make_settings(tmp_path / "fresh"))
    (tmp_path / "fresh").mkdir()
    await fresh.open()
    try:
        await import_json(fresh.db, json.loads(json.dumps(doc)))
        feed = await fresh.programme.event_feed(w.event_id)
        assert (
            feed is not None
            and feed.is_event_feed
            and feed.last_seq == (await svc.programme.event_feed(w.event_id)).last_seq
        )
        assert comparable(await fresh.archive.export(w.event_id)) == comparable(doc)
        assert [s.id for s in await fresh.programme.sessions(w.event_id)] == [w.session_id]
    finally:
        await fresh.close()
    out = tmp_path / "site"
    await export_site(svc, make_templates().env, w.event_id, out, w.live.url)
    index = (out / "index.html").read_text()
    assert "Around the event" in index and "Lunch queue is long" in index
    assert 'class="social-image" src="media/' in index  # its photo, exported beside the page
    assert crawl(out) == []
    script = (out / "search-index.js").read_text()
    entries = json.loads(script.split("window.LIVEBLOG_INDEX = ", 1)[1].rstrip().rstrip(";"))
    lunch = [e for e in entries if "Lunch queue is long" in e["x"]]
    assert [(e["u"].split("#")[0], e["s"]) for e in lunch] == [("index.html", "Around the event")]


async def test_programme_times_are_read_in_the_venues_zone_when_choosing_what_to_collect(
    tmp_path: Path,
) -> None:
    # The server runs in UTC (as containers do); the venue is 14 hours ahead. A session starting
    # in five minutes at the venue is within the lead time: its posts are collected.
    venue = ZoneInfo("Pacific/Kiritimati")
    settings = make_settings(tmp_path, archive={"timezone": venue.key})
    svc = Services.build(settings)
    await svc.open()
    try:
        soon = datetime.now(venue).replace(tzinfo=None) + timedelta(minutes=5)
        event = await svc.programme.create_event(
            {
                "title": "Far Summit",
                "starts_on": soon.date().isoformat(),
                "ends_on": soon.date().isoformat(),
                "hashtags": ["#far"],
            }
        )
        session = await svc.programme.create_session(
            event.id,
            {
                "title": "Opening",
                "starts_at": soon.strftime("%Y-%m-%dT%H:%M"),
                "ends_at": (soon + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            },
        )
        [target] = await svc.feeds.targets()
        assert [s.session_id for s in target.sessions] == [session.id]
        assert not target.sessions[0].live
    finally:
        await svc.close()

"""'Poll now' from any process: feed pollers run in the one process holding the feed lease
(Redis), and an organiser's request to poll now, made on another process, reaches it through
the Redis channel. Two in-process app instances over one PostgreSQL and one Redis of their own,
the fake X on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from liveblog.demo.fakes import FakeNetworks, serve_fakes
from liveblog.services import Services
from liveblog.settings import Settings
from tests.conftest import FAST_HASHER, ORGANISER, eventually, make_settings, run_server, seed
from tests.servers import RedisServer

pytestmark = pytest.mark.slow


@pytest.fixture
async def fake() -> AsyncIterator[FakeNetworks]:
    async with serve_fakes() as fakes:
        yield fakes


def two_process_settings(tmp_path: Path, pg_url: str, redis: RedisServer, **sections: Any) -> Settings:
    """Settings for app instances sharing one PostgreSQL and one Redis (and so the feed lease)."""
    settings = make_settings(
        tmp_path,
        database={"url": pg_url},
        redis={"url": redis.url, "resync_seconds": 1},
        feeds={"moderate_by_default": False, "fetch_media": False, "allow_private_addresses": True},
        **sections,
    )
    return dataclasses.replace(settings, secret_key="poll-now-secret", secret_key_from_env=True)


async def test_poll_now_asked_on_any_process_reaches_the_lease_holder(
    tmp_path: Path, pg_url: str, fake: FakeNetworks
) -> None:
    redis = RedisServer().start()
    settings = two_process_settings(
        tmp_path,
        pg_url,
        redis,
        feeds_x={"api_base": fake.base_url, "poll_seconds": 3600.0, "max_results": 10},
    )
    settings = dataclasses.replace(settings, x_bearer_token="fake-token")
    leader, other = Services.build(settings), Services.build(settings)
    await leader.open()  # first to start: it holds the lease and runs the pollers
    try:
        await other.open()
        try:
            ids = await seed(leader)
            assert leader.health()["components"]["feeds"]["runs_here"]
            assert not other.health()["components"]["feeds"]["runs_here"]
            leader.feeds.poll_now()  # the session is live: a first poll, then nothing for an hour
            await eventually(lambda: fake.x_requests, what="the first poll")
            polls = len(fake.x_requests)
            fake.add_tweet("ana", "Ana", "Posted between polls #test")
            async with run_server(settings, other) as live, live.client() as http:
                r = await http.post(
                    f"/api/v1/events/{ids.event_id}/feeds/poll",
                    headers={"authorization": f"Bearer {ids.login_token}"},
                )
                assert r.status_code == 202 and r.json() == {"asked": True}

                async def stored() -> bool:
                    items = await other.programme.items(ids.session_id, kind="social")
                    return any("Posted between polls" in i.body for i in items)

                await eventually(stored, timeout=15, what="the post, polled at once by the lease holder")
                # A session set live on this process wakes the pollers there too.
                polls = len(fake.x_requests)
                r = await http.patch(
                    f"/api/v1/sessions/{ids.other_session_id}",
                    json={"state": "live"},
                    headers={"authorization": f"Bearer {ids.login_token}"},
                )
                assert r.status_code == 200
                await eventually(
                    lambda: len(fake.x_requests) > polls, timeout=15, what="a poll as the session went live"
                )

                # The organisers' panel on this process shows the sources running on the other.
                async def panel_shows_x() -> bool:
                    r = await http.get(
                        f"/api/v1/events/{ids.event_id}/feeds/status",
                        headers={"authorization": f"Bearer {ids.login_token}"},
                    )
                    data = r.json()
                    return data["runs_elsewhere"] and any(
                        s["network"] == "x" and s["posts"] >= 1 for s in data["sources"]
                    )

                await eventually(
                    panel_shows_x, timeout=15, what="the lease holder's source status on the other process"
                )
            assert len(fake.x_requests) > polls
            assert not other.feeds.sources  # the other process polled nothing itself
        finally:
            await other.close()
    finally:
        await leader.close()
        redis.remove()


async def test_an_event_created_on_any_process_wakes_the_lease_holders_jetstream_reader(
    tmp_path: Path, pg_url: str, fake: FakeNetworks
) -> None:
    """An event created on one process, its session on now: the process holding the feed lease
    hears of it through Redis and its idle Jetstream reader listens for the new hashtag at once
    (not at its idle check 30 s later). No "Poll now", no session set live."""
    redis = RedisServer().start()
    settings = two_process_settings(
        tmp_path,
        pg_url,
        redis,
        feeds_x={"enabled": False},
        feeds_bluesky={
            "jetstream_url": fake.base_url.replace("http", "ws") + "/subscribe",
            "appview_url": "",
        },
    )
    leader, other = Services.build(settings), Services.build(settings)
    await leader.open()  # first to start: it holds the lease and runs the reader
    try:
        await other.open()
        try:
            other.accounts.hasher = FAST_HASHER
            await other.accounts.create_organiser(*ORGANISER)
            auth = {"authorization": f"Bearer {await other.accounts.login(*ORGANISER)}"}
            reader = next(s for s in leader.feeds.sources if s.network == "bluesky")
            # No event yet: nothing collects, the reader idles without a socket.
            await eventually(lambda: reader.status.state == "idle", what="an idle reader")
            assert not fake.jetstream_connections
            now = datetime.now(ZoneInfo(settings.archive.timezone))
            async with run_server(settings, other) as live, live.client() as http:
                r = await http.post(
                    "/api/v1/events",
                    json={
                        "title": "Tomorrow's news",
                        "starts_on": (now - timedelta(minutes=5)).date().isoformat(),  # its session's
                        "ends_on": (now + timedelta(days=1)).date().isoformat(),
                        "hashtags": ["#acrossprocesses"],
                    },
                    headers=auth,
                )
                assert r.status_code == 201, r.text
                event_id = r.json()["id"]
                starts = now.replace(tzinfo=None, second=0, microsecond=0) - timedelta(minutes=5)
                r = await http.post(
                    f"/api/v1/events/{event_id}/sessions",
                    json={
                        "title": "Opening",
                        "starts_at": starts.isoformat(timespec="minutes"),
                        "ends_at": (starts + timedelta(hours=1)).isoformat(timespec="minutes"),
                    },
                    headers=auth,
                )
                assert r.status_code == 201, r.text
            fake.add_skeet("did:plc:quick", "Right away #acrossprocesses", ["acrossprocesses"])

            async def routed() -> bool:
                return bool(await other.db.read(lambda r: r.list_social_routes(event_id=event_id)))

            # Well under the reader's 30 s idle check.
            await eventually(routed, timeout=8, what="the post, without Poll now")
            assert fake.jetstream_connections
        finally:
            await other.close()
    finally:
        await leader.close()
        redis.remove()


async def test_an_event_restored_by_liveblog_import_wakes_the_lease_holders_jetstream_reader(
    tmp_path: Path, pg_url: str, fake: FakeNetworks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`liveblog import` of an export whose session is live, run as its own process while the
    server runs: the process holding the feed lease hears of it through Redis, as of an event
    created there, and its idle Jetstream reader listens for the restored hashtag at once."""
    from tests.cli_process import run_liveblog
    from tests.test_imports import valid_export

    redis = RedisServer().start()
    jetstream_url = fake.base_url.replace("http", "ws") + "/subscribe"
    settings = two_process_settings(
        tmp_path,
        pg_url,
        redis,
        feeds_x={"enabled": False},
        feeds_bluesky={"jetstream_url": jetstream_url, "appview_url": ""},
    )
    leader = Services.build(settings)
    await leader.open()  # it holds the lease and runs the reader
    try:
        reader = next(s for s in leader.feeds.sources if s.network == "bluesky")
        await eventually(lambda: reader.status.state == "idle", what="an idle reader")
        doc = valid_export()
        doc["event"]["hashtags"] = ["#restoredtag"]
        doc["sessions"][0]["session"].update(state="live", ended_at=None)
        (tmp_path / "export.json").write_text(json.dumps(doc), encoding="utf-8")
        (tmp_path / "config.toml").write_text(
            f'[database]\nurl = "{pg_url}"\n[redis]\nurl = "{redis.url}"\n'
            f'[feeds_x]\nenabled = false\n[feeds_bluesky]\njetstream_url = "{jetstream_url}"\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("LIVEBLOG_SECRET_KEY", settings.secret_key)  # the same key as the server's
        done = await asyncio.to_thread(
            run_liveblog, ["--config", "config.toml", "import", "export.json"], tmp_path, 120
        )
        assert done.returncode == 0, done.stderr
        event_id = doc["event"]["id"]
        fake.add_skeet("did:plc:restored", "Back again #restoredtag", ["restoredtag"])

        async def routed() -> bool:
            return bool(await leader.db.read(lambda r: r.list_social_routes(event_id=event_id)))

        # Well under the reader's 30 s idle check.
        await eventually(routed, timeout=8, what="the post, without Poll now")
    finally:
        await leader.close()
        redis.remove()

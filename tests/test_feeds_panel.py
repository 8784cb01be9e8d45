"""The organiser's feed panel data: each source's numbers for this event beside its totals over
every event, and a source that recovered shown healthy with its recent errors kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from liveblog.demo.fakes import Failure, FakeNetworks, serve_fakes
from liveblog.services import Services
from tests.conftest import Seed, eventually, seed
from tests.test_feeds_x import feed_settings


@pytest.fixture
async def fake() -> AsyncIterator[FakeNetworks]:
    async with serve_fakes() as fakes:
        yield fakes


@pytest.fixture
async def xsvc(tmp_path: Path, fake: FakeNetworks) -> AsyncIterator[tuple[Services, Seed]]:
    svc = Services.build(feed_settings(tmp_path, fake, feeds={"backoff_max_seconds": 0.2}))
    await svc.open()
    try:
        yield svc, await seed(svc)
    finally:
        await svc.close()


async def test_each_source_row_says_what_it_counts_for_this_event(
    xsvc: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = xsvc
    now = datetime.now()
    starts, ends = now - timedelta(minutes=5), now + timedelta(hours=1)
    other = await svc.programme.create_event(
        {
            "title": "Other",
            "starts_on": starts.date().isoformat(),  # two days if the talk spans midnight
            "ends_on": ends.date().isoformat(),
            "hashtags": ["#other"],
        }
    )
    session = await svc.programme.create_session(
        other.id,
        {
            "title": "Talk",
            "starts_at": starts.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": ends.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    await svc.programme.set_state(session.id, "live")
    fake.fail_next["x"].append(Failure("500"))  # a start-up error, then the source runs fine
    for n in range(3):
        fake.add_tweet(f"u{n}", f"U{n}", f"Point {n} #test")
    svc.feeds.poll_now()

    async def collected() -> bool:
        return (await svc.feeds.panel.status(ids.event_id))["event"]["x_reads"] >= 3

    await eventually(collected, what="three posts read for the test event")
    mine = (await svc.feeds.panel.status(ids.event_id))["sources"][0]
    theirs = (await svc.feeds.panel.status(other.id))["sources"][0]
    # The row's own numbers are the event's; the totals over every event are kept apart.
    assert mine["event"] == {"posts": 3, "reads": 3, "read_cap": 10_000, "cost_usd": 0.015}
    assert theirs["event"] == {"posts": 0, "reads": 0, "read_cap": 10_000, "cost_usd": 0.0}
    assert theirs["posts"] == mine["posts"] == 3 and theirs["reads"] == 3  # all events, since start
    # It failed once at start and then ran: healthy, with the error kept in its recent history.
    assert mine["state"] == "running"
    assert [e["error"] for e in mine["recent_errors"]] == [mine["last_error"]] and "500" in mine["last_error"]

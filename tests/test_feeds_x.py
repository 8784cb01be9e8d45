"""The X source: the real tweepy client against the fake X API v2 on loopback."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from liveblog.demo.fakes import Failure, FakeNetworks, serve_fakes
from liveblog.services import Services
from liveblog.settings import Settings
from tests.conftest import Seed, eventually, make_settings, seed


@pytest.fixture
async def fake() -> AsyncIterator[FakeNetworks]:
    async with serve_fakes() as fakes:
        yield fakes


def feed_settings(tmp_path: Path, fake: FakeNetworks, **sections: dict[str, Any]) -> Settings:
    base: dict[str, dict[str, Any]] = {
        # The fakes run on loopback, which the address rule refuses unless this is set (test_outbound.py).
        "feeds": {"moderate_by_default": False, "fetch_media": False, "allow_private_addresses": True},
        "feeds_x": {"api_base": fake.base_url, "poll_seconds": 3600.0, "max_results": 10},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    settings = make_settings(tmp_path, **base)
    return dataclasses.replace(settings, x_bearer_token="fake-token")


@pytest.fixture
async def xsvc(tmp_path: Path, fake: FakeNetworks) -> AsyncIterator[tuple[Services, Seed]]:
    svc = Services.build(feed_settings(tmp_path, fake))
    await svc.open()
    try:
        yield svc, await seed(svc)
    finally:
        await svc.close()


async def social_items(svc: Services, session_id: str) -> list[Any]:
    return await svc.programme.items(session_id, kind="social")


def x_source(svc: Services) -> Any:
    return next(s for s in svc.feeds.sources if s.network == "x")


async def test_pagination_then_since_id_carried_to_the_next_poll(
    xsvc: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = xsvc
    first = [fake.add_tweet(f"user{i}", f"User {i}", f"Point {i} from the keynote #test") for i in range(25)]
    fake.add_tweet("elsewhere", "Someone", "nothing to do with it #other")
    svc.feeds.poll_now()
    await eventually(lambda: len(fake.x_requests) >= 3, what="three pages")
    items = await eventually(lambda: _count(svc, ids.session_id, 25), what="25 posts in the stream")
    pages = [p for _, p in fake.x_requests[:3]]
    assert "since_id" not in pages[0] and "next_token" not in pages[0] and "start_time" in pages[0]
    assert pages[1]["next_token"] and pages[2]["next_token"] != pages[1]["next_token"]
    assert pages[0]["query"] == "#test" and pages[0]["max_results"] == "10"
    assert {i.data["post_id"] for i in items} == set(first)
    # tweepy sent the expansions and fields we asked for
    assert "author_id" in pages[0]["expansions"] and "created_at" in pages[0]["tweet.fields"]
    later = [fake.add_tweet("late", "Late Person", f"More #test {i}") for i in range(3)]
    svc.feeds.poll_now()
    await eventually(lambda: len(fake.x_requests) >= 4, what="the next poll")
    assert fake.x_requests[3][1]["since_id"] == max(first, key=int)
    items = await eventually(lambda: _count(svc, ids.session_id, 28), what="28 posts")
    assert {i.data["post_id"] for i in items} >= set(later)
    item = next(i for i in items if i.data["post_id"] == later[0])
    assert item.author == "Late Person" and item.data["url"] == f"https://x.com/late/status/{later[0]}"
    assert "Original post" in item.html and item.seq > 0


async def _count(svc: Services, session_id: str, n: int) -> list[Any] | None:
    items = await social_items(svc, session_id)
    return items if len(items) >= n else None


async def test_a_429_reset_is_respected(xsvc: tuple[Services, Seed], fake: FakeNetworks) -> None:
    svc, ids = xsvc
    fake.add_tweet("ana", "Ana", "Hello #test")
    fake.fail_next["x"].append(Failure("429", reset_in=1.0))
    svc.feeds.poll_now()
    await eventually(lambda: x_source(svc).status.state == "waiting", what="the panel to say waiting")
    limited_at, _ = fake.x_requests[0]
    status = (await svc.feeds.panel.status(ids.event_id))["sources"][0]
    assert status["state"] == "waiting" and status["until"]
    # Even asked to poll now, the source must not ask before the reset.
    svc.feeds.poll_now()
    await eventually(lambda: _count(svc, ids.session_id, 1), what="the post after the reset")
    assert len(fake.x_requests) == 2
    retried_at, _ = fake.x_requests[1]
    assert retried_at >= fake.last_429_reset > limited_at


async def test_the_same_post_from_two_polls_is_stored_once(
    xsvc: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = xsvc
    tweet = fake.add_tweet("ana", "Ana", "Once only #test")
    svc.feeds.poll_now()
    await eventually(lambda: _count(svc, ids.session_id, 1), what="the post")
    # Forget the cursor, as after a lost since_id: the next poll reads the same post again.
    await svc.feeds.set_cursor(f"x:{ids.event_id}", "1")
    svc.feeds.poll_now()
    await eventually(lambda: len(fake.x_requests) >= 2, what="a second poll")
    await eventually(
        lambda: x_source(svc).status.requests >= 2 and svc.feeds.status_version > 2, what="it done"
    )
    items = await social_items(svc, ids.session_id)
    assert [i.data["post_id"] for i in items] == [tweet]
    routes = await svc.db.read(lambda r: r.list_social_routes(event_id=ids.event_id))
    assert len(routes) == 1


async def test_the_read_cap_stops_collection_and_the_panel_says_so(
    tmp_path: Path, fake: FakeNetworks
) -> None:
    svc = Services.build(feed_settings(tmp_path, fake, feeds_x={"event_read_cap": 15}))
    await svc.open()
    try:
        ids = await seed(svc)
        for i in range(40):
            fake.add_tweet(f"u{i}", f"U {i}", f"Post {i} #test")
        svc.feeds.poll_now()
        await eventually(lambda: x_source(svc).status.state == "capped", what="the source to stop at its cap")
        asked = len(fake.x_requests)
        status = await svc.feeds.panel.status(ids.event_id)
        assert status["event"]["x_reads"] == 20  # two pages of the minimum 10: never more than one page over
        assert status["event"]["x_cost_usd"] == pytest.approx(0.1)
        assert status["sources"][0]["state"] == "capped" and status["sources"][0]["reads"] == 20
        svc.feeds.poll_now()
        await eventually(lambda: x_source(svc).status.requests >= asked, what="another round")
        assert len(fake.x_requests) == asked  # nothing more is read
    finally:
        await svc.close()


@pytest.mark.parametrize("kind", ["500", "html", "malformed", "wrong_shape"])
async def test_bad_answers_are_backed_off_and_lose_nothing(
    tmp_path: Path, fake: FakeNetworks, kind: str
) -> None:
    svc = Services.build(feed_settings(tmp_path, fake, feeds={"backoff_max_seconds": 0.2}))
    await svc.open()
    try:
        ids = await seed(svc)
        fake.add_tweet("ana", "Ana", "Before the trouble #test")
        svc.feeds.poll_now()
        await eventually(lambda: _count(svc, ids.session_id, 1), what="the first post")
        fake.fail_next["x"].extend([Failure(kind), Failure(kind)])
        fake.add_tweet("bo", "Bo", "After the trouble #test")
        svc.feeds.poll_now()
        await eventually(lambda: x_source(svc).status.last_error, what="the error on the panel")
        assert x_source(svc).status.state in ("failing", "running")
        await eventually(lambda: _count(svc, ids.session_id, 2), what="the post once the network recovers")
        assert x_source(svc).status.state == "running"
    finally:
        await svc.close()


async def test_a_stalled_connection_times_out(tmp_path: Path, fake: FakeNetworks) -> None:
    svc = Services.build(
        feed_settings(tmp_path, fake, feeds={"request_timeout_seconds": 0.5, "backoff_max_seconds": 0.2})
    )
    await svc.open()
    try:
        ids = await seed(svc)
        fake.fail_next["x"].append(Failure("stall", seconds=5))
        fake.add_tweet("ana", "Ana", "Patience #test")
        svc.feeds.poll_now()
        await eventually(
            lambda: (
                "Timeout" in x_source(svc).status.last_error
                or "timed out" in x_source(svc).status.last_error.lower()
            ),
            what="a timeout on the panel",
        )
        await eventually(lambda: _count(svc, ids.session_id, 1), what="the post on retry")
    finally:
        await svc.close()


async def test_no_token_says_so_and_the_app_works(services: Services, seeded: Seed) -> None:
    services.feeds.poll_now()
    source = x_source(services)
    await eventually(lambda: source.status.state == "off", what="the X source to say why it is off")
    assert "LIVEBLOG_X_BEARER_TOKEN" in source.status.detail


async def test_media_and_avatars_are_fetched_stripped_and_served_from_our_origin(
    tmp_path: Path, fake: FakeNetworks
) -> None:
    import io

    from PIL import Image

    svc = Services.build(feed_settings(tmp_path, fake, feeds={"fetch_media": True}))
    await svc.open()
    try:
        ids = await seed(svc)
        fake.add_tweet("ana", "Ana", "A photo of the slide #test", image_alt="The slide: three bullet points")
        svc.feeds.poll_now()
        items = await eventually(lambda: _count(svc, ids.session_id, 1), what="the post")
        html = items[0].html
        assert 'class="social-image" src="/media/' in html and 'alt="The slide: three bullet points"' in html
        assert 'width="64" height="48"' in html and 'class="social-avatar" src="/media/' in html
        assert fake.base_url not in html  # nothing in the page points at the network
        media_id = html.split('class="social-image" src="/media/')[1].split('"')[0]
        found = await svc.programme.media(media_id)
        assert found is not None
        content_type, data = found
        with Image.open(io.BytesIO(data)) as image:
            assert content_type == "image/jpeg" and not image.getexif().get(0x8825)  # no GPS left
    finally:
        await svc.close()

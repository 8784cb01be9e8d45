"""The demo's social feeds: posts from all three fake networks reach the live session within
seconds, and one waits for a moderator."""

from __future__ import annotations

import asyncio
from pathlib import Path

from liveblog.demo import HASHTAG, load_demo
from liveblog.demo.fakes import FakeNetworks, serve_fakes
from liveblog.demo.feeds import DemoFeedsComponent, conversation, demo_feed_settings, free_port, gaps, replay
from liveblog.services import Services
from tests.conftest import eventually, make_settings


async def test_the_demo_replays_a_conversation_on_three_networks_with_one_post_waiting(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = demo_feed_settings(make_settings(tmp_path), port)
    svc = Services.build(settings)
    demo = DemoFeedsComponent(svc, port, every=0.1, hashtag=HASHTAG)
    await svc.open()
    try:
        ids = await load_demo(svc)
        await demo.open(svc.supervisor)
        session = ids["live_session"]

        async def networks() -> set[str]:
            items = await svc.programme.items(session, kind="social")
            slide = any("three routes into public service" in i.html for i in items)
            return slide and {i.data["network"] for i in items} >= {"x", "mastodon", "bluesky"}

        await eventually(networks, timeout=30, what="posts from X, Mastodon and Bluesky, and the slide")
        waiting = await svc.feeds.moderation.queue(await svc.programme.session(session))
        assert [r.post.author_handle for r in waiting] == ["first_timer_fi"]
        items = await svc.programme.items(session, kind="social")
        assert all(i.data["handle"] != "first_timer_fi" for i in items)
        slide = [i for i in items if "three routes into public service" in i.html]
        assert 'src="/media/' in slide[0].html  # the demo's images are our own copies too
    finally:
        await demo.close()
        await svc.close()


async def test_the_demo_conversation_posts_each_text_once_then_stops_and_a_restart_repeats_nothing(
    tmp_path: Path,
) -> None:
    """Before: the conversation looped forever with new ids (270 posts of 8 texts after 22 minutes),
    and a restart posted it all again."""
    port = free_port()
    settings = demo_feed_settings(make_settings(tmp_path), port)
    svc = Services.build(settings)
    await svc.open()
    try:
        ids = await load_demo(svc)
        talk = conversation(HASHTAG)

        async def collected() -> list[str]:
            routes = await svc.db.read(lambda r: r.list_social_routes(event_id=ids["event"], limit=10_000))
            return [route.post.text for route in routes]

        for _run in range(2):  # the second run is a restart: new fake networks, same database
            fakes = FakeNetworks()
            async with serve_fakes(fakes, port):
                await asyncio.wait_for(replay(svc, fakes, ids["event"], HASHTAG, every=0.05, spread=0.5), 30)

                async def all_in() -> bool:
                    return len(await collected()) >= len(talk) + 1

                await eventually(all_in, timeout=30, what="every text of the conversation collected")
                if _run == 1:
                    assert (fakes.tweets, fakes.statuses, fakes.jet_events) == (
                        [],
                        [],
                        [],
                    )  # nothing re-posted
        texts = await collected()
        assert len(texts) == len(set(texts)) == len(talk) + 1  # each text once, and the one waiting
    finally:
        await svc.close()


def test_the_conversation_starts_busy_and_spreads_over_the_session() -> None:
    waits = gaps(7, 4.0, 1200.0)
    assert waits[0] == 4.0 and waits == sorted(waits)
    assert abs(sum(waits) - 1200.0) < 1.0
    assert gaps(3, 4.0, 5.0) == [4.0, 4.0, 4.0]  # no room to spread: as fast as `first` allows
    assert gaps(0, 4.0, 10.0) == []

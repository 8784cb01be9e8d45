"""The demo's social feeds: posts from all three fake networks reach the live session within
seconds, and one waits for a moderator."""

from __future__ import annotations

from pathlib import Path

from liveblog.demo import HASHTAG, load_demo
from liveblog.demo_feeds import DemoFeedsComponent, demo_feed_settings, free_port
from liveblog.services import Services
from tests.conftest import eventually, make_settings


async def test_the_demo_replays_a_conversation_on_three_networks_with_one_post_waiting(tmp_path: Path) -> None:
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
        waiting = await svc.feeds.queue(await svc.programme.session(session))
        assert [r.post.author_handle for r in waiting] == ["first_timer_fi"]
        items = await svc.programme.items(session, kind="social")
        assert all(i.data["handle"] != "first_timer_fi" for i in items)
        slide = [i for i in items if "three routes into public service" in i.html]
        assert 'src="/media/' in slide[0].html  # the demo's images are our own copies too
    finally:
        await demo.close()
        await svc.close()

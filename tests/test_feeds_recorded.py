"""X and Bluesky on what the networks really sent, replayed over loopback through the real client
code: tweepy's recorded recent-search answers (tests/data/tweepy: asked without expansions, so
no `includes`, no author, no date) through tweepy and XSource; a production Jetstream capture
(tests/data/jetstream: creates with facets and embeds, likes, reposts, follows, a delete, an
identity and an account event) through JetstreamSource and the feed service."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from liveblog.capture.feeds.base import EventTarget, SessionTarget
from liveblog.capture.feeds.bluesky import post_from_event
from liveblog.capture.feeds.render import render_post
from liveblog.capture.feeds.x import XSource
from liveblog.demo.fakes import FakeNetworks, serve_fakes
from liveblog.models import SocialPost
from liveblog.services import Services
from tests.cassettes import DATA, load
from tests.conftest import eventually, make_settings, seed
from tests.feed_stub import Collected


@pytest.fixture
async def fake() -> AsyncIterator[FakeNetworks]:
    async with serve_fakes() as fakes:
        yield fakes


async def test_tweepy_recorded_search_answers_without_includes(fake: FakeNetworks, tmp_path: Path) -> None:
    pages = [
        ex
        for name in ("test_client_search_recent_tweets", "test_asyncclient_search_recent_tweets")
        for ex in load(f"tweepy/{name}.yaml")
    ]
    # The recorded bodies and headers, served in turn to tweepy whatever its query string.
    recorded = [
        (p.body, {k: v for k, v in p.headers.items() if k == "content-type" or k.startswith("x-rate-limit")})
        for p in pages
    ]
    fake.document_pages["x/2/tweets/search/recent"] = recorded
    settings = make_settings(
        tmp_path,
        feeds={"allow_private_addresses": True},
        feeds_x={"api_base": f"{fake.base_url}/doc/x", "max_results": 10, "event_read_cap": 20},
    )
    source = XSource(dataclasses.replace(settings, x_bearer_token="recorded"))
    feed = Collected()
    session = SessionTarget("s1", frozenset(), True, datetime(2022, 10, 7, tzinfo=UTC))
    try:
        await source.poll_once(
            feed, [EventTarget("e", frozenset(), ("Tweepy",), (session,), datetime(2022, 10, 7, tzinfo=UTC))]
        )  # type: ignore[arg-type]
    finally:
        await source.close()
    # tweepy sent the search as the cassette has it, with our fields; then the next page by next_token.
    first, second = (parse_qs(urlsplit(u).query) for u in fake.document_requests)
    assert (
        first["query"] == ["Tweepy"] and "author_id" in first["expansions"][0] and "next_token" not in first
    )
    assert second["next_token"] == ["b26v89c19zqg8o3fpzbn1e0ffhxjiofzw6po136rvbnul"]
    expected = [t["id"] for p in pages for t in json.loads(p.body)["data"]]
    assert [p.post_id for p in feed.posts] == expected and feed.billed == 20  # stopped at the read cap
    assert feed.cursors == {"x:e": "1578516068309794817"}  # the first page's newest_id
    for post in feed.posts:
        # No includes and no author_id: no made-up author, and a link X resolves by id alone.
        assert post.author_handle == "" and post.author_name == "Unknown author on X"
        assert post.url == f"https://x.com/i/web/status/{post.post_id}"
    retweet = next(p for p in feed.posts if p.text.startswith("RT @t6dr1ve"))
    assert "tweepy" in retweet.hashtags  # no entities: the tags are read from the text


# -- Jetstream ---------------------------------------------------------------------------------------


def recorded_events() -> list[dict[str, Any]]:
    lines = (DATA / "jetstream" / "expected_v1.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


async def test_a_production_jetstream_capture(fake: FakeNetworks, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        feeds={
            "allow_private_addresses": True,
            "moderate_by_default": False,
            "fetch_media": False,
            "backoff_max_seconds": 0.2,
            "request_timeout_seconds": 2.0,
        },
        feeds_x={"enabled": False},
        feeds_bluesky={
            "jetstream_url": fake.base_url.replace("http", "ws") + "/subscribe",
            "rewind_seconds": 2.0,
            "cdn_base": fake.base_url,
            "appview_url": "",
        },
    )
    svc = Services.build(settings)
    await svc.open()
    try:
        ids = await seed(svc)
        # Two hashtags carried by facets (written in another case) and a search term in plain text.
        await svc.programme.update_event(
            ids.event_id,
            {"hashtags": ["#test", "#howtotellaitoshutup", "#TalesAtWonderworld", "Mount Rushmore"]},
        )
        svc.feeds.poll_now()
        await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
        events = recorded_events()
        for event in events:
            fake.push_jet_event(event)

        async def three() -> bool:
            return len(await svc.db.read(lambda r: r.list_social_routes(event_id=ids.event_id))) >= 3

        await eventually(three, what="the three matching posts")
        routes = await svc.db.read(lambda r: r.list_social_routes(event_id=ids.event_id))
        assert {r.post.post_id.rsplit("/", 1)[1] for r in routes} == {
            "3mptbypfywk2v",
            "3mptbyo7tas2u",
            "3mptbypjm6224",
        }
        assert {r.session_id for r in routes} == {ids.session_id}  # made after the keynote's scheduled start
        tagged = next(r.post for r in routes if r.post.post_id.endswith("/3mptbyo7tas2u"))
        assert tagged.author_handle == tagged.post_id.split("/")[2]  # the DID (resolving is off here)
        assert "balanwonderworldoc" in tagged.hashtags and tagged.lang == "es"
        assert tagged.media and all(str(m["url"]).startswith(fake.base_url) for m in tagged.media)
        # Every other kind (likes, reposts, follows, blocks, statuses, a delete of a post we never
        # had, an identity event without a handle, an account event) was read and passed over.
        assert len(routes) == 3
        # Nothing in the capture broke the connection (the tags added above may reconnect it once,
        # to read again from before they were added, which is no failure).
        reader = next(s for s in svc.feeds.sources if s.network == "bluesky")
        assert reader.status.last_error == "" and reader.status.state == "running"
    finally:
        await svc.close()


class _Everything:
    """Wants every post (to read the capture's posts whatever their tags)."""

    def matches(self, network: str, tags: object, text: str) -> bool:
        return True


def _recorded_post(rkey: str, record: dict[str, Any] | None = None) -> SocialPost:
    event = next(e for e in recorded_events() if (e.get("commit") or {}).get("rkey") == rkey)
    if record is not None:
        event = {**event, "commit": {**event["commit"], "record": record}}
    kind, post = post_from_event(event, _Everything(), "https://cdn.example", {}, 5000)  # type: ignore[arg-type]
    assert kind == "post" and isinstance(post, SocialPost)
    return post


def test_a_link_shortened_in_the_text_becomes_the_link_its_facet_names() -> None:
    """Bluesky shows a long link as shortened text ("www.tumblr.com/tempo-tales/...") and keeps
    the address in a link facet, by UTF-8 byte range: our plain text carries the address, so the
    card links it (as Mastodon's full address comes through its hidden spans)."""
    youtube = _recorded_post("3mptbyoeyc22k")
    assert youtube.text == "https://www.youtube.com/watch?v=V5lDo-jw8mA"
    tumblr = _recorded_post("3mptbyo7tas2u")
    full = "https://www.tumblr.com/tempo-tales/765681292369166336/behind-them-timmi-and-wankyu-follow-silently-but?source=share"
    assert f"\n\n{full}\n\n#talesatwonderworld\n#balanwonderworldoc" in tumblr.text
    assert "tempo-tales/..." not in tumblr.text
    assert f'<a class="social-link" href="{full}"' in render_post(tumblr)
    czech = _recorded_post("3mptbypt22l26")  # Czech text after the link, no langs
    assert czech.text.startswith("https://denikn.cz/2113523\nV souvislosti s politikou v hlavním městě")
    assert czech.text.endswith("Jaká je situace necelých 100 dní před volbami?")
    # The same link after non-ASCII text: its byte range counts UTF-8 bytes, not characters.
    record = next(e for e in recorded_events() if (e.get("commit") or {}).get("rkey") == "3mptbypt22l26")
    record = dict(record["commit"]["record"])
    prefix = "Článek v Deníku N: "
    shift = len(prefix.encode())
    record["text"] = prefix + record["text"]
    record["facets"] = [
        {**f, "index": {k: v + shift for k, v in f["index"].items()}} for f in record["facets"]
    ]
    moved = _recorded_post("3mptbypt22l26", record)
    assert moved.text == prefix + czech.text
    # A link written out in full is left as it is.
    ufo = _recorded_post("3mptbyoigog2b")
    assert ufo.text.startswith(
        "Has anyone properly debunked Tic Tac video?\n\nhttps://www.ufofeed.com/266486/has-anyone-properly-debunked-tic-tac-video/\n\n"
    )

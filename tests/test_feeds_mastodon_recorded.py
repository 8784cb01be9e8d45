"""Mastodon on what real servers sent (Mastodon.py's recorded cassettes, tests/data/mastodon):
a tag timeline paged through its Link headers, and statuses with every media type, a content
warning, a poll and the 4.4+ quote shape, replayed over loopback through MastodonSource. Then
the corrected fakes through the whole service: a video's preview image copied to /media/ with a
link to the original, a poll shown read-only, a quote shown with its post."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from liveblog.capture.feeds.base import EventTarget
from liveblog.capture.feeds.mastodon import MastodonSource, parse_status
from liveblog.capture.feeds.render import render_post
from liveblog.demo.fakes import FakeNetworks, serve_fakes
from liveblog.models import SocialPost
from liveblog.services import Services
from tests.cassettes import load, replay
from tests.conftest import eventually, make_settings, seed
from tests.feed_stub import Collected

RECORDED_TAG = "fgiztsshwiaqqiztpmmjbtvmescsculuvmgjgopwoeidbcrixp"  # Mastodon.py's test_pagination_iterator
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeNetworks]:
    async with serve_fakes() as fakes:
        yield fakes


def target(tag: str) -> EventTarget:
    return EventTarget("e", frozenset({tag}), (), (), LONG_AGO)


async def test_a_recorded_tag_timeline_is_read_through_its_link_headers(
    fake: FakeNetworks, tmp_path: Path
) -> None:
    exchanges = load("mastodon/test_pagination_iterator.yaml")
    instance = replay(fake, exchanges, "mastodon")
    recorded = {
        s["id"] for ex in exchanges if ex.method == "GET" and "timelines/tag" in ex.url for s in ex.json()
    }
    source = MastodonSource(
        make_settings(tmp_path, feeds={"allow_private_addresses": True}, feeds_mastodon={"limit": 10}),
        instance,
    )
    feed = Collected()
    try:
        await source.poll_once(feed, [target(RECORDED_TAG)])  # type: ignore[arg-type]
        # The first look read back page by page (rel="next", max_id) to the end: 30 statuses, once each.
        assert len(feed.posts) == len({p.post_id for p in feed.posts}) == 30
        assert {p.post_id.rsplit("/", 1)[1] for p in feed.posts} == recorded
        newest = max(recorded, key=int)
        assert feed.cursors == {f"mastodon:{instance}:{RECORDED_TAG}": newest}
        # The next poll asks forward from the newest (min_id, as recorded), and finds nothing new.
        await source.poll_once(feed, [target(RECORDED_TAG)])  # type: ignore[arg-type]
        assert len(feed.posts) == 30 and source.status.requests == 5
    finally:
        await source.close()
    post = feed.posts[0]
    assert post.author_handle.endswith(
        "@127.0.0.1:" + instance.split(":")[2].split("/")[0]
    )  # a local account
    assert post.url.startswith("http://localhost:3000/@") and post.text


def _statuses() -> dict[str, dict[str, Any]]:
    """The recorded statuses by what they show."""

    def one(name: str, index: int = 0) -> dict[str, Any]:
        return [ex.json() for ex in load(f"mastodon/{name}.yaml") if ex.method == "GET"][index]  # type: ignore[no-any-return]

    return {
        "quote": one("test_entity_quote"),
        "gifv": one("test_entity_status"),
        "video": one("test_entity_mediaattachmentvideometadata", 1),
        "audio": one("test_entity_mediaattachment"),
        "poll": one("test_entity_poll"),
    }


async def _read_as_tag_timeline(fake: FakeNetworks, tmp_path: Path, statuses: list[Any]) -> list[SocialPost]:
    """Recorded statuses served as one page of #test's tag timeline, read by MastodonSource."""
    fake.documents["recorded/api/v1/timelines/tag/test?limit=40"] = (
        json.dumps(statuses).encode(),
        {"content-type": "application/json; charset=utf-8"},
    )
    source = MastodonSource(
        make_settings(tmp_path, feeds={"allow_private_addresses": True}, feeds_mastodon={"limit": 40}),
        f"{fake.base_url}/doc/recorded",
    )
    feed = Collected()
    try:
        await source.poll_once(feed, [target("test")])  # type: ignore[arg-type]
    finally:
        await source.close()
    return feed.posts


async def test_recorded_statuses_keep_quotes_media_previews_polls_and_warnings(
    fake: FakeNetworks, tmp_path: Path
) -> None:
    statuses = _statuses()
    posts = dict(
        zip(statuses, await _read_as_tag_timeline(fake, tmp_path, list(statuses.values())), strict=True)
    )

    quote = posts["quote"]  # Mastodon 4.4+: quote = {"state": "accepted", "quoted_status": {...}}
    assert quote.relation["quote_of"] == "115044070560414080"
    assert quote.quote["author_handle"] == "h4lcy.bsky.social@bsky.brid.gy"
    assert quote.quote["text"].startswith("actual reply that quotes a bsky post")
    assert quote.quote["url"].startswith("https://bsky.brid.gy/r/")

    (gifv,) = posts["gifv"].media
    assert gifv["type"] == "gifv" and gifv["url"].endswith(".mp4") and gifv["preview"].endswith(".png")
    assert posts["gifv"].text.startswith("CW: test post for mastodon.py stuff")
    (video,) = posts["video"].media
    assert (
        video["type"] == "video"
        and video["preview"].endswith("/small")
        and video["alt"].startswith("three cat synths")
    )
    audio = next(m for m in posts["audio"].media if m["type"] == "audio")
    assert audio["preview"] and audio["url"] != audio["preview"]

    poll = posts["poll"].poll
    assert [(o["title"], o["votes"]) for o in poll["options"]] == [
        ("real", 8),
        ("fr fr", 17),
        ("so true", 14),
        (":hecker:", 25),
    ]
    assert poll["voters"] == 47 and poll["votes"] == 64 and poll["multiple"] is True


def test_the_older_quote_shape_is_read_too() -> None:
    status = _statuses()["gifv"]
    old = parse_status(
        {**status, "quote": {**_statuses()["quote"]["quote"]["quoted_status"]}}, "https://m.example", 500
    )
    assert old is not None and old.relation["quote_of"] == "115044070560414080"
    assert old.quote["text"].startswith("actual reply that quotes a bsky post")
    shallow = parse_status(
        {**status, "quote": {"state": "accepted", "quoted_status_id": "42"}}, "https://m.example", 500
    )
    assert shallow is not None and shallow.relation["quote_of"] == "42" and not shallow.quote
    pending = parse_status(
        {**status, "quote": {"state": "pending", "quoted_status": None}}, "https://m.example", 500
    )
    assert pending is not None and "quote_of" not in pending.relation


# -- the corrected fakes, through the whole service ------------------------------------------------


async def test_video_previews_polls_and_quotes_are_shown(fake: FakeNetworks, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        feeds={
            "allow_private_addresses": True,
            "moderate_by_default": False,
            "fetch_media": True,
            "backoff_max_seconds": 0.2,
            "request_timeout_seconds": 2.0,
        },
        feeds_x={"enabled": False},
        feeds_mastodon={"instances": [fake.base_url], "poll_seconds": 3600.0, "limit": 5},
    )
    svc = Services.build(settings)
    await svc.open()
    try:
        ids = await seed(svc)
        svc.feeds.poll_now()
        await eventually(lambda: fake.mastodon_requests, what="a first look at the tag")
        quoted = fake.add_status("ivo@social.example", "Ivo", "<p>The original point</p>", [])
        fake.add_status(
            "ana@social.example",
            "Ana",
            "<p>Clip from the keynote #test</p>",
            ["test"],
            media_type="video",
            image_alt="The speaker on stage",
        )
        fake.add_status(
            "bo@social.example",
            "Bo",
            "<p>Which track next? #test</p>",
            ["test"],
            poll=[("Security", 3), ("Data", 5)],
        )
        fake.add_status("cy@social.example", "Cy", "<p>So true #test</p>", ["test"], quote_of=quoted)
        svc.feeds.poll_now()

        async def three() -> bool:
            return len(await svc.programme.items(ids.session_id, kind="social")) >= 3

        await eventually(three, what="three statuses")
        items = {i.author: i for i in await svc.programme.items(ids.session_id, kind="social")}
        clip = items["Ana"].html
        assert re.search(
            r'<img class="social-image" src="/media/[A-Za-z0-9_-]+" alt="The speaker on stage"', clip
        )
        assert re.search(
            r'<a class="social-media-link" href="http://127\.0\.0\.1:\d+/img/v\d+\.mp4"[^>]*>Video', clip
        )
        poll = items["Bo"].html
        assert "Security" in poll and "3 votes" in poll and "Data" in poll and "5 votes" in poll
        quote = items["Cy"].html
        assert "The original point" in quote and "Ivo" in quote and 'class="social-quote"' in quote
    finally:
        await svc.close()


async def test_media_marked_sensitive_is_shown_only_on_request(fake: FakeNetworks, tmp_path: Path) -> None:
    """mastodon.social's recorded image post is marked sensitive (Mastodon hides its picture
    behind a click) and its recorded audio post is not: ours, once copied to /media/, is behind
    a <details> the reader opens, and the other is shown as before."""
    recorded = [ex.json() for ex in load("mastodon/test_entity_mediaattachment.yaml")]
    audio, image = recorded
    assert image["sensitive"] is True and audio["sensitive"] is False
    shown = []
    for post in await _read_as_tag_timeline(
        fake, tmp_path, recorded
    ):  # as stored once the pictures are fetched: each medium has our copy
        media = tuple({**m, "local": f"/media/copy{i}"} for i, m in enumerate(post.media))
        shown.append(render_post(dataclasses.replace(post, media=media)))
    audio_html, image_html = shown
    hidden = re.search(
        r'<details class="social-sensitive"><summary>([^<]+)</summary>(.*?)</details>', image_html, re.S
    )
    assert hidden and "sensitive" in hidden.group(1).lower(), image_html
    assert re.search(r'<img class="social-image" src="/media/copy0" alt="furry cube"', hidden.group(2))
    assert image_html.count("<img") == 1  # no second copy outside it
    assert "<details" not in audio_html and 'src="/media/copy0"' in audio_html


async def test_a_quote_shown_with_its_post_leaves_out_the_re_line(fake: FakeNetworks, tmp_path: Path) -> None:
    """Mastodon 4.4+ writes "RE: <the quoted post's address>" into a quoting status's content (in a
    `quote-inline` element) for clients that cannot show quotes, and hides it where it shows the
    quote: so do we, since our card shows the quote. A link a remote server shortened in its text
    ("bsky.app/profile/h4lc...", from Bridgy Fed) is kept as its address."""
    quoting = next(ex.json() for ex in load("mastodon/test_entity_quote.yaml") if ex.method == "GET")
    posted = [ex.json() for ex in load("mastodon/test_status_post_with_quote.yaml") if ex.method == "POST"]
    local = posted[1]  # a Mastodon 4.6 development server: <p class="quote-inline">RE: …</p><p>yoooooooo</p>
    bridged, mine = await _read_as_tag_timeline(fake, tmp_path, [quoting, local])
    assert bridged.text == (
        "actual reply that quotes a post that quotes a post "
        "https://bsky.app/profile/h4lcy.bsky.social/post/3lwlumdwf522i"
    )
    assert bridged.quote["url"].startswith("https://bsky.brid.gy/r/")
    assert mine.text == "yoooooooo" and mine.quote["text"] == "Toot!"
    assert mine.relation["quote_of"] == posted[0]["id"]
    # A quote we cannot show (pending: its author has not agreed) keeps the line, its only trace.
    pending = parse_status(
        {**quoting, "quote": {"state": "pending", "quoted_status": None}}, "https://m.example", 500
    )
    assert pending is not None
    assert pending.text.endswith(
        "RE: https://bsky.app/profile/did:plc:5syfqzormjkutgo5hi2u2gpr/post/3lwlumdwf522i"
    )

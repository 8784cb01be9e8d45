"""Mastodon, Bluesky (Jetstream) and RSS sources against the loopback fakes, and a failing
source leaving notes and the other sources alone."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from liveblog.capture.notes import Author
from liveblog.capture.programme import Programme
from liveblog.demo.fakes import Failure, FakeNetworks, serve_fakes
from liveblog.services import Services
from tests.conftest import Seed, eventually, make_settings, seed


@pytest.fixture
async def fake() -> AsyncIterator[FakeNetworks]:
    async with serve_fakes() as fakes:
        yield fakes


def settings_for(tmp_path: Path, fake: FakeNetworks, **sections: dict[str, Any]) -> Any:
    base: dict[str, dict[str, Any]] = {
        "feeds": {
            "moderate_by_default": False,
            "fetch_media": False,
            "backoff_max_seconds": 0.2,
            "request_timeout_seconds": 2.0,
            "allow_private_addresses": True,
        },  # the fakes are on loopback
        "feeds_x": {"enabled": False},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return make_settings(tmp_path, **base)


@pytest.fixture
async def running(
    request: pytest.FixtureRequest, tmp_path: Path, fake: FakeNetworks
) -> AsyncIterator[tuple[Services, Seed]]:
    sections = request.param(fake) if callable(request.param) else {}
    svc = Services.build(settings_for(tmp_path, fake, **sections))
    await svc.open()
    try:
        yield svc, await seed(svc)
    finally:
        await svc.close()


def mastodon(fake: FakeNetworks) -> dict[str, Any]:
    return {"feeds_mastodon": {"instances": [fake.base_url], "poll_seconds": 3600.0, "limit": 5}}


def jetstream(fake: FakeNetworks) -> dict[str, Any]:
    return {
        "feeds_bluesky": {
            "jetstream_url": fake.base_url.replace("http", "ws") + "/subscribe",
            "rewind_seconds": 2.0,
            "cdn_base": fake.base_url,
            "appview_url": fake.base_url,
        }
    }


def everything(fake: FakeNetworks) -> dict[str, Any]:
    return {
        **mastodon(fake),
        **jetstream(fake),
        "feeds_rss": {"urls": [fake.base_url + "/feed.rss"], "poll_seconds": 3600.0},
    }


async def items_of(svc: Services, session_id: str, network: str | None = None) -> list[Any]:
    items = await svc.programme.items(session_id, kind="social")
    return [i for i in items if network is None or i.data["network"] == network]


def source(svc: Services, network: str) -> Any:
    return next(s for s in svc.feeds.sources if s.network == network)


# -- Mastodon ----------------------------------------------------------------------------------


@pytest.mark.parametrize("running", [mastodon], indirect=True)
async def test_mastodon_pages_forward_with_min_id_and_link(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    svc.feeds.poll_now()
    await eventually(lambda: fake.mastodon_requests, what="a first look at the tag")
    first = [
        fake.add_status(
            f"u{i}@social.example",
            f"U {i}",
            f'<p>Point {i} <a href="https://social.example/tags/test">#<span>test</span></a></p>',
            ["test"],
        )
        for i in range(12)
    ]
    svc.feeds.poll_now()
    await eventually(lambda: _n(svc, ids.session_id, 12), what="12 statuses")
    asked = [p for _, p in fake.mastodon_requests]
    # Nothing was there at the first look, so no cursor: the next poll reads back from the newest
    # through the Link header's rel="next" pages (max_id) to the collecting window.
    assert "min_id" not in asked[0] and "min_id" not in asked[1]
    assert [p for p in asked[2:5] if "max_id" in p]
    items = await items_of(svc, ids.session_id)
    assert {i.data["post_id"].rsplit("/", 1)[1] for i in items} == set(first)
    assert all("<span>" not in i.html and "#test" in i.body for i in items)
    later = [
        fake.add_status(f"late{i}@other.example", "Late", f"<p>More {i} #test</p>", ["test"])
        for i in range(7)
    ]
    before = len(fake.mastodon_requests)
    svc.feeds.poll_now()
    await eventually(lambda: _n(svc, ids.session_id, 19), what="seven more")
    forward = [p for _, p in fake.mastodon_requests[before:]]
    assert forward[0]["min_id"] == max(first, key=int)  # since the newest seen...
    assert forward[1]["min_id"] == later[4]  # ...then the Link header's rel="prev" page forward
    items = await items_of(svc, ids.session_id)
    assert len({i.data["post_id"] for i in items}) == len(items) == 19


async def _n(svc: Services, session_id: str, n: int, network: str | None = None) -> bool:
    return len(await items_of(svc, session_id, network)) >= n


@pytest.mark.parametrize("running", [mastodon], indirect=True)
async def test_mastodon_429_and_bad_answers_lose_nothing(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    fake.add_status("a@social.example", "A", "<p>first #test</p>", ["test"])
    fake.fail_next["mastodon"].extend([Failure("html"), Failure("malformed"), Failure("500")])
    svc.feeds.poll_now()
    await eventually(lambda: _n(svc, ids.session_id, 1), what="the status once the instance recovers")
    assert source(svc, "mastodon").status.last_error
    fake.fail_next["mastodon"].append(Failure("429", reset_in=1.0))
    fake.add_status("b@social.example", "B", "<p>second #test</p>", ["test"])
    before = len(fake.mastodon_requests)
    svc.feeds.poll_now()
    await eventually(lambda: source(svc, "mastodon").status.state == "waiting", what="waiting for the reset")
    limited_at = fake.mastodon_requests[before][0]
    await eventually(lambda: _n(svc, ids.session_id, 2), what="the second status after the reset")
    assert fake.mastodon_requests[before + 1][0] >= fake.last_429_reset > limited_at
    assert len(await items_of(svc, ids.session_id)) == 2  # and nothing twice


# -- Bluesky -------------------------------------------------------------------------------------


@pytest.mark.parametrize("running", [jetstream], indirect=True)
async def test_jetstream_resumes_after_a_drop_with_nothing_lost_or_repeated(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    svc.feeds.poll_now()
    await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
    # Posts, and (with resolving on) profile records to follow the authors' names.
    assert fake.jetstream_connections[0]["wantedCollections"] == "app.bsky.feed.post,app.bsky.actor.profile"
    fake.jetstream_drop_after = 3  # the socket drops after three frames
    sent = [fake.add_skeet(f"did:plc:user{i % 3}", f"Skeet {i} #test", ["test"]) for i in range(3)]
    fake.add_skeet("did:plc:other", "Not ours #elsewhere", ["elsewhere"])
    sent += [fake.add_skeet(f"did:plc:user{i % 3}", f"Skeet {i} #Test", ["Test"]) for i in range(3, 8)]
    await eventually(lambda: len(fake.jetstream_connections) >= 2, what="a reconnect")
    resumed = fake.jetstream_connections[1]
    assert int(resumed["cursor"]) <= sent[2]["time_us"]  # rewound: from before the last one handled
    await eventually(lambda: _n(svc, ids.session_id, 8), what="all eight posts")
    items = await items_of(svc, ids.session_id)
    uris = [i.data["post_id"] for i in items]
    assert len(uris) == len(set(uris)) == 8  # the rewind's repeats were stored once
    assert set(uris) == {f"at://{e['did']}/app.bsky.feed.post/{e['commit']['rkey']}" for e in sent}


# Frames of the wrong shape: each is counted and skipped, and the stream carries on after them.
JETSTREAM_JUNK = [
    "not json",
    "[1,2,3]",
    json.dumps({"kind": "commit"}),
    json.dumps({"did": 5, "time_us": "x"}),
    json.dumps(
        {
            "did": "did:plc:x",
            "time_us": 1,
            "kind": "commit",
            "commit": {
                "collection": "app.bsky.feed.post",
                "operation": "create",
                "rkey": "a/b",
                "record": "nope",
            },
        }
    ),
    json.dumps(
        {
            "did": "did:plc:x",
            "time_us": 2,
            "kind": "commit",
            "commit": {
                "collection": "app.bsky.feed.post",
                "operation": "create",
                "rkey": "3k",
                "record": {
                    "text": ["list"],
                    "facets": "x",
                    "embed": {"$type": "app.bsky.embed.images", "images": [7]},
                },
            },
        }
    ),
]


def jetstream_with_junk(fake: FakeNetworks) -> dict[str, Any]:
    """Jetstream, with the junk queued on the fake before the services (and so the source) start:
    the fake sends it first on the next connection, and the source may connect as soon as the
    services open (sooner than the test body runs, on a slow seed such as PostgreSQL's)."""
    fake.jetstream_junk = list(JETSTREAM_JUNK)
    return jetstream(fake)


@pytest.mark.parametrize("running", [jetstream_with_junk], indirect=True)
async def test_jetstream_survives_frames_of_the_wrong_shape_and_huge_posts(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    svc.feeds.poll_now()
    await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
    big = fake.add_skeet("did:plc:big", "#test " + "x" * 1_000_000, ["test"])
    fake.add_skeet("did:plc:fine", "Still fine #test", ["test"], image_alt="A chart")
    await eventually(lambda: _n(svc, ids.session_id, 1), what="the post after the junk")
    await eventually(
        lambda: len(fake.jetstream_connections) >= 1 and source(svc, "bluesky").bad_frames >= 4,
        what="junk counted",
    )
    items = await items_of(svc, ids.session_id)
    fine = next(i for i in items if i.data["handle"] == "did:plc:fine")
    assert "A chart" in fine.html  # fetching is off here: the image is a link with its alt text
    huge = [i for i in items if i.data["post_id"].endswith(big["commit"]["rkey"])]
    # A 1 MB post is either cut to feeds.max_post_chars or dropped with its frame; never the server.
    assert all(len(i.body) <= 5000 for i in huge)


# -- RSS and isolation -------------------------------------------------------------------------


@pytest.mark.parametrize("running", [everything], indirect=True)
async def test_a_failing_source_leaves_notes_and_other_sources_alone(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    fake.fail_next["mastodon"].extend(Failure("500") for _ in range(1000))  # a storm of 500s
    fake.fail_next["rss"].append(Failure("html"))
    svc.feeds.poll_now()
    await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
    fake.add_status("m@social.example", "M", "<p>lost in the storm #test</p>", ["test"])
    fake.add_skeet("did:plc:sky", "From the sky #test", ["test"])
    fake.add_rss_item("Our write-up", "What we learnt at #test", ["test"])
    await eventually(lambda: _n(svc, ids.session_id, 1, "bluesky"), what="the Bluesky post")
    svc.feeds.poll_now()
    await eventually(lambda: _n(svc, ids.session_id, 1, "rss"), what="the RSS entry once its feed recovers")
    await eventually(lambda: len(fake.mastodon_requests) >= 3, what="Mastodon retrying with back-off")
    assert source(svc, "mastodon").status.state == "failing"
    ack = await svc.notes.handle(
        ids.session_id,
        Author(name="Ada", ref=ids.invite_id),
        {"type": "note.create", "client_id": str(uuid.uuid4()), "body": "Notes carry on"},
    )
    assert ack.seq > 0
    rss = (await items_of(svc, ids.session_id, "rss"))[0]
    assert (
        rss.author == "Blog Author"
        and "What we learnt" in rss.body
        and rss.data["url"].startswith("https://blog.example/")
    )
    health = svc.health()
    assert health["ok"] and health["components"]["feeds"]["sources"]
    status = await svc.feeds.panel.status(ids.event_id)
    assert {s["network"]: s["state"] for s in status["sources"]}["mastodon"] == "failing"


def jetstream_forgetting(fake: FakeNetworks) -> dict[str, Any]:
    return {**jetstream(fake), "feeds": {"keep_deleted": False}}


@pytest.mark.parametrize("running", [jetstream, jetstream_forgetting], indirect=True)
async def test_a_post_deleted_upstream_is_kept_or_removed_as_configured(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    svc.feeds.poll_now()
    await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
    skeet = fake.add_skeet("did:plc:regret", "I take it back #test", ["test"])
    await eventually(lambda: _n(svc, ids.session_id, 1), what="the post")
    fake.add_skeet("did:plc:regret", "", [], operation="delete", rkey=skeet["commit"]["rkey"])
    uri = f"at://did:plc:regret/app.bsky.feed.post/{skeet['commit']['rkey']}"

    async def marked() -> bool:
        routes = await svc.db.read(lambda r: r.list_social_routes(session_id=ids.session_id))
        return bool(routes) and routes[0].deleted_upstream

    await eventually(marked, what="the deletion noted")
    items = await items_of(svc, ids.session_id)
    routes = await svc.db.read(lambda r: r.list_social_routes(session_id=ids.session_id))
    assert routes[0].post.post_id == uri
    if svc.settings.feeds.keep_deleted:
        assert len(items) == 1 and routes[0].state == "approved"  # our copy stays in the archive
    else:
        assert items == [] and routes[0].state == "removed"


class CrashingSource:
    """A source with a bug: its first run raises; the second collects."""

    network = "crashy"

    def __init__(self) -> None:
        from liveblog.capture.feeds.base import SourceStatus

        self.status = SourceStatus(network="crashy", name="test")
        self.runs = 0

    async def run(self, feed: Any) -> None:
        import asyncio

        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("a bug in the poller")
        self.status.set("running")
        await asyncio.Event().wait()  # runs until cancelled

    async def close(self) -> None:
        return None


async def test_a_crashed_poller_is_restarted_and_reported(tmp_path: Path, fake: FakeNetworks) -> None:
    svc = Services.build(settings_for(tmp_path, fake))
    crashy = CrashingSource()
    svc.feeds.use_sources([crashy])
    await svc.open()
    try:
        await eventually(lambda: crashy.runs >= 2 and crashy.status.state == "running", what="a restart")
        assert crashy.status.restarts == 1 and "a bug in the poller" in crashy.status.last_error
        health = svc.health()
        task = next(v for k, v in health["tasks"].items() if k.startswith("feeds.crashy"))
        assert task["failures"] == 1 and task["state"] == "running"
        assert health["components"]["feeds"]["sources"]["crashy:test"]["restarts"] == 1
    finally:
        await svc.close()


# -- a new hashtag is listened for at once -----------------------------------------------------


async def _collecting_event(svc: Services, tag: str, programme: Programme | None = None) -> str:
    """An organiser creates an event with a new hashtag and sets its session live (no "Poll now")."""
    programme = programme or svc.programme
    event = await programme.create_event(
        {"title": f"Event {tag}", "starts_on": "2026-05-14", "ends_on": "2026-05-15", "hashtags": [f"#{tag}"]}
    )
    session = await programme.create_session(
        event.id, {"title": "Opening", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00"}
    )
    await programme.set_state(session.id, "live")
    return session.id


# Well under the reader's 30 s idle check and its 5 s refresh while streaming: only a wake passes.
WOKEN_WITHIN = 4.0


async def _reading(svc: Services, ids: Seed, fake: FakeNetworks) -> None:
    """The reader connected and collecting the running event's #test (a first post stored)."""
    svc.feeds.poll_now()
    await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
    fake.add_skeet("did:plc:first", "Already collecting #test", ["test"])
    await eventually(lambda: _n(svc, ids.session_id, 1), what="a post of the running event")


@contextlib.asynccontextmanager
async def idle_reader(tmp_path: Path, fake: FakeNetworks) -> AsyncIterator[Services]:
    """Services with nothing collecting yet: the reader is idle, without a socket."""
    svc = Services.build(settings_for(tmp_path, fake, **jetstream(fake)))
    await svc.open()
    try:
        await eventually(lambda: source(svc, "bluesky").status.state == "idle", what="an idle reader")
        yield svc
    finally:
        await svc.close()


async def test_an_idle_jetstream_reader_listens_for_a_new_events_hashtag_at_once(
    tmp_path: Path, fake: FakeNetworks
) -> None:
    async with idle_reader(tmp_path, fake) as svc:
        session_id = await _collecting_event(svc, "freshtag")
        # Posted at once, maybe before the reader connects: it resumes from before the hashtag
        # was added, not from the moment it connects.
        skeet = fake.add_skeet("did:plc:early", "First post #freshtag", ["freshtag"])
        await eventually(
            lambda: _n(svc, session_id, 1), timeout=WOKEN_WITHIN, what="the post, without Poll now"
        )
        items = await items_of(svc, session_id)
        assert items[0].data["post_id"].endswith(skeet["commit"]["rkey"])


@pytest.mark.parametrize("running", [jetstream], indirect=True)
async def test_a_streaming_jetstream_reader_takes_a_new_events_hashtag_at_once(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    await _reading(svc, ids, fake)
    session_id = await _collecting_event(svc, "secondtag")
    fake.add_skeet("did:plc:second", "Hello #secondtag", ["secondtag"])
    await eventually(
        lambda: _n(svc, session_id, 1), timeout=WOKEN_WITHIN, what="the new event's post, without Poll now"
    )
    assert len(await items_of(svc, ids.session_id)) == 1  # and the first event's stays its own


@pytest.mark.parametrize("running", [jetstream], indirect=True)
async def test_jetstream_reads_again_what_it_passed_over_before_a_late_wake(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    """With several processes the wake comes through Redis, after the hashtag was stored: posts
    read meanwhile were filtered without it, and are read again from before it was added."""
    svc, ids = running
    await _reading(svc, ids, fake)
    other_process = Programme(svc.db)  # stores the event; its wake has not arrived yet
    session_id = await _collecting_event(svc, "latetag", other_process)
    early = fake.add_skeet("did:plc:early", "Passed over #latetag", ["latetag"])
    fake.add_skeet("did:plc:first", "More #test", ["test"])
    await eventually(lambda: _n(svc, ids.session_id, 2), what="the post after it: the first one was read")
    svc.feeds.poll_now()  # the wake arrives
    fake.add_skeet("did:plc:first", "Still more #test", ["test"])
    await eventually(lambda: _n(svc, session_id, 1), timeout=WOKEN_WITHIN, what="the passed-over post")
    items = await items_of(svc, session_id)
    assert [i.data["post_id"].rsplit("/", 1)[1] for i in items] == [early["commit"]["rkey"]]
    assert len(await items_of(svc, ids.session_id)) == 3  # the replay stored nothing twice


async def test_an_imported_programme_wakes_the_jetstream_reader(tmp_path: Path, fake: FakeNetworks) -> None:
    async with idle_reader(tmp_path, fake) as svc:
        # The event and its hashtag exist; nothing collects until its programme is imported.
        event = await Programme(svc.db).create_event(
            {
                "title": "Imported",
                "starts_on": "2026-05-14",
                "ends_on": "2026-05-14",
                "hashtags": ["#importtag"],
            }
        )
        now = datetime.now(UTC)
        ics = "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//test//EN",
                "BEGIN:VEVENT",
                "UID:opening@test",
                f"DTSTART:{(now - timedelta(minutes=5)):%Y%m%dT%H%M%SZ}",
                f"DTEND:{(now + timedelta(minutes=55)):%Y%m%dT%H%M%SZ}",
                "SUMMARY:Opening",
                "END:VEVENT",
                "END:VCALENDAR",
                "",
            ]
        )
        plan = await svc.imports.apply(event.id, ics.encode(), "programme.ics")
        assert len(plan.creates) == 1
        fake.add_skeet("did:plc:early", "Imported and posting #importtag", ["importtag"])

        async def routed() -> bool:
            return bool(await svc.db.read(lambda r: r.list_social_routes(event_id=event.id)))

        await eventually(routed, timeout=WOKEN_WITHIN, what="the post, without Poll now")


@pytest.mark.parametrize("running", [jetstream], indirect=True)
async def test_a_hashtag_added_to_an_event_is_listened_for_at_once(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    await _reading(svc, ids, fake)
    await svc.programme.update_event(ids.event_id, {"hashtags": ["#test", "#edited"]})
    fake.add_skeet("did:plc:second", "Under the new tag #edited", ["edited"])
    await eventually(lambda: _n(svc, ids.session_id, 2), timeout=WOKEN_WITHIN, what="the edited tag's post")

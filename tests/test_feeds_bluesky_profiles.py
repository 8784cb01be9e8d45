"""Bluesky authors named by handle and display name: Jetstream gives only a DID, so the source
asks the AppView's app.bsky.actor.getProfiles (the fake on loopback speaks its JSON), batched and
cached, without ever holding up ingest; the stored copy and the stream item are renamed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from liveblog.capture.feeds.profiles import ProfileResolver
from liveblog.demo.fakes import Failure, FakeNetworks, serve_fakes
from liveblog.services import Services
from tests.conftest import BACKENDS, Seed, eventually, seed
from tests.conftest import settings_for as backend_settings
from tests.test_feeds_sources import items_of, jetstream, settings_for, source

ANA, BO, GHOST = "did:plc:ana4xq2tsuk7mlvp", "did:plc:bo2nd9cz0l1ktqzs", "did:plc:ghost00000000000"


@pytest.fixture
async def fake() -> AsyncIterator[FakeNetworks]:
    async with serve_fakes() as fakes:
        yield fakes


@pytest.fixture
async def running(tmp_path: Path, fake: FakeNetworks) -> AsyncIterator[tuple[Services, Seed]]:
    svc = Services.build(settings_for(tmp_path, fake, **jetstream(fake)))
    await svc.open()
    try:
        yield svc, await seed(svc)
    finally:
        await svc.close()


async def authors(svc: Services, session_id: str) -> dict[str, tuple[str, str]]:
    items = await items_of(svc, session_id, "bluesky")
    return {i.data["post_id"].split("/")[2]: (i.data["handle"], i.author) for i in items}


async def test_dids_become_handles_and_names_in_storage_and_stream(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    fake.add_profile(ANA, "ana.bsky.social", "Ana Lima")
    fake.add_profile(BO, "bo.example.org")  # no display name: the handle stands in
    svc.feeds.poll_now()
    await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
    for did, text in ((ANA, "First from Ana #test"), (BO, "Bo here #test"), (GHOST, "Who am I #test")):
        fake.add_skeet(did, text, ["test"])

    async def renamed() -> bool:
        found = await authors(svc, ids.session_id)
        return found.get(ANA) == ("ana.bsky.social", "Ana Lima") and found.get(BO) == (
            "bo.example.org",
            "bo.example.org",
        )

    await eventually(renamed, what="Ana and Bo named by handle and name")
    found = await authors(svc, ids.session_id)
    assert found[GHOST] == (GHOST, GHOST)  # the AppView does not know it: it keeps its DID
    # One call for the burst (at most 25 actors), and the stored copy is renamed too.
    assert len(fake.profile_requests) == 1 and set(fake.profile_requests[0]) == {ANA, BO, GHOST}
    routes = await svc.db.read(lambda r: r.list_social_routes(session_id=ids.session_id))
    stored = {r.post.post_id.split("/")[2]: (r.post.author_handle, r.post.author_name) for r in routes}
    assert stored[ANA] == ("ana.bsky.social", "Ana Lima")
    items = await items_of(svc, ids.session_id, "bluesky")
    ana = next(i for i in items if i.data["post_id"].startswith(f"at://{ANA}/"))
    assert (
        "Ana Lima" in ana.html and "ana.bsky.social" in ana.html and ana.version == 2
    )  # an item.updated change
    # Ana's next post carries her name from the cache: no new request for her.
    fake.add_skeet(ANA, "Second from Ana #test", ["test"])

    async def second() -> list[Any]:
        items = await items_of(svc, ids.session_id, "bluesky")
        return [i for i in items if "Second from Ana" in i.body]

    [again] = await eventually(second, what="Ana's second post")
    assert again.author == "Ana Lima" and again.data["handle"] == "ana.bsky.social" and again.version == 1
    assert all(ANA not in r for r in fake.profile_requests[1:])


async def test_an_appview_that_fails_or_stalls_never_holds_up_posts(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    fake.add_profile(ANA, "ana.bsky.social", "Ana Lima")
    fake.fail_next["appview"].extend([Failure("stall", seconds=30), Failure("500"), Failure("html")])
    svc.feeds.poll_now()
    await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
    fake.add_skeet(ANA, "Stored while the AppView is stuck #test", ["test"])
    # The post is stored and in the stream under its DID while the AppView stalls...
    await eventually(lambda: _named(svc, ids.session_id, ANA), what="the post, named by its DID")
    # ...and renamed once it answers, after the time limit and the back-off.
    await eventually(lambda: _named(svc, ids.session_id, "Ana Lima"), timeout=20, what="the post renamed")
    assert source(svc, "bluesky").profiles.failures >= 3


async def test_authors_left_as_dids_are_resolved_after_a_restart(tmp_path: Path, fake: FakeNetworks) -> None:
    # No rewind: on restart Jetstream resumes after the last post stored, so Ana's post is not
    # seen again (as for any post older than the rewind in production).
    sources = jetstream(fake)
    sources["feeds_bluesky"]["rewind_seconds"] = 0.0
    settings = settings_for(tmp_path, fake, **sources)
    svc = Services.build(settings)
    await svc.open()
    try:
        ids = await seed(svc)
        svc.feeds.poll_now()
        await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
        fake.add_profile(BO, "bo.example.org", "Bo")
        fake.add_skeet(ANA, "Before the restart #test", ["test"])  # the AppView does not know Ana yet
        fake.add_skeet(BO, "A later post moves the cursor past Ana's #test", ["test"])
        await eventually(lambda: _named(svc, ids.session_id, "Bo"), what="Bo's post, named")
        assert await _named(svc, ids.session_id, ANA)  # Ana's, still named by its DID
    finally:
        await svc.close()
    fake.add_profile(ANA, "ana.bsky.social", "Ana Lima")
    svc = Services.build(settings)  # the same database: Jetstream resumes past the post
    await svc.open()
    try:
        svc.feeds.poll_now()
        await eventually(lambda: _named(svc, ids.session_id, "Ana Lima"), timeout=20, what="the post renamed")
    finally:
        await svc.close()


async def test_an_author_rule_made_on_a_did_still_holds_once_the_handle_is_known(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    await svc.feeds.moderation.add_rule(
        ids.event_id, "block_author", f"bluesky:{ANA}", "test"
    )  # as first seen
    fake.add_profile(ANA, "ana.bsky.social", "Ana Lima")
    svc.feeds.poll_now()
    await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
    fake.add_skeet(ANA, "Spam one #test", ["test"])
    fake.add_skeet(BO, "Bo one #test", ["test"])
    await eventually(lambda: source(svc, "bluesky").profiles.known(ANA), what="Ana resolved")
    fake.add_skeet(ANA, "Spam two #test", ["test"])  # now stored under her handle...
    fake.add_skeet(BO, "Bo two #test", ["test"])
    await eventually(lambda: _count(svc, ids.session_id, 2), what="Bo's two posts")
    assert all(not i.body.startswith("Spam") for i in await items_of(svc, ids.session_id, "bluesky"))
    routes = await svc.db.read(lambda r: r.list_social_routes(session_id=ids.session_id))
    spam = [r for r in routes if r.post.text.startswith("Spam")]
    # ...and still blocked by the rule on her DID.
    assert [(r.state, r.post.author_handle) for r in spam] == [("rejected", "ana.bsky.social")] * 2


async def _count(svc: Services, session_id: str, n: int) -> bool:
    return len(await items_of(svc, session_id, "bluesky")) >= n


async def _named(svc: Services, session_id: str, author: str) -> bool:
    return any(i.author == author for i in await items_of(svc, session_id, "bluesky"))


async def test_the_resolver_batches_by_25_and_ignores_junk(fake: FakeNetworks) -> None:
    dids = [f"did:plc:user{i:020d}" for i in range(30)]
    for i, did in enumerate(dids):
        fake.add_profile(did, f"user{i}.bsky.social", f"User {i}")
    fake.add_profile("did:plc:gone000000000000000", "handle.invalid", "Gone")
    resolver = ProfileResolver(fake.base_url, timeout=2.0, backoff_max=0.1, allow_private=True)
    renamed: dict[str, tuple[str, str]] = {}
    done = asyncio.Event()

    async def rename(did: str, handle: str, name: str) -> None:
        renamed[did] = (handle, name)
        if len(renamed) == 31:
            done.set()

    task = asyncio.create_task(resolver.run(rename))
    try:
        for did in [*dids, "did:plc:gone000000000000000", *dids[:3]]:  # asked twice: once in a call
            resolver.want(did)
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        task.cancel()
        await resolver.close()
    assert [len(r) for r in fake.profile_requests] == [25, 6]
    assert renamed[dids[7]] == ("user7.bsky.social", "User 7")
    assert renamed["did:plc:gone000000000000000"] == (
        "did:plc:gone000000000000000",
        "Gone",
    )  # no valid handle
    assert resolver.known(dids[0]) == ("user0.bsky.social", "User 0")
    # Junk from the AppView is a failure (retried later) or nothing found, never a crash or a wrong name.
    fake.fail_next["appview"].extend([Failure("malformed"), Failure("wrong_shape")])
    again = ProfileResolver(fake.base_url, timeout=2.0, backoff_max=0.1, allow_private=True)
    try:
        with pytest.raises(ValueError):
            await again.fetch([dids[0]])
        assert await again.fetch([dids[0]]) == {}
    finally:
        await again.close()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_resolved_authors_avatar_is_copied_to_our_media(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, fake: FakeNetworks
) -> None:
    settings = backend_settings(
        request,
        tmp_path,
        backend,
        **jetstream(fake),
        feeds_x={"enabled": False},
        feeds={"allow_private_addresses": True, "fetch_media": True, "moderate_by_default": False},
    )
    svc = Services.build(settings)
    await svc.open()
    try:
        ids = await seed(svc)
        fake.add_profile(ANA, "ana.bsky.social", "Ana Lima")
        svc.feeds.poll_now()
        await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
        fake.add_skeet(ANA, "First from Ana #test", ["test"])

        async def pictured(n: int) -> bool:
            items = await items_of(svc, ids.session_id, "bluesky")
            return len(items) >= n and all('class="social-avatar" src="/media/' in i.html for i in items)

        # Stored with the DID, then renamed: the avatar the AppView names comes with the name.
        await eventually(lambda: pictured(1), what="Ana's avatar, our copy, on her first post")
        fake.add_skeet(ANA, "Second from Ana #test", ["test"])  # known by now: stored with it at once
        await eventually(lambda: pictured(2), what="Ana's avatar on her second post")
        routes = await svc.db.read(lambda r: r.list_social_routes(session_id=ids.session_id))
        assert all(
            r.post.avatar_local.startswith("/media/") and r.post.avatar_url.startswith(fake.base_url)
            for r in routes
        )
    finally:
        await svc.close()


async def test_a_profile_change_renames_the_authors_posts(
    running: tuple[Services, Seed], fake: FakeNetworks
) -> None:
    svc, ids = running
    fake.add_profile(ANA, "ana.bsky.social", "Ana Lima")
    svc.feeds.poll_now()
    await eventually(lambda: fake.jetstream_connections, what="a Jetstream connection")
    fake.add_skeet(ANA, "First from Ana #test", ["test"])
    await eventually(lambda: _named(svc, ids.session_id, "Ana Lima"), what="Ana named")
    # Ana changes her display name: Jetstream carries her app.bsky.actor.profile record.
    fake.update_profile(ANA, "Ana L. Silva")
    await eventually(lambda: _named(svc, ids.session_id, "Ana L. Silva"), what="Ana's new name on her post")
    assert fake.jetstream_connections[-1]["wantedCollections"] == "app.bsky.feed.post,app.bsky.actor.profile"

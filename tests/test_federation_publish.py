"""Publishing to followers (docs/federation.md): notes, key points and photos as Create(Note),
edits as Update, deletes and moderation as Delete with a Tombstone (the text never sent once
removed), the event's announcements, the paged outbox, and the durable delivery queue
(retries, dead servers, one job per shared inbox)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from liveblog.capture.notes import Author
from liveblog.federation.delivery import DELIVERIES_PER_HOST
from liveblog.federation.delivery import Delivery as Publisher
from liveblog.services import Services
from tests.archive_fixtures import social_post
from tests.conftest import FAST_HASHER, eventually, query, run_server, seed, settings_for
from tests.fediverse_peer import AP_JSON, Delivery, running_peer
from tests.test_federation_follow import World, make_world


@pytest.fixture
async def world(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> AsyncIterator[World]:
    async for w in make_world(request, tmp_path, backend):
        delivery = w.live.services.delivery
        assert delivery is not None
        delivery.retry_base_seconds = 0.2  # retries within the test's patience
        delivery.idle_seconds = 0.1
        yield w


async def followed(world: World, *names: str) -> None:
    for name in names:
        world.peer.add(name)
        answer = await world.peer.post(world.inbox, world.follow(name), as_=name)
        assert answer.status_code == 202, answer.text
    await eventually(lambda: sum(d.activity["type"] == "Accept" for d in world.peer.received) == len(names))


async def ada(world: World) -> Author:
    invite = await world.live.services.accounts.invite_for_token(world.seed.token)
    assert invite is not None
    return Author.from_invite(invite)


async def write(world: World, message: dict[str, Any]) -> int:
    ack = await world.live.services.notes.handle(
        world.seed.session_id, await ada(world), {"client_id": str(uuid.uuid4()), **message}
    )
    return ack.item_id


async def queue_empty(world: World) -> None:
    async def empty() -> bool:
        return await query(world.live.services.db, "SELECT count(*) FROM federation_deliveries") == [(0,)]

    await eventually(empty, 10, "the delivery queue to empty")


async def arrivals(world: World, kind: str, count: int = 1) -> list[Delivery]:
    def enough() -> list[Delivery] | None:
        found = [d for d in world.peer.received if d.activity.get("type") == kind]
        return found if len(found) >= count else None

    return await eventually(enough, 10, f"{count} {kind} at the peer")  # type: ignore[no-any-return]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_note_its_edit_and_its_delete_reach_followers(world: World) -> None:
    await followed(world, "alice", "bob")  # two accounts on one server: one delivery each
    item_id = await write(
        world,
        {"type": "note.create", "body": "Retention is *everything* #growth #Metrics", "key_point": True},
    )
    (create,) = await arrivals(world, "Create")
    assert create.path == "/inbox"  # the shared inbox, once for both followers
    assert create.verified == "ok"
    note = create.activity["object"]
    base = world.live.url
    assert create.activity["actor"] == world.session_actor
    assert note["id"] == f"{base}/ap/notes/{item_id}"
    assert note["attributedTo"] == world.session_actor
    assert "<em>everything</em>" in note["content"] and "Key point" in note["content"]
    assert note["url"] == f"{base}/sessions/{world.seed.session_id}#item-{item_id}"
    assert note["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
    assert note["cc"] == [f"{world.session_actor}/followers"]
    assert note["tag"] == [
        {"type": "Hashtag", "href": f"{base}/tags/growth", "name": "#growth"},
        {"type": "Hashtag", "href": f"{base}/tags/metrics", "name": "#Metrics"},
    ]

    # The Note is where its id says, for servers that fetch it.
    async with world.live.client() as client:
        fetched = await client.get(f"/ap/notes/{item_id}", headers={"accept": AP_JSON})
    assert fetched.status_code == 200 and fetched.json()["content"] == note["content"]

    await write(world, {"type": "note.update", "item_id": item_id, "body": "Retention is what matters"})
    (update,) = await arrivals(world, "Update")
    assert update.activity["object"]["id"] == note["id"]
    assert "what matters" in update.activity["object"]["content"]
    assert update.activity["object"]["updated"]

    await write(world, {"type": "note.delete", "item_id": item_id})
    (delete,) = await arrivals(world, "Delete")
    assert delete.activity["object"] == {"id": note["id"], "type": "Tombstone"}
    assert delete.verified == "ok"
    async with world.live.client() as client:
        gone = await client.get(f"/ap/notes/{item_id}", headers={"accept": AP_JSON})
        outbox = (await client.get(f"{world.session_actor}/outbox", headers={"accept": AP_JSON})).json()
    assert gone.status_code == 410 and gone.json()["type"] == "Tombstone"
    assert outbox["totalItems"] == 0  # a deleted note leaves the outbox
    assert len(world.peer.received) == 2 + 3  # two Accepts, one Create, one Update, one Delete


async def test_photos_are_attachments_with_their_alt_text(world: World) -> None:
    await followed(world, "alice")
    await write(
        world, {"type": "note.create", "body": "The slide: ![a funnel chart](/media/0123456789abcdef)"}
    )
    (create,) = await arrivals(world, "Create")
    note = create.activity["object"]
    assert note["attachment"] == [
        {
            "type": "Document",
            "mediaType": "image/jpeg",
            "url": f"{world.live.url}/media/0123456789abcdef",
            "name": "a funnel chart",
        }
    ]
    assert "<img" not in note["content"]


async def test_social_posts_are_not_republished(world: World) -> None:
    await followed(world, "alice")
    await social_post(world.live.services, world.seed.session_id, "Someone else's words #test")
    marker = await write(world, {"type": "note.create", "body": "ours"})
    (create,) = await arrivals(world, "Create")
    assert create.activity["object"]["id"].endswith(f"/{marker}")  # only our note went out
    assert [d.activity["type"] for d in world.peer.received] == ["Accept", "Create"]


async def test_nothing_said_before_the_follow_is_sent(world: World) -> None:
    await write(world, {"type": "note.create", "body": "said to no one"})
    await followed(world, "alice")
    await write(world, {"type": "note.create", "body": "said to alice"})
    (create,) = await arrivals(world, "Create")
    assert "said to alice" in create.activity["object"]["content"]
    assert [d.activity["type"] for d in world.peer.received] == ["Accept", "Create"]


async def test_a_note_removed_before_its_delivery_is_never_sent(world: World) -> None:
    await followed(world, "alice")
    world.peer.down = True
    item_id = await write(world, {"type": "note.create", "body": "a secret said by mistake"})
    await eventually(lambda: world.peer.refused >= 1, 10, "a first try")  # the Create is queued, failing
    await write(world, {"type": "note.delete", "item_id": item_id})
    await eventually(
        lambda: world.live.services.delivery.published == 2,  # type: ignore[union-attr]
        10,
        "the Delete to be published",
    )
    rows = await query(
        world.live.services.db, "SELECT type, body FROM federation_activities WHERE type <> 'Accept'"
    )
    assert sorted(r[0] for r in rows) == ["Create", "Delete"]
    assert all("secret" not in r[1] for r in rows)  # the kept Create has lost its text
    world.peer.down = False
    (delete,) = await arrivals(world, "Delete")
    assert delete.activity["object"]["type"] == "Tombstone"
    assert [d.activity["type"] for d in world.peer.received] == ["Accept", "Delete"]
    await queue_empty(world)


async def test_failed_deliveries_are_tried_again_with_growing_pauses(world: World) -> None:
    await followed(world, "alice")
    world.peer.down = True
    await write(world, {"type": "note.create", "body": "patience"})

    async def tried_thrice() -> list[Any] | None:
        rows = await query(world.live.services.db, "SELECT attempts, last_error FROM federation_deliveries")
        return rows if rows and rows[0][0] >= 3 else None

    rows = await eventually(tried_thrice, 10, "three tries")
    assert "503" in rows[0][1]
    assert rows[0][0] <= world.peer.refused <= rows[0][0] + 1  # each try after its pause, none early
    world.peer.down = False
    (create,) = await arrivals(world, "Create")
    assert "patience" in create.activity["object"]["content"]
    await queue_empty(world)


async def test_a_server_is_sent_at_most_four_deliveries_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await followed(world, "alice")
    fed, delivery = world.live.services.federation, world.live.services.delivery
    assert fed is not None and delivery is not None
    slow = asyncio.Event()  # alice's server takes its time with each POST, until this is set
    at_once = [0, 0]  # now, most
    post_body = fed.post_body

    async def slow_server(inbox: str, signer: str, body: bytes) -> int:
        at_once[0] += 1
        at_once[1] = max(at_once)
        try:
            await slow.wait()
            return await post_body(inbox, signer, body)
        finally:
            at_once[0] -= 1

    monkeypatch.setattr(fed, "post_body", slow_server)
    for n in range(7):
        await write(world, {"type": "note.create", "body": f"Note {n}"})
    # Every delivery started, and only DELIVERIES_PER_HOST of them talking to the server (on
    # this loop: the others wait for a slot, or they would be at the server by now).
    await eventually(lambda: len(delivery._in_flight) == 7, 10, "seven deliveries started")
    assert at_once == [DELIVERIES_PER_HOST, DELIVERIES_PER_HOST]
    slow.set()
    await arrivals(world, "Create", 7)
    assert at_once[1] == DELIVERIES_PER_HOST == 4


async def test_a_server_failing_for_two_days_is_given_up_until_it_comes_back(world: World) -> None:
    delivery = world.live.services.delivery
    assert delivery is not None
    await followed(world, "alice")
    delivery.give_up_seconds = 0  # "two days" have passed at the first failure
    world.peer.down = True
    await write(world, {"type": "note.create", "body": "into the void"})
    host = world.peer.url.removeprefix("http://")

    async def given_up() -> bool:
        return await query(world.live.services.db, "SELECT host FROM federation_dead_hosts") == [(host,)]

    await eventually(given_up, 10, "the server to be given up")
    await write(world, {"type": "note.create", "body": "not even queued"})
    await eventually(lambda: delivery.published == 2, 10, "the second note to be published")
    assert await query(world.live.services.db, "SELECT count(*) FROM federation_deliveries") == [(0,)]

    # The server follows again (it is back): it is no longer skipped.
    world.peer.down = False
    await world.peer.post(world.inbox, world.follow("alice", 2), as_="alice")
    assert await query(world.live.services.db, "SELECT count(*) FROM federation_dead_hosts") == [(0,)]
    await write(world, {"type": "note.create", "body": "welcome back"})
    (create,) = await arrivals(world, "Create")
    assert "welcome back" in create.activity["object"]["content"]


async def test_the_event_announces_its_sessions_start_and_end(world: World) -> None:
    world.peer.add("carol")
    follow = {**world.follow("carol"), "object": f"{world.live.url}/ap/events/{world.seed.event_id}"}
    assert (await world.peer.post(f"{world.live.url}/ap/inbox", follow, as_="carol")).status_code == 202
    programme = world.live.services.programme
    await programme.set_state(world.seed.other_session_id, "live")
    (start,) = await arrivals(world, "Create")
    assert start.activity["actor"] == f"{world.live.url}/ap/events/{world.seed.event_id}"
    assert (
        "Starting now" in start.activity["object"]["content"]
        and "Workshop" in start.activity["object"]["content"]
    )
    await programme.set_state(world.seed.other_session_id, "ended")
    _, end = await arrivals(world, "Create", 2)
    assert f"/archive/sessions/{world.seed.other_session_id}" in end.activity["object"]["content"]
    # The session's own notes go to the session's followers only.
    await write(world, {"type": "note.create", "body": "for the session's followers"})
    async with world.live.client() as client:
        event_outbox = await client.get(
            f"/ap/events/{world.seed.event_id}/outbox?page=true", headers={"accept": AP_JSON}
        )
    assert [a["object"]["content"][:20] for a in event_outbox.json()["orderedItems"]] == [
        end.activity["object"]["content"][:20],
        start.activity["object"]["content"][:20],
    ]
    assert sum(d.activity["type"] == "Create" for d in world.peer.received) == 2


async def test_the_outbox_is_paged(world: World) -> None:
    await followed(world, "alice")
    for n in range(23):
        await write(world, {"type": "note.create", "body": f"note {n}"})
    await arrivals(world, "Create", 23)
    async with world.live.client(headers={"accept": AP_JSON}) as client:
        outbox = (await client.get(f"{world.session_actor}/outbox")).json()
        assert outbox["type"] == "OrderedCollection" and outbox["totalItems"] == 23
        first = (await client.get(outbox["first"])).json()
        second = (await client.get(first["next"])).json()
    assert first["type"] == "OrderedCollectionPage"
    assert len(first["orderedItems"]) == 20 and "note 22" in first["orderedItems"][0]["object"]["content"]
    assert [a["object"]["content"] for a in second["orderedItems"]] == [f"<p>note {n}</p>" for n in (2, 1, 0)]
    assert "next" not in second


async def deliverer_went_past(world: World, name: str) -> None:
    """A sign the deliverer has read the queue since every job was made due: `name` follows
    another event's account, whose Accept (queued after the others, sent after reading them)
    arrives, and nothing is in flight any more."""
    programme, delivery = world.live.services.programme, world.live.services.delivery
    assert delivery is not None

    async def due_now(tx: Any) -> None:
        await tx.db.execute("UPDATE federation_deliveries SET next_at = ?", ("2000-01-01T00:00:00.000Z",))

    await world.live.services.db.write(due_now)
    other = await programme.create_event(
        {"title": "Other Summit", "starts_on": "2026-06-01", "ends_on": "2026-06-02"}
    )
    world.peer.add(name)
    follow = {**world.follow(name), "object": f"{world.live.url}/ap/events/{other.id}"}
    assert (await world.peer.post(f"{world.live.url}/ap/inbox", follow, as_=name)).status_code == 202
    await eventually(
        lambda: any(
            d.activity["type"] == "Accept" and d.path.startswith(f"/users/{name}/")
            for d in world.peer.received
        ),
        10,
        f"{name}'s Accept",
    )
    await eventually(lambda: not delivery._in_flight, 10, "no delivery in flight")


async def test_switching_federation_off_holds_queued_deliveries_until_it_is_on_again(world: World) -> None:
    """Organisers switch their event's federation off: nothing more leaves, including what
    was queued before (here a Create waiting to be tried again); switched on again, it goes."""
    fed = world.live.services.federation
    assert fed is not None
    await followed(world, "alice")
    world.peer.down = True
    await write(world, {"type": "note.create", "body": "said before the switch"})
    await eventually(lambda: world.peer.refused >= 1, 10, "a first try")
    await fed.switch(world.seed.event_id, False)
    world.peer.down = False
    await deliverer_went_past(world, "bob")
    assert [d.activity["type"] for d in world.peer.received] == ["Accept", "Accept"]
    assert await query(world.live.services.db, "SELECT count(*) FROM federation_deliveries") == [(1,)]
    await fed.switch(world.seed.event_id, True)
    (create,) = await arrivals(world, "Create")
    assert "said before the switch" in create.activity["object"]["content"]
    await queue_empty(world)


async def test_a_delivery_waiting_for_its_turn_is_held_once_federation_is_off(world: World) -> None:
    """A delivery read from the queue and waiting for its server's slot (4 of ours hang there)
    when federation is switched off is looked up again, and held, not sent."""
    fed, delivery = world.live.services.federation, world.live.services.delivery
    assert fed is not None and delivery is not None
    await followed(world, "alice")
    world.peer.hold = True  # a slow server: our POSTs to it hang
    for n in range(5):
        await write(world, {"type": "note.create", "body": f"Note {n}"})
    await eventually(lambda: world.peer.held == 4, 10, "4 deliveries hanging at the server")
    await eventually(lambda: len(delivery._in_flight) == 5, 10, "the fifth waiting its turn")
    await fed.switch(world.seed.event_id, False)
    world.peer.hold = False
    world.peer.release.set()  # the hanging ones end (503: tried again later); the fifth's turn
    await deliverer_went_past(world, "bob")
    assert [d.activity["type"] for d in world.peer.received] == ["Accept", "Accept"]
    assert await query(world.live.services.db, "SELECT count(*) FROM federation_deliveries") == [(5,)]
    await fed.switch(world.seed.event_id, True)
    await arrivals(world, "Create", 5)
    await queue_empty(world)


def counted_passes(delivery: Publisher) -> list[str]:
    """The bases of the publisher's passes from now on (each reads the followed sessions)."""
    passes: list[str] = []
    publish_pass = delivery.publish_pass

    async def counted(base: str) -> bool:
        passes.append(base)
        return await publish_pass(base)

    delivery.publish_pass = counted  # type: ignore[method-assign]
    return passes


async def quiet_publisher(world: World) -> Publisher:
    """The publisher from the next commit on woken only by commits (no idle look in the test's
    time): a first note written and delivered, after which it waits for the next commit."""
    delivery = world.live.services.delivery
    assert delivery is not None
    await followed(world, "alice")
    delivery.idle_seconds = 60.0
    # Wider windows than the default 0.5 s: the 20 writes of the test below still fall in five
    # of them at up to ~0.4 s a write (a loaded machine); one pass per note fails either way.
    delivery.coalesce_seconds = 2.0
    await write(world, {"type": "note.create", "body": "First"})
    await arrivals(world, "Create")
    return delivery


async def test_a_burst_of_notes_is_a_few_publishing_passes_not_one_each(world: World) -> None:
    """Every note's commit wakes the publisher; the commits that follow a pass within
    COALESCE_SECONDS make one pass after it, not a wake-up and a read of the followed sessions
    each. Before, 20 notes written one after the other were ~20 passes."""
    passes = counted_passes(await quiet_publisher(world))
    for n in range(20):
        await write(world, {"type": "note.create", "body": f"Note {n}"})
    await arrivals(world, "Create", 21)
    assert 1 <= len(passes) <= 5, f"{len(passes)} publishing passes for 20 notes"


async def test_comments_do_not_wake_the_publisher(world: World) -> None:
    """Followers get notes and the event's announcements, never comments: a comment's commit
    does not wake the publisher (which reads past it when a note wakes it)."""
    passes = counted_passes(await quiet_publisher(world))
    world.live.services.accounts.hasher = FAST_HASHER
    reader, _ = await world.live.services.readers.register("reader1", "a long enough password")
    for n in range(5):
        await world.live.services.comments.post(world.seed.session_id, reader, f"Comment {n}")
    await write(world, {"type": "note.create", "body": "After the comments"})
    await arrivals(world, "Create", 2)
    # The note's pass, and at most one left from the first note's (a commit during its pass).
    assert len(passes) <= 2, f"{len(passes)} publishing passes for 5 comments and a note"


async def test_notes_written_before_and_after_a_restarted_server_learns_its_address_reach_followers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Without server.public_url a process learns its address from the first fediverse request,
    and cannot publish before (commits then wake no one). A note written before a restarted
    process has learnt it is published as it learns it; one written just after, at once."""
    settings = settings_for(request, tmp_path, "sqlite", federation={"allow_private_addresses": True})
    async with running_peer() as peer:
        first = Services.build(settings)
        await first.open()
        try:
            s = await seed(first)
            async with run_server(settings, first) as live:
                world = World(live, s, peer)
                await followed(world, "alice")
        finally:
            await first.close()

        second = Services.build(settings)  # the restarted process: its address not known yet
        assert second.delivery is not None and second.federation is not None
        second.delivery.idle_seconds = 60.0  # no idle look publishes in this test's time
        await second.open()
        try:
            async with run_server(settings, second) as live:
                world = World(live, s, peer)
                await write(world, {"type": "note.create", "body": "before the address"})
                assert second.federation.known_base == ""
                async with live.client() as client:  # a remote server looks the session up
                    actor = await client.get(world.session_actor, headers={"accept": AP_JSON})
                assert actor.status_code == 200
                (before,) = await arrivals(world, "Create")  # learning it woke the publisher
                assert "before the address" in before.activity["object"]["content"]
                await write(world, {"type": "note.create", "body": "after the address"})
                creates = await arrivals(world, "Create", 2)
        finally:
            await second.close()
    assert [c.activity["object"]["content"] for c in creates] == [
        "<p>before the address</p>",
        "<p>after the address</p>",
    ]
    assert all(c.verified == "ok" and c.activity["actor"] == world.session_actor for c in creates)

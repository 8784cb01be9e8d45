"""StreamHub: ordering, resume from the ring and from storage, reload cases, slow subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from liveblog.errors import NotFound
from liveblog.models import Change
from liveblog.streams.hub import ReloadRequired, StreamHub
from liveblog.streams.protocol import CloseCode, Frame, FrameBatch
from tests.conftest import eventually


class FakeOutlet:
    def __init__(self, limit: int = 10**9) -> None:
        self.frames: list[dict[str, Any]] = []
        self.limit = limit
        self.closed = False
        self.close_code: int | None = None
        self.batches = 0  # write_batch calls

    def full(self) -> bool:
        return len(self.frames) >= self.limit

    def accept(self, frame: Frame) -> None:
        self.frames.append(json.loads(frame.text))

    def write(self, frame: Frame) -> bool:
        if self.closed or self.full():
            return False
        self.accept(frame)
        return True

    def write_batch(self, batch: FrameBatch) -> bool:
        """All or none, like the real outlets: refused when the backlog before it is full."""
        self.batches += 1
        if not self.write(batch.frames[0]):
            return False
        for frame in batch.frames[1:]:
            self.accept(frame)
        return True

    async def drain(self) -> None:
        # Pacing, not a wait for work: a real outlet's drain yields to the loop while the socket
        # takes its bytes; this one gives up one loop turn, as that would.
        await asyncio.sleep(0)

    def close(self, code: int, reason: str = "") -> None:
        self.closed = True
        self.close_code = code

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.frames if f["type"] == "change"]


class FakeStore:
    """Stands in for storage: a list of committed change payloads per session."""

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []
        self.epoch = "e1"
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def head(self, session_id: str) -> tuple[str, int] | None:
        if session_id != "s":
            return None
        return self.epoch, max((c["seq"] for c in self.changes), default=0)

    async def between(self, session_id: str, after: int, upto: int) -> list[str]:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return [json.dumps(c) for c in self.changes if after < c["seq"] <= upto]

    def commit(self, hub: StreamHub, n: int = 1) -> None:
        batch = []
        for _ in range(n):
            seq = max((c["seq"] for c in self.changes), default=0) + 1
            payload = {"type": "change", "seq": seq, "op": "item.created", "item": {"id": seq}}
            self.changes.append(payload)
            batch.append(Change("s", seq, "item.created", payload))
        hub.publish(batch)


def make_hub(store: FakeStore, **kw: Any) -> StreamHub:
    return StreamHub(load_head=store.head, load_changes=store.between, heartbeat_seconds=0, **kw)


async def test_live_subscriber_gets_every_change_in_order() -> None:
    store = FakeStore()
    hub = make_hub(store)
    outlet = FakeOutlet()
    async with hub.subscribe("s", outlet):
        store.commit(hub, 5)
    assert outlet.frames[0]["type"] == "hello"
    assert outlet.frames[0]["seq"] == 0
    assert outlet.seqs() == [1, 2, 3, 4, 5]


async def test_resume_from_ring_replays_exactly_what_was_missed() -> None:
    store = FakeStore()
    hub = make_hub(store)
    first = FakeOutlet()
    async with hub.subscribe("s", first):
        store.commit(hub, 10)
    again = FakeOutlet()
    async with hub.subscribe("s", again, since=6, epoch="e1"):
        store.commit(hub, 2)
    assert again.seqs() == [7, 8, 9, 10, 11, 12]
    kinds = [f["type"] for f in again.frames]
    assert kinds.index("synced") == 5  # hello, 4 replayed, synced, then live


async def test_resume_from_storage_has_no_gap_or_duplicate_at_switch_over() -> None:
    store = FakeStore()
    hub = make_hub(store, ring_size=4)
    store.commit(hub, 50)  # only the last 4 are in the ring
    store.gate = asyncio.Event()
    outlet = FakeOutlet()
    ready = asyncio.Event()

    async def viewer() -> None:
        async with hub.subscribe("s", outlet, since=10):
            ready.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(viewer())
    await asyncio.wait_for(store.entered.wait(), 5)
    store.commit(hub, 3)  # published while the viewer is still reading storage
    store.gate.set()
    await asyncio.wait_for(ready.wait(), 5)
    store.commit(hub, 2)
    task.cancel()
    assert outlet.seqs() == list(range(11, 56))


@pytest.mark.parametrize(
    ("since", "epoch", "reason"),
    [(99, None, "future_position"), (0, "other", "epoch_changed"), (1, None, "too_far_behind")],
)
async def test_positions_that_cannot_resume_must_reload(since: int, epoch: str | None, reason: str) -> None:
    store = FakeStore()
    hub = make_hub(store, replay_window=10)
    store.commit(hub, 20)
    with pytest.raises(ReloadRequired) as info:
        async with hub.subscribe("s", FakeOutlet(), since=since, epoch=epoch):
            pass
    assert info.value.reason == reason
    assert info.value.head == 20


async def test_unknown_session_is_not_found() -> None:
    hub = make_hub(FakeStore())
    with pytest.raises(NotFound):
        async with hub.subscribe("nope", FakeOutlet()):
            pass
    assert "nope" not in hub.channels


async def test_a_full_subscriber_is_closed_and_others_keep_receiving() -> None:
    store = FakeStore()
    hub = make_hub(store)
    slow, fast = FakeOutlet(limit=4), FakeOutlet()
    async with hub.subscribe("s", slow), hub.subscribe("s", fast):
        for _ in range(20):  # commits one after another: the slow one's backlog grows
            store.commit(hub)
        assert slow.closed and slow.close_code == CloseCode.TOO_SLOW
        assert fast.seqs() == list(range(1, 21))
        assert slow not in hub.channels["s"].live
    assert hub.dropped_slow == 1


async def test_the_changes_of_one_publish_reach_each_subscriber_as_one_write_per_stream() -> None:
    store = FakeStore()
    hub = make_hub(store)
    first, second = FakeOutlet(), FakeOutlet()
    async with hub.subscribe("s", first), hub.subscribe("s", second):
        first.batches = second.batches = 0  # joining was one (hello and synced)
        store.commit(hub, 20)  # one commit of 20 changes (a page of social posts)
        store.commit(hub)  # then one on its own: a plain write
        for outlet in (first, second):
            assert outlet.batches == 1
            assert outlet.seqs() == list(range(1, 22))
    assert hub.delivered == 2 * 21


async def test_a_batch_refused_closes_that_subscriber_and_the_others_get_all_of_it() -> None:
    store = FakeStore()
    hub = make_hub(store)
    full, fine = RefusingOutlet(), FakeOutlet()
    async with hub.subscribe("s", full), hub.subscribe("s", fine):
        store.commit(hub, 2)
        full.refuse = True
        store.commit(hub, 5)
        assert full.closed and full.close_code == CloseCode.TOO_SLOW
        assert full.seqs() == [1, 2]  # all of the batch or none of it: never a hole
        assert fine.seqs() == [1, 2, 3, 4, 5, 6, 7]
        assert full not in hub.channels["s"].live


async def passes_done(hub: StreamHub) -> None:
    """Until no fan-out pass is under way (each slice is a loop callback), within 5 s."""
    await eventually(
        lambda: not any(channel.passing for channel in hub.channels.values()), 5, "the fan-out passes to end"
    )


@contextlib.asynccontextmanager
async def watching(hub: StreamHub, count: int) -> AsyncIterator[list[FakeOutlet]]:
    """`count` live subscribers of stream "s", in the order they joined."""
    outlets = [FakeOutlet() for _ in range(count)]
    async with contextlib.AsyncExitStack() as stack:
        for outlet in outlets:
            await stack.enter_async_context(hub.subscribe("s", outlet))
        yield outlets


async def test_a_pass_writes_a_slice_at_a_time_and_a_change_committed_meanwhile_joins_the_same_write() -> (
    None
):
    store = FakeStore()
    hub = make_hub(store, fanout_slice=2)
    async with watching(hub, 6) as outlets:
        store.commit(hub, 20)  # a page of posts
        assert [o.seqs() for o in outlets[:2]] == [list(range(1, 21))] * 2  # the first slice at once
        assert [o.seqs() for o in outlets[2:]] == [[]] * 4  # the rest after other work
        # Pacing, not a wait for work: exactly one loop turn, so the next slice's callback runs
        # and no more (a wait for a condition could let the rest of the pass run too)...
        await asyncio.sleep(0)
        assert outlets[2].seqs() == list(range(1, 21)) and outlets[4].seqs() == []
        store.commit(hub)  # ...a note commits: those not reached get posts and note in one write
        await passes_done(hub)
        for outlet in outlets:
            assert outlet.seqs() == list(range(1, 22))
        assert [o.batches for o in outlets] == [2, 2, 2, 2, 2, 2]  # joining (hello, synced), then one
        # reached before the note: one more write of it; reached after: posts and note together
        assert [len(o.frames) for o in outlets] == [1 + 1 + 20 + 1] * 6  # hello, synced, changes
        assert not hub.channels["s"].passing
    assert hub.delivered == 6 * 21


async def test_a_pass_of_single_changes_reaches_everyone_at_once() -> None:
    store = FakeStore()
    hub = make_hub(store, fanout_slice=1)
    async with watching(hub, 3) as outlets:
        store.commit(hub)  # a note: nothing to merge it with, so no reason to make the last wait
        assert [o.seqs() for o in outlets] == [[1], [1], [1]]
        assert not hub.channels["s"].passing


async def test_an_unsequenced_frame_waits_for_the_changes_before_it_to_reach_everyone() -> None:
    store = FakeStore()
    hub = make_hub(store, fanout_slice=1)
    async with watching(hub, 3) as outlets:
        store.commit(hub, 3)
        hub.heartbeat()  # the pass is still under way: it is finished first
        for outlet in outlets:
            kinds = [(f["type"], f.get("seq")) for f in outlet.frames[2:]]
            assert kinds == [("change", 1), ("change", 2), ("change", 3), ("heartbeat", 3)]


async def test_subscribers_joining_and_leaving_during_a_pass_get_each_change_once() -> None:
    store = FakeStore()
    hub = make_hub(store, fanout_slice=1)
    stays, leaves, joins = FakeOutlet(), FakeOutlet(), FakeOutlet()
    first = FakeOutlet()
    channel = await hub.join("s", first)
    await hub.join("s", stays)
    await hub.join("s", leaves)
    store.commit(hub, 2)  # first is written now, stays and leaves later
    hub.leave(channel, leaves)
    await hub.join("s", joins, since=0, epoch="e1")  # replayed 1..2 from the ring
    store.commit(hub)
    await passes_done(hub)
    assert first.seqs() == stays.seqs() == joins.seqs() == [1, 2, 3]
    assert leaves.seqs() == []
    assert not channel.passing


async def test_a_subscriber_behind_by_more_than_the_ring_is_closed_to_resume_not_given_a_hole() -> None:
    store = FakeStore()
    hub = make_hub(store, fanout_slice=1, ring_size=4)
    outlets = [FakeOutlet(), FakeOutlet()]
    for outlet in outlets:
        await hub.join("s", outlet)
    store.commit(hub, 2)  # the second outlet waits for the next slice...
    store.commit(hub, 4)  # ...while 4 more arrive: it is owed 6, the ring holds 4
    await passes_done(hub)
    assert outlets[1].closed and outlets[1].close_code == CloseCode.TOO_SLOW
    assert outlets[1].seqs() == []
    assert outlets[0].seqs() == list(range(1, 7))  # owed 4: all in the ring
    assert hub.dropped_slow == 1


class BrokenOutlet(FakeOutlet):
    def write_batch(self, batch: FrameBatch) -> bool:
        if any(frame.seq is not None for frame in batch.frames):  # joins; changes then raise
            raise RuntimeError("a bug in an outlet")
        return super().write_batch(batch)


async def test_a_fan_out_pass_that_raises_is_logged_and_its_viewers_resume_instead_of_the_stream_sticking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    hub = make_hub(store, fanout_slice=1)
    broken, other = BrokenOutlet(), FakeOutlet()
    channel = await hub.join("s", other)
    await hub.join("s", broken)
    store.commit(hub, 2)  # other is written at once; broken raises in the next slice
    await passes_done(hub)
    assert hub.pass_failures == 1 and "fan-out pass of stream s failed" in caplog.text
    assert broken.closed and other.closed and other.close_code == CloseCode.TOO_SLOW
    assert not channel.live and not channel.passing
    again = FakeOutlet()
    await hub.join("s", again, since=2, epoch="e1")
    store.commit(hub)
    assert again.seqs() == [3]  # the stream goes on


async def test_duplicate_publish_from_a_racing_head_load_is_ignored() -> None:
    store = FakeStore()
    hub = make_hub(store)
    store.changes.append({"type": "change", "seq": 1, "op": "x"})
    outlet = FakeOutlet()
    async with hub.subscribe("s", outlet):  # head loaded as 1 from storage
        hub.publish([Change("s", 1, "x", store.changes[0])])  # the commit's own publish arrives late
        store.commit(hub, 1)
    assert outlet.seqs() == [2]


async def test_presence_counts_note_takers_and_viewers() -> None:
    store = FakeStore()
    hub = make_hub(store)
    viewer = FakeOutlet()
    async with hub.subscribe("s", viewer):
        async with hub.subscribe("s", FakeOutlet(), note_taker="Ada"):
            assert hub.stats("s") == {"viewers": 2, "note_takers": ["Ada"]}
        presence = [f for f in viewer.frames if f["type"] == "presence"]
        assert presence[0]["note_takers"] == ["Ada"]
        assert presence[-1]["note_takers"] == []


async def test_heartbeat_reports_head_and_viewers() -> None:
    store = FakeStore()
    hub = make_hub(store)
    outlet = FakeOutlet()
    async with hub.subscribe("s", outlet):
        store.commit(hub, 3)
        hub.heartbeat()
    assert outlet.frames[-1] == {"type": "heartbeat", "seq": 3, "viewers": 1}


class PacedOutlet(FakeOutlet):
    """Holds at most `capacity` unsent frames; drain() delivers them (a viewer reading slowly)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.unsent: list[dict[str, Any]] = []

    def full(self) -> bool:
        return len(self.unsent) >= self.capacity

    def accept(self, frame: Frame) -> None:
        self.unsent.append(json.loads(frame.text))

    async def drain(self) -> None:
        await asyncio.sleep(0)  # pacing: a slow reader takes a loop turn per drain (see FakeOutlet)
        self.frames.extend(self.unsent)
        self.unsent.clear()


async def test_a_long_replay_from_storage_is_paced_by_the_viewer_without_holes() -> None:
    store = FakeStore()
    hub = make_hub(store, ring_size=2)
    store.commit(hub, 600)
    outlet = PacedOutlet(capacity=10)
    async with hub.subscribe("s", outlet, since=0):
        store.commit(hub, 1)
        await outlet.drain()
    assert not outlet.closed
    assert outlet.seqs() == list(range(1, 602))


async def test_a_replay_from_the_ring_that_overflows_closes_instead_of_leaving_a_hole() -> None:
    store = FakeStore()
    hub = make_hub(store, resume_batch_bytes=0)  # the ring's replay is paced (as one too big for a batch)
    store.commit(hub, 30)
    outlet = FakeOutlet(limit=10)
    async with hub.subscribe("s", outlet, since=0):
        pass
    assert outlet.closed and outlet.close_code == CloseCode.TOO_SLOW
    assert outlet.seqs() == list(range(1, 10))  # a prefix: the client resumes from 9


class SharingOutlet(FakeOutlet):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[FrameBatch] = []

    def write_batch(self, batch: FrameBatch) -> bool:
        self.written.append(batch)
        return super().write_batch(batch)


async def test_viewers_resuming_from_the_same_seq_share_one_encoded_resume_and_get_each_change_once() -> None:
    store = FakeStore()
    hub = make_hub(store)
    store.commit(hub, 5)
    crowd = [SharingOutlet() for _ in range(3)]
    later = SharingOutlet()
    for outlet in crowd:
        await hub.join("s", outlet, since=2)
    await hub.join("s", later, since=4)
    assert crowd[0].written[0] is crowd[1].written[0] is crowd[2].written[0]  # encoded once
    assert later.written[0] is not crowd[0].written[0]  # another position: its own
    store.commit(hub)
    for outlet in [*crowd, later]:
        kinds = [f["type"] for f in outlet.frames]
        assert kinds[0] == "hello" and kinds.count("synced") == 1
        assert outlet.frames[0]["since"] == (2 if outlet in crowd else 4)
    assert [o.seqs() for o in crowd] == [[3, 4, 5, 6]] * 3
    assert later.seqs() == [5, 6]
    store.commit(hub)  # a new head: the next one resuming from 2 gets the new change too
    newcomer = SharingOutlet()
    await hub.join("s", newcomer, since=2)
    assert newcomer.written[0] is not crowd[0].written[0]
    assert newcomer.seqs() == [3, 4, 5, 6, 7]


async def test_a_hole_in_storage_is_never_handed_out() -> None:
    store = FakeStore()
    hub = make_hub(store, ring_size=2)
    store.commit(hub, 20)
    del store.changes[5]  # storage lost seq 6 (it cannot happen; if it did, no gap is served)
    outlet = FakeOutlet()
    async with hub.subscribe("s", outlet, since=0):
        pass
    assert outlet.closed and outlet.close_code == CloseCode.RELOAD


async def test_an_idle_channel_is_freed_and_a_later_subscriber_loads_it_again() -> None:
    store = FakeStore()
    hub = make_hub(store, idle_seconds=60)
    first = FakeOutlet()
    async with hub.subscribe("s", first):
        store.commit(hub, 3)
        assert hub.sweep(now=10**9) == 0  # watched: never freed
    assert "s" in hub.channels  # idle, but not for long enough yet
    assert hub.sweep() == 0
    assert hub.sweep(now=10**9) == 1 and "s" not in hub.channels
    store.commit(hub, 2)  # a write with nobody watching makes a channel that goes idle too
    assert hub.sweep(now=10**9) == 1 and not hub.channels
    again = FakeOutlet()
    async with hub.subscribe("s", again, since=1, epoch="e1"):
        store.commit(hub, 1)
    assert again.seqs() == [2, 3, 4, 5, 6]


async def test_a_channel_is_freed_when_its_session_has_ended_and_the_last_subscriber_leaves() -> None:
    store = FakeStore()
    hub = make_hub(store)
    outlet = FakeOutlet()
    async with hub.subscribe("s", outlet):
        store.commit(hub, 1)
        ended = {
            "type": "change",
            "seq": 2,
            "op": "session.updated",
            "session": {"state": "ended", "epoch": "e1"},
        }
        store.changes.append(ended)
        hub.publish([Change("s", 2, "session.updated", ended)])
        assert "s" in hub.channels  # still watched: it still gets changes (an organiser's edits)
    assert "s" not in hub.channels and hub.freed == 1


async def test_a_channel_being_joined_is_never_freed() -> None:
    store = FakeStore()
    hub = make_hub(store, ring_size=2)
    store.commit(hub, 10)
    hub.sweep(now=10**9)
    store.gate = asyncio.Event()
    outlet = FakeOutlet()
    task = asyncio.create_task(hub.join("s", outlet, since=0))
    await asyncio.wait_for(store.entered.wait(), 5)  # replaying from storage
    assert hub.sweep(now=10**9) == 0
    store.gate.set()
    channel = await asyncio.wait_for(task, 5)
    assert outlet.seqs() == list(range(1, 11)) and hub.channels["s"] is channel
    hub.leave(channel, outlet)


class RefusingOutlet(FakeOutlet):
    """Accepts frames until told to refuse (its buffer is full), or once it holds `changes`."""

    def __init__(self, changes: int | None = None) -> None:
        super().__init__()
        self.refuse = False
        self.changes = changes

    def write(self, frame: Frame) -> bool:
        if self.changes is not None and len(self.seqs()) >= self.changes:
            self.refuse = True
        return False if self.refuse else super().write(frame)


async def test_a_refused_pending_frame_at_the_switch_to_live_closes_instead_of_leaving_a_hole() -> None:
    store = FakeStore()
    hub = make_hub(store, ring_size=2)
    store.commit(hub, 10)
    store.gate = asyncio.Event()
    # The stored part is written, then the buffer is full when the pending frame is flushed.
    outlet = RefusingOutlet(changes=10)
    task = asyncio.create_task(hub.join("s", outlet, since=0))
    await asyncio.wait_for(store.entered.wait(), 5)
    store.commit(hub, 1)  # arrives while replaying: goes to the pending buffer
    store.gate.set()
    channel = await asyncio.wait_for(task, 5)
    assert outlet.closed and outlet.close_code == CloseCode.TOO_SLOW
    assert outlet.seqs() == list(range(1, 11))  # a prefix with no hole: it resumes from 10
    assert outlet not in channel.live and hub.dropped_slow == 1


async def test_a_refused_synced_frame_closes_the_subscriber() -> None:
    store = FakeStore()
    hub = make_hub(store, ring_size=1)  # the replay comes from storage
    store.commit(hub, 2)
    outlet = FakeOutlet(limit=3)  # hello, two changes: no room for `synced`
    channel = await hub.join("s", outlet, since=0)
    assert outlet.closed and outlet.close_code == CloseCode.TOO_SLOW
    assert outlet not in channel.live


# -- changes from other processes: out of order, missing, duplicated ------------------------------


def committed(store: FakeStore, n: int) -> list[Change]:
    """Commit n changes to storage without publishing them (another process did)."""
    out = []
    for _ in range(n):
        seq = max((c["seq"] for c in store.changes), default=0) + 1
        payload = {"type": "change", "seq": seq, "op": "item.created", "item": {"id": seq}}
        store.changes.append(payload)
        out.append(Change("s", seq, "item.created", payload))
    return out


async def test_changes_arriving_out_of_order_are_reordered_without_dropping_anyone() -> None:
    store = FakeStore()
    hub = make_hub(store)
    outlet = FakeOutlet()
    async with hub.subscribe("s", outlet):
        c = committed(store, 4)
        hub.publish([c[0], c[2], c[3]])  # 2 is late on its way
        assert outlet.seqs() == [1]  # 3 and 4 wait: never delivered ahead of 2
        hub.publish([c[1], c[2]])  # 2 arrives, and 3 again (every process sees its own echo)
        assert outlet.seqs() == [1, 2, 3, 4]
        assert outlet.batches == 2  # joining; then 2, 3 and 4 released together go in one write
        assert not outlet.closed
    await hub.stop()


async def test_a_change_that_never_arrives_is_filled_from_storage_in_order() -> None:
    store = FakeStore()
    hub = make_hub(store)
    outlet = FakeOutlet()
    async with hub.subscribe("s", outlet):
        c = committed(store, 5)
        hub.publish([c[0], c[3], c[4]])  # 2 and 3 were lost (say Redis restarted)
        assert outlet.seqs() == [1]
        await eventually(lambda: outlet.seqs() == [1, 2, 3, 4, 5], 5, "the gap to be filled from storage")
        assert not outlet.closed
    await hub.stop()


async def test_catch_up_delivers_what_storage_has_beyond_the_head() -> None:
    store = FakeStore()
    hub = make_hub(store)
    outlet = FakeOutlet()
    async with hub.subscribe("s", outlet):
        committed(store, 3)  # published elsewhere while this process's feed was down
        assert await hub.catch_up_all() == 3
        assert outlet.seqs() == [1, 2, 3]
        assert await hub.catch_up_all() == 0
    await hub.stop()


async def test_a_viewer_ahead_of_this_process_is_caught_up_from_storage_not_told_to_reload() -> None:
    store = FakeStore()
    hub = make_hub(store)
    early = FakeOutlet()
    async with hub.subscribe("s", early):
        committed(store, 4)  # seen by the viewer on another process; not yet published here
        moved = FakeOutlet()
        async with hub.subscribe("s", moved, since=4, epoch="e1"):
            assert [f["type"] for f in moved.frames] == ["hello", "synced"]
            assert moved.frames[-1]["seq"] == 4
        assert early.seqs() == [1, 2, 3, 4]  # and the viewers here got them too
    await hub.stop()


def test_viewers_are_told_a_rounded_count() -> None:
    from liveblog.streams.hub import rounded_count

    assert [rounded_count(n) for n in (0, 1, 19, 20, 24, 25, 231, 999, 1000, 1049, 1050, 5321)] == [
        0,
        1,
        19,
        20,
        20,
        30,
        230,
        1000,
        1000,
        1000,
        1100,
        5300,
    ]

"""StreamHub: per-session channels that fan committed changes out to subscribers.

A channel keeps the session's head (last seq), its epoch and a ring of recent frames. Joining
with a position replays what was missed, from the ring or from storage, then goes live with no
gap and no duplicate: the switch-over happens with no `await` between the last replayed frame
and joining the live set, or, for a replay paced by the viewer (from storage, or a ring backlog
longer than its buffer holds), through a bounded pending buffer.
Delivery is a synchronous `outlet.write()` per subscriber: no task per viewer, one encoding per
message, and one write per subscriber for all the changes it is behind by (a commit of 20 social
posts is one write to each viewer, not 20). Each live subscriber has a position (the last seq
written to it); a fan-out pass of a burst writes to `fanout_slice` subscribers at a time and lets
the loop run other work between slices, so a note committed while 20 posts are still going out
to 1,000 viewers joins the same write for every viewer the pass has not reached yet, instead of
waiting for the whole pass to finish and starting another (docs/architecture.md, "Fan-out
passes"). A pass of single changes runs to the end at once.

No frame is ever dropped on an open subscriber: one whose outlet refuses a frame (its buffer is
full) is closed (TOO_SLOW) and resumes from its last seq, instead of slowing others or going on
with a hole.

A channel lives while it has subscribers. Once it has none, it is freed after `idle_seconds`
(at once if its session has ended), with its ring: memory follows the sessions being watched,
not the sessions ever served.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from liveblog.errors import NotFound
from liveblog.models import Change, redacted_change
from liveblog.streams.protocol import PROTOCOL_VERSION, CloseCode, Frame, FrameBatch
from liveblog.streams.uring import SendRing

log = logging.getLogger(__name__)

TOO_SLOW_REASON = "too slow: resume from your last seq"
# A channel with no subscribers is kept this long, so a page reload or a reconnecting crowd
# finds its ring warm; then it is freed. A new subscriber loads it again from storage.
IDLE_CHANNEL_SECONDS = 120.0
# How often the hub looks for idle channels when heartbeats are off.
SWEEP_SECONDS = 15.0


class Outlet(Protocol):
    """Where a subscriber's frames go. Implemented by the web layer (liveblog.web.outlets)."""

    @property
    def closed(self) -> bool: ...

    def write(self, frame: Frame) -> bool:
        """Queue a frame without waiting. False when closed or over its buffer limit."""
        ...

    def write_batch(self, batch: FrameBatch) -> bool:
        """Queue several frames at once, in order, all or none; same rules as `write`."""
        ...

    async def drain(self) -> None:
        """Wait until the buffer is low enough to write more (used while replaying)."""
        ...

    def close(self, code: int, reason: str = "") -> None: ...


class ReloadRequired(Exception):
    """The requested position cannot be resumed; the client must reload a snapshot."""

    def __init__(self, reason: str, epoch: str, head: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.epoch = epoch
        self.head = head


# How long a change that arrived early waits for the one before it to arrive by its own path
# (another process's publish through Redis is usually < 1 ms behind) before that one is read from
# storage: short enough that viewers never notice, long enough to spare most storage reads.
GAP_GRACE_SECONDS = 0.02
GAP_FILL_ATTEMPTS = 5

# Subscribers a fan-out pass of a burst (several changes owed) writes to before letting the loop
# run other work (~1 ms of writes). A pass of single changes (notes) runs to the end at once:
# interleaving other work there only makes the last viewer wait longer.
FANOUT_SLICE = 128
# A resume from the ring up to this size (hello and synced included) is written at once, as one
# batch shared by everyone resuming from the same seq; a longer one is paced by the viewer. The
# services pass `streams.viewer_buffer_bytes`: what a viewer's buffer would take anyway.
RESUME_BATCH_BYTES = 256 * 1024


def _change_from_text(session_id: str, text: str) -> Change:
    payload = json.loads(text)
    return Change(session_id=session_id, seq=int(payload["seq"]), op=str(payload["op"]), payload=payload)


HeadLoader = Callable[[str], Awaitable[tuple[str, int] | None]]
ChangeLoader = Callable[[str, int, int], Awaitable[list[str]]]


@dataclass(eq=False)
class _Catching:
    outlet: Outlet
    pending: deque[Frame] = field(default_factory=deque)
    overflowed: bool = False


def rounded_count(n: int) -> int:
    """A watching count as viewers are told it: exact below 20 (a small room counts itself), then
    to the nearest 10, and from 1,000 to the nearest 100. Enough to feel the room; the exact
    number, second by second, is the organisers' (their session page)."""
    if n < 20:
        return n
    step = 10 if n < 1000 else 100
    return (n + step // 2) // step * step


class Channel:
    def __init__(self, session_id: str, ring_size: int) -> None:
        self.session_id = session_id
        self.epoch = ""
        self.head: int | None = None  # None until loaded from storage or learnt from a publish
        self.ring: deque[Frame] = deque(maxlen=ring_size)
        self.live: dict[Outlet, int] = {}  # live subscriber -> the last seq written to it
        # The fan-out pass under way (see StreamHub._pass): who it still has to visit, how far it
        # got, and a token so that a superseded pass's scheduled slice does nothing.
        self.pass_queue: list[Outlet] = []
        self.pass_index = 0
        self.pass_token = 0
        self.passing = False
        # What a subscriber at a given position is owed, built once per head for all of them.
        self.owed: dict[int, Frame | FrameBatch] = {}
        self.owed_head = -1
        # What a subscriber joining at a given head from a given seq is sent (StreamHub._resume_batch).
        self.resumes: dict[Any, FrameBatch] = {}
        self.resumes_head = -1
        self.resumes_bytes = 0
        self.catching: list[_Catching] = []
        self.note_takers: Counter[str] = Counter()
        self.loading: asyncio.Future[None] | None = None
        # Changes that arrived ahead of a missing one (other processes publish through Redis,
        # each in its own order): held until the gap closes or is filled from storage.
        self.early: dict[int, Change] = {}
        self.filling: asyncio.Task[None] | None = None
        # Watching on other processes (several processes share counts through Redis).
        self.remote_viewers = 0
        self.remote_note_takers: tuple[str, ...] = ()
        self.joining = 0  # joins under way (they may await storage): never freed meanwhile
        self.ended = False  # the session has ended: freed as soon as nobody watches
        self.idle_since: float | None = time.monotonic()  # None while it has subscribers

    @property
    def audience(self) -> int:
        """Everyone watching this session, on every process (organisers see this number)."""
        return self.subscriber_count + self.remote_viewers

    @property
    def told_audience(self) -> int:
        """The audience as viewers are told it: rounded (rounded_count)."""
        return rounded_count(self.audience)

    def all_note_takers(self) -> list[str]:
        return sorted(set(self.note_takers) | set(self.remote_note_takers))

    @property
    def subscriber_count(self) -> int:
        return len(self.live) + len(self.catching)

    def ring_covers(self, since: int) -> bool:
        """True when every change after `since` is in the ring."""
        assert self.head is not None
        if since >= self.head:
            return True
        return bool(self.ring) and self.ring[0].seq is not None and self.ring[0].seq <= since + 1


class StreamHub:
    def __init__(
        self,
        *,
        load_head: HeadLoader,
        load_changes: ChangeLoader,
        ring_size: int = 1024,
        replay_window: int = 5000,
        heartbeat_seconds: float = 15.0,
        idle_seconds: float = IDLE_CHANNEL_SECONDS,
        fanout_slice: int = FANOUT_SLICE,
        resume_batch_bytes: int = RESUME_BATCH_BYTES,
        send_ring: SendRing | None = None,
    ) -> None:
        self.fanout_slice = fanout_slice
        # Writes a pass's frame to many sockets with one system call (streams/uring.py); None:
        # each outlet writes its own.
        self.send_ring = send_ring
        self.resume_batch_bytes = resume_batch_bytes
        self._load_head = load_head
        self._load_changes = load_changes
        self.ring_size = ring_size
        self.replay_window = replay_window
        self.heartbeat_seconds = heartbeat_seconds
        self.idle_seconds = idle_seconds
        self.channels: dict[str, Channel] = {}
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.delivered = 0  # frames handed to outlets, for the benchmark
        self.dropped_slow = 0  # subscribers closed as too slow
        self.freed = 0  # channels freed (idle or ended), for tests
        self.pass_failures = 0  # fan-out passes that raised (a bug: logged, their viewers resume)
        # Viewer sockets open on this process, and those shed (1013) because there were
        # streams.max_viewers already: counted by the web layer, which accepts them.
        self.viewer_sockets = 0
        self.shed = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._heartbeat_task = asyncio.create_task(self.run_heartbeats(), name="liveblog-heartbeats")

    async def stop(self, code: int = CloseCode.GOING_AWAY) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        for channel in self.channels.values():
            if channel.filling is not None:
                channel.filling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await channel.filling
            for outlet in [*channel.live, *(c.outlet for c in channel.catching)]:
                outlet.close(code, "server shutting down")

    async def run_heartbeats(self) -> None:
        """Heartbeats and freeing idle channels, forever (run under the service supervisor)."""
        beat = self.heartbeat_seconds > 0
        while True:
            await asyncio.sleep(self.heartbeat_seconds if beat else SWEEP_SECONDS)
            try:
                if beat:
                    self.heartbeat()
                self.sweep()
            except Exception:  # never let one bad channel stop heartbeats for all
                log.exception("hub housekeeping failed")

    def sweep(self, now: float | None = None) -> int:
        """Free channels idle for `idle_seconds` (or ended) with nobody watching or joining."""
        now = time.monotonic() if now is None else now
        idle = [
            c
            for c in self.channels.values()
            if self._freeable(c)
            and (c.ended or (c.idle_since is not None and now - c.idle_since >= self.idle_seconds))
        ]
        for channel in idle:
            self._free(channel)
        return len(idle)

    @staticmethod
    def _freeable(channel: Channel) -> bool:
        return not channel.live and not channel.catching and channel.joining == 0 and channel.loading is None

    def _free(self, channel: Channel) -> None:
        if self.channels.get(channel.session_id) is channel:
            del self.channels[channel.session_id]
            self.freed += 1

    def _became_idle(self, channel: Channel) -> None:
        if self._freeable(channel):
            if channel.ended:
                self._free(channel)
            elif channel.idle_since is None:
                channel.idle_since = time.monotonic()

    def heartbeat(self) -> None:
        """Send every subscriber the head and viewer count: keeps NAT'd connections open and lets
        a client notice it is behind even when nothing else is said."""
        for channel in list(self.channels.values()):
            if channel.head is None or not channel.live:
                continue
            frame = Frame.of({"type": "heartbeat", "seq": channel.head, "viewers": channel.told_audience})
            self._fanout(channel, frame)

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, changes: Iterable[Change]) -> None:
        """Called after commit, in sequence order, and with changes other processes committed
        (in any order, possibly twice). Never awaits: a change that arrives ahead of a missing
        one waits in `early` and a task fills the gap from storage (see `_fill`).

        Each stream's new frames go out together once every change is in place: one write per
        subscriber per stream, whatever the number of changes (see `_pass`)."""
        touched: dict[Channel, None] = {}
        for change in changes:
            channel = self.channels.get(change.session_id)
            if channel is None:
                # Nobody watching: learn the head from the change itself (seqs are contiguous).
                channel = self.channels[change.session_id] = Channel(change.session_id, self.ring_size)
                channel.head = change.seq - 1
            if channel.head is None:
                channel.head = change.seq - 1
            if change.seq <= channel.head:
                continue  # the storage read that loaded this channel already saw it
            if change.seq != channel.head + 1:
                # A change is missing before this one. Once seq N is committed every seq below it
                # is too (next_seq's row lock), so storage always has what is missing.
                channel.early[change.seq] = change
                self._schedule_fill(channel)
                continue
            touched[channel] = None
            self._deliver(channel, change)
            while channel.early:
                nxt = channel.early.pop(channel.head + 1, None)
                if nxt is None:
                    break
                self._deliver(channel, nxt)
            if channel.early and min(channel.early) <= channel.head:
                channel.early = {seq: c for seq, c in channel.early.items() if seq > channel.head}
        for channel in touched:
            self._start_pass(channel)

    def _schedule_fill(self, channel: Channel) -> None:
        if channel.filling is None or channel.filling.done():
            channel.filling = asyncio.get_running_loop().create_task(
                self._fill(channel), name=f"liveblog-fill-{channel.session_id}"
            )

    async def _fill(self, channel: Channel) -> None:
        """Close a gap: give the missing change a moment to arrive by its own path, then read
        what is still missing from storage and deliver it in order."""
        await asyncio.sleep(GAP_GRACE_SECONDS)
        attempts = 0
        while channel.early and self.channels.get(channel.session_id) is channel:
            try:
                await self.catch_up(channel.session_id, upto=max(channel.early))
            except Exception:
                attempts += 1
                log.exception("filling a gap in stream %s from storage failed", channel.session_id)
                if attempts >= GAP_FILL_ATTEMPTS:
                    # Never hand out a hole: the viewers resume (from storage) on reconnecting.
                    self._drop_all(channel, CloseCode.TOO_SLOW, "stream gap: resume from your last seq")
                    channel.early.clear()
                    channel.ring.clear()
                    return
                await asyncio.sleep(GAP_GRACE_SECONDS * 2**attempts)

    async def catch_up(self, session_id: str, upto: int | None = None) -> int:
        """Deliver whatever storage holds beyond this process's head (after a gap, or after the
        cross-process feed was down). Returns how many changes were delivered."""
        channel = self.channels.get(session_id)
        if channel is None or channel.head is None:
            return 0
        if upto is None:
            head = await self._load_head(session_id)
            if head is None:
                return 0
            upto = head[1]
        delivered = 0
        while channel.head < upto:
            start = channel.head
            texts = await self._load_changes(session_id, start, min(upto, start + 256))
            if not texts:
                raise RuntimeError(
                    f"storage has no changes after {start} in {session_id} but {upto} was published"
                )
            if channel.head != start:
                continue  # delivered meanwhile by another path: read again from the new head
            self.publish([_change_from_text(session_id, text) for text in texts])
            delivered += len(texts)
        return delivered

    async def catch_up_all(self) -> int:
        """`catch_up` for every session someone is watching on this process."""
        total = 0
        for session_id, channel in list(self.channels.items()):
            if channel.subscriber_count and channel.head is not None:
                total += await self.catch_up(session_id)
        return total

    def set_remote_presence(self, session_id: str, viewers: int, note_takers: list[str]) -> None:
        """What the other processes reported for a session (announced if the note-takers changed)."""
        channel = self.channels.get(session_id)
        if channel is None:
            return
        channel.remote_viewers = viewers
        names = tuple(sorted(note_takers))
        if names != channel.remote_note_takers:
            channel.remote_note_takers = names
            if channel.live:
                self._announce_presence(channel)

    def _drop_all(self, channel: Channel, code: int, reason: str) -> None:
        channel.passing = False
        for outlet in list(channel.live):
            channel.live.pop(outlet, None)
            outlet.close(code, reason)
        self._became_idle(channel)

    def _deliver(self, channel: Channel, change: Change) -> None:
        """The change becomes the channel's head, in its ring and in every catching-up
        subscriber's pending list; a fan-out pass (`_start_pass`) then writes it to the live."""
        channel.head = change.seq
        redacts = change.payload.get("redacts")
        if redacts:
            self._redact(channel, redacts)
        frame = Frame.of(change.payload)
        channel.ring.append(frame)
        if change.op == "session.updated":
            session = change.payload["session"]
            channel.epoch = session.get("epoch", channel.epoch)
            channel.ended = session.get("state") == "ended"
        for catching in channel.catching:
            if len(catching.pending) >= self.ring_size:
                catching.overflowed = True
            else:
                catching.pending.append(frame)

    @staticmethod
    def _redact(channel: Channel, seqs: list[int]) -> None:
        """A change removed an item or comment, and storage redacted its earlier changes (seqs):
        so do the frames kept here, so a viewer resuming from the ring never gets its text."""
        wanted = set(seqs)
        for frames in (channel.ring, *(c.pending for c in channel.catching)):
            for n, frame in enumerate(frames):
                if frame.seq in wanted:
                    frames[n] = Frame.of(redacted_change(json.loads(frame.text)))
        channel.owed.clear()
        channel.resumes.clear()
        channel.resumes_bytes = 0

    # -- fan-out passes ------------------------------------------------------------------------
    #
    # A pass writes each live subscriber what it is behind by (its position up to the head), in
    # one write. A pass of a burst goes `fanout_slice` subscribers at a time, and between slices
    # the loop runs other callbacks: a change committed meanwhile is written, in the same write,
    # to every subscriber the pass has not reached; when the pass ends, those it had already
    # reached and who are behind again get a second round. A pass of single changes runs to the
    # end at once. A subscriber never gets a change twice or out of order: its position only
    # moves forward, by exactly what was written to it.

    def _start_pass(self, channel: Channel) -> None:
        if channel.passing:
            return  # the pass under way writes the new frames too
        channel.pass_queue = list(channel.live)
        channel.pass_index = 0
        channel.pass_token += 1
        channel.passing = True
        self._pass(channel, channel.pass_token)

    def _pass(self, channel: Channel, token: int, *, to_the_end: bool = False) -> None:
        """One slice of the pass (all of it if `to_the_end`), then schedule the next."""
        if not channel.passing or token != channel.pass_token:
            return  # finished or abandoned meanwhile
        try:
            self._pass_steps(channel, token, to_the_end)
        except Exception:
            # A bug, not a viewer's trouble. Never leave the stream stuck or go on with a hole:
            # its viewers are closed and resume from their last seq.
            self.pass_failures += 1
            log.exception("fan-out pass of stream %s failed: its viewers resume", channel.session_id)
            self._drop_all(channel, CloseCode.TOO_SLOW, "stream error: resume from your last seq")

    def _pass_steps(self, channel: Channel, token: int, to_the_end: bool) -> None:
        while True:
            queue = channel.pass_queue
            start = channel.pass_index
            end = len(queue) if to_the_end else min(len(queue), start + self.fanout_slice)
            burst = self._write_owed(channel, queue[start:end])
            channel.pass_index = end
            if end < len(queue):
                if to_the_end or not burst:
                    continue
                asyncio.get_running_loop().call_soon(self._pass, channel, token)
                return
            head = channel.head
            behind = [o for o, pos in channel.live.items() if pos != head]
            if not behind:
                channel.passing = False
                channel.pass_queue = []
                return
            channel.pass_queue = behind
            channel.pass_index = 0
            if not to_the_end:
                asyncio.get_running_loop().call_soon(self._pass, channel, token)
                return

    def _finish_pass(self, channel: Channel) -> None:
        """Bring every live subscriber up to the head now (before an unsequenced frame)."""
        if channel.passing:
            self._pass(channel, channel.pass_token, to_the_end=True)

    def _write_owed(self, channel: Channel, outlets: list[Outlet]) -> bool:
        """Write each outlet what it is owed; True if that was several changes for any of them."""
        head = channel.head
        assert head is not None
        failed: list[Outlet] | None = None
        live = channel.live
        delivered = 0
        # Nearly everyone is at the same position: look what they are owed up once per run of it.
        last_pos = -1
        owed: Frame | FrameBatch | None = None
        single = True
        burst = False
        # With a send ring, the outlets that can take bytes straight to their socket are
        # gathered (per run of the same position) and written with one system call.
        ring = self.send_ring
        if ring is not None and ring.broken:
            ring = None  # given up (logged): each outlet writes its own
        fds: list[int] = []
        direct: list[Outlet] = []
        for outlet in outlets:
            pos = live.get(outlet)
            if pos is None or pos == head:
                continue  # left, or up to date
            if pos != last_pos:
                if direct:
                    failed = self._send_direct(channel, direct, fds, owed, last_pos, failed)  # type: ignore[arg-type]
                    delivered += len(direct) * (head - last_pos)
                    direct, fds = [], []
                last_pos = pos
                owed = self._owed(channel, pos)
                single = isinstance(owed, Frame)
                burst = burst or not single
            if owed is None:
                ok = False  # behind by more than the ring holds: it resumes from storage
            else:
                if ring is not None:
                    direct_fd = getattr(outlet, "direct_fd", None)
                    fd = direct_fd() if direct_fd is not None else -1
                    if fd >= 0:
                        fds.append(fd)
                        direct.append(outlet)
                        continue
                if single:
                    ok = outlet.write(owed)  # type: ignore[arg-type]
                else:
                    ok = outlet.write_batch(owed)  # type: ignore[arg-type]
            if ok:
                live[outlet] = head
                delivered += head - pos
            else:
                if failed is None:
                    failed = []
                failed.append(outlet)
        if direct:
            failed = self._send_direct(channel, direct, fds, owed, last_pos, failed)  # type: ignore[arg-type]
            delivered += len(direct) * (head - last_pos)
        self.delivered += delivered
        if failed:
            self._drop_failed(channel, failed)
        return burst

    def _send_direct(
        self,
        channel: Channel,
        outlets: list[Outlet],
        fds: list[int],
        owed: Frame | FrameBatch,
        pos: int,
        failed: list[Outlet] | None,
    ) -> list[Outlet] | None:
        """`owed` to outlets that offered their socket (`direct_fd`), through the send ring; each
        is then at the head. An outlet whose socket took less is handed the rest (it goes out
        behind, as a short write would); one whose outcome is unknown (the ring broke) is added to
        `failed`, to be closed and resume."""
        ring = self.send_ring
        data = owed.ws_bytes
        # Given up by an earlier run of this pass: nothing was sent, each transport writes it.
        results = ring.send(fds, data) if ring is not None and not ring.broken else [0] * len(fds)
        head = channel.head
        assert head is not None
        live = channel.live
        if results is None:
            live.update(dict.fromkeys(outlets, head))
            return failed
        for outlet, sent in zip(outlets, results, strict=True):
            if outlet.direct_rest(data, sent):  # type: ignore[attr-defined]
                live[outlet] = head
            else:
                if failed is None:
                    failed = []
                failed.append(outlet)
        return failed

    def _owed(self, channel: Channel, pos: int) -> Frame | FrameBatch | None:
        """The frames after `pos` up to the head: one frame, or a batch shared by everyone at pos."""
        head = channel.head
        assert head is not None
        if channel.owed_head != head:
            channel.owed.clear()
            channel.owed_head = head
        owed = channel.owed.get(pos)
        if owed is None:
            count = head - pos
            ring = channel.ring
            if count <= 0 or count > len(ring):
                return None
            if count == 1:
                owed = ring[-1]
            else:
                frames = list(itertools.islice(reversed(ring), count))
                frames.reverse()
                owed = FrameBatch(frames)
            channel.owed[pos] = owed
        return owed

    def _fanout(self, channel: Channel, frame: Frame) -> None:
        """An unsequenced frame (heartbeat, presence) to every live subscriber, after every
        change before it: the pass under way is finished first."""
        self._finish_pass(channel)
        failed: list[Outlet] | None = None
        for outlet in channel.live:
            if not outlet.write(frame):
                if failed is None:
                    failed = []
                failed.append(outlet)
        self.delivered += len(channel.live)
        if failed:
            self._drop_failed(channel, failed)

    def _drop_failed(self, channel: Channel, failed: list[Outlet]) -> None:
        for outlet in failed:
            channel.live.pop(outlet, None)
            self._too_slow(outlet)
        if not channel.live:
            self._became_idle(channel)

    def _too_slow(self, outlet: Outlet) -> None:
        """An outlet refused a frame: close it so that it resumes, never go on with a hole."""
        if not outlet.closed:
            self.dropped_slow += 1
            outlet.close(CloseCode.TOO_SLOW, TOO_SLOW_REASON)

    def _send(self, outlet: Outlet, frame: Frame) -> bool:
        """One frame to one subscriber outside the fan-out; False (and closed) if refused."""
        if outlet.write(frame):
            return True
        self._too_slow(outlet)
        return False

    def send_unsequenced(self, session_id: str, message: dict[str, Any]) -> None:
        """A message outside the stream's order (presence): delivered to those live now only."""
        channel = self.channels.get(session_id)
        if channel is not None:
            self._fanout(channel, Frame.of(message))

    # -- subscribing ---------------------------------------------------------------------------

    async def _channel(self, session_id: str) -> Channel:
        channel = self.channels.get(session_id)
        if channel is None:
            channel = self.channels[session_id] = Channel(session_id, self.ring_size)
        while not channel.epoch:
            if channel.loading is None:
                channel.loading = asyncio.get_running_loop().create_future()
                try:
                    head = await self._load_head(session_id)
                except BaseException as exc:
                    channel.loading.set_exception(exc)
                    channel.loading.exception()  # mark retrieved; waiters re-raise it
                    channel.loading = None
                    raise
                if head is None:
                    self._free(channel)
                    channel.loading.set_result(None)
                    channel.loading = None
                    raise NotFound(f"no session {session_id!r}")
                channel.epoch = head[0]
                if channel.head is None:
                    channel.head = head[1]
                channel.loading.set_result(None)
                channel.loading = None
            else:
                await asyncio.shield(channel.loading)
                if self.channels.get(session_id) is not channel:
                    raise NotFound(f"no session {session_id!r}")
        return channel

    def head(self, session_id: str) -> int | None:
        channel = self.channels.get(session_id)
        return channel.head if channel else None

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        session_id: str,
        outlet: Outlet,
        *,
        since: int | None = None,
        epoch: str | None = None,
        note_taker: str | None = None,
        hello: dict[str, Any] | None = None,
    ) -> AsyncIterator[Channel]:
        """`join` and, however the block ends, `leave`."""
        channel = await self.join(
            session_id, outlet, since=since, epoch=epoch, note_taker=note_taker, hello=hello
        )
        try:
            yield channel
        finally:
            self.leave(channel, outlet, note_taker=note_taker)

    async def join(
        self,
        session_id: str,
        outlet: Outlet,
        *,
        since: int | None = None,
        epoch: str | None = None,
        note_taker: str | None = None,
        hello: dict[str, Any] | None = None,
    ) -> Channel:
        """Join a session's stream from `since` (or from now): hello, replay, synced, then live.

        Raises ReloadRequired or NotFound before writing anything. The caller must `leave`.
        """
        channel = self.channels.get(session_id)
        if channel is None:
            channel = self.channels[session_id] = Channel(session_id, self.ring_size)
        channel.joining += 1
        try:
            return await self._join(
                channel, outlet, since=since, epoch=epoch, note_taker=note_taker, hello=hello
            )
        finally:
            channel.joining -= 1
            if channel.subscriber_count == 0:
                self._became_idle(channel)

    async def _join(
        self,
        channel: Channel,
        outlet: Outlet,
        *,
        since: int | None,
        epoch: str | None,
        note_taker: str | None,
        hello: dict[str, Any] | None,
    ) -> Channel:
        session_id = channel.session_id
        channel = await self._channel(session_id)
        head = channel.head
        assert head is not None
        if epoch is not None and epoch != channel.epoch:
            raise ReloadRequired("epoch_changed", channel.epoch, head)
        if since is not None and since > head:
            # A viewer coming from another process may have seen changes that have not reached
            # this one yet: they are in storage if it really saw them.
            await self.catch_up(session_id)
            head = channel.head
            assert head is not None
        if since is not None and since > head:
            raise ReloadRequired("future_position", channel.epoch, head)
        if since is not None and head - since > self.replay_window:
            raise ReloadRequired("too_far_behind", channel.epoch, head)
        start = head if since is None else since
        channel.idle_since = None
        resume = self._resume_batch(channel, head, start, hello) if channel.ring_covers(start) else None
        if resume is not None:
            # The usual short resume (or a fresh viewer): hello, what it missed and synced, encoded
            # once for everyone resuming from the same seq, in one write; live with no await.
            if outlet.write_batch(resume):
                channel.live[outlet] = head
            else:
                self._too_slow(outlet)
            written = False
        else:
            written = self._send(outlet, self._hello(channel, head, start, hello))
        if written:
            paced = True
            backlog: list[Frame] | None = None  # None: replayed from storage
            if channel.ring_covers(start):
                # More than its buffer holds (else `resume` above): written while the viewer's
                # buffer takes it, the rest paced by the viewer, like storage.
                backlog = list(itertools.islice(channel.ring, len(channel.ring) - (head - start), None))
                taken = 0
                while taken < len(backlog) and outlet.write(backlog[taken]):
                    taken += 1
                if taken == len(backlog):
                    paced = False
                    if self._send(outlet, Frame.of({"type": "synced", "seq": head})):
                        channel.live[outlet] = head
                else:
                    start = head - (len(backlog) - taken)
                    del backlog[:taken]
            if paced:
                catching = _Catching(outlet)
                channel.catching.append(catching)
                try:
                    last = await self._replay(channel, catching, start, head, backlog)
                finally:
                    channel.catching.remove(catching)
                if not outlet.closed and last is not None:
                    channel.live[outlet] = last
                    if last != channel.head:
                        self._start_pass(channel)
        if note_taker is not None:
            channel.note_takers[note_taker] += 1
            self._announce_presence(channel)
        return channel

    def _hello(self, channel: Channel, head: int, start: int, hello: dict[str, Any] | None) -> Frame:
        return Frame.of(
            {
                "type": "hello",
                "protocol": PROTOCOL_VERSION,
                "session": channel.session_id,
                "epoch": channel.epoch,
                "seq": head,
                "since": start,
                "heartbeat": self.heartbeat_seconds,
                **(hello or {}),
            }
        )

    def _resume_batch(
        self, channel: Channel, head: int, start: int, hello: dict[str, Any] | None
    ) -> FrameBatch | None:
        """Hello, the ring's frames after `start` and synced, as one batch shared by every
        subscriber joining at this head from `start` with the same hello (a reconnecting crowd:
        one encoding and one write each). None when it is more than `resume_batch_bytes`: that
        replay is paced by the viewer instead."""
        count = head - start
        if count > len(channel.ring):
            return None
        try:
            key: tuple[Any, ...] | None = (start, *(hello or {}).items())
            hash(key)
        except TypeError:  # a hello with nested values (a note-taker's): built for this one only
            key = None
        if channel.resumes_head != head:
            channel.resumes.clear()
            channel.resumes_bytes = 0
            channel.resumes_head = head
        batch = channel.resumes.get(key) if key is not None else None
        if batch is None:
            ring = channel.ring
            frames = [self._hello(channel, head, start, hello)]
            frames.extend(itertools.islice(ring, len(ring) - count, None))
            frames.append(Frame.of({"type": "synced", "seq": head}))
            batch = FrameBatch(frames)
            if batch.size > self.resume_batch_bytes:
                return None
            # Bounded: positions far apart each cost up to resume_batch_bytes until the next change.
            if key is not None and channel.resumes_bytes + batch.size <= 4 * self.resume_batch_bytes:
                channel.resumes[key] = batch
                channel.resumes_bytes += batch.size
        return batch

    def leave(self, channel: Channel, outlet: Outlet, *, note_taker: str | None = None) -> None:
        channel.live.pop(outlet, None)
        if note_taker is not None and channel.note_takers[note_taker] > 0:
            channel.note_takers[note_taker] -= 1
            if channel.note_takers[note_taker] == 0:
                del channel.note_takers[note_taker]
            self._announce_presence(channel)
        if channel.subscriber_count == 0:
            self._became_idle(channel)

    async def _replay(
        self, channel: Channel, catching: _Catching, start: int, upto: int, backlog: list[Frame] | None
    ) -> int | None:
        """Replay (start, upto] from `backlog` (the ring's frames) or else from storage, paced by
        the viewer, then what arrived meanwhile; returns the last seq written (None if the outlet
        was closed on the way)."""
        outlet = catching.outlet
        last = start
        # Chunks keep memory bounded for a long replay; drain() paces to the viewer's speed.
        chunk = 256
        while last < upto and not outlet.closed:
            if backlog is not None:
                frames, backlog = backlog, []  # ring frames are shared: nothing to load or copy
                if not frames:
                    break  # cannot happen (the ring covered it): handled below, as a hole
            else:
                want = min(upto, last + chunk) - last
                texts = await self._load_changes(channel.session_id, last, last + want)
                if len(texts) != want:
                    break  # a hole in storage: handled below
                frames = [Frame(text) for text in texts]
            for frame in frames:
                if not outlet.write(frame):
                    # Paced by the viewer: wait for its buffer to empty, then try once more.
                    await outlet.drain()
                    if not self._send(outlet, frame):
                        return None
            last += len(frames)
            await outlet.drain()
        if last != upto and not outlet.closed:
            # Storage lacks changes the head says exist: never hand out a stream with a hole.
            outlet.close(CloseCode.RELOAD, "history unavailable: reload")
            return None
        # Live changes that arrived while replaying, skipping those storage already gave.
        # The switch-over: no await from here until the caller adds the outlet to the live set.
        if catching.overflowed:
            self._too_slow(outlet)
            return None
        while catching.pending and not outlet.closed:
            frame = catching.pending.popleft()
            if frame.seq is not None and frame.seq > last:
                if not self._send(outlet, frame):
                    return None
                last = frame.seq
        return last if self._send(outlet, Frame.of({"type": "synced", "seq": last})) else None

    def _announce_presence(self, channel: Channel) -> None:
        self._fanout(
            channel,
            Frame.of(
                {
                    "type": "presence",
                    "note_takers": channel.all_note_takers(),
                    "viewers": channel.told_audience,
                }
            ),
        )

    def stats(self, session_id: str) -> dict[str, Any]:
        channel = self.channels.get(session_id)
        if channel is None:
            return {"viewers": 0, "note_takers": []}
        return {"viewers": channel.audience, "note_takers": channel.all_note_takers()}

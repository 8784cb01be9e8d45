"""Publishing and delivery (docs/federation.md), in one process of several (the lease the feed
pollers use, streams/fanout.py's SingleProcess), off the commit path.

The publisher reads followed sessions' change logs from a stored cursor and turns each note's
current state into activities: Create when it first appears, Update when its version moved on,
Delete (with a Tombstone) when it stopped being public, in which case its earlier activities
lose their text and their pending deliveries go (moderated text is never sent). Session start
and end become the event's announcements. Activities and their deliveries (one per shared
inbox) are written in one transaction, and the cursor after them: a crash in between publishes
again, under the same activity ids, which the table and the receivers take once.

The deliverer sends what is due, at most DELIVERIES_PER_HOST at once per server and
MAX_IN_FLIGHT in all, its HTTP on a loop of its own (sideloop.py). A failure is tried again
after 30 s, 1 min, 2 min, ... (at most 6 hours apart) for two days, after which the server is
marked dead: nothing more is queued for it until it follows again. A job is removed only once
delivered, so a kill -9 delivers it again (at least once). While an event's federation is off,
its accounts' jobs are held in the queue, and sent once it is on again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from liveblog.capture.outbound import OutboundError
from liveblog.federation import documents as ap
from liveblog.federation.service import Federation
from liveblog.lifecycle import Listening, Supervisor
from liveblog.models import Change, utcnow
from liveblog.storage import Unit

log = logging.getLogger(__name__)

BATCH = 200  # jobs read per look, changes read per session per pass
# Deliveries at once, all servers together: fewer than the HTTP pool's 20 connections, so none
# waits in httpcore's queue (whose assignment of requests to connections is quadratic).
MAX_IN_FLIGHT = 16
DELIVERIES_PER_HOST = 4  # a remote server sees at most this many of our POSTs at once
# Statuses after which trying again changes nothing (the inbox refuses this activity for good).
PERMANENT = frozenset({400, 403, 404, 405, 410, 413, 422})
FLUSH_SECONDS = 0.05  # deliveries' outcomes are kept together, at most this much later
# A job read from the queue this long before its turn, or that waited for its server's slot, is
# looked up again before it is sent: its note may have been deleted meanwhile (a deletion
# withdraws its deliveries, storage/redaction.py), or its event's federation switched off (its
# deliveries are held). Sent at once, a job costs no second read, unless this process switched
# an event's federation since the job was read.
RECHECK_SECONDS = 1.0
# Commits that follow a publishing pass within this long make one pass after it, not one each: a
# note every 100 ms would otherwise cost the loop a wake-up, and the store a read of the followed
# sessions (and a transaction), per note. A note reaches followers at most this much later; the
# first commit after a quiet spell is published at once.
COALESCE_SECONDS = 0.5
ITEM_OPS = "item."  # a note created, edited or deleted: published as Create, Update or Delete
ANNOUNCED_OP = "session.updated"  # a session started or ended: the event announces it


def publishable(op: str) -> bool:
    """Whether a change of this op can give followers something (the publisher reads the others
    past): a commit of only others (a comment, a vote) does not wake it."""
    return op.startswith(ITEM_OPS) or op == ANNOUNCED_OP


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class Delivery:
    name = "federation.delivery"

    def __init__(self, federation: Federation, listening: Listening | None = None) -> None:
        self.federation = federation
        self.db = federation.db
        # Receivers fetch our key as a delivery arrives: none is sent before the server listens.
        self.listening = listening or Listening()
        # Tuning, changed by tests: the first retry's pause (doubled each time, capped), how
        # long a server may fail before it is given up, how often to look without a wake-up.
        self.retry_base_seconds = 30.0
        self.retry_max_seconds = 6 * 3600.0
        self.give_up_seconds = 2 * 86400.0
        self.idle_seconds = 2.0  # commits in other processes wake no one here: look this often
        self.coalesce_seconds = COALESCE_SECONDS
        self._publish_wanted = asyncio.Event()
        self._deliver_wanted = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._per_host: dict[str, asyncio.Semaphore] = collections.defaultdict(
            lambda: asyncio.Semaphore(DELIVERIES_PER_HOST)
        )
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._outcomes: list[tuple[str, int, str, str]] = []
        self._done: dict[int, float] = {}  # jobs delivered lately, by id: when
        self._flush: asyncio.Future[None] | None = None
        self.delivered = 0
        self.failed = 0
        self.published = 0
        self.running = False
        self._supervisor: Supervisor | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self, supervisor: Supervisor) -> None:
        self.running = True
        self._supervisor = supervisor
        self.federation.queued = self.wake_delivery
        self.federation.base_learnt = self._publish_wanted.set  # what waited for it is published
        supervisor.spawn("federation.publish", self._publish_loop)
        supervisor.spawn("federation.deliver", self._deliver_loop)

    async def close(self) -> None:
        self.running = False
        if self._supervisor is not None:
            await self._supervisor.stop("federation.publish")
            await self._supervisor.stop("federation.deliver")
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "in_flight": len(self._in_flight),
            "delivered": self.delivered,
            "failed": self.failed,
            "published": self.published,
        }

    def wake(self, changes: Sequence[Change]) -> None:
        """Something committed (called on every commit: a look at the changes' ops, at most
        setting an event). Nothing can be published before the server knows its own address
        (Federation.base wakes the publisher when it learns it), nor from changes no follower
        gets; the idle look reads past them."""
        if self.federation.known_base and any(publishable(change.op) for change in changes):
            self._publish_wanted.set()

    def wake_delivery(self) -> None:
        self._deliver_wanted.set()

    # -- publishing ------------------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        woken = False
        while True:
            self._publish_wanted.clear()
            base = self.federation.known_base
            if base and await self.publish_pass(base):
                continue  # more may wait: look again at once
            if woken:
                # Commits are coming: those of the next COALESCE_SECONDS make one pass after it.
                await asyncio.sleep(self.coalesce_seconds)
                if self._publish_wanted.is_set():
                    continue
            woken = False
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns normally when it is
            # cancelled just as the event is set, and this loop would then outlive close().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_seconds):
                    await self._publish_wanted.wait()
                    woken = True

    async def publish_pass(self, base: str) -> bool:
        """Publish what followed sessions said since their cursors; whether a batch was full."""
        full = False
        for session_id, event_id, cursor, _head in await self.db.read(
            lambda r: r.sessions_to_publish(), pool="pages"
        ):
            refs = await self._changes(session_id, cursor)
            if not refs:
                continue
            full = full or len(refs) == BATCH
            items = list(
                dict.fromkeys(item for _, op, item in refs if item is not None and op.startswith(ITEM_OPS))
            )
            announce = any(op == ANNOUNCED_OP for _, op, _ in refs)
            last = refs[-1][0]

            async def op(
                tx: Unit,
                s: str = session_id,
                e: str = event_id,
                i: list[int] = items,
                a: bool = announce,
                q: int = last,
            ) -> tuple[int, int]:
                queued = notes = 0
                for item_id in i:
                    n = await self._publish_item(tx, base, s, item_id)
                    if n is not None:
                        queued += n
                        notes += 1
                if a:
                    queued += await self._announce(tx, base, e, s)
                await tx.set_cursor(s, q)
                return queued, notes

            queued, notes = await self.db.write(op)
            self.published += notes  # counted once committed (an op may run again after a conflict)
            if queued:
                self.wake_delivery()
        return full

    async def _changes(self, session_id: str, cursor: int) -> list[tuple[int, str, int | None]]:
        return await self.db.read(lambda r: r.change_refs(session_id, cursor, BATCH), pool="pages")

    async def _publish_item(self, tx: Unit, base: str, session_id: str, item_id: int) -> int | None:
        """The deliveries queued for a note's Create, Update or Delete; None if there is none."""
        item = await tx.get_item(item_id)
        if item is None or item.kind != "note":  # social posts are other people's words: not ours to post
            return None
        state = await tx.published_note(item_id)
        inboxes = await tx.shared_inboxes("session", session_id)
        actor = ap.actor_url(base, "session", session_id)
        url = ap.note_url(base, item_id)
        if item.deleted:
            if state is None or state[1]:
                return None
            await tx.withdraw_note(item_id)
            await tx.set_published_note(item_id, session_id, item.version, True)
            body = json.dumps(ap.delete(base, item_id, session_id), separators=(",", ":"))
            return await tx.publish_activity(
                f"{url}/delete", "session", session_id, "Delete", item_id, body, inboxes
            )
        if state is None:
            if not inboxes:
                return None  # nobody follows yet: nothing is published
            kind, activity_id = "Create", f"{url}/activity"
        elif state[1] or item.version <= state[0]:
            return None
        else:
            kind, activity_id = "Update", f"{url}/update/{item.version}"
        media = [src.rsplit("/", 1)[-1] for src, _ in ap.images_of(item.html)]
        note = ap.note(
            base,
            item_id=item_id,
            session_id=session_id,
            body=item.body,
            html=item.html,
            key_point=item.key_point,
            published=item.typed_at,
            updated=item.updated_at if kind == "Update" else None,
            media_types=await tx.media_types(media),
        )
        await tx.set_published_note(item_id, session_id, item.version, False)
        body = json.dumps(ap.wrap(kind, activity_id, actor, note), separators=(",", ":"), ensure_ascii=False)
        return await tx.publish_activity(activity_id, "session", session_id, kind, item_id, body, inboxes)

    async def _announce(self, tx: Unit, base: str, event_id: str, session_id: str) -> int:
        session = await tx.get_session(session_id)
        if session is None or session.state not in ("live", "ended"):
            return 0
        inboxes = await tx.shared_inboxes("event", event_id)
        if not inboxes:
            return 0
        note = ap.announcement(base, event_id, session, session.state, utcnow())
        actor = ap.actor_url(base, "event", event_id)
        activity_id = f"{note['id']}/activity"
        body = json.dumps(
            ap.wrap("Create", activity_id, actor, note), separators=(",", ":"), ensure_ascii=False
        )
        return await tx.publish_activity(activity_id, "event", event_id, "Create", None, body, inboxes)

    # -- delivering ------------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        ready: collections.deque[dict[str, Any]] = collections.deque()
        while True:
            self._deliver_wanted.clear()
            if not ready:
                # Read again only once what was read is started: one read per wave of 200, not
                # one per delivery that ends (which read the whole wave again each time).
                jobs = await self.db.read(
                    lambda r: r.due_deliveries(utcnow(), BATCH + len(self._in_flight)), pool="pages"
                )
                now = time.monotonic()
                for job in jobs:
                    job["read_at"] = now
                for job_id, at in list(self._done.items()):
                    if now - at > 60:  # a read started since cannot return it
                        del self._done[job_id]
                ready.extend(
                    job for job in jobs if job["id"] not in self._in_flight and job["id"] not in self._done
                )
            if ready and not self.listening.is_set():
                # A restarted server has deliveries due before uvicorn binds its socket: sent
                # now, each receiver's fetch of our key would fail, and wait 30 s for a retry.
                log.info("%d fediverse deliveries wait until the server listens", len(ready))
                await self.listening.wait("fediverse deliveries")
            while ready and len(self._in_flight) < MAX_IN_FLIGHT:
                job = ready.popleft()
                if job["id"] not in self._in_flight:
                    self._in_flight[job["id"]] = asyncio.create_task(self._run(job))
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns normally when it is
            # cancelled just as the event is set, and this loop would then outlive close().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_seconds):
                    await self._deliver_wanted.wait()

    async def _run(self, job: dict[str, Any]) -> None:
        try:
            outcome = await self._attempt(job)
            self._outcomes.append(outcome)
            if self._flush is None:
                self._flush = asyncio.ensure_future(self._write_outcomes())
            await asyncio.shield(self._flush)  # the job stays in flight until its outcome is kept
        finally:
            self._in_flight.pop(job["id"], None)
            self._deliver_wanted.set()  # a slot is free

    async def _write_outcomes(self) -> None:
        """Keep the outcomes of the deliveries that ended in the last FLUSH_SECONDS, in one
        transaction: one commit per delivery would queue 200 commits (and fsyncs) in front of
        the live stream's notes for every federated note."""
        await asyncio.sleep(FLUSH_SECONDS)
        outcomes, self._outcomes, self._flush = self._outcomes, [], None

        async def keep(tx: Unit) -> None:
            for kind, job_id, value, error in outcomes:
                if kind == "done":
                    await tx.delivered(job_id)
                elif kind == "retry":
                    await tx.retry_delivery(job_id, value, error)
                elif kind == "dead":
                    await tx.mark_host_dead(value)

        await self.db.write(keep)
        now = time.monotonic()
        # A read that began before this write may still return these jobs: they are not sent again.
        self._done.update((job_id, now) for kind, job_id, _, _ in outcomes if kind == "done")

    async def _attempt(self, job: dict[str, Any]) -> tuple[str, int, str, str]:
        """Deliver one job: what to keep of it (done, retry at a time, or its server dead)."""
        # Signed as the activity's actor, by the address it was published under (in this process
        # or another one).
        signer = ap.key_id(str(json.loads(job["body"])["actor"]))
        problem = ""
        status = 0
        host = self._per_host[job["host"]]
        waited = host.locked()
        async with self._slots, host:
            if (
                waited
                or time.monotonic() - job["read_at"] > RECHECK_SECONDS
                or job["read_at"] <= self.federation.switched_at
            ):
                state = await self.db.read(lambda r: r.delivery_pending(job["id"]), pool="pages")
                if state == "gone":
                    return "done", job["id"], "", "withdrawn"  # its note was deleted: nothing to send
                if state == "held":
                    return "held", job["id"], "", ""  # its event's federation is off: it stays queued
            try:
                status = await self.federation.post_body(job["inbox"], signer, job["body"].encode())
            except OutboundError as exc:
                problem = str(exc)
        if 200 <= status < 300:
            self.delivered += 1
            return "done", job["id"], "", ""
        problem = problem or f"answered {status}"
        if status in PERMANENT:
            self.failed += 1
            log.warning("delivery to %s refused for good: %s", job["inbox"][:200], problem)
            return "done", job["id"], "", problem  # nothing more to try
        now = datetime.now(UTC)
        if (now - _parse(job["first_at"])).total_seconds() >= self.give_up_seconds:
            self.failed += 1
            log.warning("server %s failed for two days (%s): marked dead", job["host"], problem)
            return "dead", job["id"], job["host"], problem
        pause = min(self.retry_base_seconds * 2 ** job["attempts"], self.retry_max_seconds)
        return "retry", job["id"], _stamp(now + timedelta(seconds=pause)), problem

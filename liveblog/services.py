"""The running parts of one Liveblog process: its components, opened in order and closed in
reverse by the app's lifespan, and the supervisor of their background tasks (lifecycle.py).

Order: the store (everything needs it), the stream hub (publishing needs it), then the
components that write through the store and publish through the hub (the tally coalescer;
feed pollers and the archive's check join here). Closing runs backwards, so the coalescer's
last tallies are written while the store is still open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from liveblog.access.accounts import Accounts
from liveblog.access.readers import Readers
from liveblog.access.secret import kept_secret
from liveblog.archive import Archive
from liveblog.archive.answers import SpeakerAnswers
from liveblog.archive.comments import Comments
from liveblog.archive.proceedings import ProceedingsKeeper
from liveblog.capture.feeds.service import FeedService
from liveblog.capture.importing import ProgrammeImport
from liveblog.capture.notes import NoteCapture
from liveblog.capture.programme import Programme
from liveblog.capture.votes import Audience
from liveblog.errors import ConfigError, Unavailable
from liveblog.federation.delivery import Delivery
from liveblog.federation.service import Federation
from liveblog.lifecycle import Component, Listening, Supervisor
from liveblog.models import Change
from liveblog.settings import Settings
from liveblog.sharedstate import SharedCounters
from liveblog.storage import LIVE_READERS, Store, make_store
from liveblog.streams.fanout import RedisFanout, SingleProcess
from liveblog.streams.hub import StreamHub
from liveblog.streams.uring import SendRing

log = logging.getLogger(__name__)

# Replays from storage read at most this many of the live pool's readers at a time, so that one
# is always left for a join's checks and a stream's head (storage.LIVE_READERS says why).
REPLAY_READERS = LIVE_READERS - 1


# How often the store is pinged for /healthz (a trivial query on PostgreSQL, a stat on SQLite).
PING_SECONDS = 2.0


class StoreComponent:
    name = "store"

    def __init__(self, db: Store) -> None:
        self.db = db
        self.reachable = True

    async def open(self, supervisor: Supervisor) -> None:
        await self.db.open()
        supervisor.spawn("store.ping", self._ping_loop)

    async def _ping_loop(self) -> None:
        while True:
            self.reachable = await self.db.ping()
            await asyncio.sleep(PING_SECONDS)

    async def close(self) -> None:
        await self.db.close()

    def health(self) -> dict[str, Any]:
        return {
            "ok": self.db.healthy and self.reachable,
            "reachable": self.reachable,
            "commits": self.db.commits,
            "writer_failures": self.db.writer_failures,
            "last_writer_error": self.db.last_writer_error,
        }


class HubComponent:
    name = "hub"

    def __init__(self, hub: StreamHub, *, send_ring: bool = True) -> None:
        self.hub = hub
        self.send_ring = send_ring  # streams.io_uring: open a send ring for fan-out writes

    async def open(self, supervisor: Supervisor) -> None:
        if self.send_ring:
            self.hub.send_ring = SendRing.open()  # None (logged why) where the kernel has none
        supervisor.spawn("hub.heartbeats", self.hub.run_heartbeats)  # heartbeats and freeing idle channels

    async def close(self) -> None:
        await self.hub.stop()
        ring, self.hub.send_ring = self.hub.send_ring, None
        if ring is not None:
            ring.close()

    def health(self) -> dict[str, Any]:
        ring = self.hub.send_ring
        return {
            "ok": True,
            "channels": len(self.hub.channels),
            "dropped_slow": self.hub.dropped_slow,
            "fanout_writes": "io_uring" if ring is not None and not ring.broken else "one per viewer",
        }


class AudienceComponent:
    name = "audience"

    def __init__(self, audience: Audience) -> None:
        self.audience = audience
        self._supervisor: Supervisor | None = None

    async def open(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        await self.audience.load_deadlines()
        supervisor.spawn("votes.tallies", self.audience.coalescer.run)

    async def close(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.stop("votes.tallies")
        await self.audience.stop()  # flushes pending tallies while the store is open

    def health(self) -> dict[str, Any]:
        return {"ok": True}


class ArchiveComponent:
    """The archive's background job (docs/archive.md): archives ended sessions (and, with end_rule
    "scheduled", ends overdue ones), and does the writes that reading pages asked for."""

    name = "archive"

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self._supervisor: Supervisor | None = None

    async def open(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        supervisor.spawn("archive.check", self.archive.run)

    async def close(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.stop("archive.check")
        await self.archive.cards_kept()  # before the store closes under them

    def health(self) -> dict[str, Any]:
        return {"ok": True, **self.archive.health()}


def committed(
    hub: StreamHub, fanout: RedisFanout | None, archive: Archive, delivery: Delivery | None = None
) -> Callable[[list[Change]], None]:
    """What the store calls after each commit, in commit order: the changes go to this
    process's viewers (and first, with several processes, to Redis for the others'), any
    change to a session's stream (a note edit, a comment, ...) makes its page stale, and the
    fediverse's publisher is woken (it publishes in its own task, never on this path)."""
    publish: Callable[[list[Change]], None] = hub.publish
    if fanout is not None:
        forward = fanout.forward

        def forward_first(changes: list[Change]) -> None:
            # To Redis first: queueing wakes the publisher task, and the local fan-out (a
            # write to each of this process's viewers, ~10 us each) is the next callback, so
            # the other processes' viewers do not wait for this one's. The hub takes changes
            # in any order and twice (a storage read may load a channel in between).
            forward(changes)
            asyncio.get_running_loop().call_soon(hub.publish, changes)

        publish = forward_first

    def on_commit(changes: list[Change]) -> None:
        publish(changes)
        archive.invalidate({c.session_id for c in changes})
        if delivery is not None and changes:
            delivery.wake(changes)  # at most sets an event

    return on_commit


@dataclass
class Services:
    settings: Settings
    db: Store
    hub: StreamHub
    notes: NoteCapture
    programme: Programme
    accounts: Accounts
    audience: Audience
    feeds: FeedService
    archive: Archive
    comments: Comments
    readers: Readers
    # programme files (frab, pretalx, iCalendar: docs/programme.md), and exports restored
    imports: ProgrammeImport
    answers: SpeakerAnswers  # questions answered after the talk: docs/archive.md
    proceedings: ProceedingsKeeper | None = None  # the event archive page's kept books
    federation: Federation | None = None  # events and sessions as fediverse accounts (None: off)
    delivery: Delivery | None = None  # the fediverse's publishing and delivery queue
    listening: Listening = field(default_factory=Listening)  # whether the server accepts connections yet
    components: list[Component] = field(default_factory=list)
    supervisor: Supervisor = field(default_factory=Supervisor)
    extra: dict[str, Any] = field(default_factory=dict)
    _opened: list[Component] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Every component built complete, from constructor arguments, in the order they open.
        Two links point back and are registered once, at the end, because the objects they
        call are built after the ones that call them: the store's commits go to the hub (which
        reads from the store) and to the archive's caches, and the Redis fan-out's messages from
        other processes go to the accounts' sockets and the feed pollers (which publish
        through it)."""
        settings = kept_secret(settings)  # without LIVEBLOG_SECRET_KEY: the key kept in the data directory
        if settings.redis.url:
            if not settings.database.url:
                raise ConfigError(
                    "redis.url is set, so several processes serve together: they need one shared database. "
                    "Set database.url (PostgreSQL); SQLite serves one process."
                )
            if not settings.secret_key_from_env:
                raise ConfigError(
                    "redis.url is set, so several processes serve together: they must all sign with the same "
                    "key. Set LIVEBLOG_SECRET_KEY (the same long random value) for every process."
                )
        db = make_store(settings.database)

        async def load_head(session_id: str) -> tuple[str, int] | None:
            return await db.read(lambda r: r.stream_head(session_id))

        replaying = asyncio.Semaphore(REPLAY_READERS)

        async def load_changes(session_id: str, after: int, upto: int) -> list[str]:
            # Within the same time limit as the read itself (storage's read timeout).
            try:
                async with asyncio.timeout(settings.database.read_timeout_seconds):
                    await replaying.acquire()
            except TimeoutError:
                raise Unavailable("the database did not answer in time; try again shortly") from None
            try:
                return await db.read(lambda r: r.changes_between(session_id, after, upto))
            finally:
                replaying.release()

        hub = StreamHub(
            load_head=load_head,
            load_changes=load_changes,
            ring_size=settings.streams.ring_size,
            replay_window=settings.streams.replay_window,
            heartbeat_seconds=settings.streams.heartbeat_seconds,
            resume_batch_bytes=settings.streams.viewer_buffer_bytes,
        )
        # Several processes: each one's commits reach the others' hubs through Redis, the
        # throttles count across every process (sharedstate.py), a revocation closes the
        # credential's sockets on every process (access/sockets.py), "poll now" asked on any
        # process reaches the one holding the feed lease, and the organisers' feed panel on every
        # process shows the sources' status.
        fanout = (
            RedisFanout(
                settings.redis.url,
                hub,
                secret_key=settings.secret_key,
                resync_seconds=settings.redis.resync_seconds,
            )
            if settings.redis.url
            else None
        )
        client = fanout.client if fanout is not None else None
        audience = Audience(db, hub, settings, shared=SharedCounters(client))
        accounts = Accounts(
            db,
            secret_key=settings.secret_key,
            shared=SharedCounters(client),
            broadcast=fanout.forward_revocation if fanout is not None else None,
        )
        feeds = FeedService(
            db,
            hub,
            settings,
            shared=SharedCounters(client) if fanout is not None else None,
            poll_elsewhere=partial(fanout.send_signal, "feeds.poll") if fanout is not None else None,
            retarget_elsewhere=partial(fanout.send_signal, "feeds.retarget") if fanout is not None else None,
        )
        archive = Archive(db, settings.archive)
        # Kept beside the SQLite file (database.path's folder, also on PostgreSQL): docs/archive.md.
        proceedings = ProceedingsKeeper(
            archive,
            Path(settings.database.path).resolve().parent / "proceedings",
            base_url=settings.server.public_url,
        )
        components: list[Component] = [
            StoreComponent(db),
            HubComponent(hub, send_ring=settings.streams.io_uring),
        ]
        if fanout is not None:
            components.append(fanout)
        components.append(AudienceComponent(audience))
        # Feed pollers run in one process of several (a paid API bills every read).
        components.append(SingleProcess(feeds, fanout, key="feeds") if fanout is not None else feeds)
        components += [ArchiveComponent(archive), proceedings]
        listening = Listening()  # closed by `liveblog serve` until uvicorn listens (web/serving.py)
        federation = Federation(db, settings) if settings.federation.enabled else None
        delivery = None
        if federation is not None:
            components.append(federation)
            # Publishing and delivery in one process of several, as the feed pollers.
            delivery = Delivery(federation, listening)
            components.append(
                SingleProcess(delivery, fanout, key="federation") if fanout is not None else delivery
            )

        # The links back, each registered once.
        db.on_commit = committed(hub, fanout, archive, delivery)
        if fanout is not None:
            sockets = accounts.sockets

            def revoked_elsewhere(key: str) -> None:
                sockets.revoke(key, local_only=True)

            fanout.listen(
                on_revoke=revoked_elsewhere,
                on_resync=accounts.recheck_sockets,  # catches revocations Redis missed
                signals={"feeds.poll": feeds.poll_now, "feeds.retarget": feeds.retarget},
            )
        return cls(
            settings=settings,
            db=db,
            hub=hub,
            notes=NoteCapture(db, settings.limits),
            programme=Programme(
                db, default_language=settings.archive.language, on_change=feeds.programme_changed
            ),
            accounts=accounts,
            audience=audience,
            feeds=feeds,
            archive=archive,
            comments=Comments(db),
            readers=Readers(db, accounts),
            imports=ProgrammeImport(db, settings.archive.timezone, on_change=feeds.programme_changed),
            answers=SpeakerAnswers(db, archive.invalidate),
            proceedings=proceedings,
            federation=federation,
            delivery=delivery,
            listening=listening,
            components=components,
        )

    def add(self, component: Component) -> None:
        """Add a component, opened after the ones before it (call before open)."""
        if self._opened:
            raise RuntimeError("add components before the services are opened")
        self.components.append(component)

    async def open(self) -> None:
        try:
            for component in self.components:
                await component.open(self.supervisor)
                self._opened.append(component)
        except BaseException:
            log.exception("opening %s failed; closing what was opened", component.name)
            await self.close()
            raise

    async def close(self) -> None:
        opened, self._opened = self._opened, []
        for component in reversed(opened):
            try:
                await component.close()
            except Exception:  # the others still close
                log.exception("closing %s failed", component.name)
        await self.supervisor.close()

    def health(self) -> dict[str, Any]:
        """What /healthz reports: ok only if every component and background task is."""
        components = {c.name: c.health() for c in self.components}
        ok = all(h.get("ok", False) for h in components.values()) and self.supervisor.ok
        if self.components and not self._opened:
            ok = False
        return {"ok": ok, "components": components, "tasks": self.supervisor.health()}

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liveblog.access.accounts import Accounts
from liveblog.access.readers import Readers
from liveblog.access.secret import kept_secret
from liveblog.archive import Archive
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
from liveblog.lifecycle import Component, Supervisor
from liveblog.models import Change
from liveblog.settings import Settings
from liveblog.sharedstate import SharedCounters
from liveblog.storage import LIVE_READERS, Store, make_store
from liveblog.streams.fanout import RedisFanout, SingleProcess
from liveblog.streams.hub import StreamHub

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

    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub

    async def open(self, supervisor: Supervisor) -> None:
        supervisor.spawn("hub.heartbeats", self.hub.run_heartbeats)  # heartbeats and freeing idle channels

    async def close(self) -> None:
        await self.hub.stop()

    def health(self) -> dict[str, Any]:
        return {"ok": True, "channels": len(self.hub.channels), "dropped_slow": self.hub.dropped_slow}


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
    """Archives ended sessions (and, with end_rule "scheduled", ends overdue ones) in the background."""

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
        return {"ok": True}


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
    imports: ProgrammeImport  # programme files (frab, pretalx, iCalendar): docs/programme.md
    proceedings: ProceedingsKeeper | None = None  # the event archive page's kept books
    federation: Federation | None = None  # events and sessions as fediverse accounts (None: off)
    delivery: Delivery | None = None  # the fediverse's publishing and delivery queue
    components: list[Component] = field(default_factory=list)
    supervisor: Supervisor = field(default_factory=Supervisor)
    extra: dict[str, Any] = field(default_factory=dict)
    _opened: list[Component] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        settings = kept_secret(settings)  # without LIVEBLOG_SECRET_KEY: the key kept in the data directory
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
        db.on_commit = hub.publish
        archive = Archive(db, settings.archive)

        audience = Audience(db, hub, settings)
        accounts = Accounts(db, secret_key=settings.secret_key)
        feeds = FeedService(db, hub, settings)
        components: list[Component] = [StoreComponent(db), HubComponent(hub)]
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
            # Several processes: each one's commits reach the others' hubs through Redis.
            fanout = RedisFanout(
                settings.redis.url,
                hub,
                secret_key=settings.secret_key,
                resync_seconds=settings.redis.resync_seconds,
            )

            def publish(changes: list[Change]) -> None:
                # To Redis first: queueing wakes the publisher task, and the local fan-out (a
                # write to each of this process's viewers, ~10 us each) is the next callback, so
                # the other processes' viewers do not wait for this one's. The hub takes changes
                # in any order and twice (a storage read may load a channel in between).
                fanout.forward(changes)
                asyncio.get_running_loop().call_soon(hub.publish, changes)

            db.on_commit = publish
            components.append(fanout)
            # Throttles count across every process (sharedstate.py).
            audience.flood.shared.client = fanout.client
            accounts.throttle.shared.client = fanout.client
            # A revocation closes the credential's sockets on every process (access/sockets.py).
            accounts.sockets.broadcast = fanout.forward_revocation
            sockets = accounts.sockets

            def revoked_elsewhere(key: str) -> None:
                sockets.revoke(key, local_only=True)

            fanout.on_revoke = revoked_elsewhere
            fanout.on_resync = accounts.recheck_sockets  # catches revocations Redis missed
            # "Poll now" asked on any process reaches the one holding the feed lease.
            fanout.signals["feeds.poll"] = feeds.poll_now
            signal_poll = fanout.send_signal
            feeds.poll_elsewhere = lambda: signal_poll("feeds.poll")
            # The organisers' feed panel on every process shows the sources' status.
            feeds.shared = SharedCounters()
            feeds.shared.client = fanout.client
        components.append(AudienceComponent(audience))
        # Feed pollers run in one process of several (a paid API bills every read).
        components.append(SingleProcess(feeds, fanout, key="feeds") if settings.redis.url else feeds)
        components.append(ArchiveComponent(archive))
        # Kept beside the SQLite file (database.path's folder, also on PostgreSQL): docs/archive.md.
        proceedings = ProceedingsKeeper(
            archive,
            Path(settings.database.path).resolve().parent / "proceedings",
            base_url=settings.server.public_url,
        )
        components.append(proceedings)
        federation = Federation(db, settings) if settings.federation.enabled else None
        delivery = None
        if federation is not None:
            components.append(federation)
            # Publishing and delivery in one process of several, as the feed pollers.
            delivery = Delivery(federation)
            components.append(
                SingleProcess(delivery, fanout, key="federation") if settings.redis.url else delivery
            )
        publish_changes = db.on_commit

        def on_commit(changes: list[Change]) -> None:
            publish_changes(changes)
            # Any change to a session's stream (a note edit, a comment, ...) changes its page.
            archive.invalidate({c.session_id for c in changes})
            if delivery is not None and changes:
                delivery.wake()  # sets an event: the publishing itself runs in its own task

        db.on_commit = on_commit
        return cls(
            settings=settings,
            db=db,
            hub=hub,
            notes=NoteCapture(db, settings.limits),
            programme=Programme(db, default_language=settings.archive.language),
            accounts=accounts,
            audience=audience,
            feeds=feeds,
            archive=archive,
            comments=Comments(db),
            readers=Readers(db, accounts),
            imports=ProgrammeImport(db, settings.archive.timezone),
            proceedings=proceedings,
            federation=federation,
            delivery=delivery,
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

"""The feed service: runs every configured source under supervision, and ingests what they
collect: each post stored once, routed to sessions by the routing rule (routing.py), decided by
the event's rules and policies, and approved ones put into their streams in the same write.
Moderation (moderation.py) and the organisers' status panel (panel.py) are its two other jobs,
reached as `feeds.moderation` and `feeds.panel`.

Approved posts enter the session's stream as ordinary items of kind "social" (sequenced, so a
resuming viewer gets them); a post removed later is an `item.deleted` change. Moderators learn
of new waiting posts through an unsequenced `feed.queue` message on the session's stream, which
carries no post content (a post nobody approved must not reach viewers).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from liveblog.capture.feeds.base import (
    EndedSession,
    EventTarget,
    IngestResult,
    SessionTarget,
    Source,
    describe,
    split_terms,
)
from liveblog.capture.feeds.media import MediaFetcher
from liveblog.capture.feeds.moderation import FeedModeration
from liveblog.capture.feeds.panel import SHARED_STATUS_SECONDS, FeedPanel
from liveblog.capture.feeds.render import render_post
from liveblog.capture.feeds.routing import (
    DELETED_FIELDS,
    decide,
    item_data,
    publish,
    queue_changed,
    route_post,
    stream_of,
)
from liveblog.lifecycle import Supervisor
from liveblog.models import Session, SocialPost, SocialRoute
from liveblog.settings import Settings
from liveblog.sharedstate import SharedCounters
from liveblog.storage import Op, Store, Tx
from liveblog.streams.hub import StreamHub
from liveblog.text import xml_chars

log = logging.getLogger(__name__)

INGEST_CHUNK = 5  # posts per write transaction: ~2 ms of writer time, so notes never queue long
TARGETS_TTL = 1.0  # seconds a computed list of collecting sessions is reused by every source


def _aware(value: str, venue: ZoneInfo) -> datetime | None:
    """A programme time as an aware datetime: naive ones are the venue's wall-clock time
    (archive.timezone), whatever zone the server runs in."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=venue)


Prepared = tuple[SocialPost, list[tuple[str, str]], list[tuple[int, str, bytes]], tuple[str, bytes] | None]


# Authors still named by DID that a Bluesky source asks about when it starts, at most.
UNRESOLVED_AUTHORS = 1000


class FeedService:
    def __init__(
        self,
        db: Store,
        hub: StreamHub,
        settings: Settings,
        *,
        sources: list[Source] | None = None,
        fetcher: MediaFetcher | None = None,
        shared: SharedCounters | None = None,
        poll_elsewhere: Callable[[], None] | None = None,
        retarget_elsewhere: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.hub = hub
        self.settings = settings
        self.sources: list[Source] = list(sources) if sources is not None else []
        self._explicit_sources = sources is not None
        self.fetcher = fetcher
        self._supervisor: Supervisor | None = None
        self._task_names: list[str] = []
        self._targets: tuple[float, list[EventTarget]] | None = None
        self._targets_generation = 0  # forget_targets counts up: a read begun before it is stale
        # Live sessions -> from when they take the event's posts (those made before go elsewhere).
        self._seen_live: dict[str, datetime] = {}
        self._wake = asyncio.Event()
        self.wake_generation = 0  # counts poll_now() calls: a poll asked for mid-round is not missed
        self._retarget = asyncio.Event()
        self.retarget_generation = 0  # counts retarget() calls, as wake_generation counts polls
        self._status_event = asyncio.Event()
        self.status_version = 0
        self.ingested = 0
        self.on_ingest: list[Callable[[SocialPost], None]] = []  # benchmark hook: called after commit
        # Given when several processes share the work (services.py): asks the process that
        # holds the feed lease, wherever it is, to poll now (through Redis).
        self.poll_elsewhere = poll_elsewhere
        self.retarget_elsewhere = retarget_elsewhere  # the same, for retarget()
        # Given when several processes share the work: the process running the sources keeps
        # their status here, and the organisers' panel on any other process reads it.
        self.shared = shared
        self.moderation = FeedModeration(db, hub, settings)
        self.panel = FeedPanel(self)

    # -- lifecycle (a lifecycle.Component) ------------------------------------------------------

    def use_sources(self, sources: list[Source]) -> None:
        """Run these sources instead of the configured ones (tests, embedding); before open."""
        self.sources = list(sources)
        self._explicit_sources = True

    name = "feeds"

    async def open(self, supervisor: Supervisor) -> None:
        """Start one supervised task per source. A source that crashes (a bug: bad responses it
        handles itself) is restarted by the supervisor with a jittered back-off, and its panel
        row shows the crash and the restart count."""
        self._supervisor = supervisor
        if not self.settings.feeds.enabled:
            return
        if not self._explicit_sources:
            from liveblog.capture.feeds import build_sources

            self.sources = build_sources(self.settings)
        if self.fetcher is None and self.settings.feeds.fetch_media:
            self.fetcher = MediaFetcher(
                self.settings.feeds.media_bytes,
                self.settings.feeds.media_timeout_seconds,
                allow_private=self.settings.feeds.allow_private_addresses,
            )
        for index, source in enumerate(self.sources):
            name = f"feeds.{source.network}.{index}"
            self._task_names.append(name)
            supervisor.spawn(name, self._runner(source))
        if self.shared is not None:
            self._task_names.append("feeds.status")
            supervisor.spawn("feeds.status", self.panel.share)

    def _runner(self, source: Source) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                await source.run(self)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                source.status.restarts += 1
                source.status.fail(f"crashed: {describe(exc)}")
                self.changed()
                raise  # the supervisor logs it and restarts after a back-off

        return run

    async def close(self) -> None:
        if self._supervisor is not None:
            for name in reversed(self._task_names):
                await self._supervisor.stop(name)
        self._task_names.clear()
        for source in self.sources:
            try:
                await source.close()
            except Exception:
                log.exception("closing feed source %s failed", source.network)
        if self.fetcher is not None:
            await self.fetcher.close()
            self.fetcher = None

    def health(self) -> dict[str, Any]:
        """Reported on /healthz; a network being down is the network's trouble, not ours: ok stays
        true, and each source's state is listed."""
        return {
            "ok": True,
            "sources": {
                f"{s.network}:{s.status.name}": {
                    "state": s.status.state,
                    "restarts": s.status.restarts,
                    "last_error": s.status.last_error or None,
                }
                for s in self.sources
            },
        }

    # -- what sources call (base.Feed) -------------------------------------------------------------

    @property
    def runs_sources(self) -> bool:
        """Whether this process runs the sources (several processes: the feed lease's holder)."""
        return bool(self._task_names)

    def changed(self) -> None:
        self.status_version += 1
        event, self._status_event = self._status_event, asyncio.Event()
        event.set()

    async def wait_for_status(self, version: int, timeout: float) -> int:
        """Wait until the status changes past `version` (or the timeout); returns the version.
        A process whose sources run elsewhere learns of changes only by reading them again, so
        it waits at most SHARED_STATUS_SECONDS."""
        if self.shared is not None and not self._task_names:
            timeout = min(timeout, SHARED_STATUS_SECONDS)
        if self.status_version == version:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._status_event.wait()
        return self.status_version

    def forget_targets(self) -> None:
        """A session went live or ended here: route the next post by its new state, not by the
        collecting sessions computed up to TARGETS_TTL ago, nor by a list being read right now."""
        self._targets = None
        self._targets_generation += 1

    def state_changed(self, before: Session, after: Session) -> None:
        """An organiser changed a session's state: a session gone live has its hashtags wanted now,
        not at the next scheduled poll; one ended takes no post made from now on."""
        if after.is_live and not before.is_live:
            self.request_poll()
        elif after.state != before.state:
            self.forget_targets()

    def programme_changed(self) -> None:
        """An event or session was created, imported or deleted, or its hashtags, times or state
        edited: what is collected may have changed. Tell the sources here and, with several
        processes, where they run (through Redis)."""
        self.retarget()
        if self.retarget_elsewhere is not None:
            self.retarget_elsewhere()

    def retarget(self) -> None:
        """What is collected may have changed: wake the sources that lose posts while they do not
        listen for a tag (Jetstream: a new hashtag is listened for now, not at its next idle
        check 30 s later). Polling sources are not woken: their next poll reads back to the
        window's start (and an X poll is billed), so they lose nothing by waiting."""
        self.forget_targets()
        self.retarget_generation += 1
        event, self._retarget = self._retarget, asyncio.Event()
        event.set()

    def poll_now(self) -> None:
        """Wake every sleeping poller (a session went live, a test wants the next poll)."""
        self.forget_targets()
        self.wake_generation += 1
        event, self._wake = self._wake, asyncio.Event()
        event.set()

    def request_poll(self) -> None:
        """An organiser asked to poll now: wake the pollers here, and, with several processes,
        those of the process that runs them (the feed lease may be held by another one)."""
        self.poll_now()
        if self.poll_elsewhere is not None:
            self.poll_elsewhere()

    async def sleep(
        self, seconds: float, since: int | None = None, *, retargeted_since: int | None = None
    ) -> None:
        if since is not None and since != self.wake_generation:
            return  # poll_now() was called while the caller was busy: go again at once
        if retargeted_since is not None and retargeted_since != self.retarget_generation:
            return  # and so was retarget(), for a caller that listens for it
        wakes = [self._wake] + ([self._retarget] if retargeted_since is not None else [])
        waits = [asyncio.ensure_future(event.wait()) for event in wakes]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def get_cursor(self, key: str) -> str | None:
        return await self.db.read(lambda r: r.get_feed_cursor(key), pool="pages")

    async def set_cursor(self, key: str, value: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.set_feed_cursor(key, value)

        await self.db.write(op)

    async def reads_used(self, network: str) -> dict[tuple[str, str], int]:
        return await self.db.read(lambda r: r.feed_reads(network), pool="pages")

    async def targets(self) -> list[EventTarget]:
        cached = self._targets
        if cached is not None and time.monotonic() - cached[0] < TARGETS_TTL:
            return cached[1]
        lead = timedelta(minutes=self.settings.feeds.lead_minutes)
        trail = timedelta(minutes=self.settings.feeds.trail_minutes)
        venue = ZoneInfo(self.settings.archive.timezone)
        now = datetime.now().astimezone()

        async def load(r: Tx) -> list[EventTarget]:
            out = []
            for event in await r.list_events():
                tags, terms = split_terms(event.hashtags)
                sessions = []
                starts = []
                span: list[tuple[datetime, datetime]] = []  # every session's (start, end): the event's days
                ended: list[datetime] = []
                past: list[EndedSession] = []  # ended sessions seen live: for posts collected late
                for s in await r.list_sessions(event.id):
                    begins, ends = _aware(s.starts_at, venue), _aware(s.ends_at, venue)
                    if begins is None or ends is None or s.cancelled:  # a cancelled session never happens
                        continue
                    span.append((begins, ends))
                    if s.state == "ended":
                        ended.append(min(ends, now))
                        since, finished = self._seen_live.get(s.id), _aware(s.ended_at or "", ZoneInfo("UTC"))
                        if since is not None and finished is not None:
                            past.append(EndedSession(s.id, since, finished))
                        continue
                    if s.state == "live" or begins - lead <= now <= ends:
                        own, _ = split_terms(s.hashtags)
                        live_since = self._live_since(s, begins, now) if s.state == "live" else None
                        sessions.append(
                            SessionTarget(s.id, own - tags, s.state == "live", begins, live_since)
                        )
                        starts.append(begins)
                # The event collects its own tags and terms over its whole span, breaks included.
                spanning = (
                    bool(span) and min(b for b, _ in span) - lead <= now <= max(e for _, e in span) + trail
                )
                if not (sessions or spanning) or not (tags or terms or any(s.own_tags for s in sessions)):
                    continue
                if starts:
                    window = min(starts) - lead
                else:  # a break (or the trail after the last session): since the last one ended
                    window = max([e for e in ended if e <= now], default=min(b for b, _ in span) - lead)
                out.append(EventTarget(event.id, tags, terms, tuple(sessions), window, tuple(past)))
            return out

        # A session that goes live or ends while the list is read (on PostgreSQL a read takes long
        # enough for it) makes the list stale before it is used: read it again (a few times at most).
        for _ in range(3):
            generation = self._targets_generation
            targets = await self.db.read(load, pool="pages")
            if generation == self._targets_generation:
                break
        # Remembered while live, and after the end while the event collects (late posts).
        kept = {s.session_id for t in targets for s in t.sessions if s.live} | {
            e.session_id for t in targets for e in t.ended
        }
        self._seen_live = {k: v for k, v in self._seen_live.items() if k in kept}
        self._targets = (time.monotonic(), targets)
        return targets

    def _live_since(self, session: Session, begins: datetime, now: datetime) -> datetime:
        """From when a live session takes the event's posts: its scheduled start, or, if it went
        live earlier, the change that made it live (its row's last change when first seen live;
        targets are recomputed every second, so that is the state's change, not a later edit)."""
        if session.id not in self._seen_live:
            changed = _aware(session.updated_at, ZoneInfo("UTC")) or now
            self._seen_live[session.id] = min(begins, changed, now)
        return self._seen_live[session.id]

    # -- routing and storing ---------------------------------------------------------------------

    async def ingest(
        self,
        network: str,
        posts: list[SocialPost],
        *,
        event_id: str | None = None,
        billed: int = 0,
        cursor: tuple[str, str] | None = None,
    ) -> IngestResult:
        """Store new posts once, route them, and put approved ones into their sessions' streams.

        `billed` reads and the source's `cursor` (key, value) are written in the same transaction
        as the last posts, so a crash can neither lose posts behind a saved cursor nor count
        reads twice. Posts are written INGEST_CHUNK at a time: a note never waits behind one
        long transaction of a hundred posts."""
        result = IngestResult()
        targets = await self.targets()
        unique: dict[str, SocialPost] = {}
        for post in posts:
            unique.setdefault(post.post_id, _people_text(post))
        known = (
            await self.db.read(lambda r: r.known_social_posts(network, list(unique)), pool="pages")
            if unique
            else set()
        )
        prepared: list[Prepared] = []
        for post in unique.values():
            routes = route_post(post, targets, event_id)
            result.routed[post.post_id] = [s for _, s in routes]
            if post.post_id in known or not routes:
                continue
            images: list[tuple[int, str, bytes]] = []
            avatar = None
            if self.fetcher is not None:
                # A video's or a sound's preview image is fetched in its place (the original stays a link).
                fetched = await asyncio.gather(
                    *(self.fetcher.fetch(str(m.get("preview") or m.get("url") or "")) for m in post.media)
                )
                images = [(i, f[0], f[1]) for i, f in enumerate(fetched) if f is not None]
                if post.avatar_url:
                    avatar = await self.fetcher.fetch(post.avatar_url)
            prepared.append((post, routes, images, avatar))
        sessions_billed: dict[tuple[str, str], int] = {}
        if billed and event_id is not None:
            for routed in result.routed.values():
                for s in routed:
                    if s:
                        sessions_billed[(event_id, s)] = sessions_billed.get((event_id, s), 0) + 1
        chunks = [prepared[i : i + INGEST_CHUNK] for i in range(0, len(prepared), INGEST_CHUNK)] or [[]]
        waiting: set[str] = set()
        stored: list[SocialPost] = []
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            if not chunk and not (last and (billed or cursor)):
                continue
            result.new += await self.db.write(
                self._ingest_op(
                    network,
                    chunk,
                    waiting,
                    stored,
                    billing=(event_id, billed, sessions_billed)
                    if last and billed and event_id is not None
                    else None,
                    cursor=cursor if last else None,
                )
            )
        self.ingested += result.new
        for session_id in waiting:
            queue_changed(self.hub, session_id)
        for post in stored:
            for hook in self.on_ingest:
                hook(post)
        if result.new or billed:
            self.changed()
        return result

    def _ingest_op(
        self,
        network: str,
        chunk: list[Prepared],
        waiting: set[str],
        stored: list[SocialPost],
        *,
        billing: tuple[str, int, dict[tuple[str, str], int]] | None,
        cursor: tuple[str, str] | None,
    ) -> Op[int]:
        default = self.settings.feeds.moderate_by_default

        async def op(tx: Tx) -> int:
            new = 0
            rules: dict[str, list[tuple[str, str]]] = {}
            policies: dict[str, dict[str, bool]] = {}
            for post, routes, images, avatar in chunk:
                for e, s in routes:
                    if not s:
                        await tx.ensure_event_feed(e)  # its stream row, before media or items name it
                e0, s0 = routes[0]
                post = await _store_media(tx, post, stream_of(e0, s0), images, avatar)
                row = await tx.insert_social_post(post)
                if row is None:
                    continue  # another poll or source stored it first
                new += 1
                stored.append(post)
                for e, s in routes:
                    if e not in rules:
                        rules[e] = await tx.feed_rules(e)
                        policies[e] = await tx.feed_policies(e)
                    moderate = policies[e].get(s, policies[e].get("", default))
                    state = decide(post, rules[e], moderate)
                    await tx.insert_social_route(row, e, s, state)
                    if state == "approved":
                        item = await publish(tx, row, post, stream_of(e, s))
                        await tx.set_social_route(
                            row, e, s, state="approved", item_id=item.id, decided_by="auto"
                        )
                    elif state == "pending":
                        waiting.add(stream_of(e, s))
            if billing is not None:
                event_id, billed, per_session = billing
                await tx.add_feed_reads(event_id, "", network, billed)
                for (e, s), n in per_session.items():
                    await tx.add_feed_reads(e, s, network, n)
            if cursor is not None:
                await tx.set_feed_cursor(*cursor)
            return new

        return op

    async def deleted(self, network: str, post_id: str) -> None:
        """The network deleted a post: note it; remove it from streams unless it is kept."""
        keep = self.settings.feeds.keep_deleted

        async def op(tx: Tx) -> list[str]:
            touched = []
            for route in await tx.mark_social_deleted(network, post_id):
                if keep or route.state not in ("approved", "pending"):
                    continue
                if route.item_id is not None:
                    await tx.update_item(route.item_id, DELETED_FIELDS, op="item.deleted")
                await tx.set_social_route(
                    route.post_row,
                    route.event_id,
                    route.session_id,
                    state="removed",
                    item_id=route.item_id,
                    decided_by="deleted upstream",
                )
                touched.append(stream_of(route.event_id, route.session_id))
            return touched

        for stream_id in await self.db.write(op):
            queue_changed(self.hub, stream_id)

    async def authors_by_did(self, network: str) -> list[str]:
        return await self.db.read(
            lambda r: r.social_authors_with_prefix(network, "did:", UNRESOLVED_AUTHORS), pool="pages"
        )

    async def update_author(
        self, network: str, old_handles: list[str], handle: str, name: str, avatar_url: str = ""
    ) -> int:
        """Rename an author's stored posts (their DID becomes a handle and display name, and
        their picture, fetched once, our copy): the stored copy, and each approved item in its
        stream as an `item.updated` change, so open pages show the name without a reload.
        Waiting posts are renamed for their moderators."""
        avatar = await self.fetcher.fetch(avatar_url) if self.fetcher is not None and avatar_url else None

        async def op(tx: Tx) -> tuple[int, set[str]]:
            routes = await tx.rename_social_author(network, old_handles, handle, name)
            if avatar is not None:
                routes = await _store_avatar(tx, routes, avatar_url, avatar)
            touched: set[str] = set()
            for route in routes:
                if route.state == "approved" and route.item_id is not None:
                    item = await tx.get_item(route.item_id)
                    if item is not None and not item.deleted:
                        await tx.update_item(
                            route.item_id,
                            {
                                "author": route.post.author_name or route.post.author_handle,
                                "html": render_post(route.post),
                                "data": item.data | item_data(route.post, route.post_row),
                            },
                        )
                elif route.state == "pending":
                    touched.add(stream_of(route.event_id, route.session_id))
            return len({r.post_row for r in routes}), touched

        renamed, touched = await self.db.write(op)
        for stream_id in touched:
            queue_changed(self.hub, stream_id)
        return renamed


def _people_text(post: SocialPost) -> SocialPost:
    """What a post shows people (its text, author's name, image descriptions) without the
    characters XML cannot carry (liveblog.text.xml_chars), whichever network it came from."""
    media = tuple(
        {**m, "alt": xml_chars(m["alt"])} if isinstance(m.get("alt"), str) else m for m in post.media
    )
    return dataclasses.replace(
        post, text=xml_chars(post.text), author_name=xml_chars(post.author_name), media=media
    )


async def _store_avatar(
    tx: Tx, routes: list[SocialRoute], avatar_url: str, avatar: tuple[str, bytes]
) -> list[SocialRoute]:
    """An author's picture, learnt after their posts were stored, copied once into the stream of
    each post's first route (as ingest does) and set on those posts; the routes with it."""
    copies: dict[str, str] = {}
    locals_by_row: dict[int, str] = {}
    for route in routes:
        if route.post_row in locals_by_row or route.post.avatar_url == avatar_url and route.post.avatar_local:
            continue
        stream = stream_of(route.event_id, route.session_id)
        if stream not in copies:
            copies[stream] = "/media/" + await tx.insert_media(
                stream, avatar[0], avatar[1], f"feed:{route.post.network}"
            )
        locals_by_row[route.post_row] = copies[stream]
        await tx.set_social_avatar(route.post_row, avatar_url, copies[stream])
    return [
        dataclasses.replace(
            r, post=dataclasses.replace(r.post, avatar_url=avatar_url, avatar_local=locals_by_row[r.post_row])
        )
        if r.post_row in locals_by_row
        else r
        for r in routes
    ]


async def _store_media(
    tx: Tx,
    post: SocialPost,
    session_id: str,
    images: list[tuple[int, str, bytes]],
    avatar: tuple[str, bytes] | None,
) -> SocialPost:
    media = [dict(m) for m in post.media]
    by = f"feed:{post.network}"
    for index, content_type, data in images:
        media[index]["local"] = "/media/" + await tx.insert_media(session_id, content_type, data, by)
    avatar_local = ""
    if avatar is not None:
        avatar_local = "/media/" + await tx.insert_media(session_id, avatar[0], avatar[1], by)
    return dataclasses.replace(post, media=tuple(media), avatar_local=avatar_local)

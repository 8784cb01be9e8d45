"""The feed service: runs every configured source under supervision, routes what they collect to
sessions, stores each post once, applies the event's moderation rules, and lets moderators
approve, reject, remove and block.

Routing rule (docs/feeds.md): a post carrying a session's own hashtag goes to that session; a
post that matches only the event's hashtags or search terms goes to every live session of the
event at that moment, or, when none is live, to the event's own feed. A route to the event's
feed has session id '' in `social_routes`; its approved posts go into the event's feed stream
(a hidden sessions row of kind 'event_feed', `models.event_feed_id`), moderated, sequenced and
served exactly like a session's.

Approved posts enter the session's stream as ordinary items of kind "social" (sequenced, so a
resuming viewer gets them); a post removed later is an `item.deleted` change. Moderators learn
of new waiting posts through an unsequenced `feed.queue` message on the session's stream, which
carries no post content (a post nobody approved must not reach viewers).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from liveblog.capture import hashtags
from liveblog.capture.feeds.base import (
    EndedSession,
    EventTarget,
    IngestResult,
    SessionTarget,
    Source,
    describe,
    hashtags_in,
    split_terms,
)
from liveblog.capture.feeds.media import MediaFetcher
from liveblog.capture.feeds.render import render_post
from liveblog.errors import BadRequest, Conflict, NotFound
from liveblog.lifecycle import Supervisor
from liveblog.models import Item, Session, SocialPost, SocialRoute, event_feed_id
from liveblog.settings import Settings
from liveblog.sharedstate import SharedCounters
from liveblog.storage import Op, Store, Tx
from liveblog.streams.hub import StreamHub
from liveblog.text import xml_chars

log = logging.getLogger(__name__)

INGEST_CHUNK = 5  # posts per write transaction: ~2 ms of writer time, so notes never queue long
# A post made this long before its session was seen going live still belongs to it: networks'
# clocks differ from ours, RSS dates have whole seconds, and people post as the talk begins.
LIVE_GRACE = timedelta(seconds=60)
TARGETS_TTL = 1.0  # seconds a computed list of collecting sessions is reused by every source
RULE_KINDS = ("allow_author", "block_author", "block_word")
DELETED_FIELDS = {"deleted": True, "body": "", "html": "", "data": {}}


def _aware(value: str, venue: ZoneInfo) -> datetime | None:
    """A programme time as an aware datetime: naive ones are the venue's wall-clock time
    (archive.timezone), whatever zone the server runs in."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=venue)


Prepared = tuple[SocialPost, list[tuple[str, str]], list[tuple[int, str, bytes]], tuple[str, bytes] | None]


def _posted(post: SocialPost) -> datetime | None:
    try:
        moment = datetime.fromisoformat(post.posted_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _made_by(made: datetime, moment: datetime) -> bool:
    """Made at or before `moment` for certain. A time in whole seconds (RSS dates, X's created_at)
    may stand for any instant of its second, so it counts as the end of that second: a post from
    the second in which a session ended is not taken as the session's."""
    return (made + timedelta(seconds=1) if made.microsecond == 0 else made) <= moment


def stream_of(event_id: str, session_id: str) -> str:
    """The stream a route's approved post goes to: the session's, or the event's own feed."""
    return session_id or event_feed_id(event_id)


def route_session(stream: Session) -> str:
    """The inverse: a stream's session id as routes store it ('' for the event's own feed)."""
    return "" if stream.is_event_feed else stream.id


def author_key(post: SocialPost) -> str:
    return f"{post.network}:{post.author_handle.lower()}"


def author_keys(post: SocialPost) -> set[str]:
    """Every name an author rule may give this post's author: network:handle, and for Bluesky
    also network:DID (a post shows the DID until its author is resolved, and a moderator may
    have blocked or allowed that)."""
    keys = {author_key(post)}
    if post.network == "bluesky" and post.post_id.startswith("at://did:"):
        keys.add(f"bluesky:{post.post_id.split('/')[2].lower()}")
    return keys


def decide(post: SocialPost, rules: list[tuple[str, str]], moderate: bool) -> str:
    """The state a newly routed post starts in, from the event's rules and the session's policy."""
    keys = author_keys(post)
    text = post.text.lower()
    if any(kind == "block_author" and value in keys for kind, value in rules):
        return "rejected"
    if any(kind == "block_word" and value in text for kind, value in rules):
        return "rejected"
    if any(kind == "allow_author" and value in keys for kind, value in rules):
        return "approved"
    return "pending" if moderate else "approved"


# Where the process running the sources keeps their status for the others, and how often at
# least it refreshes it (the key expires after three times that: a dead holder's status goes).
SHARED_STATUS_KEY = "feeds:status"
# Authors still named by DID that a Bluesky source asks about when it starts, at most.
UNRESOLVED_AUTHORS = 1000
SHARED_STATUS_SECONDS = 2.0


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
        self._status_event = asyncio.Event()
        self.status_version = 0
        self.ingested = 0
        self.on_ingest: list[Callable[[SocialPost], None]] = []  # benchmark hook: called after commit
        # Given when several processes share the work (services.py): asks the process that
        # holds the feed lease, wherever it is, to poll now (through Redis).
        self.poll_elsewhere = poll_elsewhere
        # Given when several processes share the work: the process running the sources keeps
        # their status here, and the organisers' panel on any other process reads it.
        self.shared = shared

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
            supervisor.spawn("feeds.status", self._share_status)

    async def _share_status(self) -> None:
        """Keep the sources' status in Redis for the other processes' panels: at each change and
        every SHARED_STATUS_SECONDS, expiring if this process stops (another takes the lease)."""
        assert self.shared is not None
        version = -1
        while True:
            version = await self.wait_for_status(version, SHARED_STATUS_SECONDS)
            sources = [s.status.to_wire() for s in self.sources]
            await self.shared.put_text(SHARED_STATUS_KEY, json.dumps(sources), SHARED_STATUS_SECONDS * 3)
            await asyncio.sleep(0.25)  # a burst of changes is one write

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

    async def sleep(self, seconds: float, since: int | None = None) -> None:
        if since is not None and since != self.wake_generation:
            return  # poll_now() was called while the caller was busy: go again at once
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

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

    def route(
        self, post: SocialPost, targets: list[EventTarget], event_id: str | None
    ) -> list[tuple[str, str]]:
        # Tags compare as the post's network compares them (Mastodon folds accents too).
        def keys(tags: Iterable[str]) -> set[str]:
            return {hashtags.key_for(post.network, t) for t in tags}

        tags = keys(post.hashtags) | keys(hashtags_in(post.text))
        routes: list[tuple[str, str]] = []
        for target in targets:
            if event_id is not None and target.event_id != event_id:
                continue
            own = [s.session_id for s in target.sessions if keys(s.own_tags) & tags]
            if own:
                routes += [(target.event_id, s) for s in own]
                continue
            matches = (
                event_id is not None  # the network searched for this event's query: it matched
                or bool(keys(target.tags) & tags)
                or any(hashtags.term_in(term, post.text) for term in target.terms)
            )
            if matches:
                # The sessions live when the post was made: one made in a break (or before a
                # session went live) goes to the event's own feed, even if collected later.
                made = _posted(post)
                live = [
                    s.session_id
                    for s in target.sessions
                    if s.live and (made is None or s.live_since is None or made >= s.live_since - LIVE_GRACE)
                ]
                # Made while a session now ended was live, collected after its end: still its post.
                live += [
                    e.session_id
                    for e in target.ended
                    if made is not None and e.live_since - LIVE_GRACE <= made and _made_by(made, e.ended_at)
                ]
                routes += [(target.event_id, s) for s in live] or [(target.event_id, "")]
        return routes

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
            routes = self.route(post, targets, event_id)
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
            self._queue_changed(session_id)
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
                        item = await _publish(tx, row, post, stream_of(e, s))
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
            self._queue_changed(stream_id)

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
                                "data": item.data | _item_data(route.post, route.post_row),
                            },
                        )
                elif route.state == "pending":
                    touched.add(stream_of(route.event_id, route.session_id))
            return len({r.post_row for r in routes}), touched

        renamed, touched = await self.db.write(op)
        for stream_id in touched:
            self._queue_changed(stream_id)
        return renamed

    def _queue_changed(self, stream_id: str) -> None:
        self.hub.send_unsequenced(stream_id, {"type": "feed.queue", "session_id": stream_id})

    # -- moderation ----------------------------------------------------------------------------

    async def event_feed(self, event_id: str) -> Session:
        """The event's own feed stream, created if no post has yet (a page that shows it needs a
        stream to follow from the start)."""

        async def op(tx: Tx) -> Session:
            return await tx.ensure_event_feed(event_id)

        found = await self.db.read(lambda r: r.get_event_feed(event_id), pool="pages")
        return found if found is not None else await self.db.write(op)

    async def routed_post(self, post_row: int, event_id: str, session_id: str) -> SocialRoute | None:
        """One collected post as routed to a session (for quoting it into a note)."""
        return await self.db.read(lambda r: r.get_social_route(post_row, event_id, session_id), pool="pages")

    async def queue(self, stream: Session) -> list[SocialRoute]:
        """Posts waiting in a session's (or the event's own feed's) queue."""
        return await self.db.read(
            lambda r: r.list_social_routes(
                event_id=stream.event_id, session_id=route_session(stream), state="pending"
            ),
            pool="pages",
        )

    async def recent(self, stream: Session, limit: int = 100) -> list[SocialRoute]:
        routes = await self.db.read(
            lambda r: r.list_social_routes(
                event_id=stream.event_id, session_id=route_session(stream), limit=100_000
            ),
            pool="pages",
        )
        return [r for r in routes if r.state != "pending"][-limit:]

    async def moderate(
        self, session_id: str, post_row: int, action: str, by: str, reason: str = ""
    ) -> SocialRoute:
        """approve | reject | remove one post in one stream: a session's, or the event's own feed
        (its stream id, models.event_feed_id)."""
        if action not in ("approve", "reject", "remove"):
            raise BadRequest("action must be approve, reject or remove", code="invalid_field", field="action")

        async def op(tx: Tx) -> SocialRoute:
            stream = await tx.get_stream_session(session_id)
            if stream is None:
                raise NotFound(f"no session {session_id!r}", code="unknown_session")
            routed = route_session(stream)
            route = await tx.get_social_route(post_row, stream.event_id, routed)
            if route is None:
                raise NotFound("no such post in this session", code="unknown_post", field="post_row")
            if action == "approve":
                if route.state == "approved":
                    return route
                if route.state == "removed" or route.item_id is not None:
                    raise Conflict("that post was removed; it cannot come back", code="post_removed")
                item = await _publish(tx, post_row, route.post, stream.id)
                await tx.set_social_route(
                    post_row, route.event_id, routed, state="approved", item_id=item.id, decided_by=by
                )
            elif route.item_id is not None and route.state == "approved":
                await tx.update_item(route.item_id, DELETED_FIELDS, op="item.deleted")
                await tx.set_social_route(
                    post_row, route.event_id, routed, state="removed", item_id=route.item_id, decided_by=by
                )
            elif route.state == "pending":
                await tx.set_social_route(
                    post_row, route.event_id, routed, state="rejected", item_id=None, decided_by=by
                )
            found = await tx.get_social_route(post_row, route.event_id, routed)
            assert found is not None
            if found.state != route.state:  # the ledger logs what changed, not a repeated click
                await tx.record_moderation(
                    session_id=stream.id,
                    actor=await _actor_name(tx, stream.event_id, by),
                    action=action,
                    target_kind="post",
                    target_id=post_row,
                    reason=reason,
                )
            return found

        route = await self.db.write(op)
        self._queue_changed(session_id)
        return route

    async def remove_item(self, item_id: int, by: str) -> SocialRoute:
        route = await self.db.read(lambda r: r.social_route_for_item(item_id), pool="pages")
        if route is None:
            raise NotFound("that item is not a collected post", code="unknown_post", field="item_id")
        return await self.moderate(stream_of(route.event_id, route.session_id), route.post_row, "remove", by)

    async def add_rule(self, event_id: str, kind: str, value: str, by: str) -> int:
        """Add an event rule and apply it to what waits: allow_author approves the author's
        waiting posts, block_author and block_word reject matching waiting posts. Returns how
        many waiting posts it decided."""
        if kind not in RULE_KINDS:
            raise BadRequest(
                f"kind must be one of {', '.join(RULE_KINDS)}", code="invalid_field", field="kind"
            )
        value = value.strip().lower()
        if not value or len(value) > 200:
            raise BadRequest("value must be 1 to 200 characters", code="invalid_field", field="value")
        if kind != "block_word" and ":" not in value:
            raise BadRequest(
                "an account is network:handle, e.g. mastodon:ana@example.social",
                code="invalid_field",
                field="value",
            )

        async def op(tx: Tx) -> list[str]:
            if await tx.get_event(event_id) is None:
                raise NotFound(f"no event {event_id!r}", code="unknown_event")
            await tx.add_feed_rule(event_id, kind, value, by)
            actor = await _actor_name(tx, event_id, by)
            touched = []
            for route in await tx.list_social_routes(event_id=event_id, state="pending", limit=100_000):
                post = route.post
                hit = value in author_keys(post) if kind != "block_word" else value in post.text.lower()
                if not hit:
                    continue
                stream_id = stream_of(event_id, route.session_id)
                if kind == "allow_author":
                    if not route.session_id:
                        await tx.ensure_event_feed(event_id)
                    item = await _publish(tx, route.post_row, post, stream_id)
                    await tx.set_social_route(
                        route.post_row,
                        event_id,
                        route.session_id,
                        state="approved",
                        item_id=item.id,
                        decided_by=by,
                    )
                else:
                    await tx.set_social_route(
                        route.post_row,
                        event_id,
                        route.session_id,
                        state="rejected",
                        item_id=None,
                        decided_by=by,
                    )
                # In the moderation ledger as the rule's author's decision, the rule as its reason.
                action = "approve" if kind == "allow_author" else "reject"
                reason = f"rule: {kind} {value}"
                if route.session_id or kind == "allow_author":  # the stream's session exists
                    await tx.record_moderation(
                        session_id=stream_id,
                        actor=actor,
                        action=action,
                        target_kind="post",
                        target_id=route.post_row,
                        reason=reason,
                    )
                else:  # the event's feed, not made yet: the event's own entry
                    await tx.record_event_moderation(
                        event_id=event_id,
                        actor=actor,
                        action=action,
                        target_kind="post",
                        target_id=route.post_row,
                        reason=reason,
                    )
                touched.append(stream_id)
            return touched

        touched = await self.db.write(op)
        for stream_id in set(touched):
            self._queue_changed(stream_id)
        return len(touched)

    async def remove_rule(self, event_id: str, kind: str, value: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.remove_feed_rule(event_id, kind, value.strip().lower())

        await self.db.write(op)

    async def rules(self, event_id: str) -> list[tuple[str, str]]:
        return await self.db.read(lambda r: r.feed_rules(event_id), pool="pages")

    async def set_policy(self, event_id: str, session_id: str, moderate: bool) -> None:
        async def op(tx: Tx) -> None:
            if await tx.get_event(event_id) is None:
                raise NotFound(f"no event {event_id!r}", code="unknown_event")
            await tx.set_feed_policy(event_id, session_id, moderate)

        await self.db.write(op)

    async def moderates(self, event_id: str, session_id: str) -> bool:
        policies = await self.db.read(lambda r: r.feed_policies(event_id), pool="pages")
        return policies.get(session_id, policies.get("", self.settings.feeds.moderate_by_default))

    # -- the organiser's panel -------------------------------------------------------------------

    async def status(self, event_id: str) -> dict[str, Any]:
        async def load(r: Tx) -> tuple[dict[str, int], dict[tuple[str, str], int], int, int]:
            counts = await r.count_social_posts(event_id)
            reads = await r.feed_reads("x")
            pending = len(await r.list_social_routes(event_id=event_id, state="pending", limit=100_000))
            event_feed = len(await r.list_social_routes(event_id=event_id, session_id="", limit=100_000))
            return counts, reads, pending, event_feed

        counts, reads, pending, event_feed = await self.db.read(load, pool="pages")
        x_reads = reads.get((event_id, ""), 0)
        xs = self.settings.feeds_x
        sources: list[dict[str, Any]] = [s.status.to_wire() for s in self.sources]
        elsewhere = self.shared is not None and not self._task_names
        if elsewhere and self.shared is not None:
            # The sources run in the process holding the feed lease: show what it keeps.
            kept = await self.shared.get_text(SHARED_STATUS_KEY)
            sources = json.loads(kept) if kept else []
            if kept is not None and not sources:
                elsewhere = False  # it reported: it runs no source (none configured)
        # A source's own counters run over every event since the process started; beside them,
        # what it brought to this event (stored posts of its network, and X's billed reads).
        for row in sources:
            x = row.get("network") == "x"
            row["event"] = {
                "posts": counts.get(str(row.get("network")), 0),
                "reads": x_reads if x else None,
                "read_cap": xs.event_read_cap if x else None,
                "cost_usd": round(x_reads * xs.cost_per_read_usd, 4) if x else None,
            }
        return {
            "enabled": self.settings.feeds.enabled,
            "version": self.status_version,
            "runs_elsewhere": elsewhere,
            "sources": sources,
            "event": {
                "collected": counts,
                "pending": pending,
                "event_feed": event_feed,
                "x_reads": x_reads,
                "x_read_cap": xs.event_read_cap,
                "x_session_read_cap": xs.session_read_cap,
                "x_cost_usd": round(x_reads * xs.cost_per_read_usd, 4),
                "x_session_reads": {s: n for (e, s), n in reads.items() if e == event_id and s},
            },
        }


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


async def _publish(tx: Tx, post_row: int, post: SocialPost, session_id: str) -> Item:
    item, _ = await tx.insert_item(
        session_id=session_id,
        kind="social",
        client_id=f"social:{post.network}:{post.post_id}"[:200],
        author=post.author_name or post.author_handle,
        author_ref=None,
        body=post.text,
        html=render_post(post),
        key_point=False,
        data=_item_data(post, post_row),
        typed_at=post.posted_at,
    )
    return item


def _item_data(post: SocialPost, post_row: int) -> dict[str, Any]:
    return {
        "network": post.network,
        "post_id": post.post_id,
        "post_row": post_row,
        "handle": post.author_handle,
        "url": post.url,
        "posted_at": post.posted_at,
    }


async def _actor_name(tx: Tx, event_id: str, ref: str) -> str:
    """The name the moderation ledger shows for a moderator's ref ("account:<id>" or an invite id)."""
    if ref.startswith("account:") and ref[8:].isdigit():
        account = await tx.get_account(int(ref[8:]))
        return account.username if account is not None else ref
    return next((i.name for i in await tx.list_invites(event_id) if i.id == ref), ref)

"""Bluesky through Jetstream: one websocket of the network's new posts, filtered here by hashtag.

We subscribe with `wantedCollections=app.bsky.feed.post` and keep the posts whose hashtag facets,
`tags[]` or text carry one of the collecting tags. Each event has a `time_us` cursor; we keep
the last one handled, save it every few seconds, and on reconnect ask to resume a few seconds
*before* it (`rewind_seconds`): nothing is lost across a drop, and what is seen twice is stored
once (a post's id is its at:// uri). A delete commit marks the post deleted upstream.

Jetstream gives no handle or display name (only the author's DID, and identity events when a
handle changes). A post is stored at once with what is known: the handle and display name if
the author was resolved before, else a handle an identity event announced, else the DID. Unknown
DIDs are resolved in the background by `profiles.ProfileResolver` (the AppView's getProfiles,
batched and cached), which then renames the stored posts: ingest never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from typing import Any
from urllib.parse import quote, urlencode

import websockets
from websockets.asyncio.client import connect

from liveblog.capture.feeds.base import (
    Backoff,
    Feed,
    SourceStatus,
    Wanted,
    clip,
    describe,
    hashtags_in,
    normalise_tag,
    obj,
    text_value,
    utc_iso,
    wanted_of,
)
from liveblog.capture.feeds.profiles import ProfileResolver
from liveblog.models import SocialPost
from liveblog.settings import Settings

log = logging.getLogger(__name__)

COLLECTION = "app.bsky.feed.post"
# An account's profile record (display name, picture): read to follow the authors we show.
PROFILE_COLLECTION = "app.bsky.actor.profile"
CURSOR_KEY = "bluesky:jetstream"
FLUSH_POSTS = (
    50  # matching posts handed to the feed service together at most (it writes them 5 to a transaction)
)
FLUSH_AFTER = 0.2  # ...and none waits longer than this (seconds) before it is stored
SAVE_CURSOR_EVERY = 5.0  # seconds between cursor saves (a rewind on reconnect covers the gap)
MAX_FRAME = 2 * 1024 * 1024  # a post is at most a few KB; a bigger frame is junk and drops the socket
HANDLES_KEPT = 50_000  # DID -> handle, from identity events
KNOWN_KEPT = 100_000  # uris of posts we collected, to act on their deletion (a few MB at most)


def _spell_out_links(text: str, facets: Any) -> str:
    """The text with each link facet's span written as its address. Bluesky shows a long link
    shortened ("www.tumblr.com/tempo-tales/...") and keeps the address in the facet, whose range
    counts UTF-8 bytes; our plain text carries the address itself, as a link we can render. A range
    that is not whole characters of the text, or overlaps another, is left alone."""
    data = text.encode()
    spans: list[tuple[int, int, str]] = []
    for facet in facets if isinstance(facets, list) else []:
        index = obj(obj(facet).get("index"))
        start, end = index.get("byteStart"), index.get("byteEnd")
        uris = [
            text_value(obj(f).get("uri"))
            for f in obj(facet).get("features") or []
            if obj(f).get("$type") == "app.bsky.richtext.facet#link"
        ]
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(data)):
            continue
        if uris and uris[0].startswith(("https://", "http://")):
            spans.append((start, end, uris[0]))
    out: list[bytes] = []
    pos = 0
    for start, end, uri in sorted(spans):
        if start < pos:
            continue
        try:
            data[pos:start].decode()  # both ends on character boundaries
            data[start:end].decode()
        except UnicodeDecodeError:
            continue
        out += [data[pos:start], uri.encode()]
        pos = end
    return b"".join([*out, data[pos:]]).decode(errors="replace")


def post_from_event(
    event: Any, wanted: Wanted, cdn_base: str, handles: dict[str, str], max_chars: int
) -> tuple[str, SocialPost | str | None]:
    """Read one Jetstream frame: ("post", SocialPost) for a wanted new post, ("delete", uri) for a
    deleted post, ("identity", None) after learning a handle, ("skip", None) for anything else
    (other collections, wrong shapes, posts without our tags)."""
    if not isinstance(event, dict):
        return "skip", None
    did = text_value(event.get("did"))
    kind = event.get("kind")
    if kind == "identity":
        identity = obj(event.get("identity"))
        handle = text_value(identity.get("handle"))
        if did and handle:
            if len(handles) >= HANDLES_KEPT:
                handles.clear()
            handles[did] = handle
        return "identity", None
    commit = obj(event.get("commit"))
    if kind == "commit" and commit.get("collection") == PROFILE_COLLECTION and did.startswith("did:"):
        return "profile", did
    if kind != "commit" or commit.get("collection") != COLLECTION or not did.startswith("did:"):
        return "skip", None
    rkey = text_value(commit.get("rkey"))
    if not rkey or "/" in rkey:
        return "skip", None
    uri = f"at://{did}/{COLLECTION}/{rkey}"
    if commit.get("operation") == "delete":
        return "delete", uri
    if commit.get("operation") != "create":
        return "skip", None
    record = obj(commit.get("record"))
    text = text_value(record.get("text"))
    tags: list[str] = []
    mentions: list[str] = []
    links: list[str] = []
    for facet in record.get("facets") or []:
        for feature in obj(facet).get("features") or []:
            feature = obj(feature)
            kind_ = feature.get("$type")
            if kind_ == "app.bsky.richtext.facet#tag":
                tags.append(normalise_tag(text_value(feature.get("tag"))))
            elif kind_ == "app.bsky.richtext.facet#mention":
                mentions.append(text_value(feature.get("did")))
            elif kind_ == "app.bsky.richtext.facet#link":
                links.append(text_value(feature.get("uri")))
    tags += [normalise_tag(t) for t in record.get("tags") or [] if isinstance(t, str)]
    tags += hashtags_in(text)
    text = _spell_out_links(text, record.get("facets"))
    if not wanted.matches("bluesky", tags, text):
        return "skip", None
    relation: dict[str, str] = {}
    reply = obj(record.get("reply"))
    if parent := text_value(obj(reply.get("parent")).get("uri")):
        relation["reply_to"] = parent
    embed = obj(record.get("embed"))
    media = []
    if embed.get("$type") == "app.bsky.embed.recordWithMedia":
        relation["quote_of"] = text_value(obj(obj(embed.get("record")).get("record")).get("uri"))
        embed = obj(embed.get("media"))
    elif embed.get("$type") == "app.bsky.embed.record":
        relation["quote_of"] = text_value(obj(embed.get("record")).get("uri"))
    if embed.get("$type") == "app.bsky.embed.images":
        for image in embed.get("images") or []:
            image = obj(image)
            cid = text_value(obj(obj(image.get("image")).get("ref")).get("$link"))
            ratio = obj(image.get("aspectRatio"))
            if cid and cid.isalnum():
                media.append(
                    {
                        "type": "image",
                        "url": f"{cdn_base.rstrip('/')}/img/feed_fullsize/plain/{quote(did)}/{cid}@jpeg",
                        "alt": text_value(image.get("alt")),
                        "width": ratio.get("width") if isinstance(ratio.get("width"), int) else None,
                        "height": ratio.get("height") if isinstance(ratio.get("height"), int) else None,
                    }
                )
    elif embed.get("$type") == "app.bsky.embed.external":
        if uri_ := text_value(obj(embed.get("external")).get("uri")):
            links.append(uri_)
    handle = handles.get(did, did)
    return "post", SocialPost(
        network="bluesky",
        post_id=uri,
        author_handle=handle[:200],
        author_name=handle[:200],
        text=clip(text, max_chars),
        url=f"https://bsky.app/profile/{quote(did)}/post/{quote(rkey)}",
        posted_at=utc_iso(record.get("createdAt")),
        links=tuple(link for link in links if link.startswith(("https://", "http://")))[:20],
        hashtags=tuple(dict.fromkeys(t for t in tags if t))[:50],
        mentions=tuple(m for m in mentions if m)[:50],
        media=tuple(media[:4]),
        relation={k: v for k, v in relation.items() if v},
        lang=text_value((record.get("langs") or [""])[0]) if isinstance(record.get("langs"), list) else "",
    )


class BlueskySource:
    network = "bluesky"

    def __init__(self, settings: Settings) -> None:
        bs = settings.feeds_bluesky
        self.url = bs.jetstream_url
        self.rewind_us = int(bs.rewind_seconds * 1_000_000)
        self.cdn_base = bs.cdn_base
        self.max_chars = settings.feeds.max_post_chars
        self.timeout = settings.feeds.request_timeout_seconds
        self.status = SourceStatus(
            network="bluesky", name=self.url.split("//")[-1].split("/")[0] or "jetstream"
        )
        self.backoff = Backoff(base=1.0, cap=settings.feeds.backoff_max_seconds)
        self.handles: dict[str, str] = {}
        self.renamed_from: dict[str, str] = {}  # DID -> handle its posts are stored under, while re-resolving
        self.known: set[str] = set()  # uris collected since start, to notice their deletion
        self.cursor: int | None = None  # time_us of the last event handled (posts maybe still buffered)
        self.stored_cursor: int | None = None  # the cursor as committed with the posts before it
        # Where a tag was added to those collected: the next connection reads from there (less the rewind).
        self.replay_from: int | None = None
        self.buffer: list[SocialPost] = []  # matching posts not yet stored
        self._buffer_since = 0.0
        self.bad_frames = 0
        self.connections = 0
        self.profiles = (
            ProfileResolver(
                bs.appview_url,
                self.timeout,
                settings.feeds.backoff_max_seconds,
                allow_private=settings.feeds.allow_private_addresses,
            )
            if bs.appview_url
            else None
        )

    async def close(self) -> None:
        if self.profiles is not None:
            await self.profiles.close()

    async def run(self, feed: Feed) -> None:
        saved = await feed.get_cursor(CURSOR_KEY)
        if saved and saved.isdigit():
            self.cursor = self.stored_cursor = int(saved)
        # Names are resolved beside the stream, never in its way; it lives as long as this run.
        resolver = (
            asyncio.create_task(
                self.profiles.run(lambda did, handle, name: self._rename(feed, did, handle, name)),
                name="bluesky profiles",
            )
            if self.profiles is not None
            else None
        )
        if self.profiles is not None:
            # Posts stored under a DID before a restart (the AppView was down, or did not know
            # the author yet): ask again; Jetstream resumes past them and will not resend them.
            for did in await feed.authors_by_did("bluesky"):
                self.profiles.want(did)
        try:
            await self._run(feed)
        finally:
            if resolver is not None:
                resolver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await resolver

    async def _rename(self, feed: Feed, did: str, handle: str, name: str) -> None:
        old = [did] + ([self.handles[did]] if did in self.handles and self.handles[did] != handle else [])
        old += [h for h in [self.renamed_from.pop(did, "")] if h and h not in old]
        avatar = self.profiles.avatar_of(did) if self.profiles is not None else ""
        await feed.update_author("bluesky", old, handle, name, avatar_url=avatar)

    async def _run(self, feed: Feed) -> None:
        while True:
            generation = woken(feed)
            targets = await feed.targets()
            wanted = wanted_of(targets)
            if not wanted:
                self.status.set("idle", "no session is collecting now")
                feed.changed()
                await feed.sleep(30.0, since=generation[0], retargeted_since=generation[1])
                continue
            try:
                await self._stream(feed, wanted, generation)
                self.backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # dropped, refused, timed out, junk: back off and resume
                self.status.fail(describe(exc))
                feed.changed()
                delay = self.backoff.next_delay()
                log.info("jetstream: %s; reconnecting in %.1fs", describe(exc), delay)
                await asyncio.sleep(delay)

    def _resume_point(self) -> int:
        """The time_us to read from (less the rewind): the stored cursor, or where a wanted tag was
        added (`replay_from`), whichever is earlier; never a cursor yet: now, so the posts made
        while the reader woke and connected are read too."""
        points = [p for p in (self.stored_cursor, self.replay_from) if p is not None]
        return min(points) if points else int(time.time() * 1_000_000)

    def _subscribe_url(self, resume: int) -> str:
        params: list[tuple[str, str]] = [("wantedCollections", COLLECTION)]
        if self.profiles is not None:
            params.append(("wantedCollections", PROFILE_COLLECTION))
        params.append(("cursor", str(max(0, resume - self.rewind_us))))
        return f"{self.url}?{urlencode(params)}"

    async def _stream(self, feed: Feed, wanted: Wanted, generation: tuple[int, int]) -> None:
        """Read the socket until it closes or nothing is collected. `wanted` was computed after
        the feed was `woken` at `generation`; a wake since ("Poll now", or a new event, an
        imported programme, an edited hashtag: FeedService.retarget) computes it again at the
        next frame, and a tag or term added reconnects from before it was added."""
        last_save = time.monotonic()
        refreshed = time.monotonic()
        silence = max(self.timeout * 4, 30.0)  # Jetstream carries the whole network: silence means a stall
        resume = self._resume_point()
        async with connect(
            self._subscribe_url(resume),
            open_timeout=self.timeout,
            close_timeout=2.0,
            ping_interval=20.0,
            ping_timeout=self.timeout,
            max_size=MAX_FRAME,
            compression=None,
        ) as ws:
            self.connections += 1
            self.replay_from = None
            filtered_from = resume  # frames after this were kept or passed over by `wanted`
            self.status.set("running", "")
            feed.changed()
            try:
                while True:
                    wait = (
                        max(0.0, self._buffer_since + FLUSH_AFTER - time.monotonic())
                        if self.buffer
                        else silence
                    )
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout=wait)
                    except TimeoutError:
                        if not self.buffer:
                            raise
                        await self._flush(feed)
                        continue
                    except websockets.ConnectionClosedOK:
                        return
                    # Sessions start and end: follow their tags; at once after a wake.
                    if woken(feed) != generation or time.monotonic() - refreshed > 5.0:
                        generation = woken(feed)
                        fresh = wanted_of(await feed.targets())
                        refreshed = time.monotonic()
                        if not fresh:
                            return
                        if fresh.tags - wanted.tags or set(fresh.terms) - set(wanted.terms):
                            # Added since the last look: the frames read since were filtered
                            # without it (a wake through Redis takes a moment). Read them again;
                            # this frame included. Posts seen twice are stored once.
                            self.replay_from = filtered_from
                            return
                        wanted = fresh
                        filtered_from = self.cursor or filtered_from
                    await self._handle(feed, raw, wanted)
                    if self.buffer and (
                        len(self.buffer) >= FLUSH_POSTS
                        or time.monotonic() - self._buffer_since >= FLUSH_AFTER
                    ):
                        await self._flush(feed)
                    elif not self.buffer and time.monotonic() - last_save > SAVE_CURSOR_EVERY and self.cursor:
                        await feed.set_cursor(CURSOR_KEY, str(self.cursor))
                        self.stored_cursor = self.cursor
                        last_save = time.monotonic()
            finally:
                if self.buffer:
                    with contextlib.suppress(Exception):  # if it fails, the rewind reads them again
                        await self._flush(feed)

    async def _flush(self, feed: Feed) -> None:
        """Store the buffered posts, with the cursor up to which everything is handled, in one
        transaction. Until that commits the resume point stays where it was: nothing is lost."""
        posts, self.buffer = self.buffer, []
        cursor = self.cursor
        result = await feed.ingest("bluesky", posts, cursor=(CURSOR_KEY, str(cursor)) if cursor else None)
        self.stored_cursor = cursor
        if self.profiles is not None:
            # An author resolved while these posts were on their way in: the resolver's rename
            # may have run before they were stored, so rename them now (it is idempotent).
            late = {
                did_of(p): found
                for p in posts
                if (found := self.profiles.known(did_of(p))) and (p.author_handle, p.author_name) != found
            }
            for did, (handle, name) in late.items():
                await self._rename(feed, did, handle, name)
        for post in posts:
            if len(self.known) >= KNOWN_KEPT:
                self.known.clear()
            self.known.add(post.post_id)
        if result.new:
            self.status.posts += result.new
            feed.changed()

    async def _handle(self, feed: Feed, raw: str | bytes, wanted: Wanted) -> None:
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.bad_frames += 1
            return
        if not isinstance(event, dict) or not isinstance(event.get("time_us"), int):
            self.bad_frames += 1
            return
        kind, value = post_from_event(event, wanted, self.cdn_base, self.handles, self.max_chars)
        if kind == "post" and isinstance(value, SocialPost):
            if self.profiles is not None:
                did = did_of(value)
                found = self.profiles.known(did)
                if found is not None:
                    value = dataclasses.replace(
                        value,
                        author_handle=found[0],
                        author_name=found[1],
                        avatar_url=value.avatar_url or self.profiles.avatar_of(did),
                    )
                else:
                    self.profiles.want(did)  # stored with what we have; renamed when it resolves
            if not self.buffer:
                self._buffer_since = time.monotonic()
            self.buffer.append(value)
        elif kind == "profile" and isinstance(value, str) and self.profiles is not None:
            # An author we show changed their profile: ask the AppView again, and rename their
            # posts from the handle they are stored under now.
            if (found := self.profiles.forget(value)) is not None:
                self.renamed_from[value] = found[0]
                self.profiles.want(value)
        elif kind == "delete" and isinstance(value, str) and value in self.known:
            # Only posts we collected since start: the network deletes far more than we keep.
            await feed.deleted("bluesky", value)
        # Handled (or buffered): a resume starts after this, less the rewind.
        self.cursor = max(self.cursor or 0, event["time_us"])


def woken(feed: Feed) -> tuple[int, int]:
    """How often the feed was asked to poll now, and told the programme changed."""
    return feed.wake_generation, feed.retarget_generation


def did_of(post: SocialPost) -> str:
    """The author's DID, from the post's at:// uri."""
    return post.post_id.split("/")[2]


def build(settings: Settings) -> list[BlueskySource]:
    return [BlueskySource(settings)] if settings.feeds_bluesky.jetstream_url else []

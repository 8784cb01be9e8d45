"""Faithful fake networks on loopback, for the tests, the benchmark and the demo.

One small ASGI app speaks three real wire formats:
- X API v2 recent search, `GET /2/tweets/search/recent` (as tweepy's recorded cassettes show it:
  `data`, `includes.users`/`includes.media`, `meta.newest_id`/`oldest_id`/`result_count`/
  `next_token`, `x-rate-limit-*` headers with a Unix reset time, 429 when the window is spent);
- a Mastodon instance's hashtag timeline, `GET /api/v1/timelines/tag/{tag}` (Status entities,
  `max_id`/`since_id`/`min_id`, `Link` header with rel="next"/"prev", `X-RateLimit-*` with an
  ISO reset time);
- Bluesky Jetstream, websocket `/subscribe?wantedCollections=...&cursor=<time_us>` (commit events
  `{did, time_us, kind, commit{rev, operation, collection, rkey, record, cid}}`);
- the Bluesky AppView's `GET /xrpc/app.bsky.actor.getProfiles?actors=...` (at most 25 actors;
  `{"profiles": [profileViewDetailed]}`, unknown actors left out; XRPC errors as
  `{"error", "message"}` with status 400).
It also serves images under /img/ for the media fetcher. Tests script failures (`fail_next`) and
read what was asked (`x_requests`, `mastodon_requests`, `jetstream_connections`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import itertools
import json
import re
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

STAMP = "bench t=0 "


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Failure:
    """A scripted misbehaviour for the next request to one network."""

    kind: str  # "429" | "500" | "html" | "malformed" | "stall" | "wrong_shape"
    reset_in: float = 2.0  # for 429: seconds until x-rate-limit-reset
    seconds: float = 30.0  # for stall


@dataclass
class FakeNetworks:
    base_url: str = ""  # set once the server listens (used in Link headers and media URLs)
    tweets: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    jet_events: list[dict[str, Any]] = field(default_factory=list)
    rss_items: list[dict[str, Any]] = field(default_factory=list)
    documents: dict[str, tuple[bytes, dict[str, str]]] = field(
        default_factory=dict
    )  # /doc/{name}: body, headers
    # /doc/{name} answers in turn (the last repeats), for recorded pages asked with any query.
    document_pages: dict[str, list[tuple[bytes, dict[str, str]]]] = field(default_factory=dict)
    document_requests: list[str] = field(default_factory=list)  # each /doc/ URL asked, path and query
    x_requests: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    mastodon_requests: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    jetstream_connections: list[dict[str, str]] = field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # DID -> profileViewDetailed
    profile_requests: list[list[str]] = field(default_factory=list)  # the actors of each getProfiles call
    fail_next: dict[str, deque[Failure]] = field(
        default_factory=lambda: {"x": deque(), "mastodon": deque(), "rss": deque(), "appview": deque()}
    )
    jetstream_drop_after: int | None = None  # close the socket after sending this many frames
    jetstream_junk: list[str] = field(default_factory=list)  # raw frames sent first on the next connection
    x_window: int = 450
    responded: list[tuple[str, str, float]] = field(default_factory=list)  # (network, post id, time answered)
    # Benchmark: a post text holding "bench t=0 " gets "bench t=<monotonic ns>" as it is sent, a
    # distinct stamp per post, so the time from this response to each viewer can be measured.
    stamp: bool = False
    stamps: list[int] = field(default_factory=list)
    last_429_reset: float = 0.0  # the reset time the last scripted 429 announced
    _x_used: int = 0
    _x_reset: float = 0.0
    _next_tweet: int = 1_800_000_000_000_000_000
    _next_status: int = 113_000_000_000_000_000
    _next_time_us: int = 0
    _jet_new: asyncio.Event = field(default_factory=asyncio.Event)

    # -- content -----------------------------------------------------------------------------------

    def add_tweet(
        self,
        username: str,
        name: str,
        text: str,
        *,
        hashtags: list[str] | None = None,
        image_alt: str | None = None,
        reply_to: str | None = None,
        created_at: datetime | None = None,
    ) -> str:
        self._next_tweet += 1_000_003
        tweet_id = str(self._next_tweet)
        user_id = str(abs(hash(username)) % 10**12)
        self.users[user_id] = {
            "id": user_id,
            "name": name,
            "username": username,
            "profile_image_url": f"{self.base_url}/img/avatar-{username}.png",
        }
        tags = hashtags if hashtags is not None else [w[1:] for w in text.split() if w.startswith("#")]
        tweet: dict[str, Any] = {
            "id": tweet_id,
            "text": text,
            "author_id": user_id,
            "created_at": _iso(created_at.timestamp() if created_at else time.time()),
            "edit_history_tweet_ids": [tweet_id],
            "lang": "en",
            "entities": {
                "hashtags": [
                    {"start": text.find("#" + t), "end": text.find("#" + t) + len(t) + 1, "tag": t}
                    for t in tags
                ]
            },
        }
        if image_alt is not None:
            key = f"3_{tweet_id}"
            self.media[key] = {
                "media_key": key,
                "type": "photo",
                "url": f"{self.base_url}/img/{key}.png",
                "alt_text": image_alt,
                "width": 64,
                "height": 48,
            }
            tweet["attachments"] = {"media_keys": [key]}
        if reply_to:
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": reply_to}]
        self.tweets.append(tweet)
        return tweet_id

    def add_status(
        self,
        acct: str,
        display_name: str,
        html: str,
        tags: list[str],
        *,
        image_alt: str | None = None,
        media_type: str = "image",
        poll: list[tuple[str, int]] | None = None,
        quote_of: str | None = None,
    ) -> str:
        """A Status as Mastodon 4.4+ sends it (Mastodon.py's recorded entities): a gifv, video or
        audio attachment has its file at `url` and an image at `preview_url`; a quote is
        {"state": "accepted", "quoted_status": Status}; a poll has per-option counts."""
        self._next_status += 65_536
        sid = str(self._next_status)
        username = acct.split("@")[0]
        status: dict[str, Any] = {
            "id": sid,
            "created_at": _iso(time.time()),
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": "public",
            "language": "en",
            "uri": f"https://social.example/users/{username}/statuses/{sid}",
            "url": f"https://social.example/@{username}/{sid}",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "content": html,
            "reblog": None,
            "account": {
                "id": str(abs(hash(acct)) % 10**9),
                "username": username,
                "acct": acct,
                "display_name": display_name,
                "url": f"https://social.example/@{username}",
                "avatar": f"{self.base_url}/img/avatar-{username}.png",
                "avatar_static": f"{self.base_url}/img/avatar-{username}.png",
            },
            "media_attachments": [],
            "mentions": [],
            "tags": [{"name": t.lower(), "url": f"https://social.example/tags/{t.lower()}"} for t in tags],
            "emojis": [],
            "card": None,
            "poll": None,
            "quotes_count": 0,
            "quote": None,
        }
        if quote_of is not None:
            quoted = next(s for s in self.statuses if s["id"] == quote_of)
            status["quote"] = {"state": "accepted", "quoted_status": quoted}
        if poll is not None:
            status["poll"] = {
                "id": sid,
                "expires_at": _iso(time.time() + 3600),
                "expired": False,
                "multiple": False,
                "votes_count": sum(n for _, n in poll),
                "voters_count": sum(n for _, n in poll),
                "options": [{"title": t, "votes_count": n} for t, n in poll],
                "emojis": [],
            }
        if image_alt is not None:
            files = {"image": "png", "gifv": "mp4", "video": "mp4", "audio": "mp3"}
            status["media_attachments"].append(
                {
                    "id": sid + "1",
                    "type": media_type,
                    "url": f"{self.base_url}/img/{media_type[0]}{sid}.{files[media_type]}",
                    "preview_url": f"{self.base_url}/img/m{sid}-small.png",
                    "remote_url": None,
                    "description": image_alt,
                    "blurhash": "UeKUpFxuo~R%0nW;WCnhF6RjaJt757oJodS$",
                    "meta": {"original": {"width": 64, "height": 48, "size": "64x48", "aspect": 1.33}},
                }
            )
        self.statuses.append(status)
        return sid

    def add_skeet(
        self,
        did: str,
        text: str,
        tags: list[str],
        *,
        operation: str = "create",
        rkey: str | None = None,
        image_alt: str | None = None,
    ) -> dict[str, Any]:
        now_us = int(time.time() * 1_000_000)
        self._next_time_us = max(self._next_time_us + 1, now_us)
        rkey = (
            rkey or base64.b32encode(self._next_time_us.to_bytes(8, "big")).decode().lower().rstrip("=")[:13]
        )
        facets = []
        encoded = text.encode()
        for t in tags:
            start = encoded.find(("#" + t).encode())
            if start >= 0:
                facets.append(
                    {
                        "index": {"byteStart": start, "byteEnd": start + len(t.encode()) + 1},
                        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": t}],
                    }
                )
        commit: dict[str, Any] = {
            "rev": f"3l{self._next_time_us:x}"[:13],
            "operation": operation,
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
        }
        if operation != "delete":
            record: dict[str, Any] = {
                "$type": "app.bsky.feed.post",
                "createdAt": _iso(time.time()),
                "langs": ["en"],
                "text": text,
                "facets": facets,
            }
            if image_alt is not None:
                record["embed"] = {
                    "$type": "app.bsky.embed.images",
                    "images": [
                        {
                            "alt": image_alt,
                            "aspectRatio": {"width": 64, "height": 48},
                            "image": {
                                "$type": "blob",
                                "ref": {"$link": f"bafkrei{rkey}"},
                                "mimeType": "image/png",
                                "size": 200,
                            },
                        }
                    ],
                }
            commit["record"] = record
            commit["cid"] = f"bafyrei{rkey}"
        event = {"did": did, "time_us": self._next_time_us, "kind": "commit", "commit": commit}
        self._send_jet_event(event)
        return event

    def update_profile(self, did: str, display_name: str) -> None:
        """An author changes their display name: the AppView answers with it, and Jetstream sends
        the account's app.bsky.actor.profile record (rkey "self"), as the production capture has it."""
        self.profiles[did]["displayName"] = display_name
        self._next_time_us = max(self._next_time_us + 1, int(time.time() * 1_000_000))
        self._send_jet_event(
            {
                "did": did,
                "time_us": self._next_time_us,
                "kind": "commit",
                "commit": {
                    "rev": f"3l{self._next_time_us:x}"[:13],
                    "operation": "update",
                    "collection": "app.bsky.actor.profile",
                    "rkey": "self",
                    "cid": f"bafyreiprofile{self._next_time_us}",
                    "record": {
                        "$type": "app.bsky.actor.profile",
                        "displayName": display_name,
                        "createdAt": _iso(time.time()),
                    },
                },
            }
        )

    def push_jet_event(self, event: dict[str, Any]) -> None:
        """Send an event (any kind, e.g. a recorded one) to the connected Jetstream readers,
        stamped as received now (Jetstream's time_us is when it received an event: a recorded
        one keeps its old time in a replay's past, where a cursor would skip it)."""
        self._next_time_us = max(self._next_time_us + 1, int(time.time() * 1_000_000))
        self._send_jet_event({**event, "time_us": self._next_time_us})

    def _send_jet_event(self, event: dict[str, Any]) -> None:
        self.jet_events.append(event)
        self._jet_new.set()
        self._jet_new = asyncio.Event()

    def add_profile(self, did: str, handle: str, display_name: str | None = None) -> dict[str, Any]:
        """An account the AppView knows (profileViewDetailed, as app.bsky.actor.defs has it)."""
        profile: dict[str, Any] = {
            "did": did,
            "handle": handle,
            "avatar": f"{self.base_url}/img/avatar-{handle.split('.')[0]}.png",
            "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False},
            "labels": [],
            "createdAt": "2024-03-01T10:00:00.000Z",
            "indexedAt": "2024-03-01T10:00:00.000Z",
            "description": "",
            "followersCount": 12,
            "followsCount": 34,
            "postsCount": 56,
            "viewer": {"muted": False, "blockedBy": False},
        }
        if display_name is not None:
            profile["displayName"] = display_name
        self.profiles[did] = profile
        return profile

    def _stamped(self, text: str) -> str:
        if not self.stamp or STAMP not in text:
            return text
        base = time.monotonic_ns()
        counter = itertools.count()

        def next_stamp(_: re.Match[str]) -> str:
            value = base + next(counter)
            self.stamps.append(value)
            return f"bench t={value} "

        return re.sub(re.escape(STAMP), next_stamp, text)

    def _json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        text = self._stamped(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
        return Response(text, status_code=status, headers=headers, media_type="application/json")

    # -- X API v2 ---------------------------------------------------------------------------------

    def _failure(self, network: str) -> Failure | None:
        queue = self.fail_next[network]
        return queue.popleft() if queue else None

    async def _scripted(self, network: str) -> Response | None:
        failure = self._failure(network)
        if failure is None:
            return None
        if failure.kind == "stall":
            await asyncio.sleep(failure.seconds)
            return Response("", status_code=504)
        if failure.kind == "429":
            reset = int(time.time() + failure.reset_in) + 1
            self.last_429_reset = float(reset)
            headers = (
                {
                    "x-rate-limit-limit": str(self.x_window),
                    "x-rate-limit-remaining": "0",
                    "x-rate-limit-reset": str(reset),
                }
                if network == "x"
                else {
                    "X-RateLimit-Limit": "300",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": _iso(reset),
                }
            )
            body = (
                {
                    "title": "Too Many Requests",
                    "detail": "Too Many Requests",
                    "type": "about:blank",
                    "status": 429,
                }
                if network == "x"
                else {"error": "Too many requests"}
            )
            return JSONResponse(body, status_code=429, headers=headers)
        if failure.kind == "500":
            return Response("Internal Server Error", status_code=500)
        if failure.kind == "html":
            return Response(
                "<html><body><h1>Over capacity</h1></body></html>", status_code=200, media_type="text/html"
            )
        if failure.kind == "malformed":
            return Response('{"data": [{"id": "1", "text": "unterminated', media_type="application/json")
        if failure.kind == "wrong_shape":
            return JSONResponse(["not", "an", "object"])
        raise ValueError(failure.kind)

    async def x_search(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.x_requests.append((time.time(), params))
        if request.headers.get("authorization", "") != "Bearer fake-token":
            return JSONResponse(
                {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"},
                status_code=401,
            )
        scripted = await self._scripted("x")
        if scripted is not None:
            return scripted
        now = time.time()
        if now >= self._x_reset:
            self._x_reset, self._x_used = now + 900, 0
        self._x_used += 1
        headers = {
            "x-rate-limit-limit": str(self.x_window),
            "x-rate-limit-remaining": str(max(0, self.x_window - self._x_used)),
            "x-rate-limit-reset": str(int(self._x_reset)),
        }
        if self._x_used > self.x_window:
            return JSONResponse(
                {"title": "Too Many Requests", "status": 429}, status_code=429, headers=headers
            )
        words = [w.strip().strip('"').lower() for w in params.get("query", "").split(" OR ") if w.strip()]
        since = int(params.get("since_id") or 0)
        limit = max(10, min(100, int(params.get("max_results") or 10)))
        token = params.get("next_token", "")
        upper, offset = (
            (int(x) for x in base64.urlsafe_b64decode(token).decode().split(":")) if token else (0, 0)
        )
        matching = [
            t for t in self.tweets if int(t["id"]) > since and any(w in t["text"].lower() for w in words)
        ]
        matching.sort(key=lambda t: int(t["id"]), reverse=True)
        if token:
            matching = [t for t in matching if int(t["id"]) <= upper]
        elif matching:
            upper = int(matching[0]["id"])
        page = matching[offset : offset + limit]
        meta: dict[str, Any] = {"result_count": len(page)}
        body: dict[str, Any] = {}
        if page:
            body["data"] = page
            user_ids = {t["author_id"] for t in page}
            keys = [k for t in page for k in t.get("attachments", {}).get("media_keys", [])]
            body["includes"] = {"users": [self.users[u] for u in user_ids if u in self.users]}
            if keys:
                body["includes"]["media"] = [self.media[k] for k in keys if k in self.media]
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
            if offset + limit < len(matching):
                meta["next_token"] = base64.urlsafe_b64encode(f"{upper}:{offset + limit}".encode()).decode()
        body["meta"] = meta
        for t in page:
            self.responded.append(("x", t["id"], time.time()))
        return self._json(body, headers=headers)

    # -- Mastodon ---------------------------------------------------------------------------------

    async def mastodon_tag(self, request: Request) -> Response:
        tag = request.path_params["tag"].lower()
        params = dict(request.query_params)
        self.mastodon_requests.append((time.time(), {"tag": tag, **params}))
        scripted = await self._scripted("mastodon")
        if scripted is not None:
            return scripted
        limit = max(1, min(40, int(params.get("limit") or 20)))
        rows = [s for s in self.statuses if any(t["name"] == tag for t in s["tags"])]
        rows.sort(key=lambda s: int(s["id"]))
        if params.get("max_id"):
            rows = [s for s in rows if int(s["id"]) < int(params["max_id"])]
        if params.get("since_id"):
            rows = [s for s in rows if int(s["id"]) > int(params["since_id"])]
        if params.get("min_id"):
            rows = [s for s in rows if int(s["id"]) > int(params["min_id"])]
            page = rows[:limit]  # min_id: the oldest after it...
        else:
            page = rows[-limit:]  # ...otherwise the newest
        page = list(reversed(page))  # always answered newest first
        headers = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "299",
            "X-RateLimit-Reset": _iso(time.time() + 300),
        }
        if page:
            base = f"{self.base_url}/api/v1/timelines/tag/{tag}"
            headers["Link"] = (
                f'<{base}?{urlencode({"max_id": page[-1]["id"]})}>; rel="next", '
                f'<{base}?{urlencode({"min_id": page[0]["id"]})}>; rel="prev"'
            )
        for s in page:
            self.responded.append(("mastodon", s["id"], time.time()))
        return self._json(page, headers=headers)

    # -- Jetstream --------------------------------------------------------------------------------

    async def jetstream(self, websocket: WebSocket) -> None:
        params = dict(websocket.query_params)
        params["wantedCollections"] = ",".join(
            websocket.query_params.getlist("wantedCollections")
        )  # all of them
        self.jetstream_connections.append(params)
        await websocket.accept()
        wanted = websocket.query_params.getlist("wantedCollections")
        cursor = int(params.get("cursor") or 0)
        sent_index = 0
        frames = 0
        junk, self.jetstream_junk = self.jetstream_junk, []
        try:
            for raw in junk:
                await websocket.send_text(raw)
            if not cursor:
                sent_index = len(self.jet_events)  # live tail only, like the real service
            while True:
                while sent_index < len(self.jet_events):
                    event = self.jet_events[sent_index]
                    sent_index += 1
                    if event["time_us"] < cursor:
                        continue
                    # Like the real service: wantedCollections filters commits; identity and account
                    # events always come.
                    if (
                        wanted
                        and event.get("kind") == "commit"
                        and event["commit"].get("collection") not in wanted
                    ):
                        continue
                    if self.jetstream_drop_after is not None and frames >= self.jetstream_drop_after:
                        self.jetstream_drop_after = None
                        await websocket.close(1011)
                        return
                    await websocket.send_text(self._stamped(json.dumps(event, ensure_ascii=False)))
                    if event.get("kind") == "commit":
                        self.responded.append(
                            (
                                "bluesky",
                                f"at://{event['did']}/app.bsky.feed.post/{event['commit']['rkey']}",
                                time.time(),
                            )
                        )
                    frames += 1
                waiter = self._jet_new
                with_timeout = asyncio.create_task(waiter.wait())
                receiver = asyncio.create_task(websocket.receive())
                done, _ = await asyncio.wait({with_timeout, receiver}, return_when=asyncio.FIRST_COMPLETED)
                for task in (with_timeout, receiver):
                    if task not in done:
                        task.cancel()
                if receiver in done and receiver.result().get("type") == "websocket.disconnect":
                    return
        except (WebSocketDisconnect, RuntimeError):
            return

    # -- RSS ------------------------------------------------------------------------------------

    def add_rss_item(
        self,
        title: str,
        description: str,
        categories: list[str],
        *,
        author: str = "Blog Author",
        image: str | None = None,
    ) -> str:
        """An entry of the fake blog's feed, by its own author (dc:creator, as WordPress writes it),
        with an optional image enclosure (a name served under /img/)."""
        guid = f"https://blog.example/posts/{len(self.rss_items) + 1}"
        self.rss_items.append(
            {
                "guid": guid,
                "title": title,
                "description": description,
                "categories": categories,
                "date": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
                "author": author,
                "image": f"{self.base_url}/img/{image}" if image else None,
            }
        )
        return guid

    async def document(self, request: Request) -> Response:
        """A recorded document served as it is, with its recorded headers (feedparser's corpus,
        recorded API answers): found by path, and by path and query string when it has one."""
        name = request.path_params["name"]
        self.document_requests.append(f"{request.url.path}?{request.url.query}")
        found = self.documents.get(f"{name}?{request.url.query}" if request.url.query else name)
        if found is None and (pages := self.document_pages.get(name)):
            found = pages.pop(0) if len(pages) > 1 else pages[0]
        if found is None:
            return Response("not found", status_code=404)
        return Response(found[0], headers=found[1])

    async def get_profiles(self, request: Request) -> Response:
        scripted = await self._scripted("appview")
        if scripted is not None:
            return scripted
        actors = request.query_params.getlist("actors")
        self.profile_requests.append(actors)
        if not actors:
            return self._json(
                {"error": "InvalidRequest", "message": 'Error: Params must have the property "actors"'}, 400
            )
        if len(actors) > 25:
            return self._json(
                {"error": "InvalidRequest", "message": "Error: actors must not have more than 25 elements"},
                400,
            )
        by_handle = {p["handle"]: p for p in self.profiles.values()}
        found = [self.profiles.get(a) or by_handle.get(a) for a in actors]
        return self._json({"profiles": [p for p in found if p is not None]})

    async def rss(self, request: Request) -> Response:
        scripted = await self._scripted("rss")
        if scripted is not None:
            return scripted
        items = "".join(
            f"<item><title>{escape(i['title'])}</title><link>{escape(i['guid'])}</link>"
            f'<guid isPermaLink="true">{escape(i["guid"])}</guid><description>{escape(i["description"])}</description>'
            f"<pubDate>{i['date']}</pubDate><dc:creator>{escape(i['author'])}</dc:creator>"
            + (
                f'<enclosure url="{escape(i["image"], {chr(34): "&quot;"})}" length="0" type="image/jpeg"/>'
                if i["image"]
                else ""
            )
            + "".join(f"<category>{escape(c)}</category>" for c in i["categories"])
            + "</item>"
            for i in self.rss_items
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<channel><title>A conference blog</title><link>https://blog.example/</link>{items}</channel></rss>"
        )
        return Response(body, media_type="application/rss+xml")

    # -- images -----------------------------------------------------------------------------------

    async def image(self, request: Request) -> Response:
        out = io.BytesIO()
        name = request.path_params["name"]
        if name.endswith((".mp4", ".mp3")):  # a video's or a sound's file: not an image
            return Response(
                b"\x00\x00\x00\x18ftypmp42" + bytes(64),
                media_type="video/mp4" if name.endswith("4") else "audio/mpeg",
            )
        colour = (abs(hash(name)) % 200, 120, 180)
        img = Image.new("RGB", (64, 48), colour)
        exif = Image.Exif()
        exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS: must not survive our re-encoding
        img.save(out, "JPEG", exif=exif)
        return Response(out.getvalue(), media_type="image/jpeg")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/2/tweets/search/recent", self.x_search),
                Route("/api/v1/timelines/tag/{tag}", self.mastodon_tag),
                WebSocketRoute("/subscribe", self.jetstream),
                Route("/img/{name}", self.image),
                Route("/feed.rss", self.rss),
                Route("/doc/{name:path}", self.document),
                Route("/xrpc/app.bsky.actor.getProfiles", self.get_profiles),
            ]
        )


@contextlib.asynccontextmanager
async def serve_fakes(fakes: FakeNetworks | None = None, port: int = 0) -> AsyncIterator[FakeNetworks]:
    """Run the fake networks with uvicorn on 127.0.0.1 inside the current event loop."""
    import uvicorn

    fakes = fakes or FakeNetworks()
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the host process owns the signals
            yield

    config = uvicorn.Config(
        fakes.app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
        timeout_graceful_shutdown=1,
    )
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    fakes.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fakes
    finally:
        server.should_exit = True
        server.force_exit = True
        async with asyncio.timeout(10):
            await task

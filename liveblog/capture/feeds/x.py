"""X/Twitter through tweepy: API v2 recent search, polled with since_id and next_token.

tweepy is synchronous (requests), so each request runs in a worker thread. Its session gets our
transport adapter, which puts a timeout on every request (tweepy sets none: a stalled
connection would hold the thread for ever), checks every request's host as capture/outbound.py
does (redirects included; the API host is the operator's, so no connect-time pinning), and, when
`feeds_x.api_base` is not the real API, sends the requests there instead (the loopback fake in
tests and the demo). Images and avatars in X's answers are fetched by media.py, like any post's.

Reads are billed per post (about $0.005 each since February 2026), so every post read is
counted against a cap per event and per session before and after each request, and the first
poll of an event starts at its window (not seven days back).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import tweepy
from requests.adapters import HTTPAdapter

from liveblog.capture.feeds.base import (
    CannotRun,
    EventTarget,
    Feed,
    PollingSource,
    RateLimited,
    SourceError,
    clip,
    hashtags_in,
    normalise_tag,
    obj,
    text_value,
    utc_iso,
)
from liveblog.capture.outbound import MAX_REDIRECTS, OutboundError, Refused, record_refusal, vetted_now
from liveblog.models import SocialPost
from liveblog.settings import Settings

log = logging.getLogger(__name__)

REAL_API = "https://api.twitter.com"
TWEET_FIELDS = [
    "created_at",
    "author_id",
    "entities",
    "referenced_tweets",
    "attachments",
    "lang",
    "conversation_id",
]
EXPANSIONS = ["author_id", "attachments.media_keys", "referenced_tweets.id"]
USER_FIELDS = ["name", "username", "profile_image_url"]
MEDIA_FIELDS = ["type", "url", "preview_image_url", "alt_text", "width", "height"]
UNKNOWN_AUTHOR = "Unknown author on X"
MAX_PAGES = 10  # per poll of one event: the rest waits for the next poll (the cap is the real bound)


class RoutingAdapter(HTTPAdapter):
    """A requests transport adapter: a timeout on every request, the address rule, and an
    optional new base URL."""

    def __init__(self, timeout: float, api_base: str = REAL_API, allow_private: bool = False) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout
        self.api_base = api_base.rstrip("/")
        self.allow_private = allow_private

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.api_base != REAL_API and request.url and request.url.startswith(REAL_API):
            request.url = self.api_base + request.url[len(REAL_API) :]
        url = urlsplit(request.url or "")
        try:
            if url.scheme not in ("http", "https") or not url.hostname:
                raise Refused("scheme", f"{url.scheme or 'no'} scheme: only http and https are fetched")
            vetted_now(url.hostname, url.port or (443 if url.scheme == "https" else 80), self.allow_private)
        except Refused as exc:
            exc.url = request.url or ""
            record_refusal("x", exc)
            raise
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def make_client(token: str, api_base: str, timeout: float, allow_private: bool = False) -> tweepy.Client:
    client = tweepy.Client(bearer_token=token, return_type=requests.Response, wait_on_rate_limit=False)
    adapter = RoutingAdapter(timeout, api_base, allow_private)
    for prefix in (REAL_API + "/", "https://", "http://"):  # every request and redirect of the session
        client.session.mount(prefix, adapter)
    client.session.max_redirects = MAX_REDIRECTS
    return client


def build_query(target: EventTarget, capped_sessions: set[str]) -> str:
    tags = set(target.tags)
    for s in target.sessions:
        if s.session_id not in capped_sessions:
            tags |= s.own_tags
    parts = [f"#{t}" for t in sorted(tags)]
    parts += [f'"{t}"' if " " in t else t for t in target.terms]
    return " OR ".join(parts)


def parse_page(body: Any, max_chars: int) -> tuple[list[SocialPost], dict[str, Any]]:
    """A recent-search response body -> (posts, meta). Missing or odd fields are tolerated;
    a body that is not the API's shape at all is a SourceError."""
    if not isinstance(body, dict):
        raise SourceError("X answered with something that is not a JSON object")
    meta = obj(body.get("meta"))
    data = body.get("data", [])
    if data is None:
        data = []
    if not isinstance(data, list):
        raise SourceError("X answered with 'data' that is not a list")
    if "data" not in body and "meta" not in body:
        raise SourceError("X answered without 'data' or 'meta'")
    includes = obj(body.get("includes"))
    users = {u.get("id"): u for u in includes.get("users", []) or [] if isinstance(u, dict)}
    media = {m.get("media_key"): m for m in includes.get("media", []) or [] if isinstance(m, dict)}
    posts = []
    for tweet in data:
        if not isinstance(tweet, dict):
            continue
        tweet_id = text_value(tweet.get("id"))
        if not tweet_id.isdigit():
            continue
        user = users.get(tweet.get("author_id"), {})
        # Without `includes` (as tweepy's recordings show: no expansions asked, or X leaving them
        # out) the author is the author_id or unknown: nothing made up, and the link is by id.
        username = text_value(user.get("username")) or text_value(tweet.get("author_id"))
        entities = obj(tweet.get("entities"))
        links = [
            text_value(u.get("expanded_url")) or text_value(u.get("url"))
            for u in entities.get("urls", []) or []
            if isinstance(u, dict)
        ]
        hashtags = (
            [
                normalise_tag(text_value(h.get("tag")))
                for h in entities.get("hashtags", []) or []
                if isinstance(h, dict)
            ]
            if "entities" in tweet
            else hashtags_in(text_value(tweet.get("text")))
        )
        mentions = [
            text_value(m.get("username")) for m in entities.get("mentions", []) or [] if isinstance(m, dict)
        ]
        relation: dict[str, str] = {}
        for ref in tweet.get("referenced_tweets", []) or []:
            if isinstance(ref, dict) and isinstance(ref.get("id"), str):
                kind = {"replied_to": "reply_to", "quoted": "quote_of", "retweeted": "repost_of"}.get(
                    text_value(ref.get("type"))
                )
                if kind:
                    relation[kind] = ref["id"]
        attachments = obj(tweet.get("attachments"))
        items = []
        for key in attachments.get("media_keys", []) or []:
            m = media.get(key)
            if not isinstance(m, dict):
                continue
            items.append(
                {
                    "type": text_value(m.get("type"), "photo"),
                    "url": text_value(m.get("url")) or text_value(m.get("preview_image_url")),
                    "alt": text_value(m.get("alt_text")),
                    "width": m.get("width") if isinstance(m.get("width"), int) else None,
                    "height": m.get("height") if isinstance(m.get("height"), int) else None,
                }
            )
        text = text_value(tweet.get("text"))
        posts.append(
            SocialPost(
                network="x",
                post_id=tweet_id,
                author_handle=username[:100],
                author_name=(text_value(user.get("name")) or username or UNKNOWN_AUTHOR)[:200],
                text=clip(text, max_chars),
                url=f"https://x.com/{username if user.get('username') else 'i/web'}/status/{tweet_id}",
                posted_at=utc_iso(tweet.get("created_at")),
                links=tuple(link for link in links if link.startswith(("https://", "http://")))[:20],
                hashtags=tuple(h for h in hashtags if h)[:50],
                mentions=tuple(m for m in mentions if m)[:50],
                media=tuple(items[:8]),
                avatar_url=text_value(user.get("profile_image_url")),
                relation=relation,
                lang=text_value(tweet.get("lang")),
            )
        )
    return posts, meta


class XSource(PollingSource):
    network = "x"

    def __init__(self, settings: Settings) -> None:
        xs = settings.feeds_x
        super().__init__(
            "api.x.com" if xs.api_base == REAL_API else xs.api_base,
            xs.poll_seconds,
            settings.feeds.backoff_max_seconds,
        )
        self.settings = xs
        self.max_chars = settings.feeds.max_post_chars
        self.token = settings.x_bearer_token
        self.client = (
            make_client(
                self.token,
                xs.api_base,
                settings.feeds.request_timeout_seconds,
                settings.feeds.allow_private_addresses,
            )
            if self.token
            else None
        )
        self.status.read_cap = xs.event_read_cap
        self.status.cost_usd = 0.0
        # Pagination under way per event: (since_id asked with, next_token, newest id seen).
        self._paging: dict[str, tuple[str | None, str, str | None]] = {}
        self._not_before = 0.0  # no request before this (a 429's reset)

    async def close(self) -> None:
        if self.client is not None:
            self.client.session.close()

    def _search(self, **params: Any) -> requests.Response:
        assert self.client is not None
        response = self.client.search_recent_tweets(**params)
        assert isinstance(response, requests.Response)
        return response

    async def _request(self, params: dict[str, Any]) -> dict[str, Any]:
        if time.time() < self._not_before:
            raise RateLimited(self._not_before)
        self.status.requests += 1
        try:
            response = await asyncio.to_thread(self._search, **params)
        except tweepy.TooManyRequests as exc:
            until = float(exc.reset_time) if exc.reset_time else time.time() + 60.0
            self._not_before = until
            raise RateLimited(until, "429 from X") from None
        except tweepy.Unauthorized:
            raise CannotRun("X refused the bearer token (401): check LIVEBLOG_X_BEARER_TOKEN") from None
        except tweepy.TweepyException as exc:
            raise SourceError(f"X error: {exc}") from None
        except requests.RequestException as exc:
            raise SourceError(f"X request failed: {type(exc).__name__}") from None
        except OutboundError as exc:
            raise SourceError(f"X request {exc}") from None
        remaining = response.headers.get("x-rate-limit-remaining")
        reset_header = response.headers.get("x-rate-limit-reset") or ""
        if remaining == "0" and reset_header.isdigit():
            self._not_before = float(reset_header)  # this answer counts; the next must wait
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type:
            raise SourceError(
                f"X answered {response.status_code} with {content_type or 'no content type'}, not JSON"
            )
        try:
            body = response.json()
        except ValueError:
            raise SourceError("X answered with malformed JSON") from None
        if not isinstance(body, dict):
            raise SourceError("X answered with JSON that is not an object")
        return body

    def unavailable(self) -> str | None:
        return (
            None
            if self.client is not None
            else "no bearer token: set LIVEBLOG_X_BEARER_TOKEN to collect from X"
        )

    async def poll_once(self, feed: Feed, targets: list[EventTarget]) -> None:
        reads = await feed.reads_used("x")
        self._show_reads(reads)
        for target in targets:
            left, capped = self._room(target, reads)
            if not self._stopped(target, left, capped):
                await self._poll_event(feed, target, left, capped)
                reads = await feed.reads_used("x")
                self._show_reads(reads)
        if all(self._stopped(t, *self._room(t, reads)) for t in targets):
            self.status.set("capped", "the read cap is reached for every collecting event or session")
        elif self.status.state != "running":
            self.status.set("running")

    @staticmethod
    def _stopped(target: EventTarget, left: int, capped: set[str]) -> bool:
        """Past the event's cap, or every collecting session past its own (in a break, when no
        session is collecting, only the event's cap counts)."""
        return left <= 0 or bool(target.sessions) and len(capped) == len(target.sessions)

    def _room(self, target: EventTarget, reads: dict[tuple[str, str], int]) -> tuple[int, set[str]]:
        """(reads left for the event, sessions at their own cap)."""
        left = self.settings.event_read_cap - reads.get((target.event_id, ""), 0)
        capped = {
            s.session_id
            for s in target.sessions
            if reads.get((target.event_id, s.session_id), 0) >= self.settings.session_read_cap
        }
        return left, capped

    def _show_reads(self, reads: dict[tuple[str, str], int]) -> None:
        total = sum(n for (_, session), n in reads.items() if session == "")
        self.status.reads = total
        self.status.cost_usd = total * self.settings.cost_per_read_usd

    async def _poll_event(self, feed: Feed, target: EventTarget, left: int, capped: set[str]) -> None:
        query = build_query(target, capped)
        if not query:
            return
        cursor_key = f"x:{target.event_id}"
        since_id, next_token, newest = self._paging.get(target.event_id, (None, "", None))
        if not next_token:
            since_id = await feed.get_cursor(cursor_key)
        for _ in range(MAX_PAGES):
            if left <= 0:
                break
            params: dict[str, Any] = {
                "query": query,
                "max_results": max(10, min(self.settings.max_results, left)),
                "tweet_fields": TWEET_FIELDS,
                "expansions": EXPANSIONS,
                "user_fields": USER_FIELDS,
                "media_fields": MEDIA_FIELDS,
            }
            if since_id:
                params["since_id"] = since_id
            else:
                start = max(target.window_start, datetime.now(UTC) - timedelta(days=6, hours=23))
                params["start_time"] = start
            if next_token:
                params["next_token"] = next_token
            body = await self._request(params)
            posts, meta = parse_page(body, self.max_chars)
            newest = newest or text_value(meta.get("newest_id")) or None
            next_token = text_value(meta.get("next_token"))
            left -= len(posts)
            done = not next_token or left <= 0
            # The last page carries the new since_id, saved with its posts in one transaction.
            cursor = (cursor_key, newest) if done and newest else None
            result = await feed.ingest("x", posts, event_id=target.event_id, billed=len(posts), cursor=cursor)
            self.status.posts += result.new
            if done:
                self._paging.pop(target.event_id, None)
                return
            # Remember where pagination stands: a 429 on the next page resumes from here.
            self._paging[target.event_id] = (since_id, next_token, newest)
        # More pages than one poll reads: carry on at the next poll, with the same since_id.


def build(settings: Settings) -> list[XSource]:
    if not settings.feeds_x.enabled:
        return []
    return [XSource(settings)]

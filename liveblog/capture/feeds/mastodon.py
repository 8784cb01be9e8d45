"""Mastodon: each configured instance's hashtag timeline, polled anonymously with min_id.

`min_id` pages forward from the newest post we have (the oldest posts after it first), so the
cursor can move after every page and a crash between pages loses nothing; a full page means
more may follow, and the `Link` header's rel="prev" URL is the next page forward. The first
poll of a tag takes its newest page and keeps what falls inside the collecting window.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from liveblog.capture.feeds.base import (
    EventTarget,
    Feed,
    PollingSource,
    RateLimited,
    SourceError,
    clip,
    normalise_tag,
    obj,
    plain_text,
    text_value,
    utc_iso,
)
from liveblog.capture.outbound import Network, OutboundClient, OutboundError
from liveblog.models import SocialPost
from liveblog.settings import Settings

MAX_PAGES = 5  # forward pages per tag per poll; the rest comes at the next poll
_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')


def link_header(value: str) -> dict[str, str]:
    return {rel: url for url, rel in _LINK.findall(value or "")}


def _acct(account: dict[str, Any], instance: str) -> str:
    acct = text_value(account.get("acct"), "unknown")
    return acct if "@" in acct else f"{acct}@{urlsplit(instance).netloc}"  # local: named with its instance


# Mastodon 4.4+ writes "RE: <the quoted post's address>" in this element of a quoting status, for
# clients that cannot show quotes; a card that shows the quote leaves it out, as Mastodon does.
QUOTE_LINE = frozenset({"quote-inline"})


def _text_of(status: dict[str, Any], quote_shown: bool = False) -> str:
    text = plain_text(text_value(status.get("content")), QUOTE_LINE if quote_shown else frozenset())
    spoiler = text_value(status.get("spoiler_text"))
    return f"CW: {spoiler}\n\n{text}" if spoiler else text


def _quote(body: dict[str, Any], instance: str, max_chars: int) -> tuple[str, dict[str, str]]:
    """The quoted post's id and what we show of it, from either shape: Mastodon 4.4+'s
    {"state", "quoted_status": Status} (or {"state", "quoted_status_id"} when nested too deep),
    where only an accepted quote names its post; or the older quote = Status of forks and
    earlier previews."""
    quote = obj(body.get("quote"))
    if not quote:
        return "", {}
    if "state" in quote:
        if quote.get("state") != "accepted":
            return "", {}
        quoted = obj(quote.get("quoted_status"))
        if not quoted:
            return text_value(quote.get("quoted_status_id")), {}
    else:
        quoted = quote
    qid = text_value(quoted.get("id"))
    account = obj(quoted.get("account"))
    if not qid or not account:
        return qid, {}
    url = text_value(quoted.get("url")) or text_value(quoted.get("uri"))
    handle = _acct(account, instance)
    return qid, {
        "author_handle": handle[:200],
        "author_name": (text_value(account.get("display_name")) or handle)[:200],
        "text": clip(_text_of(quoted), max_chars),
        "url": url if url.startswith(("https://", "http://")) else "",
    }


def _poll(body: dict[str, Any]) -> dict[str, Any]:
    """A poll's options and counts as they stood when we collected the post (shown read-only)."""
    poll = obj(body.get("poll"))
    options = [
        {
            "title": text_value(o.get("title"))[:200],
            "votes": o.get("votes_count") if isinstance(o.get("votes_count"), int) else None,
        }
        for o in poll.get("options") or []
        if isinstance(o, dict)
    ]
    if not options:
        return {}

    def count(name: str) -> int | None:
        return poll[name] if isinstance(poll.get(name), int) else None

    return {
        "options": options[:20],
        "votes": count("votes_count"),
        "voters": count("voters_count"),
        "expires_at": text_value(poll.get("expires_at")),
        "expired": poll.get("expired") is True,
        "multiple": poll.get("multiple") is True,
    }


def parse_status(status: Any, instance: str, max_chars: int) -> SocialPost | None:
    if not isinstance(status, dict):
        return None
    sid = text_value(status.get("id"))
    account = obj(status.get("account"))
    if not sid or not account:
        return None
    relation: dict[str, str] = {}
    reblog = status.get("reblog")
    if isinstance(reblog, dict) and isinstance(reblog.get("id"), str):
        relation["repost_of"] = reblog["id"]
        body = reblog
    else:
        body = status
    if isinstance(status.get("in_reply_to_id"), str):
        relation["reply_to"] = status["in_reply_to_id"]
    quote_id, quoted = _quote(body, instance, max_chars)
    if quote_id:
        relation["quote_of"] = quote_id
    acct = _acct(account, instance)
    text = _text_of(body, quote_shown=bool(quoted))
    # Media its author marked sensitive: Mastodon shows it only on a click, and so do we.
    sensitive = {"sensitive": True} if body.get("sensitive") is True else {}
    media = []
    for m in body.get("media_attachments", []) or []:
        if not isinstance(m, dict):
            continue
        meta = obj(m.get("meta"))
        original = obj(meta.get("original"))
        kind = text_value(m.get("type"), "image")
        entry = {
            "type": kind,
            "url": text_value(m.get("url")) or text_value(m.get("remote_url")),
            "alt": text_value(m.get("description")),
            "width": original.get("width") if isinstance(original.get("width"), int) else None,
            "height": original.get("height") if isinstance(original.get("height"), int) else None,
            **sensitive,
        }
        # A gifv, video or sound is not an image: its preview image is what we copy and show,
        # with a link to the original.
        if kind != "image" and (
            preview := text_value(m.get("preview_url")) or text_value(m.get("preview_remote_url"))
        ):
            small = obj(meta.get("small"))
            entry.update(
                preview=preview,
                width=small.get("width") if isinstance(small.get("width"), int) else None,
                height=small.get("height") if isinstance(small.get("height"), int) else None,
            )
        media.append(entry)
    tags = [
        normalise_tag(text_value(t.get("name"))) for t in body.get("tags", []) or [] if isinstance(t, dict)
    ]
    mentions = [text_value(m.get("acct")) for m in body.get("mentions", []) or [] if isinstance(m, dict)]
    card = obj(body.get("card"))
    links = [text_value(card.get("url"))] if card and text_value(card.get("url")) else []
    url = text_value(status.get("url")) or text_value(status.get("uri"))
    return SocialPost(
        network="mastodon",
        post_id=text_value(status.get("uri"))
        or f"{instance}/{sid}",  # the same post seen from two instances is one
        author_handle=acct[:200],
        author_name=(text_value(account.get("display_name")) or acct)[:200],
        text=clip(text, max_chars),
        url=url if url.startswith(("https://", "http://")) else "",
        posted_at=utc_iso(status.get("created_at")),
        links=tuple(links),
        hashtags=tuple(t for t in tags if t)[:50],
        mentions=tuple(m for m in mentions if m)[:50],
        media=tuple(media[:8]),
        avatar_url=text_value(account.get("avatar_static")) or text_value(account.get("avatar")),
        relation=relation,
        lang=text_value(status.get("language")),
        quote=quoted,
        poll=_poll(body),
    )


class MastodonSource(PollingSource):
    network = "mastodon"

    def __init__(
        self,
        settings: Settings,
        instance: str,
        transport: httpx.AsyncBaseTransport | None = None,
        network: Network | None = None,
    ) -> None:
        self.instance = instance.rstrip("/")
        super().__init__(
            urlsplit(self.instance).netloc or self.instance,
            settings.feeds_mastodon.poll_seconds,
            settings.feeds.backoff_max_seconds,
        )
        self.limit = settings.feeds_mastodon.limit
        self.max_chars = settings.feeds.max_post_chars
        self.client = OutboundClient(
            "mastodon",
            allow_private=settings.feeds.allow_private_addresses,
            timeout=settings.feeds.request_timeout_seconds,
            network=network,
            transport=transport,
            headers={"accept": "application/json"},
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def _get(self, url: str, params: dict[str, Any] | None = None) -> tuple[list[Any], dict[str, str]]:
        self.status.requests += 1
        try:
            response = await self.client.get(url, params=params)
        except OutboundError as exc:
            raise SourceError(f"{self.status.name}: {exc}") from None
        if response.status_code == 429:
            reset = response.headers.get("x-ratelimit-reset", "")
            try:
                until = datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
            except ValueError:
                until = time.time() + 300
            raise RateLimited(until, "429 from Mastodon")
        if response.status_code != 200:
            raise SourceError(f"{self.status.name} answered {response.status_code}")
        if "json" not in response.headers.get("content-type", ""):
            raise SourceError(
                f"{self.status.name} answered 200 with {response.headers.get('content-type')}, not JSON"
            )
        try:
            body = response.json()
        except ValueError:
            raise SourceError(f"{self.status.name} answered with malformed JSON") from None
        if not isinstance(body, list):
            raise SourceError(f"{self.status.name} answered with JSON that is not a list of statuses")
        return body, link_header(response.headers.get("link", ""))

    async def poll_once(self, feed: Feed, targets: list[EventTarget]) -> None:
        windows: dict[str, datetime] = {}
        for target in targets:
            for tag in target.all_tags:
                windows[tag] = min(windows.get(tag, target.window_start), target.window_start)
        for tag, window_start in sorted(windows.items()):
            await self._poll_tag(feed, tag, window_start)

    async def _poll_tag(self, feed: Feed, tag: str, window_start: datetime) -> None:
        key = f"mastodon:{self.instance}:{tag}"
        cursor = await feed.get_cursor(key)
        url = f"{self.instance}/api/v1/timelines/tag/{quote(tag, safe='')}"
        if not cursor:
            await self._first_look(feed, key, url, window_start)
            return
        params: dict[str, Any] | None = {"limit": self.limit, "min_id": cursor}
        for _ in range(MAX_PAGES):
            statuses, links = await self._get(url, params)
            newest = _newest(statuses)
            moved = newest is not None and int(newest) > int(cursor)
            # The cursor moves in the same transaction as the page's posts: a crash loses nothing.
            await self._ingest(feed, statuses, None, (key, newest) if moved and newest else None)
            if newest is None:
                return
            if moved:
                cursor = newest
            if len(statuses) < self.limit or "prev" not in links:
                return
            # The next page forward. Only follow links on the same instance.
            url, params = links["prev"], None
            if not url.startswith(self.instance + "/"):
                return

    async def _first_look(self, feed: Feed, key: str, url: str, window_start: datetime) -> None:
        """No cursor yet: read back from the newest (Link rel="next") to the collecting window's
        start, then remember the newest id, so later polls page forward from there."""
        params: dict[str, Any] | None = {"limit": self.limit}
        newest: str | None = None
        for _ in range(MAX_PAGES):
            statuses, links = await self._get(url, params)
            newest = newest or _newest(statuses)
            older = await self._ingest(feed, statuses, window_start)
            if older or len(statuses) < self.limit or "next" not in links:
                break
            url, params = links["next"], None
            if not url.startswith(self.instance + "/"):
                break
        if newest is not None:
            await feed.set_cursor(key, newest)

    async def _ingest(
        self,
        feed: Feed,
        statuses: list[Any],
        window_start: datetime | None,
        cursor: tuple[str, str] | None = None,
    ) -> bool:
        """Store a page's posts (those inside the window, if given); True if any were older."""
        posts = [p for s in statuses if (p := parse_status(s, self.instance, self.max_chars)) is not None]
        older = False
        if window_start is not None:
            kept = [
                p for p in posts if datetime.fromisoformat(p.posted_at.replace("Z", "+00:00")) >= window_start
            ]
            older = len(kept) < len(posts)
            posts = kept
        if posts:
            result = await feed.ingest("mastodon", posts, cursor=cursor)
            self.status.posts += result.new
        elif cursor is not None:
            await feed.set_cursor(*cursor)
        return older


def _newest(statuses: list[Any]) -> str | None:
    ids = [i for s in statuses if isinstance(s, dict) and (i := text_value(s.get("id"))).isdigit()]
    return max(ids, key=int) if ids else None


def build(settings: Settings) -> list[MastodonSource]:
    return [MastodonSource(settings, instance) for instance in settings.feeds_mastodon.instances]

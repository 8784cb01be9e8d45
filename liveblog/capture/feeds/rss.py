"""RSS 2.0 and Atom feeds: a blog or news feed whose entries mention the event's hashtags.

The small fourth source, to show what adding one takes: this module (parse, and a `build`),
the `[feeds_rss]` settings block, and its name in SOURCE_MODULES. Entries are stored like any
post (network "rss", id = guid/id, else link), deduplicated the same way, so no cursor is kept.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from liveblog.capture.feeds.base import (
    EventTarget,
    Feed,
    PollingSource,
    SourceError,
    clip,
    hashtags_in,
    normalise_tag,
    plain_text,
    utc_iso,
)
from liveblog.capture.outbound import Network, OutboundClient, OutboundError
from liveblog.models import SocialPost
from liveblog.settings import Settings

MAX_FEED_BYTES = 5 * 1024 * 1024
ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"


def _text(node: ET.Element | None) -> str:
    return "".join(node.itertext()).strip() if node is not None else ""


def _date(value: str) -> str:
    value = value.strip()
    if not value:
        return utc_iso(None)
    try:
        return utc_iso(parsedate_to_datetime(value).isoformat())
    except (TypeError, ValueError):
        return utc_iso(value)


def parse_feed(data: bytes, feed_url: str, max_chars: int) -> list[SocialPost]:
    """Entries of an RSS 2.0 or Atom document. Raises SourceError for what is neither."""
    if b"<!DOCTYPE" in data[:2048].upper() and b"<html" in data[:4096].lower():
        raise SourceError("the feed URL answered with an HTML page, not a feed")
    try:
        root = ET.fromstring(data)  # expat refuses external entities; bounded size above
    except ET.ParseError as exc:
        raise SourceError(f"not a readable feed: {exc}") from None
    site = urlsplit(feed_url).netloc
    posts = []
    entries: list[dict[str, Any]] = []
    if root.tag == "rss" or root.find("channel") is not None:
        channel = root.find("channel")
        title = _text(channel.find("title")) if channel is not None else site
        for item in (channel.findall("item") if channel is not None else []):
            entries.append({
                "id": _text(item.find("guid")) or _text(item.find("link")),
                "title": _text(item.find("title")),
                "body": _text(item.find("description")),
                "link": _text(item.find("link")),
                "date": _date(_text(item.find("pubDate")) or _text(item.find(f"{DC}date"))),
                "author": _text(item.find(f"{DC}creator")) or _text(item.find("author")) or title,
                "categories": [_text(c) for c in item.findall("category")],
            })
    elif root.tag == f"{ATOM}feed":
        title = _text(root.find(f"{ATOM}title")) or site
        for entry in root.findall(f"{ATOM}entry"):
            link = next((a.get("href", "") for a in entry.findall(f"{ATOM}link") if a.get("rel", "alternate") == "alternate"), "")
            entries.append({
                "id": _text(entry.find(f"{ATOM}id")) or link,
                "title": _text(entry.find(f"{ATOM}title")),
                "body": _text(entry.find(f"{ATOM}summary")) or _text(entry.find(f"{ATOM}content")),
                "link": link,
                "date": utc_iso(_text(entry.find(f"{ATOM}published")) or _text(entry.find(f"{ATOM}updated"))),
                "author": _text(entry.find(f"{ATOM}author/{ATOM}name")) or title,
                "categories": [c.get("term", "") for c in entry.findall(f"{ATOM}category")],
            })
    else:
        raise SourceError(f"not an RSS or Atom feed (root element {root.tag[:60]!r})")
    for e in entries:
        if not e["id"]:
            continue
        body = plain_text(e["body"])
        text = f"{e['title']}\n\n{body}".strip() if e["title"] and not body.startswith(e["title"]) else body or e["title"]
        tags = [normalise_tag(c) for c in e["categories"] if c] + hashtags_in(text)
        link = e["link"] if e["link"].startswith(("https://", "http://")) else ""
        posts.append(SocialPost(
            network="rss",
            post_id=e["id"][:500],
            author_handle=site[:200],
            author_name=e["author"][:200],
            text=clip(text, max_chars),
            url=link,
            posted_at=e["date"],
            links=(link,) if link else (),
            hashtags=tuple(dict.fromkeys(t for t in tags if t))[:50],
        ))
    return posts


class RssSource(PollingSource):
    network = "rss"

    def __init__(self, settings: Settings, url: str, transport: httpx.AsyncBaseTransport | None = None,
                 network: Network | None = None) -> None:
        self.url = url
        super().__init__(urlsplit(url).netloc or url, settings.feeds_rss.poll_seconds, settings.feeds.backoff_max_seconds)
        self.max_chars = settings.feeds.max_post_chars
        self.client = OutboundClient("rss", allow_private=settings.feeds.allow_private_addresses,
                                     timeout=settings.feeds.request_timeout_seconds, max_bytes=MAX_FEED_BYTES,
                                     network=network, transport=transport)

    async def close(self) -> None:
        await self.client.aclose()

    async def poll_once(self, feed: Feed, targets: list[EventTarget]) -> None:
        self.status.requests += 1
        try:
            response = await self.client.get(self.url)
        except OutboundError as exc:
            raise SourceError(f"{self.status.name}: {exc}") from None
        if response.status_code != 200:
            raise SourceError(f"{self.status.name} answered {response.status_code}")
        posts = parse_feed(response.content, self.url, self.max_chars)
        wanted = frozenset().union(*(t.all_tags for t in targets))
        terms = [term.lower() for t in targets for term in t.terms]
        matching = [p for p in posts if wanted & set(p.hashtags) or any(term in p.text.lower() for term in terms)]
        if matching:
            result = await feed.ingest("rss", matching)
            self.status.posts += result.new


def build(settings: Settings) -> list[RssSource]:
    return [RssSource(settings, url) for url in settings.feeds_rss.urls]

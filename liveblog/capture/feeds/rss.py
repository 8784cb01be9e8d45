"""RSS and Atom feeds: a blog or news feed whose entries mention the event's hashtags.

The small fourth source, to show what adding one takes: this module (parse, and a `build`),
the `[feeds_rss]` settings block, and its name in SOURCE_MODULES. Parsing is feedparser's (the
maintained parser: RSS 0.9x/1.0/2.0, Atom 0.3/1.0, the HTTP charset and every encoding Python
has, xml:base); this module turns its entries into posts. Entries are stored like any post
(network "rss", id = guid/id, else link, else a hash of the entry), deduplicated the same way,
so no cursor is kept.
"""

from __future__ import annotations

import asyncio
import calendar
import codecs
import hashlib
import io
import json
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import charset_normalizer
import feedparser
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
    wanted_of,
)
from liveblog.capture.outbound import Network, OutboundClient, OutboundError
from liveblog.models import SocialPost
from liveblog.settings import Settings

MAX_FEED_BYTES = 5 * 1024 * 1024
MAX_MEDIA = 8  # images per entry, as for other networks' posts


def _text(detail: Any, value: Any) -> str:
    """A title or summary as plain text: feedparser gives text constructs as HTML unless their
    type says plain text."""
    text = value if isinstance(value, str) else ""
    kind = detail.get("type", "") if isinstance(detail, dict) else ""
    return text.strip() if kind == "text/plain" else plain_text(text)


def _date(entry: Any) -> str:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if isinstance(parsed, time.struct_time):
            return utc_iso(datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat())
    return utc_iso(None)


def _http(url: str) -> str:
    return url if url.startswith(("https://", "http://")) else ""


def _images(entry: Any, base: str) -> list[dict[str, Any]]:
    """Image enclosures and media:content images (feedparser's `enclosures`, `media_content`)."""
    found: list[dict[str, Any]] = []
    for enclosure in entry.get("enclosures", []) or []:
        if str(enclosure.get("type", "")).lower().startswith("image/"):
            found.append({"url": enclosure.get("href", ""), "width": None, "height": None})
    for content in entry.get("media_content", []) or []:
        if content.get("medium") == "image" or str(content.get("type", "")).lower().startswith("image/"):
            found.append(
                {
                    "url": content.get("url", ""),
                    "width": content.get("width"),
                    "height": content.get("height"),
                }
            )
    media: list[dict[str, Any]] = []
    seen: set[str] = set()
    for image in found:
        url = _http(urljoin(base, str(image["url"] or "")))
        if not url or url in seen:
            continue
        seen.add(url)
        size = {
            k: int(v) if str(v or "").isdigit() else None
            for k, v in (("width", image["width"]), ("height", image["height"]))
        }
        media.append({"type": "image", "url": url, "alt": "", **size})
    return media[:MAX_MEDIA]


def _content_key(title: str, link: str, body: str, when: Any) -> str:
    """An entry with neither id nor link is known by its content: the same entry at the next poll
    has the same key, so it is stored once."""
    digest = hashlib.sha256(
        json.dumps([title, link, body, str(when)], ensure_ascii=False).encode()
    ).hexdigest()
    return f"sha256:{digest[:40]}"


# feedparser's last guesses for a document whose bytes are not in the encoding it says (or, saying
# none, not UTF-8): they decode almost any bytes, so they "work", as mojibake.
_LAST_GUESSES = {"cp1252", "iso8859-2"}
_DECLARED = re.compile(rb"^[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return ""


def _parse(data: bytes, headers: dict[str, str]) -> Any:
    # A file object, never a string: feedparser would fetch a string that looks like a URL itself.
    return feedparser.parse(io.BytesIO(data), response_headers=headers)


def _stray_as_cp1252(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start : error.end].decode("cp1252", "replace"), error.end


codecs.register_error("liveblog.stray-cp1252", _stray_as_cp1252)


def _reread(data: bytes, parsed: Any) -> tuple[bytes, str] | None:
    """The bytes and charset to read again a feed that feedparser read with one of its last
    guesses, or None to keep its read. A UTF-8 document (declared so, or saying nothing) with a few
    stray bytes (windows-1252 pasted into it) stays UTF-8, each stray byte read as windows-1252;
    one that is not UTF-8 at all (a Big5, KOI8-R or Shift_JIS blog with no declaration) is read in
    the encoding detected from its bytes (charset-normalizer, as feedparser would with chardet)."""
    used = _codec(str(parsed.get("encoding") or ""))
    if not isinstance(parsed.get("bozo_exception"), feedparser.CharacterEncodingOverride) or (
        used not in _LAST_GUESSES
    ):
        return None
    declared = _DECLARED.match(data)
    said = _codec(declared.group(1).decode("ascii")) if declared else "utf-8"
    if said == used:
        return None  # it says windows-1252 (say), and is read so: no guess was made
    if said == "utf-8":
        text = data.decode("utf-8", "replace")
        stray = text.count("\ufffd") - data.count("\ufffd".encode())
        valid = sum(1 for c in text if c > "\x7f" and c != "\ufffd")
        if valid >= 2 * stray:  # mostly UTF-8 (a Big5 or EUC-JP text makes few valid sequences)
            return data.decode("utf-8", "liveblog.stray-cp1252").encode(), "utf-8"
    best = charset_normalizer.from_bytes(data).best()
    found = _codec(best.encoding) if best is not None else ""
    return (data, found) if found and found != used else None


def parse_feed(data: bytes, feed_url: str, max_chars: int, content_type: str = "") -> list[SocialPost]:
    """Entries of an RSS or Atom document, read as feedparser reads it (the HTTP charset in
    `content_type` first, relative links against xml:base and `feed_url`; an encoding nothing
    declares is detected, stray bytes in UTF-8 repaired). Raises SourceError for what is not a
    feed."""
    if b"<!DOCTYPE" in data[:2048].upper() and b"<html" in data[:4096].lower():
        raise SourceError("the feed URL answered with an HTML page, not a feed")
    headers = {"content-location": feed_url}
    if content_type:
        headers["content-type"] = content_type
    parsed = _parse(data, headers)
    if again := _reread(data, parsed):
        media = content_type.split(";", 1)[0].strip() or "application/xml"
        parsed = _parse(again[0], {**headers, "content-type": f"{media}; charset={again[1]}"})
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        # The XML parser names no document ("<unknown>:6:0: no element found"): say where instead.
        where = re.sub(r"^<unknown>:(\d+):(\d+): ", r"line \1, column \2: ", str(problem or ""))
        raise SourceError(f"not a readable feed ({where[:200]})" if where else "not an RSS or Atom feed")
    site = urlsplit(feed_url).netloc
    channel = parsed.feed
    feed_author = str(channel.get("author_detail", {}).get("name") or channel.get("author") or "")
    feed_name = _text(channel.get("title_detail"), channel.get("title")) or site
    posts = []
    for entry in parsed.entries:
        title = _text(entry.get("title_detail"), entry.get("title"))
        content = entry.get("content") or []
        raw_body = entry.get("summary") or (content[0].get("value") if content else "")
        body = _text(entry.get("summary_detail") or (content[0] if content else None), raw_body)
        text = f"{title}\n\n{body}".strip() if title and not body.startswith(title) else body or title
        link = _http(str(entry.get("link") or ""))  # feedparser sets it from a permalink <guid> too
        post_id = (
            str(entry.get("id") or "") or link or _content_key(title, link, body, entry.get("published"))
        )
        # The entry's own author (<author>, dc:creator, atom:author) is the post's author, so blocking
        # one author of a shared feed leaves the others; an entry without one is the feed's.
        author = str(entry.get("author_detail", {}).get("name") or entry.get("author") or "").strip()
        tags = [normalise_tag(str(t.get("term") or "")) for t in entry.get("tags", []) or []] + hashtags_in(
            text
        )
        posts.append(
            SocialPost(
                network="rss",
                post_id=post_id[:500],
                author_handle=(f"{site}/{author}" if author else site)[:200],
                author_name=(author or feed_author or feed_name)[:200],
                text=clip(text, max_chars),
                url=link,
                posted_at=_date(entry),
                links=(link,) if link else (),
                hashtags=tuple(dict.fromkeys(t for t in tags if t))[:50],
                media=tuple(_images(entry, link or feed_url)),
            )
        )
    return posts


class RssSource(PollingSource):
    network = "rss"

    def __init__(
        self,
        settings: Settings,
        url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        network: Network | None = None,
    ) -> None:
        self.url = url
        super().__init__(
            urlsplit(url).netloc or url, settings.feeds_rss.poll_seconds, settings.feeds.backoff_max_seconds
        )
        self.max_chars = settings.feeds.max_post_chars
        self.client = OutboundClient(
            "rss",
            allow_private=settings.feeds.allow_private_addresses,
            timeout=settings.feeds.request_timeout_seconds,
            max_bytes=MAX_FEED_BYTES,
            network=network,
            transport=transport,
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def read(self) -> list[SocialPost]:
        """Fetch the feed (size-capped, timed out) and parse every entry."""
        self.status.requests += 1
        # Errors name the feed's URL: the panel's name for a source is its host, which may serve several.
        try:
            response = await self.client.get(self.url)
        except OutboundError as exc:
            raise SourceError(f"{self.url}: {exc}") from None
        if response.status_code != 200:
            raise SourceError(f"{self.url} answered {response.status_code}")
        # The document's base: where it was read from (after redirects), or its Content-Location
        # (as feedparser takes it).
        base = urljoin(str(response.url), response.headers.get("content-location", ""))
        content_type = response.headers.get("content-type", "")
        # feedparser is pure Python: a large feed is parsed off the event loop. It gets bytes only,
        # never a URL it could fetch by itself (past the outbound rules).
        try:
            return await asyncio.to_thread(parse_feed, response.content, base, self.max_chars, content_type)
        except SourceError as exc:
            raise SourceError(f"{self.url}: {exc}") from None

    async def poll_once(self, feed: Feed, targets: list[EventTarget]) -> None:
        posts = await self.read()
        wanted = wanted_of(targets)
        matching = [p for p in posts if wanted.matches("rss", p.hashtags, p.text)]
        if matching:
            result = await feed.ingest("rss", matching)
            self.status.posts += result.new


def build(settings: Settings) -> list[RssSource]:
    return [RssSource(settings, url) for url in settings.feeds_rss.urls]

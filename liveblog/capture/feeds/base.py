"""What every social source shares: the small interface a network module implements, its status
for the organiser's panel, back-off with jitter, and the text helpers that turn network markup
into plain text.

A source is one object with `async run(feed)` (loops until cancelled, collecting posts and
handing them to `feed.ingest`) and `async close()`. Polling sources subclass `PollingSource`
and write only `poll_once`; a streaming source (Jetstream) writes its own `run`.
"""

from __future__ import annotations

import asyncio
import html
import logging
import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, Protocol

from liveblog.capture import hashtags
from liveblog.models import SocialPost

log = logging.getLogger(__name__)


# -- what sources are told to collect ----------------------------------------------------------


@dataclass(frozen=True)
class SessionTarget:
    session_id: str
    own_tags: frozenset[str]  # hashtags of this session beyond the event's (lower case, no '#')
    live: bool
    starts_at: datetime  # aware
    live_since: datetime | None = None  # aware: when it was seen going live (live sessions only)


@dataclass(frozen=True)
class EndedSession:
    """A session of a collecting event that this process saw live and that has ended since: a post
    made between those moments and collected late (a slow poll) still goes to it."""

    session_id: str
    live_since: datetime  # aware, as SessionTarget.live_since
    ended_at: datetime  # aware


@dataclass(frozen=True)
class EventTarget:
    """An event collecting now: from feeds.lead_minutes before its first session until
    feeds.trail_minutes after its last. `sessions` are those collecting their own tags now (live,
    or within the lead time before their start); in a break there are none."""

    event_id: str
    tags: frozenset[str]  # the event's hashtags (lower case, no '#')
    terms: tuple[str, ...]  # the event's search terms (words or phrases that are not hashtags)
    sessions: tuple[SessionTarget, ...]
    window_start: datetime  # aware: the earliest collecting session's start minus the lead time
    ended: tuple[EndedSession, ...] = ()  # for routing only: sources collect nothing for them

    @property
    def all_tags(self) -> frozenset[str]:
        out = set(self.tags)
        for s in self.sessions:
            out |= s.own_tags
        return frozenset(out)


@dataclass
class IngestResult:
    new: int = 0  # posts stored for the first time
    routed: dict[str, list[str]] = field(default_factory=dict)  # post id -> session ids ('' = event feed)


class Feed(Protocol):
    """What a source may ask of the feed service."""

    async def targets(self) -> list[EventTarget]: ...

    async def ingest(
        self,
        network: str,
        posts: list[SocialPost],
        *,
        event_id: str | None = None,
        billed: int = 0,
        cursor: tuple[str, str] | None = None,
    ) -> IngestResult:
        """Store posts (once each), route and publish them; `cursor` (key, value) is saved in
        the same transaction, so a saved cursor never runs ahead of what is stored."""
        ...

    async def deleted(self, network: str, post_id: str) -> None:
        """The network deleted a post (kept or removed per feeds.keep_deleted)."""
        ...

    async def update_author(
        self, network: str, old_handles: list[str], handle: str, name: str, avatar_url: str = ""
    ) -> int:
        """An author's handle and name (and picture) became known (Bluesky DIDs): rename their
        stored posts and the items in streams; returns how many posts were renamed."""
        ...

    async def authors_by_did(self, network: str) -> list[str]:
        """Authors of stored posts still named by DID (resolve them after a restart)."""
        ...

    async def get_cursor(self, key: str) -> str | None: ...

    async def set_cursor(self, key: str, value: str) -> None: ...

    async def reads_used(self, network: str) -> dict[tuple[str, str], int]: ...

    def changed(self) -> None:
        """A source's status changed: the panel should update."""
        ...

    wake_generation: int  # increases at each request to poll now
    retarget_generation: int  # increases when what is collected may have changed (the programme)

    async def sleep(
        self, seconds: float, since: int | None = None, *, retargeted_since: int | None = None
    ) -> None:
        """Wait, unless the feed service is asked to poll now (tests, a new session going live),
        or was asked since `since` (a wake_generation read before the caller's round began).
        With `retargeted_since` (a retarget_generation), a programme change wakes it too."""
        ...


def split_terms(values: tuple[str, ...] | list[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """An event's or session's hashtags field: '#tag' entries are tags, the rest search terms."""
    tags: set[str] = set()
    terms: list[str] = []
    for raw in values:
        value = raw.strip()
        if not value:
            continue
        if value.startswith("#") and len(value) > 1:
            tags.add(normalise_tag(value))
        else:
            terms.append(value)
    return frozenset(tags), tuple(terms)


def normalise_tag(tag: str) -> str:
    return hashtags.normalise(tag)


@dataclass(frozen=True)
class Wanted:
    """What the collecting events ask of a source that filters the network's posts itself
    (Jetstream, RSS): their hashtags, and their search terms matched as words in the text."""

    tags: frozenset[str]
    terms: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.tags or self.terms)

    def matches(self, network: str, tags: list[str] | tuple[str, ...], text: str) -> bool:
        keys = {hashtags.key_for(network, t) for t in self.tags}
        return bool(keys & {hashtags.key_for(network, t) for t in tags}) or any(
            hashtags.term_in(term, text) for term in self.terms
        )


def wanted_of(targets: list[EventTarget]) -> Wanted:
    return Wanted(
        frozenset().union(*(t.all_tags for t in targets)) if targets else frozenset(),
        tuple(dict.fromkeys(term for t in targets for term in t.terms)),
    )


# -- status --------------------------------------------------------------------------------------


RECENT_ERRORS = 5  # errors kept per source for the panel: enough to see a pattern, short to read


@dataclass
class SourceStatus:
    """One source's state for the organiser's feed panel."""

    network: str
    name: str  # which instance or feed, for sources that run one per place
    state: str = "starting"  # starting | idle | running | waiting | failing | capped | off
    detail: str = ""
    since: str = ""  # ISO time this state began
    until: str = ""  # for waiting: when the rate limit resets
    last_error: str = ""
    last_error_at: str = ""
    posts: int = 0  # posts stored for the first time by this source, since start
    reads: int = 0  # reads billed (networks that bill per read)
    read_cap: int | None = None
    cost_usd: float | None = None
    requests: int = 0
    restarts: int = 0
    # The last few errors, newest last: a source that recovered shows healthy and keeps them here.
    recent_errors: list[dict[str, str]] = field(default_factory=list)

    def set(self, state: str, detail: str = "", *, until: float | None = None) -> None:
        if state != self.state or detail != self.detail:
            self.since = iso_now()
        self.state = state
        self.detail = detail
        self.until = iso(until) if until is not None else ""

    def fail(self, error: str) -> None:
        if self.state != "failing":
            self.since = iso_now()
        self.state = "failing"
        self.detail = error
        self.last_error = error
        self.last_error_at = iso_now()
        self.recent_errors = [*self.recent_errors, {"at": self.last_error_at, "error": error}][
            -RECENT_ERRORS:
        ]

    def to_wire(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "name": self.name,
            "state": self.state,
            "detail": self.detail,
            "since": self.since,
            "until": self.until,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "posts": self.posts,
            "reads": self.reads,
            "read_cap": self.read_cap,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 4),
            "requests": self.requests,
            "restarts": self.restarts,
            "recent_errors": list(self.recent_errors),
        }


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_now() -> str:
    return iso(time.time())


# -- failures and back-off -------------------------------------------------------------------------


class SourceError(Exception):
    """A source could not read this time (bad response, network error): logged and backed off."""


class RateLimited(SourceError):
    """The network said to wait: no request before `reset` (a Unix time)."""

    def __init__(self, reset: float, message: str = "rate limited") -> None:
        super().__init__(message)
        self.reset = reset


class CannotRun(SourceError):
    """The source is not configured to run (no token): shown on the panel, retried rarely."""


class Backoff:
    """Exponential back-off with full jitter (AWS's 'full jitter'): spreads retries out so many
    sources (or many instances of us) failing together do not retry together."""

    def __init__(self, base: float = 1.0, cap: float = 300.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 20))
        return random.uniform(ceiling / 2, ceiling)


class Source(Protocol):
    network: str
    status: SourceStatus

    async def run(self, feed: Feed) -> None: ...

    async def close(self) -> None: ...


class PollingSource:
    """A source that asks a network every `interval` seconds. Subclasses write `poll_once`,
    which raises RateLimited or SourceError (or anything else) on trouble; this loop turns
    those into waits, back-off and panel states, and never lets one failure stop collection."""

    network = "?"

    def __init__(self, name: str, interval: float, backoff_cap: float) -> None:
        self.status = SourceStatus(network=self.network, name=name)
        self.interval = interval
        self.backoff = Backoff(base=min(interval, 2.0), cap=backoff_cap)

    async def poll_once(self, feed: Feed, targets: list[EventTarget]) -> None:
        raise NotImplementedError

    def unavailable(self) -> str | None:
        """Why this source cannot run at all (no credentials), or None: shown as `off`."""
        return None

    async def close(self) -> None:
        return None

    async def run(self, feed: Feed) -> None:
        while True:
            delay = self.interval
            generation = feed.wake_generation
            try:
                reason = self.unavailable()
                if reason:
                    raise CannotRun(reason)
                targets = await feed.targets()
                if not targets:
                    self.status.set("idle", "no session is collecting now")
                else:
                    if self.status.state in ("starting", "idle", "failing", "waiting"):
                        self.status.set("running")
                    await self.poll_once(feed, targets)
                    self.backoff.reset()
            except asyncio.CancelledError:
                raise
            except RateLimited as exc:
                self.status.set("waiting", "rate limited by the network", until=exc.reset)
                delay = max(0.0, exc.reset - time.time()) + random.uniform(0.0, 0.25)
                log.info("%s %s: rate limited; waiting %.1fs", self.network, self.status.name, delay)
            except CannotRun as exc:
                self.status.set("off", str(exc))
                delay = max(self.interval, 60.0)
            except Exception as exc:  # a bad response of any shape: log, back off, carry on
                message = describe(exc)
                self.status.fail(message)
                delay = self.backoff.next_delay()
                log.warning(
                    "%s %s failed (%s); retrying in %.1fs", self.network, self.status.name, message, delay
                )
            feed.changed()
            if self.status.state == "waiting":
                # Never ask before the reset, even if woken: a woken sleep returns early.
                deadline = time.monotonic() + delay
                while (left := deadline - time.monotonic()) > 0:
                    await asyncio.sleep(left)
            else:
                await feed.sleep(delay, since=generation)


def describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


# -- text --------------------------------------------------------------------------------------------


def _spelled_out(shown: str, href: str) -> str | None:
    """The address to write for a link whose text is that address shortened or without its scheme
    (a remote server's "bsky.app/profile/h4lc...", "example.org/a"), which would be dead text once
    the markup is gone; None to keep the text (a name, a mention, a hashtag, the address itself)."""
    if not href.startswith(("https://", "http://")):
        return None
    text = shown.strip()
    bare = href.split("://", 1)[1]
    for ellipsis in ("...", "…"):
        if text.endswith(ellipsis) and len(text) > len(ellipsis) + 3:
            stem = text[: -len(ellipsis)]
            return href if href.startswith(stem) or bare.startswith(stem) else None
    return href if text and text in (bare, bare.rstrip("/")) else None


class _TextOf(HTMLParser):
    """HTML (Mastodon's content, RSS descriptions) to plain text: tags dropped, paragraphs and
    line breaks kept as newlines, script and style contents dropped entirely, and so are elements
    of a class in `hide` (with what they hold). A link whose text is its address shortened is
    written as the address."""

    def __init__(self, hide: frozenset[str] = frozenset()) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._hide = hide
        self._hiding: tuple[str, int] | None = None  # the hidden element's tag, and its depth
        self._link: tuple[str, int] | None = None  # the open <a>'s href, and where its text starts

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._hiding is not None:
            if tag == self._hiding[0]:
                self._hiding = (tag, self._hiding[1] + 1)
            return
        if self._hide and self._hide & set((dict(attrs).get("class") or "").split()):
            self._hiding = (tag, 1)
        elif tag in ("script", "style"):
            self._skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in ("p", "div", "li", "blockquote") and self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n\n")
        elif tag == "a":
            self._link = (dict(attrs).get("href") or "", len(self.parts))

    def handle_endtag(self, tag: str) -> None:
        if self._hiding is not None:
            if tag == self._hiding[0]:
                depth = self._hiding[1] - 1
                self._hiding = (tag, depth) if depth else None
            return
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag == "a" and self._link is not None:
            href, start = self._link
            self._link = None
            if (address := _spelled_out("".join(self.parts[start:]), href)) is not None:
                self.parts[start:] = [address]

    def handle_data(self, data: str) -> None:
        if not self._skip and self._hiding is None:
            self.parts.append(data)


def plain_text(markup: str, hide: frozenset[str] = frozenset()) -> str:
    """`markup` as plain text; elements of a class in `hide` are left out."""
    parser = _TextOf(hide)
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # a broken document still gives what was read so far
        pass
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def hashtags_in(text: str) -> list[str]:
    return hashtags.hashtags_in(text)


def obj(value: Any) -> dict[str, Any]:
    """A field that should be a JSON object; {} when it is anything else."""
    return value if isinstance(value, dict) else {}


def text_value(value: Any, default: str = "") -> str:
    """A field that should be a string, from JSON that may have anything (or nothing) there."""
    return value if isinstance(value, str) else default


def utc_iso(value: Any) -> str:
    """A network's timestamp in our stored format (UTC, milliseconds, Z); now when unreadable."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def unescape(text: str) -> str:
    return html.unescape(text)

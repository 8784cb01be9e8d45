"""The archive service: turning ended sessions into knowledge pages, and reading them back.

A session is archived once (an `archives` row, with a summary seeded from its key points and
its hashtags as tags) by the background job (`run`, supervised): when it finds the session
ended (or, with `archive.end_rule = "scheduled"`, overdue: then it ends it first), or at once
when a reader asks for a page that is due. Reading never writes (docs/archive.md): a page that
has ended but is not archived yet is read as archiving will make it, and the job is asked to
make it so; cards a reader's request rendered are handed to the job to keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from liveblog.archive.ledger import COUNTED, public_reasons, public_summary
from liveblog.archive.tags import normalise_tag, parse_tags, search_phrases, search_terms
from liveblog.errors import BadRequest, NotFound
from liveblog.models import (
    ArchiveRecord,
    CardSection,
    Comment,
    Event,
    Item,
    ItemCard,
    ItemVersion,
    LaterAnswer,
    RenderedCard,
    SearchDocument,
    SearchQuery,
    SearchResult,
    Session,
    utcnow,
)
from liveblog.settings import ArchiveSettings
from liveblog.storage import Store, Tx, Unit
from liveblog.text import plural, render_markdown, word_count, xml_chars

log = logging.getLogger(__name__)

# Longest summary, in characters: a page of text, not a second set of notes.
SUMMARY_CHARS = 20_000
# Rendered pages kept in memory (by session, with the version they were rendered at).
PAGE_CACHE_SIZE = 256
# How long a cached page is served without asking the database for its version. This process's
# own commits invalidate at once (Services wires the store's on_commit to invalidate()); the
# delay only bounds how stale a page can be after a write by *another* process (scale-out).
CACHE_TRUST_SECONDS = 1.0
# A page's related sessions (every session sharing one of its tags, counted and sorted: ~8 ms
# over 10,000 archived sessions, most of an uncached page's read) are kept this long per page;
# this process's tag changes and newly archived sessions forget them all at once. What another
# process changes shows here within it: "related" may be a minute late, the page never is.
RELATED_SECONDS = 60.0
RELATED_KEPT = 4096
# Pages whose archiving or cards readers handed to the background job, at most (each entry holds
# one page's rendered cards until written, a few MB for the biggest): past it, what a reader
# rendered is not kept, and the next view renders it again.
KEEP_QUEUED = 256
PUBLIC_QUESTION_STATES = ("visible", "answered")
HIDDEN_SOCIAL_STATES = ("pending", "rejected", "hidden")
SEARCH_KINDS = ("note", "social", "poll", "question", "answer", "session", "summary", "comment")


def first_summary(key_points: list[Item]) -> str:
    """The summary a page starts from: its key points, one bullet each (first line of each)."""
    lines = []
    for item in key_points:
        text = " ".join(item.body.strip().splitlines()[:1]).strip()
        if text:
            lines.append(f"- {text}")
    return "\n".join(lines)


@dataclass
class PollResult:
    item: Item
    rows: list[tuple[str, int, float]]  # (label, votes, share 0..1)
    voters: int
    average: float | None
    discounted: int = 0  # flagged votes left out of the result by the organisers

    @property
    def voter_text(self) -> str:
        """ "312 voters · 14 discounted": who counted, and the flagged votes left out."""
        return plural(self.voters, "voter") + (f" · {self.discounted} discounted" if self.discounted else "")


@dataclass
class QuestionEntry:
    item: Item
    votes: int
    answered: bool
    answer: Item | None
    later: LaterAnswer | None = None  # answered after the talk by a speaker (archive/answers.py)


class CardSlot(NamedTuple):
    """A note or post on a knowledge page: its stored card (`html`), or the item to render
    the card from (`item`, when no current card is kept; None in a view until `Archive.fill`
    reads it). `words`: words in its text (a post's to render: 0 until read). `version`: the
    item's, as the page was read."""

    item_id: int
    html: str | None
    item: Item | None
    words: int
    version: int


@dataclass
class KnowledgePage:
    """A knowledge page, the one read model of every output (the server's page, the static site,
    the Markdown and JSON exports, the proceedings). Its notes and posts are card slots: read in
    full (`Archive.knowledge`: every slot carries its item, `history` every edited one), or as
    the cards kept under a key (`Archive.knowledge_view`: a slot carries its kept card where
    current, else its item once `Archive.fill` read it for rendering, and `history` only those;
    when the page's assembled cards are current, `section` is all there is)."""

    session: Session
    event: Event
    record: ArchiveRecord
    card_key: str
    section: CardSection | None
    notes: list[CardSlot]
    key_points: list[Item]
    posts: list[CardSlot]
    polls: list[PollResult]
    questions: list[QuestionEntry]
    tags: list[str]
    organiser_tags: list[str]
    related: list[tuple[Session, int]]
    history: dict[int, list[ItemVersion]]
    version: str
    moderation: str = ""  # the ledger's public counts (archive/ledger.py), "" for none
    moderation_reasons: str = ""  # and the reasons given, when the event shows them
    # Its notes' likes and boosts on the fediverse: {item id: {"Like": n, "Announce": m}}.
    reactions: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def note_count(self) -> int:
        return self.section.notes if self.section is not None else len(self.notes)

    @property
    def post_count(self) -> int:
        return self.section.posts if self.section is not None else len(self.posts)

    @property
    def word_count(self) -> int:
        return self.section.words if self.section is not None else sum(slot.words for slot in self.notes)

    @property
    def to_render(self) -> int:
        """Cards not kept, to be rendered for this page."""
        return sum(1 for slot in self.notes + self.posts if slot.html is None)

    @property
    def note_items(self) -> list[Item]:
        """The notes as items (a page read in full, `Archive.knowledge`)."""
        return [slot.item for slot in self.notes if slot.item is not None]

    @property
    def post_items(self) -> list[Item]:
        """The posts as items (a page read in full, `Archive.knowledge`)."""
        return [slot.item for slot in self.posts if slot.item is not None]


def programme_tags(session: Session) -> list[str]:
    """The tags a session brings from the programme: its hashtags and its own tags (an imported
    schedule's track), normalised. Kept under the source 'hashtag': derived, not typed by an organiser."""
    return [t for t in map(normalise_tag, (*session.hashtags, *session.tags)) if t]


@dataclass
class TagPage:
    tag: str
    sessions: list[Session]
    events: dict[str, Event]
    summaries: dict[str, str] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class EventArchive:
    event: Event
    sessions: list[Session]
    records: dict[str, ArchiveRecord]
    counts: dict[str, dict[str, int]]
    top_tags: list[tuple[str, int]]
    activity: list[tuple[str, int]]
    turnout: list[tuple[int, str, str, int]]
    tags: dict[str, list[str]] = field(default_factory=dict)
    # The event's own feed ("Around the event"): its public posts, oldest first.
    event_posts: list[Item] = field(default_factory=list)


def poll_result(item: Item) -> PollResult:
    data = item.data
    tally: dict[str, int] = data.get("tally") or {}
    voters = int(data.get("voters") or 0)
    if data.get("poll_kind") == "text":
        rows = [(word, int(n), (int(n) / voters if voters else 0.0)) for word, n in tally.items()]
    else:
        rows = [
            (o["label"], int(tally.get(o["id"], 0)), (int(tally.get(o["id"], 0)) / voters if voters else 0.0))
            for o in data.get("options", [])
        ]
    return PollResult(item, rows, voters, data.get("average"), int(data.get("discounted") or 0))


# Renders and keeps one session's knowledge-page cards (Archive.warm_cards_with).
CardWarmer = Callable[[str], Awaitable[None]]


class Archive:
    def __init__(self, db: Store, settings: ArchiveSettings) -> None:
        self.db = db
        self.settings = settings
        self.page_cache: OrderedDict[str, tuple[str, Any, float]] = OrderedDict()
        self._related: dict[str, tuple[float, list[tuple[Session, int]]]] = {}
        # The background job's work that readers asked for (reading never writes): pages read
        # before they were archived or with their programme tags changed, and cards a request
        # rendered, to keep. In memory only, bounded (KEEP_QUEUED): what is dropped is done again
        # by a later view or by the job's own rounds.
        self._due: set[str] = set()
        self._to_keep: dict[str, tuple[str, list[RenderedCard], CardSection | None]] = {}
        self._wake = asyncio.Event()
        self._settling = asyncio.Lock()
        self._card_warmer: CardWarmer | None = None  # warm_cards_with
        # Knowledge views being read, by session and card key: a view asked for meanwhile waits
        # for the same read (knowledge_view). A commit that changes a session, or keeps its
        # cards, forgets its reads under way (_forget_reads): a view asked for after it reads.
        self._reading: dict[tuple[str, Callable[[Session], str], bool], asyncio.Future[KnowledgePage]] = {}
        self._reads_of: dict[str, set[asyncio.Future[KnowledgePage]]] = {}  # every one, by session

    # -- the background job (run under the services' supervisor) -----------------------------

    async def run(self) -> None:
        """Archive what is due every `check_seconds`, and at once what readers asked for; keep
        the cards their pages rendered. A failure propagates to the supervisor, which logs it
        and restarts this loop with back-off (its state is on /healthz)."""
        next_check = 0.0
        while True:
            self._wake.clear()
            if time.monotonic() >= next_check:
                await self.archive_due()
                next_check = time.monotonic() + self.settings.check_seconds
            await self.settle()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_check - time.monotonic())):
                    await self._wake.wait()

    def _ask(self, session_id: str) -> None:
        """A reader found this page behind its session (not archived yet, or its programme tags
        changed): the job makes it so now. Never waits, never writes."""
        if len(self._due) < KEEP_QUEUED:
            self._due.add(session_id)
        self._wake.set()

    async def settle(self) -> None:
        """Do what readers asked for: archive the pages due, sync their tags, keep the cards
        handed over. The job calls it; so do `cards_kept()` and closing."""
        async with self._settling:
            while self._due or self._to_keep:
                if self._due:
                    await self._bring_up_to_date(self._due.pop())
                else:
                    sid, (card_key, cards, section) = self._to_keep.popitem()
                    await self.keep_cards(sid, card_key, cards, section)

    async def _bring_up_to_date(self, session_id: str) -> None:
        """Archive a page read before it was (and render its cards ahead, unless its reader's
        are waiting to be kept), or store its tags."""
        try:
            archived = await self.archive_session(session_id)
        except NotFound:  # deleted since it was read: nothing to archive
            return
        if archived:
            if session_id not in self._to_keep:
                await self._warm(session_id)
        elif await self.db.read(lambda r: _tags_stale(r, session_id), pool="pages"):
            await self._sync_hashtags(session_id)

    def local_now(self) -> str:
        """The venue's wall-clock time now, in the programme's format (YYYY-MM-DDTHH:MM)."""
        return datetime.now(ZoneInfo(self.settings.timezone)).strftime("%Y-%m-%dT%H:%M")

    async def archive_due(self, local_now: str | None = None) -> list[str]:
        """End overdue sessions (with end_rule "scheduled"), archive every ended session not yet
        archived, and re-derive tags of archived sessions edited since. Returns the archived ids."""
        if self.settings.end_rule == "scheduled":
            now = local_now or self.local_now()
            cutoff = (datetime.fromisoformat(now) - timedelta(minutes=self.settings.grace_minutes)).strftime(
                "%Y-%m-%dT%H:%M"
            )
            for sid in await self.db.read(lambda r: r.overdue_sessions(cutoff), pool="pages"):
                await self._end(sid)
        done = []
        for sid in await self.db.read(lambda r: r.unarchived_ended_sessions(), pool="pages"):
            if await self.archive_session(sid):
                done.append(sid)
        for sid in done:
            await self._warm(sid)
        for sid in await self.db.read(lambda r: r.stale_tag_sessions(), pool="pages"):
            await self._sync_hashtags(sid)
        return done

    def warm_cards_with(self, warmer: CardWarmer) -> None:
        """Register, once, what renders and keeps a session's page cards: the web app's (it has
        the templates; archive/ never imports web/), registered by create_app. The job calls it
        for each session it archives, so the first reader of a new knowledge page reads kept
        cards instead of rendering them. Services with no web app (the CLI's commands) register
        none: the first view renders the cards. An app built again over the same Services (a
        server restarted in one process, as the tests do) replaces the registration: the last
        app built is the one serving."""
        self._card_warmer = warmer

    async def warm_cards(self, session_id: str) -> None:
        """Render and keep a session's page cards now, with the registered warmer (if any).

        After the session's views being read, if any: a reader who came first (the first view
        after a start, often while its session was being archived, so its read is not one the
        warm may share) gets that read alone, not at the same time as the warm's own."""
        if self._card_warmer is None:
            return
        under_way = self._reads_of.get(session_id)
        if under_way:
            await asyncio.wait(list(under_way))  # each read has the store's read timeout
        await self._card_warmer(session_id)

    async def _warm(self, session_id: str) -> None:
        try:
            await self.warm_cards(session_id)
        except Exception:  # noqa: BLE001 - a head start only: the first view renders what is missing
            log.exception("could not render the cards of %s ahead of its first view", session_id)

    async def _end(self, session_id: str) -> None:
        async def op(tx: Tx) -> None:
            session = await tx.get_session(session_id)
            if session is not None and session.state != "ended":
                await tx.update_session(session_id, {"state": "ended", "ended_at": utcnow()})

        await self.db.write(op)

    async def archive_session(self, session_id: str) -> bool:
        """Make an ended session's knowledge page (once): its summary starts from the key points."""

        async def op(tx: Tx) -> bool:
            session = await tx.get_session(session_id)
            if session is None:
                raise NotFound("There is no such session.", code="unknown_session")
            if session.state != "ended":
                return False
            if await tx.get_archive(session_id) is not None:
                return False
            first = await _first_record(tx, session)
            created = await tx.insert_archive(session_id, first.summary, first.summary_html)
            await tx.set_session_tags(session_id, "hashtag", programme_tags(session))
            return created

        created = await self.db.write(op)
        if created:
            self._related.clear()  # a new page may be related to any other
            self.invalidate({session_id})  # its page was read as it would be: now it is
        return created

    async def _sync_hashtags(self, session_id: str) -> None:
        async def op(tx: Tx) -> None:
            session = await tx.get_session(session_id)
            if session is not None:
                await tx.set_session_tags(session_id, "hashtag", programme_tags(session))

        await self.db.write(op)
        self._related.clear()
        self.invalidate({session_id})

    # -- reading (never writes) --------------------------------------------------------------

    async def version(self, session_id: str) -> str | None:
        """What a knowledge page's ETag is made of; None when the session has not ended."""

        async def read(r: Unit) -> str | None:
            session = await r.get_session(session_id)
            if session is None or session.state != "ended":
                return None
            record = await r.get_archive(session_id)
            return _version(session, record.updated_at if record is not None else "")

        return await self.db.read(read, pool="pages")

    async def knowledge(self, session_id: str) -> KnowledgePage:
        """Everything a knowledge page shows, read in full in one snapshot (every note and post
        as its item): for the exports, the static site and the proceedings."""
        return await self._page(
            session_id, lambda r: _read_page(r, session_id, self.settings.related_sessions, None, None)
        )

    async def knowledge_view(
        self, session_id: str, card_key: Callable[[Session], str], *, render_all: bool = False
    ) -> KnowledgePage:
        """What the knowledge page's HTML needs, in one snapshot: its notes and posts as the
        cards kept under `card_key(session)`, where current, and where not, slots to render
        whose items `fill` reads (a long page renders only its own page's cards); with
        `render_all`, those items are read here (the archive's warm renders every card).
        What the page counts and leaves out (its notes' words, hidden posts) is read in SQL.

        Asked for while the same view is being read, with nothing committed to the session
        since, it is that read's: the first view after a start came while the archive's check
        read the session it had just archived (every item in full: ~150 ms for 7,000 alone),
        and reading it all again at the same time made both take twice as long. Shared, not
        kept: the next view asked for after the read is done reads again."""
        key = (session_id, card_key, render_all)
        reading = self._reading.get(key)
        if reading is None and not render_all:  # the warm's read holds every item this one needs
            reading = self._reading.get((session_id, card_key, True))
        if reading is None:
            reading = asyncio.ensure_future(self._read_view(session_id, card_key, render_all))
            self._reading[key] = reading
            self._reads_of.setdefault(session_id, set()).add(reading)
            reading.add_done_callback(functools.partial(self._read_done, key))
        # Shielded: a reader that goes away (a closed connection) leaves the read to the others.
        return await asyncio.shield(reading)

    def _read_done(
        self, key: tuple[str, Callable[[Session], str], bool], reading: asyncio.Future[KnowledgePage]
    ) -> None:
        if self._reading.get(key) is reading:
            del self._reading[key]
        reads = self._reads_of.get(key[0], set())
        reads.discard(reading)
        if not reads:
            self._reads_of.pop(key[0], None)
        if not reading.cancelled():
            reading.exception()  # retrieved: every reader may have gone (each raises its own)

    def _forget_reads(self, session_ids: set[str]) -> None:
        """Views of these sessions asked for from now on read again (a commit changed them)."""
        if self._reading:
            for key in [k for k in self._reading if k[0] in session_ids]:
                del self._reading[key]

    async def _read_view(
        self, session_id: str, card_key: Callable[[Session], str], render_all: bool
    ) -> KnowledgePage:
        kept = self._related.get(session_id)
        related = kept[1] if kept is not None and time.monotonic() - kept[0] < RELATED_SECONDS else None
        view = await self._page(
            session_id,
            lambda r: _read_page(
                r, session_id, self.settings.related_sessions, card_key, related, render_all=render_all
            ),
        )
        if related is None:
            if len(self._related) >= RELATED_KEPT:
                self._related.clear()
            self._related[session_id] = (time.monotonic(), view.related)
        return view

    async def fill(self, view: KnowledgePage, slots: list[CardSlot]) -> KnowledgePage:
        """The view with the items (and earlier versions) of these slots read, for rendering
        their cards. When one of them changed since the view was read (edited, deleted, hidden),
        the page is read again in one snapshot with every item to render: nothing is shown that
        the view's moment did not show, and no text a moderator removed."""
        wanted = [slot.item_id for slot in slots if slot.html is None and slot.item is None]
        if not wanted:
            return view
        session_id = view.session.id
        ids = set(wanted)

        async def read(r: Unit) -> tuple[dict[int, Item], dict[int, list[ItemVersion]]]:
            items = await r.get_items(wanted)
            history = {k: v for k, v in (await r.item_history(session_id)).items() if k in ids}
            return items, history

        items, history = await self.db.read(read, pool="pages")
        listed = {slot.item_id: slot.version for slot in slots}
        if any(
            (item := items.get(i)) is None
            or item.version != listed[i]
            or item.deleted
            or (item.kind == "social" and item.data.get("state") in HIDDEN_SOCIAL_STATES)
            for i in wanted
        ):
            return await self._page(
                session_id,
                lambda r: _read_page(
                    r,
                    session_id,
                    self.settings.related_sessions,
                    lambda _: view.card_key,
                    view.related,
                    render_all=True,
                ),
            )

        def filled(slot: CardSlot) -> CardSlot:
            item = items.get(slot.item_id) if slot.item_id in ids else None
            return slot if item is None else slot._replace(item=item, words=word_count(item.body))

        return dataclasses.replace(
            view,
            notes=[filled(slot) for slot in view.notes],
            posts=[filled(slot) for slot in view.posts],
            history={**view.history, **history},
        )

    async def _page(
        self, session_id: str, read: Callable[[Unit], Awaitable[KnowledgePage | None]]
    ) -> KnowledgePage:
        page = await self.db.read(read, pool="pages")
        if page is None:
            raise NotFound("This session has no knowledge page yet: it has not ended.", code="not_archived")
        if page.record.tags_synced_at < page.session.updated_at:  # not archived yet, or tags behind
            self._ask(session_id)
        return page

    async def keep_cards(
        self, session_id: str, card_key: str, cards: list[RenderedCard], section: CardSection | None
    ) -> None:
        """Keep cards rendered and assembled for a page, so the next render reads them. Best
        effort: a page is right without them (made again), so a failure is only logged."""
        if not cards and section is None:
            return

        async def op(tx: Tx) -> None:
            if cards:
                await tx.put_item_cards(card_key, cards)
            if section is not None:
                await tx.put_card_section(section)

        try:
            await self.db.write(op)
        except Exception:  # noqa: BLE001 - a cache write: logged, never the page's failure
            log.exception("could not keep %d knowledge-page cards of %s", len(cards), session_id)
        self._forget_reads({session_id})  # a view asked for now reads the cards kept

    def keep_cards_later(
        self, session_id: str, card_key: str, cards: list[RenderedCard], section: CardSection | None
    ) -> None:
        """Hand cards a request rendered to the background job, which keeps them (a GET never
        writes). The last handed over for a page wins: they are the same cards, or newer."""
        if not cards and section is None:
            return
        if session_id in self._to_keep or len(self._to_keep) < KEEP_QUEUED:
            self._to_keep[session_id] = (card_key, cards, section)
        self._wake.set()

    async def cards_kept(self) -> None:
        """Do now what was handed to the job (tests; the benchmark; closing)."""
        await self.settle()

    def health(self) -> dict[str, Any]:
        """For /healthz: the work readers handed to the job, not done yet."""
        return {"due": len(self._due), "cards_to_keep": len(self._to_keep)}

    async def is_archived(self, session_id: str) -> bool:
        return await self.db.read(lambda r: r.get_archive(session_id), pool="pages") is not None

    # -- editing -----------------------------------------------------------------------------

    async def set_summary(self, session_id: str, text: str, by: str) -> None:
        text = xml_chars(text).replace("\r\n", "\n").strip()
        if len(text) > SUMMARY_CHARS:
            raise BadRequest(
                f"a summary is at most {SUMMARY_CHARS} characters", code="too_long", field="summary"
            )

        async def op(tx: Tx) -> None:
            if await tx.get_archive(session_id) is None:
                raise NotFound(
                    "This session has no knowledge page yet: it has not ended.", code="not_archived"
                )
            await tx.set_summary(session_id, text, render_markdown(text) if text else "", by)

        await self.archive_session(session_id)  # a page read before the job made it: made now
        await self.db.write(op)
        self.invalidate({session_id})

    async def set_organiser_tags(self, session_id: str, text: str) -> list[str]:
        tags = parse_tags(text)
        if len(tags) > 30:
            raise BadRequest("a session has at most 30 organiser tags", code="too_long", field="tags")

        async def op(tx: Tx) -> None:
            if await tx.get_archive(session_id) is None:
                raise NotFound(
                    "This session has no knowledge page yet: it has not ended.", code="not_archived"
                )
            await tx.set_session_tags(session_id, "organiser", tags)

        await self.archive_session(session_id)  # a page read before the job made it: made now
        await self.db.write(op)
        self._related.clear()  # tags decide which pages are related
        self.invalidate({session_id})
        return tags

    # -- tags, search, the event archive -----------------------------------------------------

    async def tag_page(self, raw_tag: str) -> TagPage:
        tag = normalise_tag(raw_tag)
        if not tag:
            raise NotFound("That is not a tag.")

        async def read(r: Unit) -> TagPage:
            sessions = await r.sessions_with_tag(tag)
            events: dict[str, Event] = {}
            summaries: dict[str, str] = {}
            tags: dict[str, list[str]] = {}
            for s in sessions:
                if s.event_id not in events:
                    event = await r.get_event(s.event_id)
                    assert event is not None
                    events[s.event_id] = event
                record = await r.get_archive(s.id)
                summaries[s.id] = record.summary_html if record else ""
                tags[s.id] = sorted({t for t, _ in await r.session_tags(s.id)})
            return TagPage(tag, sessions, events, summaries, tags)

        return await self.db.read(read, pool="pages")

    async def top_tags(self, limit: int = 30) -> list[tuple[str, int]]:
        return await self.db.read(lambda r: r.top_tags(None, limit), pool="pages")

    def query(
        self,
        text: str,
        *,
        event_id: str | None = None,
        tag: str | None = None,
        kind: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        page: int = 1,
    ) -> SearchQuery:
        """A search query from what a person typed and picked (bad filters are 400s)."""
        for name, value in (("from", date_from), ("to", date_to)):
            if value:
                try:
                    datetime.strptime(value, "%Y-%m-%d")
                except ValueError:
                    raise BadRequest(
                        f"{name} must be a date like 2026-05-14", code="invalid_field", field=name
                    ) from None
        if kind and kind not in SEARCH_KINDS:
            raise BadRequest(
                f"kind must be one of {', '.join(SEARCH_KINDS)}", code="invalid_field", field="kind"
            )
        if page < 1 or page > 1000:
            raise BadRequest("page must be 1 to 1000", code="invalid_field", field="page")
        size = self.settings.search_page_size
        return SearchQuery(
            terms=search_terms(text),
            phrases=search_phrases(text),
            event_id=event_id or None,
            tag=normalise_tag(tag) if tag else None,
            kinds=(kind,) if kind else (),
            date_from=date_from or None,
            date_to=date_to or None,
            offset=(page - 1) * size,
            limit=size,
            window=self.settings.search_window,
        )

    async def search(self, query: SearchQuery) -> SearchResult:
        return await self.db.read(lambda r: r.search(query), pool="pages")

    async def search_documents(self, event_id: str) -> list[SearchDocument]:
        """What the search index holds for an event (storage: `search_documents`)."""
        return await self.db.read(lambda r: r.search_documents(event_id))

    async def event_archive(self, event_id: str) -> EventArchive:
        """The event's archive, with a page for every session that has ended: one that ended a
        moment ago is read as archiving will make it (and the job asked to), not left out until
        the background check comes by (the event's archive page, the static site)."""

        async def read(r: Unit) -> EventArchive:
            event = await r.get_event(event_id)
            if event is None:
                raise NotFound(f"no event {event_id!r}")
            sessions = await r.list_sessions(event_id)
            records = {}
            tags = {}
            for s in sessions:
                record = await _record_of(r, s)
                if record is not None:
                    records[s.id] = record
                    tags[s.id] = sorted({t for t, _ in await _page_tags(r, s, record)})
            counts = await r.session_counts(event_id)
            for sid, n in (await r.comment_counts(event_id)).items():
                counts.setdefault(sid, {})["comments"] = n
            feed = await r.get_event_feed(event_id)
            event_posts = [
                i
                for i in (await r.list_items(feed.id, kind="social") if feed is not None else [])
                if not i.deleted and i.data.get("state") not in HIDDEN_SOCIAL_STATES
            ]
            return EventArchive(
                event_posts=event_posts,
                event=event,
                sessions=sessions,
                records=records,
                counts=counts,
                top_tags=await r.top_tags(event_id, 12),
                activity=await r.activity(event_id),
                turnout=await r.poll_turnout(event_id),
                tags=tags,
            )

        found = await self.db.read(read, pool="pages")
        for record in found.records.values():
            if not record.archived_at:  # read as it will be: the job makes it so
                self._ask(record.session_id)
        return found

    async def summaries(self, session_ids: list[str]) -> dict[str, str]:
        """Summary HTML of those sessions that are archived."""

        async def read(r: Unit) -> dict[str, str]:
            out = {}
            for sid in session_ids:
                record = await r.get_archive(sid)
                if record is not None:
                    out[sid] = record.summary_html
            return out

        return await self.db.read(read, pool="pages")

    async def recent_comments(self, event_id: str | None, limit: int = 50) -> list[tuple[Comment, Session]]:
        """The newest public comments with their sessions (for the comments feed)."""

        async def read(r: Unit) -> list[tuple[Comment, Session]]:
            out = []
            for c in await r.recent_comments(event_id, limit):
                session = await r.get_session(c.session_id)
                assert session is not None
                out.append((c, session))
            return out

        return await self.db.read(read, pool="pages")

    async def sitemap_entries(self) -> list[tuple[str, str]]:
        """(path, lastmod) of every public page worth indexing: events, their archives, knowledge
        pages and tag pages."""

        async def read(r: Unit) -> list[tuple[str, str]]:
            out: list[tuple[str, str]] = [("/", "")]
            for e in await r.list_events():
                out.append((f"/events/{e.id}", e.updated_at))
                out.append((f"/events/{e.id}/archive", e.updated_at))
                if (feed := await r.get_event_feed(e.id)) is not None:
                    out.append((f"/events/{e.id}/around", feed.updated_at))
                for s in await r.list_sessions(e.id):
                    record = await r.get_archive(s.id)
                    if record is not None:
                        out.append((f"/archive/sessions/{s.id}", max(record.updated_at, s.updated_at)))
                    else:
                        out.append((f"/sessions/{s.id}", s.updated_at))
            for tag, _ in await r.top_tags(None, 10_000):
                out.append((f"/tags/{tag}", ""))
            return out

        return await self.db.read(read, pool="pages")

    async def export(self, event_id: str, session_ids: list[str] | None = None) -> dict[str, Any]:
        """The versioned JSON export (exports.py) of an event or some of its sessions."""
        from liveblog.archive.exports import export_json

        return await export_json(self.db, event_id, session_ids)

    async def replay(self, session_id: str) -> dict[str, Any]:
        return await replay_data(self.db, session_id)

    def invalidate(self, session_ids: set[str]) -> None:
        """Forget cached pages of these sessions (called after every commit that changed them),
        and their reads under way."""
        self._forget_reads(session_ids)
        for sid in session_ids:
            self.page_cache.pop(f"k:{sid}", None)

    def fresh(self, key: str) -> tuple[str, Any] | None:
        """A cached (version, page) checked against the database under CACHE_TRUST_SECONDS ago."""
        hit = self.page_cache.get(key)
        if hit is None or time.monotonic() - hit[2] > CACHE_TRUST_SECONDS:
            return None
        return hit[0], hit[1]

    def holds(self, key: str) -> bool:
        """Whether a page is cached under `key` (at whatever version)."""
        return key in self.page_cache

    def cached(self, key: str, version: str) -> Any | None:
        """The cached page if it is still at `version` (just read from the database)."""
        hit = self.page_cache.get(key)
        if hit is None or hit[0] != version:
            return None
        self.page_cache[key] = (version, hit[1], time.monotonic())
        self.page_cache.move_to_end(key)
        return hit[1]

    def remember(self, key: str, version: str, value: Any) -> None:
        self.page_cache[key] = (version, value, time.monotonic())
        self.page_cache.move_to_end(key)
        while len(self.page_cache) > PAGE_CACHE_SIZE:
            self.page_cache.popitem(last=False)


def _version(session: Session, record_updated_at: str) -> str:
    raw = f"{session.id}:{session.stream_epoch}:{session.last_seq}:{session.updated_at}:{record_updated_at}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


async def _first_record(r: Unit, session: Session) -> ArchiveRecord:
    """The record archiving makes for an ended session: its summary seeded from its key points.
    Not stored: `archived_at` and `updated_at` are empty."""
    # Key points only, by the partial index `items_shown`: every note read in full was ~40 ms of
    # a 2,000-note session's archiving, and of each view read before it (the first after a start).
    key_points = [i for i in await r.list_page_items(session.id) if i.kind == "note"]
    summary = first_summary(key_points)
    return ArchiveRecord(session.id, summary, render_markdown(summary) if summary else "", "", "", "", "")


async def _record_of(r: Unit, session: Session) -> ArchiveRecord | None:
    """A session's archive record; for one that has ended but is not archived yet (the job
    archives it within moments), the record archiving will write, without writing it."""
    record = await r.get_archive(session.id)
    if record is not None or session.state != "ended":
        return record
    return await _first_record(r, session)


async def _page_tags(r: Unit, session: Session, record: ArchiveRecord) -> list[tuple[str, str]]:
    """A page's (tag, source) pairs; when the programme changed since they were derived (or the
    page is not archived yet), its programme tags as they are now, as the job will store them."""
    pairs = await r.session_tags(session.id)
    if record.tags_synced_at < session.updated_at:
        pairs = [p for p in pairs if p[1] != "hashtag"] + [(t, "hashtag") for t in programme_tags(session)]
    return pairs


def _listed(item: Item) -> ItemCard:
    """An item read in full as the list of a page's cards has it (CardOps.list_item_cards)."""
    hidden = item.kind == "social" and item.data.get("state") in HIDDEN_SOCIAL_STATES
    words = word_count(item.body) if item.kind == "note" else None
    return ItemCard(item.id, item.kind, int(item.key_point), None, words, item.version, int(hidden))


async def _tags_stale(r: Unit, session_id: str) -> bool:
    session = await r.get_session(session_id)
    record = await r.get_archive(session_id)
    return session is not None and record is not None and record.tags_synced_at < session.updated_at


async def _read_page(
    r: Unit,
    session_id: str,
    related_limit: int,
    card_key: Callable[[Session], str] | None,
    related: list[tuple[Session, int]] | None,
    *,
    render_all: bool = False,
) -> KnowledgePage | None:
    """The one read of a knowledge page: in full (`card_key` None) or with the cards kept under
    `card_key(session)`, the items of cards to render read only with `render_all` (else by
    `Archive.fill`); None when the session has not ended."""
    session = await r.get_session(session_id)
    if session is None:
        raise NotFound("There is no such session.", code="unknown_session")
    record = await _record_of(r, session)
    if record is None:
        return None
    event = await r.get_event(session.event_id)
    assert event is not None
    key = card_key(session) if card_key is not None else ""
    section = await r.get_card_section(session_id, key) if card_key is not None else None
    full: dict[int, Item]
    if card_key is None:  # every item in full, no card
        items = await r.list_items(session_id)
        listed = [_listed(i) for i in items]
        full = {i.id: i for i in items}
    elif section is not None:
        # The cards, assembled at this very stream position: only key points, polls and
        # questions are read, and no card.
        shown = await r.list_page_items(session_id)
        listed = [_listed(i) for i in shown]
        full = {i.id: i for i in shown}
    else:
        listed = await r.list_item_cards(session_id, key)
        # Content is read only where the page needs it: key points (listed at the top), polls
        # and questions (state decides), and with `render_all` the notes and posts shown whose
        # card is not kept. A note's words and whether a post is hidden come with the list.
        wanted = [
            c.item_id
            for c in listed
            if c.key_point
            or c.kind in ("poll", "question")
            or (render_all and c.html is None and not c.hidden and c.kind in ("note", "social"))
        ]
        full = await r.get_items(wanted) if wanted else {}
    answers = (
        {i.data.get("answer_item_id") for i in full.values() if i.kind == "question"} - {None} - set(full)
    )
    if answers:
        full.update(await r.get_items([int(a) for a in answers if isinstance(a, int)]))
    notes: list[CardSlot] = []
    posts: list[CardSlot] = []
    key_points: list[Item] = []
    polls: list[PollResult] = []
    asked: list[Item] = []
    for c in listed:
        item = full.get(c.item_id)
        if section is not None and c.kind == "note":  # a key point: its card is in the section
            assert item is not None
            key_points.append(item)
        elif c.kind in ("note", "social"):
            if c.hidden:
                continue
            if c.html is not None:
                slot = CardSlot(c.item_id, c.html, None, c.words or 0, c.version)
            elif item is not None:
                slot = CardSlot(c.item_id, None, item, word_count(item.body), c.version)
            else:  # to render: its item is read when its card is (Archive.fill)
                slot = CardSlot(c.item_id, None, None, c.words or 0, c.version)
            if c.kind == "note":
                notes.append(slot)
                if c.key_point:
                    assert item is not None
                    key_points.append(item)
            else:
                posts.append(slot)
        elif c.kind == "poll":
            assert item is not None
            if item.data.get("state") != "draft":
                polls.append(poll_result(item))
        elif c.kind == "question":
            assert item is not None
            if item.data.get("state") in PUBLIC_QUESTION_STATES:
                asked.append(item)
    upvotes = await r.upvote_counts(session_id) if asked else {}
    later = await r.session_answers(session_id) if asked else {}

    def answer(question: Item) -> Item | None:
        found = full.get(question.data.get("answer_item_id") or -1)
        return found if found is not None and found.session_id == session_id and not found.deleted else None

    questions = [
        QuestionEntry(
            item=i,
            votes=upvotes.get(i.id, 0),
            answered=i.data.get("state") == "answered",
            answer=answer(i),
            later=later.get(i.id),
        )
        for i in asked
    ]
    questions.sort(key=lambda q: (-q.votes, q.item.id))
    rendering = {slot.item_id for slot in notes + posts if slot.item is not None}
    history = (
        {k: v for k, v in (await r.item_history(session_id)).items() if k in rendering} if rendering else {}
    )
    pairs = await _page_tags(r, session, record)
    return KnowledgePage(
        session=session,
        event=event,
        record=record,
        card_key=key,
        section=section,
        notes=notes,
        key_points=key_points,
        posts=posts,
        polls=polls,
        questions=questions,
        tags=sorted({t for t, _ in pairs}),
        organiser_tags=[t for t, source in pairs if source == "organiser"],
        related=related if related is not None else await r.related_sessions(session_id, related_limit),
        history=history,
        version=_version(session, record.updated_at),
        moderation=public_summary(await r.moderation_counts(session_id)),
        moderation_reasons=public_reasons(await r.moderation_reasons(session_id, COUNTED))
        if event.public_reasons
        else "",
        reactions=await r.reaction_counts(session_id),
    )


async def replay_data(db: Store, session_id: str) -> dict[str, Any]:
    """A session's replay: its public stream as timed steps (see replay.py)."""
    from liveblog.archive.replay import SPEEDS, duration, schedule

    async def read(r: Unit) -> tuple[Session, Event, list[dict[str, Any]]]:
        session = await r.get_session(session_id)
        if session is None:
            raise NotFound("There is no such session.", code="unknown_session")
        event = await r.get_event(session.event_id)
        assert event is not None
        return session, event, await r.public_changes(session_id)

    session, event, changes = await db.read(read, pool="pages")
    steps = schedule(changes)
    return {
        "session": {"id": session.id, "title": session.title, "event": event.title, "state": session.state},
        "started_at": changes[0]["created_at"] if changes else None,
        "duration_ms": duration(steps),
        "speeds": list(SPEEDS),
        "steps": [s.to_wire() for s in steps],
    }

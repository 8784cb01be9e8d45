"""Plain dataclasses shared by every layer: events, sessions, stream items, invites, accounts.

An Item is anything in a session's stream (a note, a poll, a question, later a social post);
its kind-specific fields live in `data` so new kinds need no new tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

SessionState = Literal["scheduled", "live", "ended"]
SESSION_STATES: tuple[str, ...] = ("scheduled", "live", "ended")
# A session row is a programme session, or an event's own feed ("Around the event", docs/feeds.md):
# a hidden stream per event for social posts that belong to no session. It is never listed,
# never captured into and never archived as a knowledge page; it only carries the stream.
SESSION_KINDS: tuple[str, ...] = ("session", "event_feed")


# The JSON export (docs/archive.md): its format name and schema version. Bump the version on any
# incompatible change; `import` refuses versions it does not know.
EXPORT_FORMAT = "liveblog-archive"
EXPORT_VERSION = 1


def event_feed_id(event_id: str) -> str:
    """The id of an event's own feed stream ('.' never occurs in generated session ids)."""
    return f"{event_id}.around"


ITEM_KINDS: tuple[str, ...] = ("note", "poll", "question", "social")
# Who may take part in a poll or a session's Q&A (docs/protocol-votes.md): anyone with the page;
# people who have the room code shown in the room; or logged-in accounts only.
PARTICIPATION: tuple[str, ...] = ("anyone", "room_code", "accounts")


def utcnow() -> str:
    """Current time as an ISO 8601 UTC string with milliseconds, the one format stored everywhere."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    id: str
    title: str
    starts_on: str
    ends_on: str
    venue: str = ""
    description: str = ""
    hashtags: tuple[str, ...] = ()
    created_at: str = ""
    updated_at: str = ""
    language: str = "en"  # a SEARCH_LANGUAGES code: how the event's archive is stemmed for search
    show_viewers: bool = True  # viewers' pages say how many watch (organisers always see it)
    public_reasons: bool = False  # knowledge pages show the moderation ledger's reasons too

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "starts_on": self.starts_on,
            "ends_on": self.ends_on,
            "venue": self.venue,
            "description": self.description,
            "hashtags": list(self.hashtags),
            "language": self.language,
            "show_viewers": self.show_viewers,
            "public_reasons": self.public_reasons,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Session:
    id: str
    event_id: str
    title: str
    starts_at: str
    ends_at: str
    room: str = ""
    speakers: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    description: str = ""
    state: str = "scheduled"
    question_moderation: bool = False
    questions_audience: str = "anyone"  # who may ask and upvote: one of PARTICIPATION
    stream_epoch: str = ""
    last_seq: int = 0
    ended_at: str | None = None
    created_at: str = ""
    updated_at: str = ""
    kind: str = "session"  # one of SESSION_KINDS
    cancelled: bool = False  # stays in the programme, marked as cancelled
    tags: tuple[str, ...] = ()  # the programme's own tags (an imported schedule's track)
    source_uid: str | None = None  # the imported schedule entry's guid/UID (programme import)
    exported_seq: int | None = None  # last_seq when an organiser last downloaded its export
    recording_url: str = ""  # its recording (YouTube, Vimeo, PeerTube or a video file), if any
    recording_offset: int = 0  # seconds into the recording where the session's scheduled start is

    @property
    def is_live(self) -> bool:
        return self.state == "live"

    @property
    def is_event_feed(self) -> bool:
        return self.kind == "event_feed"

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "title": self.title,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "room": self.room,
            "speakers": list(self.speakers),
            "hashtags": list(self.hashtags),
            "description": self.description,
            "state": self.state,
            "question_moderation": self.question_moderation,
            "questions_audience": self.questions_audience,
            "cancelled": self.cancelled,
            "tags": list(self.tags),
            "recording_url": self.recording_url,
            "recording_offset": self.recording_offset,
            "epoch": self.stream_epoch,
            "seq": self.last_seq,
            "ended_at": self.ended_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Item:
    id: int
    session_id: str
    kind: str
    client_id: str
    author: str
    body: str
    html: str
    key_point: bool
    data: dict[str, Any]
    typed_at: str
    received_at: str
    updated_at: str
    deleted: bool
    version: int
    seq: int
    author_ref: str | None = None  # the writer's invite id (or account ref): who may edit it

    def to_wire(self) -> dict[str, Any]:
        if self.deleted:
            return {
                "id": self.id,
                "kind": self.kind,
                "client_id": self.client_id,
                "deleted": True,
                "version": self.version,
                "seq": self.seq,
            }
        return {
            "id": self.id,
            "kind": self.kind,
            "client_id": self.client_id,
            "author": self.author,
            # Only notes say who wrote them: a question's ref is its asker's participant id,
            # which would link anonymous questions to each other.
            "author_ref": self.author_ref if self.kind == "note" else None,
            "body": self.body,
            "html": self.html,
            "key_point": self.key_point,
            "data": self.data,
            "typed_at": self.typed_at,
            "received_at": self.received_at,
            "updated_at": self.updated_at,
            "deleted": False,
            "version": self.version,
            "seq": self.seq,
        }


@dataclass(frozen=True)
class Change:
    """One entry of a session's stream: the seq-th change, with its wire payload.

    `payload` is the whole message a client receives (type, seq, op and op-specific fields).
    """

    session_id: str
    seq: int
    op: str
    payload: dict[str, Any]


# Moderated-out text never leaves (docs/archive.md, "What is redacted"). When an item or comment
# is removed, every earlier change of it is rewritten, in the same transaction, to one of these
# (its place in the stream and nothing else), and the change that removes it lists their seqs
# in `redacts`, so that every process's hub rewrites the frames it keeps in memory too.
REDACTED_OPS = ("item.redacted", "comment.redacted")


def redaction(seq: int, *, item_id: int | None = None, comment_id: int | None = None) -> dict[str, Any]:
    """What the seq-th change becomes once its item or comment is removed: its place, no content."""
    if comment_id is not None:
        return {"type": "change", "seq": seq, "op": "comment.redacted", "comment_id": comment_id}
    return {"type": "change", "seq": seq, "op": "item.redacted", "item_id": item_id}


def redacted_change(payload: dict[str, Any]) -> dict[str, Any]:
    """`redaction` of a change's payload: an item's (`item`, or a compact change's `item_id`) or
    a comment's. Already redacted: unchanged."""
    if payload["op"] in REDACTED_OPS:
        return payload
    if "comment" in payload:
        return redaction(payload["seq"], comment_id=payload["comment"]["id"])
    return redaction(
        payload["seq"], item_id=payload["item"]["id"] if "item" in payload else payload["item_id"]
    )


@dataclass(frozen=True)
class SpeakerLink:
    """A session's link for its speakers to answer, after the talk, the questions it had no time
    for (archive/answers.py). Made and revoked like an invite; it grants nothing else."""

    id: str
    session_id: str
    name: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


# A fediverse handle organisers choose (docs/federation.md): lower-case letters, digits, hyphens
# and underscores, as a slug; checked on the Fediverse page and in an import.
FEDIVERSE_HANDLE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
ANSWER_CHARS = 10_000  # a few pages: more belongs in a blog post the answer links to
ANSWER_STATES = ("visible", "hidden")


@dataclass(frozen=True)
class LaterAnswer:
    """A question's answer written by a speaker after the talk; `state` visible or hidden."""

    question_id: int
    session_id: str
    author: str
    body: str
    html: str
    state: str
    answered_at: str
    updated_at: str
    link_id: str = ""

    @property
    def public(self) -> bool:
        return self.state == "visible"

    def to_export(self, question_public: bool = True) -> dict[str, Any]:
        """Its row in the JSON export: a hidden answer's text never leaves, nor the answer to a
        question no longer public (hidden, merged, deleted), which leaves as hidden."""
        shown = self.public and question_public
        return {
            "question_id": self.question_id,
            "author": self.author,
            "body": self.body if shown else "",
            "html": self.html if shown else "",
            "state": self.state if shown else "hidden",
            "answered_at": self.answered_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Invite:
    id: str
    event_id: str
    session_id: str | None
    name: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, session: Session) -> bool:
        """Whether this invite may write to (and moderate) `session`. Never an event's own feed:
        nobody writes notes there; its posts are moderated by event-wide moderators."""
        if not self.active or session.event_id != self.event_id or session.is_event_feed:
            return False
        return self.session_id is None or self.session_id == session.id

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "session_id": self.session_id,
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str
    created_at: str = ""


@dataclass(frozen=True)
class Ack:
    """What a note-taker is told once their message is on disk."""

    client_id: str
    item_id: int
    seq: int
    duplicate: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        out = {
            "type": "ack",
            "client_id": self.client_id,
            "item_id": self.item_id,
            "seq": self.seq,
            "duplicate": self.duplicate,
        }
        out.update(self.extra)
        return out


# -- the archive (issue 10): knowledge pages, tags, search -----------------------------------


@dataclass(frozen=True)
class ArchiveRecord:
    """A session whose stream became a knowledge page, with its summary."""

    session_id: str
    summary: str
    summary_html: str
    summary_by: str
    archived_at: str
    updated_at: str
    tags_synced_at: str


@dataclass(frozen=True)
class ItemVersion:
    """An earlier version of an edited note or post (what it said until `replaced_at`)."""

    item_id: int
    version: int
    body: str
    html: str
    written_at: str
    replaced_at: str


# The languages an event's archive can be searched in: words are stemmed with Snowball's stemmer
# for it ("policies" finds "policy"); "none" folds case and accents only (names, mixed languages).
SEARCH_LANGUAGES: dict[str, str] = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
    "pt": "Portuguese",
    "none": "None (no stemming)",
}
# Snowball's name for each language's stemmer (the `snowballstemmer` package on the server, the
# same algorithms generated as JavaScript in static/js/snowball/ for the static site); None folds only.
SNOWBALL_ALGORITHMS: dict[str, str | None] = {
    "en": "english",
    "fr": "french",
    "de": "german",
    "es": "spanish",
    "it": "italian",
    "nl": "dutch",
    "pt": "portuguese",
    "none": None,
}


class ItemCard(NamedTuple):
    """An item of a session in page order, as a knowledge page reads it to assemble its cards:
    without its content, and with its stored card (`html`) when one rendered under the page's
    card key from the item's current version is kept (else None: to render). `words`: a
    note's words (its card's, or counted in SQL), a kept card's; None for an item to render
    that is not a note. `hidden`: 1 for a social post a page must not show (held, rejected or
    hidden by moderation). A tuple, not a dataclass, made straight from the row: a 2,000-item
    page makes 2,000 of them per assembly."""

    item_id: int
    kind: str
    key_point: int  # 1 for a key point, as stored
    html: str | None
    words: int | None
    version: int
    hidden: int


@dataclass(frozen=True)
class CardSection:
    """A knowledge page's notes and posts as assembled HTML (storage `card_sections`), valid
    for one card key at one stream position of the session (any change to the stream, so any
    edit, moves it on): an uncached page whose section is current reads this one row."""

    session_id: str
    card_key: str
    stream_epoch: str
    last_seq: int
    notes_html: str
    posts_html: str
    notes: int
    posts: int
    words: int


@dataclass(frozen=True)
class RenderedCard:
    """A card to keep (storage `item_cards`): the item's HTML on a knowledge page as rendered
    from `item_version` of it, and the number of words in its text (the page's word count)."""

    item_id: int
    item_version: int
    html: str
    words: int


@dataclass(frozen=True)
class SearchQuery:
    """A backend-neutral search: the words people typed (each must match, after folding and
    stemming) and optional filters. Each backend turns `terms` into its own query syntax."""

    terms: tuple[str, ...]
    # Quoted phrases: each one's words must also stand together, in order. Their words are in
    # `terms` too (so ranking and highlighting see them).
    phrases: tuple[tuple[str, ...], ...] = ()
    event_id: str | None = None
    tag: str | None = None
    kinds: tuple[str, ...] = ()
    date_from: str | None = None  # YYYY-MM-DD, inclusive
    date_to: str | None = None  # YYYY-MM-DD, inclusive
    offset: int = 0
    limit: int = 20
    # Past this many matches only the newest `window` are ranked (and paged): ranking every match
    # of a common word in millions costs far more than the page (archive.search_window).
    window: int = 500


# Snippet highlight markers: control characters that cannot occur in stored text, so a page can
# HTML-escape a snippet first and then turn them into <mark> tags.
MARK_START = "\x02"
MARK_END = "\x03"


@dataclass(frozen=True)
class SearchHit:
    kind: str  # note, social, poll, question, answer, session, summary, comment
    ref: str  # the item id, session id or comment id (an answer's: its question's id)
    session_id: str
    event_id: str
    at: str
    title: str
    snippet: str  # plain text with MARK_START/MARK_END around matched words
    session_title: str
    event_title: str
    in_event_feed: bool = False  # an item of the event's own feed (no session page: link the event's)


@dataclass(frozen=True)
class SearchDocument:
    """A row of the search index as written, with its words as the index stems them (the static
    site's offline index is made from these, so that it finds what the server's search finds)."""

    kind: str  # as SearchHit's
    ref: str
    session_id: str
    title: str
    body: str
    tags: str
    words: tuple[str, str, str]  # the stems of title, body and tags, each space-separated, in order


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[SearchHit, ...]
    total: int  # matches; when `limited`, the query's window (there are more)
    more: bool  # another page follows
    # More matches than the query's window: only the newest `total` were ranked and are paged.
    limited: bool = False


@dataclass(frozen=True)
class Comment:
    """A reader's comment in a session's thread; replies name their parent."""

    id: int
    session_id: str
    parent_id: int | None
    account_id: int
    author: str
    body: str
    html: str
    state: str  # visible | pending (awaiting moderation) | hidden (by a moderator)
    deleted: bool
    created_at: str
    updated_at: str
    edited: bool

    @property
    def public(self) -> bool:
        return self.state == "visible" and not self.deleted

    def to_wire(self) -> dict[str, Any]:
        """What every reader may see: a removed or unpublished comment keeps only its place."""
        out: dict[str, Any] = {
            "id": self.id,
            "parent_id": self.parent_id,
            "created_at": self.created_at,
            "deleted": self.deleted,
            "state": self.state,
        }
        if self.public:
            out.update(
                author=self.author,
                author_id=self.account_id,
                html=self.html,
                edited=self.edited,
                updated_at=self.updated_at,
            )
        return out


@dataclass(frozen=True)
class SocialPost:
    """A post collected from a social network, normalised: our own copy of it.

    `media` entries are {"type", "url", "alt", "width", "height"} plus "local" (a /media/ path)
    once fetched, and "preview" (an image standing for a video or sound at "url"); `relation` is
    {"reply_to"?, "quote_of"?, "repost_of"?} (network post ids); `quote` the quoted post as
    collected {"author_handle", "author_name", "text", "url"}; `poll` its options and counts at
    collection time {"options": [{"title", "votes"}], "voters", "votes", "expires_at", "multiple"}.
    Text is plain text: any markup a network sent has been reduced to text before this point.
    """

    network: str
    post_id: str
    author_handle: str
    author_name: str
    text: str
    url: str
    posted_at: str
    links: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    media: tuple[dict[str, Any], ...] = ()
    avatar_url: str = ""
    avatar_local: str = ""
    relation: dict[str, str] = field(default_factory=dict)
    lang: str = ""
    quote: dict[str, str] = field(default_factory=dict)
    poll: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.network, self.post_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "post_id": self.post_id,
            "author_handle": self.author_handle,
            "author_name": self.author_name,
            "text": self.text,
            "url": self.url,
            "posted_at": self.posted_at,
            "links": list(self.links),
            "hashtags": list(self.hashtags),
            "mentions": list(self.mentions),
            "media": [dict(m) for m in self.media],
            "avatar_url": self.avatar_url,
            "avatar_local": self.avatar_local,
            "relation": dict(self.relation),
            "lang": self.lang,
            "quote": dict(self.quote),
            "poll": dict(self.poll),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SocialPost:
        return cls(
            network=str(d["network"]),
            post_id=str(d["post_id"]),
            author_handle=str(d.get("author_handle", "")),
            author_name=str(d.get("author_name", "")),
            text=str(d.get("text", "")),
            url=str(d.get("url", "")),
            posted_at=str(d.get("posted_at", "")),
            links=tuple(d.get("links", ())),
            hashtags=tuple(d.get("hashtags", ())),
            mentions=tuple(d.get("mentions", ())),
            media=tuple(dict(m) for m in d.get("media", ())),
            avatar_url=str(d.get("avatar_url", "")),
            avatar_local=str(d.get("avatar_local", "")),
            relation=dict(d.get("relation", {})),
            lang=str(d.get("lang", "")),
            quote=dict(d.get("quote") or {}),
            poll=dict(d.get("poll") or {}),
        )


@dataclass(frozen=True)
class SocialRoute:
    """Where a collected post goes: a session ('' for the event's own feed), and its state."""

    post_row: int
    event_id: str
    session_id: str
    state: str  # pending | approved | rejected | removed
    item_id: int | None
    routed_at: str
    post: SocialPost
    deleted_upstream: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {
            "post_row": self.post_row,
            "event_id": self.event_id,
            "session_id": self.session_id,
            "state": self.state,
            "item_id": self.item_id,
            "routed_at": self.routed_at,
            "deleted_upstream": self.deleted_upstream,
            "post": self.post.to_dict(),
        }


# An event's on/off settings, stored as 0/1 integers.
EVENT_FLAGS = ("show_viewers", "public_reasons")

# What the moderation ledger logs (storage/moderation.py): the actions, and what they act on.
MODERATION_ACTIONS = (
    "hide",
    "show",
    "approve",
    "reject",
    "remove",
    "ban",
    "answer",
    "merge",
    "pin",
    "unpin",
    "delete",
    "discount",
    "count",
)
MODERATION_TARGETS = ("comment", "question", "post", "note", "account", "poll", "answer")


@dataclass(frozen=True)
class ModerationEntry:
    """One moderation action in the public ledger (storage/moderation.py, docs/archive.md)."""

    id: int
    event_id: str
    session_id: str | None
    at: str
    actor: str  # who acted: an organiser's or note-taker's name
    action: str  # hide | show | approve | reject | remove | ban | answer | merge | pin | unpin | delete |
    # discount (a poll's flagged votes taken out of its result) | count (counted again)
    target_kind: str  # comment | question | post | note | account | poll | answer (its question's id)
    target_id: str
    reason: str = ""

    def to_export(self) -> dict[str, Any]:
        """Its row in the JSON export (the event is the export's own)."""
        return {
            "session_id": self.session_id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target_kind": self.target_kind,
            "target_id": self.target_id,
            "reason": self.reason,
        }

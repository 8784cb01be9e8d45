"""`liveblog import`: an export file is untrusted input, like a form.

It is parsed with bounded depth (no NaN or Infinity), checked field by field against the export's
schema (docs/archive.md), and refused with a message naming the field's path
(`sessions[3].id: must match [A-Za-z0-9_-]{1,64}`) before anything is written. Every HTML field
is then rendered again from its source text by the code that renders live input (Markdown and
nh3 for notes, comments and summaries; escaped text for polls and questions; render_post for
social posts): the file's own HTML is never stored. Last, one transaction writes it all.

A compact hand validator rather than a schema library: the checks that matter most here (ids
unique across the file and referring to each other, a change's payload agreeing with its row,
the event's feed id) are cross-field rules JSON Schema cannot say, and a path-naming message
per field is a few lines of Python, so no dependency pays for itself.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from html.parser import HTMLParser
from typing import Any, NoReturn

from liveblog.capture.feeds.render import SENSITIVE, render_post
from liveblog.capture.notes import note_data
from liveblog.capture.programme import recording_url
from liveblog.capture.validate import MAX_REASON_BYTES
from liveblog.capture.votes.common import text_html
from liveblog.errors import BadRequest
from liveblog.models import (
    ANSWER_CHARS,
    ANSWER_STATES,
    EXPORT_FORMAT,
    EXPORT_VERSION,
    FEDIVERSE_HANDLE,
    ITEM_KINDS,
    MODERATION_ACTIONS,
    MODERATION_TARGETS,
    SEARCH_LANGUAGES,
    SESSION_STATES,
    SocialPost,
    event_feed_id,
)
from liveblog.storage import Store, Tx
from liveblog.streams.protocol import MAX_INT, parse_json
from liveblog.text import render_markdown

# Nesting of a real export: document > sessions > bundle > changes > change > payload > item >
# data > options > option is 10 levels; 32 leaves room and refuses the 200,000-level file that
# made the stdlib parser raise RecursionError.
IMPORT_DEPTH = 32
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
EPOCH = re.compile(r"[A-Za-z0-9_-]{1,64}")
SHA256 = re.compile(r"[0-9a-f]{64}")
OP = re.compile(r"[a-z_]{1,32}(\.[a-z_]{1,32}){0,2}")
# A tag in its normal form (liveblog/archive/tags.py): case folded letters, digits, _ + . -,
# not starting or ending with '.', so never '.' or '..'.
TAG = re.compile(r"(?!\.)[\w+.-]{1,60}(?<!\.)")
# Longest texts accepted. Live input is smaller (a note is limits.note_bytes, 64 KiB by default,
# a comment 5,000 characters, a summary 20,000): these are generous so that an export of an
# instance with raised limits imports, and bounded so that a hostile file cannot be huge text.
BODY_CHARS = 1_000_000
NAME_CHARS = 200
DESCRIPTION_CHARS = 20_000
LIST_ITEMS = 100_000  # items, changes or comments in a session; an event's sessions
PHOTO_BYTES = 64 * 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
COMMENT_STATES = ("visible", "pending", "hidden")
TAG_SOURCES = ("hashtag", "organiser")
_NOT_TEXT = re.compile("[\ud800-\udfff\x00]")  # lone surrogates and NUL: not storable text

Check = Callable[[Any, str], Any]


def _fail(path: str, message: str) -> NoReturn:
    raise BadRequest(f"{path}: {message}", code="invalid_export", field=path)


# -- the schema, as small checks that name the path ----------------------------------------------


def text(limit: int, pattern: re.Pattern[str] | None = None, *, empty: bool = True) -> Check:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str):
            _fail(path, "must be a string")
        if len(value) > limit:
            _fail(path, f"must be at most {limit:,} characters")
        if not empty and not value:
            _fail(path, "must not be empty")
        if _NOT_TEXT.search(value):
            _fail(path, "must be text without NUL or lone surrogates")
        if pattern is not None and not pattern.fullmatch(value):
            _fail(path, f"must match {pattern.pattern}")
        return value

    return check


def integer(lo: int = 0, hi: int = MAX_INT) -> Check:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, "must be a whole number")
        if not lo <= value <= hi:
            _fail(path, f"must be from {lo} to {hi}")
        return value

    return check


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, "must be true or false")
    return value


def choice(*values: object) -> Check:
    def check(value: Any, path: str) -> Any:
        # `in` alone would take True for 1: a bool is only ever a bool here.
        if isinstance(value, bool) or not isinstance(value, str | int) or value not in values:
            _fail(path, f"must be one of {', '.join(repr(v) for v in values)}")
        return value

    return check


def moment(value: Any, path: str) -> str:
    """An ISO 8601 date or time (stored moments in UTC, programme times as wall-clock)."""
    text(40, empty=False)(value, path)
    try:
        (date if len(value) == 10 else datetime).fromisoformat(value)
    except ValueError:
        _fail(path, "must be an ISO 8601 date or time")
    return value


def nullable(check: Check) -> Check:
    return lambda value, path: None if value is None else check(value, path)


def array(check: Check, limit: int = LIST_ITEMS) -> Check:
    def each(value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            _fail(path, "must be a list")
        if len(value) > limit:
            _fail(path, f"must have at most {limit:,} entries")
        return [check(v, f"{path}[{n}]") for n, v in enumerate(value)]

    return each


def record(required: dict[str, Check], optional: dict[str, Check] | None = None) -> Check:
    """An object with these fields. Fields it does not name are ignored (newer exports may add
    some, docs/archive.md) and never stored: rows are written column by column."""

    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            _fail(path, "must be an object")
        out = dict(value)
        for name, field in required.items():
            if name not in value:
                _fail(f"{path}.{name}" if path else name, "is missing")
            out[name] = field(value[name], f"{path}.{name}" if path else name)
        for name, field in (optional or {}).items():
            if name in value:
                out[name] = field(value[name], f"{path}.{name}" if path else name)
        return out

    return check


def json_value(value: Any, path: str) -> Any:
    """Free-form JSON (an item's data, a change's payload): every string, number and key checked."""
    if isinstance(value, str):
        text(BODY_CHARS)(value, path)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        integer(-MAX_INT - 1)(value, path)
    elif isinstance(value, float):
        if not math.isfinite(value):
            _fail(path, "must be a finite number")
    elif isinstance(value, list):
        for n, v in enumerate(value):
            json_value(v, f"{path}[{n}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            text(NAME_CHARS)(k, f"{path} (a key)")
            json_value(v, f"{path}.{k}")
    return value


def obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, "must be an object")
    return copy.deepcopy(json_value(value, path))  # HTML in it is rendered again: the caller's stays


def recording_link(value: Any, path: str) -> str:
    """A session's recording: the same rule as live input (programme.recording_url)."""
    try:
        return recording_url(value)
    except BadRequest:
        _fail(path, "must be an http:// or https:// link, or empty")


NAME = text(NAME_CHARS)
EVENT = record(
    {
        "id": text(64, ID),
        "title": NAME,
        "starts_on": moment,
        "ends_on": moment,
        "venue": NAME,
        "description": text(DESCRIPTION_CHARS),
        "hashtags": array(NAME, 100),
        "created_at": moment,
        "updated_at": moment,
    },
    {"language": choice(*SEARCH_LANGUAGES), "show_viewers": boolean, "public_reasons": boolean},
)
SESSION = record(
    {
        "id": text(80),
        "event_id": text(64, ID),
        "title": NAME,
        "starts_at": moment,
        "ends_at": moment,
        "room": NAME,
        "speakers": array(NAME, 100),
        "hashtags": array(NAME, 100),
        "description": text(DESCRIPTION_CHARS),
        "state": choice(*SESSION_STATES),
        "question_moderation": boolean,
        "stream_epoch": text(64, EPOCH),
        "last_seq": integer(),
        "ended_at": nullable(moment),
        "created_at": moment,
        "updated_at": moment,
    },
    {"kind": choice("event_feed"), "recording_url": recording_link, "recording_offset": integer(0, 86400)},
)
ARCHIVE = nullable(
    record(
        {
            "summary": text(BODY_CHARS),
            "summary_by": NAME,
            "archived_at": moment,
            "updated_at": moment,
            "tags_synced_at": nullable(moment),
        },
    )
)
ITEM = record(
    {
        "id": integer(1),
        "session_id": text(80),
        "kind": choice(*ITEM_KINDS),
        "client_id": text(NAME_CHARS),
        "author": NAME,
        "body": text(BODY_CHARS),
        "key_point": boolean,
        "data": obj,
        "typed_at": moment,
        "received_at": moment,
        "sort_at": moment,
        "updated_at": moment,
        "deleted": boolean,
        "version": integer(1),
        "seq": integer(),
    },
)
HISTORY = record(
    {
        "item_id": integer(1),
        "version": integer(1),
        "body": text(BODY_CHARS),
        "written_at": moment,
        "replaced_at": moment,
    },
)
CHANGE = record(
    {
        "seq": integer(1),
        "op": text(100, OP),
        "item_id": nullable(integer(1)),
        "payload": obj,
        "created_at": moment,
    },
)
COMMENT = record(
    {
        "id": integer(1),
        "parent_id": nullable(integer(1)),
        "author": text(NAME_CHARS, empty=False),
        "body": text(BODY_CHARS),
        "state": choice(*COMMENT_STATES),
        "deleted": boolean,
        "created_at": moment,
        "updated_at": moment,
        "edited": boolean,
    },
)
MEDIA = record(
    {
        "id": text(64, ID),
        "content_type": choice(*IMAGE_TYPES),
        "sha256": text(64, SHA256),
        "created_at": moment,
        "data_base64": text(PHOTO_BYTES * 4 // 3 + 4),
    },
)
ANSWER = record(
    {
        "question_id": integer(1),
        "author": text(NAME_CHARS, empty=False),
        "body": text(ANSWER_CHARS),
        "state": choice(*ANSWER_STATES),
        "answered_at": moment,
        "updated_at": moment,
    },
)
BUNDLE = record(
    {
        "session": SESSION,
        "archive": ARCHIVE,
        "tags": array(array(text(200), 2)),
        "items": array(ITEM),
        "item_history": array(HISTORY),
        "changes": array(CHANGE),
        "comments": array(COMMENT),
        "thread_locked": boolean,
        "media": array(MEDIA),
    },
    {"answers": array(ANSWER)},  # answers after the talk (exports from before them have none)
)

MODERATION = record(
    {
        "session_id": nullable(text(80)),
        "at": moment,
        "actor": NAME,
        "action": choice(*MODERATION_ACTIONS),
        "target_kind": choice(*MODERATION_TARGETS),
        "target_id": text(80, empty=False),
        "reason": text(MAX_REASON_BYTES),
    },
)


def parse_export(raw: str | bytes) -> Any:
    """The JSON value of an export file: nesting bounded, no NaN or Infinity, no huge numbers."""
    try:
        return parse_json(raw, max_depth=IMPORT_DEPTH)
    except BadRequest as exc:
        raise BadRequest(f"the file is not a readable export: {exc.message}", code="invalid_export") from None


FEDERATION = record(
    {
        "enabled": boolean,
        "handles": array(
            record(
                {
                    "kind": choice("event", "session"),
                    "id": text(80),
                    "handle": text(64, FEDIVERSE_HANDLE),
                }
            )
        ),
    }
)


def check_export(doc: Any) -> dict[str, Any]:
    """A checked copy of the export (BadRequest `invalid_export` naming the first bad field),
    its photos decoded; `rerender` then replaces its HTML. The caller's document is unchanged."""
    if not isinstance(doc, dict):
        _fail("(top)", "an export is a JSON object")
    if doc.get("format") != EXPORT_FORMAT:
        _fail("format", f"must be {EXPORT_FORMAT!r}: this is not a Liveblog archive export")
    version = doc.get("version")
    if type(version) is not int or version != EXPORT_VERSION:  # not True, not 1.0
        _fail("version", f"{version!r} is not supported (this Liveblog reads version {EXPORT_VERSION})")
    doc = record(
        {"exported_at": moment, "event": EVENT, "sessions": array(BUNDLE)},
        # "moderation": the ledger (exports from before it have none).
        # "federation": the fediverse switch and chosen handles (exports from before have none).
        {
            "comment_premoderation": boolean,
            "event_feed": BUNDLE,
            "moderation": array(MODERATION),
            "federation": FEDERATION,
        },
    )(doc, "")
    event_id = doc["event"]["id"]
    seen: dict[str, set[Any]] = {"session": set(), "item": set(), "comment": set(), "media": set()}
    bundles = [(f"sessions[{n}]", b) for n, b in enumerate(doc["sessions"])]
    if "event_feed" in doc:
        bundles.append(("event_feed", doc["event_feed"]))
    for path, bundle in bundles:
        _check_bundle(bundle, path, event_id, path == "event_feed", seen)
    for n, entry in enumerate(doc.get("moderation", [])):
        if entry["session_id"] is not None and entry["session_id"] not in seen["session"]:
            _fail(
                f"moderation[{n}].session_id", "must be a session of this export, or null for the whole event"
            )
    _check_handles(doc.get("federation"), event_id, seen["session"])
    return doc


def _check_handles(federation: dict[str, Any] | None, event_id: str, sessions: set[Any]) -> None:
    """Each chosen handle names the event or one of its sessions (not its feed), once each."""
    handles: set[str] = set()
    owners: set[tuple[str, str]] = set()
    for n, h in enumerate(federation["handles"] if federation else []):
        where = f"federation.handles[{n}]"
        ours = (
            h["id"] == event_id
            if h["kind"] == "event"
            else h["id"] in sessions and h["id"] != event_feed_id(event_id)
        )
        if not ours:
            _fail(f"{where}.id", "must be the event's id or one of its sessions'")
        if (h["kind"], h["id"]) in owners:
            _fail(f"{where}.id", "has a handle already")
        owners.add((h["kind"], h["id"]))
        _unique(handles, h["handle"], f"{where}.handle")


def _unique(seen: set[Any], value: Any, path: str) -> None:
    if value in seen:
        _fail(path, f"{value!r} appears twice in the export")
    seen.add(value)


def _check_bundle(
    b: dict[str, Any], path: str, event_id: str, is_feed: bool, seen: dict[str, set[Any]]
) -> None:
    s = b["session"]
    sid = s["id"]
    if is_feed:
        if s.get("kind") != "event_feed" or sid != event_feed_id(event_id):
            _fail(
                f"{path}.session",
                f"the event's feed has kind 'event_feed' and id {event_feed_id(event_id)!r}",
            )
    else:
        if "kind" in s:
            _fail(
                f"{path}.session.kind", "a programme session carries no kind (the event's feed is event_feed)"
            )
        text(64, ID)(sid, f"{path}.session.id")
    if s["event_id"] != event_id:
        _fail(f"{path}.session.event_id", f"must be the event's id {event_id!r}")
    _unique(seen["session"], sid, f"{path}.session.id")
    for n, pair in enumerate(b["tags"]):
        if len(pair) != 2:
            _fail(f"{path}.tags[{n}]", "must be [tag, source]")
        tag, source = pair
        text(60, TAG)(tag, f"{path}.tags[{n}][0]")
        if tag != unicodedata.normalize("NFC", tag.casefold()):
            _fail(f"{path}.tags[{n}][0]", "must be a tag in its normal form (case folded, NFC)")
        choice(*TAG_SOURCES)(source, f"{path}.tags[{n}][1]")
    items: dict[int, dict[str, Any]] = {}
    for n, item in enumerate(b["items"]):
        where = f"{path}.items[{n}]"
        _unique(seen["item"], item["id"], f"{where}.id")
        if item["session_id"] != sid:
            _fail(f"{where}.session_id", f"must be its session's id {sid!r}")
        if item["seq"] > s["last_seq"]:
            _fail(f"{where}.seq", "is after the session's last_seq")
        if (
            item["kind"] == "poll"
            and not item["deleted"]
            and not isinstance(item["data"].get("question"), str)
        ):
            _fail(f"{where}.data.question", "a poll's question must be a string")
        items[item["id"]] = item
    for n, h in enumerate(b["item_history"]):
        if h["item_id"] not in items:
            _fail(f"{path}.item_history[{n}].item_id", "is not an item of this session")
    for n, ch in enumerate(b["changes"]):
        where = f"{path}.changes[{n}]"
        if ch["seq"] != n + 1:
            _fail(
                f"{where}.seq", f"must be {n + 1}: a session's changes are numbered 1, 2, 3... without gaps"
            )
        if ch["item_id"] is not None and ch["item_id"] not in items:
            _fail(f"{where}.item_id", "is not an item of this session")
        p = ch["payload"]
        if p.get("type") != "change" or p.get("seq") != ch["seq"] or p.get("op") != ch["op"]:
            _fail(f"{where}.payload", 'must be {"type": "change"} with the change\'s own seq and op')
        _no_other_html({k: v for k, v in p.items() if k not in ("item", "comment")}, f"{where}.payload")
        for part in ("item", "comment"):
            if isinstance(p.get(part), dict):
                _no_other_html({k: v for k, v in p[part].items() if k != "html"}, f"{where}.payload.{part}")
    if len(b["changes"]) > s["last_seq"]:
        _fail(f"{path}.session.last_seq", "is less than the number of changes")
    comments: set[int] = set()
    for n, c in enumerate(b["comments"]):
        _unique(seen["comment"], c["id"], f"{path}.comments[{n}].id")
        if c["parent_id"] is not None and c["parent_id"] not in comments:
            _fail(f"{path}.comments[{n}].parent_id", "must be an earlier comment of this session")
        comments.add(c["id"])
    answered: set[int] = set()
    for n, a in enumerate(b.get("answers", [])):
        where = f"{path}.answers[{n}]"
        question = items.get(a["question_id"])
        if question is None or question["kind"] != "question":
            _fail(f"{where}.question_id", "is not a question of this session")
        if a["question_id"] in answered:
            _fail(f"{where}.question_id", "is answered twice: a question has one answer")
        answered.add(a["question_id"])
        if a["state"] == "visible" and not a["body"].strip():
            _fail(f"{where}.body", "a shown answer has text")
    for n, m in enumerate(b["media"]):
        where = f"{path}.media[{n}]"
        _unique(seen["media"], m["id"], f"{where}.id")
        try:
            m["bytes"] = base64.b64decode(m.pop("data_base64"), validate=True)
        except (binascii.Error, ValueError):
            _fail(f"{where}.data_base64", "must be base64")
        if len(m["bytes"]) > PHOTO_BYTES:
            _fail(f"{where}.data_base64", f"a photo is at most {PHOTO_BYTES:,} bytes")
        if hashlib.sha256(m["bytes"]).hexdigest() != m["sha256"]:
            _fail(f"{where}.sha256", "does not match the photo's bytes")


# -- HTML, rendered again from source text -------------------------------------------------------


class _PostFacts(HTMLParser):
    """What a stored social post's HTML says beyond its text (render_post's photos, avatar, media
    links and relation), read as plain facts; render_post then escapes them like a fresh post."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.avatar = ""
        self.media: list[dict[str, Any]] = []
        self.relation: dict[str, str] = {}
        self._open: str | None = None
        self._href = ""
        self._text = ""
        self._sensitive: dict[str, bool] = {}  # inside the <details> of media marked sensitive

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        cls = a.get("class", "").split()
        if tag == "details" and SENSITIVE in cls:
            self._sensitive = {"sensitive": True}
        elif tag == "img" and "social-avatar" in cls:
            self.avatar = a.get("src", "")
        elif tag == "img" and "social-image" in cls:
            size = {k: int(a[k]) for k in ("width", "height") if a.get(k, "").isdigit() and len(a[k]) < 6}
            self.media.append(
                {
                    "type": "image",
                    "local": a.get("src", ""),
                    "alt": a.get("alt", ""),
                    **size,
                    **self._sensitive,
                }
            )
        elif (tag == "a" and "social-media-link" in cls) or (tag == "p" and "social-relation" in cls):
            self._open, self._href, self._text = cls[0], a.get("href", ""), ""

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self._sensitive = {}
        if self._open == "social-media-link" and tag == "a":
            kind, _, alt = self._text.partition(": ")
            self.media.append({"type": kind.lower(), "url": self._href, "alt": alt, **self._sensitive})
        elif self._open == "social-relation" and tag == "p":
            key = {"Reposted": "repost_of", "Reply": "reply_to", "Quotes another post": "quote_of"}.get(
                self._text
            )
            if key:
                self.relation[key] = ""
        if tag in ("a", "p"):
            self._open = None


def _social_html(item: dict[str, Any], body: str, old_html: Any) -> str:
    facts = _PostFacts()
    facts.feed(old_html if isinstance(old_html, str) else "")
    data = item["data"] if isinstance(item.get("data"), dict) else {}
    post = SocialPost(
        network=str(data.get("network", "")),
        post_id=str(data.get("post_id", "")),
        author_handle=str(data.get("handle", "")),
        author_name=str(item.get("author", "")),
        text=body,
        url=str(data.get("url", "")),
        posted_at=str(data.get("posted_at", "")),
        media=tuple(facts.media),
        avatar_local=facts.avatar,
        relation=facts.relation,
    )
    return render_post(post)


def _render_item(item: dict[str, Any], body: str | None = None, old_html: Any = None) -> None:
    """Set an item's `html` (and a note's data) from its text, as live capture renders it:
    `body`/`old_html` are those of an earlier version (item_history) when given."""
    current = body is None
    body = item.get("body", "") if current else body
    old_html = item.get("html") if current else old_html
    if not isinstance(body, str) or item.get("deleted") or not body and item.get("kind") != "poll":
        item["html"] = ""
        return
    kind, data = item.get("kind"), item.get("data")
    if kind == "note":
        item["html"] = render_markdown(body)
        if current and isinstance(data, dict):
            item["data"] = {k: v for k, v in data.items() if k not in ("embeds", "media")} | note_data(body)
    elif kind == "poll":
        question = data.get("question") if isinstance(data, dict) else None
        item["html"] = text_html(question if isinstance(question, str) else body)
    elif kind == "social":
        item["html"] = _social_html(item, body, old_html)
    else:
        item["html"] = text_html(body)


class _Words(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words: list[str] = []

    def handle_data(self, data: str) -> None:
        self.words.append(data)


def _plain_text(html_text: str) -> str:
    """The words of a piece of HTML, as text (entities decoded, no markup)."""
    parser = _Words()
    parser.feed(html_text)
    return " ".join("".join(parser.words).split())


def _no_other_html(value: Any, path: str) -> None:
    """HTML is accepted only where it is rendered again: nowhere else in a payload."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and k.endswith("html") and isinstance(v, str) and v:
                _fail(
                    f"{path}.{k}",
                    "HTML is only accepted in an item's or a comment's html, which is rendered again",
                )
            _no_other_html(v, f"{path}.{k}")
    elif isinstance(value, list):
        for n, v in enumerate(value):
            _no_other_html(v, f"{path}[{n}]")


def _bundles(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [*doc["sessions"], *([doc["event_feed"]] if "event_feed" in doc else [])]


def rerender(doc: dict[str, Any]) -> None:
    """Replace every HTML field of a checked export with HTML rendered from its source text."""
    for b in _bundles(doc):
        a = b["archive"]
        if a is not None:
            a["summary_html"] = render_markdown(a["summary"]) if a["summary"] else ""
        items = {i["id"]: i for i in b["items"]}
        for i in b["items"]:
            _render_item(i)
        for h in b["item_history"]:
            probe = dict(items[h["item_id"]], deleted=False)
            _render_item(probe, h["body"], h.get("html"))
            h["html"] = probe["html"]
        comments = {c["id"]: c for c in b["comments"]}
        for c in b["comments"]:
            c["html"] = render_markdown(c["body"]) if c["body"] and not c["deleted"] else ""
        for a in b.get("answers", []):
            a["html"] = render_markdown(a["body"]) if a["body"] else ""
        for ch in b["changes"]:
            payload = ch["payload"]
            if isinstance(payload.get("item"), dict) and "html" in payload["item"]:
                _render_item(payload["item"])
            comment = payload.get("comment")
            if isinstance(comment, dict) and "html" in comment:
                now = comments.get(comment.get("id"))
                if now is not None and now["updated_at"] == comment.get("updated_at"):
                    comment["html"] = now["html"]  # this version is the comment's current text
                else:
                    # An earlier version, whose Markdown the export does not carry: its words, as text.
                    old = _plain_text(comment["html"]) if isinstance(comment["html"], str) else ""
                    comment["html"] = text_html(old) if old else ""


async def import_json(db: Store, doc: Any) -> tuple[str, int]:
    """Restore an export into this (fresh) instance, in one transaction: all of it or nothing."""
    doc = check_export(doc)
    rerender(doc)

    async def op(tx: Tx) -> None:
        await tx.import_event_row(doc["event"], bool(doc.get("comment_premoderation")))
        for b in _bundles(doc):
            await tx.import_session_rows(b)
        await tx.import_moderation_rows(
            [{**e, "event_id": doc["event"]["id"]} for e in doc.get("moderation", [])]
        )
        federation = doc.get("federation")
        if federation is not None:
            await tx.set_federation(doc["event"]["id"], federation["enabled"])
            for n, h in enumerate(federation["handles"]):
                if not await tx.set_handle(h["kind"], h["id"], h["handle"]):
                    _fail(
                        f"federation.handles[{n}].handle",
                        f"@{h['handle']} names another account here already",
                    )
        await tx.continue_ids()  # the notes, posts and comments written after it follow its ids

    await db.write(op)
    return doc["event"]["id"], len(doc["sessions"])

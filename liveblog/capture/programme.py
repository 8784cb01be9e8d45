"""Events and sessions: validation and the rules of a session's life (scheduled -> live -> ended)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from liveblog.capture import hashtags as tagrules
from liveblog.capture.validate import known_fields
from liveblog.errors import BadRequest, Conflict, NotFound
from liveblog.models import PARTICIPATION, SEARCH_LANGUAGES, SESSION_STATES, Event, Item, Session, utcnow
from liveblog.storage import Store, Tx, Unit
from liveblog.text import xml_chars

# A session's notes' likes and boosts on the fediverse: {item id: {"Like": n, "Announce": m}}.
Reactions = dict[int, dict[str, int]]


class StreamHead(NamedTuple):
    """The first page of a session's stream (Programme.stream_head)."""

    session: Session
    event: Event
    items: list[Item]  # the newest notes and posts, oldest first
    key_points: list[Item]
    total: int  # notes and posts in the whole stream
    reactions: Reactions  # its notes' likes and boosts on the fediverse


async def _stream_session(r: Unit, session_id: str) -> tuple[Session, Event]:
    """The session (with its stream position) and its event; NotFound if there is none."""
    session = await r.get_stream_session(session_id)
    if session is None:
        raise NotFound("There is no such session.", code="unknown_session")
    event = await r.get_event(session.event_id)
    assert event is not None
    return session, event


def _text(data: dict[str, Any], name: str, *, required: bool, limit: int = 200) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name} is required", code="missing_field", field=name)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", code="invalid_field", field=name)
    value = xml_chars(value).strip()
    if required and not value:
        raise BadRequest(f"{name} must not be empty", code="empty", field=name)
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters", code="too_long", field=name)
    return value


def _day(data: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = _text(data, name, required=required, limit=10)
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise BadRequest(f"{name} must be a date like 2026-05-14", code="invalid_field", field=name) from None


def _moment(data: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = _text(data, name, required=required, limit=40)
    if value is None:
        return None
    try:
        # Local wall-clock time at the venue ("2026-05-14T09:30"); programmes are read that way.
        return datetime.fromisoformat(value).strftime("%Y-%m-%dT%H:%M")
    except ValueError:
        raise BadRequest(
            f"{name} must be a date and time like 2026-05-14T09:30", code="invalid_field", field=name
        ) from None


def _list(data: dict[str, Any], name: str, *, hashtags: bool = False) -> tuple[str, ...] | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = tagrules.split_field(value) if hashtags else [v for v in re.split(r"\s*,\s*", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{name} must be a list of strings", code="invalid_field", field=name)
    out = []
    for v in value:
        v = xml_chars(v).strip()
        if not v:
            continue
        if hashtags:
            # '#' and a tag, or else a search term (a word or phrase): tagrules.RULE says which.
            if v.startswith("#") and not tagrules.is_hashtag(v):
                raise BadRequest(f"{v!r} is not a hashtag: {tagrules.RULE}", code="invalid_field", field=name)
            if any(ord(ch) < 32 for ch in v):
                raise BadRequest(
                    f"an entry of {name} has a control character", code="invalid_field", field=name
                )
            v = unicodedata.normalize("NFC", v)
        if len(v) > 100:
            raise BadRequest(f"an entry of {name} is too long", code="too_long", field=name)
        out.append(v)
    if len(out) > 20:
        raise BadRequest(f"{name} has more than 20 entries", code="too_long", field=name)
    return tuple(out)


# The fields an event and a session take (the API refuses any other by name).
EVENT_KEYS = (
    "title",
    "starts_on",
    "ends_on",
    "venue",
    "description",
    "hashtags",
    "language",
    "show_viewers",
    "public_reasons",
)
SESSION_KEYS = (
    "title",
    "starts_at",
    "ends_at",
    "room",
    "description",
    "speakers",
    "hashtags",
    "question_moderation",
    "questions_audience",
    "state",
    "cancelled",
    "tags",
    "recording_url",
    "recording_offset",
)


def event_fields(data: Any, *, partial: bool) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("expected a JSON object", code="invalid_json")
    known_fields(data, EVENT_KEYS, "an event")
    req = not partial
    fields: dict[str, Any] = {
        "title": _text(data, "title", required=req),
        "starts_on": _day(data, "starts_on", required=req),
        "ends_on": _day(data, "ends_on", required=req),
        "venue": _text(data, "venue", required=False),
        "description": _text(data, "description", required=False, limit=5000),
        "hashtags": _list(data, "hashtags", hashtags=True),
        "language": _text(data, "language", required=False, limit=10),
    }
    for flag in ("show_viewers", "public_reasons"):
        if flag in data:
            if not isinstance(data[flag], bool):
                raise BadRequest(f"{flag} must be true or false", code="invalid_field", field=flag)
            fields[flag] = data[flag]
    if fields["language"] is not None and fields["language"] not in SEARCH_LANGUAGES:
        raise BadRequest(
            f"language must be one of {', '.join(SEARCH_LANGUAGES)}", code="invalid_field", field="language"
        )
    fields = {k: v for k, v in fields.items() if v is not None}
    if fields.get("starts_on") and fields.get("ends_on") and fields["ends_on"] < fields["starts_on"]:
        raise BadRequest("the event cannot end before it starts", code="invalid_field", field="ends_on")
    return fields


def parse_offset(value: object) -> int:
    """Seconds from an int, or 'H:MM:SS' / 'MM:SS' / 'SS' text; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("not a time")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and re.fullmatch(r"\d{1,2}(:\d{1,2}){0,2}", value.strip()):
        seconds = 0
        for part in value.strip().split(":"):
            seconds = seconds * 60 + int(part)
    else:
        raise ValueError("not a time")
    if not 0 <= seconds <= 24 * 3600:
        raise ValueError("out of range")
    return seconds


RECORDING_URL_CHARS = 2000


def recording_url(value: Any) -> str:
    """A recording's link: empty (none), or an http(s) URL (YouTube, Vimeo, PeerTube, a file)."""
    if not isinstance(value, str):
        raise BadRequest("recording_url must be text", code="invalid_field", field="recording_url")
    url = value.strip()
    if url and (len(url) > RECORDING_URL_CHARS or not re.fullmatch(r"https?://[^\s<>\"']+", url)):
        raise BadRequest(
            "recording_url must be an http:// or https:// link to the recording, or empty",
            code="invalid_field",
            field="recording_url",
        )
    return url


def session_fields(data: Any, *, partial: bool) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("expected a JSON object", code="invalid_json")
    known_fields(data, SESSION_KEYS, "a session")
    req = not partial
    fields: dict[str, Any] = {
        "title": _text(data, "title", required=req),
        "starts_at": _moment(data, "starts_at", required=req),
        "ends_at": _moment(data, "ends_at", required=req),
        "room": _text(data, "room", required=False),
        "description": _text(data, "description", required=False, limit=5000),
        "speakers": _list(data, "speakers"),
        "hashtags": _list(data, "hashtags", hashtags=True),
    }
    if "question_moderation" in data:
        if not isinstance(data["question_moderation"], bool):
            raise BadRequest(
                "question_moderation must be true or false", code="invalid_field", field="question_moderation"
            )
        fields["question_moderation"] = data["question_moderation"]
    if "questions_audience" in data:
        if data["questions_audience"] not in PARTICIPATION:
            raise BadRequest(
                f"questions_audience must be one of {', '.join(PARTICIPATION)}",
                code="invalid_field",
                field="questions_audience",
            )
        fields["questions_audience"] = data["questions_audience"]
    if "recording_url" in data:
        fields["recording_url"] = recording_url(data["recording_url"])
    if "recording_offset" in data:
        try:
            fields["recording_offset"] = parse_offset(data["recording_offset"])
        except ValueError:
            raise BadRequest(
                "recording_offset must be seconds (0 to 86400) or a time like 0:12:30",
                code="invalid_field",
                field="recording_offset",
            ) from None
    if "cancelled" in data:
        if not isinstance(data["cancelled"], bool):
            raise BadRequest("cancelled must be true or false", code="invalid_field", field="cancelled")
        fields["cancelled"] = data["cancelled"]
    if "tags" in data:
        fields["tags"] = _list(data, "tags")
    if "state" in data:
        if data["state"] not in SESSION_STATES:
            raise BadRequest(
                f"state must be one of {', '.join(SESSION_STATES)}", code="invalid_field", field="state"
            )
        fields["state"] = data["state"]
    fields = {k: v for k, v in fields.items() if v is not None}
    if fields.get("starts_at") and fields.get("ends_at") and fields["ends_at"] < fields["starts_at"]:
        raise BadRequest("the session cannot end before it starts", code="invalid_field", field="ends_at")
    return fields


# A conference day runs until this hour of the next morning (as frab's day change): a party on
# the last evening may end after midnight and still be in the event.
DAY_ENDS_NEXT_MORNING = timedelta(hours=6)


def check_within_event(event: Event, starts_at: str, ends_at: str) -> None:
    """A session's times (venue wall-clock, "2026-05-14T09:30") fall within the event's days and
    it ends no earlier than it starts; the error names the field at fault."""
    days = f"{event.starts_on} to {event.ends_on}"
    first = datetime.fromisoformat(event.starts_on)
    last = datetime.fromisoformat(event.ends_on) + timedelta(days=1) + DAY_ENDS_NEXT_MORNING
    start, end = datetime.fromisoformat(starts_at), datetime.fromisoformat(ends_at)
    if not first <= start < last:
        raise BadRequest(
            f"the session starts at {starts_at.replace('T', ' ')}, outside the event's days ({days})",
            code="outside_event",
            field="starts_at",
        )
    if end > last:
        raise BadRequest(
            f"the session ends at {ends_at.replace('T', ' ')}, after the event's last day ({days})",
            code="outside_event",
            field="ends_at",
        )
    if end < start:
        raise BadRequest("the session cannot end before it starts", code="invalid_field", field="ends_at")


class SessionCancelled(Conflict):
    code = "session_cancelled"


class SessionHasItems(Conflict):
    code = "session_has_items"


# What decides which hashtags are collected, and when (capture/feeds/service.py, targets): an
# edit of one of these wakes the feed sources; a title or a room does not.
COLLECTING_FIELDS = frozenset({"hashtags", "starts_at", "ends_at", "state", "cancelled"})


class Programme:
    def __init__(
        self, db: Store, *, default_language: str = "en", on_change: Callable[[], None] | None = None
    ) -> None:
        self.db = db
        self.default_language = default_language  # archive.language: new events' search language
        # Called after a commit that may change what the feeds collect (services.py: the feed
        # service wakes its sources, here and in the process that runs them).
        self.on_change = on_change

    def _changed(self, fields: dict[str, Any] | None = None) -> None:
        if self.on_change is not None and (fields is None or COLLECTING_FIELDS & fields.keys()):
            self.on_change()

    async def create_event(self, data: Any) -> Event:
        fields = event_fields(data, partial=False)
        fields.setdefault("language", self.default_language)

        async def op(tx: Tx) -> Event:
            return await tx.insert_event(fields)

        event = await self.db.write(op)
        self._changed()
        return event

    async def update_event(self, event_id: str, data: Any) -> Event:
        fields = event_fields(data, partial=True)

        async def op(tx: Tx) -> Event:
            event = await tx.update_event(event_id, fields)
            if event.ends_on < event.starts_on:
                raise BadRequest(
                    "the event cannot end before it starts", code="invalid_field", field="ends_on"
                )
            if "starts_on" in fields or "ends_on" in fields:
                # New days must still hold every session (the write is undone if not).
                for session in await tx.list_sessions(event_id):
                    try:
                        check_within_event(event, session.starts_at, session.ends_at)
                    except BadRequest:
                        early = session.starts_at[:10] < event.starts_on
                        raise BadRequest(
                            f"the session {session.title!r} ({session.starts_at.replace('T', ' ')}) would fall "
                            "outside the event's days: move or delete it first",
                            code="outside_event",
                            field="starts_on" if early else "ends_on",
                        ) from None
            return event

        event = await self.db.write(op)
        self._changed(fields)
        return event

    async def create_session(self, event_id: str, data: Any) -> Session:
        fields = session_fields(data, partial=False)

        async def op(tx: Tx) -> Session:
            event = await tx.get_event(event_id)
            if event is None:
                raise NotFound(f"no event {event_id!r}")
            check_within_event(event, fields["starts_at"], fields["ends_at"])
            if "state" in fields and fields["state"] == "ended":
                fields["ended_at"] = utcnow()
            return await tx.insert_session(event_id, fields)

        session = await self.db.write(op)
        self._changed()
        return session

    async def update_session(self, session_id: str, data: Any) -> Session:
        fields = session_fields(data, partial=True)

        async def op(tx: Tx) -> Session:
            current = await tx.get_session(session_id)
            if current is None:
                raise NotFound(f"no session {session_id!r}")
            if "starts_at" in fields or "ends_at" in fields:
                event = await tx.get_event(current.event_id)
                assert event is not None
                check_within_event(
                    event, fields.get("starts_at", current.starts_at), fields.get("ends_at", current.ends_at)
                )
            state = fields.get("state")
            cancelled = fields.get("cancelled", current.cancelled)
            if cancelled and not current.cancelled and (state or current.state) != "scheduled":
                raise Conflict(
                    "a session that has started cannot be cancelled: end it instead",
                    code="invalid_transition",
                )
            if state and state != current.state:
                if state == "scheduled" and current.state != "scheduled":
                    raise Conflict(
                        "a session that has started cannot go back to scheduled", code="invalid_transition"
                    )
                if cancelled:
                    raise SessionCancelled("this session is cancelled: restore it before it goes live")
                fields["ended_at"] = utcnow() if state == "ended" else None
            return await tx.update_session(session_id, fields)

        session = await self.db.write(op)
        self._changed(fields)
        return session

    async def set_state(self, session_id: str, state: str) -> Session:
        return await self.update_session(session_id, {"state": state})

    async def delete_session(self, session_id: str) -> Session:
        """Delete a session. One that holds nothing (a programme mistake) goes at once. One that
        holds notes, posts, polls, questions, comments or photos goes only when it is not live
        and an organiser took its export since its last change, so nothing is lost that the
        export does not keep; otherwise the refusal says what to do (docs/programme.md)."""

        async def op(tx: Tx) -> Session:
            session = await tx.get_session(session_id)
            if session is None:
                raise NotFound(f"no session {session_id!r}", code="unknown_session")
            held = await tx.count_session_holdings(session_id)
            if held:
                what = f"{held} captured item" if held == 1 else f"{held} captured items"
                if session.is_live:
                    raise SessionHasItems(
                        f"this session is live and holds {what}: end it, download its export, then delete it"
                    )
                if session.exported_seq != session.last_seq:
                    since = (
                        "changed since its export"
                        if session.exported_seq is not None
                        else "not been exported"
                    )
                    raise SessionHasItems(
                        f"this session holds {what} (notes, posts, polls, questions, comments or photos) and has "
                        f"{since}: download its export first, so nothing is lost, or cancel it instead"
                    )
            await tx.delete_session(session_id)
            return session

        session = await self.db.write(op)
        self._changed()
        return session

    async def mark_exported(self, session_id: str) -> None:
        """An organiser is taking the session's export (read after this, so it holds all until now)."""
        if await self.db.write(lambda tx: tx.mark_exported(session_id)) is None:
            raise NotFound(f"no session {session_id!r}", code="unknown_session")

    async def holdings(self, session_id: str) -> int:
        return await self.db.read(lambda r: r.count_session_holdings(session_id), pool="pages")

    async def event(self, event_id: str) -> Event:
        event = await self.db.read(lambda r: r.get_event(event_id))
        if event is None:
            raise NotFound(f"no event {event_id!r}")
        return event

    async def session(self, session_id: str) -> Session:
        session = await self.db.read(lambda r: r.get_session(session_id))
        if session is None:
            raise NotFound(f"no session {session_id!r}")
        return session

    async def stream_session(self, session_id: str) -> Session:
        """Any stream: a programme session or an event's own feed (read-only stream endpoints)."""
        session = await self.db.read(lambda r: r.get_stream_session(session_id))
        if session is None:
            raise NotFound(f"no session {session_id!r}")
        return session

    async def event_feed(self, event_id: str) -> Session | None:
        """The event's own feed stream ("Around the event"), once its first post created it."""
        return await self.db.read(lambda r: r.get_event_feed(event_id), pool="pages")

    # -- reads for pages and the API (the web layer reads only through services) -------------

    async def events(self) -> list[Event]:
        return await self.db.read(lambda r: r.list_events(), pool="pages")

    async def sessions(self, event_id: str) -> list[Session]:
        return await self.db.read(lambda r: r.list_sessions(event_id), pool="pages")

    async def live_sessions(self) -> list[Session]:
        return await self.db.read(lambda r: r.list_live_sessions(), pool="pages")

    async def items(
        self, session_id: str, *, kind: str | None = None, newest: int | None = None
    ) -> list[Item]:
        return await self.db.read(lambda r: r.list_items(session_id, kind=kind, newest=newest), pool="pages")

    async def count_items(self, session_id: str) -> int:
        return await self.db.read(lambda r: r.count_items(session_id), pool="pages")

    async def session_state(self, session_id: str) -> str:
        """A session's state, read for a page load (which page to show)."""
        session = await self.db.read(lambda r: r.get_stream_session(session_id), pool="pages")
        if session is None:
            raise NotFound("There is no such session.", code="unknown_session")
        return session.state

    async def session_snapshot(self, session_id: str) -> tuple[Session, Event, list[Item], Reactions]:
        """The session (with epoch and seq), its event, its items and their likes and boosts as
        of that seq, in one snapshot."""

        async def read(r: Unit) -> tuple[Session, Event, list[Item], Reactions]:
            session = await r.get_stream_session(session_id)
            if session is None:
                raise NotFound("There is no such session.", code="unknown_session")
            event = await r.get_event(session.event_id)
            assert event is not None
            return session, event, await r.list_items(session_id), await r.reaction_counts(session_id)

        return await self.db.read(read, pool="pages")

    async def stream_head(self, session_id: str, size: int) -> StreamHead:
        """The session (with epoch and seq), its event, its newest `size` notes and posts
        (oldest first), all its key points and how many notes and posts it holds, in one
        snapshot: the first page of a long stream (web/paging.py)."""

        async def read(r: Unit) -> StreamHead:
            session, event = await _stream_session(r, session_id)
            newest = await r.list_stream_page(session_id, None, size)
            return StreamHead(
                session,
                event,
                newest[::-1],
                await r.list_key_points(session_id),
                await r.count_stream_upto(session_id, None),
                await r.reaction_counts(session_id),
            )

        return await self.db.read(read, pool="pages")

    async def stream_page(
        self, session_id: str, before: int, size: int
    ) -> tuple[Session, list[Item], Reactions]:
        """The session, up to `size` notes and posts placed before item `before` (oldest first)
        and the likes and boosts, in one snapshot (the session's seq says what it reflects)."""

        async def read(r: Unit) -> tuple[Session, list[Item], Reactions]:
            session = await r.get_stream_session(session_id)
            if session is None:
                raise NotFound("There is no such session.", code="unknown_session")
            cursor = await r.get_item(before)
            if cursor is None or cursor.session_id != session_id:
                raise BadRequest(
                    f"before={before} is not an item of this session", code="invalid_field", field="before"
                )
            items = (await r.list_stream_page(session_id, before, size))[::-1]
            return session, items, await r.reaction_counts(session_id)

        return await self.db.read(read, pool="pages")

    async def stream_numbered(
        self, session_id: str, first: int, size: int
    ) -> tuple[Session, Event, list[Item], int, Reactions]:
        """A numbered page: the session, its event, `size` notes and posts from the `first`-th
        from the oldest (oldest first), how many there are in all and the likes and boosts, in
        one snapshot."""

        async def read(r: Unit) -> tuple[Session, Event, list[Item], int, Reactions]:
            session, event = await _stream_session(r, session_id)
            items = await r.list_stream_numbered(session_id, first, size)
            total = await r.count_stream_upto(session_id, None)
            return session, event, items, total, await r.reaction_counts(session_id)

        return await self.db.read(read, pool="pages")

    async def stream_place(self, session_id: str, item_id: int) -> tuple[Session, Item, int, int]:
        """Where an item stands: the session, the item (deleted ones too), how many notes and
        posts are placed at or before it, and how many there are in all."""

        async def read(r: Unit) -> tuple[Session, Item, int, int]:
            session = await r.get_stream_session(session_id)
            item = await r.get_item(item_id)
            if session is None or item is None or item.session_id != session_id:
                raise NotFound("There is no such item in this session.", code="unknown_item")
            return (
                session,
                item,
                await r.count_stream_upto(session_id, item_id),
                await r.count_stream_upto(session_id, None),
            )

        return await self.db.read(read, pool="pages")

    async def media(self, media_id: str) -> tuple[str, bytes] | None:
        return await self.db.read(lambda r: r.get_media(media_id), pool="pages")

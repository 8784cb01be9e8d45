"""Finding a session in a big programme (a congress lists ~1,000 talks over four days in dozens of
rooms): the day, room, track and words a page is narrowed to, and what is on now and next at the
venue. Used by the programme, the organiser's event page and the note-taker's choice of session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.datastructures import QueryParams

from liveblog.models import Session

# A list longer than this is shown one day at a time (today at the venue first, while the event
# runs): 38C3's busiest day is ~300 talks, ~400 KB of programme; all four days were 1.5 MB.
ONE_DAY_AT_A_TIME = 150
# A room grid wider than this many rooms is unreadable (38C3 has ~50 rooms, ~20 px a column):
# the programme lists such days by start time instead, each card naming its room.
GRID_ROOMS = 6
# A programme this short is read at a glance: its pages offer no find form (days still link).
FIND_FROM = 20
FILTERS = ("day", "room", "track", "q")


@dataclass(frozen=True)
class Listing:
    sessions: list[Session]  # those shown, in programme order
    matched: int  # sessions matching room, track and words, on any day
    total: int  # sessions of the event
    days: list[str]  # the days the event's sessions fall on
    day: str  # the day shown; "" for every day
    rooms: list[str]
    tracks: list[str]
    room: str = ""
    track: str = ""
    q: str = ""
    today: str = ""  # the venue's date now
    on_now: tuple[Session, ...] = ()
    up_next: tuple[Session, ...] = ()
    now_slot: str = ""  # the last start time so far today among those shown ('14:30'), if any

    @property
    def narrowed(self) -> bool:
        return bool(self.room or self.track or self.q)

    @property
    def offers_finding(self) -> bool:
        return self.total > FIND_FROM or self.narrowed

    @property
    def running(self) -> bool:
        """Today is one of the programme's days: 'on now' and 'next' mean something."""
        return self.today in self.days

    @property
    def every_day_offered(self) -> bool:
        return self.matched <= ONE_DAY_AT_A_TIME

    @staticmethod
    def day_name(day: str) -> str:
        return day_label(day, short=True)

    def href(self, **change: str) -> str:
        """This listing's query string with `change` applied (an empty value drops the filter)."""
        values = {name: getattr(self, name) for name in FILTERS} | change
        query = urlencode([(k, v) for k, v in values.items() if v])
        return f"?{query}" if query else "?"


def day_label(day: str, *, short: bool = False) -> str:
    """'2026-05-14' -> 'Thursday 14 May 2026', or 'Thu 14 May' (English, like the interface)."""
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return day
    return f"{d:%a} {d.day} {d:%b}" if short else f"{d:%A} {d.day} {d:%B %Y}"


def venue_now(zone: str) -> str:
    """The venue's wall-clock time, as sessions store theirs ('2026-05-14T09:30')."""
    return datetime.now(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def _matches(s: Session, room: str, track: str, words: list[str]) -> bool:
    if room and s.room != room:
        return False
    if track and track not in s.tags:
        return False
    text = " ".join((s.title, s.room, *s.speakers, *s.tags)).casefold()
    return all(w in text for w in words)


def listing(sessions: list[Session], params: QueryParams, zone: str) -> Listing:
    """The sessions a page shows for its query (?day=&room=&track=&q=), with what is on now.

    Filters that name nothing of this programme are dropped. With no day asked for, a list
    longer than ONE_DAY_AT_A_TIME shows one day: today while the event runs, else the first."""
    now = venue_now(zone)
    today = now[:10]
    days = sorted({s.starts_at[:10] for s in sessions})
    rooms = sorted({s.room for s in sessions if s.room}, key=str.casefold)
    tracks = sorted({t for s in sessions for t in s.tags}, key=str.casefold)
    room = params.get("room", "") if params.get("room", "") in rooms else ""
    track = params.get("track", "") if params.get("track", "") in tracks else ""
    q = " ".join(params.get("q", "").split())[:200]
    words = q.casefold().split()
    matched = [s for s in sessions if _matches(s, room, track, words)]
    day = params.get("day", "")
    if day not in days:
        day = ""
        if len(matched) > ONE_DAY_AT_A_TIME:
            day = today if today in days else days[0]
    shown = [s for s in matched if s.starts_at.startswith(day)] if day else matched
    running = [s for s in matched if not s.cancelled]
    on_now = tuple(s for s in running if s.starts_at <= now < s.ends_at)
    later = [s.starts_at for s in running if s.starts_at > now and s.starts_at[:10] == today]
    up_next = tuple(s for s in running if later and s.starts_at == min(later))
    started = [s.starts_at[11:16] for s in shown if s.starts_at[:10] == today and s.starts_at <= now]
    return Listing(
        sessions=shown,
        matched=len(matched),
        total=len(sessions),
        days=days,
        day=day,
        rooms=rooms,
        tracks=tracks,
        room=room,
        track=track,
        q=q,
        today=today,
        on_now=on_now,
        up_next=up_next,
        now_slot=max(started, default=""),
    )

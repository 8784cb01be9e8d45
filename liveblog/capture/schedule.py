"""Programme files as untrusted input: the frab/pretalx schedule (schedule.xml, schedule.json, as
published by pretalx, frab, FOSDEM and the CCC events; c3voc's schema) and iCalendar (.ics).

Each is read into `Entry`s: one per talk, keyed by the source's guid (frab, pretalx) or UID
(iCalendar), with times converted to the venue's wall clock (archive.timezone). Anything wrong
is refused with a `ScheduleError` naming the entry and the field; nothing is written here
(programme.py plans and applies an import). docs/programme.md describes the mapping.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nh3
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from liveblog.errors import BadRequest

# Bounds on what one file may bring: the largest real programmes (38C3: ~1,000 talks, 2 MB of
# XML) fit with room to spare; a file past them is a mistake or an attack.
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ENTRIES = 3000
# A recurring entry (RRULE, RDATE) is expanded from its first date, at most this many times (the
# preview shows the event's days growing if its occurrences reach past them).
MAX_OCCURRENCES = 200
DESCRIPTION_CHARS = 5000  # sessions.description's limit (programme.session_fields)
TITLE_CHARS = 200
_MINUTES = re.compile(r"^(\d{1,3}):(\d{2})(?::(\d{2}))?$")


# The formats read, as the preview names them.
FORMAT_NAMES = {
    "frab-xml": "frab/pretalx schedule.xml",
    "frab-json": "frab/pretalx schedule.json",
    "ics": "iCalendar",
    "sessionize": "Sessionize JSON",
    "csv": "spreadsheet CSV",
}
# What each format calls an entry's id, for the error naming two entries that share one.
UID_FIELDS = {"ics": "UID", "sessionize": "id", "csv": "id"}


class ScheduleError(BadRequest):
    """The file cannot be imported; `field` names what is wrong (e.g. `event[12].date`)."""

    code = "invalid_schedule"


@dataclass(frozen=True)
class Entry:
    """One session as the file describes it, times in the venue's wall clock."""

    uid: str
    title: str
    starts_at: str  # "2026-05-14T09:30"
    ends_at: str
    room: str = ""
    speakers: tuple[str, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = ()  # the track
    # Set on the session only when the file gives them (None: left as the session has them).
    hashtags: tuple[str, ...] | None = None  # what social feeds collect (a spreadsheet's column)
    recording_url: str | None = None  # Sessionize's recordingUrl


@dataclass
class Schedule:
    """What a file holds: its talks, and the days they span (venue dates)."""

    format: str  # one of FORMAT_NAMES
    title: str
    entries: list[Entry]
    notes: list[str] = field(default_factory=list)  # what was shortened or left out, for the preview

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES.get(self.format, self.format)

    @property
    def first_day(self) -> str:
        return min(e.starts_at[:10] for e in self.entries)

    @property
    def last_day(self) -> str:
        return max(e.starts_at[:10] for e in self.entries)


def parse_schedule(data: bytes, venue_zone: str, filename: str = "") -> Schedule:
    """Read a programme file (format told by its content): frab/pretalx XML or JSON, Sessionize's
    JSON, iCalendar, or a spreadsheet's CSV."""
    if len(data) > MAX_FILE_BYTES:
        raise ScheduleError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB", field="file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScheduleError(
            f"the file is not UTF-8 text (byte {exc.start}); from Excel, save it as 'CSV UTF-8'", field="file"
        ) from None
    zone = ZoneInfo(venue_zone)
    head = text.lstrip()[:200]
    if head.startswith("BEGIN:VCALENDAR"):
        from liveblog.capture.calendar import parse_ics

        schedule = parse_ics(text, zone)
    elif head.startswith(("{", "[")):
        schedule = _parse_json(text, zone)
    elif head.startswith("<"):
        schedule = _parse_frab_xml(text, zone)
    else:
        from liveblog.capture.spreadsheet import parse_csv

        found = parse_csv(text, zone)
        if found is None:
            raise ScheduleError(
                "not a programme file: expected a frab/pretalx schedule.xml or schedule.json, Sessionize's "
                "JSON, an iCalendar .ics, or a spreadsheet's CSV whose header row names at least a title, "
                "a start and an end or duration column" + (f" ({filename})" if filename else ""),
                field="file",
            )
        schedule = found
    if not schedule.entries:  # the notes say why: entries left out (all-day, service sessions...)
        reasons = "; ".join(schedule.notes[:5]) + (
            f"; and {len(schedule.notes) - 5} more" if len(schedule.notes) > 5 else ""
        )
        raise ScheduleError("the file holds no sessions" + (f": {reasons}" if reasons else ""), field="file")
    if len(schedule.entries) > MAX_ENTRIES:
        raise ScheduleError(f"the file holds more than {MAX_ENTRIES} sessions", field="file")
    uids: dict[str, Entry] = {}
    for entry in schedule.entries:
        if entry.uid in uids:
            raise ScheduleError(
                f"two sessions share the id {entry.uid!r} ({uids[entry.uid].title!r} and {entry.title!r}): "
                "each needs its own, so that a re-import finds it again",
                field=UID_FIELDS.get(schedule.format, "guid"),
            )
        uids[entry.uid] = entry
    return schedule


# -- shared checks -------------------------------------------------------------------------------


def clean_text(value: Any, where: str, *, limit: int | None = None) -> str:
    """Plain text from a file's field: HTML tags dropped (FOSDEM's descriptions are HTML),
    entities decoded, control characters refused, white space tidied."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ScheduleError(f"{where} must be text", field=where)
    if "<" in value:
        value = html.unescape(nh3.clean(value, tags=set()))
    if any(ord(c) < 32 and c not in "\n\t\r" for c in value) or "\ufffe" in value:
        raise ScheduleError(f"{where} holds control characters", field=where)
    value = re.sub(r"[ \t]+", " ", value.replace("\r\n", "\n")).strip()
    if limit is not None and len(value) > limit:
        raise ScheduleError(f"{where} is longer than {limit} characters", field=where)
    return value


def venue_time(moment: datetime, zone: ZoneInfo) -> str:
    """An aware time as the venue's wall clock; a naive one is the venue's already (floating)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M")


def duration_of(value: Any, where: str) -> timedelta:
    """frab's durations: "00:30", "01:30:00", "90:00" (hours may pass 24 in a camp's workshops)."""
    match = _MINUTES.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ScheduleError(f"{where} must be a duration like 00:45, not {value!r}", field=where)
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if minutes > 59 or seconds > 59:
        raise ScheduleError(f"{where} must be a duration like 00:45, not {value!r}", field=where)
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def describe(abstract: str, description: str, title: str, notes: list[str]) -> str:
    """A session's description from an abstract and a longer text, within the session's limit."""
    if abstract and description and not description.startswith(abstract):
        text = f"{abstract}\n\n{description}"
    else:
        text = description or abstract
    if len(text) > DESCRIPTION_CHARS:
        text = (
            abstract
            if abstract and len(abstract) <= DESCRIPTION_CHARS
            else text[: DESCRIPTION_CHARS - 1] + "…"
        )
        notes.append(f"{title!r}: the description was shortened to {DESCRIPTION_CHARS} characters")
    return text


def fit_title(title: str, description: str, notes: list[str]) -> tuple[str, str]:
    """A title over the session's limit is shortened, and kept whole at the top of the
    description (real calendars put a paragraph in SUMMARY)."""
    if len(title) <= TITLE_CHARS:
        return title, description
    notes.append(
        f"{title[:60]!r}…: the title was shortened to {TITLE_CHARS} characters (kept whole in the description)"
    )
    return title[: TITLE_CHARS - 1] + "…", f"{title}\n\n{description}".strip()[:DESCRIPTION_CHARS]


def make_entry(
    uid: str, title: str, start: datetime, length: timedelta, zone: ZoneInfo, where: str, **rest: Any
) -> Entry:
    if not uid:
        raise ScheduleError(f"{where} has no guid", field=f"{where}.guid")
    if len(uid) > 255:
        raise ScheduleError(f"{where}.guid is longer than 255 characters", field=f"{where}.guid")
    if not title:
        raise ScheduleError(f"{where} has no title", field=f"{where}.title")
    if length < timedelta(0) or length > timedelta(days=14):
        raise ScheduleError(f"{where}.duration must be between 0 and 14 days", field=f"{where}.duration")
    title, rest["description"] = fit_title(title, rest.get("description", ""), rest.pop("notes"))
    return Entry(
        uid=uid,
        title=title,
        starts_at=venue_time(start, zone),
        ends_at=venue_time(start + length, zone),
        **rest,
    )


def moment(value: Any, where: str, *, zone: ZoneInfo | None = None, field: str | None = None) -> datetime:
    """An ISO date and time from a file; without an offset it is in `zone`, or naive (the venue's
    wall clock) when no zone is given. `where` names it in the message, `field` for the answer."""
    if not isinstance(value, str):
        raise ScheduleError(
            f"{where} must be a date and time like 2026-05-14T09:30:00+02:00, not {value!r}",
            field=field or where,
        )
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(
            f"{where} must be a date and time like 2026-05-14T09:30:00+02:00, not {value!r}",
            field=field or where,
        ) from None
    if when.tzinfo is None and zone is not None:
        when = when.replace(tzinfo=zone)
    return when


def _source_zone(name: Any) -> ZoneInfo | None:
    if isinstance(name, str) and name.strip():
        try:
            return ZoneInfo(name.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(
                f"time_zone_name {name!r} is not a time zone", field="conference.time_zone_name"
            ) from None
    return None


def _start(date_value: Any, day: Any, start: Any, where: str, zone: ZoneInfo | None) -> datetime:
    """An entry's start: its `date` (an ISO time with offset, frab and pretalx since 2016), else
    its day's date and `start` in the conference's zone (older pentabarf files)."""
    if date_value:
        return moment(date_value, f"{where}.date", zone=zone)
    if not isinstance(day, str) or not isinstance(start, str):
        raise ScheduleError(f"{where} has neither a date nor a day and start", field=f"{where}.date")
    try:
        when = datetime.combine(date.fromisoformat(day), time.fromisoformat(start.strip()))
    except ValueError:
        raise ScheduleError(
            f"{where}.start must be a time like 09:30, not {start!r}", field=f"{where}.start"
        ) from None
    return when.replace(tzinfo=zone) if zone else when


# -- frab / pretalx XML ----------------------------------------------------------------------------


def _child_text(element: Element, name: str) -> str | None:
    child = element.find(name)
    return None if child is None else (child.text or "")


def _parse_frab_xml(text: str, zone: ZoneInfo) -> Schedule:
    try:
        # defusedxml: no entity expansion (billion laughs), no external entities or DTDs.
        root = fromstring(text.encode(), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ScheduleError(
            f"the XML uses a forbidden construct ({type(exc).__name__})", field="file"
        ) from None
    except ParseError as exc:
        raise ScheduleError(f"the file is not well-formed XML: {exc}", field="file") from None
    if root.tag != "schedule":
        raise ScheduleError(f"the XML's root element is <{root.tag}>, not <schedule>", field="schedule")
    conference = root.find("conference")
    if conference is None:
        raise ScheduleError("the schedule has no <conference>", field="conference")
    source_zone = _source_zone(_child_text(conference, "time_zone_name"))
    notes: list[str] = []
    entries = []
    n = 0
    for day in root.findall("day"):
        for room in day.findall("room"):
            for event in room.findall("event"):
                n += 1
                where = f"event[{n}]"
                title = clean_text(_child_text(event, "title"), f"{where}.title")
                start = _start(
                    _child_text(event, "date"),
                    day.get("date"),
                    _child_text(event, "start"),
                    where,
                    source_zone,
                )
                persons = event.find("persons")
                speakers = tuple(
                    clean_text(p.text, f"{where}.persons", limit=100)
                    for p in (persons if persons is not None else [])
                )
                track = clean_text(_child_text(event, "track"), f"{where}.track", limit=100)
                entries.append(
                    make_entry(
                        (event.get("guid") or "").strip(),
                        title,
                        start,
                        duration_of(_child_text(event, "duration"), f"{where}.duration"),
                        zone,
                        where,
                        room=clean_text(
                            _child_text(event, "room") or room.get("name"), f"{where}.room", limit=200
                        ),
                        speakers=tuple(s for s in speakers if s)[:20],
                        description=describe(
                            clean_text(_child_text(event, "abstract"), f"{where}.abstract"),
                            clean_text(_child_text(event, "description"), f"{where}.description"),
                            title,
                            notes,
                        ),
                        tags=(track,) if track else (),
                        notes=notes,
                    )
                )
    title = clean_text(_child_text(conference, "title"), "conference.title", limit=TITLE_CHARS)
    return Schedule("frab-xml", title, entries, notes)


# -- frab / pretalx JSON ---------------------------------------------------------------------------


def _parse_json(text: str, zone: ZoneInfo) -> Schedule:
    """frab/pretalx's schedule.json, or Sessionize's JSON (told by their shapes)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ScheduleError(f"the file is not valid JSON: {exc}", field="file") from None
    from liveblog.capture.sessionize import is_sessionize, parse_sessionize

    if is_sessionize(data):
        return parse_sessionize(data, zone)
    return _parse_frab_json(data, zone)


def _parse_frab_json(data: Any, zone: ZoneInfo) -> Schedule:
    schedule = data.get("schedule") if isinstance(data, dict) else None
    conference = schedule.get("conference") if isinstance(schedule, dict) else None
    if not isinstance(conference, dict):
        raise ScheduleError(
            'expected {"schedule": {"conference": ...}} (a frab/pretalx schedule.json) or Sessionize\'s '
            '{"sessions": [...], ...} (its API\'s All Data)',
            field="schedule.conference",
        )
    days = conference.get("days")
    if not isinstance(days, list):
        raise ScheduleError("schedule.conference.days must be a list", field="schedule.conference.days")
    source_zone = _source_zone(conference.get("time_zone_name"))
    notes: list[str] = []
    entries = []
    n = 0
    for d, day in enumerate(days):
        rooms = day.get("rooms") if isinstance(day, dict) else None
        if not isinstance(rooms, dict):
            raise ScheduleError(f"days[{d}].rooms must be an object of rooms", field=f"days[{d}].rooms")
        for room_name, events in rooms.items():
            if not isinstance(events, list):
                raise ScheduleError(
                    f"days[{d}].rooms[{room_name!r}] must be a list", field=f"days[{d}].rooms"
                )
            for event in events:
                n += 1
                where = f"event[{n}]"
                if not isinstance(event, dict):
                    raise ScheduleError(f"{where} must be an object", field=where)
                title = clean_text(event.get("title"), f"{where}.title")
                start = _start(event.get("date"), day.get("date"), event.get("start"), where, source_zone)
                persons = event.get("persons") or []
                if not isinstance(persons, list):
                    raise ScheduleError(f"{where}.persons must be a list", field=f"{where}.persons")
                speakers = []
                for p in persons:
                    name = (
                        p.get("public_name") or p.get("full_public_name") or p.get("name")
                        if isinstance(p, dict)
                        else p
                    )
                    speakers.append(clean_text(name, f"{where}.persons", limit=100))
                track = event.get("track")
                if isinstance(track, dict):  # pretalx's newer form: {"name": ..., "color": ...}
                    track = track.get("name")
                track = clean_text(track, f"{where}.track", limit=100)
                guid = event.get("guid")
                entries.append(
                    make_entry(
                        guid.strip() if isinstance(guid, str) else "",
                        title,
                        start,
                        duration_of(event.get("duration"), f"{where}.duration"),
                        zone,
                        where,
                        room=clean_text(event.get("room") or room_name, f"{where}.room", limit=200),
                        speakers=tuple(s for s in speakers if s)[:20],
                        description=describe(
                            clean_text(event.get("abstract"), f"{where}.abstract"),
                            clean_text(event.get("description"), f"{where}.description"),
                            title,
                            notes,
                        ),
                        tags=(track,) if track else (),
                        notes=notes,
                    )
                )
    title = clean_text(conference.get("title"), "conference.title", limit=TITLE_CHARS)
    return Schedule("frab-json", title, entries, notes)

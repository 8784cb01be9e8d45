"""iCalendar (.ics) programmes, read with the `icalendar` package (RFC 5545): one session per
VEVENT, keyed by its UID. TZID times are read in their zone, UTC times as UTC, and floating
times (no zone) as the venue's wall clock. A recurring VEVENT (RRULE, with EXDATE and
RECURRENCE-ID overrides) becomes one session per occurrence, keyed `UID/occurrence start`.
All-day entries (VALUE=DATE) and cancelled ones (STATUS:CANCELLED) are left out, and the
preview says so."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import Calendar
from icalendar.cal import Component

from liveblog.capture.schedule import (
    MAX_ENTRIES,
    MAX_OCCURRENCES,
    TITLE_CHARS,
    Entry,
    Schedule,
    ScheduleError,
    clean_text,
    describe,
    fit_title,
    venue_time,
)


def parse_ics(text: str, zone: ZoneInfo) -> Schedule:
    try:
        calendar = Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise ScheduleError(f"the file is not a valid iCalendar file: {exc}", field="file") from None
    if isinstance(calendar, list):  # several VCALENDARs in one file: read the first
        calendar = calendar[0]
    events = list(calendar.walk("VEVENT"))
    if len(events) > MAX_ENTRIES:
        raise ScheduleError(f"the file holds more than {MAX_ENTRIES} events", field="file")
    notes: list[str] = []
    # Overrides of single occurrences of a recurring event, by UID and the start they replace.
    overrides: dict[tuple[str, str], Component] = {}
    for n, event in enumerate(events, start=1):
        if event.get("RECURRENCE-ID") is not None:
            uid = _uid(event, n)
            overrides[(uid, venue_time(_when(event, "RECURRENCE-ID", n), zone))] = event
    entries: list[Entry] = []
    for n, event in enumerate(events, start=1):
        if event.get("RECURRENCE-ID") is not None:
            continue
        where = f"VEVENT[{n}]"
        if getattr(event, "errors", None):
            prop, message = event.errors[0]
            raise ScheduleError(f"{where}.{prop} cannot be read: {message}", field=f"{where}.{prop}")
        uid = _uid(event, n)
        title = clean_text(str(event.get("SUMMARY", "")), f"{where}.SUMMARY")
        start_value = event.decoded("DTSTART") if event.get("DTSTART") is not None else None
        if start_value is None:
            raise ScheduleError(f"{where} has no DTSTART", field=f"{where}.DTSTART")
        if not isinstance(start_value, datetime):  # VALUE=DATE: an all-day entry
            notes.append(f"{title!r}: an all-day entry, left out (sessions have times)")
            continue
        start = _when(event, "DTSTART", n)
        length = _length(event, start, n)
        if not title:  # real calendars have empty slots ("SUMMARY:" alone): not a session
            notes.append(
                f"{where} ({venue_time(start, zone).replace('T', ' ')}) has no title (SUMMARY), left out"
            )
            continue
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            notes.append(f"{title!r}: cancelled in the calendar, left out")
            continue
        rule = event.get("RRULE")
        starts = [start] if rule is None else _occurrences(event, start, n, notes, title)
        for occurrence in starts:
            key = uid if rule is None else f"{uid}/{venue_time(occurrence, zone)}"
            source = overrides.get((uid, venue_time(occurrence, zone)), event) if rule is not None else event
            if source is not event:
                if str(source.get("STATUS", "")).upper() == "CANCELLED":
                    continue
                occurrence = _when(source, "DTSTART", n)
                length = _length(source, occurrence, n)
            entries.append(_entry(source, key, occurrence, length, zone, where, notes))
    return Schedule(
        "ics",
        clean_text(str(calendar.get("X-WR-CALNAME", "")), "X-WR-CALNAME", limit=TITLE_CHARS),
        entries,
        notes,
    )


def _uid(event: Component, n: int) -> str:
    uid = str(event.get("UID", "")).strip()
    if not uid:
        raise ScheduleError(
            f"VEVENT[{n}] has no UID: a re-import could not find it again", field=f"VEVENT[{n}].UID"
        )
    if len(uid) > 200:
        raise ScheduleError(f"VEVENT[{n}].UID is longer than 200 characters", field=f"VEVENT[{n}].UID")
    return uid


def _when(event: Component, name: str, n: int) -> datetime:
    try:
        value = event.decoded(name)
    except (ValueError, KeyError) as exc:
        raise ScheduleError(
            f"VEVENT[{n}].{name} cannot be read: {exc}", field=f"VEVENT[{n}].{name}"
        ) from None
    if isinstance(value, datetime):
        tzid = getattr(event.get(name), "params", {}).get("TZID")
        if tzid and value.tzinfo is None:  # icalendar leaves a time naive when it cannot place its zone
            raise ScheduleError(
                f"VEVENT[{n}].{name} is in the zone {tzid!r}, which is neither a known time zone nor defined "
                "in the file (VTIMEZONE)",
                field=f"VEVENT[{n}].{name}",
            )
        return value  # aware (TZID or UTC) or floating (naive: the venue's wall clock)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    raise ScheduleError(f"VEVENT[{n}].{name} is not a date and time", field=f"VEVENT[{n}].{name}")


def _length(event: Component, start: datetime, n: int) -> timedelta:
    if event.get("DTEND") is not None:
        end = _when(event, "DTEND", n)
        if (end.tzinfo is None) != (start.tzinfo is None):
            raise ScheduleError(
                f"VEVENT[{n}]: DTSTART and DTEND must both have a zone or both float",
                field=f"VEVENT[{n}].DTEND",
            )
        length = end - start
    elif event.get("DURATION") is not None:
        length = event.decoded("DURATION")
    else:
        length = timedelta(0)
    if not isinstance(length, timedelta) or length < timedelta(0) or length > timedelta(days=14):
        raise ScheduleError(
            f"VEVENT[{n}] must end after it starts, within 14 days", field=f"VEVENT[{n}].DTEND"
        )
    return length


def _occurrences(event: Component, start: datetime, n: int, notes: list[str], title: str) -> list[datetime]:
    """The starts of a recurring event (RRULE, less EXDATE), at most MAX_OCCURRENCES."""
    try:
        text = event["RRULE"].to_ical()
        rule = rrulestr(text.decode() if isinstance(text, bytes) else str(text), dtstart=start)
    except (ValueError, TypeError) as exc:
        raise ScheduleError(f"VEVENT[{n}].RRULE cannot be read: {exc}", field=f"VEVENT[{n}].RRULE") from None
    excluded = set()
    exdates: Any = event.get("EXDATE") or []
    for group in exdates if isinstance(exdates, list) else [exdates]:
        for item in group.dts:
            excluded.add(
                item.dt
                if isinstance(item.dt, datetime)
                else datetime.combine(item.dt, start.time(), start.tzinfo)
            )
    starts: list[datetime] = []
    for occurrence in rule:
        if len(starts) == MAX_OCCURRENCES:
            notes.append(
                f"{title!r}: repeats more than {MAX_OCCURRENCES} times; only the first {MAX_OCCURRENCES} are imported"
            )
            break
        if occurrence not in excluded:
            starts.append(occurrence)
    return starts


def _entry(
    event: Component,
    uid: str,
    start: datetime,
    length: timedelta,
    zone: ZoneInfo,
    where: str,
    notes: list[str],
) -> Entry:
    title = clean_text(str(event.get("SUMMARY", "")), f"{where}.SUMMARY")
    people = [event.get("ORGANIZER"), *_as_list(event.get("ATTENDEE"))]
    speakers = []
    for person in people:
        name = person.params.get("CN") if person is not None and hasattr(person, "params") else None
        if name:
            speakers.append(clean_text(str(name), f"{where}.ORGANIZER", limit=100))
    tags: list[str] = []
    for group in _as_list(event.get("CATEGORIES")):
        tags.extend(
            clean_text(str(c), f"{where}.CATEGORIES", limit=100) for c in getattr(group, "cats", [group])
        )
    description = describe(
        "", clean_text(str(event.get("DESCRIPTION", "")), f"{where}.DESCRIPTION"), title, notes
    )
    title, description = fit_title(title, description, notes)
    return Entry(
        uid=uid,
        title=title,
        starts_at=venue_time(start, zone),
        ends_at=venue_time(start + length, zone),
        room=clean_text(str(event.get("LOCATION", "")), f"{where}.LOCATION", limit=200),
        speakers=tuple(dict.fromkeys(s for s in speakers if s))[:20],
        description=description,
        tags=tuple(dict.fromkeys(t for t in tags if t))[:20],
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]

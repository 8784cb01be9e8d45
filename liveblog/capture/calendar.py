"""iCalendar (.ics) programmes, read with the `icalendar` package (RFC 5545): one session per
VEVENT, keyed by its UID. TZID times are read in their zone (Outlook's Windows names and
Evolution's and Lightning's vendor-prefixed ones included), UTC times as UTC, and floating
times (no zone) as the venue's wall clock. A recurring VEVENT (RRULE and RDATE, less EXDATE,
with RECURRENCE-ID overrides) becomes one session per occurrence, keyed `UID/occurrence start`.
All-day entries (VALUE=DATE) and cancelled ones (STATUS:CANCELLED) are left out, and the
preview says so. A file may hold several VCALENDARs: all are read."""

from __future__ import annotations

import re
import warnings
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import Calendar
from icalendar.cal import Component
from icalendar.error import GloballyUniqueTZIDGuessed

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
    with warnings.catch_warnings():
        # A vendor-prefixed TZID (/mozilla.org/20070129_1/America/New_York) is read as the zone it
        # ends with; icalendar warns, and the preview says so instead (_guessed_zone). The filter
        # is process-wide while the parse runs (in a worker thread): it hides only this warning.
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        return _parse_ics(text, zone)


def _parse_ics(text: str, zone: ZoneInfo) -> Schedule:
    try:
        calendars = Calendar.from_ical(text, multiple=True)
    except (ValueError, IndexError, KeyError) as exc:
        raise ScheduleError(f"the file is not a valid iCalendar file: {exc}", field="file") from None
    if not calendars:
        if "END:VCALENDAR" not in text.upper():
            raise ScheduleError(
                "the calendar is incomplete: it has no END:VCALENDAR (was the file cut short?)", field="file"
            )
        raise ScheduleError("the file holds no calendar (BEGIN:VCALENDAR … END:VCALENDAR)", field="file")
    # Several VCALENDARs in one file (exports concatenated, Mozilla Calendar's own): all are read.
    events = [event for calendar in calendars for event in calendar.walk("VEVENT")]
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
        _check_lines(event, where, notes)
        uid = _uid(event, n)
        title = clean_text(str(event.get("SUMMARY", "")), f"{where}.SUMMARY")
        start_value = event.decoded("DTSTART") if event.get("DTSTART") is not None else None
        if start_value is None:
            raise ScheduleError(f"{where} has no DTSTART", field=f"{where}.DTSTART")
        if not isinstance(start_value, datetime):  # VALUE=DATE: an all-day entry
            notes.append(f"{title!r}: an all-day entry, left out (sessions have times)")
            continue
        start = _when(event, "DTSTART", n)
        _guessed_zone(event, start, where, notes)
        length = _length(event, start, n)
        if not title:  # real calendars have empty slots ("SUMMARY:" alone): not a session
            notes.append(
                f"{where} ({venue_time(start, zone).replace('T', ' ')}) has no title (SUMMARY), left out"
            )
            continue
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            notes.append(f"{title!r}: cancelled in the calendar, left out")
            continue
        recurring = event.get("RRULE") is not None or event.get("RDATE") is not None
        starts = [(start, length)] if not recurring else _occurrences(event, start, length, n, notes, title)
        for occurrence, span in starts:
            key = uid if not recurring else f"{uid}/{venue_time(occurrence, zone)}"
            source = overrides.get((uid, venue_time(occurrence, zone)), event) if recurring else event
            if source is not event:
                if str(source.get("STATUS", "")).upper() == "CANCELLED":
                    continue
                occurrence = _when(source, "DTSTART", n)
                span = _length(source, occurrence, n)
            entries.append(_entry(source, key, occurrence, span, zone, where, notes))
    return Schedule(
        "ics",
        clean_text(str(calendars[0].get("X-WR-CALNAME", "")), "X-WR-CALNAME", limit=TITLE_CHARS),
        entries,
        list(dict.fromkeys(notes)),
    )


_UNREAD_LINE = re.compile(r"could not be parsed into parts: '(.*?)': ")


def _check_lines(event: Component, where: str, notes: list[str]) -> None:
    """The lines icalendar could not read: refused, naming the line, unless it is a vendor's own
    (X-...), which is not read here anyway (Apple's X-APPLE-RADIUS torn off its line)."""
    for prop, message in getattr(event, "errors", None) or []:
        match = _UNREAD_LINE.search(str(message)) if prop is None else None
        line = match[1] if match else None
        name = str(prop) if prop is not None else re.split(r"[;:=]", line or "", maxsplit=1)[0].upper()
        if name.startswith("X-"):
            notes.append(
                f"{where}: the line {line!r} cannot be read, skipped" if line else f"{where}.{name} skipped"
            )
            continue
        if line is not None:
            raise ScheduleError(f"{where}: the line {line!r} cannot be read", field=f"{where}.{name}")
        if prop is None:
            raise ScheduleError(f"{where} has a line that cannot be read: {message}", field=where)
        raise ScheduleError(f"{where}.{prop} cannot be read: {message}", field=f"{where}.{prop}")


def _guessed_zone(event: Component, start: datetime, where: str, notes: list[str]) -> None:
    """A vendor-prefixed TZID read as the zone its name ends with: the preview says which."""
    tzid = str(getattr(event.get("DTSTART"), "params", {}).get("TZID") or "")
    read_as = getattr(start.tzinfo, "key", None)
    if tzid.startswith("/") and read_as and read_as != tzid:
        notes.append(f"{where}: the zone {tzid!r} was read as {read_as!r}")


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


def _occurrences(
    event: Component, start: datetime, length: timedelta, n: int, notes: list[str], title: str
) -> list[tuple[datetime, timedelta]]:
    """The starts and lengths of a recurring event (RRULE and RDATE, less EXDATE), at most
    MAX_OCCURRENCES. An RDATE may be a PERIOD, with its own end or duration."""
    rule: Any = [start]
    if event.get("RRULE") is not None:
        try:
            text = event["RRULE"].to_ical()
            rule = rrulestr(text.decode() if isinstance(text, bytes) else str(text), dtstart=start)
        except (ValueError, TypeError) as exc:
            raise ScheduleError(
                f"VEVENT[{n}].RRULE cannot be read: {exc}", field=f"VEVENT[{n}].RRULE"
            ) from None
    excluded = {moment for moment, _ in _dates(event, "EXDATE", start, length)}
    added = [
        (moment, span) for moment, span in _dates(event, "RDATE", start, length) if moment not in excluded
    ]
    starts: list[tuple[datetime, timedelta]] = []
    for occurrence in rule:
        if len(starts) == MAX_OCCURRENCES:
            notes.append(
                f"{title!r}: repeats more than {MAX_OCCURRENCES} times; only the first {MAX_OCCURRENCES} are imported"
            )
            break
        if occurrence not in excluded:
            starts.append((occurrence, length))
    known = {moment for moment, _ in starts}
    starts += [(moment, span) for moment, span in added if moment not in known]
    return sorted(starts, key=lambda pair: pair[0])[:MAX_OCCURRENCES]


def _dates(
    event: Component, name: str, start: datetime, length: timedelta
) -> list[tuple[datetime, timedelta]]:
    """An EXDATE's or RDATE's times, in the start's zone when they are dates, each with its length
    (a PERIOD's own, else the event's)."""
    found: list[tuple[datetime, timedelta]] = []
    values: Any = event.get(name) or []
    for group in values if isinstance(values, list) else [values]:
        for item in getattr(group, "dts", []):
            value = item.dt
            span = length
            if isinstance(value, tuple):  # a PERIOD: (start, end) or (start, duration)
                value, until = value
                span = until if isinstance(until, timedelta) else until - value
            if not isinstance(value, datetime):
                value = datetime.combine(value, start.time(), start.tzinfo)
            elif value.tzinfo is None and start.tzinfo is not None:  # as DTSTART, which RFC 5545 asks
                value = value.replace(tzinfo=start.tzinfo)
            elif value.tzinfo is not None and start.tzinfo is None:
                value = value.replace(tzinfo=None)  # its wall clock, as the floating DTSTART's
            found.append((value, span))
    return found


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

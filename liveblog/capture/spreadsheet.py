"""Programmes kept in a spreadsheet (Google Sheets, Excel, LibreOffice) and saved as CSV: a
header row naming the columns (title, date, start, end or duration, room, speakers, ...), one
session a row, times the venue's wall clock. Commas, semicolons (Excel in many locales) or tabs;
a byte-order mark and blank rows are fine. A date such as 08/12/2026 is read only when the file
says which of day and month comes first. docs/programme.md describes the columns.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from liveblog.capture.programme import session_fields
from liveblog.capture.schedule import (
    Entry,
    Schedule,
    ScheduleError,
    clean_text,
    describe,
    duration_of,
    make_entry,
)
from liveblog.errors import BadRequest

# The names organisers give their columns (lower case, spaces for _ and -), by what they hold.
COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("title", "session", "session title", "session name", "talk", "talk title", "subject", "topic"),
    "date": ("date", "day", "start date"),
    "start": ("start", "start time", "starts", "starts at", "begin", "begins", "from", "time"),
    "end": ("end", "end time", "ends", "ends at", "finish", "until", "to"),
    "end date": ("end date",),
    "duration": ("duration", "length", "minutes", "mins"),
    "room": ("room", "location", "venue", "stage", "hall", "place"),
    "track": ("track",),
    "speakers": (
        "speakers",
        "speaker",
        "presenter",
        "presenters",
        "author",
        "authors",
        "people",
        "host",
        "hosts",
    ),
    "description": ("description", "abstract", "summary", "details", "notes", "about"),
    "tags": ("tags", "tag", "keywords", "topics", "categories", "category"),
    "hashtags": ("hashtags", "hashtag", "social hashtags"),
    "id": ("id", "uid", "guid", "session id", "code", "ref", "reference", "key"),
    "all day": ("all day", "all day event"),
}
_BY_NAME = {name: key for key, names in COLUMNS.items() for name in names}
HEADER_SEARCH_ROWS = 10  # a sheet may have a title row or two above its header
MONTHS = {
    name: n
    for n, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_ISO_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})$")  # 08.12.2026: always day first
_SLASHED = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{2}|\d{4})$")  # 08/12/2026: day or month first?
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})(?::(\d{2}))?\s*([ap])?\.?\s*(?:m\.?)?$", re.IGNORECASE)
_TIME_AT_END = re.compile(
    r"(?:^|[T\s,]+)(\d{1,2}[:.]\d{2}(?::\d{2})?(?:\.\d+)?\s*(?:[ap]\.?\s*m\.?)?)$", re.IGNORECASE
)
_DURATION = re.compile(
    r"^(?:(\d+)\s*h(?:ours?|rs?)?)?\s*(?:(\d+)\s*(?:m(?:in(?:ute)?s?)?)?)?$", re.IGNORECASE
)


@dataclass(frozen=True)
class Header:
    row: int  # the spreadsheet's row number of the header
    columns: dict[str, int]  # what a column holds -> its index
    order: str | None  # "dmy" or "mdy" when a column's name says so, e.g. "Date (DD/MM/YYYY)"
    ignored: tuple[str, ...]


def parse_csv(text: str, zone: ZoneInfo) -> Schedule | None:
    """The file's sessions, or None when it has no header row naming a title and a start (not
    a spreadsheet's programme)."""
    lines = text.splitlines()
    delimiter = None
    if lines and lines[0].lower().startswith("sep=") and len(lines[0].strip()) == 5:
        delimiter = lines[0].strip()[4]  # Excel's own hint line: "sep=;"
        text = text.split("\n", 1)[1] if "\n" in text else ""
        lines = lines[1:]
    first = next((line for line in lines if line.strip()), "")
    if delimiter is None:
        delimiter = max(",;\t", key=first.count)
    try:
        rows = list(csv.reader(text.splitlines(keepends=True), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise ScheduleError(f"the CSV cannot be read: {exc}", field="file") from None
    header = _header(rows)
    if header is None:
        return None
    notes: list[str] = []
    if header.ignored:
        notes.append(f"columns not read: {', '.join(header.ignored)}")
    order = header.order or _date_order(rows, header)
    entries: list[Entry] = []
    made_where: dict[str, int] = {}
    for n, row in enumerate(rows[header.row :], start=header.row + 1):
        cells = {key: (row[i].strip() if i < len(row) else "") for key, i in header.columns.items()}
        if not any(cells.values()):
            continue  # a blank row
        entry = _row_entry(cells, n, order, zone, notes)
        if entry is None:
            continue
        if "id" not in header.columns and entry.uid in made_where:
            raise ScheduleError(
                f"rows {made_where[entry.uid]} and {n} have the same title and start ({entry.title!r}, "
                f"{entry.starts_at.replace('T', ' ')}): add an id column, so that a re-import can tell them apart",
                field=f"row[{n}].title",
            )
        made_where[entry.uid] = n
        entries.append(entry)
    if "id" not in header.columns and entries:
        notes.append(
            "the file has no id column: a re-import finds each session by its title and start, so a "
            "session renamed or moved in the sheet is cancelled and created anew (add an id column to keep it)"
        )
    return Schedule("csv", "", entries, notes)


def _normalise(name: str) -> tuple[str, str]:
    """A column's name as looked up, and its hint in brackets: "Date (DD/MM/YYYY)" -> ("date", "dd/mm/yyyy")."""
    name = name.strip().strip("\ufeff").lower()
    hint = " ".join(re.findall(r"[(\[]([^)\]]*)[)\]]", name))
    name = re.sub(r"[(\[][^)\]]*[)\]]", " ", name)
    return " ".join(re.sub(r"[_\-:]+", " ", name).split()), hint


def _header(rows: list[list[str]]) -> Header | None:
    for n, row in enumerate(rows[:HEADER_SEARCH_ROWS], start=1):
        columns: dict[str, int] = {}
        ignored: list[str] = []
        order = None
        for i, cell in enumerate(row):
            name, hint = _normalise(cell)
            # "Room / Track", "Speaker or host": the first name known.
            key = next(
                (_BY_NAME[part] for part in re.split(r"\s*(?:/| or )\s*", name) if part in _BY_NAME), None
            )
            key = _BY_NAME.get(name, key)
            if key is None or key in columns:
                if cell.strip():
                    ignored.append(cell.strip())
                continue
            columns[key] = i
            compact = hint.replace(" ", "")
            if re.search(r"d{1,2}[/.-]m{1,2}", compact):
                order = "dmy"
            elif re.search(r"m{1,2}[/.-]d{1,2}", compact):
                order = "mdy"
        if "title" in columns and ("start" in columns or "date" in columns):
            if "end" not in columns and "duration" not in columns:
                raise ScheduleError(
                    f"the header (row {n}) has no end or duration column: each session needs one",
                    field="header",
                )
            if "start" not in columns:
                raise ScheduleError(f"the header (row {n}) has no start column", field="header")
            return Header(n, columns, order, tuple(ignored))
    return None


def _date_order(rows: list[list[str]], header: Header) -> str | None:
    """Which of day and month comes first in the file's 08/12/2026 dates, from the dates that
    can only be read one way (a 25 can only be a day); None when the file has none."""
    day_first: tuple[int, str] | None = None
    month_first: tuple[int, str] | None = None
    for n, row in enumerate(rows[header.row :], start=header.row + 1):
        for key in ("date", "start", "end", "end date"):
            i = header.columns.get(key)
            if i is None or i >= len(row):
                continue
            match = _SLASHED.match(_split_time(row[i].strip())[0])
            if match is None:
                continue
            first, second = int(match[1]), int(match[2])
            if first > 12 and day_first is None:
                day_first = (n, row[i].strip())
            if second > 12 and month_first is None:
                month_first = (n, row[i].strip())
    if day_first and month_first:
        raise ScheduleError(
            f"the file mixes dates with the day first (row {day_first[0]}: {day_first[1]!r}) and with the "
            f"month first (row {month_first[0]}: {month_first[1]!r}): write dates as 2026-12-08",
            field=f"row[{month_first[0]}].date",
        )
    return "dmy" if day_first else "mdy" if month_first else None


def _split_time(value: str) -> tuple[str, str]:
    """A cell as its date part and its time part: "08/12/2026 09:30" -> ("08/12/2026", "09:30")."""
    match = _TIME_AT_END.search(value)
    if match is None:
        return value, ""
    return value[: match.start()].strip(" ,T"), match[1]


def _date(value: str, order: str | None, where: str, field: str) -> date:
    text = value.strip()
    try:
        if match := _ISO_DATE.match(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _DOTTED.match(text):
            return date(_year(match[3]), int(match[2]), int(match[1]))
        if match := _SLASHED.match(text):
            first, second, year = int(match[1]), int(match[2]), _year(match[3])
            if first != second and order is None:
                raise ScheduleError(
                    f"{where}: the date {value!r} could be {_spoken(first, second, year)} or "
                    f"{_spoken(second, first, year)}; write dates as {year:04d}-{second:02d}-{first:02d}, or say "
                    "the order in the column's name, e.g. 'Date (DD/MM/YYYY)'",
                    field=field,
                )
            return date(year, second, first) if order in ("dmy", None) else date(year, first, second)
        words = re.findall(r"[a-z]+|\d+", text.lower())
        months = [MONTHS[w] for w in words if w in MONTHS]
        numbers = [w for w in words if w.isdigit()]
        if len(months) == 1 and len(numbers) == 2:  # 8 Dec 2026, Dec 8, 2026, 8-Dec-26
            day, year = (numbers[0], numbers[1]) if len(numbers[1]) in (2, 4) else (numbers[1], numbers[0])
            if len(numbers[0]) == 4:
                day, year = numbers[1], numbers[0]
            return date(_year(year), months[0], int(day))
    except ValueError:
        pass
    raise ScheduleError(f"{where}: {value!r} is not a date like 2026-12-08", field=field)


def _year(text: str) -> int:
    return int(text) + 2000 if len(text) == 2 else int(text)


def _spoken(day: int, month: int, year: int) -> str:
    try:
        return f"{day} {date(year, month, day):%B}"
    except ValueError:
        return "no date"


def _time(value: str, where: str, field: str) -> time:
    match = _TIME.match(value.strip())
    if match is not None:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if match[4]:  # 12-hour clock: 12:30 pm is 12:30, 12:00 am midnight
            if not 1 <= hour <= 12:
                match = None
            else:
                hour = hour % 12 + (12 if match[4].lower() == "p" else 0)
        if match is not None and hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    raise ScheduleError(f"{where}: {value!r} is not a time like 09:30", field=field)


def _moment(
    cell: str, day: str, order: str | None, where: str, field: str, day_field: str
) -> tuple[datetime | None, bool]:
    """A start or end from its cell (a time, or a date and time) and the row's date cell; the flag
    says whether the cell held its own date."""
    date_part, time_part = _split_time(cell)
    if not cell:
        return None, False
    if not time_part:
        try:
            _date(cell, "dmy", where, field)
        except ScheduleError:
            raise ScheduleError(f"{where}: {cell!r} is not a time like 09:30", field=field) from None
        raise ScheduleError(f"{where}: {cell!r} is a date without a time (like 09:30)", field=field)
    if date_part:
        return datetime.combine(_date(date_part, order, where, field), _time(time_part, where, field)), True
    if not day:
        raise ScheduleError(
            f"{where}: the time {cell!r} has no date (a date column, or a date in the cell)", field=field
        )
    return datetime.combine(_date(day, order, where, day_field), _time(time_part, where, field)), False


def _duration(value: str, where: str, field: str) -> timedelta:
    text = value.strip()
    if text.isdigit():
        return timedelta(minutes=int(text))  # a number alone: minutes
    if ":" in text:
        return duration_of(text, field)
    match = _DURATION.match(text)
    if match is not None and (match[1] or match[2]):
        return timedelta(hours=int(match[1] or 0), minutes=int(match[2] or 0))
    raise ScheduleError(
        f"{where}: the duration {value!r} must be minutes (45) or hours and minutes (1:30)", field=field
    )


def _split(value: str, *, hashtags: bool = False) -> list[str]:
    if hashtags and "#" in value and not re.search(r"[,;|\n]", value):
        parts = value.split()  # "#python #django"
    else:
        parts = re.split(r"\s*[,;|\n]\s*", value)
    return [p.strip().lstrip("#").strip() for p in parts if p.strip().lstrip("#").strip()]


def _row_entry(
    cells: dict[str, str], n: int, order: str | None, zone: ZoneInfo, notes: list[str]
) -> Entry | None:
    where = f"row {n}"
    title = clean_text(cells.get("title", ""), f"row[{n}].title")
    if not title:
        raise ScheduleError(f"{where} has no title", field=f"row[{n}].title")
    label = f"{where} ({title!r})"
    if cells.get("all day", "").lower() in ("true", "yes", "1", "x", "wahr", "vrai"):
        notes.append(f"{title!r}: an all-day entry, left out (sessions have times)")
        return None
    start, _ = _moment(
        cells.get("start", ""), cells.get("date", ""), order, label, f"row[{n}].start", f"row[{n}].date"
    )
    if start is None:
        raise ScheduleError(f"{label} has no start time", field=f"row[{n}].start")
    if cells.get("end"):
        end_day = cells.get("end date") or cells.get("date") or start.date().isoformat()
        end_field = f"row[{n}].end date" if cells.get("end date") else f"row[{n}].date"
        end, own_date = _moment(cells["end"], end_day, order, label, f"row[{n}].end", end_field)
        assert end is not None
        if end < start and not own_date and not cells.get("end date"):
            end += timedelta(days=1)  # 22:00 to 01:00: past midnight
        if end < start:
            raise ScheduleError(f"{label} ends before it starts", field=f"row[{n}].end")
    elif cells.get("duration"):
        end = start + _duration(cells["duration"], label, f"row[{n}].duration")
    else:
        raise ScheduleError(f"{label} has neither an end nor a duration", field=f"row[{n}].end")
    uid = cells.get("id", "")
    if "id" in cells and not uid:
        raise ScheduleError(f"{label} has no id (the id column is empty)", field=f"row[{n}].id")
    if not uid:
        uid = "csv:" + hashlib.sha256(f"{title}\n{start.isoformat()}".encode()).hexdigest()[:20]
    room = cells.get("room") or cells.get("track", "")
    tags = _split(cells.get("tags", ""), hashtags=True)
    if cells.get("room") and cells.get("track"):
        tags.insert(0, cells["track"])  # a track beside a room is a subject, as frab's
    hashtags = None
    if cells.get("hashtags"):  # what social feeds collect: checked as a session's hashtags
        try:
            hashtags = session_fields({"hashtags": cells["hashtags"]}, partial=True)["hashtags"]
        except BadRequest as exc:
            raise ScheduleError(f"{label}: {exc.message}", field=f"row[{n}].hashtags") from None
    return make_entry(
        uid,
        title,
        start,
        end - start,
        zone,
        f"row[{n}]",
        room=clean_text(room, f"row[{n}].room", limit=200),
        speakers=tuple(
            dict.fromkeys(
                clean_text(s, f"row[{n}].speakers", limit=100) for s in _split(cells.get("speakers", ""))
            )
        )[:20],
        description=describe(
            "", clean_text(cells.get("description", ""), f"row[{n}].description"), title, notes
        ),
        tags=tuple(dict.fromkeys(clean_text(t, f"row[{n}].tags", limit=100) for t in tags))[:20],
        hashtags=hashtags,
        notes=notes,
    )

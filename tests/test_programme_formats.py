"""Programme files from the tools organisers use besides frab/pretalx (issue 24): Sessionize's
JSON (a real recorded "All Data" answer, tests/data/programme/README.md), spreadsheets saved as
CSV, and real iCalendar exports (the `icalendar` package's own test calendars). Each is read into
sessions in the venue's wall clock, re-imported without duplicates, and refused with the entry
and field named when it is wrong."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from liveblog.capture.schedule import ScheduleError, parse_schedule
from liveblog.services import Services
from tests.conftest import LiveServer, Seed, organiser_csrf, page_csrf
from tests.test_programme_import import new_event, venue_in

DATA = Path(__file__).parent / "data" / "programme"
SESSIONIZE = DATA / "sessionize-global-azure-austria-2024.json"


def sessionize() -> dict[str, Any]:
    return json.loads(SESSIONIZE.read_text(encoding="utf-8"))


@pytest.fixture
async def vienna(tmp_path: Path) -> AsyncIterator[Services]:
    """Services whose venue is in Vienna (archive.timezone), as Global Azure Austria's."""
    async with venue_in(tmp_path, "Europe/Vienna") as svc:
        yield svc


# -- Sessionize ------------------------------------------------------------------------------------


@pytest.mark.parametrize("venue", ["Europe/Vienna", "America/New_York"])
def test_a_recorded_sessionize_answer_is_read_in_the_venues_wall_clock(venue: str) -> None:
    schedule = parse_schedule(SESSIONIZE.read_bytes(), venue)
    assert schedule.format == "sessionize" and schedule.notes == []
    assert len(schedule.entries) == 15
    keynote = schedule.entries[0]
    # "startsAt": "2024-04-20T09:00:00" has no offset: the venue's clock, whatever the venue's zone.
    assert (keynote.uid, keynote.starts_at, keynote.ends_at) == (
        "658419",
        "2024-04-20T09:00",
        "2024-04-20T09:45",
    )
    assert keynote.title == "Keynote: Pioneering the Future of Java with Intelligent Apps"
    assert keynote.room == "Aula"  # roomId 47112, named in the file's rooms
    assert keynote.speakers == ("Ed Burns", "Sandra Ahlgrimm")  # speaker ids, named by fullName
    assert keynote.description.startswith("Disruptive changes are so called")
    assert "\r" not in keynote.description
    assert {e.room for e in schedule.entries} == {
        "Aula",
        "Breakout Room 1 (146)",
        "Breakout Room 2 (147)",
        "Breakout Room 3 (E59-1)",
    }


def with_categories_and_breaks() -> dict[str, Any]:
    """The recorded answer with what other Sessionize events have: categories (a track, and
    Sessionize's own "Level"), a lunch as a service session, a talk not scheduled yet."""
    data = sessionize()
    data["categories"] = [
        {
            "id": 1,
            "title": "Track",
            "items": [{"id": 11, "name": "AI", "sort": 1}],
            "sort": 1,
            "type": "session",
        },
        {"id": 2, "title": "Level", "items": [{"id": 21, "name": "Introductory", "sort": 1}], "sort": 2},
    ]
    data["sessions"][0]["categoryItems"] = [11, 21]
    lunch = {
        **data["sessions"][0],
        "id": "5b1a5c8e-2f0c-4d7e-9a53-2d9b3e0f6a11",
        "title": "Lunch",
        "description": None,
        "startsAt": "2024-04-20T12:30:00",
        "endsAt": "2024-04-20T13:30:00",
        "isServiceSession": True,
        "isPlenumSession": True,
        "speakers": [],
        "categoryItems": [],
    }
    later = {
        **data["sessions"][1],
        "id": "700001",
        "title": "Not scheduled yet",
        "startsAt": None,
        "endsAt": None,
    }
    data["sessions"] += [lunch, later]
    return data


def test_sessionize_categories_become_tags_and_service_sessions_are_left_out_saying_so() -> None:
    schedule = parse_schedule(json.dumps(with_categories_and_breaks()).encode(), "Europe/Vienna")
    assert len(schedule.entries) == 15
    assert schedule.entries[0].tags == ("AI",)  # the track; the level describes form, not subject
    assert "Lunch" not in {e.title for e in schedule.entries}
    assert schedule.notes == [
        "'Lunch': a service session (a break, registration or a meal), left out",
        "'Not scheduled yet': not scheduled yet (no startsAt), left out",
    ]


def test_sessionizes_list_and_grid_shapes_read_as_its_all_data() -> None:
    data = with_categories_and_breaks()
    rooms = {r["id"]: r["name"] for r in data["rooms"]}
    people = {s["id"]: s["fullName"] for s in data["speakers"]}

    def listed(session: dict[str, Any]) -> dict[str, Any]:
        # The "Sessions" view names speakers, categories and the room inline.
        out = {k: v for k, v in session.items() if k != "categoryItems"}
        out["speakers"] = [{"id": s, "name": people[s]} for s in session["speakers"]]
        out["room"] = rooms[session["roomId"]]
        out["categories"] = [
            {"id": 1, "name": "Track", "categoryItems": [{"id": 11, "name": "AI"}], "sort": 1}
            for _ in session["categoryItems"][:1]
        ] + [{"id": 2, "name": "Level", "categoryItems": [{"id": 21, "name": "Introductory"}], "sort": 2}]
        return out

    expected = parse_schedule(json.dumps(data).encode(), "Europe/Vienna")
    sessions_view = [{"groupId": None, "groupName": "All", "sessions": [listed(s) for s in data["sessions"]]}]
    grid = [
        {
            "date": "2024-04-20T00:00:00",
            "isDefault": True,
            "rooms": [
                {
                    "id": room_id,
                    "name": name,
                    "sessions": [listed(s) for s in data["sessions"] if s["roomId"] == room_id],
                }
                for room_id, name in rooms.items()
            ],
            "timeSlots": [],
        }
    ]
    for shape in (sessions_view, grid):
        schedule = parse_schedule(json.dumps(shape).encode(), "Europe/Vienna")
        assert sorted(schedule.entries, key=lambda e: e.uid) == sorted(expected.entries, key=lambda e: e.uid)


async def test_a_sessionize_programme_imports_and_re_imports_by_its_session_ids(vienna: Services) -> None:
    event_id = await new_event(vienna, "2024-04-20", "2024-04-20")
    await vienna.imports.apply(event_id, SESSIONIZE.read_bytes(), "All.json")
    made = {s.source_uid: s for s in await vienna.programme.sessions(event_id)}
    assert len(made) == 15 and made["658419"].room == "Aula"
    changed = sessionize()
    keynote = changed["sessions"][0]
    keynote["startsAt"], keynote["endsAt"], keynote["roomId"] = (
        "2024-04-20T16:00:00",
        "2024-04-20T16:45:00",
        47113,
    )
    dropped = changed["sessions"].pop(1)
    plan = await vienna.imports.preview(event_id, json.dumps(changed).encode())
    assert plan.schedule.format_name == "Sessionize JSON"
    assert [(u.session.source_uid, u.changed) for u in plan.updates] == [
        ("658419", ["starts_at", "ends_at", "room"])
    ]
    assert [s.source_uid for s in plan.cancels] == [dropped["id"]] and plan.creates == []
    await vienna.imports.apply(event_id, json.dumps(changed).encode())
    after = {s.source_uid: s for s in await vienna.programme.sessions(event_id)}
    assert len(after) == 15 and after["658419"].id == made["658419"].id
    assert (after["658419"].starts_at, after["658419"].room) == ("2024-04-20T16:00", "Breakout Room 1 (146)")
    assert after[dropped["id"]].cancelled


def broken(change: Any) -> bytes:
    data = copy.deepcopy(sessionize())
    change(data)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (
            broken(lambda d: d["sessions"][2].update(roomId=999)),
            "sessions[2].roomId",
            "sessions[2] ('Unleashing the Power of AI: Introducing Microsoft Copilot for Azure').roomId 999 is not",
        ),
        (broken(lambda d: d["sessions"][3].update(speakers=["nobody"])), "sessions[3].speakers", "'nobody'"),
        (
            broken(lambda d: d["sessions"][4].update(startsAt="20.4.2024 11:00")),
            "sessions[4].startsAt",
            "20.4.2024",
        ),
        (broken(lambda d: d["sessions"][5].update(endsAt=None)), "sessions[5].endsAt", "no endsAt"),
        (broken(lambda d: d["sessions"][6].pop("id")), "sessions[6].id", "must be an id"),
        (
            broken(lambda d: d["sessions"][7].update(categoryItems=[5])),
            "sessions[7].categoryItems",
            "categories",
        ),
        (broken(lambda d: d["sessions"][8].update(title=None)), "sessions[8].title", "has no title"),
        (broken(lambda d: d["sessions"][9].update(id=d["sessions"][0]["id"])), "id", "share the id"),
        (broken(lambda d: d.update(rooms={"1": "Aula"})), "rooms", "list of objects"),
        (b'[{"groupName": "All", "sessions": "none"}]', "[0].sessions", "must be a list"),
    ],
)
def test_bad_sessionize_data_is_refused_naming_the_session_and_field(
    data: bytes, field: str, words: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(data, "Europe/Vienna")
    assert caught.value.field == field, caught.value.message
    assert words in caught.value.message, caught.value.message


async def preview_on_the_page(live: LiveServer, seeded: Seed, name: str, data: bytes, kind: str) -> str:
    """The import page's preview of a file, as an organiser's browser sends it."""
    async with live.client(
        cookies={"lb_login": seeded.login_token}, headers=organiser_csrf(seeded.login_token)
    ) as org:
        url = f"/organise/events/{seeded.event_id}/import"
        form = await org.get(url)
        preview = await org.post(
            url, files={"file": (name, data, kind)}, data={"csrf_token": page_csrf(form.text)}
        )
        assert preview.status_code == 200, preview.text
        return preview.text


async def test_the_import_page_previews_a_sessionize_file_naming_its_format(
    live: LiveServer, seeded: Seed
) -> None:
    page = await preview_on_the_page(live, seeded, "All.json", SESSIONIZE.read_bytes(), "application/json")
    assert '<span id="import-format">Sessionize JSON</span>' in page
    assert "15 to create" in page and "Ed Burns, Sandra Ahlgrimm" in page


# -- spreadsheets saved as CSV -----------------------------------------------------------------------

# As Google Sheets downloads a programme: commas, ISO dates, a duration in minutes, no id column.
SHEETS = """Title,Date,Start,Duration,Room,Speakers,Description,Tags
Opening,2026-12-08,09:00,30,Main hall,Ada Lovelace,"Welcome, and the day's plan",#opening
"Databases, deeply",2026-12-08,09:30,45,Room B,"Grace Hopper; Edsger Dijkstra","Two lines:
indexes and plans","databases, sql"
,,,,,,,
Late night hack,2026-12-08,23:30,90,Room B,,,
"""

# As Excel saves one in a German or French locale: a BOM, "sep=;", semicolons, CRLF, day-first
# dates with the time in the same cell, an end instead of a duration, a title row above the header,
# an id column, a blank row and a column the importer does not read.
EXCEL = (
    "\ufeffsep=;\r\n"
    "Programme DevDay 2026;;;;;\r\n"
    "ID;Session;Start;End;Room / Track;Speaker(s);Catering\r\n"
    "t1;Keynote;08/12/2026 09:00;08/12/2026 10:00;Saal 1;Ada Lovelace;Coffee\r\n"
    ";;;;;;\r\n"
    "t2;Workshop;08/12/2026 10:15;08/12/2026 12:00;Saal 2;Grace Hopper, Alan Turing;\r\n"
    "t3;Closing;14/12/2026 17:00;14/12/2026 17:30;Saal 1;;\r\n"
)


def test_a_google_sheets_csv_becomes_sessions() -> None:
    schedule = parse_schedule(SHEETS.encode(), "Europe/Berlin")
    assert schedule.format == "csv" and schedule.format_name == "spreadsheet CSV"
    opening, databases, late = schedule.entries
    assert (opening.title, opening.starts_at, opening.ends_at, opening.room) == (
        "Opening",
        "2026-12-08T09:00",
        "2026-12-08T09:30",
        "Main hall",
    )
    assert opening.description == "Welcome, and the day's plan" and opening.tags == ("opening",)
    assert databases.speakers == ("Grace Hopper", "Edsger Dijkstra")
    assert databases.description == "Two lines:\nindexes and plans" and databases.tags == ("databases", "sql")
    assert (late.starts_at, late.ends_at) == ("2026-12-08T23:30", "2026-12-09T01:00")
    # No id column: each is known by its title and start, and the preview says what that means.
    assert opening.uid.startswith("csv:") and len({e.uid for e in schedule.entries}) == 3
    assert any("no id column" in n for n in schedule.notes)


def test_an_excel_csv_with_semicolons_a_bom_and_day_first_dates_becomes_sessions() -> None:
    schedule = parse_schedule(EXCEL.encode(), "Europe/Berlin")
    keynote, workshop, closing = schedule.entries
    # 08/12/2026 is 8 December: the file's 14/12/2026 can only be read day first.
    assert (keynote.uid, keynote.starts_at, keynote.ends_at, keynote.room) == (
        "t1",
        "2026-12-08T09:00",
        "2026-12-08T10:00",
        "Saal 1",
    )
    assert workshop.speakers == ("Grace Hopper", "Alan Turing")
    assert closing.starts_at == "2026-12-14T17:00"
    assert schedule.notes == ["columns not read: Catering"]


# As Outlook exports a calendar to CSV (US locale): the date and time in columns of their own,
# 12-hour times, month first (told by 12/14/2026), an all-day row, categories.
OUTLOOK = (
    '"Subject","Start Date","Start Time","End Date","End Time","All day event","Reminder on/off",'
    '"Meeting Organizer","Categories","Description","Location","Private"\r\n'
    '"Board meeting","12/8/2026","9:00:00 AM","12/8/2026","10:30:00 AM","False","True","Ada",'
    '"Governance","Quarterly","Room 1","False"\r\n'
    '"Conference dinner","12/14/2026","7:00:00 PM","12/15/2026","12:30:00 AM","False","False","Ada",'
    '"","","Harbour","False"\r\n'
    '"Setup day","12/7/2026","12:00:00 AM","12/8/2026","12:00:00 AM","True","False","Ada","","","","False"\r\n'
)


def test_an_outlook_calendar_csv_becomes_sessions() -> None:
    schedule = parse_schedule(OUTLOOK.encode(), "America/New_York")
    board, dinner = schedule.entries
    assert (board.title, board.starts_at, board.ends_at, board.room, board.tags) == (
        "Board meeting",
        "2026-12-08T09:00",
        "2026-12-08T10:30",
        "Room 1",
        ("Governance",),
    )
    assert (dinner.starts_at, dinner.ends_at) == ("2026-12-14T19:00", "2026-12-15T00:30")
    assert "'Setup day': an all-day entry, left out (sessions have times)" in schedule.notes
    assert "columns not read: Reminder on/off, Meeting Organizer, Private" in schedule.notes


@pytest.mark.parametrize(
    ("header", "cell", "expected"),
    [
        ("Date (MM/DD/YYYY)", "12/08/2026", "2026-12-08"),  # the column's name says the order
        ("Date (DD/MM/YYYY)", "08/12/2026", "2026-12-08"),
        ("Date", "08.12.2026", "2026-12-08"),  # dotted: always day first
        ("Date", "8 Dec 2026", "2026-12-08"),
        ("Date", "Dec 8, 2026", "2026-12-08"),
        ("Date", "Tuesday, 8 December 2026", "2026-12-08"),
        ("Date", "2026/12/08", "2026-12-08"),
        ("Date", "07/07/2026", "2026-07-07"),  # the same either way
    ],
)
def test_spreadsheet_dates_are_read_when_they_can_be_read_one_way_only(
    header: str, cell: str, expected: str
) -> None:
    data = f'Title,{header},Start,End\nTalk,"{cell}",9:30 AM,1:15 PM\n'.encode()
    (entry,) = parse_schedule(data, "Europe/Berlin").entries
    assert (entry.starts_at, entry.ends_at) == (f"{expected}T09:30", f"{expected}T13:15")


@pytest.mark.parametrize(
    ("start", "duration", "ends_at"),
    [
        ("9.30", "45", "10:15"),
        ("09:30:00", "45 min", "10:15"),
        ("9:30 am", "1:30", "11:00"),
        ("12:30 PM", "1h30", "14:00"),
        ("12:00 AM", "2 hours", "02:00"),
        ("21:00", "90 minutes", "22:30"),
    ],
)
def test_spreadsheet_times_and_durations_as_people_write_them(
    start: str, duration: str, ends_at: str
) -> None:
    data = f"Title,Date,Start,Duration\nTalk,2026-12-08,{start},{duration}\n".encode()
    (entry,) = parse_schedule(data, "Europe/Berlin").entries
    assert entry.ends_at == f"2026-12-08T{ends_at}"


async def test_a_spreadsheet_re_imported_matches_its_rows_by_id_or_by_title_and_start(
    vienna: Services,
) -> None:
    event_id = await new_event(vienna, "2026-12-08", "2026-12-14")
    await vienna.imports.apply(event_id, EXCEL.encode(), "programme.csv")
    moved = EXCEL.replace(
        "t2;Workshop;08/12/2026 10:15;08/12/2026 12:00", "t2;Workshop;08/12/2026 14:00;08/12/2026 15:00"
    )
    plan = await vienna.imports.preview(event_id, moved.encode())
    assert [(u.session.source_uid, u.changed) for u in plan.updates] == [("t2", ["starts_at", "ends_at"])]
    assert plan.creates == [] and plan.cancels == []

    sheets_event = await new_event(vienna, "2026-12-08", "2026-12-08")
    await vienna.imports.apply(sheets_event, SHEETS.encode())
    again = await vienna.imports.preview(sheets_event, SHEETS.replace("Room B,,,", "Room C,,,").encode())
    assert [u.changed for u in again.updates] == [["room"]] and again.creates == []
    # Without an id column a moved row is another session: the old one cancelled, a new one made.
    retimed = await vienna.imports.preview(sheets_event, SHEETS.replace("23:30,90", "22:30,90").encode())
    assert [e.title for e in retimed.creates] == ["Late night hack"]
    assert [s.title for s in retimed.cancels] == ["Late night hack"]


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (
            "Title,Date,Start,End\nTalk,08/12/2026,09:00,10:00\n",
            "row[2].date",
            "could be 8 December or 12 August",
        ),
        (
            "Title,Date,Start,End\nA,25/12/2026,09:00,10:00\nB,12/25/2026,09:00,10:00\n",
            "row[3].date",
            "mixes dates with the day first (row 2: '25/12/2026')",
        ),
        (
            "Title,Date,Start,End\nTalk,2026-12-08,9 o'clock,10:00\n",
            "row[2].start",
            '"9 o\'clock" is not a time',
        ),
        ("Title,Date,Start,End\nTalk,2026-12-08,25:00,10:00\n", "row[2].start", "is not a time"),
        ("Title,Date,Start,End\nTalk,tomorrow,09:00,10:00\n", "row[2].date", "'tomorrow' is not a date"),
        ("Title,Date,Start,End\n\n,2026-12-08,09:00,10:00\n", "row[3].title", "row 3 has no title"),
        ("Title,Date,Start,End\nTalk,2026-12-08,,10:00\n", "row[2].start", "row 2 ('Talk') has no start"),
        ("Title,Date,Start,End\nTalk,,09:00,10:00\n", "row[2].start", "has no date"),
        ("Title,Date,Start,End\nTalk,2026-12-08,09:00,\n", "row[2].end", "neither an end nor a duration"),
        (
            "Title,Date,Start,End,End date\nTalk,2026-12-08,09:00,08:00,2026-12-08\n",
            "row[2].end",
            "ends before",
        ),
        ("Title,Date,Start,Duration\nTalk,2026-12-08,09:00,a while\n", "row[2].duration", "'a while'"),
        ("Title,Date,Start\nTalk,2026-12-08,09:00\n", "header", "no end or duration column"),
        ("ID,Title,Date,Start,End\n,Talk,2026-12-08,09:00,10:00\n", "row[2].id", "no id"),
        (
            "ID,Title,Date,Start,End\n1,A,2026-12-08,09:00,10:00\n1,B,2026-12-08,10:00,11:00\n",
            "id",
            "share the id",
        ),
        (
            "Title,Date,Start,End\nTalk,2026-12-08,09:00,10:00\nTalk,2026-12-08,09:00,10:30\n",
            "row[3].title",
            "rows 2 and 3 have the same title and start",
        ),
        ('Title,Date,Start,End\n"Talk,2026-12-08,09:00,10:00\n', "file", "CSV cannot be read"),
        ("Title,Date,Start,End\nTalk\x07,2026-12-08,09:00,10:00\n", "row[2].title", "control characters"),
    ],
)
def test_bad_spreadsheet_rows_are_refused_naming_the_row_and_column(
    data: str, field: str, words: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(data.encode(), "Europe/Berlin")
    assert caught.value.field == field, caught.value.message
    assert words in caught.value.message, caught.value.message


def test_an_excel_csv_not_saved_as_utf8_is_refused_saying_how_to_save_it() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(
            "Title;Date;Start;End\nCafé;2026-12-08;09:00;10:00\n".encode("cp1252"), "Europe/Berlin"
        )
    assert "not UTF-8" in caught.value.message and "CSV UTF-8" in caught.value.message


async def test_the_import_page_previews_a_spreadsheet_naming_its_format(
    live: LiveServer, seeded: Seed
) -> None:
    page = await preview_on_the_page(live, seeded, "programme.csv", EXCEL.encode(), "text/csv")
    assert '<span id="import-format">spreadsheet CSV</span>' in page and "3 to create" in page
    assert "columns not read: Catering" in page


# -- real iCalendar exports (the icalendar package's own test calendars) -----------------------------

ICALENDAR = DATA / "icalendar"


def test_outlooks_windows_zone_names_are_read_with_their_vtimezone() -> None:
    # Exchange's TZID:Eastern Standard Time, 17:00 on 28 Oct 2024 (still summer time, -4) is
    # 22:00 in Berlin (back on +1 since 27 Oct).
    (eastern,) = parse_schedule(
        (ICALENDAR / "issue_836_do_not_quote_tzid.ics").read_bytes(), "Europe/Berlin"
    ).entries
    assert (eastern.starts_at, eastern.ends_at) == ("2024-10-28T22:00", "2024-10-28T23:00")
    # TZID="Pacific Standard Time", quoted: 12:00 on 24 Feb 2017 (-8) is 21:00 in Berlin.
    (pacific,) = parse_schedule((ICALENDAR / "timezone_same_start.ics").read_bytes(), "Europe/Berlin").entries
    assert (pacific.title, pacific.starts_at, pacific.ends_at) == (
        "Test 4",
        "2017-02-24T21:00",
        "2017-02-24T21:30",
    )


def test_several_calendars_in_one_file_are_all_read() -> None:
    both = (ICALENDAR / "timezone_same_start.ics").read_bytes() + (
        ICALENDAR / "issue_836_do_not_quote_tzid.ics"
    ).read_bytes()
    schedule = parse_schedule(both, "Europe/Berlin")
    assert [e.title for e in schedule.entries] == ["Test 4", "Anonymous Test Event for TZID"]


def test_a_file_of_only_all_day_entries_says_why_it_holds_no_sessions() -> None:
    # Mozilla Calendar's export of 2002: two VCALENDARs, three all-day entries.
    with pytest.raises(ScheduleError) as caught:
        parse_schedule((ICALENDAR / "multiple_calendar_components.ics").read_bytes(), "Europe/Berlin")
    assert caught.value.field == "file"
    assert caught.value.message == (
        "the file holds no sessions: 'Christmas Day': an all-day entry, left out (sessions have times); "
        "'Boxing Day': an all-day entry, left out (sessions have times); "
        "'Christmas again!': an all-day entry, left out (sessions have times)"
    )


def test_globally_unique_tzids_of_evolution_and_lightning_are_read_and_the_preview_says_how() -> None:
    schedule = parse_schedule(
        (ICALENDAR / "issue_313_globally_unique_tzid.ics").read_bytes(), "Europe/Berlin"
    )
    assert [(e.uid, e.starts_at) for e in schedule.entries] == [
        ("libical-evolution@issue-313", "2020-04-26T14:00"),
        ("mozilla-lightning@issue-313", "2020-04-26T20:00"),  # New York, -4
        ("multipart-olson@issue-313", "2020-04-26T19:00"),  # Buenos Aires, -3
    ]
    assert (
        "VEVENT[2]: the zone '/mozilla.org/20070129_1/America/New_York' was read as 'America/New_York'"
        in schedule.notes
    )


def test_rdate_adds_occurrences_to_a_recurring_entry() -> None:
    # Monthly on the third Wednesday, 20 Dec excluded (EXDATE) and moved to 13 Dec, 12:00-15:00
    # (RDATE with a PERIOD), in Vancouver.
    schedule = parse_schedule((ICALENDAR / "period_with_timezone.ics").read_bytes(), "America/Vancouver")
    starts = [(e.starts_at, e.ends_at) for e in schedule.entries]
    assert len(starts) == 9
    assert ("2023-12-13T12:00", "2023-12-13T15:00") in starts
    assert not any(s.startswith("2023-12-20") for s, _ in starts)
    assert schedule.entries[0].uid == "1/2023-09-20T12:00"


def test_an_unreadable_line_is_named_and_a_vendors_own_is_skipped_saying_so() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule((ICALENDAR / "broken_ical.ics").read_bytes(), "Europe/Berlin")
    assert caught.value.field == "VEVENT[1].DTSTART"
    assert "the line 'DTSTART;;VALUE=DATE-TIME:20140409T093000' cannot be read" in caught.value.message
    # Apple's X-APPLE-RADIUS torn off its line (icalendar's issue 168): not a property read here.
    ics = (
        (ICALENDAR / "timezone_same_start.ics")
        .read_text()
        .replace(
            "SUMMARY;LANGUAGE=en-US:Test 4",
            "SUMMARY;LANGUAGE=en-US:Test 4\r\nX-APPLE-RADIUS=49.91307046514149",
        )
    )
    schedule = parse_schedule(ics.encode(), "Europe/Berlin")
    assert [e.title for e in schedule.entries] == ["Test 4"]
    assert schedule.notes == [
        "VEVENT[1]: the line 'X-APPLE-RADIUS=49.91307046514149' cannot be read, skipped"
    ]


def test_a_calendar_cut_short_says_so() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule((ICALENDAR / "small_bad_calendar.ics").read_bytes(), "Europe/Berlin")
    assert caught.value.field == "file"
    assert (
        caught.value.message
        == "the calendar is incomplete: it has no END:VCALENDAR (was the file cut short?)"
    )


# -- fields an import sets only when the file gives them ----------------------------------------------


async def test_a_spreadsheets_hashtags_are_what_feeds_collect_and_an_empty_cell_keeps_the_sessions_own(
    vienna: Services,
) -> None:
    sheet = (
        "ID,Title,Date,Start,End,Hashtags,Tags\n"
        "k,Keynote,2026-12-08,09:00,10:00,#devday #keynote,Cloud\n"
        "w,Workshop,2026-12-08,10:00,11:00,,\n"
    )
    keynote, workshop = parse_schedule(sheet.encode(), "Europe/Vienna").entries
    assert (keynote.hashtags, keynote.tags) == (("#devday", "#keynote"), ("Cloud",))
    assert workshop.hashtags is None
    event_id = await new_event(vienna, "2026-12-08", "2026-12-08")
    await vienna.imports.apply(event_id, sheet.encode())
    made = {s.source_uid: s for s in await vienna.programme.sessions(event_id)}
    assert made["k"].hashtags == ("#devday", "#keynote")
    await vienna.programme.update_session(made["w"].id, {"hashtags": ["#handson"]})  # typed in by hand
    plan = await vienna.imports.preview(event_id, sheet.replace("#devday #keynote", "#devday").encode())
    assert [(u.session.source_uid, u.changed) for u in plan.updates] == [("k", ["hashtags"])]
    await vienna.imports.apply(event_id, sheet.replace("#devday #keynote", "#devday").encode())
    after = {s.source_uid: s for s in await vienna.programme.sessions(event_id)}
    assert (after["k"].hashtags, after["w"].hashtags) == (("#devday",), ("#handson",))
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(sheet.replace("#devday #keynote", "#dev-day").encode(), "Europe/Vienna")
    assert caught.value.field == "row[2].hashtags" and "'#dev-day' is not a hashtag" in caught.value.message


async def test_sessionizes_recording_url_is_the_sessions_recording_when_given(vienna: Services) -> None:
    data = sessionize()
    data["sessions"][0]["recordingUrl"] = "https://www.youtube.com/watch?v=mIguuYMFbh0"
    event_id = await new_event(vienna, "2024-04-20", "2024-04-20")
    await vienna.imports.apply(event_id, json.dumps(data).encode())
    made = {s.source_uid: s for s in await vienna.programme.sessions(event_id)}
    assert made["658419"].recording_url == "https://www.youtube.com/watch?v=mIguuYMFbh0"
    # recordingUrl null: a recording linked by hand stays through re-imports.
    await vienna.programme.update_session(made["646535"].id, {"recording_url": "https://vimeo.com/76979871"})
    assert (await vienna.imports.preview(event_id, json.dumps(data).encode())).empty
    data["sessions"][0]["recordingUrl"] = "ftp://example.org/keynote.mp4"
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(json.dumps(data).encode(), "Europe/Vienna")
    assert caught.value.field == "sessions[0].recordingUrl" and "http://" in caught.value.message

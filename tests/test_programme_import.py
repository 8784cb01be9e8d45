"""Importing a programme (issue 17): real published frab/pretalx XML and JSON and iCalendar files
(tests/data/programme, checked against c3voc's published schemas), times in the venue's zone, a
preview that writes nothing, re-imports that update, move and cancel without duplicating, and
files refused as untrusted input with the field named."""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema

from liveblog.capture.schedule import ScheduleError, parse_schedule
from liveblog.services import Services
from tests.conftest import LiveServer, Seed, make_settings, organiser_csrf, page_csrf

DATA = Path(__file__).parent / "data" / "programme"
ROOT = Path(__file__).resolve().parent.parent


def the_38c3() -> bytes:
    return gzip.decompress((DATA / "38c3-schedule.xml.gz").read_bytes())


def democon() -> dict[str, Any]:
    return json.loads((DATA / "pretalx-democon.json").read_text())


async def new_event(svc: Services, starts: str, ends: str) -> str:
    event = await svc.programme.create_event({"title": "Imported", "starts_on": starts, "ends_on": ends})
    return event.id


@contextlib.asynccontextmanager
async def venue_in(tmp_path: Path, zone: str) -> AsyncIterator[Services]:
    """Open services whose venue is in `zone` (archive.timezone)."""
    svc = Services.build(make_settings(tmp_path, archive={"timezone": zone}))
    await svc.open()
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def berlin(tmp_path: Path) -> AsyncIterator[Services]:
    """Services whose venue is in Berlin (archive.timezone)."""
    async with venue_in(tmp_path, "Europe/Berlin") as svc:
        yield svc


def test_the_test_files_are_checked_against_the_published_schemas() -> None:
    xsd = xmlschema.XMLSchema(str(DATA / "schedule.xml.xsd"))
    problems = {(e.reason or "").split(" at position")[0] for e in xsd.iter_errors(the_38c3().decode())}
    # The known deviations of the published file (tests/data/programme/README.md).
    assert problems == {
        "value doesn't match any pattern of ['[a-z0-9_]{4,}-[a-z0-9\\\\-_]{4,}']",
        "Unexpected child with tag 'do_not_stream'",
        "Unexpected child with tag 'answers'",
    }, problems
    schema = json.loads((DATA / "schedule.schema.json").read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(democon())) == []


async def test_a_38c3_schedule_xml_becomes_the_events_sessions_in_the_venues_zone(berlin: Services) -> None:
    event_id = await new_event(berlin, "2024-12-27", "2024-12-30")
    preview = await berlin.imports.preview(event_id, the_38c3(), "schedule.xml")
    assert (len(preview.creates), len(preview.updates), len(preview.cancels)) == (1007, 0, 0)
    assert await berlin.programme.sessions(event_id) == []  # a preview writes nothing
    await berlin.imports.apply(event_id, the_38c3())
    sessions = await berlin.programme.sessions(event_id)
    assert len(sessions) == 1007
    opening = next(s for s in sessions if s.title == "38C3: Opening Ceremony")
    # <date>2024-12-27T10:30:00+01:00</date>, <duration>00:30</duration>, in Berlin.
    assert (opening.starts_at, opening.ends_at, opening.room) == (
        "2024-12-27T10:30",
        "2024-12-27T11:00",
        "Saal 1",
    )
    assert opening.speakers == ("Gabriela Bogk", "Senficon", "Aline Blankertz")
    assert opening.tags == ("CCC",)  # the track
    assert opening.description.startswith("Glad you could make it!")
    assert opening.source_uid == "270fa44c-821a-577f-8ca3-33e8d4a8c2a7"
    assert len({s.room for s in sessions}) >= 10


async def test_times_are_read_in_the_venues_zone(tmp_path: Path) -> None:
    svc = Services.build(make_settings(tmp_path, archive={"timezone": "America/New_York"}))
    schedule = parse_schedule((DATA / "pretalx-democon.json").read_bytes(), "America/New_York")
    first = schedule.entries[0]
    # "date": "2020-12-14T09:00:00+01:00" is 03:00 in New York.
    assert (first.title, first.starts_at, first.ends_at) == (
        "Focused 5thgeneration hardware",
        "2020-12-14T03:00",
        "2020-12-14T03:30",
    )
    assert svc.imports.venue_zone == "America/New_York"


async def test_a_changed_schedule_re_imported_updates_moves_and_cancels_without_duplicating(
    berlin: Services,
) -> None:
    event_id = await new_event(berlin, "2020-12-14", "2020-12-16")
    original = democon()
    await berlin.imports.apply(event_id, json.dumps(original).encode())
    made = {s.source_uid: s for s in await berlin.programme.sessions(event_id)}
    assert len(made) == 36
    again = await berlin.imports.preview(event_id, json.dumps(original).encode())
    assert again.empty and again.unchanged == 36  # the same file again changes nothing

    changed = democon()
    rooms = changed["schedule"]["conference"]["days"][0]["rooms"]
    gray = rooms["Gray Room"]
    moved, retitled, dropped = gray[0], gray[1], gray.pop(2)
    moved["date"] = "2020-12-14T16:00:00+01:00"
    moved["room"] = "Orange Room"
    retitled["title"] = "A better title"
    added = {**gray[-1], "guid": "00000000-0000-4000-8000-000000000001", "title": "Added late", "id": 9999}
    gray.append(added)
    preview = await berlin.imports.preview(event_id, json.dumps(changed).encode())
    assert [e.title for e in preview.creates] == ["Added late"]
    assert {u.session.source_uid: u.changed for u in preview.updates} == {
        moved["guid"]: ["starts_at", "ends_at", "room"],
        retitled["guid"]: ["title"],
    }
    assert [s.source_uid for s in preview.cancels] == [dropped["guid"]]
    await berlin.imports.apply(event_id, json.dumps(changed).encode())

    after = {s.source_uid: s for s in await berlin.programme.sessions(event_id)}
    assert len(after) == 37  # one added; the dropped one stays, cancelled; nothing doubled
    assert (after[moved["guid"]].starts_at, after[moved["guid"]].room) == ("2020-12-14T16:00", "Orange Room")
    assert after[moved["guid"]].id == made[moved["guid"]].id  # the same session, moved
    assert after[retitled["guid"]].title == "A better title"
    assert after[dropped["guid"]].cancelled and after[dropped["guid"]].title == dropped["title"]
    # Back in the file: restored.
    await berlin.imports.apply(event_id, json.dumps(original).encode())
    restored = {s.source_uid: s for s in await berlin.programme.sessions(event_id)}
    assert not restored[dropped["guid"]].cancelled
    assert restored["00000000-0000-4000-8000-000000000001"].cancelled  # not in the original


async def test_the_events_days_grow_to_hold_the_schedule_and_the_preview_says_so(berlin: Services) -> None:
    event_id = await new_event(berlin, "2020-12-15", "2020-12-15")
    preview = await berlin.imports.preview(event_id, (DATA / "pretalx-democon.json").read_bytes())
    assert preview.days == ("2020-12-14", "2020-12-16")
    assert "the event's days become 2020-12-14 to 2020-12-16" in preview.summary()
    await berlin.imports.apply(event_id, (DATA / "pretalx-democon.json").read_bytes())
    event = await berlin.programme.event(event_id)
    assert (event.starts_on, event.ends_on) == ("2020-12-14", "2020-12-16")


def test_a_published_ics_programme_is_read_with_its_quirks() -> None:
    schedule = parse_schedule((DATA / "pyconuk2015.ics").read_bytes(), "Europe/London")
    assert len(schedule.entries) == 158  # 162 VEVENTs, 4 with an empty SUMMARY left out
    assert sum("has no title" in n for n in schedule.notes) == 4
    keynote = next(
        e for e in schedule.entries if e.title == "Keynote: Van Lindberg, PSF Chair"
    )  # "\," unescaped
    # DTSTART:20150918T093000Z is 10:30 in the UK's summer time.
    assert (keynote.starts_at, keynote.ends_at, keynote.room) == (
        "2015-09-18T10:30",
        "2015-09-18T11:30",
        "PythonAnywhere Room (CC1.3)",
    )
    sprints = next(e for e in schedule.entries if e.title.startswith("Sprints are collaborative"))
    assert len(sprints.title) == 200 and sprints.description.startswith(
        "Sprints are collaborative programming groups"
    )


ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:STANDARD\r
DTSTART:19701025T030000\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700329T020000\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:zoned@example.org\r
DTSTART;TZID=Europe/Berlin:20260514T093000\r
DTEND;TZID=Europe/Berlin:20260514T103000\r
SUMMARY:Zoned keynote\r
LOCATION:Hall A\r
ORGANIZER;CN=Ada Lovelace:mailto:ada@example.org\r
CATEGORIES:Security,Keynotes\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:floating@example.org\r
DTSTART:20260514T140000\r
DURATION:PT45M\r
SUMMARY:Floating workshop\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:lunch@example.org\r
DTSTART:20260514T100000Z\r
DTEND:20260514T110000Z\r
RRULE:FREQ=DAILY;COUNT=3\r
EXDATE:20260515T100000Z\r
SUMMARY:Lunch\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:lunch@example.org\r
RECURRENCE-ID:20260516T100000Z\r
DTSTART:20260516T103000Z\r
DTEND:20260516T113000Z\r
SUMMARY:Late lunch\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:allday@example.org\r
DTSTART;VALUE=DATE:20260514\r
SUMMARY:Registration open all day\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:gone@example.org\r
DTSTART:20260514T160000Z\r
DTEND:20260514T170000Z\r
STATUS:CANCELLED\r
SUMMARY:Cancelled talk\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_ics_zones_floating_times_and_recurrences() -> None:
    schedule = parse_schedule(ICS.encode(), "Europe/London")
    by_uid = {e.uid: e for e in schedule.entries}
    # TZID Europe/Berlin 09:30 is 08:30 in London; floating 14:00 stays 14:00 (the venue's clock).
    assert (by_uid["zoned@example.org"].starts_at, by_uid["zoned@example.org"].ends_at) == (
        "2026-05-14T08:30",
        "2026-05-14T09:30",
    )
    assert by_uid["zoned@example.org"].speakers == ("Ada Lovelace",)
    assert by_uid["zoned@example.org"].tags == ("Security", "Keynotes")
    assert (by_uid["floating@example.org"].starts_at, by_uid["floating@example.org"].ends_at) == (
        "2026-05-14T14:00",
        "2026-05-14T14:45",
    )
    # RRULE: three days, the second excluded, the third moved by its RECURRENCE-ID override.
    lunches = sorted((e.uid, e.title, e.starts_at) for e in schedule.entries if e.uid.startswith("lunch@"))
    assert lunches == [
        ("lunch@example.org/2026-05-14T11:00", "Lunch", "2026-05-14T11:00"),
        ("lunch@example.org/2026-05-16T11:00", "Late lunch", "2026-05-16T11:30"),
    ]
    assert "allday@example.org" not in by_uid and "gone@example.org" not in by_uid
    assert any("all-day" in n for n in schedule.notes) and any("cancelled" in n for n in schedule.notes)


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<schedule><conference><title>&lol2;</title></conference></schedule>"""


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (BOMB.encode(), "file", "forbidden construct"),
        (b'<?xml version="1.0"?><schedule><conference>', "file", "not well-formed"),
        (b"<rss></rss>", "schedule", "<rss>"),
        (b"\xff\xfe\x00garbage", "file", "not UTF-8"),
        (b"name,start\nTalk,09:00\n", "file", "not a programme file"),
        (b'{"schedule": {"conference": {"days": "monday"}}}', "schedule.conference.days", "must be a list"),
        (
            b'{"schedule": {"conference": {"days": [{"date": "2020-12-14", "rooms": {"A": [{"guid": "g1", "title": "T",'
            b' "date": "yesterday", "duration": "00:30"}]}}]}}}',
            "event[1].date",
            "yesterday",
        ),
        (
            b'{"schedule": {"conference": {"days": [{"date": "2020-12-14", "rooms": {"A": [{"guid": "g1", "title": "T",'
            b' "date": "2020-12-14T09:00:00+01:00", "duration": "half an hour"}]}}]}}}',
            "event[1].duration",
            "00:45",
        ),
        (
            b'{"schedule": {"conference": {"days": [{"date": "2020-12-14", "rooms": {"A": [{"title": "T",'
            b' "date": "2020-12-14T09:00:00+01:00", "duration": "00:30"}]}}]}}}',
            "event[1].guid",
            "no guid",
        ),
        (ICS.replace("UID:floating@example.org", "UID:zoned@example.org").encode(), "UID", "share the id"),
        (
            ICS.replace("DTSTART:20260514T140000", "DTSTART:2026-05-14 14:00").encode(),
            "VEVENT[2].DTSTART",
            "",
        ),
        (
            ICS.replace("TZID=Europe/Berlin:20260514T093000", "TZID=Nowhere/Zone:20260514T093000").encode(),
            "VEVENT[1].DTSTART",
            "'Nowhere/Zone', which is neither a known time zone",
        ),
    ],
)
def test_untrusted_files_are_refused_naming_the_field(data: bytes, field: str, words: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(data, "Europe/Berlin")
    assert caught.value.field == field, caught.value.message
    assert words in caught.value.message


async def test_the_cli_previews_with_dry_run_and_imports_without(tmp_path: Path) -> None:
    database = tmp_path / "cli.sqlite3"
    svc = Services.build(
        make_settings(tmp_path, database={"path": str(database)}, archive={"timezone": "Europe/Berlin"})
    )
    await svc.open()
    try:
        event_id = await new_event(svc, "2020-12-14", "2020-12-16")
    finally:
        await svc.close()
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{database}"\n[archive]\ntimezone = "Europe/Berlin"\n')
    command = [
        sys.executable,
        "-m",
        "liveblog",
        "--config",
        str(config),
        "import-programme",
        event_id,
        str(DATA / "pretalx-democon.json"),
    ]
    env = {"LIVEBLOG_SECRET_KEY": "cli-test", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=60, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "36 to create" in dry.stdout and "dry run: nothing was written" in dry.stdout
    assert "+ 2020-12-14 09:00-09:30 Gray Room: Focused 5thgeneration hardware" in dry.stdout
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "imported: 36 to create" in done.stdout
    again = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=60, env=env)
    assert "0 to create" in again.stdout and "36 unchanged" in again.stdout
    bad = subprocess.run(
        [*command[:-1], str(DATA / "schedule.xml.xsd")], capture_output=True, text=True, timeout=60, env=env
    )
    assert bad.returncode == 1 and "not <schedule>" in bad.stderr, bad.stderr


async def test_organisers_preview_then_import_a_programme_on_the_event_page(
    live: LiveServer, seeded: Seed
) -> None:
    data = (DATA / "pretalx-democon.json").read_bytes()
    headers = organiser_csrf(seeded.login_token)
    async with live.client(
        cookies={"lb_login": seeded.login_token}, headers=headers, follow_redirects=False
    ) as org:
        url = f"/organise/events/{seeded.event_id}/import"
        form = await org.get(url)
        assert form.status_code == 200 and 'type="file"' in form.text
        preview = await org.post(
            url,
            files={"file": ("schedule.json", data, "application/json")},
            data={"csrf_token": page_csrf(form.text)},
        )
        assert preview.status_code == 200, preview.text
        assert "36 to create" in preview.text and "Focused 5thgeneration hardware" in preview.text
        assert len(await live.services.programme.sessions(seeded.event_id)) == 2  # nothing written yet
        confirm = page_csrf(preview.text)
        hidden = preview.text.split('name="schedule" value="')[1].split('"')[0]
        done = await org.post(
            url,
            data={"csrf_token": confirm, "schedule": hidden, "filename": "schedule.json", "confirm": "yes"},
        )
        assert done.status_code == 303 and done.headers["location"] == f"/organise/events/{seeded.event_id}"
        bad = await org.post(
            url,
            files={"file": ("schedule.xml", b"<schedule><conference>", "text/xml")},
            data={"csrf_token": page_csrf(form.text)},
        )
        assert bad.status_code == 400 and "not well-formed" in bad.text
    # A browser without JavaScript sends the upload's CSRF token in the form's action (no header).
    async with live.client(cookies={"lb_login": seeded.login_token}, follow_redirects=False) as browser:
        upload = {"file": ("schedule.json", data, "application/json")}
        refused = await browser.post(url, files=upload)
        assert refused.status_code == 403
        token = organiser_csrf(seeded.login_token)["X-CSRF-Token"]
        assert (await browser.post(f"{url}?csrf_token={token}", files=upload)).status_code == 200
    sessions = await live.services.programme.sessions(seeded.event_id)
    assert len(sessions) == 38
    event = await live.services.programme.event(seeded.event_id)
    assert (event.starts_on, event.ends_on) == ("2020-12-14", "2026-05-15")


async def test_an_imported_track_is_a_tag_of_the_sessions_knowledge_page(berlin: Services) -> None:
    event_id = await new_event(berlin, "2020-12-14", "2020-12-16")
    await berlin.imports.apply(event_id, (DATA / "pretalx-democon.json").read_bytes())
    session = next(
        s for s in await berlin.programme.sessions(event_id) if s.title == "Focused 5thgeneration hardware"
    )
    await berlin.programme.set_state(session.id, "live")
    await berlin.programme.set_state(session.id, "ended")
    page = await berlin.archive.knowledge(session.id)
    assert "phased" in page.tags  # the track "Phased", normalised like every tag
    await berlin.archive.settle()  # the background job archives the page its reader asked for
    assert [s.id for s in (await berlin.archive.tag_page("phased")).sessions] == [session.id]


async def test_scripts_import_through_the_api_with_a_dry_run_first(live: LiveServer, seeded: Seed) -> None:
    data = (DATA / "pretalx-democon.json").read_bytes()
    url = f"/api/v1/events/{seeded.event_id}/programme"
    async with live.client(headers={"Authorization": f"Bearer {seeded.login_token}"}) as http:
        dry = await http.post(f"{url}?dry_run=1", content=data)
        assert dry.status_code == 200, dry.text
        plan = dry.json()
        assert plan["dry_run"] and len(plan["create"]) == 36 and plan["days"] == ["2020-12-14", "2026-05-15"]
        assert plan["format"] == "frab-json"
        assert len(await live.services.programme.sessions(seeded.event_id)) == 2
        done = await http.post(url, content=data)
        assert done.json()["dry_run"] is False and len(done.json()["create"]) == 36
        again = (await http.post(f"{url}?dry_run=1", content=data)).json()
        assert again["create"] == [] and again["unchanged"] == 36
        bad = await http.post(url, content=b"<schedule><conference>")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_schedule"
        assert bad.json()["error"]["field"] == "file"
    async with live.client() as anonymous:
        assert (await anonymous.post(url, content=data)).status_code == 401
    assert len(await live.services.programme.sessions(seeded.event_id)) == 38

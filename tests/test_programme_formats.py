"""Programme files from the tools organisers use besides frab/pretalx (issue 24): Sessionize's
JSON (a real recorded "All Data" answer, tests/data/programme/README.md), spreadsheets saved as
CSV, and real iCalendar exports (the `icalendar` package's own test calendars). Each is read into
sessions in the venue's wall clock, re-imported without duplicates, and refused with the entry
and field named when it is wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from liveblog.capture.schedule import ScheduleError, parse_schedule
from liveblog.services import Services
from tests.conftest import LiveServer, Seed, make_settings, organiser_csrf, page_csrf

DATA = Path(__file__).parent / "data" / "programme"
SESSIONIZE = DATA / "sessionize-global-azure-austria-2024.json"


def sessionize() -> dict[str, Any]:
    return json.loads(SESSIONIZE.read_text(encoding="utf-8"))


@pytest.fixture
async def vienna(tmp_path: Path) -> Any:
    """Services whose venue is in Vienna (archive.timezone), as Global Azure Austria's."""
    svc = Services.build(make_settings(tmp_path, archive={"timezone": "Europe/Vienna"}))
    await svc.open()
    try:
        yield svc
    finally:
        await svc.close()


async def new_event(svc: Services, starts: str, ends: str) -> str:
    event = await svc.programme.create_event({"title": "Imported", "starts_on": starts, "ends_on": ends})
    return event.id


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

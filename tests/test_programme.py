"""The programme an organiser runs (issue 17): session times inside the event's days, and
sessions edited, moved, cancelled (still shown, as cancelled) and deleted (confirmed; refused
while the session holds captured items)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from liveblog.capture.notes import Author
from liveblog.capture.votes.common import Voter
from liveblog.services import Services
from tests.conftest import LiveServer, Seed, organiser_csrf


def organiser(live: LiveServer, seed: Seed) -> httpx.AsyncClient:
    return live.client(headers={"Authorization": f"Bearer {seed.login_token}"})


async def test_session_times_outside_the_events_days_are_refused_naming_the_field(
    live: LiveServer, seeded: Seed
) -> None:
    """Before: a session dated 2027-03-01 in a May 2026 event was accepted and shown publicly."""
    async with organiser(live, seeded) as http:
        url = f"/api/v1/events/{seeded.event_id}/sessions"
        cases = [
            ({"starts_at": "2027-03-01T09:00", "ends_at": "2027-03-01T10:00"}, "starts_at"),
            ({"starts_at": "2026-05-13T23:00", "ends_at": "2026-05-14T01:00"}, "starts_at"),
            ({"starts_at": "2026-05-15T22:00", "ends_at": "2026-05-17T01:00"}, "ends_at"),
            ({"starts_at": "2026-05-14T10:00", "ends_at": "2026-05-14T09:00"}, "ends_at"),
        ]
        for times, field in cases:
            refused = await http.post(url, json={"title": "Out of bounds", **times})
            assert refused.status_code == 400, (times, refused.text)
            error = refused.json()["error"]
            assert error["field"] == field, (times, error)
        assert (
            "2026-05-14 to 2026-05-15"
            in (await http.post(url, json={"title": "x", **cases[0][0]})).json()["error"]["message"]
        )
        # A late session on the last day may run past midnight (a conference day ends at 06:00).
        late = await http.post(
            url, json={"title": "Party", "starts_at": "2026-05-15T22:00", "ends_at": "2026-05-16T01:00"}
        )
        assert late.status_code == 201, late.text
        moved = await http.patch(
            f"/api/v1/sessions/{seeded.session_id}", json={"starts_at": "2027-03-01T09:00"}
        )
        assert moved.status_code == 400 and moved.json()["error"]["field"] == "starts_at"
        listing = (await http.get(url)).json()["sessions"]
    assert [s["title"] for s in listing] == ["Keynote", "Workshop", "Party"]


async def test_an_organiser_moves_and_cancels_a_session_which_stays_visible_as_cancelled(
    live: LiveServer, seeded: Seed
) -> None:
    async with organiser(live, seeded) as http:
        url = f"/api/v1/sessions/{seeded.other_session_id}"
        moved = await http.patch(
            url, json={"starts_at": "2026-05-15T14:00", "ends_at": "2026-05-15T15:00", "room": "Hall"}
        )
        assert moved.status_code == 200, moved.text
        assert (moved.json()["starts_at"], moved.json()["room"]) == ("2026-05-15T14:00", "Hall")
        half = await http.patch(url, json={"ends_at": "2026-05-15T13:00"})  # before the stored start
        assert half.status_code == 400 and half.json()["error"]["field"] == "ends_at"
        cancelled = await http.patch(url, json={"cancelled": True})
        assert cancelled.json()["cancelled"] is True
        live_now = await http.patch(url, json={"state": "live"})
        assert live_now.status_code == 409 and live_now.json()["error"]["code"] == "session_cancelled"
        running = await http.patch(f"/api/v1/sessions/{seeded.session_id}", json={"cancelled": True})
        assert running.status_code == 409  # a session that has started is ended, not cancelled
        page = await http.get(f"/events/{seeded.event_id}")
    assert "Workshop" in page.text and "Cancelled" in page.text
    async with live.client() as anyone:
        session_page = await anyone.get(f"/sessions/{seeded.other_session_id}")
    assert "Cancelled" in session_page.text


async def test_deleting_a_session_asks_for_confirmation_and_refuses_while_it_holds_items(
    live: LiveServer, seeded: Seed
) -> None:
    headers = organiser_csrf(seeded.login_token)
    async with live.client(
        cookies={"lb_login": seeded.login_token}, headers=headers, follow_redirects=False
    ) as org:
        empty = f"/organise/sessions/{seeded.other_session_id}"
        unconfirmed = await org.post(empty, data={"form": "delete"})
        assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.text
        await live.services.notes.handle(
            seeded.session_id,
            Author("Ada", seeded.invite_id),
            {"type": "note.create", "client_id": "n1", "body": "A note"},
        )
        busy = await org.post(
            f"/organise/sessions/{seeded.session_id}", data={"form": "delete", "confirm": "yes"}
        )
        assert busy.status_code == 409
        assert "1 captured item" in busy.text
        deleted = await org.post(empty, data={"form": "delete", "confirm": "yes"})
        assert (
            deleted.status_code == 303
            and deleted.headers["location"] == f"/organise/events/{seeded.event_id}"
        )
    titles = [s.title for s in await live.services.programme.sessions(seeded.event_id)]
    assert titles == ["Keynote"]
    async with organiser(live, seeded) as http:
        assert (await http.get(f"/api/v1/sessions/{seeded.other_session_id}")).status_code == 404
        api_busy = await http.delete(f"/api/v1/sessions/{seeded.session_id}")
        assert api_busy.status_code == 409 and api_busy.json()["error"]["code"] == "session_has_items"


async def test_the_events_days_cannot_shrink_past_its_sessions(live: LiveServer, seeded: Seed) -> None:
    async with organiser(live, seeded) as http:
        url = f"/api/v1/events/{seeded.event_id}"
        later = await http.patch(url, json={"starts_on": "2026-05-15"})
        assert later.status_code == 400 and later.json()["error"]["field"] == "starts_on"
        assert "Keynote" in later.json()["error"]["message"]
        inverted = await http.patch(url, json={"ends_on": "2026-05-13"})
        assert inverted.status_code == 400 and inverted.json()["error"]["field"] == "ends_on"
        longer = await http.patch(url, json={"ends_on": "2026-05-16"})
        assert longer.status_code == 200
    event = await live.services.programme.event(seeded.event_id)
    assert (event.starts_on, event.ends_on) == ("2026-05-14", "2026-05-16")


async def test_a_cancelled_slot_given_to_another_talk_is_no_clash_and_the_list_marks_it(
    live: LiveServer, seeded: Seed
) -> None:
    async with organiser(live, seeded) as http:
        await http.patch(f"/api/v1/sessions/{seeded.other_session_id}", json={"cancelled": True})
        other = {
            "title": "Replacement",
            "starts_at": "2026-05-14T11:00",
            "ends_at": "2026-05-14T12:00",
            "room": "Room 2",
        }
        assert (await http.post(f"/api/v1/events/{seeded.event_id}/sessions", json=other)).status_code == 201
    async with live.client(cookies={"lb_login": seeded.login_token}) as org:
        page = await org.get(f"/organise/events/{seeded.event_id}")
    assert 'id="overlaps"' not in page.text
    row = page.text.split(">Workshop</a>")[1].split("</tr>")[0]
    assert "Cancelled" in row


async def test_a_cancelled_session_is_neither_ended_by_the_clock_nor_collected_for(
    services: Services, seeded: Seed
) -> None:
    """A cancelled talk never happened: the scheduled end rule leaves it alone (no empty
    knowledge page), and social feeds collect nothing for it."""
    await services.programme.update_session(seeded.other_session_id, {"cancelled": True})
    archive = services.archive
    archive.settings = type(archive.settings)(end_rule="scheduled", grace_minutes=30)
    assert await archive.archive_due("2026-05-14T12:31") == [seeded.session_id]
    assert (await services.programme.session(seeded.other_session_id)).state == "scheduled"

    soon = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
    event = await services.programme.create_event(
        {
            "title": "Soon",
            "starts_on": soon.date().isoformat(),
            "ends_on": soon.date().isoformat(),
            "hashtags": ["#soon"],
        }
    )
    times = {
        "starts_at": soon.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (soon + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
    }
    kept = await services.programme.create_session(event.id, {"title": "Kept", **times})
    dropped = await services.programme.create_session(event.id, {"title": "Dropped", **times})
    await services.programme.update_session(dropped.id, {"cancelled": True})
    targets = {t.event_id: t for t in await services.feeds.targets()}
    assert [s.session_id for s in targets[event.id].sessions] == [kept.id]


async def test_a_session_holding_items_is_deleted_once_ended_and_exported_and_not_after_a_change(
    live: LiveServer, seeded: Seed
) -> None:
    notes = live.services.notes
    await notes.handle(
        seeded.session_id,
        Author("Ada", seeded.invite_id),
        {"type": "note.create", "client_id": "a", "body": "Kept"},
    )
    headers = organiser_csrf(seeded.login_token)
    page_url = f"/organise/sessions/{seeded.session_id}"
    async with live.client(
        cookies={"lb_login": seeded.login_token}, headers=headers, follow_redirects=False
    ) as org:
        live_refused = await org.post(page_url, data={"form": "delete", "confirm": "yes"})
        assert live_refused.status_code == 409 and "is live" in live_refused.text
        await live.services.programme.set_state(seeded.session_id, "ended")
        unexported = await org.post(page_url, data={"form": "delete", "confirm": "yes"})
        assert unexported.status_code == 409 and "download its export first" in unexported.text
        assert "/export.json" in (await org.get(page_url)).text  # the page offers the export
        export = await org.get(f"{page_url}/export.json")
        assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
        assert [i["body"] for i in export.json()["sessions"][0]["items"]] == ["Kept"]
        # A change after the export (a late note): the export no longer holds everything.
        await notes.handle(
            seeded.session_id,
            Author("Ada", seeded.invite_id),
            {"type": "note.create", "client_id": "b", "body": "Late", "typed_at": "2026-05-14T09:59:00Z"},
        )
        stale = await org.post(page_url, data={"form": "delete", "confirm": "yes"})
        assert stale.status_code == 409 and "changed since its export" in stale.text
        assert (await org.get(f"{page_url}/export.json")).status_code == 200
        deleted = await org.post(page_url, data={"form": "delete", "confirm": "yes"})
        assert deleted.status_code == 303, deleted.text
        assert (await org.get(f"/archive/sessions/{seeded.session_id}")).status_code == 404
    db = live.services.db
    assert await db.read(lambda r: r.get_session(seeded.session_id)) is None
    assert await db.read(lambda r: r.count_session_holdings(seeded.session_id)) == 0
    assert [s.title for s in await live.services.programme.sessions(seeded.event_id)] == ["Workshop"]


async def test_deleting_an_exported_session_removes_all_it_held_and_nothing_else(
    services: Services, seeded: Seed
) -> None:
    """Notes with history, a social post, a poll with votes, an upvoted answered question, a
    comment and a knowledge page: all go with the session, on both backends; the other
    session of the event keeps its own."""
    from tests.archive_fixtures import fill_session

    await fill_session(services, seeded)
    other = await fill_session(services, seeded, seeded.other_session_id)
    open_question, _ = await services.audience.ask(
        seeded.session_id, Voter("p_lateasker00000001"), {"body": "Later?"}
    )
    await services.programme.set_state(seeded.session_id, "ended")
    await services.archive.archive_session(seeded.session_id)
    link, _ = await services.answers.make_link(seeded.session_id, "Rosa")  # an answer after the talk
    await services.answers.answer(link, open_question.id, "Yes, later.")
    reader, _ = await services.readers.register("rosa", "a long reader password")
    await services.comments.post(seeded.session_id, reader, "Thanks!")
    await services.programme.mark_exported(seeded.session_id)
    await services.programme.delete_session(seeded.session_id)
    db = services.db
    assert await db.read(lambda r: r.get_session(seeded.session_id)) is None
    assert await db.read(lambda r: r.count_session_holdings(seeded.session_id)) == 0
    assert await services.answers.session_answers(seeded.session_id) == {}
    assert await services.answers.links(seeded.session_id) == []
    assert await db.read(lambda r: r.count_votes(other.poll_id)) == 3
    assert await db.read(lambda r: r.count_session_holdings(seeded.other_session_id)) > 0

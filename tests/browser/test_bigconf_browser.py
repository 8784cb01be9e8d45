"""A big real programme in the pages: 38C3's published schedule (1,007 talks over four days in ~50
rooms, tests/data/programme) imported into an event whose second day is today at the venue, then
read as a reader on a phone, run as an organiser and chosen from as a note-taker. Each page stays
light (its HTML below a bound), offers days, rooms, tracks and a find box that work without
JavaScript, says what is on now and next, does not scroll sideways and has no serious axe
findings. Sizes and times are printed (-s shows them; bench/bigconf.py measures them alone)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from liveblog.models import Session
from tests.browser.conftest import DESKTOP, PHONE, ThreadServer
from tests.browser.test_ui import serious_axe_violations, sideways

pytestmark = pytest.mark.browser

DATA = Path(__file__).resolve().parents[1] / "data" / "programme"
ZONE = "Europe/Berlin"
MAX_PAGE_BYTES = 600_000  # a phone on a congress's wifi: the whole programme was 1.5 MB
MAX_CHOICES = 60  # options in one select box a person scrolls through


def today_at_the_venue() -> date:
    return datetime.now(ZoneInfo(ZONE)).date()


def the_38c3_running_now() -> bytes:
    """38C3's schedule.xml with its four days (27-30 December 2024) moved so the second is today."""
    text = gzip.decompress((DATA / "38c3-schedule.xml.gz").read_bytes()).decode()
    first = today_at_the_venue() - timedelta(days=1)
    for n in range(4):
        text = text.replace(f"2024-12-{27 + n}", (first + timedelta(days=n)).isoformat())
    return text.encode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadServer]:
    """The seeded server (browser_context uses it) with 38C3 imported into its event."""
    srv = ThreadServer(tmp_path, archive={"timezone": ZONE}).start()
    assert srv.seed is not None
    event_id = srv.seed.event_id
    try:
        srv.call(lambda svc: svc.imports.apply(event_id, the_38c3_running_now()), timeout=120)
        yield srv
    finally:
        srv.stop()


def sessions(server: ThreadServer) -> list[Session]:
    assert server.seed is not None
    event_id = server.seed.event_id
    return server.call(lambda svc: svc.programme.sessions(event_id))


def open_page(page: Page, path: str, label: str) -> int:
    """Load `path`; print its HTML's size and time to first contentful paint; its size."""
    response = page.goto(path)
    assert response is not None and response.ok, path
    size = len(response.body())
    fcp = page.evaluate(
        """() => new Promise((done) => new PerformanceObserver((list, obs) => {
             obs.disconnect(); done(list.getEntries()[0].startTime);
           }).observe({type: "paint", buffered: true}))"""
    )
    print(f"{label}: {size / 1024:.0f} KiB of HTML, first contentful paint {fcp:.0f} ms")
    return size


def checked(page: Page, width: int, problems: dict[str, list[str]], label: str) -> None:
    if bad := sideways(page, width):
        problems[f"{label} sideways"] = bad
    if bad := serious_axe_violations(page):
        problems[label] = bad


def on_now_and_next(all_sessions: list[Session]) -> tuple[set[str], set[str]]:
    now = datetime.now(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")
    running = [s for s in all_sessions if not s.cancelled]
    on = {s.title for s in running if s.starts_at <= now < s.ends_at}
    later = [s.starts_at for s in running if s.starts_at > now and s.starts_at[:10] == now[:10]]
    return on, {s.title for s in running if later and s.starts_at == min(later)}


def test_a_reader_finds_what_is_on_now_and_a_given_talk_on_a_phone(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    assert server.seed is not None
    all_sessions = sessions(server)
    assert len(all_sessions) > 1000
    today = today_at_the_venue().isoformat()
    problems: dict[str, list[str]] = {}
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        ctx = browser_context(viewport=viewport, is_mobile=viewport is PHONE, bypass_csp=True)
        page = ctx.new_page()
        before = on_now_and_next(all_sessions)
        size = open_page(page, f"/events/{server.seed.event_id}", f"programme ({label})")
        assert size < MAX_PAGE_BYTES
        # Today's programme, with the other days one tap away.
        days = page.get_by_role("navigation", name="Days of the programme")
        expect(days.get_by_role("link")).to_have_count(len({s.starts_at[:10] for s in all_sessions}))
        expect(days.locator("[aria-current=page]")).to_contain_text("today")
        shown = {s.id for s in all_sessions if s.starts_at[:10] == today}
        cards = page.locator("#programme a.session-card")
        assert {c.get_attribute("data-session") for c in cards.all()} == shown
        # What is on now and next, by the venue's clock (the minute may turn while the page loads).
        now_section = page.get_by_role("region", name="On now and next")
        on = set(now_section.locator("#on-now li a").all_inner_texts())
        up = set(now_section.locator("#up-next li a").all_inner_texts())
        assert (on, up) in (before, on_now_and_next(all_sessions)), (on, up)
        # A jump to the programme's present moment: the last start time so far today.
        now = datetime.now(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")
        started = [
            s.starts_at[11:16] for s in all_sessions if s.starts_at[:10] == today and s.starts_at <= now
        ]
        if started:
            page.get_by_role("link", name="Jump to now in the programme").click()
            expect(page.locator("#now")).to_be_in_viewport()
            # (or the one before it, if a slot started while the page loaded)
            assert page.locator("#now .slot-time").inner_text() in sorted(set(started))[-2:]
        page.screenshot(path=str(screenshot_dir / f"bigconf-programme-{label}.png"))
        checked(page, viewport["width"], problems, f"programme-{label}")

    # A given talk, on another day, found by words of its title; then a room's day.
    talk = next(s for s in all_sessions if s.title == "38C3: Opening Ceremony")
    page.get_by_label("Find a talk, speaker or room").fill("opening ceremony")
    page.get_by_role("button", name="Find").click()
    expect(page.locator(f'#programme a.session-card[data-session="{talk.id}"]')).to_be_visible()
    assert page.locator("#programme a.session-card").count() < 10
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Room", exact=True).select_option("Saal 1")
    page.get_by_role("button", name="Find").click()
    rooms = set(page.locator("#programme .session-card-room").all_inner_texts())
    assert rooms == {"Saal 1"}, rooms
    assert not problems, problems


def test_the_programme_finds_a_talk_without_javascript(browser_context: Any, server: ThreadServer) -> None:
    assert server.seed is not None
    page = browser_context(viewport=PHONE, java_script_enabled=False).new_page()
    page.goto(f"/events/{server.seed.event_id}")
    page.get_by_label("Track", exact=True).select_option("Hardware & Making")
    page.get_by_label("Find a talk, speaker or room").fill("silicon")
    page.get_by_label("Find a talk, speaker or room").press("Enter")  # from the keyboard
    titles = page.locator("#programme .session-card-title").all_inner_texts()
    want = {
        s.title
        for s in sessions(server)
        if "Hardware & Making" in s.tags and "silicon" in f"{s.title} {' '.join(s.speakers)} {s.room}".lower()
    }
    assert want and set(titles) == want


def test_the_organiser_runs_a_1000_session_event_from_a_phone(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    assert server.seed is not None
    today = today_at_the_venue().isoformat()
    all_sessions = sessions(server)
    problems: dict[str, list[str]] = {}
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        ctx = browser_context(viewport=viewport, is_mobile=viewport is PHONE, bypass_csp=True)
        ctx.add_cookies([{"name": "lb_login", "value": server.seed.login_token, "url": server.url}])
        page = ctx.new_page()
        size = open_page(page, f"/organise/events/{server.seed.event_id}", f"organiser's event ({label})")
        assert size < MAX_PAGE_BYTES
        days = page.get_by_role("navigation", name="Days of the programme")
        expect(days.locator("[aria-current=page]")).to_contain_text("today")
        rows = page.locator("#sessions-table tbody tr")
        expect(rows).to_have_count(sum(1 for s in all_sessions if s.starts_at[:10] == today))
        assert page.locator("#i-session option").count() <= MAX_CHOICES
        page.screenshot(path=str(screenshot_dir / f"bigconf-organise-{label}.png"))
        checked(page, viewport["width"], problems, f"organise-{label}")

    # Inviting a note-taker to one talk: find it, then invite from the form.
    talk = next(s for s in all_sessions if s.title == "38C3: Opening Ceremony")
    page.get_by_label("Find a talk, speaker or room").fill("opening ceremony")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("link", name=talk.title, exact=True)).to_be_visible()
    page.get_by_label("Name").fill("Nora")
    page.locator("#i-session").select_option(talk.id)
    page.get_by_role("button", name="Create invite link").click()
    expect(page.locator("#new-invite")).to_contain_text("Nora")
    invites = server.call(lambda svc: svc.accounts.invites(talk.event_id))
    assert any(i.name == "Nora" and i.session_id == talk.id for i in invites)
    # The moderation entry point of a session is in its row.
    page.get_by_role("link", name=f"Polls and questions of {talk.title}").click()
    expect(page).to_have_url(re.compile(f"/organise/sessions/{talk.id}/moderate$"))
    assert not problems, problems


def find_the_opening_on_a_phone(browser_context: Any, path: str, label: str, screenshot_dir: Path) -> Page:
    """Open a listing page on a phone (light, today first, no sideways scrolling, no serious axe
    findings) and find 38C3's opening ceremony by words in it."""
    page = browser_context(viewport=PHONE, is_mobile=True, bypass_csp=True).new_page()
    size = open_page(page, path, f"{label} (phone)")
    assert size < MAX_PAGE_BYTES
    days = page.get_by_role("navigation", name="Days of the programme")
    expect(days.locator("[aria-current=page]")).to_contain_text("today")
    page.screenshot(path=str(screenshot_dir / f"bigconf-{label.replace(' ', '-')}-phone.png"))
    problems: dict[str, list[str]] = {}
    checked(page, PHONE["width"], problems, label)
    assert not problems, problems
    page.get_by_label("Find a talk, speaker or room").fill("opening ceremony")
    page.get_by_role("button", name="Find").click()
    return page


def test_a_note_taker_picks_their_session_among_1000(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    assert server.seed is not None
    event_id = server.seed.event_id
    _, token = server.call(lambda svc: svc.accounts.invite(event_id, None, "Eve"))
    talk = next(s for s in sessions(server) if s.title == "38C3: Opening Ceremony")
    page = find_the_opening_on_a_phone(browser_context, f"/n/{token}", "note-taker's choice", screenshot_dir)
    page.get_by_role("link", name=re.compile("^38C3: Opening Ceremony")).click()
    expect(page).to_have_url(re.compile(f"/n/{token}/sessions/{talk.id}$"))


def test_the_events_archive_of_1000_sessions_is_read_a_day_at_a_time(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    assert server.seed is not None
    talk = next(s for s in sessions(server) if s.title == "38C3: Opening Ceremony")
    path = f"/events/{server.seed.event_id}/archive"
    page = find_the_opening_on_a_phone(browser_context, path, "event's archive", screenshot_dir)
    expect(page.get_by_role("link", name=talk.title, exact=True)).to_have_attribute(
        "href", f"/sessions/{talk.id}"
    )
    # The chart of contributions per session: the busiest few, not a bar for each of 1,000.
    chart = page.locator("figure", has_text="Contributions per session").locator("svg")
    assert chart.locator("rect").count() <= 20
    assert chart.bounding_box()["height"] < 2 * PHONE["height"]  # type: ignore[index]


def test_the_moderation_log_of_a_1000_session_event_offers_the_sessions_it_logs(
    browser_context: Any, server: ThreadServer
) -> None:
    assert server.seed is not None
    event_id = server.seed.event_id
    talk = next(s for s in sessions(server) if s.title == "38C3: Opening Ceremony")

    async def hidden_question(svc: Any) -> None:  # what hiding a question logs
        await svc.db.write(
            lambda tx: tx.record_moderation(
                session_id=talk.id, actor="org", action="hide", target_kind="question", target_id=1
            )
        )

    server.call(hidden_question)
    ctx = browser_context(viewport=PHONE, is_mobile=True, bypass_csp=True)
    ctx.add_cookies([{"name": "lb_login", "value": server.seed.login_token, "url": server.url}])
    page = ctx.new_page()
    page.goto(f"/organise/events/{event_id}")
    page.get_by_role("link", name="Moderation log").click()
    choices = page.get_by_label("Session", exact=True).locator("option")
    assert choices.all_inner_texts() == ["All sessions", talk.title]  # those it logs
    page.get_by_label("Session", exact=True).select_option(talk.id)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#moderation-log tbody tr")).to_have_count(1)
    assert serious_axe_violations(page) == []


def test_the_programmes_live_badges_poll_light_and_revalidate(
    browser_context: Any, server: ThreadServer
) -> None:
    """Every open programme asks for its sessions' states every 30 s: with 1,000 sessions that was
    1.5 MB of JSON (abstracts and all) a time, for each reader."""
    assert server.seed is not None
    page = browser_context(viewport=PHONE, is_mobile=True).new_page()
    page.goto(f"/events/{server.seed.event_id}")
    with page.expect_response(lambda r: "/api/v1/events/" in r.url) as polled:
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # a poll, now
    response = polled.value
    assert response.ok
    size = len(response.body())
    print(f"the programme's poll: {size / 1024:.0f} KiB")
    assert size < 100_000
    etag = response.headers.get("etag")
    assert etag
    again = page.request.get(response.url, headers={"if-none-match": etag})
    assert again.status == 304
    # A change of state is seen by the next poll (the ETag is the states' own).
    server.call(lambda svc: svc.programme.set_state(server.seed.other_session_id, "live"))  # type: ignore[union-attr]
    assert page.request.get(response.url, headers={"if-none-match": etag}).status == 200
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#live-list")).to_contain_text("Workshop")

"""What an organiser sees running the programme (issue 17): importing a pretalx schedule.json
through its preview, cancelling a session (still in the programme, marked), and a delete that
asks first. Screenshots at 390 px and desktop, no sideways scrolling, no serious axe findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, ThreadServer
from tests.browser.test_ui import serious_axe_violations, sideways

pytestmark = pytest.mark.browser

DEMOCON = Path(__file__).resolve().parents[1] / "data" / "programme" / "pretalx-democon.json"
SESSIONIZE = DEMOCON.with_name("sessionize-global-azure-austria-2024.json")


def organiser_page(browser_context: Any, server: ThreadServer, viewport: dict[str, int]) -> Any:
    assert server.seed is not None
    ctx = browser_context(
        viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE, bypass_csp=True
    )
    ctx.add_cookies([{"name": "lb_login", "value": server.seed.login_token, "url": server.url}])
    return ctx.new_page()


def test_an_organiser_previews_then_imports_a_programme(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    assert server.seed is not None
    problems: dict[str, list[str]] = {}
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = organiser_page(browser_context, server, viewport)
        page.goto(f"/organise/events/{server.seed.event_id}")
        page.get_by_role("link", name="Import a programme").click()
        page.get_by_label("Programme file").set_input_files(str(DEMOCON))
        page.get_by_role("button", name="Preview the import").click()
        preview = page.locator("#import-preview")
        expect(preview).to_contain_text("36 to create")
        expect(preview).to_contain_text("the event's days become 2020-12-14 to 2026-05-15")
        expect(page.locator("#import-rows tbody tr")).to_have_count(36)
        page.screenshot(path=str(screenshot_dir / f"programme-import-preview-{label}.png"), full_page=True)
        if bad := sideways(page, viewport["width"]):
            problems[f"preview-{label} sideways"] = bad
        if bad := serious_axe_violations(page):
            problems[f"preview-{label}"] = bad
    page.get_by_role("button", name="Import these sessions").click()
    expect(page).to_have_url(f"{server.url}/organise/events/{server.seed.event_id}")
    expect(page.get_by_role("link", name="Focused 5thgeneration hardware", exact=True)).to_be_visible()
    assert problems == {}, problems


def test_the_file_chooser_takes_sessionize_and_spreadsheets_and_the_preview_names_the_format(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path, tmp_path: Path
) -> None:
    assert server.seed is not None
    sheet = tmp_path / "programme.csv"
    sheet.write_bytes(
        "\ufeffTitle;Date;Start;End;Room;Speakers\r\n"
        "Opening;2026-05-14;09:00;09:30;Main hall;Ada Lovelace\r\n"
        ";;;;;\r\n"
        "Closing;2026-05-14;17:00;17:30;Main hall;\r\n".encode()
    )
    page = organiser_page(browser_context, server, PHONE)
    page.goto(f"/organise/events/{server.seed.event_id}/import")
    chooser = page.get_by_label("Programme file")
    accepted = chooser.get_attribute("accept") or ""
    assert {".xml", ".json", ".ics", ".csv", "text/csv"} <= set(accepted.split(",")), accepted
    problems: dict[str, list[str]] = {}
    for path, name, count in ((SESSIONIZE, "Sessionize JSON", 15), (sheet, "spreadsheet CSV", 2)):
        page.get_by_label("Programme file").set_input_files(str(path))
        page.get_by_role("button", name="Preview the import").click()
        expect(page.locator("#import-format")).to_have_text(name)
        expect(page.locator("#import-rows tbody tr")).to_have_count(count)
        label = "sessionize" if path is SESSIONIZE else "csv"
        page.screenshot(path=str(screenshot_dir / f"programme-import-{label}-phone.png"), full_page=True)
        if bad := sideways(page, PHONE["width"]):
            problems[f"{label} sideways"] = bad
        if bad := serious_axe_violations(page):
            problems[label] = bad
    assert problems == {}, problems


def test_a_cancelled_session_stays_in_the_programme_and_a_delete_asks_first(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    assert server.seed is not None
    workshop = f"/organise/sessions/{server.seed.other_session_id}"
    problems: dict[str, list[str]] = {}
    viewer = browser_context().new_page()  # someone reading the session's page meanwhile
    viewer.goto(f"/sessions/{server.seed.other_session_id}")
    expect(viewer.locator("#session-state")).to_have_text("Scheduled")
    expect(viewer.locator("#connection")).to_have_attribute("data-state", "live")
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = organiser_page(browser_context, server, viewport)
        page.goto(workshop)
        if label == "phone":
            page.get_by_role("button", name="Cancel the session").click()
            expect(viewer.locator("#session-state")).to_have_text("Cancelled")  # live, without a reload
        expect(page.locator(".page-head .state-cancelled")).to_have_text("Cancelled")
        expect(page.get_by_role("button", name="Restore the session")).to_be_visible()
        page.locator("#cancel-heading").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / f"programme-session-cancelled-{label}.png"), full_page=True)
        page.goto(f"/events/{server.seed.event_id}")
        card = page.locator(".session-card", has_text="Workshop")
        expect(card.locator(".state-cancelled")).to_have_text("Cancelled")
        page.screenshot(path=str(screenshot_dir / f"programme-event-cancelled-{label}.png"), full_page=True)
        if bad := sideways(page, viewport["width"]):
            problems[f"event-{label} sideways"] = bad
        if bad := serious_axe_violations(page):
            problems[f"event-{label}"] = bad

    # Delete: the box must be ticked, then the page asks (static/js/confirm.js); Cancel keeps it.
    page = organiser_page(browser_context, server, DESKTOP)
    page.goto(workshop)
    page.get_by_label("Yes, delete this session for good").check()
    page.get_by_role("button", name="Delete the session").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("for good")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(f"{server.url}{workshop}")
    page.get_by_role("button", name="Delete the session").click()
    dialog.get_by_role("button", name="Delete the session").click()
    expect(page).to_have_url(f"{server.url}/organise/events/{server.seed.event_id}")
    expect(page.get_by_role("link", name="Workshop", exact=True)).to_have_count(0)
    assert problems == {}, problems


def test_the_programmes_badges_update_past_a_cancelled_session(
    browser_context: Any, server: ThreadServer
) -> None:
    """A cancelled card has no state badge of its own; the poll goes on to the cards after it."""
    assert server.seed is not None
    seed = server.seed

    async def lunch_talk(svc: Any) -> str:
        await svc.programme.update_session(seed.other_session_id, {"cancelled": True})
        made = await svc.programme.create_session(
            seed.event_id,
            {
                "title": "Lunch talk",
                "starts_at": "2026-05-14T13:00",
                "ends_at": "2026-05-14T14:00",
                "room": "Hall",
            },
        )
        return str(made.id)

    later = server.call(lunch_talk)
    page = browser_context().new_page()
    page.goto(f"/events/{seed.event_id}")
    server.call(lambda svc: svc.programme.set_state(later, "live"))
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # a poll, now
    expect(page.locator(f'a.session-card[data-session="{later}"] [data-state-badge]')).to_have_text("Live")
    expect(page.locator(".session-card", has_text="Workshop").locator(".state-cancelled")).to_have_text(
        "Cancelled"
    )

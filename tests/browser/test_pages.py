"""The public and organiser pages in headless Chromium: a viewer that loses its connection catches
up without a reload or duplicates, "N new items" instead of jumping, the viewer's controls,
axe-core on every page, and screenshots at desktop and phone widths (artifacts/screenshots/)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import axe_playwright_python
import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from liveblog.demo import load_demo
from liveblog.services import Services
from liveblog.streams.protocol import CloseCode
from tests.browser.conftest import DESKTOP, PHONE, ThreadServer
from tests.wsclient import raw_handshake

pytestmark = pytest.mark.browser


def post_notes(server: ThreadServer, bodies: list[str], **extra: Any) -> list[int]:
    """Post notes through the HTTP capture API as the seeded note-taker; returns the item ids."""
    assert server.seed is not None
    ids = []
    with httpx.Client(
        base_url=server.url, timeout=10, headers={"authorization": f"Bearer {server.seed.token}"}
    ) as c:
        for body in bodies:
            r = c.post(
                f"/api/v1/sessions/{server.session_id}/capture",
                json={"client_id": str(uuid.uuid4()), "body": body, **extra},
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["item_id"])
    return ids


def open_viewer(ctx: BrowserContext, server: ThreadServer) -> Page:
    page = ctx.new_page()
    page.goto(server.viewer_url())
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


def assert_each_once(page: Page, ids: list[int]) -> None:
    for item_id in ids:
        expect(page.locator(f'#items > article[data-id="{item_id}"]')).to_have_count(1)


def test_viewer_that_goes_offline_catches_up_once_without_reload(
    browser_context: Any, server: ThreadServer
) -> None:
    before = post_notes(server, ["before the drop"])
    ctx = browser_context()
    page = open_viewer(ctx, server)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    assert_each_once(page, before)

    ctx.set_offline(True)
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    expect(page.locator("#connection")).to_contain_text("Offline")
    during = post_notes(server, [f"while offline {i}" for i in range(5)])
    ctx.set_offline(False)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    after = post_notes(server, ["after the wifi came back"])
    assert_each_once(page, before + during + after)
    expect(page.locator("#items > article")).to_have_count(len(before + during + after))
    assert page.evaluate("window.__sameDocument") is True
    # Newest first by default, in typed order.
    shown = page.locator("#items > article").evaluate_all("els => els.map(e => Number(e.dataset.id))")
    assert shown == list(reversed(before + during + after))


def test_viewer_reconnects_when_the_server_closes_the_socket(
    browser_context: Any, server: ThreadServer
) -> None:
    first = post_notes(server, ["one", "two"])
    ctx = browser_context()
    page = open_viewer(ctx, server)
    page.evaluate("window.__sameDocument = true")
    session_id = server.session_id

    async def drop_viewers(svc: Services) -> int:
        channel = svc.hub.channels[session_id]
        outlets = list(channel.live)
        for outlet in outlets:
            outlet.close(CloseCode.SERVICE_RESTART, "restarting")
        return len(outlets)

    assert server.call(drop_viewers) == 1
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    more = post_notes(server, [f"during the restart {i}" for i in range(3)])
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert_each_once(page, first + more)
    expect(page.locator("#items > article")).to_have_count(5)
    assert page.evaluate("window.__sameDocument") is True


# Every countdown the viewer shows when it starts waiting to reconnect, in order.
# Watching from before the page's own scripts run: a shed that comes before DOMContentLoaded (a
# loaded machine) is recorded too.
RECORD_WAITS = """
window.__waits = [];
new MutationObserver((records) => {
  for (const { target } of records) {
    if (target.id !== "connection") continue;
    const tick = target.querySelector(".countdown");
    if (target.dataset.state === "reconnecting" && tick) window.__waits.push(tick.textContent);
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
"""


def test_a_viewer_shed_by_a_full_server_waits_as_told_then_reconnects(
    browser: Browser, tmp_path: Path
) -> None:
    server = ThreadServer(tmp_path, streams={"max_viewers": 1, "retry_after_seconds": 3}).start()
    port = int(server.url.rsplit(":", 1)[1])
    holder = raw_handshake(port, f"/ws/v1/sessions/{server.session_id}")  # the only slot
    ctx = browser.new_context(base_url=server.url, viewport=DESKTOP)
    try:
        ctx.set_default_timeout(15_000)
        page = ctx.new_page()
        page.add_init_script(RECORD_WAITS)
        page.goto(server.viewer_url())
        connection = page.locator("#connection")
        expect(connection).to_have_attribute("data-state", "reconnecting")
        page.wait_for_function("() => window.__waits.length > 0")
        # The first wait is the hint (3 s) jittered up to twice it, not the first back-off's 1 s.
        assert re.fullmatch(r" in [3-6] s…", page.evaluate("window.__waits[0]")), page.evaluate(
            "window.__waits"
        )
        assert server.services.hub.shed >= 1
        holder.close()  # the slot is free: the page comes back by itself and catches up
        server.wait_for(lambda: server.services.hub.viewer_sockets == 0, message="the slot freed")
        expect(connection).to_have_attribute("data-state", "live")
        [shown] = post_notes(server, ["after the crowd thinned"])
        assert_each_once(page, [shown])
    finally:
        holder.close()  # also when an assertion failed: never left for a later test's collector
        ctx.close()
        server.stop()


def test_new_items_button_when_scrolled_away(browser_context: Any, server: ThreadServer) -> None:
    post_notes(server, [f"Earlier note {i}\n\nwith a second paragraph to take some room" for i in range(25)])
    ctx = browser_context(viewport=PHONE)
    page = open_viewer(ctx, server)
    new_button = page.locator("#new-items")
    # At the newest end (the top, newest first) a new note simply appears.
    [shown] = post_notes(server, ["arrives at the top"])
    expect(page.locator(f"#item-{shown}")).to_be_visible()
    expect(new_button).to_be_hidden()
    expect(page.locator("#announcer")).to_have_text("New note from Ada: arrives at the top")

    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    fresh = post_notes(server, ["fresh one", "fresh two"])
    expect(new_button).to_have_text("2 new items")
    expect(new_button).to_be_visible()
    for item_id in fresh:
        expect(page.locator(f"#item-{item_id}")).to_be_hidden()
    expect(page.locator("#announcer")).to_have_text("2 new items")

    new_button.click()
    expect(new_button).to_be_hidden()
    expect(page.locator(f"#item-{fresh[-1]}")).to_be_focused()
    for item_id in fresh:
        expect(page.locator(f"#item-{item_id}")).to_be_visible()

    # In a hidden tab the title counts what arrived; seeing the tab again clears it.
    title = page.title()
    set_hidden = """(hidden) => {
        Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
        Object.defineProperty(document, "visibilityState", { value: hidden ? "hidden" : "visible", configurable: true });
        document.dispatchEvent(new Event("visibilitychange"));
    }"""
    page.evaluate(set_hidden, True)
    post_notes(server, ["while away one", "while away two", "while away three"])
    expect(page).to_have_title(f"(3) {title}")
    page.evaluate(set_hidden, False)
    expect(page).to_have_title(title)


def test_viewer_controls_filters_order_keys_key_points_and_video(
    browser_context: Any, server: ThreadServer
) -> None:
    plain, key = post_notes(server, ["A plain note", "The **main** point"])
    post_notes(server, ["This one is key"], key_point=True)
    ctx = browser_context()
    # No third-party request ever leaves the test, even when a player is asked for.
    ctx.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith(server.url) else route.abort()
    )
    page = open_viewer(ctx, server)
    items = page.locator("#items > article")

    # A key point arrives live: highlighted, listed, announced politely.
    [video] = post_notes(
        server, ["Watch it again: https://www.youtube.com/watch?v=dQw4w9WgXcQ"], key_point=True
    )
    expect(page.locator(f"#item-{video}.key-point")).to_be_visible()
    expect(page.locator("#key-points li")).to_have_count(2)
    expect(page.locator("#key-points li").last).to_contain_text("Watch it again")
    expect(page.locator("#announcer")).to_contain_text("Key point from Ada: Watch it again")

    # Click-to-load video: no iframe until asked.
    expect(page.locator("iframe")).to_have_count(0)
    page.locator(f"#item-{video} button.play-embed").click()
    expect(page.locator(f"#item-{video} iframe.embed-frame")).to_have_attribute(
        "src", "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
    )

    page.get_by_role("button", name="Key points", exact=True).click()
    expect(page.locator("#items > article:visible")).to_have_count(2)
    page.get_by_role("button", name="All", exact=True).click()
    expect(page.locator("#items > article:visible")).to_have_count(4)

    # Oldest first, remembered across a reload.
    page.locator("#order-toggle").click()
    expect(page.locator("#order-toggle")).to_have_text("Oldest first")
    assert items.first.get_attribute("data-id") == str(plain)
    page.reload()
    expect(page.locator("#order-toggle")).to_have_text("Oldest first")
    assert items.first.get_attribute("data-id") == str(plain)

    # j / k move between items.
    page.locator("h1").click()
    page.keyboard.press("j")
    expect(items.nth(0)).to_be_focused()
    page.keyboard.press("j")
    expect(items.nth(1)).to_be_focused()
    page.keyboard.press("k")
    expect(items.nth(0)).to_be_focused()

    # Permalinks highlight their item; edits and deletes apply live.
    page.goto(f"{server.viewer_url()}#item-{key}")
    expect(page.locator(f"#item-{key}")).to_have_class(re.compile(r"\bis-target\b"))
    assert server.seed is not None
    with httpx.Client(
        base_url=server.url, timeout=10, headers={"authorization": f"Bearer {server.seed.token}"}
    ) as c:
        r = c.post(
            f"/api/v1/sessions/{server.session_id}/capture",
            json={
                "type": "note.update",
                "client_id": str(uuid.uuid4()),
                "item_id": plain,
                "body": "An edited note",
            },
        )
        assert r.status_code in (200, 201), r.text
        r = c.post(
            f"/api/v1/sessions/{server.session_id}/capture",
            json={"type": "note.delete", "client_id": str(uuid.uuid4()), "item_id": key},
        )
        assert r.status_code in (200, 201), r.text
    expect(page.locator(f"#item-{plain}")).to_contain_text("An edited note")
    expect(page.locator(f"#item-{key}")).to_have_count(0)
    expect(items).to_have_count(3)


def test_viewer_replaces_its_items_with_the_snapshot_on_reload(
    browser_context: Any, server: ThreadServer
) -> None:
    """A page rendered from an older epoch (say, before the stream was rebuilt) is told to reload:
    it swaps its items for the server's snapshot in place, without reloading the page."""
    ids = post_notes(server, ["kept", "also kept"])
    ctx = browser_context()

    # Make the page look older than the stream before viewer.js reads it. (Rewriting the HTML
    # with route.fulfill would make Chromium treat the page as non-local and block its socket.)
    ctx.add_init_script("""
      new MutationObserver((changes, observer) => {
        const stream = document.getElementById("stream");
        const stale = document.querySelector("#items > article:first-child .item-body");
        if (stream && stale) {
          stream.dataset.epoch = "anOldEpoch";
          stale.textContent = "a stale copy";
          observer.disconnect();
        }
      }).observe(document, {childList: true, subtree: true});
    """)
    page = ctx.new_page()
    page.goto(server.viewer_url())
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert_each_once(page, ids)
    expect(page.locator("#items")).not_to_contain_text("a stale copy")
    expect(page.locator(f"#item-{ids[1]}")).to_contain_text("also kept")
    later = post_notes(server, ["after the reload"])
    assert_each_once(page, ids + later)
    expect(page.locator("#items > article")).to_have_count(3)


# -- every page: accessibility and screenshots ------------------------------------------------

AXE_JS = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()  # axe-core, bundled offline


def pages_to_check(server: ThreadServer, extra: dict[str, str]) -> dict[str, str]:
    assert server.seed is not None
    s = server.seed
    return {
        "home": "/",
        "event": f"/events/{extra['event']}",
        "viewer": f"/sessions/{extra['live_session']}",
        "embed": f"/embed/sessions/{extra['live_session']}",
        "login": "/login",
        "error": "/sessions/no-such-session",
        "organise": "/organise",
        "organise-new-event": "/organise/events/new",
        "organise-event": f"/organise/events/{extra['event']}",
        "organise-session": f"/organise/sessions/{extra['live_session']}",
        "notetaker": f"/n/{s.token}/sessions/{s.session_id}",
        "around": f"/events/{extra['event']}/around",
        "organise-feeds": f"/organise/events/{extra['event']}/feeds",
        "organise-event-social": f"/organise/events/{extra['event']}/social",
    }


def load_demo_event(server: ThreadServer) -> dict[str, str]:
    """The demo programme (invented content) plus a photo-free video note, so pages look real."""
    ids = server.call(load_demo)
    return ids


def login(ctx: BrowserContext, server: ThreadServer) -> None:
    assert server.seed is not None
    ctx.add_cookies([{"name": "lb_login", "value": server.seed.login_token, "url": server.url}])


def test_axe_finds_no_serious_violations_on_any_page(browser_context: Any, server: ThreadServer) -> None:
    ids = load_demo_event(server)
    ctx = browser_context(bypass_csp=True)  # axe is injected as an inline script
    login(ctx, server)
    page = ctx.new_page()
    problems = {}
    for name, path in pages_to_check(server, ids).items():
        page.goto(path)
        page.wait_for_load_state("load")
        page.add_script_tag(content=AXE_JS)
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        assert result["passes"], f"axe did not run on {name}"
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if bad:
            problems[name] = bad
    assert problems == {}


SCREENSHOTS = ["home", "event", "viewer", "embed", "login", "organise-event", "organise-session", "error"]


def test_screenshots_at_desktop_and_phone_widths(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    ids = load_demo_event(server)
    session_id = ids["live_session"]

    async def extra_notes(svc: Services) -> None:
        from liveblog.capture.notes import Author

        invite, _ = await svc.accounts.invite(ids["event"], session_id, "Sam")
        for body, key in [
            ("The recording of last year's talk: https://www.youtube.com/watch?v=dQw4w9WgXcQ", False),
            (
                "**Shared notebook** beats shared case studies: people update it when it is cheap to do so",
                True,
            ),
        ]:
            await svc.notes.handle(
                session_id,
                Author.from_invite(invite),
                {"type": "note.create", "client_id": str(uuid.uuid4()), "body": body, "key_point": key},
            )

    server.call(extra_notes)
    paths = pages_to_check(server, ids)
    csp_errors: list[str] = []
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        ctx = browser_context(viewport=viewport)
        login(ctx, server)
        page = ctx.new_page()
        page.on(
            "console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None
        )
        for name in SCREENSHOTS:
            page.goto(paths[name])
            if name in ("viewer", "embed"):
                expect(page.locator("#connection")).to_have_attribute("data-state", "live")
            page.screenshot(path=str(screenshot_dir / f"{name}-{label}.png"), full_page=name != "viewer")
            # Nothing may stick out sideways (a long URL once widened the phone layout).
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"{name} at {label} width scrolls sideways: {width}"
        # A fresh invite link, with its copy button and QR code.
        page.goto(paths["organise-session"])
        page.get_by_label("Name").fill(f"Robin ({label})")
        page.get_by_role("button", name="Create invite link").click()
        expect(page.locator("#invite-url")).to_have_value(re.compile(r"/n/"))
        expect(page.locator(".qr svg")).to_be_visible()
        page.screenshot(path=str(screenshot_dir / f"organise-invite-{label}.png"))
        ctx.close()
    assert csp_errors == []
    assert (screenshot_dir / "viewer-phone.png").stat().st_size > 10_000


def test_an_organiser_removes_a_note_after_confirming_and_viewers_lose_it_live(
    browser_context: Any, server: ThreadServer
) -> None:
    (note_id,) = post_notes(server, ["An embarrassing typo in a speaker's name"])
    viewer = open_viewer(browser_context(), server)
    expect(viewer.locator(f"#item-{note_id}")).to_have_count(1)
    ctx = browser_context()
    login(ctx, server)
    page = ctx.new_page()
    page.goto(f"/organise/sessions/{server.session_id}")
    remove = (
        page.locator(".moderation-note")
        .filter(has_text="embarrassing typo")
        .get_by_role("button", name=re.compile("Remove"))
    )
    remove.click()
    dialog = page.get_by_role("dialog", name="Remove this note from the stream for everyone?")
    dialog.get_by_role("button", name="Cancel").click()  # changed their mind: nothing happens
    expect(dialog).to_be_hidden()
    expect(viewer.locator(f"#item-{note_id}")).to_have_count(1)
    assert [i.id for i in server.items()] == [note_id]
    remove.click()
    dialog.get_by_role("button", name="Remove").click()
    expect(page.locator(".moderation-note").filter(has_text="embarrassing typo")).to_have_count(0)
    expect(viewer.locator(f"#item-{note_id}")).to_have_count(0)  # gone live, no reload
    assert server.items() == []

"""What people see, page by page, at phone and desktop widths (issue 8 §4): no page scrolls
sideways, organisers and note-takers find the polls-and-questions page and the big screen, an
ended session says so everywhere (live, without a reload), the phone viewer reaches polls and
questions in one tap, the stream can be paused, photos wait in the outbox while offline, and
the item card is the same whether the server or the browser drew it."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import Any

import axe_playwright_python
import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from liveblog.capture.notes import Author
from liveblog.capture.votes import Voter
from liveblog.demo import load_demo
from liveblog.services import Services
from tests.browser.conftest import DESKTOP, PHONE, ThreadServer

pytestmark = pytest.mark.browser


def login(ctx: BrowserContext, server: ThreadServer) -> None:
    assert server.seed is not None
    ctx.add_cookies([{"name": "lb_login", "value": server.seed.login_token, "url": server.url}])


def every_page(server: ThreadServer, demo: dict[str, str]) -> dict[str, str]:
    """Every page a person can reach, with the demo's content so they look real."""
    assert server.seed is not None
    s = server.seed
    return {
        "home": "/",
        "event": f"/events/{demo['event']}",
        "viewer": f"/sessions/{demo['live_session']}",
        "viewer-ended": f"/sessions/{demo['ended_session']}",
        "embed": f"/embed/sessions/{demo['live_session']}",
        "screen": f"/sessions/{demo['live_session']}/screen",
        "login": "/login",
        "error": "/sessions/no-such-session",
        "organise": "/organise",
        "organise-new-event": "/organise/events/new",
        "organise-event": f"/organise/events/{demo['event']}",
        "organise-session": f"/organise/sessions/{demo['live_session']}",
        "organise-moderate": f"/organise/sessions/{demo['live_session']}/moderate",
        "organise-comments": "/organise/comments",
        "organise-readers": "/organise/readers",
        "notetaker-landing": demo["invite_url"],
        "notetaker": f"{demo['invite_url']}/sessions/{demo['live_session']}",
        "notetaker-seeded": f"/n/{s.token}/sessions/{s.session_id}",
        "notetaker-moderate": f"/n/{s.token}/sessions/{s.session_id}/moderate",
    }


def sideways(page: Page, width: int) -> list[str]:
    """The elements that stick out past the right edge of a `width` px screen (empty when none).

    Compared with the viewport's width, not window.innerWidth: a phone browser widens its
    layout viewport to fit content that is too wide (and zooms out), so innerWidth grows too.
    """
    return page.evaluate(
        """(width) => {
          const wide = Math.max(document.documentElement.scrollWidth, window.innerWidth);
          if (wide <= width) return [];
          const out = [`page is ${wide} px wide`];
          for (const el of document.querySelectorAll("body *")) {
            const r = el.getBoundingClientRect();
            if (r.right > width + 0.5 && r.width > 0) {
              const name = `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}`;
              out.push(`${name}.${[...el.classList].join(".")} right=${Math.round(r.right)}`);
            }
          }
          return out.slice(0, 8);
        }""",
        width,
    )


# Notes whose content is wider than a phone: a code block and a table (these once widened the
# note-taker's layout to 944 px, cutting off the composer), and a long link.
WIDE_NOTES = [
    "```\nconst aVeryLongLineOfCodeThatDoesNotWrap = someFunction(withArguments, andMore, andMoreStill);\n```",
    "| Team | Before | After | Notes |\n|---|---|---|---|\n| Workforce planning unit | 14 weeks | 6 weeks | "
    "shared_templates_from_the_regional_network |",
    "Slides: https://example.org/a/very/long/path/that/keeps/going/and/going/without/a/break?with=query&and=more",
]


# Questions as long as the moderators' "merge into" list shows them (60 characters of each).
LONG_QUESTIONS = [
    "Could the retention toolkit be shared with the smaller district councils as well, please?",
    "How did you measure whether the stay interviews changed anything for the frontline teams?",
]


def ask_as_audience(server: ThreadServer, session_id: str, bodies: list[str]) -> None:
    async def ask(svc: Services) -> None:
        for n, body in enumerate(bodies):
            await svc.audience.ask(session_id, Voter(f"p_longquestion{n:06d}"), {"body": body})

    server.call(ask)


def post_as_demo_note_taker(server: ThreadServer, session_id: str, bodies: list[str]) -> None:
    async def post(svc: Services) -> None:
        invite, _ = await svc.accounts.invite(
            (await svc.programme.session(session_id)).event_id, session_id, "Sam"
        )
        for body in bodies:
            await svc.notes.handle(
                session_id,
                Author.from_invite(invite),
                {"type": "note.create", "client_id": str(uuid.uuid4()), "body": body, "key_point": False},
            )

    server.call(post)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_no_page_scrolls_sideways(
    browser_context: Any, server: ThreadServer, viewport: dict[str, int]
) -> None:
    demo = server.call(load_demo)
    for session_id in (demo["live_session"], server.session_id):
        post_as_demo_note_taker(server, session_id, WIDE_NOTES)
        ask_as_audience(server, session_id, LONG_QUESTIONS)
    ctx = browser_context(viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    login(ctx, server)
    page = ctx.new_page()
    problems = {}
    for name, path in every_page(server, demo).items():
        page.goto(path)
        page.wait_for_load_state("load")
        if name.startswith("notetaker") and "moderate" not in name and "landing" not in name:
            expect(page.locator("#capture")).to_have_attribute("data-connection", "live")
        if name.endswith("moderate"):  # its lists are drawn by its script, after "load"
            expect(page.locator("select.merge-into").first).to_be_attached()
        if bad := sideways(page, viewport["width"]):
            problems[name] = bad
    assert problems == {}


def open_live(ctx: BrowserContext, path: str, ready: str) -> Page:
    page = ctx.new_page()
    page.goto(path)
    attr, value = ready.split("=")
    selector, name = attr.split("@")
    expect(page.locator(selector)).to_have_attribute(name, value)
    return page


def capture(server: ThreadServer, message: dict[str, Any]) -> int:
    assert server.seed is not None
    with httpx.Client(
        base_url=server.url, timeout=10, headers={"authorization": f"Bearer {server.seed.token}"}
    ) as c:
        r = c.post(
            f"/api/v1/sessions/{server.session_id}/capture",
            json={"client_id": str(uuid.uuid4()), **message},
        )
        assert r.status_code in (200, 201), r.text
        return int(r.json()["item_id"])


def test_the_end_of_a_session_reaches_note_taker_and_viewer_pages_live(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    notetaker = open_live(browser_context(), server.notetaker_url(), "#capture@data-connection=live")
    viewer = open_live(browser_context(), server.viewer_url(), "#connection@data-state=live")
    expect(viewer.locator("#audience")).to_have_attribute("data-ready", "true")
    expect(viewer.locator("#ask-form")).to_be_visible()
    expect(viewer.locator("#connection")).to_contain_text("Live updates on")
    expect(notetaker.locator("#note")).to_be_enabled()

    server.call(lambda svc: svc.programme.set_state(server.session_id, "ended"))

    # The note-taker is told, and no longer offered to post or edit.
    expect(notetaker.locator("#ended-notice")).to_be_visible()
    expect(notetaker.locator("#ended-notice")).to_contain_text("This session has ended")
    expect(notetaker.locator("#session-state")).to_have_text("Ended")
    expect(notetaker.locator("#connection")).not_to_contain_text("Connected")
    expect(notetaker.locator("#connection")).to_contain_text("ended")
    for control in ("#note", "#post", "#key-point", "#add-photo"):
        expect(notetaker.locator(control)).to_be_disabled()
    # The viewer stops promising live updates, polls and an Ask form, and points to the
    # knowledge page.
    expect(viewer.locator("#session-state")).to_have_text("Ended")
    expect(viewer.locator("#connection")).not_to_contain_text("Live updates on")
    expect(viewer.locator("#connection")).to_contain_text("This session has ended")
    expect(viewer.locator("#no-polls")).to_have_text("There were no polls in this session.")
    expect(viewer.locator("#audience")).to_have_attribute("data-ready", "true")
    expect(viewer.locator("#ask-form")).to_be_hidden()
    expect(viewer.locator("#archive-banner")).to_be_visible()
    expect(viewer.locator("#archive-banner a")).to_have_attribute(
        "href", f"/archive/sessions/{server.session_id}"
    )
    viewer.screenshot(path=str(screenshot_dir / "ui-viewer-just-ended-desktop.png"))
    # Loaded again, the live URL shows the knowledge page itself: the record, nothing live.
    again = browser_context().new_page()
    again.goto(server.viewer_url())
    expect(again.locator("#notes-heading")).to_be_visible()
    expect(again.locator("link[rel=canonical]")).to_have_attribute(
        "href", f"{server.url}/archive/sessions/{server.session_id}"
    )
    expect(again.locator("#ask-form")).to_have_count(0)
    expect(again.locator("#connection")).to_have_count(0)
    # Reopened: both live pages offer it all again.
    server.call(lambda svc: svc.programme.set_state(server.session_id, "live"))
    expect(notetaker.locator("#note")).to_be_enabled()
    expect(notetaker.locator("#ended-notice")).to_be_hidden()
    expect(viewer.locator("#ask-form")).to_be_visible()
    expect(viewer.locator("#connection")).to_contain_text("Live updates on")
    expect(viewer.locator("#archive-banner")).to_be_hidden()


# Every optional part of a card: key point, edited, video and slide links, a photo, markup.
CARD_NOTES: list[dict[str, Any]] = [
    {"body": "A plain note"},
    {"body": "The **main** point, with a [link](https://example.org)", "key_point": True},
    {"body": "Watch it again: https://www.youtube.com/watch?v=dQw4w9WgXcQ"},
    {"body": "Slides at https://speakerdeck.com/someone/talk and https://vimeo.com/76979871"},
    {"body": "- a list\n  - nested\n\n`code` and *emphasis*"},
]


def test_server_and_browser_draw_the_same_item_card(browser_context: Any, server: ThreadServer) -> None:
    ids = [capture(server, note) for note in CARD_NOTES]
    capture(server, {"type": "note.update", "item_id": ids[0], "body": "A plain note, edited"})
    ctx = browser_context()
    ctx.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith(server.url) else route.abort()
    )
    page = open_live(ctx, server.viewer_url(), "#connection@data-state=live")
    compared = page.evaluate(
        """async () => {
          const { renderItem } = await import("/static/js/items.js");
          const canon = (node) => {
            if (node.nodeType === Node.TEXT_NODE) return node.textContent.replace(/\\s+/g, " ").trim() || null;
            if (node.nodeType !== Node.ELEMENT_NODE) return null;
            const attrs = [...node.attributes].map((a) => `${a.name}=${a.value}`).sort();
            return [node.localName, attrs, [...node.childNodes].map(canon).filter((c) => c !== null)];
          };
          const session = document.getElementById("stream").dataset.session;
          const snapshot = await (await fetch(`/api/v1/sessions/${session}/items`)).json();
          return snapshot.items.filter((i) => i.kind === "note").map((item) => ({
            id: item.id,
            server: JSON.stringify(canon(document.getElementById(`item-${item.id}`))),
            browser: JSON.stringify(canon(renderItem(item))),
          }));
        }"""
    )
    assert sorted(c["id"] for c in compared) == sorted(ids)
    for card in compared:
        assert card["browser"] == card["server"], card["id"]
    # and the parts are really there
    expect(page.locator(f"#item-{ids[0]} .edited")).to_have_text("edited")
    expect(page.locator(f"#item-{ids[1]} .badge-key")).to_have_text("Key point")
    expect(page.locator(f"#item-{ids[2]} .play-embed")).to_be_visible()
    expect(page.locator(f"#item-{ids[3]} .embed-preview")).to_have_count(2)


def test_an_edit_arriving_live_is_marked_for_viewers(browser_context: Any, server: ThreadServer) -> None:
    note = capture(server, {"body": "Budget is two million"})
    page = open_live(browser_context(), server.viewer_url(), "#connection@data-state=live")
    expect(page.locator(f"#item-{note} .edited")).to_have_count(0)
    capture(server, {"type": "note.update", "item_id": note, "body": "Budget is three million"})
    expect(page.locator(f"#item-{note}")).to_contain_text("three million")
    expect(page.locator(f"#item-{note} .edited")).to_be_visible()


def open_poll(server: ThreadServer, session_id: str | None = None) -> int:
    async def create(svc: Services) -> int:
        from liveblog.capture.votes import Moderator

        item = await svc.audience.create_poll(
            session_id or server.session_id,
            Moderator("Ada", "test"),
            {"question": "Which workshop next?", "options": ["Rotas", "Retention"], "open": True},
        )
        return item.id

    return server.call(create)


def test_on_a_phone_the_poll_and_questions_are_one_tap_away(
    browser_context: Any, server: ThreadServer
) -> None:
    # A long session: 21 notes put the side column thousands of pixels below the top.
    for i in range(21):
        capture(
            server, {"body": f"Note {i}: a paragraph long enough to take a few lines on a phone screen, " * 2}
        )
    ctx = browser_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = open_live(ctx, server.viewer_url(), "#connection@data-state=live")
    expect(page.locator("#audience")).to_have_attribute("data-ready", "true")
    assert page.locator("#audience").bounding_box()["y"] > 3 * PHONE["height"]  # type: ignore[index]
    jump = page.locator("#jump-audience")
    expect(jump).to_be_visible()
    expect(jump).to_have_text("Polls and questions")
    poll = open_poll(server)
    expect(jump).to_have_text("Poll open: vote")  # it says so live
    jump.tap()
    expect(page.locator(f'[data-poll="{poll}"]')).to_be_in_viewport()
    expect(page.locator(f'[data-poll="{poll}"] [data-option="a"]')).to_be_in_viewport()
    expect(jump).to_be_hidden()  # the panel is on screen: the link steps aside
    page.locator(f'[data-poll="{poll}"] [data-option="a"]').tap()
    expect(page.locator(f'[data-poll="{poll}"] [data-option="a"]')).to_have_attribute("aria-pressed", "true")
    page.get_by_role("link", name="Back to the notes").tap()
    expect(page.locator("#items > article").first).to_be_in_viewport()
    # On a desktop the panel is beside the stream: no floating link.
    desk = open_live(browser_context(), server.viewer_url(), "#connection@data-state=live")
    expect(desk.locator("#jump-audience")).to_be_hidden()


def test_the_stream_can_be_paused_from_the_keyboard_and_counts_what_waits(
    browser_context: Any, server: ThreadServer
) -> None:
    first = capture(server, {"body": "Before the pause"})
    page = open_live(browser_context(), server.viewer_url(), "#connection@data-state=live")
    items = page.locator("#items > article:visible")
    expect(items).to_have_count(1)
    pause = page.get_by_role("button", name="Pause updates")
    pause.focus()
    page.keyboard.press("Enter")
    expect(pause).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#paused-count")).to_have_text("Paused")
    arrived = [capture(server, {"body": f"During the pause {i}"}) for i in range(3)]
    capture(server, {"type": "note.update", "item_id": first, "body": "Edited during the pause"})
    expect(page.locator("#paused-count")).to_have_text("Paused · 4 updates waiting")
    # The page holds still: nothing new, nothing changed.
    expect(items).to_have_count(1)
    expect(page.locator(f"#item-{first}")).to_have_text(re.compile("Before the pause"))
    page.keyboard.press("Enter")  # the button still has focus: resume
    expect(pause).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#paused-count")).to_have_text("")
    expect(items).to_have_count(4)
    expect(page.locator(f"#item-{first}")).to_contain_text("Edited during the pause")
    for item_id in arrived:
        expect(page.locator(f"#item-{item_id}")).to_be_visible()
    # "p" pauses too, away from text fields.
    page.locator("h1").click()
    page.keyboard.press("p")
    expect(pause).to_have_attribute("aria-pressed", "true")
    capture(server, {"body": "One more"})
    expect(page.locator("#paused-count")).to_have_text("Paused · 1 update waiting")
    page.keyboard.press("p")
    expect(items).to_have_count(5)


def _photo(colour: tuple[int, int, int]) -> dict[str, Any]:
    """A small drawn picture, as a file a note-taker would pick."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 48), (250, 250, 250))
    ImageDraw.Draw(image).rectangle((8, 8, 56, 40), fill=colour)
    out = io.BytesIO()
    image.save(out, "PNG")
    return {"name": "whiteboard.png", "mimeType": "image/png", "buffer": out.getvalue()}


def test_a_photo_added_offline_waits_in_the_outbox_and_arrives_once(
    browser_context: Any, server: ThreadServer
) -> None:
    viewer = open_live(browser_context(), server.viewer_url(), "#connection@data-state=live")
    ctx = browser_context()
    page = open_live(ctx, server.notetaker_url(), "#capture@data-connection=live")
    expect(page.locator("#capture")).to_have_attribute("data-offline-ready", "1")
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" and "/media" in r.url else None)

    ctx.set_offline(True)
    expect(page.locator("#capture")).to_have_attribute("data-connection", "offline")
    note = page.locator("#note")
    note.fill("Whiteboard from the workshop\n")
    note.press("End")
    page.locator("#photo-input").set_input_files(_photo((30, 90, 200)))
    expect(note).to_have_value(
        re.compile(r"^Whiteboard from the workshop\n!\[\]\(/media/local-[0-9a-f-]{36}\)$")
    )
    expect(page.locator("#preview img")).to_have_attribute("src", re.compile(r"^blob:"))
    note.fill(note.input_value().replace("![]", "![Sticky notes grouped in three columns]"))
    note.press("Enter")
    page.locator("#note").fill("A text note typed after the photo")
    page.locator("#note").press("Enter")
    # "Waiting" only once on disk: a reload before that would lose the note being written.
    expect(page.locator("#outbox-count")).to_have_text("2 notes and 1 photo waiting to be sent")
    expect(page.locator("#outbox-status")).to_have_attribute("data-saving", "0")
    expect(page.locator("#items > article.pending img")).to_have_attribute("src", re.compile(r"^blob:"))

    page.reload()  # still offline: the photo itself is in the outbox, not only its name
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "3")
    expect(page.locator("#items > article.pending img")).to_have_attribute("src", re.compile(r"^blob:"))
    assert (
        page.locator("#items > article.pending img").evaluate("img => img.complete && img.naturalWidth") == 64
    )
    assert server.items() == [] and uploads == []

    # Back online, the first upload's answer is lost after the server stored the photo: it is
    # sent again (same bytes, so the same stored photo) and the note refers to it once.
    lost: list[int] = []

    def lose_first_answer(route: Any) -> None:
        if not lost:
            lost.append(route.fetch().status)
            route.abort()
        else:
            route.continue_()

    page.route("**/api/v1/sessions/*/media", lose_first_answer)
    ctx.set_offline(False)
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "0", timeout=30_000)
    assert lost == [201] and len(uploads) == 2
    items = server.wait_for(lambda: len(server.items()) == 2 and server.items(), message="both notes")
    photo_note, text_note = items
    assert text_note.body == "A text note typed after the photo"
    media = re.findall(r"/media/([0-9a-f]{16})", photo_note.body)
    assert len(media) == 1 and photo_note.data["media"] == media
    assert 'alt="Sticky notes grouped in three columns"' in photo_note.html
    assert server.call(lambda svc: svc.db.read(lambda r: r.get_media(media[0]))) is not None
    expect(viewer.locator(f"#item-{photo_note.id} img")).to_have_attribute("src", f"/media/{media[0]}")
    assert (
        viewer.locator(f"#item-{photo_note.id} img").evaluate(
            "img => img.decode().then(() => img.naturalWidth)"
        )
        == 64
    )
    expect(page.locator("#items > article.pending")).to_have_count(0)


# -- accessibility and screenshots of every page, the new states included --------------------------

AXE_JS = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()  # axe-core, offline


def serious_axe_violations(page: Page) -> list[str]:
    page.add_script_tag(content=AXE_JS)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    assert result["passes"], "axe did not run"
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def demo_note_taker_page(demo: dict[str, str], key: str = "live_session") -> str:
    return f"{demo['invite_url']}/sessions/{demo[key]}"


def test_axe_finds_no_serious_violations_on_any_page_or_state(
    browser_context: Any, server: ThreadServer
) -> None:
    demo = server.call(load_demo)
    ctx = browser_context(bypass_csp=True)  # axe is injected as an inline script
    login(ctx, server)
    page = ctx.new_page()
    problems = {}
    pages = every_page(server, demo) | {"notetaker-ended": demo_note_taker_page(demo, "ended_session")}
    for name, path in pages.items():
        page.goto(path)
        page.wait_for_load_state("load")
        if name == "viewer":
            expect(page.locator("#audience")).to_have_attribute("data-ready", "true")
        if name == "viewer":
            page.get_by_role("button", name="Pause updates").click()
        if bad := serious_axe_violations(page):
            problems[name] = bad
    assert problems == {}


def test_screenshots_of_the_note_taker_viewer_and_ended_pages(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    demo = server.call(load_demo)
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        ctx = browser_context(viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
        page = open_live(ctx, demo_note_taker_page(demo), "#capture@data-connection=live")
        page.locator("#note").fill("- Retention at two years\n  - not completion rates")
        page.screenshot(path=str(screenshot_dir / f"ui-notetaker-{label}.png"), full_page=True)
        page = open_live(ctx, demo_note_taker_page(demo, "ended_session"), "#capture@data-connection=live")
        expect(page.locator("#ended-notice")).to_be_visible()
        page.screenshot(path=str(screenshot_dir / f"ui-notetaker-ended-{label}.png"), full_page=True)
        page = open_live(ctx, f"/sessions/{demo['live_session']}", "#connection@data-state=live")
        expect(page.locator("#audience")).to_have_attribute("data-ready", "true")
        page.screenshot(path=str(screenshot_dir / f"ui-viewer-{label}.png"))
        page.screenshot(path=str(screenshot_dir / f"ui-viewer-full-{label}.png"), full_page=True)
        # The live URL of an ended session: its knowledge page, for everyone and for organisers.
        page = ctx.new_page()
        page.goto(f"/sessions/{demo['ended_session']}")
        expect(page.locator("#notes-heading")).to_be_visible()
        page.screenshot(path=str(screenshot_dir / f"ui-ended-{label}.png"), full_page=True)
        assert sideways(page, viewport["width"]) == []
        login(ctx, server)
        page.reload()
        expect(page.locator("#organiser-tools")).to_be_visible()
        page.screenshot(path=str(screenshot_dir / f"ui-ended-organiser-{label}.png"), full_page=True)
        assert sideways(page, viewport["width"]) == []


def test_a_refused_change_is_not_shown_beside_a_green_tick(
    browser_context: Any, server: ThreadServer
) -> None:
    ctx = browser_context()
    page = open_live(ctx, server.notetaker_url(), "#capture@data-connection=live")
    note = page.locator("#note")
    note.fill("A note an organiser will remove")
    note.press("Enter")
    item = server.wait_for(lambda: (server.items() or [None])[0], message="the note")
    expect(page.locator(f"#item-{item.id}")).to_have_count(1)
    ctx.set_offline(True)
    expect(page.locator("#capture")).to_have_attribute("data-connection", "offline")
    note.press("Alt+ArrowUp")
    note.fill("A note an organiser will remove, edited offline")
    note.press("Enter")
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "1")

    async def remove(svc: Services) -> None:
        await svc.notes.handle(
            server.session_id,
            Author(name="Organiser", ref="account:1", is_moderator=True),
            {"type": "note.delete", "client_id": str(uuid.uuid4()), "item_id": item.id},
        )

    server.call(remove)
    ctx.set_offline(False)
    expect(page.locator("#failed")).to_be_visible()
    expect(page.locator("#outbox-count")).to_have_text("1 note not saved")
    status = page.locator("#outbox-status")
    expect(status).to_have_attribute("data-failed", "1")
    # Red, with no tick: the colour of the refusal box, not of "all sent".
    assert status.evaluate("el => getComputedStyle(el, '::before').content") == '"!"'
    assert status.evaluate("el => getComputedStyle(el).color") == page.locator("#failed h2").evaluate(
        "el => getComputedStyle(el).color"
    )


def test_a_refused_photo_leaves_its_note_to_be_sent_without_it(
    browser_context: Any, server: ThreadServer
) -> None:
    ctx = browser_context()
    page = open_live(ctx, server.notetaker_url(), "#capture@data-connection=live")
    ctx.set_offline(True)
    expect(page.locator("#capture")).to_have_attribute("data-connection", "offline")
    note = page.locator("#note")
    note.fill("Words that must arrive ")
    note.press("End")
    broken = {"name": "not-a-photo.png", "mimeType": "image/png", "buffer": b"these bytes are not a picture"}
    page.locator("#photo-input").set_input_files(broken)
    expect(note).to_have_value(re.compile(r"/media/local-"))
    note.press("Enter")
    expect(page.locator("#outbox-count")).to_have_text("1 note and 1 photo waiting to be sent")
    ctx.set_offline(False)
    item = server.wait_for(lambda: (server.items() or [None])[0], message="the note without its photo")
    assert item.body.strip() == "Words that must arrive" and not item.data.get("media")
    expect(page.locator("#failed-list")).to_contain_text("Photo not saved")
    expect(page.locator("#composer-message")).to_contain_text("A photo could not be added")

"""The note-taker page in a real chromium against a real server: live sharing between
note-takers and viewers, the offline outbox (with a reload while offline), lost acks, the
keyboard, photos, and screenshots at desktop and phone widths."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, ThreadServer

pytestmark = pytest.mark.browser


def open_notetaker(ctx: BrowserContext, server: ThreadServer, token: str | None = None) -> Page:
    page = ctx.new_page()
    page.goto(server.notetaker_url(token))
    expect(page.locator("#capture")).to_have_attribute("data-connection", "live")
    return page


def open_viewer(ctx: BrowserContext, server: ThreadServer) -> Page:
    page = ctx.new_page()
    page.goto(server.viewer_url())
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


def post(page: Page, text: str) -> None:
    note = page.locator("#note")
    note.fill(text)
    note.press("Enter")
    expect(note).to_have_value("")


def saved(page: Page, text: str) -> Any:
    """Articles (not waiting ones) whose body is exactly `text`."""
    return page.locator("#items > article.item:not(.pending) .item-body").filter(
        has_text=re.compile(rf"^\s*{re.escape(text)}\s*$")
    )


def bodies_in_typed_order(page: Page, pattern: str) -> list[str]:
    texts = [t.strip() for t in page.locator("#items > article.item .item-body").all_inner_texts()]
    texts = [t for t in texts if re.fullmatch(pattern, t)]
    order = page.locator("#items").get_attribute("data-order") or "newest"
    return list(reversed(texts)) if order == "newest" else texts


def test_two_note_takers_and_a_viewer_see_each_others_notes(
    server: ThreadServer, browser_context: Any
) -> None:
    assert server.seed is not None
    ada = open_notetaker(browser_context(), server)
    grace = open_notetaker(browser_context(), server, server.seed.token2)
    viewer = open_viewer(browser_context(), server)

    # Each note-taker sees who else is connected.
    expect(ada.locator("#presence-list")).to_contain_text("Grace")
    expect(ada.locator("#presence-list")).to_contain_text("Ada (you)")
    expect(grace.locator("#presence-list")).to_contain_text("Ada")

    post(ada, "Opening remarks from Ada")
    post(grace, "Grace adds a **bold** claim")

    for page in (ada, grace, viewer):
        expect(saved(page, "Opening remarks from Ada")).to_have_count(1)
        expect(saved(page, "Grace adds a bold claim")).to_have_count(1)
    expect(grace.locator("#items strong")).to_have_text("bold")

    items = server.items()
    assert [(i.author, i.body) for i in items] == [
        ("Ada", "Opening remarks from Ada"),
        ("Grace", "Grace adds a **bold** claim"),
    ]
    # Only your own notes offer Edit and Delete.
    ada_card = ada.locator("#items > article.item").filter(has_text="Opening remarks")
    grace_card_on_ada = ada.locator("#items > article.item").filter(has_text="Grace adds")
    expect(ada_card.locator("button[data-action=edit]")).to_have_count(1)
    expect(grace_card_on_ada.locator("button[data-action=edit]")).to_have_count(0)


def test_offline_notes_survive_a_reload_and_arrive_once_in_typed_order(
    server: ThreadServer, browser_context: Any
) -> None:
    viewer = open_viewer(browser_context(), server)
    ctx = browser_context()
    page = open_notetaker(ctx, server)
    # The service worker has stored the page and its assets for offline use.
    expect(page.locator("#capture")).to_have_attribute("data-offline-ready", "1")

    ctx.set_offline(True)
    expect(page.locator("#capture")).to_have_attribute("data-connection", "offline")
    texts = [f"Offline note {n:02d}" for n in range(1, 21)]
    for text in texts:
        post(page, text)
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "20")
    expect(page.locator("#outbox-count")).to_have_text("20 notes waiting to be sent")
    expect(page.locator("#items > article.pending")).to_have_count(20)

    page.reload()  # still offline: the service worker serves the page, IndexedDB the outbox
    expect(page.locator("h1")).to_have_text("Keynote")
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "20")
    expect(page.locator("#items > article.pending")).to_have_count(20)
    expect(page.locator("#items > article.pending .nt-badge").first).to_have_text("Waiting")
    assert server.items() == [], "nothing may reach the server while the browser is offline"
    went_online = page.evaluate("new Date().toISOString()")

    ctx.set_offline(False)
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "0", timeout=30_000)
    expect(page.locator("#items > article.pending")).to_have_count(0)

    server.wait_for(lambda: len(server.items()) >= 20, message="20 notes")
    items = server.items()
    assert [i.body for i in items] == texts
    assert len(items) == 20
    typed = [i.typed_at for i in items]
    assert typed == sorted(typed) and all(t < went_online for t in typed), (
        "notes keep the time they were typed"
    )

    expect(viewer.locator("#items > article.item")).to_have_count(20)
    assert bodies_in_typed_order(viewer, r"Offline note \d\d") == texts
    assert bodies_in_typed_order(page, r"Offline note \d\d") == texts


def test_a_lost_ack_is_resent_without_a_duplicate(server: ThreadServer, browser_context: Any) -> None:
    seen: dict[str, list[Any]] = {"connections": [], "dropped": [], "duplicates": []}

    def route(ws: Any) -> None:
        number = len(seen["connections"]) + 1
        seen["connections"].append(number)
        upstream = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            data = json.loads(message)
            if number == 1 and data.get("type") == "ack":
                # The note is stored, but its ack is lost with the connection.
                seen["dropped"].append(data["client_id"])
                ws.close(code=4000, reason="test: connection lost")
                upstream.close()
                return
            if data.get("type") == "ack" and data.get("duplicate"):
                seen["duplicates"].append(data["client_id"])
            ws.send(message)

        upstream.on_message(from_server)

    ctx = browser_context()
    page = ctx.new_page()
    page.route_web_socket(re.compile(r"/capture"), route)
    page.goto(server.notetaker_url())
    expect(page.locator("#capture")).to_have_attribute("data-connection", "live")

    post(page, "A note whose ack gets lost")
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "0", timeout=20_000)
    assert len(seen["dropped"]) == 1
    assert seen["duplicates"] == seen["dropped"], "the resend is answered as a duplicate"
    assert len(seen["connections"]) >= 2

    items = server.items()
    assert [i.body for i in items] == ["A note whose ack gets lost"]
    assert items[0].client_id == seen["dropped"][0]
    expect(page.locator("#items > article.item")).to_have_count(1)
    expect(saved(page, "A note whose ack gets lost")).to_have_count(1)


def test_keyboard_posting_indenting_key_points_editing_and_deleting(
    server: ThreadServer, browser_context: Any
) -> None:
    page = open_notetaker(browser_context(), server)
    note = page.locator("#note")

    # Tab in an empty box moves focus on (no keyboard trap).
    note.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") != "note"

    # Shift+Enter is a new line, Enter posts.
    note.focus()
    page.keyboard.type("First line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(note).to_have_value("First line\nsecond line")
    assert server.items() == []
    page.keyboard.press("Enter")
    server.wait_for(lambda: len(server.items()) == 1, message="the first note")
    assert server.items()[0].body == "First line\nsecond line"

    # Bullets: Shift+Enter continues the list, Tab indents, Shift+Tab outdents; preview nests.
    page.keyboard.type("- a point")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("a detail")
    expect(note).to_have_value("- a point\n- a detail")
    page.keyboard.press("Tab")
    expect(note).to_have_value("- a point\n  - a detail")
    expect(page.locator("#preview ul ul li")).to_have_text("a detail")
    page.keyboard.press("Shift+Tab")
    expect(note).to_have_value("- a point\n- a detail")
    page.keyboard.press("Tab")
    page.keyboard.type(" matters")  # the caret stayed at the end of the line
    expect(note).to_have_value("- a point\n  - a detail matters")

    # Ctrl+K marks a key point.
    page.keyboard.press("Control+k")
    expect(page.locator("#key-point")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Enter")
    server.wait_for(lambda: len(server.items()) == 2, message="the key point")
    key = server.items()[1]
    assert key.body == "- a point\n  - a detail matters" and key.key_point is True
    expect(page.locator("#items > article.key-point:not(.pending)")).to_have_count(1)
    expect(page.locator("#key-point")).to_have_attribute("aria-pressed", "false")

    # Arrow up in the empty box edits the last note; Enter saves the edit.
    page.keyboard.press("ArrowUp")
    expect(note).to_have_value("- a point\n  - a detail matters")
    expect(page.locator("#editing")).to_be_visible()
    expect(page.locator("#key-point")).to_have_attribute("aria-pressed", "true")
    note.fill("- a point, corrected")
    page.keyboard.press("Enter")
    server.wait_for(lambda: server.items()[1].body == "- a point, corrected", message="the edit")
    edited = server.items()[1]
    assert edited.id == key.id and edited.version == 2 and edited.key_point is True
    expect(page.locator(f"#item-{key.id} .item-body")).to_have_text("a point, corrected")
    expect(page.locator("#editing")).to_be_hidden()

    # Esc cancels an edit without sending anything.
    page.keyboard.press("ArrowUp")
    expect(page.locator("#editing")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#editing")).to_be_hidden()
    expect(note).to_have_value("")

    # Delete asks first: "Keep it" keeps it, "Delete" deletes it.
    card = page.locator(f"#item-{key.id}")
    card.locator("button[data-action=delete]").click()
    dialog = page.locator("#confirm-delete")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#confirm-text")).to_have_text("- a point, corrected")
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    assert len(server.items()) == 2
    card.locator("button[data-action=delete]").click()
    dialog.get_by_role("button", name="Delete").click()
    server.wait_for(lambda: len(server.items()) == 1, message="the delete")
    expect(page.locator(f"#item-{key.id}")).to_have_count(0)
    assert [i.body for i in server.items()] == ["First line\nsecond line"]


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def test_photos_upload_online_with_a_description(server: ThreadServer, browser_context: Any) -> None:
    ctx = browser_context()
    page = open_notetaker(ctx, server)
    photo = {"name": "slide.png", "mimeType": "image/png", "buffer": _png()}
    page.locator("#photo-input").set_input_files(photo)
    expect(page.locator("#note")).to_have_value(re.compile(r"^!\[\]\(/media/[0-9a-f]{16}\)$"))
    expect(page.locator("#preview img")).to_have_count(1)
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "0")
    # The note-taker describes it between the brackets.
    value = page.locator("#note").input_value()
    page.locator("#note").fill(value.replace("![]", "![The red slide]"))
    page.locator("#note").press("Enter")
    item = server.wait_for(lambda: (server.items() or [None])[0], message="the photo note")
    assert item.data.get("media") and 'alt="The red slide"' in item.html
    expect(page.locator("#items > article.item:not(.pending) img")).to_have_attribute("alt", "The red slide")


def test_video_links_load_no_player_until_asked(server: ThreadServer, browser_context: Any) -> None:
    page = open_notetaker(browser_context(), server)
    post(page, "Talk recording https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    card = page.locator("#items > article.item:not(.pending)")
    button = card.get_by_role("button", name="Play video")
    expect(button).to_be_visible()
    expect(page.locator("iframe")).to_have_count(0)
    page.route(
        "https://www.youtube-nocookie.com/**",
        lambda route: route.fulfill(body="<p>player</p>", content_type="text/html"),
    )
    button.click()
    expect(card.locator("iframe")).to_have_attribute(
        "src", re.compile(r"^https://www\.youtube-nocookie\.com/embed/dQw4w9WgXcQ")
    )


def test_screenshots(server: ThreadServer, browser_context: Any, screenshot_dir: Any) -> None:
    assert server.seed is not None
    grace = open_notetaker(browser_context(), server, server.seed.token2)
    post(grace, "Welcome everyone: today is about **offline-first** apps")
    for size, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        ctx = browser_context(viewport=size, is_mobile=size is PHONE, has_touch=size is PHONE)
        page = open_notetaker(ctx, server)
        if name == "desktop":
            post(
                page,
                "- Conference wifi fails\n  - so the outbox keeps notes on the laptop\n- Nothing is lost",
            )
            page.keyboard.press("Control+k")
            post(page, "Key point: resend with the same client ids")
        expect(page.locator("#presence-list")).to_contain_text("Grace")
        expect(page.locator("#outbox-status")).to_have_attribute("data-count", "0")
        ctx.set_offline(True)
        expect(page.locator("#capture")).to_have_attribute("data-connection", "offline")
        page.locator("#note").fill(f"Typed while offline ({name})")
        page.locator("#note").press("Enter")
        page.locator("#note").fill("Draft with a [link](https://example.org) and *emphasis*")
        expect(page.locator("#outbox-status")).to_have_attribute("data-count", "1")
        page.screenshot(path=str(screenshot_dir / f"notetaker-{name}.png"), full_page=True)
        ctx.set_offline(False)
        expect(page.locator("#outbox-status")).to_have_attribute("data-count", "0")


def test_no_serious_accessibility_violations(server: ThreadServer, browser_context: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    ctx = browser_context()
    page = open_notetaker(ctx, server)
    post(page, "- A bullet with a [link](https://example.org)")
    page.keyboard.press("Control+k")
    post(page, "A key point with a video https://vimeo.com/76979871")
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "0")
    ctx.set_offline(True)
    post(page, "Waiting for the network")
    page.locator("#note").fill("A draft in the **preview**")
    expect(page.locator("#items > article.pending")).to_have_count(1)

    results = Axe().run(page)
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []


def test_a_half_typed_note_survives_a_reload_and_an_edit(server: ThreadServer, browser_context: Any) -> None:
    ctx = browser_context()
    page = open_notetaker(ctx, server)
    post(page, "An earlier note")
    note = page.locator("#note")
    note.fill("Half a thought about budgets")
    page.keyboard.press("Control+k")  # marked as a key point while drafting
    page.reload()
    expect(page.locator("#capture")).to_have_attribute("data-connection", "live")
    expect(note).to_have_value("Half a thought about budgets")
    expect(page.locator("#key-point")).to_have_attribute("aria-pressed", "true")
    # Editing another note and cancelling gives the draft back.
    note.press("Alt+ArrowUp")
    expect(note).to_have_value("An earlier note")
    note.press("Escape")
    expect(note).to_have_value("Half a thought about budgets")
    # Once posted it is no longer a draft.
    note.press("Enter")
    expect(note).to_have_value("")
    expect(saved(page, "Half a thought about budgets")).to_have_count(1)
    page.reload()
    expect(page.locator("#capture")).to_have_attribute("data-connection", "live")
    expect(note).to_have_value("")
    assert [i.key_point for i in server.items() if i.body.startswith("Half")] == [True]


def test_a_revoked_invite_shows_on_the_open_note_taker_page(
    server: ThreadServer, browser_context: Any
) -> None:
    """Before: the page kept saying "Connected" after the organiser revoked the invite."""
    assert server.seed is not None
    seed = server.seed
    page = open_notetaker(browser_context(), server)

    async def revoke(services: Any) -> None:
        await services.accounts.revoke_invite(seed.invite_id)

    server.call(revoke)
    expect(page.locator("#capture")).to_have_attribute("data-connection", "failed")
    expect(page.locator("#connection")).to_contain_text("revoked your invite")


def test_a_reload_while_offline_never_brings_back_a_deleted_note(
    server: ThreadServer, browser_context: Any
) -> None:
    """One note deleted while online (acked), one deleted while offline (the delete waits in the
    outbox): a reload while still offline shows neither, and the waiting delete goes out once."""
    ctx = browser_context()
    page = open_notetaker(ctx, server)
    expect(page.locator("#capture")).to_have_attribute("data-offline-ready", "1")
    for text in ("Keep this one", "Deleted while online", "Deleted while offline"):
        post(page, text)
        expect(saved(page, text)).to_have_count(1)
    by_body = {i.body: i.id for i in server.items()}

    def delete(text: str) -> None:
        page.locator(f"#item-{by_body[text]}").locator("button[data-action=delete]").click()
        page.locator("#confirm-delete").get_by_role("button", name="Delete").click()

    delete("Deleted while online")
    expect(page.locator(f"#item-{by_body['Deleted while online']}")).to_have_count(0)
    server.wait_for(lambda: len(server.items()) == 2, message="the online delete")
    ctx.set_offline(True)
    expect(page.locator("#capture")).to_have_attribute("data-connection", "offline")
    delete("Deleted while offline")
    waiting = page.locator(f"#item-{by_body['Deleted while offline']}")
    expect(waiting).to_have_class(re.compile(r"\bdeleting\b"))  # struck through, "Delete waiting"
    page.reload()  # still offline: the service worker's copy of the page, the outbox from IndexedDB
    expect(page.locator("h1")).to_have_text("Keynote")
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "1")
    expect(saved(page, "Keep this one")).to_have_count(1)
    expect(page.locator("#items")).not_to_contain_text("Deleted while online")
    expect(waiting).to_have_class(re.compile(r"\bdeleting\b"))  # still waiting, never a plain note again
    expect(waiting.locator(".nt-badge")).to_have_text("Delete waiting")
    ctx.set_offline(False)
    expect(page.locator("#outbox-status")).to_have_attribute("data-count", "0", timeout=30_000)
    server.wait_for(
        lambda: [i.body for i in server.items()] == ["Keep this one"], message="the offline delete"
    )
    expect(page.locator("#items")).not_to_contain_text("Deleted while")


def test_keep_it_then_delete_another_at_once_deletes_only_the_other(
    server: ThreadServer, browser_context: Any
) -> None:
    """ "Keep it" for one note, then at once (before the page's next frame, where Chromium fires
    the dialog's close event) Delete for another: each question gets its own answer. Before, both
    listeners took the answer the dialog held at that frame: the kept note was deleted too."""
    page = open_notetaker(browser_context(), server)
    for text in ("Keep this note", "Delete this note"):
        post(page, text)
        expect(saved(page, text)).to_have_count(1)
    by_body = {i.body: i.id for i in server.items()}
    page.evaluate(
        """([kept, deleted]) => {
          const dialog = document.getElementById("confirm-delete");
          const answer = (name) => [...dialog.querySelectorAll("button")].find((b) => b.textContent === name).click();
          document.querySelector(`#item-${kept} button[data-action=delete]`).click();
          answer("Keep it");
          document.querySelector(`#item-${deleted} button[data-action=delete]`).click();
          answer("Delete");
        }""",
        [by_body["Keep this note"], by_body["Delete this note"]],
    )
    # The deletes go out in the order asked: once the second is stored, a first would be too.
    server.wait_for(lambda: "Delete this note" not in [i.body for i in server.items()], message="the delete")
    assert [i.body for i in server.items()] == ["Keep this note"]
    expect(page.locator(f"#item-{by_body['Keep this note']}")).to_have_count(1)

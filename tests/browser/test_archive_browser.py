"""What a person sees of the archive, in Debian's chromium: the knowledge page, the replay
playing and scrubbing, a tag page, search results, the event archive with its charts and a
comment thread (a comment arriving live); screenshots at phone and desktop widths, axe-core
with no serious or critical violations, and no page scrolling sideways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from liveblog.access.readers import Readers
from liveblog.services import Services
from tests.archive_fixtures import fill_session, organiser_account, spread_change_times
from tests.browser.conftest import DESKTOP, PHONE, ThreadServer
from tests.browser.test_ui import serious_axe_violations, sideways
from tests.conftest import FAST_HASHER, eventually

pytestmark = pytest.mark.browser


def build_archive(server: ThreadServer) -> dict[str, Any]:
    seed = server.seed
    assert seed is not None

    async def build(svc: Services) -> dict[str, Any]:
        svc.accounts.hasher = FAST_HASHER
        filled = await fill_session(svc, seed)
        await svc.programme.update_session(
            seed.session_id,
            {
                "hashtags": ["#Botany", "#Light"],
                "speakers": ["Dr Ada Green"],
                "description": "How leaves turn light into sugar.",
            },
        )
        await svc.programme.update_session(seed.other_session_id, {"hashtags": ["#botany"]})
        await svc.programme.set_state(seed.other_session_id, "live")
        for sid in (seed.session_id, seed.other_session_id):
            await svc.programme.set_state(sid, "ended")
        await svc.archive.archive_due()
        await svc.archive.set_summary(
            seed.session_id,
            (
                "Photosynthesis, from **chlorophyll** to sugar:\n\n- red and blue light are absorbed\n"
                "- green is reflected, which is why leaves look green"
            ),
            "org",
        )
        await svc.archive.set_organiser_tags(seed.session_id, "plant science, photosynthesis")
        account = await organiser_account(svc)
        from liveblog.capture.notes import Author

        await svc.notes.handle(
            seed.session_id,
            Author.organiser(account),
            {
                "type": "note.update",
                "client_id": "fix-1",
                "item_id": filled.note_id,
                "body": "Photosynthesis is how plants **make glucose** from light https://example.org/leaf",
            },
        )
        readers: Readers = svc.readers
        rosa, rosa_token = await readers.register("rosa", "a long password")
        sam, _ = await readers.register("sam", "a long password")
        first = await svc.comments.post(
            seed.session_id, rosa, "Great talk. Does this work for **algae** too?"
        )
        await svc.comments.post(
            seed.session_id, sam, "Yes: algae have chlorophyll as well.", parent_id=first.id
        )
        await svc.comments.post(seed.other_session_id, sam, "Will the workshop cover *C4* plants?")
        off_topic = await svc.comments.post(seed.other_session_id, sam, "Cheap *sunglasses* for sale")
        await svc.comments.moderate(
            off_topic.id, "hide", "org", "advertising"
        )  # in the organisers' queue and log

        # The upvote count is written by the tally coalescer a moment later: wait for it, so
        # every change exists before the commit times are spread out.
        async def upvotes_written() -> bool:
            item = await svc.db.read(lambda r: r.get_item(filled.question_id))
            return item is not None and item.data.get("votes") == 2

        await eventually(upvotes_written, what="the question's upvote count")
        # Commit times a minute apart, as in a real session, for the replay.
        stored = await svc.db.read(lambda r: r.public_changes(seed.session_id))
        await spread_change_times(svc.db, seed.session_id, [c["seq"] for c in stored])
        return {"rosa_token": rosa_token, "changes": len(stored), "filled": filled}

    return server.call(build)


def pages(server: ThreadServer) -> dict[str, str]:
    s = server.seed
    assert s is not None
    return {
        "knowledge": f"/archive/sessions/{s.session_id}",
        "replay": f"/archive/sessions/{s.session_id}/replay",
        "tag": "/tags/botany",
        "search": "/search?q=chlorophyll",
        "event-archive": f"/events/{s.event_id}/archive",
        "comments": f"/archive/sessions/{s.session_id}#comments",
        "account": "/account/register",
    }


def test_archive_pages_screenshots_axe_and_layout(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    data = build_archive(server)
    problems: dict[str, list[str]] = {}

    def look_at(page: Any, name: str, label: str) -> None:
        """Screenshot a whole page; note if it scrolls sideways or has serious axe violations."""
        page.screenshot(path=str(screenshot_dir / f"archive-{name}-{label}.png"), full_page=True)
        if bad := sideways(page, (PHONE if label == "phone" else DESKTOP)["width"]):
            problems[f"{name}-{label} sideways"] = bad
        if bad := serious_axe_violations(page):
            problems[f"{name}-{label}"] = bad

    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        ctx = browser_context(
            viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE, bypass_csp=True
        )  # axe is injected as an inline script
        ctx.add_cookies([{"name": "lb_reader", "value": data["rosa_token"], "url": server.url}])
        page = ctx.new_page()
        for name, path in pages(server).items():
            page.goto(path)
            page.wait_for_load_state("load")
            if name == "replay":
                expect(page.locator("#replay")).to_have_attribute("data-ready", "true")
                page.locator("#replay-scrubber").evaluate(
                    "(el) => { el.value = el.max; el.dispatchEvent(new Event('input')); }"
                )
            if name == "comments":
                page.locator("#comments").scroll_into_view_if_needed()
                page.locator("#comments").screenshot(
                    path=str(screenshot_dir / f"archive-comments-{label}.png")
                )
            else:
                page.screenshot(path=str(screenshot_dir / f"archive-{name}-{label}.png"), full_page=True)
            if bad := sideways(page, viewport["width"]):
                problems[f"{name}-{label} sideways"] = bad
            if bad := serious_axe_violations(page):
                problems[f"{name}-{label}"] = bad
        # The organisers' comment queue, with the hidden comment in it.
        assert server.seed is not None
        ctx.add_cookies([{"name": "lb_login", "value": server.seed.login_token, "url": server.url}])
        page.goto("/organise/comments")
        expect(page.locator("#hidden-heading")).to_contain_text("(1)")
        expect(page.get_by_role("button", name="Show again")).to_be_visible()
        look_at(page, "organise-comments", label)
        # The moderation log, and what readers see of it on the knowledge page.
        page.goto(f"/organise/events/{server.seed.event_id}/moderation")
        row = page.locator("#moderation-log tbody tr").first
        expect(row).to_contain_text("advertising")
        expect(row).to_contain_text("Workshop")
        look_at(page, "organise-moderation", label)
        page.goto(f"/archive/sessions/{server.seed.other_session_id}")
        expect(page.locator("#moderation")).to_have_text("Moderation: 1 comment hidden.")
    assert problems == {}


def test_replay_plays_and_scrubs(browser_context: Any, server: ThreadServer) -> None:
    data = build_archive(server)
    page = browser_context().new_page()
    page.goto(pages(server)["replay"])
    expect(page.locator("#replay")).to_have_attribute("data-ready", "true")
    # At 0:00 the session has just gone live: nothing posted yet.
    expect(page.locator("#replay-empty")).to_be_visible()
    expect(page.locator("#replay-items > li")).to_have_count(0)
    page.get_by_role("button", name="16×").click()
    expect(page.get_by_role("button", name="16×")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Play").click()
    # The first note was committed a minute in: under 4 s at 16x, it appears.
    expect(page.locator("#replay-items > li")).to_have_count(1)
    page.get_by_role("button", name="Pause").click()
    scrub = page.locator("#replay-scrubber")
    scrub.evaluate("(el) => { el.value = el.max; el.dispatchEvent(new Event('input')); }")
    expect(page.locator("#replay-clock")).to_contain_text(
        f"{data['changes'] - 1}:00 / {data['changes'] - 1}:00"
    )
    expect(page.locator("#replay-polls")).to_contain_text("Chlorophyll: 2")
    expect(page.locator("#replay-questions")).to_contain_text("Why are leaves green")
    notes_at_end = page.locator("#replay-items > li").count()
    assert notes_at_end >= 4
    scrub.evaluate("(el) => { el.value = 0; el.dispatchEvent(new Event('input')); }")
    expect(page.locator("#replay-items > li")).to_have_count(0)


def test_a_new_comment_arrives_live_on_the_knowledge_page(browser_context: Any, server: ThreadServer) -> None:
    build_archive(server)
    seed = server.seed
    assert seed is not None
    page = browser_context().new_page()
    page.goto(pages(server)["knowledge"])
    expect(page.locator("#comment-count")).to_have_text("(2)")

    async def post(svc: Services) -> None:
        found = await svc.db.read(lambda r: r.account_for_login("sam"))
        assert found is not None
        await svc.comments.post(seed.session_id, found[0], "Arriving *live*")

    server.call(post)
    expect(page.locator("#comment-list")).to_contain_text("Arriving live")
    expect(page.locator("#comment-count")).to_have_text("(3)")


def test_the_static_export_works_opened_from_disk(
    browser_context: Any, server: ThreadServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    """file:// pages: the event index links to a session, and offline search finds a note."""
    from liveblog.web.app import make_templates
    from liveblog.web.static_site import export_site

    build_archive(server)
    seed = server.seed
    assert seed is not None
    out = tmp_path / "site"
    server.call(lambda svc: export_site(svc, make_templates().env, seed.event_id, out))
    page = browser_context().new_page()
    page.goto((out / "index.html").as_uri())
    page.get_by_role("link", name="Keynote").first.click()
    expect(page.locator("h1")).to_have_text("Keynote")
    expect(page.locator("img[alt=diagram]")).to_have_count(0)  # that photo was never uploaded: no broken link
    page.get_by_role("searchbox", name="Search the archive").fill("xanthophyll")
    page.get_by_role("button", name="Search").first.click()
    expect(page.locator("#offline-status")).to_contain_text("result")
    expect(page.locator("#offline-results")).to_contain_text("xanthophyll")
    page.screenshot(path=str(screenshot_dir / "archive-static-search-desktop.png"), full_page=True)
    page.locator("#offline-results a").first.click()
    expect(page.locator("h1")).to_have_text("Keynote")

"""What people see, page by page, at phone and desktop widths (issue 8 §4): no page scrolls
sideways, organisers and note-takers find the polls-and-questions page and the big screen, an
ended session says so everywhere (live, without a reload), the phone viewer reaches polls and
questions in one tap, the stream can be paused, photos wait in the outbox while offline, and
the item card is the same whether the server or the browser drew it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from liveblog.capture.notes import Author
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
              out.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")} right=${Math.round(r.right)}`);
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
    ctx = browser_context(viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    login(ctx, server)
    page = ctx.new_page()
    problems = {}
    for name, path in every_page(server, demo).items():
        page.goto(path)
        page.wait_for_load_state("load")
        if name.startswith("notetaker") and "moderate" not in name and "landing" not in name:
            expect(page.locator("#capture")).to_have_attribute("data-connection", "live")
        if bad := sideways(page, viewport["width"]):
            problems[name] = bad
    assert problems == {}

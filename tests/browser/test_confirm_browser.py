"""Destructive actions ask first: ending a session, banning a reader, deleting a comment, revoking
an invite and blocking an account or a word open a dialog whose Cancel (the default) does nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from liveblog.services import Services
from tests.browser.conftest import ThreadServer

pytestmark = pytest.mark.browser


def test_ending_a_session_asks_first_and_cancel_keeps_it_live(
    server: ThreadServer, browser_context: Callable[..., BrowserContext]
) -> None:
    assert server.seed is not None

    async def state(svc: Services) -> str:
        return (await svc.programme.session(server.session_id)).state

    server.call(lambda svc: svc.programme.set_state(server.session_id, "live"))
    ctx = browser_context()
    ctx.add_cookies([{"name": "lb_login", "value": server.seed.login_token, "url": server.url}])
    page = ctx.new_page()
    page.goto(f"/organise/sessions/{server.session_id}")
    page.get_by_role("button", name="End the session").click()
    dialog = page.get_by_role("dialog", name="End this session?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # Enter does no harm
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="End the session").click()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert server.call(state) == "live"
    page.get_by_role("button", name="End the session").click()
    dialog.get_by_role("button", name="End the session").click()
    expect(page.get_by_role("button", name="Reopen (go live again)")).to_be_visible()
    assert server.call(state) == "ended"

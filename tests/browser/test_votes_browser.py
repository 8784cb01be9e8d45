"""A vote on one viewer's page moves the bars on another viewer's page, live; the voter sees
their own choice and can change it; questions asked on one page appear on the other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from liveblog.services import Services
from tests.browser.conftest import ThreadServer

pytestmark = pytest.mark.browser


def open_poll(server: ThreadServer) -> int:
    async def create(svc: Services) -> int:
        from liveblog.capture.votes import Moderator

        item = await svc.audience.create_poll(
            server.session_id,
            Moderator("Ada", "test"),
            {"question": "Which talk next?", "options": ["Databases", "Browsers"], "open": True},
        )
        return item.id

    return server.call(create)


def test_a_vote_on_one_page_updates_the_bars_on_another(
    server: ThreadServer, browser_context: Callable[..., BrowserContext], screenshot_dir: Any
) -> None:
    poll_id = open_poll(server)
    alice = browser_context().new_page()
    bob = browser_context().new_page()  # a separate context: another participant cookie
    errors: list[str] = []
    for page in (alice, bob):
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server.viewer_url())
        expect(page.locator("#audience[data-ready=true]")).to_have_count(1)
        expect(page.locator(f'[data-poll="{poll_id}"] .voters')).to_have_text("0 voters")

    alice.get_by_role("button", name="Browsers").click()
    # Alice sees her choice marked; Bob's bars move without a reload.
    expect(alice.locator(f'[data-poll="{poll_id}"] [data-option="b"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(bob.locator(f'[data-poll="{poll_id}"] .voters')).to_have_text("1 voter")
    expect(bob.locator(f'[data-poll="{poll_id}"] [data-option="b"] .option-count')).to_have_text("100% (1)")

    bob.get_by_role("button", name="Databases").click()
    expect(alice.locator(f'[data-poll="{poll_id}"] .voters')).to_have_text("2 voters")
    expect(alice.locator(f'[data-poll="{poll_id}"] [data-option="a"] .option-count')).to_have_text("50% (1)")

    # Alice changes her mind: still two voters, the bars follow on Bob's page.
    alice.get_by_role("button", name="Databases").click()
    expect(bob.locator(f'[data-poll="{poll_id}"] [data-option="a"] .option-count')).to_have_text("100% (2)")
    expect(bob.locator(f'[data-poll="{poll_id}"] .voters')).to_have_text("2 voters")
    expect(alice.locator(f'[data-poll="{poll_id}"] [data-option="a"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(alice.locator(f'[data-poll="{poll_id}"] [data-option="b"]')).to_have_attribute(
        "aria-pressed", "false"
    )

    # A question asked on Bob's page appears on Alice's; her upvote counts once.
    bob.get_by_label("Your question").fill("Will there be slides?")
    bob.get_by_role("button", name="Ask").click()
    expect(bob.locator("#ask-status")).to_contain_text("your question is up")
    question = alice.locator(".question", has_text="Will there be slides?")
    expect(question).to_have_count(1)
    question.locator(".upvote").click()
    expect(bob.locator(".question", has_text="Will there be slides?").locator(".votes")).to_have_text("1")
    expect(question.locator(".upvote")).to_be_disabled()
    alice.screenshot(path=str(screenshot_dir / "votes-viewer.png"), full_page=True)

    # The big screen shows the open poll's live results.
    screen = browser_context().new_page()
    screen.goto(f"/sessions/{server.session_id}/screen")
    expect(screen.locator(".screen-voters")).to_have_text("2 voters")
    expect(screen.locator('.screen-option[data-option="a"] .pct')).to_have_text("100%")
    screen.screenshot(path=str(screenshot_dir / "votes-bigscreen.png"))

    # A note-taker's moderation page lists the poll and the question; hiding it removes it live.
    assert server.seed is not None
    mod = browser_context().new_page()
    mod.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    mod.goto(f"/n/{server.seed.token}/sessions/{server.session_id}/moderate")
    expect(mod.locator(f'[data-poll="{poll_id}"]')).to_contain_text("2 voters")
    mod.locator(".mod-list li", has_text="Will there be slides?").get_by_role("button", name="Hide").click()
    expect(alice.locator(".question", has_text="Will there be slides?")).to_have_count(0)
    assert not [e for e in errors if "Content Security Policy" in e or "Uncaught" in e], errors


def test_a_poll_for_people_in_the_room_asks_for_the_room_code_once(
    server: ThreadServer, browser_context: Callable[..., BrowserContext]
) -> None:
    async def create(svc: Services) -> tuple[int, str]:
        from liveblog.capture.votes import Moderator

        item = await svc.audience.create_poll(
            server.session_id,
            Moderator("Ada", "test"),
            {"question": "In the room?", "options": ["Yes", "No"], "open": True, "audience": "room_code"},
        )
        return item.id, svc.audience.rooms.code_for(server.session_id)

    poll_id, code = server.call(create)
    page = browser_context().new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server.viewer_url())
    expect(page.locator("#audience[data-ready=true]")).to_have_count(1)
    page.locator(f'[data-poll="{poll_id}"] [data-option="a"]').click()
    # The code is asked for in the page (no browser prompt), and the field has the focus.
    field = page.get_by_label("Room code")
    expect(field).to_be_focused()
    field.fill("WRONG1")
    page.keyboard.press("Enter")
    expect(page.locator("#room-status")).to_contain_text("not the code")
    expect(page.locator(f'[data-poll="{poll_id}"] .voters')).to_have_text("0 voters")
    field.fill(code.lower())
    page.get_by_role("button", name="Join").click()
    expect(page.locator(f'[data-poll="{poll_id}"] .voters')).to_have_text("1 voter")
    expect(page.locator("#room-form")).to_be_hidden()
    page.locator(
        f'[data-poll="{poll_id}"] [data-option="b"]'
    ).click()  # the code is remembered: not asked again
    expect(page.locator(f'[data-poll="{poll_id}"] [data-option="b"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator("#room-form")).to_be_hidden()
    assert dialogs == []


def test_a_logged_in_reader_votes_in_a_poll_for_accounts(
    server: ThreadServer, browser_context: Callable[..., BrowserContext]
) -> None:
    """Before: "sam.reader", logged in, clicked an option and got 403 "only logged-in accounts
    take part here: log in first"; only organisers could vote (issue 17)."""

    async def create(svc: Services) -> tuple[int, str]:
        from liveblog.capture.votes import Moderator

        item = await svc.audience.create_poll(
            server.session_id,
            Moderator("Ada", "test"),
            {"question": "Accounts only?", "options": ["Yes", "No"], "open": True, "audience": "accounts"},
        )
        _, token = await svc.readers.register("sam.reader", "a long reader password")
        return item.id, token

    poll_id, token = server.call(create)
    context = browser_context()
    context.add_cookies([{"name": "lb_reader", "value": token, "url": server.url}])
    page = context.new_page()
    page.goto(server.viewer_url())
    expect(page.locator("#audience[data-ready=true]")).to_have_count(1)
    page.locator(f'[data-poll="{poll_id}"] [data-option="a"]').click()
    expect(page.locator("#poll-status")).to_have_text("Your vote is in.")
    expect(page.locator(f'[data-poll="{poll_id}"] .voters')).to_have_text("1 voter")
    page.reload()  # the vote is the account's: the page still marks it
    expect(page.locator(f'[data-poll="{poll_id}"] [data-option="a"]')).to_have_attribute(
        "aria-pressed", "true"
    )


def test_organisers_discount_flagged_votes_and_every_page_says_so(
    server: ThreadServer, browser_context: Callable[..., BrowserContext], screenshot_dir: Any
) -> None:
    """Votes from brand-new ids in a burst from one address are flagged; the moderation page
    discounts them, and the viewer's page and the big screen show the counted result live with
    how many were discounted; so does the knowledge page, with the ledger's public count."""
    from liveblog.capture.votes import Voter

    poll_id = open_poll(server)
    seed = server.seed
    assert seed is not None

    async def burst(svc: Services) -> int:
        for n in range(26):  # over votes.fresh_ids_per_minute (20): the later ones are flagged
            await svc.audience.vote(poll_id, Voter(f"p{n}", ip="203.0.113.9", fresh=True), {"choice": "b"})
        await svc.audience.coalescer.flush_now()
        return await svc.db.read(lambda r: r.count_flagged_votes(poll_id))

    flagged = server.call(burst)
    assert 0 < flagged <= 6
    viewer = browser_context().new_page()
    viewer.goto(server.viewer_url())
    expect(viewer.locator(f'[data-poll="{poll_id}"] .voters')).to_have_text("26 voters")
    screen = browser_context().new_page()
    screen.goto(f"/sessions/{server.session_id}/screen")
    expect(screen.locator(".screen-voters")).to_have_text("26 voters")
    mod = browser_context().new_page()
    mod.goto(f"/n/{seed.token}/sessions/{server.session_id}/moderate")
    row = mod.locator(f'[data-poll="{poll_id}"]')
    expect(row.locator(".flagged")).to_contain_text("flagged (cast in a burst from one address)")
    row.get_by_role("textbox", name="Reason (optional, shown in the moderation log)").fill(
        "one address, new ids"
    )
    row.get_by_role("button", name=f"Discount {flagged} flagged vote{'s' if flagged > 1 else ''}").click()
    counted = f"{26 - flagged} voters · {flagged} discounted"
    expect(viewer.locator(f'[data-poll="{poll_id}"] .voters')).to_have_text(counted)
    expect(screen.locator(".screen-voters")).to_have_text(counted)
    expect(row.locator(".flagged")).to_contain_text("discounted from the result")
    mod.screenshot(path=str(screenshot_dir / "votes-discount-moderation.png"), full_page=True)
    screen.screenshot(path=str(screenshot_dir / "votes-discount-bigscreen.png"))

    async def finish(svc: Services) -> None:
        await svc.programme.set_state(server.session_id, "ended")
        await svc.archive.archive_due()

    server.call(finish)
    page = browser_context().new_page()
    page.goto(f"/archive/sessions/{server.session_id}")
    expect(page.locator(f"#item-{poll_id} figcaption")).to_contain_text(counted)
    expect(page.locator("body")).to_contain_text("1 poll with flagged votes discounted")
    page.screenshot(path=str(screenshot_dir / "votes-discount-knowledge.png"), full_page=True)


def test_a_moderator_merges_a_duplicate_question_and_viewers_see_it_go(
    server: ThreadServer, browser_context: Callable[..., BrowserContext], screenshot_dir: Any
) -> None:
    from liveblog.capture.votes import Voter

    seed = server.seed
    assert seed is not None

    async def questions(svc: Services) -> tuple[int, int]:
        kept, _ = await svc.audience.ask(
            server.session_id, Voter("p1"), {"body": "Will the slides be online?"}
        )
        dup, _ = await svc.audience.ask(server.session_id, Voter("p2"), {"body": "Where are the slides?"})
        for n in (1, 2, 3):
            await svc.audience.upvote(kept.id, Voter(f"p{n}"))
        for n in (2, 4):
            await svc.audience.upvote(dup.id, Voter(f"p{n}"))
        await svc.audience.coalescer.flush_now()
        return kept.id, dup.id

    kept, dup = server.call(questions)
    viewer = browser_context().new_page()
    viewer.goto(server.viewer_url())
    expect(viewer.locator(f'[data-question="{dup}"]')).to_contain_text("Where are the slides?")
    mod = browser_context().new_page()
    mod.goto(f"/n/{seed.token}/sessions/{server.session_id}/moderate")
    row = mod.locator(f'[data-question="{dup}"]')
    row.get_by_role("combobox", name="Merge this question into").select_option(str(kept))
    row.get_by_role("button", name="Merge as duplicate").click()
    expect(viewer.locator(f'[data-question="{dup}"]')).to_have_count(0)
    kept_row = viewer.locator(f'[data-question="{kept}"]')
    expect(kept_row.locator(".merged-note")).to_have_text("Merged with a duplicate")
    expect(kept_row.locator(".votes")).to_have_text("4")  # p2 upvoted both: counted once
    expect(mod.locator(f'[data-question="{dup}"] .mod-state')).to_have_text(f"merged into #{kept}")
    viewer.screenshot(path=str(screenshot_dir / "questions-merged-viewer.png"), full_page=True)

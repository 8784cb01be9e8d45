"""An XSS corpus typed into every field a person can fill, then every page that shows it, in
Debian's chromium with the page's CSP switched off (so the CSP is not what saves us: an
injected handler or script would run). Each page must keep its own scripts only, no inline
handlers, no `javascript:`/`data:` links, no frames or off-site forms, and nothing may run.

The fields: an event's title, description and venue; a session's title, room, speakers and
description; a note-taker's name; notes (Markdown) arriving live and after a reload; a poll's
question and options; an audience question; a social post; a reader's comment; a knowledge
page's summary and tags; the search box; the path of a missing page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from liveblog.capture.notes import Author
from liveblog.capture.votes import Moderator, Voter
from liveblog.errors import BadRequest
from liveblog.models import SocialPost
from liveblog.services import Services
from tests.archive_fixtures import note
from tests.browser.conftest import ThreadServer
from tests.conftest import FAST_HASHER

pytestmark = pytest.mark.browser

# Each payload tries to run `window.__pwned = …` (or to leave the page) a different way.
PAYLOADS = [
    '<script>window.__pwned="script"</script>',
    "<img src=x onerror=\"window.__pwned='img'\">",
    '"><svg onload="window.__pwned=\'svg\'">',
    "'><iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>",
    '[click me](javascript:window.__pwned="md-link")',
    "<a href=\"jav&#x09;ascript:window.__pwned='entity'\">tab</a>",
    "<details open ontoggle=\"window.__pwned='toggle'\">d</details>",
    '</textarea></title></script><script>window.__pwned="breakout"</script>',
    "<math><mtext><table><mglyph><style><img src=x onerror=\"window.__pwned='mxss'\">",
    '<a href="data:text/html,<script>parent.__pwned=1</script>">data</a>',
    '<form action="https://evil.example/steal"><button>go</button></form>',
    '<base href="https://evil.example/"><meta http-equiv="refresh" content="0;url=https://evil.example">',
    "{{ 7*7 }} ${7*7} <%= 7*7 %> \u202eevil\u202c",
    '<object data="javascript:window.__pwned=\'object\'"></object><embed src="javascript:1">',
]
CORPUS = "\n\n".join(PAYLOADS)
# A reader's first day allows one link per comment (the spam guard): the corpus without links.
COMMENT_CORPUS = "\n\n".join(p for p in PAYLOADS if "http" not in p)


def payload(n: int) -> str:
    return PAYLOADS[n % len(PAYLOADS)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadServer]:
    srv = ThreadServer(tmp_path, feeds={"fetch_media": False, "moderate_by_default": False}).start()
    try:
        yield srv
    finally:
        srv.stop()


def plant(server: ThreadServer) -> dict[str, Any]:
    """Put the corpus in every field, through the same services the forms and sockets use."""
    seed = server.seed
    assert seed is not None

    async def run(svc: Services) -> dict[str, Any]:
        svc.accounts.hasher = FAST_HASHER
        await svc.programme.update_event(
            seed.event_id, {"title": "Summit " + payload(2), "description": CORPUS, "venue": payload(1)}
        )
        for n, sid in enumerate((seed.session_id, seed.other_session_id)):
            await svc.programme.update_session(
                sid,
                {
                    "title": f"Talk {n} " + payload(n),
                    "room": payload(n + 3),
                    "speakers": [payload(n + 5), "Dr Ada"],
                    "description": CORPUS,
                    "hashtags": ["#botany"],
                },
            )
        invite, token = await svc.accounts.invite(seed.event_id, None, "Sam " + payload(1)[:40])
        sam = Author.from_invite(invite)
        mod = Moderator("Sam", invite.id)
        for sid in (seed.session_id, seed.other_session_id):
            for n, text in enumerate([CORPUS, *PAYLOADS]):
                await note(svc, sid, sam, text, key_point=n == 1)
            poll = await svc.audience.create_poll(
                sid,
                mod,
                {
                    "question": "Which? " + payload(0),
                    "kind": "single",
                    "options": [payload(1), payload(2)],
                    "open": True,
                },
            )
            await svc.audience.vote(poll.id, Voter("p1"), {"choice": "a"})
            for n in range(3):
                await svc.audience.ask(sid, Voter(f"q{n}"), {"body": payload(n + 7)})
            await svc.feeds.ingest(
                "mastodon",
                [
                    SocialPost(
                        network="mastodon",
                        post_id=f"https://social.example/users/eve/statuses/{sid}",
                        author_handle="eve@social.example",
                        author_name="Eve " + payload(1),
                        text=CORPUS + " #botany",
                        url="https://social.example/@eve/1",
                        posted_at="2026-05-14T09:30:00.000Z",
                        hashtags=("botany",),
                    )
                ],
            )
        reader, reader_token = await svc.readers.register("rosa", "a long password")
        for sid in (seed.session_id, seed.other_session_id):
            await svc.comments.post(sid, reader, COMMENT_CORPUS)
        await svc.programme.set_state(seed.other_session_id, "live")
        await svc.programme.set_state(seed.other_session_id, "ended")
        await svc.archive.archive_due()
        await svc.archive.set_summary(seed.other_session_id, CORPUS, "org")
        try:
            await svc.archive.set_organiser_tags(seed.other_session_id, "plain, " + payload(1)[:50])
        except BadRequest:
            await svc.archive.set_organiser_tags(seed.other_session_id, "plain")
        return {"token": token, "reader_token": reader_token, "invite": invite}

    return server.call(run)


# What a page may contain: its own scripts (from /static, or JSON data blocks), links that go
# somewhere (http(s), a path, a fragment, mailto), and no handler attributes at all.
AUDIT = """(own) => {
  const bad = [];
  for (const s of document.scripts) {
    const src = s.getAttribute("src");
    const inline = !["application/ld+json", "application/json"].includes(s.type);
    if (src ? !new RegExp(own).test(src) : inline) bad.push("script " + (src || s.textContent.slice(0, 60)));
  }
  for (const el of document.querySelectorAll("*")) {
    for (const a of el.attributes) {
      if (a.name.startsWith("on")) bad.push(`${el.tagName} ${a.name}=${a.value.slice(0, 40)}`);
    }
  }
  for (const el of document.querySelectorAll("a[href], area[href]")) {
    const href = el.getAttribute("href").replace(/[\\u0000-\\u0020]/g, "").toLowerCase();
    if (/^(javascript|data|vbscript|blob):/.test(href)) bad.push("link " + href.slice(0, 60));
  }
  const embeds = "iframe, object, embed, base, frame, frameset, applet";
  for (const el of document.querySelectorAll(embeds)) bad.push("element " + el.tagName);
  for (const el of document.querySelectorAll("meta[http-equiv]")) bad.push("meta " + el.getAttribute("http-equiv"));
  for (const f of document.querySelectorAll("form")) {
    const action = f.getAttribute("action") || "";
    if (/^(https?:)?\\/\\//i.test(action) || /^javascript:/i.test(action.trim())) bad.push("form " + action);
  }
  for (const el of document.querySelectorAll("body style, body link")) bad.push("in-body " + el.tagName);
  if (window.__pwned !== undefined) bad.push("ran: " + window.__pwned);
  return bad;
}"""


def audit(page: Page, name: str, problems: dict[str, list[str]], own_scripts: str = "^/static/") -> None:
    page.wait_for_load_state("load")
    if bad := page.evaluate(AUDIT, own_scripts):
        problems[name] = bad


def watch(page: Page, origin: str, events: list[str]) -> None:
    """Dialogs, script errors, and the page leaving our origin (a refresh or a base href)."""
    page.on("dialog", lambda d: (events.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: events.append(f"page error: {e}"))
    page.on(
        "framenavigated",
        lambda f: (
            events.append(f"navigated to {f.url}")
            if f.parent_frame is None and not f.url.startswith(origin)
            else None
        ),
    )


def test_the_corpus_in_every_field_runs_nowhere(server: ThreadServer, browser_context: Any) -> None:
    planted = plant(server)
    seed = server.seed
    assert seed is not None
    live, ended = seed.session_id, seed.other_session_id
    problems: dict[str, list[str]] = {}
    events: list[str] = []

    anon: BrowserContext = browser_context(bypass_csp=True)
    page = anon.new_page()
    watch(page, server.url, events)
    public = {
        "home": "/",
        "event": f"/events/{seed.event_id}",
        "event-archive": f"/events/{seed.event_id}/archive",
        "viewer": f"/sessions/{live}",
        "screen": f"/sessions/{live}/screen",
        "embed": f"/embed/sessions/{live}",
        "ended-live-url": f"/sessions/{ended}",
        "knowledge": f"/archive/sessions/{ended}",
        "replay": f"/archive/sessions/{ended}/replay",
        "tags": "/tags",
        "tag": "/tags/botany",
        "search": "/search?q=" + quote(payload(0) + " window"),
        "search-tag-filter": "/search?q=pwned&tag=" + quote(payload(1)),
        "missing": "/sessions/" + quote(payload(1), safe=""),
        "login": "/login?next=" + quote("javascript:alert(1)"),
    }
    for name, path in public.items():
        page.goto(path)
        if name == "viewer":
            expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        if name == "replay":
            expect(page.locator("#replay")).to_have_attribute("data-ready", "true")
            page.locator("#replay-scrubber").evaluate(
                "(el) => { el.value = el.max; el.dispatchEvent(new Event('input')); }"
            )
        audit(page, name, problems)

    # Items arriving live are rendered by the page's script: plant more while a viewer watches.
    page.goto(f"/sessions/{live}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    before = page.locator("article.item").count()

    async def more(svc: Services) -> None:
        author = Author.from_invite(planted["invite"])
        for text in PAYLOADS[:4]:
            await note(svc, live, author, text)
        reader = await svc.db.read(lambda r: r.account_for_login("rosa"))
        assert reader is not None
        await svc.comments.post(live, reader[0], "live " + COMMENT_CORPUS)

    server.call(more)
    expect(page.locator("article.item")).to_have_count(before + 4)
    expect(page.locator("#comment-list")).to_contain_text("live ")
    audit(page, "viewer-after-live-items", problems)

    # The same pages for the people who wrote into them.
    org = browser_context(bypass_csp=True)
    org.add_cookies(
        [
            {"name": "lb_login", "value": seed.login_token, "url": server.url},
            {"name": "lb_reader", "value": planted["reader_token"], "url": server.url},
        ]
    )
    page = org.new_page()
    watch(page, server.url, events)
    private = {
        "organise": "/organise",
        "organise-event": f"/organise/events/{seed.event_id}",
        "organise-session": f"/organise/sessions/{live}",
        "organise-moderate": f"/organise/sessions/{live}/moderate",
        "organise-social": f"/organise/sessions/{live}/social",
        "organise-feeds": f"/organise/events/{seed.event_id}/feeds",
        "organise-comments": "/organise/comments",
        "notetaker": f"/n/{planted['token']}/sessions/{live}",
        "notetaker-ended": f"/n/{planted['token']}/sessions/{ended}",
        "knowledge-as-organiser": f"/archive/sessions/{ended}",
        "viewer-as-organiser": f"/sessions/{live}",
    }
    for name, path in private.items():
        page.goto(path)
        audit(page, name, problems)

    assert problems == {}
    assert events == []
    # The corpus is shown as text where it was typed as text (not silently dropped).
    page.goto(f"/sessions/{live}")
    expect(page.locator("h1")).to_have_text('Talk 0 <script>window.__pwned="script"</script>')


def test_the_static_export_of_the_corpus_runs_nowhere_opened_from_disk(
    server: ThreadServer, browser_context: Any, tmp_path: Path
) -> None:
    from liveblog.web.app import make_templates
    from liveblog.web.static_site import export_site

    plant(server)
    seed = server.seed
    assert seed is not None
    out = tmp_path / "site"
    server.call(lambda svc: export_site(svc, make_templates().env, seed.event_id, out))
    page = browser_context(bypass_csp=True).new_page()
    events: list[str] = []
    watch(page, out.as_uri(), events)
    problems: dict[str, list[str]] = {}
    files = sorted(out.rglob("*.html"))
    assert len(files) >= 3
    for f in files:
        page.goto(f.as_uri())
        audit(page, str(f.relative_to(out)), problems, own_scripts=r"^(\.\./)*(static|assets)/|^[a-z-]+\.js$")
    # Offline search shows the corpus as results, built by its script.
    page.goto((out / "index.html").as_uri())
    page.get_by_role("searchbox", name="Search the archive").fill("pwned")
    page.get_by_role("button", name="Search").first.click()
    expect(page.locator("#offline-results")).to_contain_text("__pwned")  # shown as text
    audit(page, "offline-search", problems, own_scripts=r"^(\.\./)*(static|assets)/|^[a-z-]+\.js$")
    assert problems == {}
    assert events == []

"""A session's Vimeo recording in Debian's chromium: the click-to-load player on the knowledge page
and on the replay page, where the replay and the player move together through Vimeo's postMessage
protocol, against a stand-in player that speaks that protocol as Vimeo's own does (no network
in the suite: the test routes https://player.vimeo.com/** to it)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import Frame, Page, expect

from liveblog.capture.notes import Author
from liveblog.services import Services
from tests.archive_fixtures import spread_change_times
from tests.browser.conftest import DESKTOP, ThreadServer

pytestmark = pytest.mark.browser

VIMEO_URL = "https://vimeo.com/76979871"
OFFSET = 60  # the session's scheduled start (09:00 UTC) is 60 s into the recording
LEAD = 10  # the stream's first change is 10 s after the scheduled start: replay 0:00 is 70 s in

# A stand-in for Vimeo's embed player (https://player.vimeo.com/video/ID), served on its origin.
# Where the wire format comes from (read with the `fetch` tool, vimeo/player.js at aea9991,
# January 2026; that library is what Vimeo's own pages use to drive the player):
# - src/lib/postmessage.js: the page sends {"method": NAME, "value": ARG} (an object; a JSON
#   string for IE 8 and 9, so the player parses strings too, as issue #370 also shows) to the
#   player's origin; the player answers a method with {"method": NAME, "value": RESULT}, an
#   event with {"event": NAME, "data": {...}}, and a failure with
#   {"event": "error", "data": {"method", "name", "message"}}.
# - src/player.js: the player posts {"event": "ready"} once it is ready, and answers a
#   {"method": "ping"} then; the library sends nothing else before that. The page trusts only
#   messages from a Vimeo origin whose source is the iframe's window. `on("timeupdate")` sends
#   {"method": "addEventListener", "value": "timeupdate"}; setCurrentTime(s) sends
#   {"method": "setCurrentTime", "value": s}.
# - README.md: timeupdate and seeked carry {"seconds", "percent", "duration"}; a seek also fires
#   timeupdate; setCurrentTime answers with the time reached, and fails with a RangeError below
#   0 or past the duration.
# - Issue #78 shows the player's messages on the wire: JSON strings from https://player.vimeo.com.
# - `api=1` (or 2) in the player's URL selects the Froogaloop-era API: events go out under their
#   old names (timeupdate as playProgress, seeked as seek; issues #22 and #262, where the
#   maintainers say to drop `api`, and docs/migrate-from-froogaloop.md's table of names).
# - Its start time is the URL's #t= (`#t=90`, `#t=1m30s`; Vimeo's embed options): `start` is
#   YouTube's parameter, not one of Vimeo's, so the player starts at 0 with it.
# What the fake does not know, it reads strictly: a message sent before "ready" is lost.
# window.now() is the player's time; window.seekBy(s) is the reader moving its bar; each
# setCurrentTime from the page sets document.title to "at SECONDS".
FAKE_VIMEO = """<!doctype html><title>player</title><script>
const DURATION = 3600;
const OLD_NAMES = {timeupdate: "playProgress", progress: "loadProgress", seeked: "seek", ended: "finish"};
const froogaloop = ["1", "2"].includes(new URLSearchParams(location.search).get("api"));
const hash = /^#t=(?:(\\d+)h)?(?:(\\d+)m)?(?:(\\d+)s?)?$/.exec(location.hash) || [];
let time = (Number(hash[1] || 0) * 60 + Number(hash[2] || 0)) * 60 + Number(hash[3] || 0);
let ready = false, page = null;
const listening = new Set();
const send = (message, origin) => parent.postMessage(JSON.stringify(message), origin);
const fire = (name) => {
  const wire = froogaloop ? (OLD_NAMES[name] || name) : name;
  if (page && (listening.has(name) || listening.has(wire))) send({event: wire, data: {
    seconds: time, percent: Math.round(time / DURATION * 1000) / 1000, duration: DURATION}}, page);
};
const moved = () => { fire("seeking"); fire("seeked"); fire("timeupdate"); };
window.now = () => time;
window.seekBy = (s) => { time = s; moved(); };
addEventListener("message", (e) => {
  if (e.source !== parent || !ready) return;
  let m;
  try { m = typeof e.data === "string" ? JSON.parse(e.data) : e.data; } catch { return; }
  if (!m || typeof m.method !== "string") return;
  page = e.origin;
  const answer = (value) => send(value === undefined ? {method: m.method} : {method: m.method, value}, page);
  if (m.method === "ping") answer();
  else if (m.method === "addEventListener") { listening.add(m.value); answer(); }
  else if (m.method === "removeEventListener") { listening.delete(m.value); answer(); }
  else if (m.method === "getCurrentTime") answer(time);
  else if (m.method === "getDuration") answer(DURATION);
  else if (m.method === "setCurrentTime") {
    if (typeof m.value !== "number" || m.value < 0 || m.value > DURATION) {
      send({event: "error", data: {method: m.method, name: "RangeError",
        message: "Seconds must be a positive float less than the duration of the video."}}, page);
      return;
    }
    time = m.value; document.title = "at " + time; answer(time); moved();
  }
});
addEventListener("load", () => setTimeout(() => { ready = true; send({event: "ready"}, "*"); }));
</script>"""


def ended_with_vimeo(server: ThreadServer) -> None:
    """The seeded session, ended, with three notes whose changes are LEAD, LEAD + 10 and LEAD + 20 s
    after its scheduled start, and its recording on Vimeo with the scheduled start at OFFSET."""
    seed = server.seed
    assert seed is not None

    async def build(svc: Services) -> None:
        invite = await svc.accounts.invite_for_token(seed.token)
        assert invite is not None
        for n in range(3):
            await svc.notes.handle(
                seed.session_id,
                Author.from_invite(invite),
                {"type": "note.create", "client_id": str(uuid.uuid4()), "body": f"Moment number {n}"},
            )
        await svc.programme.set_state(seed.session_id, "ended")
        await svc.programme.update_session(
            seed.session_id, {"recording_url": VIMEO_URL, "recording_offset": OFFSET}
        )
        session = await svc.programme.session(seed.session_id)
        # Seq 0 is no change: it holds 09:00:00, so the first change is at 09:00:LEAD.
        await spread_change_times(svc.db, seed.session_id, list(range(0, session.last_seq + 1)), every=LEAD)

    server.call(build)


def with_fake_vimeo(context: Any) -> list[str]:
    """Route Vimeo's player to FAKE_VIMEO; the list is every URL the browser asked Vimeo for."""
    asked: list[str] = []

    def vimeo(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body=FAKE_VIMEO)

    context.route("https://player.vimeo.com/**", vimeo)
    context.route("https://vimeo.com/**", vimeo)
    context.route("https://*.vimeocdn.com/**", vimeo)
    return asked


def press_play(page: Page, box: str, asked: list[str]) -> Frame:
    """Nothing comes from Vimeo before the reader presses play; then its player does."""
    assert asked == []
    page.get_by_role("button", name="Play the recording").click()
    expect(page.frame_locator(f"{box} iframe").locator("title")).to_have_count(1)
    assert len(asked) == 1 and asked[0].startswith("https://player.vimeo.com/video/76979871")
    return next(f for f in page.frames if f.url.startswith("https://player.vimeo.com/"))


def test_the_knowledge_page_loads_the_vimeo_player_at_the_session_start_only_when_pressed(
    browser: Any, server: ThreadServer
) -> None:
    seed = server.seed
    assert seed is not None
    ended_with_vimeo(server)
    context = browser.new_context(base_url=server.url, viewport=DESKTOP)
    asked = with_fake_vimeo(context)
    try:
        page = context.new_page()
        page.goto(f"/archive/sessions/{seed.session_id}")
        player = press_play(page, "#recording", asked)
        assert player.evaluate("() => window.now()") == OFFSET
    finally:
        context.close()

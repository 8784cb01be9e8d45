"""A session's Vimeo recording in Debian's chromium: the click-to-load player on the knowledge page
and on the replay page, where the replay and the player move together through Vimeo's postMessage
protocol, against a stand-in player that speaks that protocol as Vimeo's own does (no network
in the suite: the test routes https://player.vimeo.com/** to it)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Frame, Page, expect

from tests.browser.conftest import ThreadServer
from tests.browser.test_answers_browser import ended_with_notes, replay_seconds

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


@pytest.fixture
def vimeo_page(browser_context: Any, server: ThreadServer) -> tuple[Page, list[str]]:
    """A page with Vimeo's player routed to FAKE_VIMEO, and every URL it asked Vimeo for; the
    seeded session ended with three notes (0:10, 0:20 and 0:30 into its replay) and its
    recording on Vimeo."""
    ended_with_notes(server, 3, VIMEO_URL, OFFSET, every=10, first=LEAD)
    context = browser_context()
    asked: list[str] = []

    def vimeo(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body=FAKE_VIMEO)

    for address in ("https://player.vimeo.com/**", "https://vimeo.com/**", "https://*.vimeocdn.com/**"):
        context.route(address, vimeo)
    return context.new_page(), asked


def press_play(page: Page, box: str, asked: list[str]) -> Frame:
    """Nothing comes from Vimeo before the reader presses play; then its player does."""
    assert asked == []
    page.get_by_role("button", name="Play the recording").click()
    expect(page.frame_locator(f"{box} iframe").locator("title")).to_have_count(1)
    assert len(asked) == 1 and asked[0].startswith("https://player.vimeo.com/video/76979871?dnt=1")
    return next(f for f in page.frames if f.url.startswith("https://player.vimeo.com/"))


def test_the_knowledge_page_loads_the_vimeo_player_at_the_session_start_only_when_pressed(
    vimeo_page: tuple[Page, list[str]], server: ThreadServer
) -> None:
    page, asked = vimeo_page
    assert server.seed is not None
    page.goto(f"/archive/sessions/{server.seed.session_id}")
    player = press_play(page, "#recording", asked)
    assert player.evaluate("() => window.now()") == OFFSET


def test_the_replay_and_a_click_to_load_vimeo_player_move_together(
    vimeo_page: tuple[Page, list[str]], server: ThreadServer
) -> None:
    page, asked = vimeo_page
    assert server.seed is not None
    page.goto(f"/archive/sessions/{server.seed.session_id}/replay")
    expect(page.locator("#replay")).to_have_attribute("data-ready", "true")
    clock = page.locator("#replay-clock")
    page.get_by_role("button", name="Next moment").click()
    expect(clock).to_contain_text("0:10 /")
    player = press_play(page, "#replay-recording", asked)
    assert player.evaluate("() => window.now()") == OFFSET

    def player_at(seconds: int) -> None:
        player.wait_for_function("([s]) => document.title === 'at ' + s", arg=[seconds])

    # Moving the replay seeks the player: the step buttons, then the slider by keyboard. The
    # replay's 0:20 is OFFSET + LEAD + 20 s into the recording.
    page.get_by_role("button", name="Next moment").click()
    expect(clock).to_contain_text("0:20 /")
    player_at(OFFSET + LEAD + 20)
    page.get_by_role("button", name="Previous moment").click()
    expect(clock).to_contain_text("0:10 /")
    player_at(OFFSET + LEAD + 10)
    page.get_by_label("Position in the session").focus()
    page.keyboard.press("Home")
    player_at(OFFSET + LEAD)
    expect(clock).to_contain_text("0:00 /")

    # Seeking the player moves the replay: 95 s into the recording is 25 s into the replay.
    player.evaluate("() => window.seekBy(95)")
    expect(clock).to_contain_text("0:25 /")
    expect(page.locator("#replay-items")).to_contain_text("Moment number 1")  # at 0:20
    expect(page.locator("#replay-items")).not_to_contain_text("Moment number 2")  # at 0:30
    assert replay_seconds(clock.inner_text()) == 25
    # A moment before the replay begins (30 s into the recording) puts the replay at its start.
    player.evaluate("() => window.seekBy(30)")
    expect(clock).to_contain_text("0:00 /")
    assert len(asked) == 1  # the player's own messages only: nothing more was fetched

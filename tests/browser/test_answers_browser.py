"""What a speaker and a reader see of questions answered after the talk, in Debian's chromium:
the speaker's page behind a speaker link (on a phone, by keyboard, with its errors), the
knowledge page showing the answer; and the replay moving with a video file's player (issue 21).

The recording is tests/data/talk.webm (see tests/data/README.md), served beside the app on the
same loopback server, so the page's media-src 'self' allows it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from starlette.responses import FileResponse

from liveblog.capture.notes import Author
from liveblog.capture.votes.common import Voter
from liveblog.services import Services
from tests.archive_fixtures import spread_change_times
from tests.browser.conftest import DESKTOP, PHONE, ThreadServer
from tests.browser.test_ui import serious_axe_violations, sideways

pytestmark = pytest.mark.browser

VIDEO = Path(__file__).resolve().parents[1] / "data" / "talk.webm"  # 60 s, 64x36 VP8
VIDEO_PATH = "/recordings/talk.webm"
OFFSET = 5  # the session's scheduled start is 5 s into the recording


def with_video(app: Any) -> Any:
    """The app, with the test's recording served beside it (FileResponse answers Range requests)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == VIDEO_PATH:
            await FileResponse(VIDEO, media_type="video/webm")(scope, receive, send)
        else:
            await app(scope, receive, send)

    return wrapped


def ended_with_questions(server: ThreadServer) -> dict[str, Any]:
    seed = server.seed
    assert seed is not None

    async def build(svc: Services) -> dict[str, Any]:
        asked = {}
        for n, body in enumerate(
            ("How does it **scale** past one server?", "Will the slides be online?", "Is it open source?")
        ):
            item, _ = await svc.audience.ask(seed.session_id, Voter(f"p_browserasker{n:08d}"), {"body": body})
            asked[body] = item.id
        for n in range(2):
            await svc.audience.upvote(asked["Will the slides be online?"], Voter(f"p_browservoter{n:08d}"))
        await svc.programme.set_state(seed.session_id, "ended")
        _, token = await svc.answers.make_link(seed.session_id, "Dr Grace Hopper")
        return {"token": token, **asked}

    return server.call(build)


def ended_with_notes(
    server: ThreadServer, notes: int, recording_url: str, offset: int, every: int, first: int = 0
) -> None:
    """The seeded session with `notes` notes, ended, with its recording; its stream's changes
    `every` seconds apart, the first `first` seconds after its scheduled start (09:00 UTC)."""
    seed = server.seed
    assert seed is not None

    async def build(svc: Services) -> None:
        invite = await svc.accounts.invite_for_token(seed.token)
        assert invite is not None
        for n in range(notes):
            await svc.notes.handle(
                seed.session_id,
                Author.from_invite(invite),
                {"type": "note.create", "client_id": str(uuid.uuid4()), "body": f"Moment number {n}"},
            )
        await svc.programme.set_state(seed.session_id, "ended")
        await svc.programme.update_session(
            seed.session_id, {"recording_url": recording_url, "recording_offset": offset}
        )
        session = await svc.programme.session(seed.session_id)
        await spread_change_times(
            svc.db, seed.session_id, list(range(1, session.last_seq + 1)), every=every, start=first
        )

    server.call(build)


def look(page: Page, screenshot_dir: Path, name: str, width: int) -> None:
    """A whole-page screenshot; the page neither scrolls sideways nor has serious axe violations."""
    page.screenshot(path=str(screenshot_dir / f"{name}-{width}.png"), full_page=True)
    assert sideways(page, width) == []
    assert serious_axe_violations(page) == []


def test_a_speaker_answers_on_a_phone_by_keyboard_and_the_knowledge_page_shows_it(
    browser_context: Any, server: ThreadServer, screenshot_dir: Path
) -> None:
    made = ended_with_questions(server)
    # axe is injected as an inline script: these contexts let it past the page's CSP.
    page = browser_context(viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=True).new_page()
    page.goto(f"/a/{made['token']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Questions for you: Keynote")
    questions = page.locator(".speaker-question")
    expect(questions).to_have_count(3)
    expect(questions.first).to_contain_text("Will the slides be online?")  # the most voted first
    expect(questions.first).to_contain_text("2 votes")
    look(page, screenshot_dir, "speaker-answers", PHONE["width"])

    # By keyboard: an empty answer is refused, named at its field, and the text kept otherwise.
    answer = page.get_by_label("Your answer").nth(1)  # "How does it scale past one server?"
    answer.focus()
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Publish the answer")
    page.keyboard.press("Enter")
    expect(page.locator("#form-error")).to_have_text("write an answer first")
    field = page.get_by_label("Your answer").nth(1)
    expect(field).to_have_attribute("aria-invalid", "true")
    field.focus()
    page.keyboard.type("By **sharding** the streams: see [the notes](https://example.org/notes).")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Your answer is published.")).to_be_visible()
    expect(page.get_by_label("Your answer").nth(1)).to_have_value(
        "By **sharding** the streams: see [the notes](https://example.org/notes)."
    )
    expect(page.locator("#q-" + str(made["How does it **scale** past one server?"]))).to_contain_text(
        "Answered 20"
    )
    page.set_viewport_size(DESKTOP)
    look(page, screenshot_dir, "speaker-answers", DESKTOP["width"])

    reader = browser_context(viewport=PHONE, bypass_csp=True).new_page()
    reader.goto(f"/archive/sessions/{server.session_id}")
    later = reader.locator(f"#item-{made['How does it **scale** past one server?']} .answer-later")
    expect(later).to_contain_text("Answered after the talk")
    expect(later).to_contain_text("by Dr Grace Hopper")
    expect(later.locator("strong")).to_have_text("sharding")
    expect(later.get_by_role("link", name="the notes")).to_have_attribute("href", "https://example.org/notes")
    reader.locator(f"#item-{made['How does it **scale** past one server?']}").scroll_into_view_if_needed()
    look(reader, screenshot_dir, "knowledge-answered-after", PHONE["width"])
    reader.set_viewport_size(DESKTOP)
    look(reader, screenshot_dir, "knowledge-answered-after", DESKTOP["width"])


@pytest.fixture
def video_server(tmp_path: Path) -> Any:
    srv = ThreadServer(tmp_path, wrap=with_video).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_the_replay_and_the_video_move_together(
    browser: Any, video_server: ThreadServer, screenshot_dir: Path
) -> None:
    server = video_server
    seed = server.seed
    assert seed is not None

    ended_with_notes(server, 5, server.url + VIDEO_PATH, OFFSET, every=5)
    context = browser.new_context(base_url=server.url, viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(f"/archive/sessions/{seed.session_id}/replay")
        expect(page.locator("#replay")).to_have_attribute("data-ready", "true")
        video = page.locator("#replay-video")
        expect(video).to_be_visible()

        # Nothing of the video is loaded until the reader starts it (preload="none"); then it is.
        assert video.evaluate("v => v.readyState") == 0
        video.evaluate(
            "v => new Promise((ok, fail) => { v.onloadedmetadata = ok; v.onerror = () => fail(v.error); v.load(); })"
        )
        # Seeking the video moves the replay: 25 s into the recording is 20 s into the session.
        video.evaluate("v => { v.currentTime = 25; }")
        expect(page.locator("#replay-clock")).to_contain_text("0:20 /")
        expect(page.locator("#replay-items")).to_contain_text("Moment number 3")
        expect(page.locator("#replay-items")).not_to_contain_text("Moment number 4")

        def video_at(seconds: float) -> None:
            page.wait_for_function(
                "([s]) => Math.abs(document.getElementById('replay-video').currentTime - s) < 0.5",
                arg=[seconds],
            )

        # Moving the replay seeks the video: its step buttons, then its slider by keyboard.
        page.get_by_role("button", name="Next moment").click()
        expect(page.locator("#replay-clock")).to_contain_text("0:25 /")
        video_at(OFFSET + 25)
        page.get_by_role("button", name="Previous moment").click()
        video_at(OFFSET + 20)
        slider = page.get_by_label("Position in the session")
        slider.focus()
        page.keyboard.press("Home")
        video_at(OFFSET)
        expect(page.locator("#replay-clock")).to_contain_text("0:00 /")
        page.screenshot(path=str(screenshot_dir / "replay-with-video-1280.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(screenshot_dir / "replay-with-video-390.png"), full_page=True)
        assert sideways(page, PHONE["width"]) == []
    finally:
        context.close()


# A stand-in for YouTube's embed player, answering on its origin (the test routes the browser's
# requests there): it speaks the player's postMessage protocol as far as the replay uses it: after
# {"event": "listening"} it reports its time as {"event": "infoDelivery", "info": {"currentTime"}},
# and a {"event": "command", "func": "seekTo"} moves it. window.seekBy(s) is the reader seeking it.
FAKE_YOUTUBE = """<!doctype html><title>player</title><script>
let parentOrigin = null, time = Number(new URLSearchParams(location.search).get("start") || 0);
const tell = () => parentOrigin && parent.postMessage(
  JSON.stringify({event: "infoDelivery", info: {currentTime: time}}), parentOrigin);
window.seekBy = (s) => { time = s; tell(); };
addEventListener("message", (e) => {
  const m = JSON.parse(e.data);
  if (m.event === "listening") { parentOrigin = e.origin; tell(); }
  if (m.event === "command" && m.func === "seekTo") { time = m.args[0]; document.title = "at " + time; tell(); }
});
</script>"""


def test_the_replay_and_a_click_to_load_youtube_player_move_together(
    browser: Any, server: ThreadServer
) -> None:
    seed = server.seed
    assert seed is not None

    ended_with_notes(server, 3, "https://www.youtube.com/watch?v=dQw4w9WgXcQ", 60, every=10)
    context = browser.new_context(base_url=server.url, viewport=DESKTOP)
    third_party: list[str] = []

    def youtube(route: Any) -> None:
        third_party.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body=FAKE_YOUTUBE)

    context.route("https://www.youtube-nocookie.com/**", youtube)
    context.route("https://www.youtube.com/**", youtube)
    try:
        page = context.new_page()
        page.goto(f"/archive/sessions/{seed.session_id}/replay")
        expect(page.locator("#replay")).to_have_attribute("data-ready", "true")
        page.get_by_role("button", name="Next moment").click()
        assert third_party == []  # nothing from YouTube before the reader presses play
        page.get_by_role("button", name="Play the recording").click()
        frame = page.frame_locator("#replay-recording iframe")
        expect(frame.locator("title")).to_have_count(1)
        assert len(third_party) == 1 and "enablejsapi=1" in third_party[0]
        player = next(f for f in page.frames if f.url.startswith("https://www.youtube-nocookie.com/"))
        # Moving the replay seeks the player: "Next moment" is 10 s in, so 60 + 10 s into the video.
        page.get_by_role("button", name="Next moment").click()
        player.wait_for_function("() => document.title.startsWith('at ')")
        clock = page.locator("#replay-clock")
        seconds = player.evaluate("() => Number(document.title.slice(3))")
        assert 60 <= seconds <= 60 + 30 and abs(seconds - 60 - replay_seconds(clock.inner_text())) < 1
        # Seeking the player moves the replay: 85 s into the video is 25 s into the session.
        player.evaluate("() => window.seekBy(85)")
        expect(clock).to_contain_text("0:25 /")
    finally:
        context.close()


def replay_seconds(clock: str) -> int:
    """The replay clock's position ("0:20 / 0:35") in seconds."""
    minutes, seconds = clock.split("/")[0].strip().split(":")[-2:]
    return int(minutes) * 60 + int(seconds)

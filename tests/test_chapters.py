"""A session's recording on its knowledge page, with its key moments as chapters (WebVTT, and the
'00:12:34 Title' lines YouTube and PeerTube take), loaded from nobody before the reader asks."""

from __future__ import annotations

import re
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from liveblog.archive.chapters import Chapter, chapters, chapters_text, chapters_vtt, recording_of
from liveblog.models import Item, Session
from tests.archive_fixtures import fill_session
from tests.conftest import BACKENDS, LiveServer, Seed

UTC = ZoneInfo("UTC")
SESSION = Session(
    id="s",
    event_id="e",
    title="Keynote",
    starts_at="2026-05-14T09:00",
    ends_at="2026-05-14T10:00",
    recording_url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    recording_offset=90,
)


def item(id: int, body: str, typed_at: str, kind: str = "note", **data: object) -> Item:
    return Item(
        id=id,
        session_id="s",
        kind=kind,
        client_id=str(id),
        author="Ada",
        body=body,
        html=body,
        key_point=kind == "note",
        data=dict(data),
        typed_at=typed_at,
        received_at=typed_at,
        updated_at=typed_at,
        deleted=False,
        version=1,
        seq=id,
    )


def test_key_moments_are_placed_by_the_sessions_start_in_the_recording() -> None:
    key = item(1, "Four in ten **apprentices** started after 30", "2026-05-14T09:12:30.000Z")
    poll = item(
        2, "Which way in first?", "2026-05-14T09:20:00.000Z", "poll", opened_at="2026-05-14T09:21:00.000Z"
    )
    question = item(3, "What about pay?", "2026-05-14T09:30:00.000Z", "question")
    answer = item(4, "Answer: the levy covers training only", "2026-05-14T09:41:05.000Z")
    early = item(5, "Said before the recording began", "2026-05-14T08:58:00.000Z")  # 90 s before start: -30 s
    found = chapters(SESSION, [key, early], [poll], [(question, answer)], UTC)
    assert found == [
        Chapter(0, "Before the session"),
        Chapter(90, "The session starts"),
        Chapter(90 + 750, "Four in ten apprentices started after 30"),
        Chapter(90 + 1260, "Poll: Which way in first?"),
        Chapter(90 + 2465, "Q: What about pay?"),
    ]
    assert chapters_text(found).splitlines()[2] == "00:14:00 Four in ten apprentices started after 30"
    vtt = chapters_vtt(found, SESSION, UTC)
    assert vtt.startswith("WEBVTT\n\n1\n00:00:00.000 --> 00:01:30.000\nBefore the session\n")
    assert "00:42:35.000 --> 01:01:30.000\nQ: What about pay?" in vtt  # the last runs to the session's end
    # The venue's zone: a session at 09:00 in Sydney starts at 23:00 UTC the day before.
    sydney = replace(SESSION, recording_offset=0)
    assert chapters(
        sydney, [item(6, "Late", "2026-05-13T23:05:00.000Z")], [], [], ZoneInfo("Australia/Sydney")
    )[1] == Chapter(300, "Late")


def test_each_provider_opens_at_a_moment_its_own_way() -> None:
    def at(url: str) -> str:
        found = recording_of(replace(SESSION, recording_url=url))
        assert found is not None
        return found.at(754)

    assert at("https://youtu.be/dQw4w9WgXcQ") == "https://youtu.be/dQw4w9WgXcQ?t=754s"
    assert (
        at("https://www.youtube.com/watch?v=dQw4w9WgXcQ")
        == "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=754s"
    )
    assert (
        at("https://video.example.org/w/9c9de5e8-0a1e-484a-b099-e80766180a6d")
        == "https://video.example.org/w/9c9de5e8-0a1e-484a-b099-e80766180a6d?start=754s"
    )
    assert (
        at("https://media.example.org/talks/keynote.mp4")
        == "https://media.example.org/talks/keynote.mp4#t=754"
    )
    assert recording_of(replace(SESSION, recording_url="")) is None


def test_each_click_to_load_player_starts_at_a_moment_its_own_way() -> None:
    def player(url: str, api: bool) -> str:
        found = recording_of(replace(SESSION, recording_url=url))
        assert found is not None
        return found.player_at(754, api=api)

    youtube = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert player(youtube, False) == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?start=754"
    assert (
        player(youtube, True) == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?start=754&enablejsapi=1"
    )
    # Vimeo: #t=, not start= (not one of its parameters); and no api=1 (its old event names).
    for api in (False, True):
        assert (
            player("https://vimeo.com/76979871", api)
            == "https://player.vimeo.com/video/76979871?dnt=1#t=754s"
        )


async def test_the_knowledge_page_shows_the_recording_click_to_load_with_its_chapters(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    await fill_session(svc, seeded)
    async with live.client(headers={"Authorization": f"Bearer {seeded.login_token}"}) as c:
        for bad, field in (
            ({"recording_url": "javascript:alert(1)"}, "recording_url"),
            ({"recording_offset": "soon"}, "recording_offset"),
        ):
            r = await c.patch(f"/api/v1/sessions/{seeded.session_id}", json=bad)
            assert r.status_code == 400 and r.json()["error"]["field"] == field
        r = await c.patch(
            f"/api/v1/sessions/{seeded.session_id}",
            json={"recording_url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "recording_offset": "1:30"},
        )
        assert r.status_code == 200 and r.json()["recording_offset"] == 90
        await svc.programme.set_state(seeded.session_id, "ended")
        page = (await c.get(f"/archive/sessions/{seeded.session_id}")).text
        recording = page[page.index('id="recording"') : page.index('id="kp-heading"')]
        # Nothing from YouTube before the click: no iframe, a button for the privacy-friendly player.
        assert (
            "<iframe" not in page
            and 'data-player="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?start=90"' in recording
        )
        assert "Chlorophyll absorbs red and blue light" in recording  # the key point is a chapter
        assert re.search(r'href="https://www.youtube.com/watch\?v=dQw4w9WgXcQ&amp;t=\d+s"', recording)
        vtt = await c.get(f"/archive/sessions/{seeded.session_id}/chapters.vtt")
        assert vtt.headers["content-type"].startswith("text/vtt") and vtt.text.startswith("WEBVTT")
        txt = (await c.get(f"/archive/sessions/{seeded.session_id}/chapters.txt")).text
        assert txt.startswith("00:00:00 ") and "Chlorophyll absorbs red and blue light" in txt
        doc = await svc.archive.export(seeded.event_id)
        exported = next(s for s in doc["sessions"] if s["session"]["id"] == seeded.session_id)["session"]
        assert (exported["recording_url"], exported["recording_offset"]) == (
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            90,
        )
        none = await c.get(f"/archive/sessions/{seeded.other_session_id}/chapters.vtt")
        assert none.status_code == 404


def test_an_imported_recording_link_follows_the_live_rule() -> None:
    from liveblog.capture.imports import recording_link
    from liveblog.errors import BadRequest

    assert (
        recording_link("https://peertube.example/w/abc123", "s.recording_url")
        == "https://peertube.example/w/abc123"
    )
    assert recording_link("", "s.recording_url") == ""
    for bad in ("javascript:alert(1)", "data:text/html,x", 'https://x.example/"onmouseover=', 7):
        with pytest.raises(BadRequest, match=r"s\.recording_url: must be an http"):
            recording_link(bad, "s.recording_url")


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_session_is_made_with_its_recording_on_both_backends(live: LiveServer, seeded: Seed) -> None:
    async with live.client(headers={"Authorization": f"Bearer {seeded.login_token}"}) as c:
        r = await c.post(
            f"/api/v1/events/{seeded.event_id}/sessions",
            json={
                "title": "Panel",
                "starts_at": "2026-05-14T14:00",
                "ends_at": "2026-05-14T15:00",
                "recording_url": "https://media.example.org/panel.webm",
                "recording_offset": "0:00:45",
            },
        )
        assert r.status_code == 201, r.text
        assert (r.json()["recording_url"], r.json()["recording_offset"]) == (
            "https://media.example.org/panel.webm",
            45,
        )

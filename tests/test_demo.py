"""The demo shows every part of Liveblog (issue 8 §4): a live session with an open poll,
questions and a photo; a finished session with its closed poll, answered questions and a recap;
and a demo note-taker that posts varied notes and never repeats itself."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image

from liveblog.demo import DEMO_EVENT_TITLE, LIVE_NOTES, demo_note_taker, load_demo
from liveblog.models import Item
from liveblog.services import Services
from tests.conftest import make_settings


async def items(services: Services, session_id: str) -> list[Item]:
    return await services.db.read(lambda r: r.list_items(session_id))


async def photo_of(services: Services, note: Item) -> Image.Image:
    (media_id,) = note.data["media"]
    found = await services.db.read(lambda r: r.get_media(media_id))
    assert found is not None
    image = Image.open(io.BytesIO(found[1]))
    image.load()
    return image


async def test_the_demo_shows_polls_questions_a_photo_and_a_finished_session_with_its_recap(
    services: Services,
) -> None:
    ids = await load_demo(services)
    ended = await services.programme.session(ids["ended_session"])
    live = await services.programme.session(ids["live_session"])
    assert (ended.state, live.state) == ("ended", "live")

    for session_id, poll_state, answered in ((ended.id, "closed", True), (live.id, "open", False)):
        stream = await items(services, session_id)
        polls = [i for i in stream if i.kind == "poll"]
        questions = [i for i in stream if i.kind == "question"]
        assert [p.data["state"] for p in polls] == [poll_state] and polls[0].data["voters"] > 10
        assert len(questions) >= 3 and any(q.data["votes"] > 0 for q in questions)
        assert any(q.data["state"] == "answered" for q in questions) is answered
        photos = [i for i in stream if i.kind == "note" and i.data.get("media")]
        assert len(photos) == 1
        image = await photo_of(services, photos[0])
        assert (
            image.size == (960, 540) and len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 20
        )  # drawn, not a blank square
        assert 'alt="Bar chart: ' in photos[0].html

    recap = [i for i in await items(services, ended.id) if i.body.startswith("**Recap:**")]
    assert len(recap) == 1 and recap[0].key_point

    # The finished session's notes were typed during its slot, in order, not after it ended.
    notes = [i for i in await items(services, ended.id) if i.kind == "note"]
    venue = ZoneInfo(services.settings.archive.timezone)  # programme times are the venue's
    starts = datetime.fromisoformat(ended.starts_at).replace(tzinfo=venue)
    ends = datetime.fromisoformat(ended.ends_at).replace(tzinfo=venue)
    typed = [datetime.fromisoformat(n.typed_at.replace("Z", "+00:00")) for n in notes]
    assert typed == sorted(typed) and all(starts < t < ends for t in typed), (starts, typed, ends)


async def test_the_demo_note_taker_posts_each_note_once_and_then_stops(services: Services) -> None:
    ids = await load_demo(services)
    invite = next(i for i in await services.accounts.invites(ids["event"]) if i.id == ids["invite_id"])
    await demo_note_taker(services, ids["live_session"], invite, every=0)  # returns when done
    bodies = [i.body for i in await items(services, ids["live_session"]) if i.kind == "note"]
    assert len(bodies) == len(LIVE_NOTES) >= 20
    assert len(set(bodies)) == len(bodies)
    # Started again (a restart of the server) with nothing left to post: the demo starts afresh.
    # Before, it found its spent event and the note-taker posted nothing. The spent event stays, as
    # an earlier run without the hashtag (so new posts are not routed to it).
    again = await load_demo(services)
    assert again["event"] != ids["event"] and again["live_session"] != ids["live_session"]
    old = await services.programme.event(ids["event"])
    assert old.title.startswith(f"{DEMO_EVENT_TITLE} (earlier run") and not old.hashtags
    assert (await services.programme.session(ids["live_session"])).state == "ended"
    invite = next(i for i in await services.accounts.invites(again["event"]) if i.id == again["invite_id"])
    await demo_note_taker(services, again["live_session"], invite, every=0)
    fresh = [i.body for i in await items(services, again["live_session"]) if i.kind == "note"]
    assert len(fresh) == len(LIVE_NOTES)
    assert [e.id for e in await services.programme.events() if e.title == DEMO_EVENT_TITLE] == [
        again["event"]
    ]


async def test_a_restart_mid_session_carries_on_where_the_demo_was(services: Services) -> None:
    ids = await load_demo(services)
    again = await load_demo(services)
    assert (again["event"], again["live_session"]) == (ids["event"], ids["live_session"])


async def test_the_demo_programme_is_in_the_venues_time_zone(tmp_path: Path) -> None:
    # The server runs in UTC; the venue is 14 hours ahead: the live session spans the venue's now.
    venue = ZoneInfo("Pacific/Kiritimati")
    svc = Services.build(make_settings(tmp_path, archive={"timezone": venue.key}))
    await svc.open()
    try:
        ids = await load_demo(svc)
        live = await svc.programme.session(ids["live_session"])
        now = datetime.now(venue).replace(tzinfo=None).isoformat(timespec="minutes")
        assert live.starts_at <= now <= live.ends_at, (live.starts_at, now, live.ends_at)
    finally:
        await svc.close()

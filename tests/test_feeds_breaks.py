"""Breaks and whole days: an event collects from feeds.lead_minutes before its first session until
feeds.trail_minutes after its last, so a post made in a break is collected then, goes to "Around
the event", and never to the next session once that one goes live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from liveblog.capture.feeds.base import EndedSession, EventTarget, SessionTarget
from liveblog.capture.feeds.routing import route_post
from liveblog.demo.fakes import FakeNetworks, serve_fakes
from liveblog.models import SocialPost, event_feed_id, utcnow
from liveblog.services import Services
from tests.conftest import FAST_HASHER, ORGANISER, eventually, run_server
from tests.test_feeds_x import feed_settings


def at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def days(first: datetime, last: datetime) -> dict[str, str]:
    """An event's days holding sessions from `first` to `last` (two days around midnight)."""
    return {"starts_on": first.date().isoformat(), "ends_on": last.date().isoformat()}


@pytest.fixture
async def between(tmp_path: Path) -> AsyncIterator[tuple[Services, FakeNetworks, str, str, str]]:
    """An event in a break: its morning session ended ten minutes ago, the next starts in 50
    minutes (beyond the 15 minutes' lead)."""
    async with serve_fakes() as fake:
        svc = Services.build(
            feed_settings(tmp_path, fake, feeds={"moderate_by_default": False, "fetch_media": False})
        )
        await svc.open()
        try:
            now = datetime.now()
            event = await svc.programme.create_event(
                {
                    "title": "Break Summit",
                    **days(now - timedelta(minutes=70), now + timedelta(minutes=110)),
                    "hashtags": ["#test"],
                }
            )
            morning = await svc.programme.create_session(
                event.id,
                {
                    "title": "Morning",
                    "starts_at": at(now - timedelta(minutes=70)),
                    "ends_at": at(now - timedelta(minutes=10)),
                },
            )
            afternoon = await svc.programme.create_session(
                event.id,
                {
                    "title": "Afternoon",
                    "starts_at": at(now + timedelta(minutes=50)),
                    "ends_at": at(now + timedelta(minutes=110)),
                },
            )
            await svc.programme.set_state(morning.id, "live")
            await svc.programme.set_state(morning.id, "ended")
            yield svc, fake, event.id, morning.id, afternoon.id
        finally:
            await svc.close()


async def test_a_post_made_in_a_break_goes_around_the_event_never_to_the_next_session(
    between: tuple[Services, FakeNetworks, str, str, str],
) -> None:
    svc, fake, event_id, morning, afternoon = between
    svc.feeds.poll_now()  # and forget the targets computed before the programme was made
    targets = await svc.feeds.targets()
    assert [t.event_id for t in targets] == [event_id]  # the break is inside the event's span: collecting
    fake.add_tweet("ana", "Ana", "Coffee in the break #test")
    svc.feeds.poll_now()

    async def around(n: int) -> bool:
        return len(await svc.programme.items(event_feed_id(event_id), kind="social")) >= n

    await eventually(lambda: around(1), what="the break's post in Around the event")
    # Another post from the break reaches us only after the next session went live (the network
    # was slow, or we were down): it was made in the break, so it goes around the event too.
    await svc.programme.set_state(afternoon, "live")
    fake.add_tweet(
        "bo", "Bo", "Still queueing for coffee #test", created_at=datetime.now(UTC) - timedelta(minutes=3)
    )
    fake.add_tweet("cy", "Cy", "The afternoon starts #test")
    svc.feeds.poll_now()

    async def afternoon_one() -> bool:
        return len(await svc.programme.items(afternoon, kind="social")) >= 1

    await eventually(afternoon_one, what="the afternoon's own post")
    await eventually(lambda: around(2), what="the late break post in Around the event")
    assert [i.author for i in await svc.programme.items(afternoon, kind="social")] == ["Cy"]
    assert sorted(i.author for i in await svc.programme.items(event_feed_id(event_id), kind="social")) == [
        "Ana",
        "Bo",
    ]
    assert await svc.programme.items(morning, kind="social") == []


async def test_collection_ends_trail_minutes_after_the_last_session(tmp_path: Path) -> None:
    async with serve_fakes() as fake:
        svc = Services.build(feed_settings(tmp_path, fake, feeds={"trail_minutes": 30}))
        await svc.open()
        try:
            now = datetime.now()
            event = await svc.programme.create_event(
                {
                    "title": "Late",
                    **days(now - timedelta(minutes=80), now - timedelta(minutes=20)),
                    "hashtags": ["#test"],
                }
            )
            last = await svc.programme.create_session(
                event.id,
                {
                    "title": "Closing",
                    "starts_at": at(now - timedelta(minutes=80)),
                    "ends_at": at(now - timedelta(minutes=20)),
                },
            )
            await svc.programme.set_state(last.id, "ended")
            svc.feeds.poll_now()
            assert [t.event_id for t in await svc.feeds.targets()] == [event.id]  # 20 < 30 minutes after
            await svc.programme.update_session(last.id, {"ends_at": at(now - timedelta(minutes=40))})
            svc.feeds.poll_now()
            assert await svc.feeds.targets() == []  # 40 > 30: done
        finally:
            await svc.close()


def test_a_live_session_takes_event_posts_made_since_it_went_live() -> None:
    went_live = datetime(2026, 5, 14, 14, 0, tzinfo=UTC)
    target = EventTarget(
        "e",
        frozenset({"test"}),
        (),
        (SessionTarget("s2", frozenset(), True, went_live, went_live),),
        went_live,
    )

    def post(minute: int) -> SocialPost:
        return SocialPost("x", str(minute), "ana", "Ana", "#test", "", f"2026-05-14T13:{minute:02d}:00.000Z")

    assert route_post(post(55), [target], None) == [("e", "")]
    later = SocialPost("x", "late", "ana", "Ana", "#test", "", "2026-05-14T14:01:00.000Z")
    assert route_post(later, [target], None) == [("e", "s2")]


@pytest.fixture
async def closing(tmp_path: Path) -> AsyncIterator[tuple[Services, FakeNetworks, str, str]]:
    """An event whose closing talk is live (scheduled until ten minutes from now)."""
    async with serve_fakes() as fake:
        svc = Services.build(feed_settings(tmp_path, fake))
        await svc.open()
        try:
            now = datetime.now()
            event = await svc.programme.create_event(
                {
                    "title": "Close",
                    **days(now - timedelta(minutes=50), now + timedelta(minutes=10)),
                    "hashtags": ["#test"],
                }
            )
            talk = await svc.programme.create_session(
                event.id,
                {
                    "title": "Closing talk",
                    "starts_at": at(now - timedelta(minutes=50)),
                    "ends_at": at(now + timedelta(minutes=10)),
                },
            )
            await svc.programme.set_state(talk.id, "live")
            yield svc, fake, event.id, talk.id
        finally:
            await svc.close()


async def test_a_post_made_in_the_last_seconds_of_a_talk_and_collected_after_its_end_goes_to_that_talk(
    closing: tuple[Services, FakeNetworks, str, str],
) -> None:
    """Found by the rehearsal (tests/test_rehearsal.py): a post made while a session was live but
    collected after an organiser ended it (X polls every minute) went to Around the event, though
    it belongs to the session live when it was made; one made after the end still goes around."""
    svc, fake, event_id, talk = closing
    svc.feeds.poll_now()
    assert [s.live for t in await svc.feeds.targets() for s in t.sessions] == [True]  # seen live
    fake.add_tweet(
        "ana", "Ana", "Standing ovation #test", created_at=datetime.now(UTC) - timedelta(seconds=5)
    )
    await svc.programme.set_state(talk, "ended")
    fake.add_tweet("bo", "Bo", "Off to the bar #test", created_at=datetime.now(UTC) + timedelta(seconds=1))
    svc.feeds.poll_now()

    async def both() -> bool:
        return (
            len(await svc.programme.items(talk, kind="social"))
            + len(await svc.programme.items(event_feed_id(event_id), kind="social"))
            >= 2
        )

    await eventually(both, what="both posts collected")
    assert [i.author for i in await svc.programme.items(talk, kind="social")] == ["Ana"]
    assert [i.author for i in await svc.programme.items(event_feed_id(event_id), kind="social")] == ["Bo"]


async def test_a_post_made_just_after_an_organiser_ended_the_talk_goes_around_the_event(
    closing: tuple[Services, FakeNetworks, str, str],
) -> None:
    """Found by the rehearsal: the collecting sessions are computed at most once a second and
    ending a session did not forget them, so a post made (and pushed, as Jetstream does) just after
    the end could still go to the ended session."""
    svc, _, event_id, talk = closing
    svc.accounts.hasher = FAST_HASHER
    await svc.accounts.create_organiser(*ORGANISER)
    login = await svc.accounts.login(*ORGANISER)
    async with (
        run_server(svc.settings, svc) as live,
        live.client(headers={"Authorization": f"Bearer {login}"}) as c,
    ):
        svc.feeds.poll_now()
        assert [s.live for t in await svc.feeds.targets() for s in t.sessions] == [True]  # kept a second
        r = await c.patch(f"/api/v1/sessions/{talk}", json={"state": "ended"})
        assert r.status_code == 200, r.text
    await svc.feeds.ingest("x", [SocialPost("x", "1", "bo", "Bo", "Off to the bar #test", "", utcnow())])
    assert await svc.programme.items(talk, kind="social") == []
    assert [i.author for i in await svc.programme.items(event_feed_id(event_id), kind="social")] == ["Bo"]


def test_a_post_dated_in_whole_seconds_from_the_second_a_talk_ended_is_not_the_talks() -> None:
    """Found by the rehearsal: an RSS entry of the lunch break (dated in whole seconds, like X's
    created_at) from the second in which the morning talk ended was taken as the talk's."""
    went_live = datetime(2026, 5, 14, 12, 0, tzinfo=UTC)
    ended = datetime(2026, 5, 14, 12, 30, 0, 400_000, tzinfo=UTC)
    target = EventTarget("e", frozenset({"test"}), (), (), went_live, (EndedSession("s1", went_live, ended),))

    def post(when: str) -> SocialPost:
        return SocialPost("rss", when, "ana", "Ana", "#test", "", when)

    assert route_post(post("2026-05-14T12:30:00.000Z"), [target], None) == [("e", "")]
    assert route_post(post("2026-05-14T12:29:59.000Z"), [target], None) == [("e", "s1")]
    assert route_post(post("2026-05-14T12:30:00.350Z"), [target], None) == [("e", "s1")]


async def test_a_session_ended_while_the_collecting_sessions_are_read_is_not_routed_to(
    closing: tuple[Services, FakeNetworks, str, str],
) -> None:
    """The one failure of the closing-talk test above, seen once on PostgreSQL under load: the list
    of collecting sessions was being read when the talk ended, and that list (the talk still
    live) was kept and used for the next second. Here the talk ends during that very read."""
    svc, _, _, talk = closing
    feeds = svc.feeds
    read = feeds.db.read
    ended_during_read = False

    async def read_then_end(fn, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal ended_during_read
        result = await read(fn, **kwargs)
        if not ended_during_read:
            ended_during_read = True
            await svc.programme.set_state(talk, "ended")
            feeds.forget_targets()  # as the organiser's end does (feeds.state_changed)
        return result

    feeds.forget_targets()
    feeds.db.read = read_then_end  # type: ignore[method-assign]
    try:
        targets = await feeds.targets()
    finally:
        feeds.db.read = read  # type: ignore[method-assign]
    assert ended_during_read
    assert [s.session_id for t in targets for s in t.sessions if s.live] == []
    assert [s.session_id for t in (await feeds.targets()) for s in t.sessions if s.live] == []

"""Reading the archive never writes (docs/archive.md): a knowledge page, the event's archive,
tag pages, search, feeds and exports are reads, even of a session that ended a moment ago and
has no page yet, and even when their cards are rendered for the first time. What they ask for
(the page archived, its cards kept) is done by the archive's background job."""

from __future__ import annotations

import sqlite3

import pytest

from liveblog.archive.service import programme_tags
from liveblog.services import Services
from tests.archive_fixtures import fill_session
from tests.conftest import LiveServer, Seed, eventually
from tests.test_archive import end, settled


def data_version(conn: sqlite3.Connection) -> int:
    """SQLite's count of commits made by other connections to the file (PRAGMA data_version)."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # SQLite's data_version is the witness
async def test_reading_archive_pages_writes_nothing_and_the_job_does_what_they_asked(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    sid = seeded.session_id
    await settled(svc, await fill_session(svc, seeded))
    # The job would archive the page by itself: stopped, so that the only writer left is a reader.
    await svc.supervisor.stop("archive.check")
    await svc.programme.update_session(sid, {"hashtags": ["#pigments"]})
    await end(svc, sid)
    tag = programme_tags(await svc.programme.session(sid))[0]
    watch = sqlite3.connect(svc.settings.database.path)
    try:
        before = data_version(watch)
        async with live.client() as c:
            for url in (
                f"/archive/sessions/{sid}",  # not archived yet, every card rendered for the first time
                f"/sessions/{sid}",  # the live URL of an ended session
                f"/archive/sessions/{sid}.md",
                f"/archive/sessions/{sid}.json",
                f"/events/{seeded.event_id}/archive",
                f"/events/{seeded.event_id}/archive.md",
                f"/events/{seeded.event_id}/feed.atom",
                f"/tags/{tag}",
                "/tags",
                "/search?q=xanthophyll",
                "/sitemap.xml",
            ):
                r = await c.get(url)
                assert r.status_code == 200, url
            page = (await c.get(f"/archive/sessions/{sid}")).text
            assert f"#{tag}" in page or f"/tags/{tag}" in page  # its tags shown before they are stored
        assert data_version(watch) == before, "a GET wrote to the database"
        assert not await svc.archive.is_archived(sid)
        # The job does what the readers asked for: the page archived, its cards kept.
        await svc.archive.cards_kept()
        assert data_version(watch) != before
        assert await svc.archive.is_archived(sid)
        session = await svc.programme.session(sid)
        cards = live.server.config.app.state.cards
        assert await svc.db.read(lambda r: r.get_card_section(sid, cards.key(session))) is not None
        async with live.client() as c:
            archived = (await c.get(f"/archive/sessions/{sid}")).text
        # The same notes and posts (only the page's modification time moved, in its JSON-LD).
        assert archived.split('id="notes-heading"')[1] == page.split('id="notes-heading"')[1]
    finally:
        watch.close()


async def test_a_failing_round_of_the_job_is_restarted_not_turned_off(
    services: Services, seeded: Seed
) -> None:
    """Any error in a round (an AttributeError too: it once switched the job off for good, in
    silence) is the supervisor's to log and restart; the next round archives what is due."""
    archive = services.archive
    real = archive.archive_due
    calls = 0

    async def first_round_fails(local_now: str | None = None) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise AttributeError("a bug in a round of the background job")
        return await real(local_now)

    archive.archive_due = first_round_fails  # type: ignore[method-assign]
    await services.supervisor.stop("archive.check")
    services.supervisor.spawn("archive.check", archive.run)
    await end(services, seeded.session_id)

    async def archived() -> bool:
        return await archive.is_archived(seeded.session_id)

    # The back-off before the restart is FIRST_BACKOFF (0.1 s) give or take half; check_seconds is
    # 60, so only the round that follows a restart can archive the page in time.
    await eventually(archived, timeout=10, what="the restarted job archiving the session")
    assert calls >= 2
    health = services.supervisor.health()
    assert health["archive.check"]["failures"] == 1

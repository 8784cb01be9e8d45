"""The feed panel's counts and a stream's "recent" list are read in SQL, so they stay right past
any number of collected posts (they once loaded at most 100,000 routes into Python)."""

from __future__ import annotations

from typing import Any

from liveblog.services import Services
from tests.conftest import Seed

# One more than the old cap on routes loaded into Python.
MANY = 100_001


async def _collect_many(svc: Services, seeded: Seed) -> None:
    """MANY posts, all posted at the same moment (routes then sort by row), each approved in the
    live session and waiting in the event's own feed; written in one statement."""

    async def op(tx: Any) -> None:
        await tx.db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO social_posts (id, network, post_id, posted_at, collected_at, data)"
            " SELECT i, 'mastodon', 'p' || i, '2026-05-14T09:00:00Z', '2026-05-14T09:00:00Z',"
            ' \'{"network": "mastodon", "post_id": "p\' || i || \'"}\' FROM n',
            (MANY,),
        )
        for session_id, state in ((seeded.session_id, "approved"), ("", "pending")):
            await tx.db.execute(
                "INSERT INTO social_routes (post_row, event_id, session_id, state, routed_at)"
                " SELECT id, ?, ?, ?, collected_at FROM social_posts",
                (seeded.event_id, session_id, state),
            )

    await svc.db.write(op)


async def test_counts_and_recent_posts_hold_past_a_hundred_thousand_routes(
    services: Services, seeded: Seed
) -> None:
    await _collect_many(services, seeded)
    event = (await services.feeds.panel.status(seeded.event_id))["event"]
    assert event["pending"] == MANY
    assert event["event_feed"] == MANY
    assert event["collected"] == {"mastodon": MANY}
    session = await services.programme.session(seeded.session_id)
    recent = await services.feeds.moderation.recent(session, limit=3)
    assert [r.post_row for r in recent] == [MANY - 2, MANY - 1, MANY]  # the newest, oldest first
    feed = await services.feeds.moderation.event_feed(seeded.event_id)
    assert await services.feeds.moderation.recent(feed, limit=3) == []  # waiting posts are not "recent"

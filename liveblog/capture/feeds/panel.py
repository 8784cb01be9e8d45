"""The organisers' feed panel: each source's state beside what it collected for an event (counted
in SQL), and, when several processes share the work, the sources' status kept in Redis by the
process that runs them, for the panels of the others."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from liveblog.storage import Tx

if TYPE_CHECKING:
    from liveblog.capture.feeds.service import FeedService

# Where the process running the sources keeps their status for the others, and how often at
# least it refreshes it (the key expires after three times that: a dead holder's status goes).
SHARED_STATUS_KEY = "feeds:status"
SHARED_STATUS_SECONDS = 2.0


class FeedPanel:
    def __init__(self, feeds: FeedService) -> None:
        self.feeds = feeds

    async def share(self) -> None:
        """Keep the sources' status in Redis for the other processes' panels: at each change and
        every SHARED_STATUS_SECONDS, expiring if this process stops (another takes the lease)."""
        shared = self.feeds.shared
        assert shared is not None
        version = -1
        while True:
            version = await self.feeds.wait_for_status(version, SHARED_STATUS_SECONDS)
            sources = [s.status.to_wire() for s in self.feeds.sources]
            await shared.put_text(SHARED_STATUS_KEY, json.dumps(sources), SHARED_STATUS_SECONDS * 3)
            await asyncio.sleep(0.25)  # a burst of changes is one write

    async def status(self, event_id: str) -> dict[str, Any]:
        """The panel's data for one event: each source's state, and what was collected for the event."""

        async def load(r: Tx) -> tuple[dict[str, int], dict[tuple[str, str], int], int, int]:
            counts = await r.count_social_posts(event_id)
            reads = await r.feed_reads("x")
            pending = await r.count_social_routes(event_id, state="pending")
            event_feed = await r.count_social_routes(event_id, session_id="")
            return counts, reads, pending, event_feed

        counts, reads, pending, event_feed = await self.feeds.db.read(load, pool="pages")
        x_reads = reads.get((event_id, ""), 0)
        xs = self.feeds.settings.feeds_x
        sources: list[dict[str, Any]] = [s.status.to_wire() for s in self.feeds.sources]
        elsewhere = self.feeds.shared is not None and not self.feeds.runs_sources
        if elsewhere and self.feeds.shared is not None:
            # The sources run in the process holding the feed lease: show what it keeps.
            kept = await self.feeds.shared.get_text(SHARED_STATUS_KEY)
            sources = json.loads(kept) if kept else []
            if kept is not None and not sources:
                elsewhere = False  # it reported: it runs no source (none configured)
        # A source's own counters run over every event since the process started; beside them,
        # what it brought to this event (stored posts of its network, and X's billed reads).
        for row in sources:
            x = row.get("network") == "x"
            row["event"] = {
                "posts": counts.get(str(row.get("network")), 0),
                "reads": x_reads if x else None,
                "read_cap": xs.event_read_cap if x else None,
                "cost_usd": round(x_reads * xs.cost_per_read_usd, 4) if x else None,
            }
        return {
            "enabled": self.feeds.settings.feeds.enabled,
            "version": self.feeds.status_version,
            "runs_elsewhere": elsewhere,
            "sources": sources,
            "event": {
                "collected": counts,
                "pending": pending,
                "event_feed": event_feed,
                "x_reads": x_reads,
                "x_read_cap": xs.event_read_cap,
                "x_session_read_cap": xs.session_read_cap,
                "x_cost_usd": round(x_reads * xs.cost_per_read_usd, 4),
                "x_session_reads": {s: n for (e, s), n in reads.items() if e == event_id and s},
            },
        }

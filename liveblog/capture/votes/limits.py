"""Limits kept in memory: a participant's flood guard (429) and per-address burst flags for moderators."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter, deque
from typing import Any

from liveblog.capture.votes.common import _iso
from liveblog.errors import RateLimited
from liveblog.models import utcnow
from liveblog.sharedstate import SharedCounters

log = logging.getLogger(__name__)

# One person clicking fast does a few actions a second; a script does hundreds. Over this many
# actions in FLOOD_WINDOW seconds a participant gets 429 and nothing changes.
FLOOD_ACTIONS = 10
FLOOD_WINDOW = 1.0

# -- limits kept in memory ---------------------------------------------------------------------


class FloodGuard:
    """At most FLOOD_ACTIONS per participant per FLOOD_WINDOW seconds."""

    def __init__(
        self,
        actions: int = FLOOD_ACTIONS,
        window: float = FLOOD_WINDOW,
        *,
        shared: SharedCounters | None = None,
    ) -> None:
        self.actions = actions
        self.window = window
        self.clock = time.monotonic  # replaceable, so a test does not depend on machine speed
        self._seen: dict[str, deque[float]] = {}
        self.shared = shared or SharedCounters()  # in Redis when several processes serve

    async def check_shared(self, participant: str) -> None:
        """`check`, and with several processes the same limit across all of them."""
        self.check(participant)
        bucket = int(time.time() // self.window)  # wall clock: the same bucket on every process
        count = await self.shared.hit(f"flood:{participant}:{bucket}", self.window * 2)
        if count is not None and count > self.actions:
            raise RateLimited(
                f"more than {self.actions} actions in {self.window:g} s: slow down and try again in a moment"
            )

    def check(self, participant: str) -> None:
        now = self.clock()
        stamps = self._seen.setdefault(participant, deque())
        while stamps and now - stamps[0] > self.window:
            stamps.popleft()
        if len(stamps) >= self.actions:
            raise RateLimited(
                f"more than {self.actions} actions in {self.window:g} s: slow down and try again in a moment"
            )
        stamps.append(now)

    def prune(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._seen.items() if not s or now - s[-1] > self.window]:
            del self._seen[key]


class IpBursts:
    """Counts actions per IP per minute. A whole room shares one IP, so this never blocks: a
    count over the limit is flagged to the session's moderators once per IP per minute.

    Two instances run: every action ("ip_burst", votes.ip_burst_per_minute), and actions by
    participant ids issued moments before ("fresh_ids", votes.fresh_ids_per_minute): a script
    minting an id per vote looks like that; a room of people who opened the page first does not."""

    def __init__(self, per_minute: int, kind: str = "ip_burst") -> None:
        self.per_minute = per_minute
        self.kind = kind
        self._counts: Counter[tuple[str, int]] = Counter()
        self.flags: dict[str, deque[dict[str, Any]]] = {}

    def count(self, session_id: str, ip: str) -> dict[str, Any] | None:
        if not ip or self.per_minute <= 0:
            return None
        minute = int(time.time() // 60)
        key = (ip, minute)
        self._counts[key] += 1
        if self._counts[key] != self.per_minute + 1:
            return None
        flag = {
            "kind": self.kind,
            "ip": ip,
            "source": hashlib.sha256(ip.encode()).hexdigest()[:8],
            "minute": _iso(minute * 60),
            "limit": self.per_minute,
            "at": utcnow(),
        }
        self.flags.setdefault(session_id, deque(maxlen=50)).append(flag)
        return flag

    def over(self, ip: str) -> bool:
        """Whether this address is over the limit in the current minute (after `count`): the
        rule that flags a vote (votes.flagged; organisers may discount flagged votes)."""
        if not ip or self.per_minute <= 0:
            return False
        return self._counts[(ip, int(time.time() // 60))] > self.per_minute

    def prune(self) -> None:
        minute = int(time.time() // 60)
        for key in [k for k in self._counts if k[1] < minute]:
            del self._counts[key]

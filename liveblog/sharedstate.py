"""State that several app processes share through Redis: the flood and log-in throttles, the
claims that make one process at a time write a poll's tally, and the feed sources' status that
the process running them keeps for the organisers' panel on every other process.

A throttle kept in each process's memory lets a client that spreads its requests over N
processes do N times as much. With `redis.url` set, the throttles count in Redis instead (one
INCR per action, keys expire with their window). If Redis cannot be reached the count falls
back to the process's own memory, so an outage of Redis never blocks votes or log-ins.
"""

from __future__ import annotations

import logging
import math
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "liveblog:limit:"


class SharedCounters:
    """Fixed-window counters in Redis. `client` is a redis.asyncio.Redis (the fan-out's, with
    several processes), or None: one process, nothing shared, every caller counts locally."""

    def __init__(self, client: Any = None) -> None:
        self.client: Any = client
        self.failures = 0

    @property
    def available(self) -> bool:
        return self.client is not None

    async def hit(self, key: str, window: float) -> int | None:
        """Count one more action under key (expiring after window seconds); the new count, or
        None when Redis is unreachable (the caller counts locally instead)."""
        if self.client is None:
            return None
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(PREFIX + key)
                pipe.expire(PREFIX + key, max(1, math.ceil(window)), nx=True)
                count, _ = await pipe.execute()
            return int(count)
        except Exception as exc:  # redis errors of any kind: fall back, never fail the request
            self._failed(exc)
            return None

    async def claim(self, key: str, seconds: float) -> bool | None:
        """Take `key` for `seconds` unless another process holds it: True when taken, False when
        held elsewhere, None when Redis is unreachable (the caller goes ahead alone)."""
        if self.client is None:
            return None
        try:
            return bool(await self.client.set(PREFIX + key, "1", nx=True, px=max(1, int(seconds * 1000))))
        except Exception as exc:
            self._failed(exc)
            return None

    async def record(self, key: str, when: float, window: float) -> None:
        """Add a moment (wall-clock seconds) to key's recent moments; older than window drop out."""
        if self.client is None:
            return
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.zadd(PREFIX + key, {f"{when:.6f}": when})
                pipe.zremrangebyscore(PREFIX + key, "-inf", when - window)
                pipe.expire(PREFIX + key, max(1, math.ceil(window)))
                await pipe.execute()
        except Exception as exc:
            self._failed(exc)

    async def put_text(self, key: str, value: str, seconds: float) -> None:
        """Keep a small value under key for `seconds` (one process writes what others read)."""
        if self.client is None:
            return
        try:
            await self.client.set(PREFIX + key, value, px=max(1, int(seconds * 1000)))
        except Exception as exc:
            self._failed(exc)

    async def get_text(self, key: str) -> str | None:
        """The value kept under key, or None (none kept, expired, or Redis unreachable)."""
        if self.client is None:
            return None
        try:
            value = await self.client.get(PREFIX + key)
        except Exception as exc:
            self._failed(exc)
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def recent(self, key: str, now: float, window: float) -> list[float] | None:
        """key's moments within window before now, oldest first; None when Redis is unreachable."""
        if self.client is None:
            return None
        try:
            values = await self.client.zrangebyscore(PREFIX + key, now - window, "+inf", withscores=True)
            return [float(score) for _, score in values]
        except Exception as exc:
            self._failed(exc)
            return None

    async def get(self, key: str) -> int | None:
        if self.client is None:
            return None
        try:
            value = await self.client.get(PREFIX + key)
            return int(value) if value is not None else 0
        except Exception as exc:
            self._failed(exc)
            return None

    async def reset(self, key: str) -> None:
        if self.client is None:
            return
        try:
            await self.client.delete(PREFIX + key)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if self.failures == 1 or self.failures % 1000 == 0:
            log.warning("shared counters in Redis unavailable (%s); counting in this process", exc)

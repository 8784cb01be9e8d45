"""Giving memory back to the system: after a wave of evictions (glibc only), and a periodic full
collection of the cyclic garbage collector (`liveblog serve`).

A stalled viewer holds up to `streams.viewer_buffer_bytes` of unsent frames in its transport.
When hundreds are evicted at once, Python frees those buffers, but glibc's malloc keeps the
freed pages in its heap (they sit below live allocations, and buffers of this size are served
from the heap once glibc's adaptive mmap threshold has risen), so the process's RSS stays at its
peak: +164 MiB after 500 evictions in `bench/soak.py --evict 500`. `malloc_trim(0)` returns the
free pages anywhere in the heap. It walks the heap, so it runs once per wave, a moment after the
evictions, and only when enough was dropped to matter. Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import platform
import time
from collections.abc import Callable
from typing import Any

from liveblog.metrics import GC_FULL_PASS_SECONDS

log = logging.getLogger(__name__)

# Bytes of dropped send buffers since the last trim before one is scheduled: some 30 evicted
# viewers at the default 256 KiB limit. Below that, what is freed is reused soon enough.
TRIM_AFTER_BYTES = 8 * 1024 * 1024
# Evictions come in waves (a network blip, a proxy restart): one trim, this long after the first.
TRIM_DELAY_SECONDS = 1.0


def _load_malloc_trim() -> Callable[[int], int] | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError as exc:  # pragma: no cover - a glibc that cannot be loaded
        log.warning(
            "freed send buffers are not given back to the system: the C library did not load (%s)", exc
        )
        return None
    if not hasattr(libc, "malloc_trim"):  # pragma: no cover - a glibc without it
        log.warning("freed send buffers are not given back to the system: this glibc has no malloc_trim")
        return None
    trim: Any = libc.malloc_trim
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class MemoryReleaser:
    """Counts the send buffers dropped with evicted connections and trims the heap after a wave."""

    def __init__(self, trim: Callable[[int], int] | None = None) -> None:
        self._trim = trim if trim is not None else _load_malloc_trim()
        self.pending = 0  # bytes dropped since the last trim
        self.scheduled = False
        self.trims = 0
        self.last_trim_seconds = 0.0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def dropped(self, nbytes: int, call_later: Callable[[float, Callable[[], None]], object]) -> None:
        """`nbytes` of buffers were just dropped; `call_later` is the event loop's."""
        if self._trim is None or nbytes <= 0:
            return
        self.pending += nbytes
        if self.pending >= TRIM_AFTER_BYTES and not self.scheduled:
            self.scheduled = True
            call_later(TRIM_DELAY_SECONDS, self.trim_now)

    def trim_now(self) -> None:
        self.scheduled = False
        self.pending = 0
        if self._trim is None:
            return
        started = time.perf_counter()
        self._trim(0)
        self.trims += 1
        self.last_trim_seconds = time.perf_counter() - started
        log.debug("malloc_trim after evictions took %.1f ms", self.last_trim_seconds * 1000)


RELEASER = MemoryReleaser()


# How often `liveblog serve` runs a full collection. Start-up is frozen (gc.freeze in
# create_app), so a pass walks only the objects made since: some 20,000-35,000 in the soak, a
# few milliseconds. Left to itself, the collector's next full pass waits for ten collections of
# the middle generation, each after some 7,000 objects more made than freed: 25 minutes in the
# 30-minute soak, while garbage in reference cycles (asyncio's transports: HTTP connections',
# and whatever else a request leaves in a cycle) kept pymalloc's arenas from being returned
# and the RSS grew by 12.7% (docs/performance.md, "Soak: a full pass every minute").
FULL_PASS_SECONDS = 60.0


async def full_passes(every: float) -> None:
    """Run a full collection every `every` seconds, until cancelled (a supervised task)."""
    while True:
        await asyncio.sleep(every)
        started = time.perf_counter()
        found = gc.collect()
        took = time.perf_counter() - started
        GC_FULL_PASS_SECONDS.observe(took)
        log.debug("periodic full collection: %d unreachable objects, %.1f ms", found, took * 1000)

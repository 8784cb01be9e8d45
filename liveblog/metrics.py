"""Process-wide metrics in Prometheus' text format (GET /metrics), with no dependency.

Histograms are observed where the work happens (capture in capture/notes.py, commits in the
stores); gauges and counters that already exist elsewhere (hub deliveries, queue depth, health)
are read when /metrics is scraped (web/api.py). Each process has its own; Prometheus sums them.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

# Seconds. Capture and commit latencies are a few ms on a healthy machine; the tail buckets
# show a stalled disk or database.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Histogram:
    def __init__(self, name: str, help: str, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.name = name
        self.help = help
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0
        self._lock = threading.Lock()  # the SQLite writer observes from its thread

    def observe(self, value: float) -> None:
        with self._lock:
            self.counts[bisect.bisect_left(self.buckets, value)] += 1
            self.sum += value
            self.count += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, n in zip(self.buckets, self.counts, strict=False):
            running += n
            lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {running}')
        lines.append(f'{self.name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{self.name}_sum {self.sum:.6f}")
        lines.append(f"{self.name}_count {self.count}")
        return lines


CAPTURE_SECONDS = Histogram(
    "liveblog_capture_seconds", "From a capture message received to its acknowledgement (committed)."
)
COMMIT_SECONDS = Histogram(
    "liveblog_commit_seconds", "From a write queued to its transaction committed (group commit included)."
)
GC_FULL_PASS_SECONDS = Histogram(
    "liveblog_gc_full_pass_seconds",
    "The periodic full collection of `liveblog serve` (start-up frozen, so it walks only what came after).",
)
HISTOGRAMS = (CAPTURE_SECONDS, COMMIT_SECONDS, GC_FULL_PASS_SECONDS)


def sample(name: str, help: str, kind: str, values: dict[str, float] | float) -> list[str]:
    """One metric family: a single value, or {label text: value} with labels like 'role="viewer"'."""
    lines = [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]
    if isinstance(values, dict):
        lines.extend(f"{name}{{{labels}}} {value:g}" for labels, value in values.items())
    else:
        lines.append(f"{name} {values:g}")
    return lines


class Counter:
    """A counter by one label's value (a reason, a kind), rendered with `sample`."""

    def __init__(self, name: str, help: str, label: str) -> None:
        self.name = name
        self.help = help
        self.label = label
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()  # synchronous clients count from worker threads

    def add(self, value: str) -> None:
        with self._lock:
            self.counts[value] = self.counts.get(value, 0) + 1

    def render(self) -> list[str]:
        values: dict[str, float] = {f'{self.label}="{k}"': v for k, v in sorted(self.counts.items())}
        return sample(self.name, self.help, "counter", values)


OUTBOUND_REFUSED = Counter(
    "liveblog_outbound_refused_total",
    "Fetches of feeds, media and avatars refused (a private or loopback address, a scheme, too many redirects).",
    "reason",
)
COUNTERS = (OUTBOUND_REFUSED,)

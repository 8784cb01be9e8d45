"""Loaded by Python at start-up when this directory is on PYTHONPATH (bench/soak.py --probe):
SIGUSR1 writes a tracemalloc snapshot of the server process to $LIVEBLOG_TRACEMALLOC_DIR.
Start the process with PYTHONTRACEMALLOC=1 so that allocations are traced from the start."""

import gc
import os
import signal
import time
import tracemalloc


def _dump(signum, frame):  # type: ignore[no-untyped-def]
    if not tracemalloc.is_tracing():
        return
    gc.collect()
    path = os.path.join(
        os.environ.get("LIVEBLOG_TRACEMALLOC_DIR", "."), f"snapshot-{time.monotonic():.0f}.pickle"
    )
    tracemalloc.take_snapshot().dump(path)


if os.environ.get("LIVEBLOG_TRACEMALLOC_DIR"):
    signal.signal(signal.SIGUSR1, _dump)

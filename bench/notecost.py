"""What one note costs the server, with nobody watching: CPU per note, per thread.

    .venv/bin/python -m bench.notecost                  # 200 notes at 10/s (the fan-out's pace)
    .venv/bin/python -m bench.notecost --rounds 2 --liveblog-src /tmp/main-copy
    .venv/bin/python -m bench.notecost --address-known  # the server knows its fediverse address

A real `liveblog serve` on SQLite (bench/servers.py, synchronous=FULL) and one note-taker on the
capture websocket posting bench.live's 300-byte note at a steady pace, each after the last one's
ack: the cost of a note from its message arriving to its ack, its change written to the
note-taker's own socket (the stream it subscribes to), and nothing per viewer. CPU time is read
per thread from /proc/<pid>/task/<tid>/schedstat (nanoseconds on a CPU; utime and stime are
sampled at the clock tick and split them badly at this scale), minus the idle rate measured just
before. With --liveblog-src, rounds alternate between that copy of the package and this one.
With --address-known, a fediverse request first teaches the server its own address, as
server.public_url would (the fediverse publisher can publish from then on; nobody follows).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.live import NoteTaker, percentile
from bench.servers import REPO, liveblog_server


def thread_cpu(pid: int) -> dict[int, float]:
    """Seconds on a CPU so far, per thread of a process."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                out[int(tid)] = int(fh.read().split()[0]) / 1e9
        except OSError:  # the thread ended meanwhile
            continue
    return out


async def measure(notes: int, rate: float, src: str | None, address_known: bool = False) -> str:
    os.environ["LIVEBLOG_BENCH_SRC"] = src or str(REPO)  # not the installed package
    with tempfile.TemporaryDirectory() as tmp, liveblog_server(Path(tmp)) as server:
        if address_known:
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"http://127.0.0.1:{server.port}/.well-known/nodeinfo")
                answer.raise_for_status()
        taker = await NoteTaker(server).connect()
        for _ in range(20):  # warm the note path first
            taker.send_note()
            await taker.wait_acks(taker.sent)
        await asyncio.sleep(0.5)
        before, t0 = sum(thread_cpu(server.pid).values()), time.monotonic()
        await asyncio.sleep(2)
        idle = (sum(thread_cpu(server.pid).values()) - before) / (time.monotonic() - t0)
        loop = asyncio.get_running_loop()
        cpu0, t0 = thread_cpu(server.pid), time.monotonic()
        start, acks = loop.time(), []
        for i in range(notes):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.monotonic()
            taker.send_note()
            await taker.wait_acks(taker.sent)
            acks.append((time.monotonic() - sent) * 1e3)
        cpu1, wall = thread_cpu(server.pid), time.monotonic() - t0
        taker.close()
    per = {tid: (cpu1[tid] - cpu0.get(tid, 0.0)) / notes * 1e6 for tid in cpu1}
    total = sum(per.values()) - idle * wall / notes * 1e6
    loop_thread = per.get(server.pid, 0.0)
    others = sorted((v for tid, v in per.items() if tid != server.pid), reverse=True)
    return (
        f"{src or REPO}: {total:,.0f} us of CPU per note ({loop_thread:,.0f} event loop, "
        f"{others[0] if others else 0:,.0f} writer thread, {sum(others[1:]):,.0f} other threads; "
        f"idle {idle * 100:.1f}% of a core subtracted); ack p50 {percentile(acks, 50):.1f} ms, "
        f"p90 {percentile(acks, 90):.1f} ms; load average {os.getloadavg()[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.notecost", description=__doc__.split("\n\n")[0])
    p.add_argument("--notes", type=int, default=200, help="notes measured (default 200)")
    p.add_argument("--rate", type=float, default=10.0, help="notes per second (default 10)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--liveblog-src", help="another copy of the liveblog package, measured alternately")
    p.add_argument(
        "--address-known", action="store_true", help="teach the server its fediverse address first"
    )
    args = p.parse_args(argv)
    sources = [args.liveblog_src, None] if args.liveblog_src else [None]
    for _ in range(args.rounds):
        for src in sources:
            print(asyncio.run(measure(args.notes, args.rate, src, args.address_known)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

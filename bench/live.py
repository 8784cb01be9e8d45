"""Liveblog's live-stream benchmark (issue 2): one command, one table, each number beside a
baseline measured in the same run.

    .venv/bin/python -m bench.live            # full run, about 4-5 minutes on 2 cores
    .venv/bin/python -m bench.live --quick    # smoke run, under a minute

Measures (details in docs/performance.md):
1. fan-out: delivery latency p50/p99 until the last viewer has the note, and server CPU per
   delivery, for 1,000 and 5,000 viewers of one session at 10 notes/s;
2. server memory per idle viewer;
3. acknowledged notes per second over the capture websocket (1, 4, 16 pipelining sockets);
4. a reconnect storm (issue 22): every viewer is cut at once while notes go on at 10/s and
   reconnects within about a second, each with its `since`; the time until the last viewer is
   back and caught up, the notes' latency meanwhile, CPU and memory peak, and a check that no
   viewer was refused, missed a change or got one twice.
Two baselines that store nothing, driven by the same load generator in the same run: a bare
`websockets` broadcast server (bench/baseline_server.py) and a bare Node.js `ws` server
(bench/node/server.js); for capture also raw sqlite3 INSERT+COMMIT (synchronous=FULL); for
fan-out also the kernel floor, a raw `send` of the same frame to each viewer (bench/floor_server.py).
The table is printed and written to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import wsraw
from bench.loadgen import Pool
from bench.servers import (
    REPO,
    Server,
    baseline_server,
    cpu_seconds,
    floor_server,
    liveblog_server,
    machine_busy_seconds,
    node_server,
    node_version,
    raise_fd_limit,
)

HOST = "127.0.0.1"
NOTE_BYTES = 300  # the note body typed by the note-taker
RESULTS = REPO / "bench" / "results"
KINDS = ["baseline", "node", "liveblog"]  # every scenario runs all three, one after another
# Fan-out also measures the kernel floor (bench/floor_server.py): the same bytes to the same
# sockets with one raw `send` each from a plain loop, nothing else.
FLOOR = "floor"
FANOUT_FLOOR = True


@dataclass
class Profile:
    viewers: tuple[int, ...]
    rate: float  # notes per second during fan-out
    warmup: float  # seconds of notes before the measured window
    window: float  # seconds of notes measured
    capture_sockets: tuple[int, ...]
    capture_window: float
    capture_pipeline: int  # notes in flight per capture socket
    workers: int
    quiet_wait: float  # seconds to wait, before each scenario, for other processes to calm down
    storm_viewers: int = 5000  # viewers cut and reconnecting in the storm
    storm_spread: float = 1.0  # seconds over which they reconnect


FULL = Profile((1000, 5000), 10.0, 2.0, 15.0, (1, 4, 16), 4.0, 64, 2, 15.0)
QUICK = Profile((1000, 5000), 10.0, 1.0, 3.0, (1, 16), 1.0, 64, 2, 0.0, storm_viewers=2000)


def note_body(sent_ns: int) -> str:
    head = f"bench t={sent_ns} "
    return head + "x" * max(0, NOTE_BYTES - len(head))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# -- the note-taker -------------------------------------------------------------------------------


class NoteTaker:
    """One capture socket (raw client) that sends note.create messages and counts acks."""

    def __init__(self, server: Server, token_index: int = 0, name: str = "n0") -> None:
        self.server = server
        self.token = server.tokens[token_index % len(server.tokens)]
        self.name = name
        self.ws: wsraw.RawWebSocket | None = None
        self.hello = asyncio.get_running_loop().create_future()
        self.acks = 0
        self.errors: list[bytes] = []
        self.sent = 0
        self.on_ack: Callable[[], None] | None = None
        self.ack_waiters: list[tuple[int, asyncio.Future[None]]] = []

    def _on_message(self, ws: wsraw.RawWebSocket, data: bytes, now: int) -> None:
        if data.startswith(b'{"type":"ack"'):
            self.acks += 1
            if self.on_ack is not None:
                self.on_ack()
            for want, fut in self.ack_waiters:
                if self.acks >= want and not fut.done():
                    fut.set_result(None)
        elif data.startswith(b'{"type":"hello"'):
            if not self.hello.done():
                self.hello.set_result(None)
        elif data.startswith(b'{"type":"error"'):
            self.errors.append(data[:300])

    async def connect(self) -> NoteTaker:
        self.ws = await wsraw.connect(
            HOST,
            self.server.port,
            self.server.capture_path(),
            self._on_message,
            ["liveblog.v1", "liveblog.token." + self.token],
        )
        await asyncio.wait_for(self.hello, 10)
        return self

    def send_note(self, body: str | None = None) -> int:
        assert self.ws is not None
        sent_ns = time.monotonic_ns()
        self.sent += 1
        message = {
            "type": "note.create",
            "client_id": f"{self.name}-{self.sent}",
            "body": body or note_body(sent_ns),
        }
        self.ws.send_text(json.dumps(message, separators=(",", ":")))
        return sent_ns

    async def wait_acks(self, count: int, timeout: float = 10) -> None:
        if self.acks >= count:
            return
        fut = asyncio.get_running_loop().create_future()
        self.ack_waiters.append((count, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self.ack_waiters.remove((count, fut))

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


# -- 1 and 2: fan-out latency, CPU per delivery, memory per idle viewer ---------------------------


@dataclass
class Fanout:
    kind: str
    viewers: int
    connected: int = 0
    connect_seconds: float = 0.0
    mem_per_viewer: float = 0.0  # bytes
    notes: int = 0
    complete: int = 0  # notes every viewer received
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    us_per_delivery: float = float("nan")
    frame_bytes: float = 0.0
    client_cpu_seconds: float = 0.0
    closed: int = 0
    close_codes: dict[Any, int] = field(default_factory=dict)
    acks: int = 0
    other_cores: float = 0.0  # CPU used by processes outside the benchmark during the window
    series: list[float] = field(
        default_factory=list
    )  # per note: latency of the fastest worker's last viewer, ms


async def run_fanout(
    server: Server, pool: Pool, viewers: int, profile: Profile, log: Callable[[str], None]
) -> Fanout:
    result = Fanout(server.kind, viewers)
    taker = await NoteTaker(server).connect()
    # Warm the note path (rendering, storage, encoding) before any measurement.
    for _ in range(5):
        taker.send_note()
    await taker.wait_acks(5)
    await asyncio.sleep(0.5)
    rss_before = server.rss()

    replies = await asyncio.to_thread(pool.connect, HOST, server.port, server.viewer_path(), viewers)
    result.connected = sum(r["connected"] for r in replies)
    result.connect_seconds = max(r["seconds"] for r in replies)
    failed = sum(r["failed"] for r in replies)
    if failed:
        log(f"    {failed} viewers failed to connect: {replies[0]['failures'] or replies[-1]['failures']}")
    await asyncio.sleep(1.0)  # let the server finish its per-connection work before reading RSS
    server.check_alive()
    result.mem_per_viewer = (server.rss() - rss_before) / max(1, result.connected)
    log(f"    {result.connected} viewers connected in {result.connect_seconds:.1f}s")

    loop = asyncio.get_running_loop()
    interval = 1.0 / profile.rate

    async def paced(seconds: float) -> list[int]:
        sent: list[int] = []
        start = loop.time()
        count = round(seconds * profile.rate)
        for i in range(count):
            delay = start + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append(taker.send_note())
        return sent

    await paced(profile.warmup)
    await asyncio.to_thread(pool.all, "reset")
    acks_before = taker.acks
    client_cpu0 = sum(r["cpu"] for r in await asyncio.to_thread(pool.all, "cpu"))
    cpu0, wall0 = server.cpu(), time.monotonic()
    machine0, me0 = machine_busy_seconds(), cpu_seconds(os.getpid())
    sent = await paced(profile.window)

    # Wait until every viewer has the last note (or give up after a few seconds).
    deadline = time.monotonic() + 10
    expected = result.connected
    while True:
        collected = await asyncio.to_thread(pool.all, "collect")
        last = sent[-1]
        got = sum(c["notes"].get(last, (0, 0))[1] for c in collected)
        if got >= expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    cpu1, wall1 = server.cpu(), time.monotonic()
    machine1, me1 = machine_busy_seconds(), cpu_seconds(os.getpid())
    result.client_cpu_seconds = sum(c["cpu"] for c in collected) - client_cpu0
    ours = (cpu1 - cpu0) + result.client_cpu_seconds + (me1 - me0)
    result.other_cores = max(0.0, (machine1 - machine0) - ours) / (wall1 - wall0)
    result.acks = taker.acks - acks_before

    latencies = []
    for t in sent:
        arrivals = [c["notes"][t] for c in collected if t in c["notes"]]
        count = sum(a[1] for a in arrivals)
        if count >= expected:
            result.complete += 1
            latencies.append((max(a[0] for a in arrivals) - t) / 1e6)
        if arrivals:
            result.series.append((min(a[0] for a in arrivals) - t) / 1e6)
    result.notes = len(sent)
    result.p50_ms = percentile(latencies, 50)
    result.p99_ms = percentile(latencies, 99)
    result.max_ms = max(latencies) if latencies else float("nan")
    result.cpu_seconds = cpu1 - cpu0
    result.wall_seconds = wall1 - wall0
    result.us_per_delivery = result.cpu_seconds * 1e6 / max(1, result.notes * result.connected)
    frames = sum(c["frames"] for c in collected)
    result.frame_bytes = sum(c["bytes"] for c in collected) / max(1, frames)
    result.closed = sum(c["closed"] for c in collected)
    for c in collected:
        for code, n in c["close_codes"].items():
            result.close_codes[code] = result.close_codes.get(code, 0) + n

    taker.close()
    await asyncio.to_thread(pool.all, "drop")
    return result


async def wait_quiet(max_wait: float, log: Callable[[str], None], threshold: float = 0.25) -> float:
    """Wait (up to max_wait s) until other processes use less than `threshold` of a core.

    The machine may be shared (test suites, browsers): their CPU would delay our processes and
    inflate latencies. Returns the load last seen, in cores.
    """
    if max_wait <= 0:
        return float("nan")
    deadline = time.monotonic() + max_wait
    warned = False
    while True:
        m0, t0 = machine_busy_seconds(), time.monotonic()
        await asyncio.sleep(1.0)
        load = (machine_busy_seconds() - m0) / (time.monotonic() - t0)
        if load < threshold or time.monotonic() >= deadline:
            if warned or load >= threshold:
                log(
                    f"    other processes use {load:.2f} cores{'' if load < threshold else ' (going ahead anyway)'}"
                )
            return load
        if not warned:
            log(f"    machine busy: other processes use {load:.2f} cores; waiting up to {max_wait:.0f}s")
            warned = True


# -- 3: acknowledged notes per second ----------------------------------------------------------


@dataclass
class Capture:
    rate: float  # acks per second
    errors: int
    server_busy: float  # server CPU seconds per second (1.0 = one core saturated)
    us_per_note: float  # server CPU per acknowledged note


async def capture_rate(server: Server, sockets: int, profile: Profile) -> Capture:
    """Acks per second with `sockets` note-takers each keeping `capture_pipeline` notes in flight."""
    takers = [NoteTaker(server, i, f"s{sockets}-{i}") for i in range(sockets)]
    await asyncio.gather(*(t.connect() for t in takers))
    running = True
    body = "A pipelined note from the capture benchmark. " * 7  # ~300 bytes

    for taker in takers:

        def refill(t: NoteTaker = taker) -> None:
            if running:
                t.send_note(body)

        taker.on_ack = refill
        for _ in range(profile.capture_pipeline):
            taker.send_note(body)
    await asyncio.sleep(1.0)  # warm-up
    acks0, t0, cpu0 = sum(t.acks for t in takers), time.monotonic(), server.cpu()
    await asyncio.sleep(profile.capture_window)
    acks1, t1, cpu1 = sum(t.acks for t in takers), time.monotonic(), server.cpu()
    running = False
    with contextlib.suppress(TimeoutError):
        await asyncio.gather(*(t.wait_acks(t.sent, 15) for t in takers))
    errors = sum(len(t.errors) for t in takers)
    for t in takers:
        t.close()
    server.check_alive()
    return Capture(
        (acks1 - acks0) / (t1 - t0),
        errors,
        (cpu1 - cpu0) / (t1 - t0),
        (cpu1 - cpu0) * 1e6 / max(1, acks1 - acks0),
    )


def sqlite_rate(path: Path, seconds: float) -> float:
    """The cost of durability alone: one INSERT + COMMIT per note, WAL, synchronous=FULL, one thread."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(path) + suffix)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, session_id TEXT, client_id TEXT UNIQUE, body TEXT, html TEXT)"
    )
    body = "A pipelined note from the capture benchmark. " * 7
    n = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO items (session_id, client_id, body, html) VALUES (?, ?, ?, ?)",
            ("s", f"c{n}", body, body),
        )
        conn.execute("COMMIT")
        n += 1
    elapsed = time.monotonic() - start
    conn.close()
    return n / elapsed


# -- 4: the reconnect storm --------------------------------------------------------------------


@dataclass
class Storm:
    kind: str
    viewers: int
    connected: int = 0
    dropped: int = 0
    caught: int = 0  # viewers back and caught up
    refused: int = 0  # reconnects that failed (refused, reset, or not a 101)
    refusals: list[str] = field(default_factory=list)
    last_open_s: float = float("nan")  # from the cut to the last viewer's completed handshake
    last_caught_s: float = float("nan")  # ... to the last viewer caught up (synced, or hello)
    notes: int = 0  # notes sent during the storm (from the cut until everyone was back, + 1 s)
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    took_p50_ms: float = float("nan")  # one viewer's time from its reconnect to caught up
    took_p99_ms: float = float("nan")
    replayed: int = 0  # notes viewers received while catching up
    gaps: int = 0  # changes viewers never received
    dups: int = 0  # changes viewers received twice
    behind: int = 0  # viewers whose last seq is not the stream's last, at the end
    cpu_seconds: float = 0.0  # server CPU from the cut to the last viewer caught up
    peak_cores: float = 0.0  # server CPU, the busiest 0.25 s, in cores
    rss_before: int = 0
    rss_peak: int = 0
    other_cores: float = 0.0


async def run_storm(server: Server, pool: Pool, profile: Profile, log: Callable[[str], None]) -> Storm:
    result = Storm(server.kind, profile.storm_viewers)
    resume = server.kind == "liveblog"  # the baselines simply reconnect: they cannot resume
    taker = await NoteTaker(server).connect()
    for _ in range(5):
        taker.send_note()
    await taker.wait_acks(5)
    replies = await asyncio.to_thread(pool.connect, HOST, server.port, server.viewer_path(), result.viewers)
    result.connected = sum(r["connected"] for r in replies)
    log(f"    {result.connected} viewers connected in {max(r['seconds'] for r in replies):.1f}s")

    loop = asyncio.get_running_loop()
    sent: list[int] = []
    sending = True

    async def notes() -> None:
        start, i = loop.time(), 0
        while sending:
            delay = start + i / profile.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append(taker.send_note())
            i += 1

    sender = asyncio.create_task(notes())
    await asyncio.sleep(2.0)  # everyone live and caught up, notes flowing
    await asyncio.to_thread(pool.all, "reset")
    result.rss_before = result.rss_peak = server.rss()
    samples: list[tuple[float, float]] = []
    sampling = True

    async def sample() -> None:
        while sampling:
            samples.append((time.monotonic(), server.cpu()))
            result.rss_peak = max(result.rss_peak, server.rss())
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    cpu0, machine0, me0 = server.cpu(), machine_busy_seconds(), cpu_seconds(os.getpid())
    client0 = sum(r["cpu"] for r in await asyncio.to_thread(pool.all, "cpu"))
    wall0 = time.monotonic()
    cut = await asyncio.to_thread(pool.storm, server.viewer_path(), profile.storm_spread, resume)
    cut_ns = min(r["at"] for r in cut)
    result.dropped = sum(r["dropped"] for r in cut)
    deadline = time.monotonic() + 90
    while True:
        await asyncio.sleep(0.1)
        status = await asyncio.to_thread(pool.all, "storm_status")
        caught = sum(s["caught"] for s in status)
        failed = sum(s["failed"] for s in status)
        waiting = sum(s["waiting"] for s in status)
        if (not waiting and caught + failed >= result.dropped) or time.monotonic() > deadline:
            break
    cpu1, wall1 = server.cpu(), time.monotonic()
    machine1, me1 = machine_busy_seconds(), cpu_seconds(os.getpid())
    client1 = sum(r["cpu"] for r in await asyncio.to_thread(pool.all, "cpu"))
    ours = (cpu1 - cpu0) + (client1 - client0) + (me1 - me0)
    result.other_cores = max(0.0, (machine1 - machine0) - ours) / (wall1 - wall0)
    result.cpu_seconds = cpu1 - cpu0
    result.caught = caught
    result.refused = failed
    result.refusals = [f for s in status for f in s["failures"]][:5]
    if caught:
        result.last_caught_s = (max(s["last_caught"] for s in status) - cut_ns) / 1e9
        result.last_open_s = (max(s["last_opened"] for s in status) - cut_ns) / 1e9
    storm_end_ns = cut_ns + int((max(result.last_caught_s, 0.0) + 1.0) * 1e9)
    await asyncio.sleep(max(0.0, (storm_end_ns - time.monotonic_ns()) / 1e9))
    sending = False
    await sender
    sampling = False
    await sampler
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        result.peak_cores = max(result.peak_cores, (c1 - c0) / (t1 - t0))
    with contextlib.suppress(TimeoutError):  # counted below: notes not delivered to every viewer
        await taker.wait_acks(taker.sent, 60)
    # Every viewer has the last note (or a few seconds pass).
    deadline = time.monotonic() + 10
    while True:
        collected = await asyncio.to_thread(pool.all, "collect")
        got = sum(c["notes"].get(sent[-1], (0, 0))[1] for c in collected)
        if got >= result.caught or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    status = await asyncio.to_thread(pool.all, "storm_status")
    result.gaps = sum(s["gaps"] for s in status)
    result.dups = sum(s["dups"] for s in status)
    result.replayed = sum(s["replayed"] for s in status)
    took = [ms for s in status for ms in s["took_ms"]]
    result.took_p50_ms, result.took_p99_ms = percentile(took, 50), percentile(took, 99)
    last_seq = max(seq for s in status for seq in s["seqs"])
    result.behind = sum(n for s in status for seq, n in s["seqs"].items() if seq != last_seq)
    storm_notes = [t for t in sent if cut_ns <= t <= storm_end_ns]
    latencies = []
    for t in storm_notes:
        arrivals = [c["notes"][t] for c in collected if t in c["notes"]]
        if arrivals:
            latencies.append((max(a[0] for a in arrivals) - t) / 1e6)
    result.notes = len(storm_notes)
    result.p50_ms = percentile(latencies, 50)
    result.p99_ms = percentile(latencies, 99)
    taker.close()
    await asyncio.to_thread(pool.all, "drop")
    return result


# -- the table -------------------------------------------------------------------------------------


def mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "–"


def render_storm(storms: dict[str, Storm], profile: Profile) -> list[str]:
    lb, nd = storms.get("liveblog"), storms.get("node")
    if lb is None:
        return []
    bl = storms.get("baseline") or Storm("none", 0)
    nd = nd or Storm("none", 0)
    lines = [
        "",
        f"Reconnect storm: {lb.viewers:,} viewers cut at once (TCP reset) while notes go on at {profile.rate:g}/s; "
        f"each reconnects at a random moment within {profile.storm_spread:g} s, Liveblog's with `?since=` its last "
        "seq (the baselines cannot resume: they simply reconnect and miss what was sent meanwhile).",
        "",
        "| Measure | Liveblog | websockets | Node ws | Target | Result |",
        "|---|---:|---:|---:|---|:--:|",
    ]
    add = lines.append
    add(
        f"| From the cut to the last viewer connected (s) | {lb.last_open_s:.2f} | {bl.last_open_s:.2f} | "
        f"{nd.last_open_s:.2f} | | |"
    )
    add(
        f"| From the cut to the last viewer caught up (s) | {lb.last_caught_s:.2f} | {bl.last_caught_s:.2f} | "
        f"{nd.last_caught_s:.2f} | Liveblog caught up ≤ Node connected | {mark(lb.last_caught_s <= nd.last_open_s)} |"
    )
    add(
        f"| One viewer, from its reconnect to caught up, p50 / p99 (ms) | {lb.took_p50_ms:.0f} / {lb.took_p99_ms:.0f} | "
        f"{bl.took_p50_ms:.0f} / {bl.took_p99_ms:.0f} | {nd.took_p50_ms:.0f} / {nd.took_p99_ms:.0f} | | |"
    )
    add(
        f"| Notes during the storm, p50 / p99 to the last live viewer (ms) | {lb.p50_ms:.0f} / {lb.p99_ms:.0f} | "
        f"{bl.p50_ms:.0f} / {bl.p99_ms:.0f} | {nd.p50_ms:.0f} / {nd.p99_ms:.0f} | | |"
    )
    add(
        f"| Server CPU from the cut to the last caught up (s); busiest 0.25 s (cores) | "
        f"{lb.cpu_seconds:.2f}; {lb.peak_cores:.2f} | {bl.cpu_seconds:.2f}; {bl.peak_cores:.2f} | "
        f"{nd.cpu_seconds:.2f}; {nd.peak_cores:.2f} | | |"
    )
    mib = 1 << 20
    add(
        f"| Server RSS before → peak (MiB) | {lb.rss_before / mib:.0f} → {lb.rss_peak / mib:.0f} | "
        f"{bl.rss_before / mib:.0f} → {bl.rss_peak / mib:.0f} | {nd.rss_before / mib:.0f} → {nd.rss_peak / mib:.0f} | | |"
    )
    ok = lb.refused == 0 and lb.caught == lb.dropped
    add(
        f"| Viewers back / cut (refused) | {lb.caught:,} / {lb.dropped:,} ({lb.refused}) | "
        f"{bl.caught:,} / {bl.dropped:,} ({bl.refused}) | {nd.caught:,} / {nd.dropped:,} ({nd.refused}) | "
        f"none refused | {mark(ok)} |"
    )
    ok = lb.gaps == 0 and lb.dups == 0 and lb.behind == 0
    add(
        f"| Changes missed / received twice / viewers not at the last seq | {lb.gaps} / {lb.dups} / {lb.behind} | "
        f"{bl.gaps} / {bl.dups} / {bl.behind} | {nd.gaps} / {nd.dups} / {nd.behind} | 0 / 0 / 0 (Liveblog) | {mark(ok)} |"
    )
    add(f"| Notes replayed to reconnecting viewers | {lb.replayed:,} | – | – | | |")
    others = ", ".join(f"{s.kind} {100 * s.other_cores:.0f}%" for s in storms.values())
    add("")
    add(f"CPU used by other processes on the machine during each storm (of one core): {others}.")
    if lb.refusals or bl.refusals or nd.refusals:
        add(f"Refusals seen: {[*lb.refusals, *bl.refusals, *nd.refusals][:5]}")
    return lines


def render(
    fanouts: dict[tuple[str, int], Fanout],
    capture: dict[tuple[str, int], Capture],
    sqlite_nps: float,
    capture_errors: int,
    profile: Profile,
    quick: bool,
    started: float,
    loop: str,
    storms: dict[str, Storm] | None = None,
) -> str:
    lines: list[str] = []
    add = lines.append
    add(f"# Liveblog benchmark ({'quick' if quick else 'full'} run)")
    add("")
    add(
        f"{time.strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"{platform.machine()} · Liveblog on the {loop} event loop · {node_version()} · "
        f"{profile.workers} load-generator processes on the same machine · "
        f"{profile.rate:g} notes/s, {profile.window:g} s measured after {profile.warmup:g} s warm-up · "
        f"run took {time.monotonic() - started:.0f} s"
    )
    if not fanouts and not capture:
        lines.extend(render_storm(storms or {}, profile))
        return "\n".join(lines) + "\n"
    add("")
    add(
        "| Measure | Liveblog | websockets | Node ws | Raw send (floor) | Liveblog / websockets | Liveblog / Node ws "
        "| Target | Result |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---|:--:|")
    nan = Fanout("none", 0)
    for n in profile.viewers:
        lb = fanouts.get(("liveblog", n))
        if lb is None:
            continue
        bl, nd = fanouts.get(("baseline", n), nan), fanouts.get(("node", n), nan)
        fl = fanouts.get((FLOOR, n), nan)
        if n >= 5000:
            target = "p50 and p99 ≤ Node ws"
            ok = lb.p50_ms <= nd.p50_ms and lb.p99_ms <= nd.p99_ms and lb.complete == lb.notes
        else:
            target, ok = "(target is at 5,000)", lb.complete == lb.notes
        add(
            f"| Latency p50 / p99 to the last of {n:,} viewers (ms) | {lb.p50_ms:.1f} / {lb.p99_ms:.1f} | "
            f"{bl.p50_ms:.1f} / {bl.p99_ms:.1f} | {nd.p50_ms:.1f} / {nd.p99_ms:.1f} | {fl.p50_ms:.1f} / {fl.p99_ms:.1f} | "
            f"{_ratio(lb.p99_ms, bl.p99_ms)} (p99) | {_ratio(lb.p99_ms, nd.p99_ms)} (p99) | {target} | "
            f"{mark(ok) if n >= 5000 else ('ok' if ok else 'FAIL')} |"
        )
    for n in profile.viewers:
        lb = fanouts.get(("liveblog", n))
        if lb is None:
            continue
        bl, nd = fanouts.get(("baseline", n), nan), fanouts.get(("node", n), nan)
        fl = fanouts.get((FLOOR, n), nan)
        add(
            f"| Server CPU per delivery, {n:,} viewers (µs) | {lb.us_per_delivery:.2f} | {bl.us_per_delivery:.2f} | "
            f"{nd.us_per_delivery:.2f} | {fl.us_per_delivery:.2f} | {_ratio(lb.us_per_delivery, bl.us_per_delivery)} | "
            f"{_ratio(lb.us_per_delivery, nd.us_per_delivery)} | ≤ 0.8× Node ws | "
            f"{mark(lb.us_per_delivery <= 0.8 * nd.us_per_delivery)} |"
        )
    for n in profile.viewers:
        lb = fanouts.get(("liveblog", n))
        if lb is None:
            continue
        bl, nd = fanouts.get(("baseline", n), nan), fanouts.get(("node", n), nan)
        kib, bkib, nkib = lb.mem_per_viewer / 1024, bl.mem_per_viewer / 1024, nd.mem_per_viewer / 1024
        fkib = fanouts.get((FLOOR, n), nan).mem_per_viewer / 1024
        add(
            f"| Server memory per idle viewer, {n:,} viewers (KiB) | {kib:.1f} | {bkib:.1f} | {nkib:.1f} | {fkib:.1f} | "
            f"{_ratio(kib, bkib)} | {_ratio(kib, nkib)} | ≤ 10 KiB | {mark(kib <= 10)} |"
        )
    for k in profile.capture_sockets:
        lbc = capture.get(("liveblog", k))
        if lbc is None:
            continue
        blc = capture.get(("baseline", k)) or Capture(float("nan"), 0, 0.0, float("nan"))
        ndc = capture.get(("node", k)) or Capture(float("nan"), 0, 0.0, float("nan"))
        add(
            f"| Acknowledged notes/s, {k} capture socket{'s' if k > 1 else ''} × {profile.capture_pipeline} in flight "
            f"(server CPU per note, µs) | {lbc.rate:,.0f} ({lbc.us_per_note:.0f}) | {blc.rate:,.0f} ({blc.us_per_note:.0f}) | "
            f"{ndc.rate:,.0f} ({ndc.us_per_note:.0f}) | – | {_ratio(lbc.rate, blc.rate)} | {_ratio(lbc.rate, ndc.rate)} | "
            f"≥ 1,000 durable | {mark(lbc.rate >= 1000)} |"
        )
    add(
        f"| Durability alone: sqlite3 INSERT+COMMIT per note, WAL, synchronous=FULL, 1 thread (notes/s) | – | "
        f"{sqlite_nps:,.0f} | – | – | – | – | (reference) | |"
    )
    add("")
    add("Fan-out details (server = the process under test; client = all load-generator processes):")
    add("")
    add(
        "| Server | Viewers | Connected in | Notes (all delivered) | Frame bytes | Server CPU | Client CPU "
        "| Other processes | Max latency | Viewers closed |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (kind, n), f in sorted(fanouts.items()):
        add(
            f"| {kind} | {n:,} | {f.connect_seconds:.1f} s | {f.notes} ({f.complete}) | {f.frame_bytes:.0f} | "
            f"{100 * f.cpu_seconds / f.wall_seconds:.0f}% of a core | {100 * f.client_cpu_seconds / f.wall_seconds:.0f}% | "
            f"{100 * f.other_cores:.0f}% | "
            f"{f.max_ms:.1f} ms | {f.closed}{' ' + str(f.close_codes) if f.close_codes else ''} |"
        )
    add("")
    add(
        "Baselines, storing nothing, driven by the same load generator: `websockets` = bare asyncio server calling "
        "`websockets.broadcast()` (bench/baseline_server.py); Node ws = bare Node.js `ws` server sending to each "
        "client (bench/node/server.js); raw send (floor) = one `socket.send` of the same frame to each viewer from a "
        "plain epoll loop, nothing else (bench/floor_server.py). Capture baselines ack without storing. "
        f"Capture errors received: {capture_errors}."
    )
    lines.extend(render_storm(storms or {}, profile))
    return "\n".join(lines) + "\n"


# -- main --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def server_for(kind: str, workdir: Path, note_takers: int = 1) -> Iterator[Server]:
    if kind == "liveblog":
        with liveblog_server(workdir / "liveblog", note_takers=note_takers) as server:
            yield server
    elif kind == "node":
        with node_server(workdir / "node") as server:
            yield server
    elif kind == FLOOR:
        with floor_server(workdir / "floor") as server:
            yield server
    else:
        with baseline_server(workdir / "baseline") as server:
            yield server


async def main_async(profile: Profile, quick: bool, only: str | None) -> str:
    started = time.monotonic()

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    fanouts: dict[tuple[str, int], Fanout] = {}
    capture: dict[tuple[str, int], Capture] = {}
    storms: dict[str, Storm] = {}
    capture_errors = 0
    sqlite_nps = float("nan")
    pool = Pool(profile.workers)
    try:
        with tempfile.TemporaryDirectory(prefix="liveblog-bench-", dir=RESULTS) as tmp:
            workdir = Path(tmp)
            if only in (None, "fanout"):
                for n in profile.viewers:
                    for kind in [*KINDS, FLOOR] if FANOUT_FLOOR else KINDS:
                        log(f"fan-out: {kind}, {n:,} viewers")
                        await wait_quiet(profile.quiet_wait, log)
                        with server_for(kind, workdir) as server:
                            f = await run_fanout(server, pool, n, profile, log)
                        fanouts[(kind, n)] = f
                        log(
                            f"    p50 {f.p50_ms:.1f} ms, p99 {f.p99_ms:.1f} ms, {f.us_per_delivery:.2f} µs/delivery, "
                            f"{f.mem_per_viewer / 1024:.1f} KiB/viewer, {f.complete}/{f.notes} notes complete"
                        )
            if only in (None, "capture"):
                for kind in KINDS:
                    await wait_quiet(profile.quiet_wait, log)
                    with server_for(kind, workdir, note_takers=max(profile.capture_sockets)) as server:
                        for k in profile.capture_sockets:
                            c = await capture_rate(server, k, profile)
                            capture[(kind, k)] = c
                            capture_errors += c.errors
                            log(
                                f"capture: {kind}, {k} sockets: {c.rate:,.0f} acks/s, server CPU {100 * c.server_busy:.0f}% "
                                f"of a core, {c.us_per_note:.0f} µs/note ({c.errors} errors)"
                            )
                sqlite_nps = sqlite_rate(workdir / "raw.sqlite3", profile.capture_window)
                log(f"capture: raw sqlite3 FULL: {sqlite_nps:,.0f} commits/s")
            if only in (None, "storm"):
                for kind in KINDS:
                    log(f"storm: {kind}, {profile.storm_viewers:,} viewers")
                    await wait_quiet(profile.quiet_wait, log)
                    with server_for(kind, workdir) as server:
                        st = await run_storm(server, pool, profile, log)
                        server.check_alive()
                    storms[kind] = st
                    log(
                        f"    last connected {st.last_open_s:.2f} s, last caught up {st.last_caught_s:.2f} s, "
                        f"each {st.took_p50_ms:.0f}/{st.took_p99_ms:.0f} ms, "
                        f"p99 {st.p99_ms:.0f} ms, {st.caught}/{st.dropped} back ({st.refused} refused), "
                        f"{st.gaps} missed, {st.dups} twice, {st.behind} behind, {st.replayed} replayed, "
                        f"CPU {st.cpu_seconds:.2f} s (peak {st.peak_cores:.2f}), "
                        f"RSS {st.rss_before >> 20} -> {st.rss_peak >> 20} MiB"
                    )
    finally:
        pool.close()
    return render(
        fanouts,
        capture,
        sqlite_nps,
        capture_errors,
        profile,
        quick,
        started,
        os.environ["LIVEBLOG_BENCH_LOOP"],
        storms,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short windows: a smoke run in under a minute")
    p.add_argument("--only", choices=["fanout", "capture", "storm"], help="run one part only")
    p.add_argument(
        "--storm-viewers", type=int, help="viewers in the reconnect storm (default 5000; 2000 quick)"
    )
    p.add_argument("--viewers", type=lambda s: tuple(int(x) for x in s.split(",")), help="e.g. 1000,5000")
    p.add_argument("--workers", type=int, help="load-generator processes (default 2)")
    p.add_argument("--window", type=float, help="measured seconds of notes per fan-out scenario")
    p.add_argument(
        "--rate", type=float, help="notes per second during fan-out (default 10; more to saturate a core)"
    )
    p.add_argument(
        "--liveblog-src",
        help="directory holding another copy of the liveblog package to serve (a prototype fix)",
    )
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio", help="Liveblog's event loop")
    p.add_argument(
        "--quiet-wait", type=float, help="seconds to wait for a quiet machine before each scenario"
    )
    p.add_argument(
        "--servers",
        help="servers to run, e.g. liveblog (for profiling: not a comparison); floor (the kernel floor) "
        "is fan-out only",
        default=",".join([*KINDS, FLOOR]),
    )
    args = p.parse_args(argv)
    global FANOUT_FLOOR
    kinds = args.servers.split(",")
    FANOUT_FLOOR = FLOOR in kinds
    KINDS[:] = [k for k in kinds if k != FLOOR]
    profile = QUICK if args.quick else FULL
    if args.viewers:
        profile.viewers = args.viewers
    if args.workers:
        profile.workers = args.workers
    if args.window:
        profile.window = args.window
    if args.rate:
        profile.rate = args.rate
    if args.storm_viewers:
        profile.storm_viewers = args.storm_viewers
    if args.quiet_wait is not None:
        profile.quiet_wait = args.quiet_wait
    if args.liveblog_src:
        os.environ["LIVEBLOG_BENCH_SRC"] = str(Path(args.liveblog_src).resolve())
    os.environ["LIVEBLOG_BENCH_LOOP"] = args.loop
    raise_fd_limit()
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = asyncio.run(main_async(profile, args.quick, args.only))
    print(table)
    (RESULTS / "latest.md").write_text(table)
    print(f"(written to {RESULTS / 'latest.md'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Soak: does the server's memory level off under steady use? (issue 8, "memory is flat")

    .venv/bin/python -m bench.soak --minutes 30         # prints the server's RSS over time
    .venv/bin/python -m bench.soak --quick              # the same for 3 minutes
    .venv/bin/python -m bench.soak --minutes 3 --in-process --tracemalloc
                                                        # + the top allocation growth by line
    .venv/bin/python -m bench.soak --minutes 12 --arenas  # + pymalloc's arenas and the collector
                                                        # in the server with each sample
    .venv/bin/python -m bench.soak --evict 500          # RSS before, at the peak and after 500
                                                        # stalled viewers are evicted

Note-takers post notes at a steady pace while viewers drop and resume from their last seq
(`?since=&epoch=`), the mix that once grew RSS by about 1 MiB a minute. By default the server
is `liveblog serve` in its own process (bench/servers.py) and RSS is its VmRSS. With
`--in-process` it runs inside this process instead (same uvicorn options), so that
`--tracemalloc` can compare snapshots of its Python allocations (the load's own allocations
are filtered out by file); RSS then includes the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import signal
import sys
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from bench import wsraw
from bench.servers import REPO, liveblog_server, raise_fd_limit, rss_bytes, seed

HOST = "127.0.0.1"


@dataclass
class Target:
    port: int
    session_id: str
    tokens: list[str]
    pid: int

    def viewer_path(self) -> str:
        return f"/ws/v1/sessions/{self.session_id}"

    def capture_path(self) -> str:
        return f"/ws/v1/sessions/{self.session_id}/capture"


class Viewer:
    """Keeps its last seq and the epoch, and resumes from them after each drop."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.ws: wsraw.RawWebSocket | None = None
        self.seq: int | None = None
        self.epoch: str | None = None
        self.reloads = 0
        self.gaps = 0
        self.busy = False  # offline or reconnecting

    def _on_message(self, ws: wsraw.RawWebSocket, data: bytes, now: int) -> None:
        if data.startswith(b'{"type":"change"'):
            seq = json.loads(data)["seq"]
            if self.seq is not None and seq != self.seq + 1:
                self.gaps += 1
            self.seq = seq
        elif data.startswith(b'{"type":"hello"'):
            hello = json.loads(data)
            self.epoch = hello["epoch"]
            if self.seq is None:
                self.seq = hello["since"]
        elif data.startswith(b'{"type":"reload"'):
            self.reloads += 1
            self.seq = None

    async def connect(self) -> None:
        path = self.target.viewer_path()
        if self.seq is not None and self.epoch:
            path += f"?since={self.seq}&epoch={self.epoch}"
        self.ws = await wsraw.connect(HOST, self.target.port, path, self._on_message, ["liveblog.v1"])

    def drop(self) -> None:
        if self.ws is not None:
            if random.random() < 0.5:
                self.ws.abort()  # a phone losing its network
            else:
                self.ws.close()  # a page closed
            self.ws = None


class NoteTaker:
    def __init__(self, target: Target, index: int) -> None:
        self.target = target
        self.token = target.tokens[index % len(target.tokens)]
        self.name = f"soak{index}"
        self.sent = 0
        self.acks = 0
        self.ws: wsraw.RawWebSocket | None = None

    def _on_message(self, ws: wsraw.RawWebSocket, data: bytes, now: int) -> None:
        if data.startswith(b'{"type":"ack"'):
            self.acks += 1

    async def connect(self) -> None:
        self.ws = await wsraw.connect(
            HOST,
            self.target.port,
            self.target.capture_path(),
            self._on_message,
            ["liveblog.v1", "liveblog.token." + self.token],
        )

    def post(self, text: str | None = None) -> None:
        assert self.ws is not None
        self.sent += 1
        body = f"Soak note {self.sent} from {self.name}. " + (text or "Steady words for a steady test. " * 8)
        message = {"type": "note.create", "client_id": f"{self.name}-{self.sent}", "body": body}
        self.ws.send_text(json.dumps(message, separators=(",", ":")))


def close_all(takers: list[NoteTaker]) -> None:
    for t in takers:
        if t.ws is not None:
            t.ws.close()


@contextlib.asynccontextmanager
async def in_process_server(workdir: Path, note_takers: int) -> AsyncIterator[Target]:
    import uvicorn

    from liveblog.settings import settings_from_dict
    from liveblog.web.app import create_app
    from liveblog.web.serving import uvicorn_options

    db_path = str(workdir / "soak.sqlite3")
    seeded = await asyncio.to_thread(seed, db_path, note_takers)
    settings = settings_from_dict({"database": {"path": db_path}}, env={"LIVEBLOG_SECRET_KEY": "bench"})
    from bench.servers import free_port

    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host=HOST,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
        **uvicorn_options(settings),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            await asyncio.sleep(0.05)
    try:
        yield Target(port, seeded.session_id, seeded.tokens, os.getpid())
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def server_process(workdir: Path, note_takers: int) -> AsyncIterator[Target]:
    with liveblog_server(workdir, note_takers=note_takers) as server:
        yield Target(server.port, server.session_id, server.tokens, server.pid)


PROBE = REPO / "bench" / "tracemalloc_probe"


def _load_probe() -> None:
    """Put the probe's sitecustomize first on the server's PYTHONPATH (inherited by the server
    process started after this)."""
    path = os.environ.get("PYTHONPATH")
    if str(PROBE) not in (path or "").split(os.pathsep):
        os.environ["PYTHONPATH"] = f"{PROBE}{os.pathsep}{path}" if path else str(PROBE)


def probe_environment(snapshots: Path) -> None:
    """Make the server process (started after this) trace allocations and dump a snapshot on
    SIGUSR1 (bench/tracemalloc_probe/sitecustomize.py)."""
    snapshots.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONTRACEMALLOC"] = "1"
    os.environ["LIVEBLOG_TRACEMALLOC_DIR"] = str(snapshots)
    _load_probe()


def arenas_environment(directory: Path) -> None:
    """Make the server process (started after this) write pymalloc's statistics on SIGUSR2."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["LIVEBLOG_MALLOCSTATS_DIR"] = str(directory)
    _load_probe()


@dataclass
class Arenas:
    """One `sys._debugmallocstats()` of the server: pymalloc's 1 MiB arenas and what is in them."""

    current: int  # arenas held now (each 1 MiB of address space, mostly resident)
    total: int  # arenas ever allocated (current + reclaimed)
    used: int  # bytes in allocated blocks (live small objects)
    free: int  # bytes in available blocks of used pools, and in unused pools
    by_size: dict[int, tuple[int, int, int]]  # block size -> (pools, blocks in use, avail blocks)
    full_collections: int  # the cyclic collector's passes over every generation so far
    tracked: int  # objects the collector tracks (gc.get_objects(), frozen ones not included)

    def line(self) -> str:
        return (
            f"{self.current:4d} {self.used / 2**20:6.1f} {self.free / 2**20:5.1f}"
            f"  {self.full_collections:3d} {self.tracked:7d}"
        )


def parse_mallocstats(text: str) -> Arenas:
    values: dict[str, int] = {}
    by_size: dict[int, tuple[int, int, int]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 5 and all(f.isdigit() for f in fields):
            _, size, pools, in_use, avail = map(int, fields)
            by_size[size] = (pools, in_use, avail)
        elif "=" in line:
            name, _, value = line.partition("=")
            value = value.strip().replace(",", "")
            if value.isdigit():
                values[" ".join(name.split())] = int(value)
    unused = next((v for k, v in values.items() if k.endswith("unused pools * 16384 bytes")), 0)
    return Arenas(
        current=values["# arenas allocated current"],
        total=values["# arenas allocated total"],
        used=values["# bytes in allocated blocks"],
        free=values["# bytes in available blocks"] + unused,
        by_size=by_size,
        full_collections=values.get("# gc generation 2 collections", 0),
        tracked=values.get("# gc objects tracked", 0),
    )


async def _signal_for_file(pid: int, sig: int, directory: Path, pattern: str, timeout: float) -> Path:
    """Send the server a probe's signal and wait for the new file it writes in `directory`."""
    before = set(directory.glob(pattern))
    os.kill(pid, sig)
    async with asyncio.timeout(timeout):
        while True:
            await asyncio.sleep(0.1)
            new = set(directory.glob(pattern)) - before
            if new:
                return new.pop()


async def arenas_sample(pid: int, directory: Path) -> Arenas:
    """Ask the server (SIGUSR2, bench/tracemalloc_probe) for pymalloc's statistics."""
    path = await _signal_for_file(pid, signal.SIGUSR2, directory, "*.txt", 60)
    return parse_mallocstats(path.read_text())


async def probe_snapshot(pid: int, snapshots: Path) -> tracemalloc.Snapshot:
    path = await _signal_for_file(pid, signal.SIGUSR1, snapshots, "*.pickle", 120)
    await asyncio.sleep(2)  # let the dump finish writing
    return tracemalloc.Snapshot.load(str(path))


SERVER_FILES = ("liveblog", "uvicorn", "websockets", "asyncio", "aiosqlite", "sqlite3", "starlette")


def rss_parts(pid: int) -> dict[str, int]:
    """The process's RSS by kind of mapping, from /proc/<pid>/smaps: the main heap (Python's
    objects and the main thread's malloc), other anonymous memory (pymalloc arenas, other
    threads' malloc arenas: SQLite's page caches live in its threads), and files (code, -shm)."""
    parts = {"heap": 0, "anon": 0, "file": 0}
    kind = "anon"
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            first = line.split(maxsplit=6)
            if len(first) >= 5 and "-" in first[0] and ":" in first[3]:  # a mapping's header line
                name = first[5].strip() if len(first) > 5 else ""
                kind = "heap" if name == "[heap]" else ("file" if name.startswith("/") else "anon")
            elif line.startswith("Rss:"):
                parts[kind] += int(line.split()[1]) * 1024
    return parts


def rss_split(pid: int) -> str:
    """`rss_parts` as "heap / other anon / files" in MiB."""
    parts = rss_parts(pid)
    return " / ".join(f"{parts[k] / 2**20:.1f}" for k in ("heap", "anon", "file"))


def _server_side(stats: list[tracemalloc.StatisticDiff]) -> list[tracemalloc.StatisticDiff]:
    return [
        s
        for s in stats
        if any(f"/{name}/" in s.traceback[0].filename for name in SERVER_FILES)
        and "/bench/" not in s.traceback[0].filename
    ]


async def soak(args: argparse.Namespace) -> int:
    log = print
    with tempfile.TemporaryDirectory(prefix="liveblog-soak-", dir=REPO / "bench" / "results") as tmp:
        serve = in_process_server if args.in_process else server_process
        snapshots = Path(tmp) / "snapshots"
        if args.probe:
            probe_environment(snapshots)
        if args.arenas:
            arenas_environment(Path(tmp) / "mallocstats")
        async with serve(Path(tmp), args.note_takers) as target:
            takers = [NoteTaker(target, i) for i in range(args.note_takers)]
            await asyncio.gather(*(t.connect() for t in takers))
            viewers = [Viewer(target) for _ in range(args.viewers)]
            for chunk in range(0, len(viewers), 50):
                await asyncio.gather(*(v.connect() for v in viewers[chunk : chunk + 50]))
            loop = asyncio.get_running_loop()
            start = loop.time()
            end = start + args.minutes * 60
            reconnects = 0
            failures = 0
            running = True

            async def post(taker: NoteTaker) -> None:
                interval = 1 / args.rate
                n = 0
                while running:
                    n += 1
                    taker.post()
                    await asyncio.sleep(max(0.0, start + n * interval - loop.time()))

            async def cycle(viewer: Viewer) -> None:
                nonlocal reconnects, failures
                viewer.drop()
                await asyncio.sleep(random.uniform(0.1, 3.0))  # offline for a moment
                try:
                    await viewer.connect()
                    reconnects += 1
                except (OSError, wsraw.HandshakeError, TimeoutError):
                    failures += 1
                finally:
                    viewer.busy = False

            async def churn() -> None:
                interval = 60 / args.reconnects_per_minute
                n = 0
                cycles: set[asyncio.Task[None]] = set()
                while running:
                    n += 1
                    viewer = random.choice(viewers)
                    if not viewer.busy:
                        viewer.busy = True
                        task = asyncio.create_task(cycle(viewer))
                        cycles.add(task)
                        task.add_done_callback(cycles.discard)
                    await asyncio.sleep(max(0.0, start + n * interval - loop.time()))
                await asyncio.gather(*cycles, return_exceptions=True)

            if args.tracemalloc:
                tracemalloc.start(args.tracemalloc_frames)
            tasks = [asyncio.create_task(post(t)) for t in takers] + [asyncio.create_task(churn())]
            samples: list[tuple[float, int]] = []
            first_snapshot: tracemalloc.Snapshot | None = None
            log(
                f"soak: {args.note_takers} note-takers at {args.rate:g} notes/s each, {args.viewers} viewers, "
                f"~{args.reconnects_per_minute:g} drops and resumes a minute, {args.minutes:g} min"
                f"{' (server in this process)' if args.in_process else ''}"
            )
            log(
                "minute  server RSS (MiB)  [heap / other anon / files]  notes acked  resumes  reloads"
                + ("  arenas used/free MiB  full gcs  gc objects" if args.arenas else "")
            )
            arenas: list[Arenas] = []
            next_sample = start
            while loop.time() < end:
                await asyncio.sleep(max(0.0, next_sample - loop.time()))
                next_sample += args.sample_seconds
                rss = rss_bytes(target.pid)
                samples.append((loop.time() - start, rss))
                split = rss_split(target.pid)
                if args.arenas:
                    arenas.append(await arenas_sample(target.pid, Path(tmp) / "mallocstats"))
                log(
                    f"{(loop.time() - start) / 60:6.1f}  {rss / 2**20:16.1f}  {split:>27}  {sum(t.acks for t in takers):11d}  "
                    f"{reconnects:7d}  {sum(v.reloads for v in viewers):7d}"
                    + (f"  {arenas[-1].line()}" if arenas else "")
                )
                if args.tracemalloc and first_snapshot is None and loop.time() - start >= args.warmup * 60:
                    gc.collect()  # compare live objects, not garbage waiting for the collector
                    first_snapshot = tracemalloc.take_snapshot()
                if args.probe and first_snapshot is None and loop.time() - start >= args.warmup * 60:
                    first_snapshot = await probe_snapshot(target.pid, snapshots)
                sys.stdout.flush()
            running = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if (args.tracemalloc or args.probe) and first_snapshot is not None:
                if args.probe:
                    last = await probe_snapshot(target.pid, snapshots)
                else:
                    gc.collect()
                    last = tracemalloc.take_snapshot()
                diff = last.compare_to(
                    first_snapshot, "traceback" if args.tracemalloc_frames > 1 else "lineno"
                )
                stats = diff if args.probe else _server_side(diff)
                log(f"\ntracemalloc: growth after the first {args.warmup:g} min, server-side files, top 15:")
                for stat in stats[:15]:
                    log(
                        f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {stat.traceback.format()[-1].strip()}"
                    )
                    if args.tracemalloc_frames > 1:
                        for line in stat.traceback.format()[:-1][-6:]:
                            log(f"        {line.strip()}")
            if len(arenas) >= 2:
                log_arena_growth(arenas[0], arenas[-1], log)
            for v in viewers:
                v.drop()
            close_all(takers)
    half = [rss for t, rss in samples if t >= samples[-1][0] / 2]
    if len(half) >= 2:
        slope = (half[-1] - half[0]) / max(1e-9, (samples[-1][0] - samples[-len(half)][0]) / 60)
        log(
            f"\nsecond half: RSS {half[0] / 2**20:.1f} -> {half[-1] / 2**20:.1f} MiB ({slope / 2**20:+.2f} MiB/min); "
            f"{reconnects} resumes ({failures} failed), {sum(t.acks for t in takers)} notes acked, "
            f"gaps seen by viewers: {sum(v.gaps for v in viewers)}"
        )
    if len(samples) >= 2:
        first, last = samples[0][1], max(rss for _, rss in samples)
        log(
            f"growth: {first / 2**20:.1f} MiB at the first sample -> {last / 2**20:.1f} at the highest "
            f"({100 * (last - first) / first:+.1f}%; the goal over 30 minutes: < 10%)"
        )
    return 0


def log_arena_growth(first: Arenas, last: Arenas, log: Callable[[str], None]) -> None:
    """Which of pymalloc's size classes gained pools from the first sample to the last."""
    log(
        f"\npymalloc: {first.current} -> {last.current} arenas ({last.total - last.current} given back "
        f"over the run); used blocks {first.used / 2**20:.1f} -> {last.used / 2**20:.1f} MiB, "
        f"free {first.free / 2**20:.1f} -> {last.free / 2**20:.1f} MiB"
    )
    log("  block size  pools  blocks in use  avail blocks   (first -> last, the 10 that grew most)")
    sizes = sorted(
        set(first.by_size) | set(last.by_size),
        key=lambda size: last.by_size.get(size, (0, 0, 0))[0] - first.by_size.get(size, (0, 0, 0))[0],
        reverse=True,
    )
    for size in sizes[:10]:
        a, b = first.by_size.get(size, (0, 0, 0)), last.by_size.get(size, (0, 0, 0))
        log(f"  {size:10d}  {a[0]:5d} -> {b[0]:5d}  {a[1]:7d} -> {b[1]:7d}  {a[2]:6d} -> {b[2]:6d}")


async def viewers_connected(port: int) -> int:
    """The server's open viewer sockets (`liveblog_connections{role="viewer"}` in /metrics)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(f"GET /metrics HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
        text = (await asyncio.wait_for(reader.read(), 10)).decode()
    finally:
        writer.close()
    for line in text.splitlines():
        if line.startswith('liveblog_connections{role="viewer"}'):
            return int(float(line.split()[1]))
    raise RuntimeError("no liveblog_connections in /metrics")


async def evictions(args: argparse.Namespace) -> int:
    """`--evict N`: N viewers connect and stop reading while notes flow, so the server holds up
    to `streams.viewer_buffer_bytes` for each until it evicts them (4408, within
    `streams.stall_seconds`); then is that memory given back? Prints the server's RSS before,
    at the peak and after the evictions."""
    log = print
    with tempfile.TemporaryDirectory(prefix="liveblog-evict-", dir=REPO / "bench" / "results") as tmp:
        async with server_process(Path(tmp), args.note_takers) as target:
            takers = [NoteTaker(target, i) for i in range(args.note_takers)]
            await asyncio.gather(*(t.connect() for t in takers))
            loop = asyncio.get_running_loop()
            started = loop.time()
            for taker in takers:  # warm up: the ring, the caches, the write path
                for _ in range(50):
                    taker.post()
            while sum(t.acks for t in takers) < 50 * len(takers) and loop.time() - started < 60:
                await asyncio.sleep(0.2)
            before = rss_bytes(target.pid)
            stalled: list[wsraw.RawWebSocket] = []
            for chunk in range(0, args.evict, 50):
                batch = await asyncio.gather(
                    *(
                        wsraw.connect(
                            HOST,
                            target.port,
                            target.viewer_path(),
                            lambda ws, data, now: None,
                            ["liveblog.v1"],
                        )
                        for _ in range(min(50, args.evict - chunk))
                    )
                )
                for ws in batch:  # a frozen tab: nothing read from here on
                    assert ws.transport is not None
                    ws.transport.pause_reading()
                stalled += batch
            connected = rss_bytes(target.pid)
            log(
                f"evict: {args.evict} viewers stop reading while {args.note_takers} note-takers post "
                f"{args.rate:g} notes/s each ({len(EVICT_BODY)}-character notes)"
            )
            log("  seconds  server RSS (MiB)  [heap / other anon / files]  viewers connected")
            peak = connected
            start = loop.time()
            n = 0
            viewers = args.evict
            next_sample = start
            while viewers > 0 and loop.time() - start < 120:
                n += 1
                for taker in takers:
                    taker.post(EVICT_BODY)
                await asyncio.sleep(max(0.0, start + n / args.rate - loop.time()))
                if loop.time() >= next_sample:
                    next_sample += 1.0
                    rss = rss_bytes(target.pid)
                    peak = max(peak, rss)
                    viewers = await viewers_connected(target.port)
                    log(
                        f"  {loop.time() - start:7.1f}  {rss / 2**20:16.1f}  {rss_split(target.pid):>27}  {viewers:17d}"
                    )
            evicted_at = loop.time()
            # Settle with notes still flowing at the soak's pace (2 notes/s), as on a live day.
            while loop.time() - evicted_at < args.settle:
                for taker in takers:
                    taker.post()
                await asyncio.sleep(1.0)
            after = rss_bytes(target.pid)
            log(
                f"  {args.settle:g} s after the last eviction: {after / 2**20:.1f} MiB [{rss_split(target.pid)}]"
            )
            for ws in stalled:
                ws.abort()
            close_all(takers)
    held = peak - before
    kept = after - before
    log(
        f"\nRSS before {before / 2**20:.1f} MiB, with {args.evict} stalled viewers connected "
        f"{connected / 2**20:.1f}, peak {peak / 2**20:.1f} (+{held / 2**20:.1f}), after the evictions "
        f"{after / 2**20:.1f} (+{kept / 2**20:.1f}): {100 * (1 - kept / held) if held > 0 else 0:.0f}% of the peak's "
        "growth given back"
    )
    return 0


# A long note (a pasted abstract): a few of them fill a stalled viewer's buffer quickly.
EVICT_BODY = "A pasted abstract, long enough to fill buffers: " + "words of a talk, " * 180


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0, help="how long to run (the issue's soak: 10, or 30)")
    p.add_argument("--quick", action="store_true", help="a quick look: 3 minutes, a sample every 20 s")
    p.add_argument("--viewers", type=int, default=300)
    p.add_argument("--note-takers", type=int, default=3)
    p.add_argument("--rate", type=float, default=2.0, help="notes per second per note-taker")
    p.add_argument(
        "--reconnects-per-minute", type=float, default=230.0, help="viewer drops and resumes a minute"
    )
    p.add_argument("--sample-seconds", type=float, default=30.0)
    p.add_argument(
        "--in-process", action="store_true", help="run the server in this process (for --tracemalloc)"
    )
    p.add_argument(
        "--tracemalloc", action="store_true", help="compare allocation snapshots (needs --in-process)"
    )
    p.add_argument("--tracemalloc-frames", type=int, default=1)
    p.add_argument(
        "--probe",
        action="store_true",
        help="trace the server process's allocations (PYTHONTRACEMALLOC) and compare snapshots taken "
        "through SIGUSR1 after --warmup minutes and at the end",
    )
    p.add_argument(
        "--arenas",
        action="store_true",
        help="with each sample, pymalloc's arenas in the server (sys._debugmallocstats through "
        "SIGUSR2): arenas held, MiB in used and in free blocks; at the end, the size classes that grew",
    )
    p.add_argument("--warmup", type=float, default=1.0, help="minutes before the first tracemalloc snapshot")
    p.add_argument(
        "--evict",
        type=int,
        default=0,
        metavar="N",
        help="instead of the soak: N viewers stop reading and are evicted; is their memory given back?",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds after the last eviction before measuring (--evict)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.sample_seconds = 3.0, 20.0
    if args.tracemalloc and not args.in_process:
        p.error("--tracemalloc needs --in-process (or use --probe)")
    if args.arenas and args.in_process:
        p.error("--arenas samples a server in its own process: leave out --in-process")
    raise_fd_limit()
    (REPO / "bench" / "results").mkdir(parents=True, exist_ok=True)
    random.seed(1)
    if args.evict:
        if args.rate == p.get_default("rate"):
            args.rate = 10.0  # notes/s per note-taker: buffers fill within stall_seconds
        return asyncio.run(evictions(args))
    return asyncio.run(soak(args))


if __name__ == "__main__":
    raise SystemExit(main())

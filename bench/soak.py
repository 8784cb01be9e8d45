"""Soak: does the server's memory level off under steady use? (issue 8, "memory is flat")

    .venv/bin/python -m bench.soak --minutes 5          # prints the server's RSS over time
    .venv/bin/python -m bench.soak --minutes 3 --in-process --tracemalloc
                                                        # + the top allocation growth by line

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
import sys
import tempfile
import tracemalloc
from collections.abc import AsyncIterator
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
            HOST, self.target.port, self.target.capture_path(), self._on_message, ["liveblog.v1", "liveblog.token." + self.token]
        )

    def post(self) -> None:
        assert self.ws is not None
        self.sent += 1
        body = f"Soak note {self.sent} from {self.name}. " + "Steady words for a steady test. " * 8
        message = {"type": "note.create", "client_id": f"{self.name}-{self.sent}", "body": body}
        self.ws.send_text(json.dumps(message, separators=(",", ":")))


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
    config = uvicorn.Config(create_app(settings), host=HOST, port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=2, **uvicorn_options(settings))
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


def _server_side(stats: list[tracemalloc.StatisticDiff]) -> list[tracemalloc.StatisticDiff]:
    return [s for s in stats if any(f"/{name}/" in s.traceback[0].filename for name in SERVER_FILES)
            and "/bench/" not in s.traceback[0].filename]


async def soak(args: argparse.Namespace) -> int:
    log = print
    with tempfile.TemporaryDirectory(prefix="liveblog-soak-", dir=REPO / "bench" / "results") as tmp:
        serve = in_process_server if args.in_process else server_process
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
            log(f"soak: {args.note_takers} note-takers at {args.rate:g} notes/s each, {args.viewers} viewers, "
                f"~{args.reconnects_per_minute:g} drops and resumes a minute, {args.minutes:g} min"
                f"{' (server in this process)' if args.in_process else ''}")
            log("minute  server RSS (MiB)  [heap / other anon / files]  notes acked  resumes  reloads")
            next_sample = start
            while loop.time() < end:
                await asyncio.sleep(max(0.0, next_sample - loop.time()))
                next_sample += args.sample_seconds
                rss = rss_bytes(target.pid)
                parts = rss_parts(target.pid)
                samples.append((loop.time() - start, rss))
                split = " / ".join(f"{parts[k] / 2**20:.1f}" for k in ("heap", "anon", "file"))
                log(f"{(loop.time() - start) / 60:6.1f}  {rss / 2**20:16.1f}  {split:>27}  {sum(t.acks for t in takers):11d}  "
                    f"{reconnects:7d}  {sum(v.reloads for v in viewers):7d}")
                if args.tracemalloc and first_snapshot is None and loop.time() - start >= args.warmup * 60:
                    gc.collect()  # compare live objects, not garbage waiting for the collector
                    first_snapshot = tracemalloc.take_snapshot()
                sys.stdout.flush()
            running = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if args.tracemalloc and first_snapshot is not None:
                gc.collect()
                last = tracemalloc.take_snapshot()
                stats = _server_side(last.compare_to(first_snapshot, "traceback" if args.tracemalloc_frames > 1 else "lineno"))
                log(f"\ntracemalloc: growth after the first {args.warmup:g} min, server-side files, top 15:")
                for stat in stats[:15]:
                    log(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {stat.traceback.format()[-1].strip()}")
                    if args.tracemalloc_frames > 1:
                        for line in stat.traceback.format()[:-1][-6:]:
                            log(f"        {line.strip()}")
            for v in viewers:
                v.drop()
            for t in takers:
                if t.ws is not None:
                    t.ws.close()
    half = [rss for t, rss in samples if t >= samples[-1][0] / 2]
    if len(half) >= 2:
        slope = (half[-1] - half[0]) / max(1e-9, (samples[-1][0] - samples[-len(half)][0]) / 60)
        log(f"\nsecond half: RSS {half[0] / 2**20:.1f} -> {half[-1] / 2**20:.1f} MiB ({slope / 2**20:+.2f} MiB/min); "
            f"{reconnects} resumes ({failures} failed), {sum(t.acks for t in takers)} notes acked, "
            f"gaps seen by viewers: {sum(v.gaps for v in viewers)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0, help="how long to run (the issue's soak: 10, or 30)")
    p.add_argument("--viewers", type=int, default=300)
    p.add_argument("--note-takers", type=int, default=3)
    p.add_argument("--rate", type=float, default=2.0, help="notes per second per note-taker")
    p.add_argument("--reconnects-per-minute", type=float, default=230.0, help="viewer drops and resumes a minute")
    p.add_argument("--sample-seconds", type=float, default=30.0)
    p.add_argument("--in-process", action="store_true", help="run the server in this process (for --tracemalloc)")
    p.add_argument("--tracemalloc", action="store_true", help="compare allocation snapshots (needs --in-process)")
    p.add_argument("--tracemalloc-frames", type=int, default=1)
    p.add_argument("--warmup", type=float, default=1.0, help="minutes before the first tracemalloc snapshot")
    args = p.parse_args(argv)
    if args.tracemalloc and not args.in_process:
        p.error("--tracemalloc needs --in-process")
    raise_fd_limit()
    (REPO / "bench" / "results").mkdir(parents=True, exist_ok=True)
    random.seed(1)
    return asyncio.run(soak(args))


if __name__ == "__main__":
    raise SystemExit(main())

"""Scale-out benchmark (issue 11): viewers over 1 and 3 app processes behind real PostgreSQL and
Redis, beside single-process SQLite, in the same run; and durable notes per second on
PostgreSQL beside SQLite.

    .venv/bin/python -m bench.scaleout            # about 3 minutes on 2 cores
    .venv/bin/python -m bench.scaleout --quick    # smoke run, about a minute
    .venv/bin/python -m bench.scaleout --quick --capture-only   # durable notes/s only

Fan-out scenarios (one note-taker on process 1, notes at a steady rate, viewers spread evenly):
- sqlite x1: the embedded default, one process;
- postgres x1: one process on PostgreSQL with Redis fan-out on (its viewers never wait for Redis);
- postgres x3: three processes; two thirds of the viewers get each note through Redis.
The Redis hop is the difference in delivery latency between x3 and x1 on PostgreSQL. Delivery
latency is until the LAST viewer of all has the note; CPU per delivery counts every app process.
PostgreSQL and Redis are Debian's, started on loopback from temporary directories
(tests/servers.py). The table is printed and written to bench/results/scaleout.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets

from bench.live import HOST, Capture, NoteTaker, capture_rate, percentile
from bench.loadgen import Pool
from bench.servers import REPO, Server, _stop, _wait_listening, free_port, liveblog_server, raise_fd_limit
from tests.servers import PostgresServer, RedisServer

RESULTS = REPO / "bench" / "results"


@dataclass
class Profile:
    viewers: int
    rate: float
    warmup: float
    window: float
    capture_sockets: int
    capture_window: float
    capture_pipeline: int
    workers: int


FULL = Profile(1500, 10.0, 2.0, 10.0, 8, 4.0, 64, 2)
QUICK = Profile(600, 10.0, 1.0, 4.0, 8, 2.0, 64, 2)


@dataclass
class Result:
    name: str
    processes: int
    viewers: int
    notes: int = 0
    complete: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    cpu_seconds: float = 0.0
    us_per_delivery: float = float("nan")
    closed: int = 0
    hop_p50_ms: float = float("nan")  # per note: a viewer on another process minus one on the writer's
    hop_p99_ms: float = float("nan")


async def _seed_postgres(url: str, note_takers: int) -> tuple[str, list[str]]:
    from liveblog.services import Services
    from liveblog.settings import settings_from_dict

    settings = settings_from_dict({"database": {"url": url}}, env={"LIVEBLOG_SECRET_KEY": "bench"})
    services = Services.build(settings)
    await services.open()
    try:
        event = await services.programme.create_event(
            {"title": "Bench", "starts_on": "2026-05-14", "ends_on": "2026-05-15"}
        )
        session = await services.programme.create_session(
            event.id, {"title": "Keynote", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00"}
        )
        await services.programme.set_state(session.id, "live")
        tokens = [
            (await services.accounts.invite(event.id, session.id, f"n{i}"))[1] for i in range(note_takers)
        ]
        return session.id, tokens
    finally:
        await services.close()


@contextlib.contextmanager
def postgres_cluster(
    workdir: Path, pg: PostgresServer, redis_url: str, n: int, note_takers: int = 1
) -> Iterator[list[Server]]:
    """n `liveblog serve` processes on a fresh PostgreSQL database, sharing Redis."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = pg.new_database_sync()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as ex:
        session_id, tokens = ex.submit(asyncio.run, _seed_postgres(url, note_takers)).result()
    servers: list[Server] = []
    try:
        for i in range(n):
            port = free_port()
            config = workdir / f"app{i}.toml"
            config.write_text(
                f'[server]\nhost = "127.0.0.1"\nport = {port}\n[database]\nurl = "{url}"\n[redis]\nurl = "{redis_url}"\n'
            )
            log_path = workdir / f"app{i}.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "liveblog.cli",
                        "--config",
                        str(config),
                        "serve",
                        "--log-level",
                        "warning",
                    ],
                    cwd=workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=raise_fd_limit,
                    env={**os.environ, "LIVEBLOG_SECRET_KEY": "bench"},
                )
            servers.append(Server("liveblog", proc, port, session_id, tokens, log_path))
        for server in servers:
            _wait_listening(server, 60)
        yield servers
    finally:
        for server in servers:
            _stop(server.proc)
        pg.drop_database_sync(url)


async def fanout(name: str, servers: list[Server], pool: Pool, profile: Profile, log: object) -> Result:
    result = Result(name, len(servers), profile.viewers)
    taker = await NoteTaker(servers[0]).connect()
    for _ in range(5):
        taker.send_note()
    await taker.wait_acks(5)
    connected = 0
    share = profile.viewers // len(servers)
    for server in servers:
        replies = await asyncio.to_thread(pool.connect, HOST, server.port, server.viewer_path(), share)
        connected += sum(r["connected"] for r in replies)
    await asyncio.sleep(1.0)
    loop = asyncio.get_running_loop()
    # The Redis hop itself: two probe viewers in this process, one on the note-taker's process and
    # one on another, see the same note at the same moment of machine load; their difference is
    # what crossing processes adds (machine-wide noise cancels out, unlike between two runs).
    probes: list[tuple[Any, dict[int, int], asyncio.Task[None]]] = []
    if len(servers) > 1:
        for server in (servers[0], servers[1]):
            ws = await websockets.connect(
                f"ws://{HOST}:{server.port}{server.viewer_path()}", subprotocols=["liveblog.v1"]
            )  # type: ignore[list-item]
            arrivals: dict[int, int] = {}

            async def read(ws: Any = ws, arrivals: dict[int, int] = arrivals) -> None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for raw in ws:
                        now = time.monotonic_ns()
                        if '"type":"change"' in raw:
                            arrivals[json.loads(raw)["seq"]] = now

            probes.append((ws, arrivals, asyncio.create_task(read())))

    async def paced(seconds: float) -> list[int]:
        sent: list[int] = []
        start = loop.time()
        for i in range(round(seconds * profile.rate)):
            delay = start + i / profile.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append(taker.send_note())
        return sent

    await paced(profile.warmup)
    await asyncio.to_thread(pool.all, "reset")
    cpu0 = sum(s.cpu() for s in servers)
    sent = await paced(profile.window)
    deadline = time.monotonic() + 10
    while True:
        collected = await asyncio.to_thread(pool.all, "collect")
        got = sum(c["notes"].get(sent[-1], (0, 0))[1] for c in collected)
        if got >= connected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    cpu1 = sum(s.cpu() for s in servers)
    latencies = []
    for t in sent:
        arrivals = [c["notes"][t] for c in collected if t in c["notes"]]
        if sum(a[1] for a in arrivals) >= connected:
            result.complete += 1
            latencies.append((max(a[0] for a in arrivals) - t) / 1e6)
    result.viewers = connected
    result.notes = len(sent)
    result.p50_ms = percentile(latencies, 50)
    result.p99_ms = percentile(latencies, 99)
    result.max_ms = max(latencies) if latencies else float("nan")
    result.cpu_seconds = cpu1 - cpu0
    result.us_per_delivery = result.cpu_seconds * 1e6 / max(1, result.notes * connected)
    result.closed = sum(c["closed"] for c in collected)
    if probes:
        await asyncio.sleep(0.5)
        local, remote = probes[0][1], probes[1][1]
        hops = [(remote[q] - local[q]) / 1e6 for q in local if q in remote]
        result.hop_p50_ms = percentile(hops, 50)
        result.hop_p99_ms = percentile(hops, 99)
        for ws, _, task in probes:
            await ws.close()
            await task
    taker.close()
    await asyncio.to_thread(pool.all, "drop")
    return result


def render(
    results: list[Result], capture: dict[str, Capture], profile: Profile, quick: bool, started: float
) -> str:
    if not results:  # --capture-only
        return (
            "\n".join(
                [
                    f"# Durable notes per second ({'quick' if quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M')})",
                    "",
                    f"Machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}; "
                    f"{profile.capture_sockets} note-taker sockets, {profile.capture_pipeline} notes in flight each, "
                    f"{profile.capture_window:g} s.",
                    "",
                    "| durable notes/s | acks/s | server CPU µs per note |",
                    "| --- | --- | --- |",
                    *(f"| {name} | {c.rate:,.0f} | {c.us_per_note:.0f} |" for name, c in capture.items()),
                    "",
                    f"({time.monotonic() - started:.0f} s in all)",
                ]
            )
            + "\n"
        )
    by = {r.name: r for r in results}
    hop = by["postgres x3"].hop_p99_ms if "postgres x3" in by else float("nan")
    hop50 = by["postgres x3"].hop_p50_ms if "postgres x3" in by else float("nan")
    lines = [
        f"# Scale-out benchmark ({'quick' if quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}; "
        f"one note-taker at {profile.rate:g} notes/s, {profile.window:g} s measured after {profile.warmup:g} s warm-up; "
        "latency = until the last viewer of all has the note.",
        "",
        "| scenario | processes | viewers | notes complete | p50 ms | p99 ms | max ms "
        "| CPU µs per delivery (all processes) | closed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.processes} | {r.viewers:,} | {r.complete}/{r.notes} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
            f"| {r.max_ms:.1f} | {r.us_per_delivery:.2f} | {r.closed} |"
        )
    mark = "met" if hop < 5 else "NOT met"
    lines += [
        "",
        f"Redis hop, measured per note in the x3 run (a probe viewer on another process minus one on the "
        f"note-taker's process, same note, same moment): p50 **{hop50:.1f} ms**, p99 **{hop:.1f} ms** "
        f"(target p99 < 5 ms: {mark})",
        "",
    ]
    lines += ["| durable notes/s | acks/s | server CPU µs per note |", "| --- | --- | --- |"]
    for name, c in capture.items():
        lines.append(f"| {name} | {c.rate:,.0f} | {c.us_per_note:.0f} |")
    lines += ["", f"({time.monotonic() - started:.0f} s in all)"]
    return "\n".join(lines) + "\n"


async def main_async(profile: Profile, quick: bool, capture_only: bool = False) -> str:
    started = time.monotonic()

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    results: list[Result] = []
    capture: dict[str, Capture] = {}
    pool = Pool(profile.workers)
    pg = PostgresServer()
    pg.start()
    redis = RedisServer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="liveblog-scaleout-", dir=RESULTS) as tmp:
            work = Path(tmp)
            capture_profile = argparse.Namespace(
                capture_pipeline=profile.capture_pipeline, capture_window=profile.capture_window
            )
            log("sqlite x1")
            with liveblog_server(work / "sqlite", note_takers=profile.capture_sockets) as server:
                if not capture_only:
                    results.append(await fanout("sqlite x1", [server], pool, profile, log))
                capture["SQLite, 1 process"] = await capture_rate(
                    server, profile.capture_sockets, capture_profile
                )  # type: ignore[arg-type]
            for n in (1,) if capture_only else (1, 3):
                log(f"postgres x{n}")
                with postgres_cluster(
                    work / f"pg{n}", pg, redis.url, n, note_takers=profile.capture_sockets
                ) as servers:
                    if not capture_only:
                        results.append(await fanout(f"postgres x{n}", servers, pool, profile, log))
                    if n == 1:
                        capture["PostgreSQL, 1 process"] = await capture_rate(
                            servers[0], profile.capture_sockets, capture_profile
                        )  # type: ignore[arg-type]
            for r in results:
                log(
                    f"  {r.name}: p50 {r.p50_ms:.1f} ms p99 {r.p99_ms:.1f} ms, {r.us_per_delivery:.2f} µs/delivery"
                )
            for name, c in capture.items():
                log(f"  {name}: {c.rate:,.0f} durable notes/s")
    finally:
        pool.close()
        redis.remove()
        pg.remove()
    return render(results, capture, profile, quick, started)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scaleout", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--viewers", type=int)
    p.add_argument(
        "--capture-only", action="store_true", help="only durable notes/s, SQLite beside PostgreSQL"
    )
    args = p.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.viewers:
        profile.viewers = args.viewers
    RESULTS.mkdir(exist_ok=True)
    table = asyncio.run(main_async(profile, args.quick, args.capture_only))
    if not args.capture_only:  # a partial run leaves the full run's table alone
        (RESULTS / "scaleout.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

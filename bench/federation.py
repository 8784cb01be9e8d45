"""Fediverse delivery under load (issue 20): one note to 1,000 followers spread over 200 fake
inboxes on loopback, and the live stream's note latency with and without deliveries running,
in the same run.

    .venv/bin/python -m bench.federation            # 1,000 viewers, 5 waves, 6 windows of 10 s: about 3 minutes
    .venv/bin/python -m bench.federation --quick    # 300 viewers, shorter windows: about a minute

Setup: `liveblog serve` in its own process on a fresh SQLite file (synchronous=FULL). A session
F has 1,000 followers, 5 on each of 200 servers, each server a fake shared inbox on its own
loopback port (so 200 hosts, each under the per-host limit), answering 202 at once. A second
session S is live and watched by the viewers (bench/loadgen.py), with a note-taker (bench/live.py)
sending 5 notes/s to it.

Measures:
1. a wave: one note written in F -> the 200 deliveries (one per shared inbox): the time until
   the last inbox has it, and deliveries per second over the wave; several waves, one at a time;
2. S's note latency (sent -> the last viewer has it), p50/p99, in windows with no F notes and
   windows with one F note a second (200 deliveries a second), alternating (so the rest of the
   machine's load falls on both alike): the target is < 10% added at p99.
Results are printed and written to bench/results/federation-latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.feeds import collect_until, latencies, notes_for
from bench.live import HOST, RESULTS, NoteTaker, percentile
from bench.loadgen import Pool
from bench.servers import (
    Server,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    raise_fd_limit,
    serve_config,
)

ACTIVITY = re.compile(rb'"id":"([^"]+/activity)"')


@dataclass
class Profile:
    viewers: int
    waves: int
    windows: int  # windows of each kind
    window: float  # seconds
    inboxes: int = 200
    followers: int = 1000
    note_rate: float = 5.0  # S's notes a second
    wave_rate: float = 1.0  # F's notes a second in delivery windows


FULL = Profile(viewers=1000, waves=5, windows=3, window=10.0)
QUICK = Profile(viewers=300, waves=3, windows=2, window=5.0)


class Inboxes:
    """Fake shared inboxes, one per loopback port: each request's arrival time, by activity id."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.requests = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                now = time.monotonic()
                self.requests += 1
                match = ACTIVITY.search(body)
                if match:
                    self.arrivals[match.group(1).decode()].append(now)
                writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the sender closed, or the benchmark is over
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self, count: int) -> AsyncIterator[Inboxes]:
        servers = []
        for _ in range(count):
            server = await asyncio.start_server(self._serve, HOST, 0)
            servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])
        try:
            yield self
        finally:
            for server in servers:
                server.close()


async def _seed(db_path: str, ports: list[int], followers: int) -> tuple[str, str, str, str]:
    from liveblog.services import Services
    from liveblog.settings import settings_from_dict

    settings = settings_from_dict(
        {"database": {"path": db_path}, "feeds": {"enabled": False}}, env={"LIVEBLOG_SECRET_KEY": "bench"}
    )
    services = Services.build(settings)
    await services.open()
    try:
        event = await services.programme.create_event(
            {"title": "Bench Summit", "starts_on": "2026-05-14", "ends_on": "2026-05-15"}
        )
        watched = await services.programme.create_session(
            event.id, {"title": "Watched", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00"}
        )
        followed = await services.programme.create_session(
            event.id, {"title": "Followed", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00"}
        )
        for session in (watched, followed):
            await services.programme.set_state(session.id, "live")
        _, token = await services.accounts.invite(event.id, watched.id, "Bench note-taker")
        _, token_f = await services.accounts.invite(event.id, followed.id, "Bench federated note-taker")

        async def follow(tx: object) -> None:
            await tx.start_cursors("session", followed.id)  # type: ignore[attr-defined]
            for n in range(followers):
                port = ports[n % len(ports)]
                await tx.add_follower(  # type: ignore[attr-defined]
                    "session",
                    followed.id,
                    {
                        "follower": f"http://{HOST}:{port}/users/u{n}",
                        "handle": f"@u{n}@{HOST}:{port}",
                        "inbox": f"http://{HOST}:{port}/users/u{n}/inbox",
                        "shared_inbox": f"http://{HOST}:{port}/inbox",
                        "follow_id": f"http://{HOST}:{port}/follows/{n}",
                    },
                )

        await services.db.write(follow)  # type: ignore[arg-type]
        return watched.id, token, followed.id, token_f
    finally:
        await services.close()


@contextlib.contextmanager
def federation_server(workdir: Path, db_path: str, session_id: str, token: str) -> Iterator[Server]:
    port = free_port()
    config = (
        f'[server]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "http://{HOST}:{port}"\n'
        f'[database]\npath = "{db_path}"\nsynchronous = "FULL"\n'
        "[feeds]\nenabled = false\n"
        "[federation]\nallow_private_addresses = true\n"
    )
    with serve_config(workdir, port, config, session_id, [token]) as server:
        yield server


async def wave(
    inboxes: Inboxes, writer: NoteTaker, expected: int, timeout: float = 60
) -> tuple[float, float]:
    """One note in the followed session: (seconds until the last inbox has it, deliveries/s)."""
    before = set(inboxes.arrivals)
    sent = time.monotonic()
    writer.send_note()
    deadline = sent + timeout
    while time.monotonic() < deadline:
        new = [k for k in inboxes.arrivals if k not in before]
        if new and len(inboxes.arrivals[new[0]]) >= expected:
            times = inboxes.arrivals[new[0]]
            last = max(times) - sent
            return last, len(times) / last
        await asyncio.sleep(0.01)
    raise TimeoutError(f"a wave did not reach {expected} inboxes within {timeout} s")


async def waves_for(writer: NoteTaker, seconds: float, rate: float) -> int:
    loop = asyncio.get_running_loop()
    start = loop.time()
    count = round(seconds * rate)
    for i in range(count):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.send_note()
    return count


async def main_async(profile: Profile) -> str:
    lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="liveblog-federation-bench-") as tmp:
        workdir = Path(tmp)
        db_path = str(workdir / "bench.sqlite3")
        pool = Pool(2)
        try:
            async with Inboxes().running(profile.inboxes) as inboxes:
                watched, token, followed, token_f = await _seed(db_path, inboxes.ports, profile.followers)
                with federation_server(workdir, db_path, watched, token) as server:
                    taker = await NoteTaker(server).connect()
                    f_server = Server(
                        "liveblog", server.proc, server.port, followed, [token_f], server.log_path
                    )
                    writer = await NoteTaker(f_server, name="f").connect()

                    # 1. Waves, one at a time.
                    results = [await wave(inboxes, writer, profile.inboxes) for _ in range(profile.waves)]
                    for n, (last, rate) in enumerate(results, 1):
                        log(
                            f"wave {n}: one note to {profile.followers} followers on {profile.inboxes} inboxes: "
                            f"last inbox after {last * 1000:.0f} ms, {rate:,.0f} deliveries/s"
                        )
                    lasts = sorted(r[0] for r in results)
                    log(
                        f"waves: median time to the last inbox {lasts[len(lasts) // 2] * 1000:.0f} ms, "
                        f"median {sorted(r[1] for r in results)[len(results) // 2]:,.0f} deliveries/s"
                    )

                    # 2. The live stream with and without deliveries.
                    for _ in range(5):
                        taker.send_note()
                    await taker.wait_acks(5)
                    replies = await asyncio.to_thread(
                        pool.connect, HOST, server.port, server.viewer_path(), profile.viewers
                    )
                    viewers = sum(r["connected"] for r in replies)
                    log(f"{viewers} viewers connected to the watched session")
                    await asyncio.sleep(2.0)
                    await asyncio.to_thread(pool.all, "reset")
                    cpu0, started = server.cpu(), time.monotonic()
                    machine0, me0 = machine_busy_seconds(), cpu_seconds(os.getpid())
                    requests0 = inboxes.requests
                    quiet: list[int] = []
                    busy: list[int] = []
                    fed_notes = 0
                    for _ in range(profile.windows):
                        quiet += await notes_for(taker, profile.window, profile.note_rate)
                        producer = asyncio.create_task(waves_for(writer, profile.window, profile.wave_rate))
                        busy += await notes_for(taker, profile.window, profile.note_rate)
                        fed_notes += await producer
                        await asyncio.sleep(2.0)  # the deliveries drain before the next quiet window
                    quiet += await notes_for(taker, profile.window, profile.note_rate)
                    collected = await collect_until(pool, sorted(quiet + busy), viewers, 15)
                    wall = time.monotonic() - started
                    cpu1 = server.cpu()
                    machine1, me1 = machine_busy_seconds(), cpu_seconds(os.getpid())
                    delivered = inboxes.requests - requests0
                    q_ms, q_ok, _ = latencies(collected, quiet, viewers)
                    b_ms, b_ok, _ = latencies(collected, busy, viewers)
                    log(
                        f"notes without deliveries: {q_ok}/{len(quiet)} complete, p50 {percentile(q_ms, 50):.1f} ms, "
                        f"p99 {percentile(q_ms, 99):.1f} ms"
                    )
                    log(
                        f"notes during deliveries: {b_ok}/{len(busy)} complete, p50 {percentile(b_ms, 50):.1f} ms, "
                        f"p99 {percentile(b_ms, 99):.1f} ms ({fed_notes} federated notes, {delivered:,} deliveries)"
                    )
                    others = max(0.0, (machine1 - machine0) - (cpu1 - cpu0) - (me1 - me0)) / wall
                    log(
                        f"CPU over the run, in cores: server {(cpu1 - cpu0) / wall:.2f}, this process (inboxes, "
                        f"note-takers) {(me1 - me0) / wall:.2f}, viewers and the rest {others:.2f} (of {os.cpu_count()})"
                    )
                    q99, b99 = percentile(q_ms, 99), percentile(b_ms, 99)
                    added = 100 * (b99 - q99) / q99 if q99 else float("nan")
                    log(
                        f"note p99 added by deliveries: {added:+.1f}% (target < 10%: {'met' if added < 10 else 'NOT met'})"
                    )
                    taker.close()
                    writer.close()
        finally:
            pool.close()
    return "\n".join(
        [
            "# Fediverse delivery benchmark (bench/federation.py)",
            "",
            f"{profile.followers} followers on {profile.inboxes} fake inboxes, {profile.viewers} viewers of another "
            f"session, its notes at {profile.note_rate}/s; {profile.window:.0f} s windows with and without "
            f"{profile.wave_rate}/s federated notes alternating.",
            "",
            *[f"- {line}" for line in lines],
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.federation", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run in about a minute")
    p.add_argument("--viewers", type=int)
    args = p.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.viewers:
        profile.viewers = args.viewers
    raise_fd_limit()
    report = asyncio.run(main_async(profile))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "federation-latest.md").write_text(report)
    print(f"\nwritten to {RESULTS / 'federation-latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

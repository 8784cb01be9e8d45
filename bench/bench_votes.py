"""Benchmark for audience votes (issue 4): 1,000 voters vote within one second on a poll that
1,000 viewer websockets are watching. How long until every viewer shows the final tally, and
how many tally messages does each viewer get per second?

    .venv/bin/python bench/bench_votes.py            # defaults: 1000 voters, 1000 viewers, 1 s
    .venv/bin/python bench/bench_votes.py --voters 2000 --viewers 500 --spread 1.0

The server runs in a separate process (`liveblog serve`, production settings: websockets-sansio,
no permessage-deflate) on a free loopback port with a temporary database. Voters are raw
HTTP/1.1 keep-alive connections (cheap on the client side, so the client does not hide the
server's speed); each voter is a distinct signed participant id. Targets: final tally at every
viewer within 0.5 s of the last vote; at most 5 tally messages per viewer in any one second.
Bounded in time: the whole run takes well under two minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liveblog.access.participants import Participants
from liveblog.capture.votes import Moderator
from liveblog.services import Services
from liveblog.settings import settings_from_dict

SECRET = "bench-votes-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def seed(db_path: str, interval_ms: int) -> tuple[str, int]:
    settings = settings_from_dict(
        {"database": {"path": db_path}, "votes": {"tally_interval_ms": interval_ms}},
        env={"LIVEBLOG_SECRET_KEY": SECRET},
    )
    services = Services.build(settings)
    await services.open()
    try:
        event = await services.programme.create_event(
            {"title": "Bench", "starts_on": "2026-05-14", "ends_on": "2026-05-14"}
        )
        session = await services.programme.create_session(
            event.id, {"title": "Votes", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00"}
        )
        await services.programme.set_state(session.id, "live")
        poll = await services.audience.create_poll(
            session.id,
            Moderator("bench", "bench"),
            {"question": "Which option?", "options": ["A", "B", "C", "D"], "open": True},
        )
        return session.id, poll.id
    finally:
        await services.close()


@dataclass
class Viewer:
    tallies: list[float] = field(default_factory=list)  # arrival times of poll.tally messages
    final_at: float | None = None


class ViewerProtocol(asyncio.Protocol):
    """A minimal websocket viewer: a callback per read, no task per connection, so 1,000 of
    them cost the client little and the numbers are the server's. Server frames are unmasked
    text frames (no compression is negotiated)."""

    def __init__(
        self,
        path: str,
        port: int,
        viewer: Viewer,
        poll_id: int,
        voters: int,
        synced: asyncio.Event,
        done: asyncio.Event,
    ) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.viewer, self.poll_id, self.voters = viewer, poll_id, voters
        self.synced, self.done = synced, done
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buffer[:20]:
                raise RuntimeError(f"handshake refused: {self.buffer[:60]!r}")
            self.upgraded = True
            self.buffer = self.buffer[end + 4 :]
        buf = self.buffer
        pos = 0
        while len(buf) - pos >= 2:
            opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if len(buf) - pos < head + n:
                break
            payload = buf[pos + head : pos + head + n]
            pos += head + n
            if opcode == 1:
                self.on_text(payload)
        self.buffer = buf[pos:]

    def on_text(self, payload: bytes) -> None:
        if b'"synced"' in payload[:40]:
            self.synced.set()
            return
        if b'"poll.tally"' not in payload:
            return
        now = time.monotonic()
        msg = json.loads(payload)
        if msg.get("item_id") != self.poll_id:
            return
        self.viewer.tallies.append(now)
        if msg["voters"] == self.voters and sum(msg["tally"].values()) == self.voters:
            self.viewer.final_at = now
            self.done.set()


async def vote_on(
    port: int, poll_id: int, jobs: list[tuple[float, str, str]], latencies: list[float], failures: list[str]
) -> float:
    """Send this connection's votes at their scheduled times; returns when the last was answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    last = 0.0
    try:
        for due, token, choice in jobs:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body = json.dumps({"choice": choice}).encode()
            sent = time.monotonic()
            writer.write(
                f"POST /api/v1/polls/{poll_id}/votes HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nLiveblog-Participant: {token}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            payload = await reader.readexactly(length)
            last = time.monotonic()
            latencies.append(last - sent)
            if status != 201:
                failures.append(f"{status} {payload[:120]!r}")
    finally:
        writer.close()
    return last


def max_in_window(times: list[float], window: float = 1.0) -> int:
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> int:
    tmp = tempfile.TemporaryDirectory(prefix="liveblog-bench-votes-")
    db_path = str(Path(tmp.name) / "bench.sqlite3")
    config = Path(tmp.name) / "config.toml"
    config.write_text(f"[votes]\ntally_interval_ms = {args.interval_ms}\n")
    session_id, poll_id = await seed(db_path, args.interval_ms)
    port = free_port()
    env = {**os.environ, "LIVEBLOG_SECRET_KEY": SECRET}
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measuring
        [
            sys.executable,
            "-m",
            "liveblog",
            "--config",
            str(config),
            "--db",
            db_path,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    print(server.stderr.read().decode() if server.stderr else "", file=sys.stderr)
                    raise SystemExit("the server did not start") from None
                await asyncio.sleep(0.1)

        # 1. Viewers join and sync.
        path = f"/ws/v1/sessions/{session_id}"
        loop = asyncio.get_running_loop()
        viewers = [Viewer() for _ in range(args.viewers)]
        done_events = [asyncio.Event() for _ in viewers]
        synced_events = [asyncio.Event() for _ in viewers]
        transports = []
        started = time.monotonic()
        for i, v in enumerate(viewers):
            transport, _ = await loop.create_connection(
                lambda v=v, i=i: ViewerProtocol(
                    path, port, v, poll_id, args.voters, synced_events[i], done_events[i]
                ),
                "127.0.0.1",
                port,
            )
            transports.append(transport)
        async with asyncio.timeout(60):
            await asyncio.gather(*(e.wait() for e in synced_events))
        joined = time.monotonic() - started

        # 2. Voters, each a distinct signed participant, spread evenly over `spread` seconds.
        participants = Participants(SECRET)
        tokens = [participants.issue()[1] for _ in range(args.voters)]
        cpu_before = cpu_seconds(server.pid)
        t0 = time.monotonic() + 0.2
        per_conn: list[list[tuple[float, str, str]]] = [[] for _ in range(min(args.connections, args.voters))]
        for i, token in enumerate(tokens):
            per_conn[i % len(per_conn)].append((t0 + args.spread * i / args.voters, token, "abcd"[i % 4]))
        latencies: list[float] = []
        failures: list[str] = []
        lasts = await asyncio.gather(
            *(vote_on(port, poll_id, jobs, latencies, failures) for jobs in per_conn)
        )
        last_vote = max(lasts)
        first_vote = t0

        # 3. Every viewer shows the final tally.
        try:
            async with asyncio.timeout(30):
                await asyncio.gather(*(e.wait() for e in done_events))
        except TimeoutError:
            pass
        cpu_used = cpu_seconds(server.pid) - cpu_before
        for transport in transports:
            transport.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()

    finals = [v.final_at for v in viewers if v.final_at is not None]
    missing = len(viewers) - len(finals)
    lag = [f - last_vote for f in finals]
    counts = [len(v.tallies) for v in viewers]
    per_second_window = [max_in_window(v.tallies) for v in viewers]
    spans = [(v.tallies[-1] - first_vote) for v in viewers if v.tallies]
    avg_rate = [
        len(v.tallies) / s for v, s in zip([v for v in viewers if v.tallies], spans, strict=True) if s > 0
    ]

    rows = [
        ("voters / viewers / voter connections", f"{args.voters} / {args.viewers} / {len(per_conn)}", ""),
        ("tally interval (votes.tally_interval_ms)", f"{args.interval_ms} ms", ""),
        ("viewers joined and synced in", f"{joined:.2f} s", ""),
        ("votes sent over", f"{last_vote - first_vote:.2f} s (scheduled {args.spread:.2f} s)", "~1 s"),
        ("votes accepted (201)", f"{len(latencies) - len(failures)} of {args.voters}", f"{args.voters}"),
        (
            "vote response p50 / p99",
            f"{pct(latencies, 0.5) * 1000:.1f} / {pct(latencies, 0.99) * 1000:.1f} ms",
            "",
        ),
        ("viewers showing the final tally", f"{len(finals)} of {args.viewers}", f"{args.viewers}"),
        (
            "final tally after last vote: p50 / max",
            f"{statistics.median(lag) * 1000:.0f} / {max(lag) * 1000:.0f} ms" if lag else "n/a",
            "max <= 500 ms",
        ),
        ("tally messages per viewer (total)", f"min {min(counts)} / max {max(counts)}", ""),
        ("tally messages per viewer in any 1 s", f"max {max(per_second_window)}", "<= 5"),
        (
            "tally messages per viewer per second (mean)",
            f"{statistics.mean(avg_rate):.2f}" if avg_rate else "n/a",
            "<= 5",
        ),
        ("server CPU during votes and fan-out", f"{cpu_used:.2f} s", ""),
    ]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"\n{'measure'.ljust(width)}  {'value'.ljust(vwidth)}  target")
    print(f"{'-' * width}  {'-' * vwidth}  ------")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value.ljust(vwidth)}  {target}")
    if failures:
        print(f"\n{len(failures)} votes failed, e.g. {failures[0]}")
    ok = not failures and not missing and lag and max(lag) <= 0.5 and max(per_second_window) <= 5
    print(f"\nresult: {'PASS' if ok else 'FAIL'}")
    tmp.cleanup()
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voters", type=int, default=1000)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which the votes are sent")
    parser.add_argument(
        "--connections", type=int, default=100, help="keep-alive HTTP connections the voters share"
    )
    parser.add_argument("--interval-ms", type=int, default=250, help="votes.tally_interval_ms for the server")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()

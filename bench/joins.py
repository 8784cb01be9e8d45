"""Capture joins in a burst: N note-takers open the capture websocket at the same moment.

    .venv/bin/python -m bench.joins                 # 20 joiners, 3 rounds, on a 3,000-note session
    .venv/bin/python -m bench.joins --since 1000    # each resumes from seq 1000 (a stale page)
    .venv/bin/python -m bench.joins --notes 5000 --viewers 500 --viewer-since 1000 --timeout 90

A real `liveblog serve` on SQLite (bench/servers.py) over loopback. Each round opens every socket
at once and measures, per socket, the time from the TCP connect to its `hello` and to its
`synced`; the table gives the median and the slowest. The slowest hello is what a note-taker
waits before the page says "connected" (reported: > 10 s on SQLite with 20 joiners). With
--viewers, that many viewers resume just before the joins, replaying from storage (the server
has just started: its ring is empty), and the table adds when the last of them was synced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import wsraw
from bench.live import HOST, percentile
from bench.servers import Seeded, Server, liveblog_server


def with_notes(count: int) -> object:
    """prepare= for liveblog_server: `count` notes in the seeded session, written as a
    note-taker's would be (so the stream's changes are stored for a resume)."""

    async def fill(db_path: str, session_id: str) -> None:
        from liveblog.capture.notes import Author
        from liveblog.services import Services
        from liveblog.settings import settings_from_dict

        settings = settings_from_dict(
            {"database": {"path": db_path, "synchronous": "NORMAL"}}, env={"LIVEBLOG_SECRET_KEY": "bench"}
        )
        services = Services.build(settings)
        await services.open()
        try:
            author = Author("Seeder", "seed")
            for start in range(0, count, 200):
                await asyncio.gather(
                    *(
                        services.notes.handle(
                            session_id,
                            author,
                            {
                                "type": "note.create",
                                "client_id": f"s{i}",
                                "body": f"Seeded note {i} " + "x" * 200,
                            },
                        )
                        for i in range(start, min(count, start + 200))
                    )
                )
        finally:
            await services.close()

    def prepare(seeded: Seeded) -> None:
        # In a thread of its own: the caller is inside a running event loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, fill(seeded.db_path, seeded.session_id)).result()

    return prepare


@dataclass
class Round:
    hello_ms: list[float] = field(default_factory=list)
    synced_ms: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    viewers_synced: int = 0
    viewers_last_synced_ms: float = 0.0


async def join_burst(
    server: Server, joiners: int, since: int | None, timeout: float, viewers: int = 0, viewer_since: int = 0
) -> Round:
    """Every joiner connects at once (just after `viewers` viewers have opened their sockets to
    resume from `viewer_since`, replayed from storage when that is older than the ring, as after
    a restart); the time each joiner takes to its hello and its synced."""
    out = Round()
    path = server.capture_path() + (f"?since={since}" if since is not None else "")
    opened: list[wsraw.RawWebSocket] = []

    synced_at: list[float] = []
    burst = time.monotonic()

    async def viewer() -> None:
        def on_message(ws: wsraw.RawWebSocket, data: bytes, now: int) -> None:
            if data.startswith(b'{"type":"synced"'):
                synced_at.append(now / 1e9)

        with contextlib.suppress(TimeoutError, OSError, wsraw.HandshakeError):
            path = f"{server.viewer_path()}?since={viewer_since}"
            opened.append(await wsraw.connect(HOST, server.port, path, on_message, ["liveblog.v1"], timeout))

    async def one(i: int) -> None:
        loop = asyncio.get_running_loop()
        hello: asyncio.Future[float] = loop.create_future()
        synced: asyncio.Future[float] = loop.create_future()

        def on_message(ws: wsraw.RawWebSocket, data: bytes, now: int) -> None:
            if data.startswith(b'{"type":"hello"') and not hello.done():
                hello.set_result(now / 1e9)
            elif data.startswith(b'{"type":"synced"') and not synced.done():
                synced.set_result(now / 1e9)

        token = server.tokens[i % len(server.tokens)]
        started = time.monotonic()
        ws = None
        try:
            ws = await wsraw.connect(
                HOST, server.port, path, on_message, ["liveblog.v1", "liveblog.token." + token], timeout
            )
            out.hello_ms.append((await asyncio.wait_for(hello, timeout) - started) * 1000)
            out.synced_ms.append((await asyncio.wait_for(synced, timeout) - started) * 1000)
        except (TimeoutError, OSError, wsraw.HandshakeError) as exc:
            out.failed.append(f"joiner {i}: {type(exc).__name__} {exc}")
        finally:
            if ws is not None:
                ws.close()

    # The viewers first (their replays queue on the live readers), then the joiners, all at once.
    await asyncio.gather(*(viewer() for _ in range(viewers)))
    await asyncio.gather(*(one(i) for i in range(joiners)))
    if viewers:
        deadline = time.monotonic() + timeout
        while len(synced_at) < len(opened) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # a benchmark's poll of its own counters, not a test's wait
        out.viewers_synced = len(synced_at)
        out.viewers_last_synced_ms = (max(synced_at, default=burst) - burst) * 1000
    for ws in opened:
        ws.close()
    return out


async def run(
    joiners: int, notes: int, since: int | None, rounds: int, timeout: float, viewers: int, viewer_since: int
) -> list[Round]:
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="liveblog-joins-") as tmp,
        liveblog_server(Path(tmp), note_takers=joiners, prepare=with_notes(notes)) as server,  # type: ignore[arg-type]
    ):
        for _ in range(rounds):
            results.append(await join_burst(server, joiners, since, timeout, viewers, viewer_since))
            server.check_alive()
            await asyncio.sleep(1)  # the sockets of the round before have closed on the server
    return results


def render(results: list[Round], joiners: int, notes: int, since: int | None) -> str:
    lines = [
        f"capture joins: {joiners} at once, session of {notes:,} notes, since={since}",
        "| round | hello p50 | hello max | synced p50 | synced max | failed | viewers synced, last |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(results, 1):
        h, s = r.hello_ms or [float("nan")], r.synced_ms or [float("nan")]
        lines.append(
            f"| {n} | {percentile(h, 50):.0f} ms | {max(h):.0f} ms | {percentile(s, 50):.0f} ms "
            f"| {max(s):.0f} ms | {len(r.failed)} | {r.viewers_synced}, {r.viewers_last_synced_ms:.0f} ms |"
        )
    for r in results:
        lines.extend(f"  {f}" for f in r.failed[:5])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.joins", description=__doc__.split("\n\n")[0])
    p.add_argument("--joiners", type=int, default=20)
    p.add_argument("--notes", type=int, default=3000, help="notes in the session before the joins")
    p.add_argument("--since", type=int, help="each joiner resumes from this seq (default: joins fresh)")
    p.add_argument("--viewers", type=int, default=0, help="viewers resuming at the same moment")
    p.add_argument("--viewer-since", type=int, default=0, help="the seq those viewers resume from")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds a socket waits for each step")
    args = p.parse_args(argv)
    results = asyncio.run(
        run(args.joiners, args.notes, args.since, args.rounds, args.timeout, args.viewers, args.viewer_since)
    )
    print(render(results, args.joiners, args.notes, args.since))
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

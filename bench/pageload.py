"""Live note latency while people load big session pages (issue 7 §2), beside the same run
without page loads: does rendering pages hold up live viewers?

    .venv/bin/python -m bench.pageload            # ~1 minute
    .venv/bin/python -m bench.pageload --quick    # smoke run

A real `liveblog serve` on a seeded SQLite file; the session holds --items notes (default 2,000).
50 viewers follow it over websockets while one note-taker posts 5 notes/s. Phase 1 measures the
time from sending a note to the last viewer having it; phase 2 measures the same while 20
clients (in a separate process, so their parsing does not slow the viewers' loop) load the
session page in a loop. Printed: p50/p99 per phase and the page loads per second served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.servers import liveblog_server

VIEWERS = 50
PAGE_CLIENTS = 20
RATE = 5.0  # notes per second


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def fill(base: str, session_id: str, token: str, items: int) -> None:
    async with httpx.AsyncClient(
        base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                body = (
                    f"Earlier note {i}: **bold** point about workforce planning, see https://example.org/{i}"
                )
                r = await http.post(
                    f"/api/v1/sessions/{session_id}/capture", json={"client_id": f"fill-{i}", "body": body}
                )
                r.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(items)))


def page_loader(base: str, session_id: str, seconds: float, out: Any) -> None:
    async def run() -> tuple[int, list[float], int]:
        deadline = time.monotonic() + seconds
        times: list[float] = []
        refused = 0
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:

            async def client() -> None:
                nonlocal refused
                while time.monotonic() < deadline:
                    t = time.perf_counter()
                    r = await http.get(f"/sessions/{session_id}")
                    if r.status_code != 200:  # 503 when the pages' readers are saturated: counted
                        refused += 1
                        continue
                    times.append(time.perf_counter() - t)

            await asyncio.gather(*(client() for _ in range(PAGE_CLIENTS)))
        return len(times), times, refused

    count, times, refused = asyncio.run(run())
    out.send((count, percentile(times, 50), refused))


async def phase(
    ws_base: str, base: str, session_id: str, token: str, seconds: float, tag: str
) -> list[float]:
    viewers = [
        await websockets.connect(
            f"{ws_base}/ws/v1/sessions/{session_id}", subprotocols=["liveblog.v1"], compression=None
        )  # type: ignore[list-item]
        for _ in range(VIEWERS)
    ]
    got: dict[str, list[float]] = {}

    async def follow(ws: Any) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "change" and message.get("op") == "item.created":
                body = message["item"]["body"]
                if body.startswith(tag):
                    got.setdefault(body, []).append(time.perf_counter())

    tasks = [asyncio.create_task(follow(ws)) for ws in viewers]
    sent: dict[str, float] = {}
    async with httpx.AsyncClient(
        base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        n = int(seconds * RATE)
        for i in range(n):
            body = f"{tag} live note {i}"
            sent[body] = time.perf_counter()
            await http.post(
                f"/api/v1/sessions/{session_id}/capture", json={"client_id": f"{tag}-{i}", "body": body}
            )
            await asyncio.sleep(1 / RATE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(len(got.get(b, [])) < VIEWERS for b in sent):
        await asyncio.sleep(0.05)
    for t in tasks:
        t.cancel()
    for ws in viewers:
        await ws.close()
    return [max(got[b]) - sent[b] for b in sent if len(got.get(b, [])) == VIEWERS]


async def main_async(items: int, seconds: float) -> str:
    with tempfile.TemporaryDirectory() as tmp, liveblog_server(Path(tmp)) as server:
        base = f"http://127.0.0.1:{server.port}"
        ws_base = f"ws://127.0.0.1:{server.port}"
        token = server.tokens[0]
        await fill(base, server.session_id, token, items)
        quiet = await phase(ws_base, base, server.session_id, token, seconds, "quiet")
        parent, child = multiprocessing.Pipe()
        loader = multiprocessing.Process(
            target=page_loader, args=(base, server.session_id, seconds + 2, child)
        )
        loader.start()
        await asyncio.sleep(1.0)  # the page loaders are up to speed before notes are measured
        busy = await phase(ws_base, base, server.session_id, token, seconds, "busy")
        loader.join(timeout=60)
        pages, page_p50, refused = parent.recv() if parent.poll(5) else (0, float("nan"), -1)
    ms = 1000.0
    lines = [
        f"Live note latency to the last of {VIEWERS} viewers, session of {items} notes, {RATE:g} notes/s",
        "",
        "| phase | notes | p50 ms | p99 ms |",
        "|---|---|---|---|",
        f"| no page loads | {len(quiet)} | {percentile(quiet, 50) * ms:.1f} | {percentile(quiet, 99) * ms:.1f} |",
        f"| {PAGE_CLIENTS} clients loading the session page | {len(busy)} | {percentile(busy, 50) * ms:.1f} | "
        f"{percentile(busy, 99) * ms:.1f} |",
        "",
        f"Session pages served during phase 2: {pages} ({pages / (seconds + 2):.1f}/s), p50 {page_p50 * ms:.0f} ms each;"
        f" {refused} answered 503 (store busy).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--items", type=int, default=2000)
    args = p.parse_args(argv)
    items = 300 if args.quick else args.items
    seconds = 4.0 if args.quick else 20.0
    print(asyncio.run(main_async(items, seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

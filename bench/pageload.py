"""Big session pages: how light they are to open (issue 17 item 7), and live note latency while
people load them (issue 7 §2).

    .venv/bin/python -m bench.pageload            # both parts, ~2 minutes
    .venv/bin/python -m bench.pageload --only paint     # first HTML, TTFB and FCP only
    .venv/bin/python -m bench.pageload --only latency   # live latency under page loads only
    .venv/bin/python -m bench.pageload --only first --rounds 8   # a knowledge page's first view
    .venv/bin/python -m bench.pageload --quick    # smoke run

**Paint.** A real `liveblog serve` on an SQLite file holding two sessions of --notes notes
(default 2,000, one in 25 a key point) and --posts social posts (default 5,000) each, written
straight into the file before the server starts: one live, one ended (its knowledge page).
Debian's Chromium (Playwright, executable_path=/usr/bin/chromium) opens each page --runs times,
each in a fresh browser context (no cache), after one load of the home page has started the
browser's processes: the first load of each page is reported apart (on the server nothing
rendered or kept yet), the rest as a median. Printed: the first HTML's bytes, the time
to its first byte (TTFB, Navigation Timing) and first contentful paint (Paint Timing).

**First view.** The paint part's two sessions on a fresh `liveblog serve` each round; the
knowledge page's first GET is sent as soon as the server listens, while the archive's check is
archiving its session and reading it to keep its cards: printed, that GET's time (and the next
one's) per round.

**Latency.**
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

from bench.servers import Seeded, liveblog_server

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


# -- paint: first HTML, TTFB and FCP of a big session's live and knowledge page -----------------

NETWORKS = ("Mastodon", "Bluesky", "RSS")


def _note_row(i: int, session_id: str, at: str, seq: int) -> tuple[Any, ...]:
    from liveblog.text import render_markdown

    body = (
        f"Note {i}: **retention** came up again: the speaker's team ran *stay interviews* with"
        f" {i % 40 + 3} managers and compared them with exit data; see https://example.org/notes/{i}"
    )
    return (session_id, "note", f"n-{session_id}-{i}", "Note-taker", body, render_markdown(body), int(i % 25 == 0),
            "{}", at, at, at, at, 0, 1, seq)  # fmt: skip


def _post_row(i: int, session_id: str, at: str, seq: int) -> tuple[Any, ...]:
    from html import escape

    network = NETWORKS[i % len(NETWORKS)]
    text = f"Great point in the keynote about onboarding buddies and secondments ({i}) #benchsummit"
    url = f"https://social.example/@person{i % 300}/{100000 + i}"
    html = (
        f'<div class="social-post"><p class="social-who"><span class="social-name">Person {i % 300}</span>'
        f' <span class="social-handle">@person{i % 300}@social.example</span></p>'
        f'<p class="social-text">{escape(text)}</p><p class="social-source"><span class="social-network">{network}'
        f'</span> · <a href="{url}" rel="nofollow noopener noreferrer ugc" class="social-original">Original post</a>'
        "</p></div>"
    )
    data = json.dumps({"state": "approved", "network": network.lower(), "url": url})
    return (session_id, "social", f"p-{session_id}-{i}", f"Person {i % 300}", text, html, 0, data, at, at, at, at,
            0, 1, seq)  # fmt: skip


def fill_sessions(db_path: str, session_ids: list[str], notes: int, posts: int) -> None:
    """Both sessions' notes and posts, interleaved over an hour, written straight into the file."""
    import sqlite3

    from liveblog.storage.searchtext import register

    conn = sqlite3.connect(db_path, isolation_level=None)
    register(conn)  # the search index's triggers call it
    conn.execute("BEGIN")
    total = notes + posts
    for sid in session_ids:
        rows = []
        n = p = 0
        for k in range(total):
            at = f"2026-05-14T09:{k * 60 // total:02d}:{k * 3600 // total % 60:02d}.{k % 1000:03d}Z"
            if p >= posts or (n < notes and k * notes // total >= n):
                rows.append(_note_row(n, sid, at, k + 1))
                n += 1
            else:
                rows.append(_post_row(p, sid, at, k + 1))
                p += 1
        conn.executemany(
            "INSERT INTO items (session_id, kind, client_id, author, body, html, key_point, data, typed_at,"
            " received_at, sort_at, updated_at, deleted, version, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?)",
            rows,
        )
        conn.execute("UPDATE sessions SET last_seq = ? WHERE id = ?", (total, sid))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def big_sessions(notes: int, posts: int, ended: list[str]) -> Any:
    """prepare= for liveblog_server: a second session, both filled, the second one ended."""

    async def second(db_path: str, event_session: str, state: str) -> str:
        from liveblog.services import Services
        from liveblog.settings import settings_from_dict

        settings = settings_from_dict({"database": {"path": db_path}}, env={"LIVEBLOG_SECRET_KEY": "bench"})
        services = Services.build(settings)
        await services.open()
        try:
            if state == "ended":
                await services.programme.set_state(event_session, "ended")
                return event_session
            first = await services.programme.session(event_session)
            made = await services.programme.create_session(
                first.event_id,
                {"title": "Keynote (ended)", "starts_at": "2026-05-14T11:00", "ends_at": "2026-05-14T12:00"},
            )
            await services.programme.set_state(made.id, "live")
            return made.id
        finally:
            await services.close()

    def prepare(seeded: Seeded) -> None:
        other = asyncio.run(second(seeded.db_path, seeded.session_id, "live"))
        fill_sessions(seeded.db_path, [seeded.session_id, other], notes, posts)
        asyncio.run(second(seeded.db_path, other, "ended"))
        ended.append(other)

    return prepare


def paint_timing(page: Any, url: str) -> dict[str, float]:
    """Open `url` in `page` (a fresh context: no cache) and read its Navigation and Paint Timing:
    ttfb, fcp, load (ms), bytes (the HTML's), nodes (elements), height (px)."""
    page.goto(url, wait_until="load", timeout=120_000)
    page.wait_for_function(
        "() => performance.getEntriesByName('first-contentful-paint').length > 0", timeout=30_000
    )
    timing: dict[str, float] = page.evaluate(
        """() => {
          const nav = performance.getEntriesByType('navigation')[0];
          const fcp = performance.getEntriesByName('first-contentful-paint')[0];
          return {ttfb: nav.responseStart - nav.requestStart, fcp: fcp.startTime,
                  load: nav.loadEventStart, bytes: nav.decodedBodySize,
                  nodes: document.getElementsByTagName('*').length,
                  height: document.documentElement.scrollHeight};
        }"""
    )
    return timing


def _paint_runs(urls: list[str], runs: int) -> dict[str, list[dict[str, float]]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[dict[str, float]]] = {u: [] for u in urls}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            # The browser's own first page (its processes, fonts) is not the server's to pay for.
            warm = browser.new_context()
            warm.new_page().goto(urls[0].split("/sessions/")[0] + "/", wait_until="load")
            warm.close()
            for _ in range(runs):
                for url in urls:
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    page = context.new_page()
                    out[url].append(paint_timing(page, url))
                    context.close()
        finally:
            browser.close()
    return out


def paint(notes: int, posts: int, runs: int) -> str:
    ended: list[str] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        liveblog_server(Path(tmp), prepare=big_sessions(notes, posts, ended)) as server,
    ):
        base = f"http://127.0.0.1:{server.port}"
        pages = {
            "live page": f"{base}/sessions/{server.session_id}",
            "knowledge page": f"{base}/sessions/{ended[0]}",
        }
        results = _paint_runs(list(pages.values()), runs)
        sizes = {name: len(httpx.get(url, timeout=120).content) for name, url in pages.items()}
    lines = [
        f"Session of {notes:,} notes and {posts:,} social posts; Chromium, fresh context per load;"
        f" first load, then median of {runs - 1}",
        "",
        "| page | first HTML (bytes) | TTFB ms (first / median) | FCP ms (first / median) | load event ms (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, url in pages.items():
        first, rest = results[url][0], results[url][1:] or results[url]
        med = {k: percentile([r[k] for r in rest], 50) for k in ("ttfb", "fcp", "load")}
        lines.append(
            f"| {name} | {sizes[name]:,} | {first['ttfb']:.0f} / {med['ttfb']:.0f} | {first['fcp']:.0f} /"
            f" {med['fcp']:.0f} | {med['load']:.0f} |"
        )
    return "\n".join(lines)


def first_views(notes: int, posts: int, rounds: int) -> str:
    lines = [
        f"Knowledge page of {notes:,} notes and {posts:,} posts, GET as soon as `liveblog serve` listens",
        "",
        "| round | first GET ms | next GET ms | bytes |",
        "|---:|---:|---:|---:|",
    ]
    firsts = []
    for n in range(rounds):
        ended: list[str] = []
        with (
            tempfile.TemporaryDirectory() as tmp,
            liveblog_server(Path(tmp), prepare=big_sessions(notes, posts, ended)) as server,
        ):
            url = f"http://127.0.0.1:{server.port}/sessions/{ended[0]}"
            took = []
            for _ in range(2):
                t = time.perf_counter()
                r = httpx.get(url, timeout=120)
                took.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
        firsts.append(took[0])
        lines.append(f"| {n + 1} | {took[0]:.0f} | {took[1]:.0f} | {len(r.content):,} |")
    lines += [
        "",
        f"First GET: median {percentile(firsts, 50):.0f} ms, range {min(firsts):.0f}-{max(firsts):.0f} ms",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--items", type=int, default=2000, help="notes of the latency part's session")
    p.add_argument("--notes", type=int, default=2000, help="notes of the paint part's sessions")
    p.add_argument("--posts", type=int, default=5000, help="social posts of the paint part's sessions")
    p.add_argument("--runs", type=int, default=6, help="loads of each page in the paint part")
    p.add_argument("--rounds", type=int, default=6, help="fresh servers of the first-view part")
    p.add_argument("--only", choices=["paint", "latency", "first"])
    args = p.parse_args(argv)
    if args.only == "first":
        print(first_views(args.notes, args.posts, 2 if args.quick else args.rounds))
        return 0
    if args.only != "latency":
        print(paint(args.notes, args.posts, 3 if args.quick else args.runs))
        print()
    if args.only != "paint":
        items = 300 if args.quick else args.items
        seconds = 4.0 if args.quick else 20.0
        print(asyncio.run(main_async(items, seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

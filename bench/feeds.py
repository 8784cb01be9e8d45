"""Social feed ingest under load (issue 9): posts from the fake networks flowing into a live
session watched by 1,000 viewers, beside a note-taker, with note latency measured with and
without the ingest in the same run.

    .venv/bin/python -m bench.feeds            # 10,000 posts at 100/s, 1,000 viewers: about 3 minutes
    .venv/bin/python -m bench.feeds --quick    # 1,500 posts, 300 viewers: under a minute

Setup: `liveblog serve` in its own process on a fresh SQLite file (synchronous=FULL), feeds
pointed at the loopback fakes (demo/fakes.py) served by this process: X recent search
(polled every second, pages of 100), a Mastodon tag timeline (every second, pages of 40) and
Jetstream (pushed). Posts go straight into the stream (no moderation), media fetching is off.
Viewers are bench/loadgen.py's raw websocket workers; the note-taker is bench/live.py's.

Measures:
1. note latency (sent -> the last viewer has it), p50/p99, at 5 notes/s, in windows with no
   posts coming in and windows while posts are ingested, alternating (so the rest of the
   machine's load falls on both alike): the target is < 10% added at p99;
2. posts stored per second over the ingest (the fakes add posts at `--post-rate`; a stored post
   is one that reached the viewers), and whether ingest kept up;
3. post latency: from the fake network's response (the post's text is stamped as it is sent)
   until every viewer has the post, p50/p99. For polled networks this includes nothing of the
   poll interval: the clock starts when the network answers.
Results are printed and written to bench/results/feeds-latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from liveblog.demo.fakes import FakeNetworks, serve_fakes

TAG = "benchtag"
SHARES = (("x", 0.4), ("mastodon", 0.3), ("bluesky", 0.3))


@dataclass
class Profile:
    viewers: int
    posts: int
    post_rate: float
    note_rate: float
    window: float  # seconds per window; windows with and without ingest alternate
    settle: float = 2.0  # seconds after an ingest window before a quiet one (the backlog drains)


FULL = Profile(viewers=1000, posts=10_000, post_rate=100.0, note_rate=5.0, window=10.0)
QUICK = Profile(viewers=300, posts=1_500, post_rate=150.0, note_rate=5.0, window=5.0)


async def _seed(db_path: str) -> tuple[str, str]:
    from liveblog.services import Services
    from liveblog.settings import settings_from_dict

    settings = settings_from_dict(
        {"database": {"path": db_path}, "feeds": {"enabled": False}}, env={"LIVEBLOG_SECRET_KEY": "bench"}
    )
    services = Services.build(settings)
    await services.open()
    try:
        event = await services.programme.create_event(
            {
                "title": "Bench Summit",
                "starts_on": "2026-05-14",
                "ends_on": "2026-05-15",
                "hashtags": [f"#{TAG}"],
            }
        )
        session = await services.programme.create_session(
            event.id, {"title": "Keynote", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00"}
        )
        await services.programme.set_state(session.id, "live")
        await services.feeds.moderation.set_policy(event.id, "", False)  # straight into the stream
        _, token = await services.accounts.invite(event.id, session.id, "Bench note-taker")
        return session.id, token
    finally:
        await services.close()


@contextlib.contextmanager
def feeds_server(
    workdir: Path, fakes: FakeNetworks, session_id: str, token: str, db_path: str
) -> Iterator[Server]:
    port = free_port()
    base = fakes.base_url
    config = (
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[database]\npath = "{db_path}"\nsynchronous = "FULL"\n'
        "[feeds]\nmoderate_by_default = false\nfetch_media = false\nallow_private_addresses = true\n"
        f'[feeds_x]\napi_base = "{base}"\npoll_seconds = 1\nmax_results = 100\n'
        "event_read_cap = 1000000\nsession_read_cap = 1000000\n"
        f'[feeds_mastodon]\ninstances = ["{base}"]\npoll_seconds = 1\nlimit = 40\n'
        f'[feeds_bluesky]\njetstream_url = "{base.replace("http", "ws")}/subscribe"\nappview_url = ""\n'
    )
    env = {"LIVEBLOG_X_BEARER_TOKEN": "fake-token"}
    with serve_config(workdir, port, config, session_id, [token], env) as server:
        yield server


async def notes_for(taker: NoteTaker, seconds: float, rate: float) -> list[int]:
    loop = asyncio.get_running_loop()
    sent: list[int] = []
    start = loop.time()
    for i in range(round(seconds * rate)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sent.append(taker.send_note())
    return sent


async def produce(fakes: FakeNetworks, first: int, posts: int, rate: float) -> float:
    """Add posts first..first+posts to the fake networks at `rate` a second."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    # Interleaved: of every ten posts, four on X, three on Mastodon, three on Bluesky.
    plan = [SHARES[0][0]] * 4 + [SHARES[1][0]] * 3 + [SHARES[2][0]] * 3
    for i in range(first, first + posts):
        network = plan[i % len(plan)]
        delay = start + (i - first) / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        text = f"bench t=0 post {i} from the room #{TAG}"
        if network == "x":
            fakes.add_tweet(f"user{i % 97}", f"User {i % 97}", text)
        elif network == "mastodon":
            fakes.add_status(f"user{i % 89}@social.example", f"User {i % 89}", f"<p>{text}</p>", [TAG])
        else:
            fakes.add_skeet(f"did:plc:user{i % 83}", text, [TAG])
    return loop.time()


def latencies(
    collected: list[dict[str, Any]], stamps: list[int], expected: int
) -> tuple[list[float], int, int]:
    """(ms until the last viewer, for stamps every viewer got; how many complete; last arrival ns)."""
    out = []
    complete = 0
    last = 0
    for t in stamps:
        arrivals = [c["notes"][t] for c in collected if t in c["notes"]]
        if sum(a[1] for a in arrivals) >= expected:
            complete += 1
            latest = max(a[0] for a in arrivals)
            last = max(last, latest)
            out.append((latest - t) / 1e6)
    return out, complete, last


async def collect_until(pool: Pool, stamps: list[int], expected: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        collected = await asyncio.to_thread(pool.all, "collect")
        # The newest stamps are the last to arrive (`stamps` must be in sending order).
        _, complete, _ = latencies(collected, stamps[-50:], expected)
        if complete >= min(50, len(stamps)) or time.monotonic() > deadline:
            return collected
        await asyncio.sleep(0.2)


async def main_async(profile: Profile) -> str:
    lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="liveblog-feeds-bench-") as tmp:
        workdir = Path(tmp)
        db_path = str(workdir / "bench.sqlite3")
        session_id, token = await asyncio.to_thread(asyncio.run, _seed(db_path))
        fakes = FakeNetworks(stamp=True)
        pool = Pool(2)
        try:
            async with serve_fakes(fakes):
                with feeds_server(workdir, fakes, session_id, token, db_path) as server:
                    taker = await NoteTaker(server).connect()
                    for _ in range(5):
                        taker.send_note()
                    await taker.wait_acks(5)
                    replies = await asyncio.to_thread(
                        pool.connect, HOST, server.port, server.viewer_path(), profile.viewers
                    )
                    viewers = sum(r["connected"] for r in replies)
                    log(f"{viewers} viewers connected")
                    await asyncio.sleep(2.0)  # sources connect, first polls find nothing

                    # Windows without and with ingest alternate, so that the load of whatever
                    # else runs on the machine falls on both alike.
                    await asyncio.to_thread(pool.all, "reset")
                    cpu0 = server.cpu()
                    started = time.monotonic()
                    machine0, me0 = machine_busy_seconds(), cpu_seconds(os.getpid())
                    workers0 = sum(r["cpu"] for r in await asyncio.to_thread(pool.all, "cpu"))
                    base_sent: list[int] = []
                    note_sent: list[int] = []
                    produced = 0
                    per_window = max(1, round(profile.post_rate * profile.window))
                    while produced < profile.posts:
                        base_sent += await notes_for(taker, profile.window, profile.note_rate)
                        count = min(per_window, profile.posts - produced)
                        producer = asyncio.create_task(produce(fakes, produced, count, profile.post_rate))
                        note_sent += await notes_for(taker, count / profile.post_rate, profile.note_rate)
                        await producer
                        produced += count
                        await asyncio.sleep(profile.settle)
                    base_sent += await notes_for(taker, profile.window, profile.note_rate)
                    # Wait for the backlog: every stamped post at every viewer (or a deadline).
                    deadline = time.monotonic() + 60
                    while True:
                        collected = await asyncio.to_thread(pool.all, "collect")
                        got = {t for c in collected for t in c["notes"]}
                        stamped_posts = len(set(fakes.stamps) & got)
                        if stamped_posts >= profile.posts or time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.5)
                    collected = await collect_until(pool, sorted(base_sent + note_sent), viewers, 15)
                    cpu1 = server.cpu()
                    wall = time.monotonic() - started
                    machine1, me1 = machine_busy_seconds(), cpu_seconds(os.getpid())
                    workers = sum(c["cpu"] for c in collected) - workers0
                    others = max(0.0, (machine1 - machine0) - (cpu1 - cpu0) - workers - (me1 - me0)) / wall
                    base_ms, base_ok, _ = latencies(collected, base_sent, viewers)
                    note_ms, note_ok, _ = latencies(collected, note_sent, viewers)
                    log(
                        f"notes without ingest: {base_ok}/{len(base_sent)} complete, p50 {percentile(base_ms, 50):.1f} ms, "
                        f"p99 {percentile(base_ms, 99):.1f} ms"
                    )
                    post_ms, post_ok, last_ns = latencies(collected, fakes.stamps, viewers)
                    first_stamp = min(fakes.stamps) if fakes.stamps else 0
                    span = (last_ns - first_stamp) / 1e9 if last_ns else float("nan")
                    stored = stamped_posts
                    log(
                        f"notes during ingest: {note_ok}/{len(note_sent)} complete, p50 {percentile(note_ms, 50):.1f} ms, "
                        f"p99 {percentile(note_ms, 99):.1f} ms"
                    )
                    log(
                        f"posts: {stored}/{profile.posts} reached viewers ({post_ok} reached all {viewers}); "
                        f"{stored / span:,.0f} posts stored/s over {span:.1f} s (offered {profile.post_rate:.0f}/s); "
                        f"fake response -> every viewer p50 {percentile(post_ms, 50):.1f} ms, "
                        f"p99 {percentile(post_ms, 99):.1f} ms"
                    )
                    log(
                        f"CPU over the run, in cores: server {(cpu1 - cpu0) / wall:.2f}, viewer load generator "
                        f"{workers / wall:.2f}, fakes and note-taker {(me1 - me0) / wall:.2f}, "
                        f"other processes on the machine {others:.2f} (of {os.cpu_count()})"
                    )
                    taker.close()
                    b99, n99 = percentile(base_ms, 99), percentile(note_ms, 99)
                    added = 100 * (n99 - b99) / b99 if b99 else float("nan")
                    verdict = "met" if added < 10 else "NOT met"
                    log(f"note p99 added by ingest: {added:+.1f}% (target < 10%: {verdict})")
        finally:
            pool.close()
    table = [
        "# Feed ingest benchmark (bench/feeds.py)",
        "",
        f"{profile.viewers} viewers, {profile.posts} posts offered at {profile.post_rate:.0f}/s "
        f"(X {SHARES[0][1]:.0%}, Mastodon {SHARES[1][1]:.0%}, Bluesky {SHARES[2][1]:.0%}), notes at {profile.note_rate}/s; "
        f"{profile.window:.0f} s windows with and without ingest alternating.",
        "",
        *[f"- {line}" for line in lines],
        "",
    ]
    return "\n".join(table)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.feeds", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run in under a minute")
    p.add_argument("--viewers", type=int)
    p.add_argument("--posts", type=int)
    p.add_argument("--post-rate", type=float)
    args = p.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.viewers:
        profile.viewers = args.viewers
    if args.posts:
        profile.posts = args.posts
    if args.post_rate:
        profile.post_rate = args.post_rate
    raise_fd_limit()
    report = asyncio.run(main_async(profile))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "feeds-latest.md").write_text(report)
    print(f"\nwritten to {RESULTS / 'feeds-latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Resume is paced by the viewer (docs/protocol.md, "Connecting and resuming"): a viewer that
reads at full speed resumes from anywhere inside `streams.replay_window` in one connection, from
the in-memory ring as from storage, gap-free and without duplicates, over a real uvicorn on
loopback. A stalled viewer is still evicted (tests/test_fastpath.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from liveblog.capture.notes import Author
from liveblog.services import Services
from liveblog.web.wsproto import FastWebSocketProtocol
from tests.conftest import eventually, seeded_server
from tests.test_fastpath import raw_viewer
from tests.wsclient import connect, recv_type

# A realistic note: a few sentences typed during a talk (about 600 characters, ~1.5 KiB as a
# change with its rendered HTML). 1,200 of them are some 1.8 MB: seven times the 256 KiB a
# viewer may have unsent.
NOTE = (
    "The speaker walks through how the team moved its build from a single shared runner to "
    "per-branch sandboxes, and why that cut flaky failures by two thirds. Key numbers: median "
    "build 11 min -> 4 min, p95 31 min -> 9 min. The cost went up 20% but the on-call load "
    "dropped sharply. Questions from the floor about caching: they key the cache by lockfile "
    "hash and compiler version, and evict by age, not size. Slides will be posted after the "
    "session; the repository with the scripts is public. Next: a demo of the dashboard they "
    "use to spot regressions, with alerts on the 95th percentile rather than the mean. #build"
)
NOTES = 1200


async def read_replay(url: str) -> tuple[list[int], int | None]:
    """Connect, read as fast as possible until `synced`; the seqs of the changes, and the close
    code if the server closed the connection instead."""
    seqs: list[int] = []
    async with await connect(url, max_size=None) as ws:
        try:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if message["type"] == "change":
                    seqs.append(message["seq"])
                elif message["type"] == "synced":
                    return seqs, None
        except ConnectionClosed:  # closed before synced
            return seqs, ws.close_code


# Notes sent at once by fill(): the writer commits what arrives together in one transaction, as
# it does for many note-takers, instead of one fsync per note (6 s -> 1 s for the 1,200).
FILL_BATCH = 100


async def fill(services: Services, session_id: str) -> int:
    """Commit NOTES realistic notes through capture, FILL_BATCH at a time; the new head."""
    for start in range(0, NOTES, FILL_BATCH):
        messages = [
            {"type": "note.create", "client_id": f"n{i}", "body": f"{i}: {NOTE}"}
            for i in range(start, min(start + FILL_BATCH, NOTES))
        ]
        await asyncio.gather(*(services.notes.handle(session_id, Author("Ada", "x"), m) for m in messages))
    head = services.hub.head(session_id)
    assert head is not None
    return head


async def test_a_fast_reader_resumes_far_behind_in_one_connection_from_the_ring_and_from_storage(
    tmp_path: Path,
) -> None:
    # The ring holds every change since the first viewer joined; replay_window the default 5000.
    async with seeded_server(tmp_path, streams={"ring_size": 2048}) as (live, s):
        services = live.services
        url = f"{live.ws_url}/ws/v1/sessions/{s.session_id}"
        async with await connect(url, max_size=None) as watcher:  # keeps the channel and its ring
            joined = (await recv_type(watcher, "synced"))["seq"]
            head = await fill(services, s.session_id)
            assert head >= joined + NOTES
            assert services.hub.channels[s.session_id].ring_covers(joined)  # served from the ring
            for since in (joined, joined + 100, 0):  # ring, ring, storage (older than the ring)
                for attempt in range(3):
                    seqs, closed = await read_replay(f"{url}?since={since}")
                    assert closed is None, (
                        f"resume from {since} (try {attempt + 1}) closed with {closed} after {len(seqs)} changes"
                    )
                    assert seqs == list(range(since + 1, head + 1))


async def test_a_viewer_that_stops_reading_during_a_ring_resume_is_still_evicted(tmp_path: Path) -> None:
    async with seeded_server(tmp_path, streams={"ring_size": 2048, "stall_seconds": 2}) as (live, s):
        services = live.services
        port = int(live.url.rsplit(":", 1)[1])
        path = f"/ws/v1/sessions/{s.session_id}"
        # The watcher takes in whatever comes (max_queue=None): a client whose queue is full no
        # longer reads, so it would not see the server's close frame and its close would wait
        # for websockets' 10 s close timeout.
        async with await connect(f"{live.ws_url}{path}", max_size=None, max_queue=None) as watcher:
            joined = (await recv_type(watcher, "synced"))["seq"]
            await fill(services, s.session_id)
            channel = services.hub.channels[s.session_id]
            before = FastWebSocketProtocol.stalled_total
            stalled = await asyncio.to_thread(raw_viewer, port, f"{path}?since={joined}")
            try:
                await eventually(lambda: len(channel.catching) == 1, what="the paced resume to start")
                # Evicted by its unanswered ping, within stall_seconds (+ slack), and its replay
                # ends with it: nothing is left waiting on it.
                await eventually(
                    lambda: not channel.catching, timeout=6, what="the stalled viewer to be evicted"
                )
                assert FastWebSocketProtocol.stalled_total == before + 1
            finally:
                stalled.close()

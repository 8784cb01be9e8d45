"""Memory held for stalled viewers is given back once they are evicted (liveblog/web/memory.py):
a real uvicorn on loopback in this process, viewers that stop reading while notes flow, and the
process's RSS before, at the peak and after."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from pathlib import Path

import pytest

from liveblog.web.memory import RELEASER
from tests.conftest import eventually, seeded_server
from tests.test_fastpath import raw_viewer
from tests.wsclient import connect, recv_type, send

STALLED = 120
NOTE = "A pasted abstract, long enough to fill buffers: " + "words of a talk, " * 180


def rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not RELEASER.available, reason="malloc_trim is glibc's")
async def test_the_buffers_of_evicted_viewers_are_given_back_to_the_system(tmp_path: Path) -> None:
    stalled: list[socket.socket] = []
    try:
        async with seeded_server(tmp_path, streams={"stall_seconds": 2}) as (live, s):
            services = live.services
            port = int(live.url.rsplit(":", 1)[1])
            path = f"/ws/v1/sessions/{s.session_id}"
            async with await connect(
                f"{live.ws_url}{path}/capture", token=s.token, max_size=None
            ) as note_taker:
                await recv_type(note_taker, "synced")
                acks = 0

                async def read_acks() -> None:  # the note-taker reads everything it is sent
                    nonlocal acks
                    async for raw in note_taker:
                        acks += '"type":"ack"' in str(raw)

                reader = asyncio.create_task(read_acks())
                sent = 0

                async def post() -> None:
                    nonlocal sent
                    sent += 1
                    await send(
                        note_taker, {"type": "note.create", "client_id": f"n{sent}", "body": f"{sent} {NOTE}"}
                    )

                for _ in range(30):  # warm: the ring, the caches, the write path
                    await post()
                await eventually(lambda: acks == sent, what="the warm-up notes")
                # In a long test run this process's heap holds much memory freed by earlier tests,
                # which the viewers' buffers would reuse without RSS moving: give it back first.
                gc.collect()
                RELEASER.trim_now()
                before = rss()
                for _ in range(STALLED):
                    stalled.append(await asyncio.to_thread(raw_viewer, port, path))
                channel = services.hub.channels[s.session_id]
                await eventually(lambda: len(channel.live) == STALLED + 1, what="the stalled viewers to join")
                peak = rss()

                async def post_until_all_evicted() -> bool:
                    nonlocal peak
                    await post()
                    peak = max(peak, rss())
                    return len(channel.live) == 1

                await eventually(post_until_all_evicted, timeout=15, what="the stalled viewers to be evicted")
                # Each held up to streams.viewer_buffer_bytes (256 KiB): some 30 MiB in all.
                assert peak - before > STALLED * 128 * 1024
                # Their sockets are reset (5 s after a 4408 they cannot read), their buffers freed,
                # and the freed memory returned: RSS falls back most of the way.
                await eventually(
                    lambda: rss() - before < 0.3 * (peak - before),
                    timeout=15,
                    what=f"RSS to fall most of the way back from its peak (+{(peak - before) >> 20} MiB)",
                )
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    finally:
        for sock in stalled:
            sock.close()

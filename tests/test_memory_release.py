"""Memory held for stalled viewers is given back once they are evicted (liveblog/web/memory.py):
a real uvicorn on loopback in this process, viewers that stop reading while notes flow, and the
process's RSS before, at the peak and after. And a closed connection is freed when it closes, not
when the cyclic collector next gets round to it (liveblog/web/wsproto.py, connection_lost)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import struct
import weakref
from pathlib import Path

import pytest

from liveblog.web.memory import RELEASER
from liveblog.web.wsproto import FastWebSocketProtocol
from tests.conftest import eventually, seeded_server
from tests.test_fastpath import raw_viewer
from tests.wsclient import connect, raw_handshake, recv_type, send

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


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_closed_connection_is_freed_at_once_not_by_the_cycle_collector(
    tmp_path: Path, how: str
) -> None:
    # The soak (docs/performance.md, "Soak: memory under steady use") grew because every closed
    # connection's asyncio transport waited in the collector's oldest generation: Python 3.11's
    # selector transport refers to itself (a bound method kept in `_read_ready_cb`). With the
    # collector off, a closed viewer's transport must be freed by reference counts.
    async with seeded_server(tmp_path) as (live, s):
        port = int(live.url.rsplit(":", 1)[1])
        path = f"/ws/v1/sessions/{s.session_id}"
        viewer = await asyncio.to_thread(raw_handshake, port, path, "liveblog.v1")
        try:
            channel = await eventually(
                lambda: live.services.hub.channels.get(s.session_id), what="the channel"
            )
            await eventually(lambda: len(channel.live) == 1, what="the viewer to join")
            (outlet,) = channel.live
            assert isinstance(outlet, FastWebSocketProtocol)
            # (The protocol holds its transport: a protocol kept alive would keep it too.)
            transport = weakref.ref(outlet.transport)
            del outlet
            gc.collect()
            gc.disable()
            try:
                if how == "reset":  # a phone losing its network: RST, no close frame
                    viewer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:  # a page closed: a close frame, then the socket
                    viewer.sendall(b"\x88\x82" + os.urandom(4) + b"\x03\xe8")
                viewer.close()
                await eventually(lambda: not channel.live, what="the viewer to leave")
                await eventually(
                    lambda: transport() is None,
                    what="the closed connection's transport to be freed without the collector",
                )
            finally:
                gc.enable()
        finally:
            viewer.close()

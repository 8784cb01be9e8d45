"""The send ring (liveblog/streams/uring.py): one system call writes a fan-out pass's frame to
many sockets. Real loopback TCP sockets and a real io_uring; where the kernel refuses io_uring
(a seccomp profile, an old kernel) these tests are skipped and fan-out writes one each, which
the rest of the suite covers (and `test_fastpath` runs with `streams.io_uring = false`)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from liveblog.services import Services
from liveblog.streams.uring import LOST, SendRing
from tests.conftest import LiveServer, Seed, eventually, make_settings, run_server, seed
from tests.wsclient import connect, recv_type, recv_until, send

_probe = SendRing.open()
if _probe is None:
    pytest.skip("this kernel or sandbox refuses io_uring", allow_module_level=True)
_probe.close()


@contextlib.contextmanager
def tcp_pairs(n: int) -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    """n connected loopback TCP pairs: (the server's non-blocking end, the client's end)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=n)
    pairs = []
    try:
        for _ in range(n):
            client = socket.create_connection(listener.getsockname(), timeout=10)
            server, _ = listener.accept()
            server.setblocking(False)
            client.settimeout(10)
            pairs.append((server, client))
        yield pairs
    finally:
        listener.close()
        for server, client in pairs:
            server.close()
            client.close()


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "closed early"
        data += chunk
    return data


@pytest.fixture
def ring() -> Iterator[SendRing]:
    ring = SendRing.open(entries=8)  # small, so that passes are chunked and the ring wraps
    assert ring is not None
    yield ring
    ring.close()


def test_every_socket_gets_the_same_bytes_in_order_with_one_call_per_ring_full(ring: SendRing) -> None:
    with tcp_pairs(20) as pairs:
        fds = [server.fileno() for server, _ in pairs]
        for n in range(5):  # 100 entries through a ring of 8: chunks, and wrapping past its end
            calls = ring.calls
            assert ring.send(fds, f"frame {n};".encode()) is None  # every socket took all of it
            assert ring.calls - calls == 3  # 8 + 8 + 4
        for _, client in pairs:
            assert read_exactly(client, 5 * len(b"frame 0;")) == b"".join(
                f"frame {n};".encode() for n in range(5)
            )
        assert ring.sends == 100


def test_short_writes_and_errors_are_each_sockets_own(ring: SendRing) -> None:
    with tcp_pairs(3) as pairs:
        (full, _), (reset, reset_peer), (fine, fine_peer) = pairs
        full.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        reset_peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        reset_peer.close()  # an RST: the server's end then fails to send
        big = b"x" * 1_000_000
        fds = [full.fileno(), reset.fileno(), fine.fileno()]
        results = ring.send(fds, big)
        assert results is not None
        took_part, failed, _ = results
        assert 0 < took_part < len(big)  # as a short write
        assert failed in (-errno.ECONNRESET, -errno.EPIPE)
        # The peer never reads: once its receive buffer is full too, nothing more fits.
        outcomes = [ring.send(fds[:1], big) for _ in range(50)]
        assert [-errno.EAGAIN] in outcomes  # would block: nothing taken, nothing lost
        fine_peer.close()


def test_a_kernel_that_refuses_the_ring_is_a_reason_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="liveblog.streams.uring"):
        assert SendRing.open(entries=0) is None  # io_uring_setup refuses 0 entries (EINVAL)
    assert "one write per viewer (io_uring_setup: Invalid argument)" in caplog.text


def test_a_ring_that_fails_reports_unknown_outcomes_gives_up_and_keeps_the_buffer(
    ring: SendRing, caplog: pytest.LogCaptureFixture
) -> None:
    with tcp_pairs(12) as pairs, open(os.devnull, "rb") as not_a_ring:
        fds = [server.fileno() for server, _ in pairs]
        real, ring.fd = ring.fd, not_a_ring.fileno()  # the kernel now refuses every enter
        try:
            data = b"lost?"
            with caplog.at_level(logging.ERROR, logger="liveblog.streams.uring"):
                results = ring.send(fds, data)
        finally:
            ring.fd = real
        # The first 8 were handed to the ring: what became of them is unknown. The other 4
        # were never submitted: nothing of them was sent, and the caller writes them itself.
        assert results == [LOST] * 8 + [0] * 4
        assert ring.broken and ring.pinned == [data]
        assert "io_uring given up" in caplog.text
        with pytest.raises(RuntimeError):
            ring.send(fds, b"more")


# -- through the hub and a real server -------------------------------------------------------------


@contextlib.asynccontextmanager
async def live_server(tmp_path: Path) -> AsyncIterator[tuple[Services, LiveServer, Seed]]:
    settings = make_settings(tmp_path)
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        async with run_server(settings, services) as live:
            yield services, live, s
    finally:
        await services.close()


def change_seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [m["seq"] for m in messages if m.get("type") == "change"]


async def test_a_pass_to_many_viewers_is_one_system_call_and_each_gets_each_note_once(tmp_path: Path) -> None:
    async with live_server(tmp_path) as (services, live, s):
        ring = services.hub.send_ring
        assert ring is not None
        url = f"{live.ws_url}/ws/v1/sessions/{s.session_id}"
        viewers = await asyncio.gather(*(connect(url) for _ in range(40)))
        start = [await recv_type(v, "synced") for v in viewers][0]["seq"]
        async with await connect(url + "/capture", token=s.token) as note_taker:
            await recv_type(note_taker, "synced")
            calls, sends = ring.calls, ring.sends
            for i in range(5):
                await send(note_taker, {"type": "note.create", "client_id": f"c{i}", "body": f"note {i}"})
                await recv_type(note_taker, "ack")
            end = start + 5
            for v in viewers:
                got = await recv_until(v, lambda m: m.get("type") == "change" and m["seq"] == end)
                assert change_seqs(got) == list(range(start + 1, end + 1))
            # 41 sockets (the note-taker's too) per note, in one call each: a pass may carry
            # two notes when they commit together, never more calls than notes.
            assert ring.sends - sends == 41 * (ring.calls - calls)
            assert 1 <= ring.calls - calls <= 5
        for v in viewers:
            await v.close()


async def test_when_the_ring_fails_viewers_resume_without_a_gap_and_writes_go_one_by_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with live_server(tmp_path) as (services, live, s):
        ring = services.hub.send_ring
        assert ring is not None
        url = f"{live.ws_url}/ws/v1/sessions/{s.session_id}"
        viewers = await asyncio.gather(*(connect(url) for _ in range(3)))
        start = [await recv_type(v, "synced") for v in viewers][0]["seq"]
        note_taker = await connect(url + "/capture", token=s.token)
        await recv_type(note_taker, "synced")
        with open(os.devnull, "rb") as not_a_ring:
            real, ring.fd = ring.fd, not_a_ring.fileno()
            try:
                await send(note_taker, {"type": "note.create", "client_id": "c1", "body": "first"})
                await eventually(lambda: ring.broken, what="the ring to be given up")
            finally:
                ring.fd = real
        # Whatever reached them, the viewers were cut, and the note-taker (who follows the
        # stream too) before its ack: nobody goes on with a frame that may be missing.
        for ws in (*viewers, note_taker):
            await asyncio.wait_for(ws.wait_closed(), 10)
        async with await connect(url + "/capture", token=s.token) as note_taker:
            await recv_type(note_taker, "synced")
            # The note-taker sends again what it was not told is saved: saved once.
            await send(note_taker, {"type": "note.create", "client_id": "c1", "body": "first"})
            await recv_type(note_taker, "ack")
            resumed = await asyncio.gather(*(connect(f"{url}?since={start}") for _ in range(3)))
            await send(note_taker, {"type": "note.create", "client_id": "c2", "body": "second"})
            await recv_type(note_taker, "ack")
            for v in resumed:
                got = await recv_until(v, lambda m: m.get("type") == "change" and m["seq"] == start + 2)
                assert change_seqs(got) == [start + 1, start + 2]
                assert [m["item"]["body"] for m in got if m.get("type") == "change"] == ["first", "second"]
                await v.close()
        async with live.client() as http:
            health = (await http.get("/healthz")).json()
        assert health["components"]["hub"]["fanout_writes"] == "one per viewer"
        assert "io_uring given up" in caplog.text

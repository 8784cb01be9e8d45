"""The owned viewer fast path (liveblog/web/wsproto.py) under a real uvicorn on loopback: found
through the scope extension even behind middleware, named at start-up, and bounding a viewer
that stops reading (kernel send buffer, eviction within streams.stall_seconds)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from liveblog.services import Services
from liveblog.streams.hub import Channel
from liveblog.streams.protocol import CloseCode, ws_close_frame
from liveblog.web.wsproto import SEND_BUFFER_BYTES, FastWebSocketProtocol
from tests.conftest import (
    LiveServer,
    Seed,
    eventually,
    free_port,
    listening,
    make_settings,
    query,
    run_server,
    seed,
    seeded_server,
)
from tests.wsclient import connect, masked_frame, raw_handshake, recv_type, send


def send_wrapping_middleware(app: Any) -> Any:
    """What tracing and error-reporting middleware do: wrap `send` (and `receive`)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def traced_send(message: dict[str, Any]) -> None:
            await send(message)

        async def traced_receive() -> dict[str, Any]:
            return await receive()  # type: ignore[no-any-return]

        await app(scope, traced_receive, traced_send)

    return wrapped


async def test_the_fast_path_survives_middleware_that_wraps_send(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        async with run_server(settings, services, wrap=send_wrapping_middleware) as live:
            url = f"{live.ws_url}/ws/v1/sessions/{s.session_id}"
            async with (
                await connect(url) as viewer,
                await connect(url + "/capture", token=s.token) as note_taker,
            ):
                await recv_type(viewer, "synced")
                await recv_type(note_taker, "synced")
                outlets = list(services.hub.channels[s.session_id].live)
                assert len(outlets) == 2 and all(isinstance(o, FastWebSocketProtocol) for o in outlets)
                await send(
                    note_taker, {"type": "note.create", "client_id": "m1", "body": "through middleware"}
                )
                assert (await recv_type(note_taker, "ack"))["client_id"] == "m1"
                change = await recv_type(viewer, "change")
                assert change["item"]["body"] == "through middleware"
    finally:
        await services.close()


def test_serve_names_the_fast_viewer_path_at_start_up(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liveblog",
            "--db",
            str(tmp_path / "s.sqlite3"),
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LIVEBLOG_SECRET_KEY": "test"},
    )
    try:
        asyncio.run(listening(proc, f"http://127.0.0.1:{port}"))
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=15)
    text = output.decode()
    assert "viewer websockets: FAST path (liveblog.web.wsproto.FastWebSocketProtocol" in text
    assert "PORTABLE" not in text


def raw_viewer(port: int, path: str) -> socket.socket:
    """A real client socket that completes the handshake and then never reads again."""
    return raw_handshake(port, path, rcvbuf=4096)  # a small window fills fast


@dataclass
class RawViewer:
    """A live server with one raw viewer joined (see joined_raw_viewer)."""

    services: Services
    live: LiveServer
    seed: Seed
    path: str
    channel: Channel
    proto: FastWebSocketProtocol  # the viewer's connection on the server, its outlet
    sock: socket.socket  # the viewer's end, read only as the test says


@contextlib.asynccontextmanager
async def joined_raw_viewer(
    tmp_path: Path,
    stall_seconds: float,
    open_socket: Callable[[int, str], socket.socket] = raw_viewer,
    io_uring: bool = True,
) -> AsyncIterator[RawViewer]:
    settings = make_settings(tmp_path, streams={"stall_seconds": stall_seconds, "io_uring": io_uring})
    services = Services.build(settings)
    await services.open()
    try:
        s: Seed = await seed(services)
        async with run_server(settings, services) as live:
            port = int(live.url.rsplit(":", 1)[1])
            path = f"/ws/v1/sessions/{s.session_id}"
            channel_ready = eventually(lambda: s.session_id in services.hub.channels, what="the channel")
            sock = await asyncio.to_thread(open_socket, port, path)
            await channel_ready
            channel = services.hub.channels[s.session_id]
            await eventually(lambda: len(channel.live) == 1, what="the raw viewer to join")
            (proto,) = channel.live
            assert isinstance(proto, FastWebSocketProtocol)
            try:
                yield RawViewer(services, live, s, path, channel, proto, sock)
            finally:
                sock.close()
    finally:
        await services.close()


async def post_note(note_taker: Any, n: int, body: str) -> None:
    """The note-taker posts note n and waits for its ack (so it is committed and fanned out)."""
    await send(note_taker, {"type": "note.create", "client_id": f"n{n}", "body": body})
    await recv_type(note_taker, "ack")


async def stalled_metric(live: LiveServer) -> int:
    async with live.client() as http:
        text = (await http.get("/metrics")).text
    (value,) = [
        line.split()[1] for line in text.splitlines() if line.startswith("liveblog_stalled_websockets_total ")
    ]
    return int(value)


# Fan-out writes through the send ring where the kernel has io_uring (streams/uring.py), and one
# write per viewer otherwise: both must bound and order a viewer's bytes the same way.
WRITES = [pytest.param(True, id="send-ring"), pytest.param(False, id="one-write-each")]


def writes_used(raw: RawViewer, io_uring: bool) -> int:
    """Sockets the send ring wrote so far (0 without one); the ring is there when it should be."""
    ring = raw.services.hub.send_ring
    if not io_uring:
        assert ring is None
    return ring.sends if ring is not None else 0


@pytest.mark.parametrize("io_uring", WRITES)
async def test_a_viewer_that_stops_reading_is_evicted_and_bounded_in_the_kernel(
    tmp_path: Path, io_uring: bool
) -> None:
    async with joined_raw_viewer(tmp_path, stall_seconds=2, io_uring=io_uring) as raw:
        live, s, path, channel = raw.live, raw.seed, raw.path, raw.channel
        stalled, stalled_outlet, settings = raw.sock, raw.proto, raw.services.settings
        server_sock = stalled_outlet.transport.get_extra_info("socket")
        # Linux doubles the value asked for; autotuning would let it grow to megabytes.
        assert server_sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * SEND_BUFFER_BYTES
        before = FastWebSocketProtocol.stalled_total
        scraped_before = await stalled_metric(live)
        async with (
            await connect(f"{live.ws_url}{path}") as healthy,
            await connect(f"{live.ws_url}{path}/capture", token=s.token) as note_taker,
        ):
            await recv_type(healthy, "synced")
            await recv_type(note_taker, "synced")
            healthy_seen: list[str] = []

            async def read_healthy() -> None:  # a healthy viewer reads all the time
                async for message in healthy:
                    healthy_seen.append(str(message))

            reader = asyncio.create_task(read_healthy())
            sent = 0

            async def post_until_evicted() -> bool:
                nonlocal sent
                sent += 1
                await post_note(note_taker, sent, "a note " * 40)
                return stalled_outlet not in channel.live

            # Notes keep flowing (as at 10 notes/s) far below the byte limit: the stall is
            # found by its unanswered ping, within stall_seconds (+ the test's slack).
            await eventually(post_until_evicted, timeout=10, what="the stalled viewer to be evicted")
            assert FastWebSocketProtocol.stalled_total == before + 1
            assert await stalled_metric(live) == scraped_before + 1  # operators see it in /metrics
            assert stalled_outlet.buffered < settings.streams.viewer_buffer_bytes
            # The others never noticed.
            assert len(channel.live) == 2
            await eventually(
                lambda: sum('"type":"change"' in m for m in healthy_seen) >= sent, what="every note"
            )
            reader.cancel()
        # The peer had stopped reading, so it cannot see the 4408 frame: its socket is reset.
        stalled.settimeout(10)
        data = b""
        try:
            while chunk := await asyncio.to_thread(stalled.recv, 65536):
                data += chunk
            reset = False
        except ConnectionResetError:
            reset = True
        assert reset or data.endswith(
            ws_close_frame(CloseCode.TOO_SLOW, "too slow: resume from your last seq")
        )


def server_frames(data: bytes) -> list[bytes]:
    """The payloads of the complete unmasked server frames in `data`."""
    out = []
    while len(data) >= 2:
        n, at = data[1] & 0x7F, 2
        if n == 126:
            n, at = int.from_bytes(data[2:4], "big"), 4
        elif n == 127:
            n, at = int.from_bytes(data[2:10], "big"), 10
        if len(data) < at + n:
            break
        out.append(data[at : at + n])
        data = data[at + n :]
    return out


@pytest.mark.parametrize("io_uring", WRITES)
async def test_frames_go_straight_to_the_socket_and_in_order_behind_what_it_could_not_take(
    tmp_path: Path, io_uring: bool
) -> None:
    """While the transport holds nothing, a viewer's frames are written straight to its socket
    (FastWebSocketProtocol.write, or the hub's send ring); once the kernel takes only part of
    one, the rest and every later frame wait in the transport, in order, until it is empty again."""
    async with joined_raw_viewer(tmp_path, stall_seconds=60, io_uring=io_uring) as raw:
        ring_sends = writes_used(raw, io_uring)
        live, s, path, channel, proto, viewer = raw.live, raw.seed, raw.path, raw.channel, raw.proto, raw.sock
        assert proto.direct and proto.buffered == 0  # its hello went straight to the socket
        async with await connect(f"{live.ws_url}{path}/capture", token=s.token) as note_taker:
            await recv_type(note_taker, "synced")
            sent = 0

            async def post() -> None:
                nonlocal sent
                sent += 1
                await post_note(note_taker, sent, f"note {sent} " + "x" * 3000)

            async def post_until_the_kernel_is_full() -> bool:
                await post()
                return proto.buffered > 0

            # The viewer reads nothing: its window and the kernel's send buffer fill, and
            # then a frame is taken only in part.
            await eventually(post_until_the_kernel_is_full, what="a partial write")
            assert not proto.direct
            for _ in range(5):  # these wait behind it in the transport
                await post()
            assert proto.buffered > 0 and proto in channel.live

            def read_all() -> list[bytes]:
                viewer.settimeout(10)
                data, frames = b"", []
                while sum(b'"type":"change"' in f for f in frames) < sent:
                    chunk = viewer.recv(65536)
                    assert chunk, "closed"
                    data += chunk
                    frames = server_frames(data)
                return frames

            frames = await asyncio.to_thread(read_all)
            bodies = [f for f in frames if b'"type":"change"' in f]
            assert [f"note {i} ".encode() in b for i, b in enumerate(bodies, 1)] == [True] * sent
            await eventually(lambda: proto.buffered == 0, what="the transport to empty")
            await post()  # and the next frame goes straight to the socket again
            assert proto.direct
            if raw.services.hub.send_ring is not None:  # through the ring, partial writes too
                assert writes_used(raw, io_uring) > ring_sends


async def test_a_busy_viewer_that_answers_is_pinged_every_half_budget_and_kept(tmp_path: Path) -> None:
    """One ping timer per connection, never moved by a pong (FastWebSocketProtocol._ping): a
    viewer that is sent data and answers every ping is pinged again each stall_seconds / 2, and
    stays."""
    async with joined_raw_viewer(tmp_path, stall_seconds=1, open_socket=raw_handshake) as raw:
        live, s, path, channel, proto, viewer = raw.live, raw.seed, raw.path, raw.channel, raw.proto, raw.sock
        pings: list[bytes] = []
        reading = True

        def answer() -> None:  # reads all the time and answers each ping with its pong
            viewer.settimeout(0.2)
            data = b""
            while reading:
                try:
                    chunk = viewer.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                data += chunk
                while len(data) >= 2:  # frames of notes and pings: under 64 KiB each
                    n, at = data[1] & 0x7F, 2
                    if n == 126:
                        if len(data) < 4:
                            break
                        n, at = int.from_bytes(data[2:4], "big"), 4
                    if len(data) < at + n:
                        break
                    opcode, payload, data = data[0] & 0x0F, data[at : at + n], data[at + n :]
                    if opcode == 0x9:
                        pings.append(payload)
                        mask = os.urandom(4)
                        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                        viewer.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)

        reader = asyncio.create_task(asyncio.to_thread(answer))
        async with await connect(f"{live.ws_url}{path}/capture", token=s.token) as note_taker:
            await recv_type(note_taker, "synced")
            sent = 0

            async def post_until_pinged_four_times() -> bool:
                nonlocal sent
                sent += 1
                await post_note(note_taker, sent, "a note")
                return len(pings) >= 4

            await eventually(post_until_pinged_four_times, timeout=15, what="four pings")
        assert proto in channel.live and not proto.closed
        assert len(set(pings)) == len(pings)  # a new payload each time
        reading = False
        await reader


async def test_an_ack_that_cannot_be_written_closes_the_capture_socket(tmp_path: Path) -> None:
    # A note-taker that has stopped reading: its first big change fills the buffer, so the ack
    # behind it is refused. The socket must close (4408), so the client resends; never stay
    # open without the ack.
    settings = make_settings(tmp_path, streams={"viewer_buffer_bytes": 1000})
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        async with run_server(settings, services) as live:
            port = int(live.url.rsplit(":", 1)[1])
            path = f"/ws/v1/sessions/{s.session_id}/capture"

            def open_note_taker() -> socket.socket:
                return raw_handshake(port, path, f"liveblog.v1, liveblog.token.{s.token}", rcvbuf=4096)

            sock = await asyncio.to_thread(open_note_taker)
            channel_ready = eventually(lambda: s.session_id in services.hub.channels, what="the channel")
            await channel_ready
            channel = services.hub.channels[s.session_id]
            await eventually(lambda: len(channel.live) == 1, what="the note-taker to join")
            (outlet,) = channel.live
            note = '{"type":"note.create","client_id":"big","body":"' + "x" * 60000 + '"}'
            sock.sendall(masked_frame(0x81, note.encode()))
            await eventually(lambda: outlet.closed, what="the capture socket to close")
            stored = await query(services.db, "SELECT id FROM items WHERE client_id = 'big'")
            assert len(stored) == 1  # stored, not acknowledged: the client resends, and dedupe answers
            # What the socket delivers ends with 4408, if read in time (here, at once).
            sock.settimeout(10)
            data = b""
            want = ws_close_frame(CloseCode.TOO_SLOW, "too slow: resume from your last seq")
            with contextlib.suppress(ConnectionResetError):
                while want not in data and (chunk := await asyncio.to_thread(sock.recv, 65536)):
                    data += chunk
            assert want in data and b'"type":"ack"' not in data
            sock.close()
    finally:
        await services.close()


def http_answer(port: int, request: str) -> bytes:
    """Send a raw request and read the response's head (and a short body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


async def test_handshakes_are_answered_as_the_rfc_says_on_the_plain_path_and_the_general_one(
    tmp_path: Path,
) -> None:
    async with seeded_server(tmp_path) as (live, s):
        port = int(live.ws_url.rsplit(":", 1)[1])
        path = f"/ws/v1/sessions/{s.session_id}"

        def request(*headers: str) -> bytes:
            lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *headers, "", ""]
            return http_answer(port, "\r\n".join(lines))

        key = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example: its accept is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
        plain = ["Upgrade: websocket", "Connection: keep-alive, Upgrade", f"Sec-WebSocket-Key: {key}"]
        ok = await asyncio.to_thread(
            request, *plain, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: x, liveblog.v1"
        )
        head = ok.split(b"\r\n\r\n")[0].decode()
        assert head.startswith("HTTP/1.1 101 "), head
        assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head.split("\r\n")
        assert "Sec-WebSocket-Protocol: liveblog.v1" in head.split("\r\n")
        old = await asyncio.to_thread(request, *plain, "Sec-WebSocket-Version: 8")
        assert old.startswith(b"HTTP/1.1 400 "), old  # websockets' answer, naming the header
        assert b"invalid Sec-WebSocket-Version header: 8" in old
        short_key = await asyncio.to_thread(
            request,
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: c2hvcnQ=",
            "Sec-WebSocket-Version: 13",
        )
        assert short_key.startswith(b"HTTP/1.1 400 "), short_key
        foreign = await asyncio.to_thread(
            request, *plain, "Sec-WebSocket-Version: 13", "Origin: https://elsewhere.example"
        )
        assert foreign.startswith(b"HTTP/1.1 403 "), foreign  # refused by the app before accepting


async def test_a_joined_viewer_holds_no_task_and_is_still_answered_and_counted_out(tmp_path: Path) -> None:
    async with seeded_server(tmp_path) as (live, s):
        services = live.services
        url = f"{live.ws_url}/ws/v1/sessions/{s.session_id}"
        viewers = [await connect(url) for _ in range(3)]
        for viewer in viewers:
            await recv_type(viewer, "synced")

        def serving_tasks() -> list[asyncio.Task[Any]]:
            return [t for t in asyncio.all_tasks() if "_run_asgi" in repr(t.get_coro())]

        # Handed over to the protocol (FastSend.hand_over): no task, no coroutine frames each.
        await eventually(lambda: not serving_tasks(), what="the viewers' tasks to end")
        assert services.hub.viewer_sockets == 3
        await send(viewers[0], {"type": "ping"})
        assert (await recv_type(viewers[0], "pong"))["type"] == "pong"
        await send(viewers[0], {"type": "note.create", "body": "no"})
        assert (await recv_type(viewers[0], "error"))["code"] == "unknown_type"
        async with live.client() as http:
            r = await http.post(
                f"/api/v1/sessions/{s.session_id}/capture",
                json={"client_id": "c1", "body": "still live"},
                headers={"authorization": f"Bearer {s.token}"},
            )
            assert r.status_code == 201, r.text
        for viewer in viewers:
            assert (await recv_type(viewer, "change"))["item"]["body"] == "still live"
            await viewer.close()
        await eventually(lambda: services.hub.viewer_sockets == 0, what="every viewer counted out")
        assert not services.hub.channels[s.session_id].live


def test_serve_freezes_what_start_up_made_and_other_apps_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`liveblog serve` moves what start-up made out of the cyclic GC's sight (gc.freeze), so a
    full collection while thousands of viewers join walks only what came after; an app made
    any other way (tests: many per process) leaves the GC alone."""
    import gc

    from starlette.testclient import TestClient

    from liveblog.cli import main
    from liveblog.web import serving
    from liveblog.web.app import create_app

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "serve.sqlite3"}"\n')
    monkeypatch.setenv("LIVEBLOG_SECRET_KEY", "a test key")
    frozen: list[int] = []
    full_passes: list[int] = []

    def run(app: Any, listening: Any, **options: Any) -> bool:  # serving.serve, as far as the lifespan
        with TestClient(app):
            frozen.append(gc.get_freeze_count())
            # Full passes come as soon as objects made since start-up call for them: the
            # collector counts from what is left after the freeze, not from all that start-up
            # made (a closed connection's garbage otherwise waits for a quarter of that).
            before = gc.get_stats()[2]["collections"]
            kept = [[] for _ in range(150_000)]
            full_passes.append(gc.get_stats()[2]["collections"] - before)
            del kept
        return True

    monkeypatch.setattr(serving, "serve", run)
    gc.unfreeze()
    try:
        (tmp_path / "other").mkdir()
        with TestClient(create_app(make_settings(tmp_path / "other"))):
            assert gc.get_freeze_count() == 0
        start_up = [[] for _ in range(1_000_000)]  # what a big start-up made, frozen with it
        assert main(["--config", str(config), "serve"]) == 0
        del start_up
        assert frozen and frozen[0] > 0
        assert full_passes[0] >= 1
    finally:
        gc.unfreeze()


async def test_once_its_connection_is_lost_a_viewer_writes_nothing_to_its_old_descriptor(
    tmp_path: Path,
) -> None:
    """The straight-to-the-socket path writes to a descriptor number. Once the connection is
    lost, asyncio has closed that socket and the number can be handed to the next connection:
    a write then (a pong, a close, a frame) must go nowhere, never to whoever got the number."""
    async with joined_raw_viewer(tmp_path, stall_seconds=60) as raw:
        proto, viewer = raw.proto, raw.sock
        assert proto.direct
        old_fd = proto.fd
        ours, theirs = socket.socketpair()  # made now, so that neither gets the number
        try:
            viewer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            viewer.close()  # a reset: the server loses the connection
            # asyncio closed the socket, then told the protocol (connection_lost)
            await eventually(lambda: proto.transport._sock is None, what="the socket closed")
            os.dup2(ours.fileno(), old_fd)  # the number now names someone else's socket
            try:
                proto._write(b"not for you")
                theirs.setblocking(False)
                with pytest.raises(BlockingIOError):
                    theirs.recv(100)
            finally:
                os.close(old_fd)
        finally:
            ours.close()
            theirs.close()


def test_serve_runs_a_full_collection_every_minute_under_its_supervisor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With start-up frozen, the collector's own next full pass waits for ten collections of the
    middle generation: 25 minutes into the soak, while closed connections' garbage (transports
    are reference cycles) held pymalloc's arenas. `liveblog serve` runs one every
    FULL_PASS_SECONDS itself, as a supervised task /healthz shows."""
    import gc
    import threading

    from starlette.testclient import TestClient

    from liveblog.cli import main
    from liveblog.web import memory, serving

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "serve.sqlite3"}"\n')
    monkeypatch.setenv("LIVEBLOG_SECRET_KEY", "a test key")
    monkeypatch.setattr(memory, "FULL_PASS_SECONDS", 0.05)
    seen: dict[str, Any] = {}

    passes: list[int] = []
    three = threading.Event()

    def counted(phase: str, info: dict[str, int]) -> None:  # gc.callbacks: each collection
        if phase == "stop" and info["generation"] == 2 and seen.get("counting"):
            passes.append(1)
            if len(passes) >= 3:
                three.set()

    def run(app: Any, listening: Any, **options: Any) -> bool:  # serving.serve, as far as the lifespan
        with TestClient(app) as client:
            # The collector's own passes are off: only the server's own are counted here.
            seen["counting"] = True
            three.wait(10)
            seen["passes"] = len(passes)
            seen["task"] = client.get("/healthz").json()["tasks"].get("gc.full_pass")
        return True

    monkeypatch.setattr(serving, "serve", run)
    gc.unfreeze()
    gc.disable()
    gc.callbacks.append(counted)
    try:
        assert main(["--config", str(config), "serve"]) == 0
    finally:
        gc.callbacks.remove(counted)
        gc.enable()
        gc.unfreeze()
    assert seen["passes"] >= 3
    assert seen["task"] is not None and seen["task"]["state"] == "running"

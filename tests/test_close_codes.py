"""Close codes survive load (docs/protocol.md, "Close codes"): the close frame reaches the client
before the connection is torn down, for a message over limits.frame_bytes (1009) and on shutdown
(1012), even while the client is still sending. Each case is repeated: the bug was a race (the
socket was closed with the client's data unread, so the kernel answered with a reset and the
client saw 1006, no close frame)."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from pathlib import Path

from liveblog.services import Services
from liveblog.settings import Settings
from liveblog.streams.protocol import CloseCode
from tests.conftest import eventually, make_settings, run_server, seed, seeded_server
from tests.wsclient import masked_frame, raw_handshake, server_frames

FRAGMENT = 64 * 1024
PING = {"type": "ping"}


def close_code_in(data: bytes) -> int:
    """The code of the close frame among the server's frames; 1006 if there is none."""
    for opcode, payload, _ in server_frames(data):
        if opcode == 0x8 and len(payload) >= 2:
            return int(struct.unpack("!H", payload[:2])[0])
    return 1006


def raw_capture(port: int, path: str, token: str) -> socket.socket:
    """A plain socket through the capture socket's handshake (nothing after it is read)."""
    return raw_handshake(port, path, f"liveblog.v1, liveblog.token.{token}")


def raw_oversized_message(port: int, path: str, token: str, total: int) -> tuple[bool, int]:
    """A plain socket client, as an outside tester writes one: send a fragmented message of
    `total` bytes without reading, then read what the server sent. Whether a write failed (the
    server reset the connection while the client was still sending: an asyncio client then
    reports 1006 before it reads what was sent to it), and the close code it read."""
    sock = raw_capture(port, path, token)
    try:
        fragment = b"x" * FRAGMENT
        count = total // FRAGMENT
        reset = False
        try:
            for i in range(count):
                opcode = 0x1 if i == 0 else 0x0
                sock.sendall(masked_frame((0x80 if i == count - 1 else 0) | opcode, fragment))
        except OSError:
            reset = True
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        return reset, close_code_in(data)
    finally:
        sock.close()


async def test_an_oversized_fragmented_message_is_closed_with_1009_without_a_reset(tmp_path: Path) -> None:
    async with seeded_server(tmp_path) as (live, s):
        port = int(live.url.rsplit(":", 1)[1])
        path = f"/ws/v1/sessions/{s.session_id}/capture"
        # Far more than the kernel buffers hold: still being sent when the server has had enough.
        total = 16 * live.services.settings.limits.frame_bytes
        for _ in range(6):
            reset, code = await asyncio.to_thread(raw_oversized_message, port, path, s.token, total)
            assert (reset, code) == (False, CloseCode.MESSAGE_TOO_BIG)


class NoteTyper:
    """A plain socket note-taker that sends a message every few milliseconds, reading between
    them, until the server closes: then it answers the close frame (RFC 6455) and reads to the
    end. `reset` is whether a write or read failed (the server reset the connection: an asyncio
    client then reports 1006, whether or not the close frame had arrived)."""

    def __init__(self, port: int, path: str, token: str) -> None:
        self.sock = raw_capture(port, path, token)
        self.acked = threading.Event()
        self.reset = False
        self.code = 1006  # until a close frame is read
        self.data = b""  # received, not yet a complete frame
        while b'"type":"synced"' not in self.data:  # joined: typing starts from here
            chunk = self.sock.recv(65536)
            assert chunk, "closed before synced"
            self.data += chunk

    def run(self) -> None:
        sock = self.sock
        sock.settimeout(0.05)  # between messages, while reading
        data = self.data
        n = 0
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                if self.code == 1006:
                    n += 1
                    # A note every fifth turn (each is a durable commit: 20 typers at 4 notes/s),
                    # a ping between them: always something in flight, cheap to answer.
                    message = {
                        "type": "note.create",
                        "client_id": f"t{id(self)}-{n}",
                        "body": "in flight " * 20,
                    }
                    sock.sendall(masked_frame(0x81, json.dumps(message if n % 5 == 1 else PING).encode()))
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    return  # the server's end of the connection, after its close frame
                data += chunk
                end = 0
                for opcode, payload, end in server_frames(data):  # noqa: B007 (used after the loop)
                    if opcode == 0x1 and b'"type":"ack"' in payload:
                        self.acked.set()
                    elif opcode == 0x9:  # the server's ping: answered, as RFC 6455 requires
                        sock.sendall(masked_frame(0x8A, payload))
                    elif opcode == 0x8 and self.code == 1006:  # answer its close, read to the end
                        self.code = int(struct.unpack("!H", payload[:2])[0])
                        sock.settimeout(5)
                        sock.sendall(masked_frame(0x88, payload[:2]))
                data = data[end:]
        except OSError:
            self.reset = True
        finally:
            sock.close()


async def shut_down_while_typing(
    settings: Settings, services: Services, session_id: str, token: str
) -> list[tuple[bool, int]]:
    """20 note-takers typing; the server shuts down; what each saw (reset, close code)."""
    async with run_server(settings, services) as live:
        port = int(live.url.rsplit(":", 1)[1])
        path = f"/ws/v1/sessions/{session_id}/capture"
        typers = [await asyncio.to_thread(NoteTyper, port, path, token) for _ in range(20)]
        threads = [threading.Thread(target=t.run, daemon=True) for t in typers]
        for thread in threads:
            thread.start()
        await eventually(
            lambda: all(t.acked.is_set() for t in typers), what="notes acknowledged on every socket"
        )
    # The server has shut down with notes arriving on every socket.
    await eventually(
        lambda: not any(t.is_alive() for t in threads), timeout=35, what="every note-taker to finish"
    )
    return [(t.reset, t.code) for t in typers]


async def test_on_shutdown_capture_sockets_with_notes_in_flight_are_closed_with_1012(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        for round_ in range(3):
            outcomes = await shut_down_while_typing(settings, services, s.session_id, s.token)
            assert outcomes == [(False, CloseCode.SERVICE_RESTART)] * len(outcomes), f"round {round_ + 1}"
    finally:
        await services.close()

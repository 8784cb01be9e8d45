"""Frames from the client through Liveblog's websocket protocol (liveblog/web/wsproto.py), byte
by byte, where the reads split them: pongs, text frames split at every offset, several frames in
one read, fragments, close codes (1002, 1007, 1009), pings and the stall rule. A real uvicorn on
loopback serving an echo app, and raw sockets, so the test chooses the bytes and where the
server's reads end (each part is sent once the server has read the one before).

All but the last two hold for any correct server (they passed before the protocol took whole
pongs and text frames itself, in data_received, without websockets' parser): they guard that
fast path (docs/architecture.md, "Frames from the client"). The last two prove it is taken."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import random
import socket
import struct
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from liveblog.web.wsproto import FastWebSocketProtocol
from tests.conftest import eventually
from tests.echo_server import EchoServer, echo_server
from tests.wsclient import masked_frame, raw_handshake, server_frames

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
# What a read of the peer's bytes takes on loopback: the wait for it looks this often (the kernel
# offers no event for "the peer has read it"), up to READ_TIMEOUT.
READ_POLL = 0.001
READ_TIMEOUT = 10.0
MAX_BYTES = 1024 * 1024  # the echo's ws_max_size, unless a test says otherwise
STALL_SECONDS = 2.0  # pings every second to a connection that was sent data


def bytes_received(sock: socket.socket) -> int:
    """What the kernel has received on this TCP socket in all (tcp_info.tcpi_bytes_received)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("Q", info, 128)[0])


def unread(sock: socket.socket) -> int:
    """Bytes received on this socket that its owner has not read yet."""
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0])


@dataclass
class Raw:
    """A raw websocket client and its connection in the server. Frames from the server are read
    all the time (so the echo never waits for the client) into `frames`; None ends them."""

    sock: socket.socket
    proto: FastWebSocketProtocol
    frames: asyncio.Queue[tuple[int, bytes] | None] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        loop, data = asyncio.get_running_loop(), b""
        try:
            while chunk := await loop.sock_recv(self.sock, 65536):
                data += chunk
                end = 0
                for opcode, payload, end in server_frames(data):  # noqa: B007 (used after the loop)
                    self.frames.put_nowait((opcode, payload))
                data = data[end:]
        except OSError:  # reset: the end, as EOF
            pass
        self.frames.put_nowait(None)

    async def send(self, *parts: bytes) -> None:
        """Each part in its own read: sent once the server has read all before it."""
        loop = asyncio.get_running_loop()
        server = self.proto.transport.get_extra_info("socket")
        for part in parts:
            before = bytes_received(server)
            await loop.sock_sendall(self.sock, part)
            async with asyncio.timeout(READ_TIMEOUT):
                while bytes_received(server) < before + len(part) or unread(server):
                    await asyncio.sleep(READ_POLL)

    async def send_unread(self, data: bytes) -> None:
        """Bytes the server may answer by closing: not waited for."""
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def frame(self) -> tuple[int, bytes]:
        """The server's next frame (opcode, payload); EOFError once the connection has ended."""
        async with asyncio.timeout(READ_TIMEOUT):
            got = await self.frames.get()
        if got is None:
            raise EOFError("the server closed the connection")
        return got

    async def message(self) -> tuple[int, bytes]:
        """The next data or close frame, past the server's pings and pongs."""
        while True:
            opcode, payload = await self.frame()
            if opcode not in (PING, PONG):
                return opcode, payload

    async def ping(self) -> bytes:
        """The payload of the server's next ping, past echoed messages."""
        while True:
            opcode, payload = await self.frame()
            if opcode == PING:
                return payload
            assert opcode != CLOSE, payload

    async def close_code(self, *, reply: bool = True) -> int:
        """The code of the server's close frame, past everything before it. The client answers it
        (unless it sent the first), and the server's end of the stream must follow (EOF or
        reset), never more frames."""
        while True:
            opcode, payload = await self.message()
            if opcode == CLOSE:
                if reply:
                    with contextlib.suppress(OSError):  # the server may have closed already
                        await self.send_unread(masked_frame(0x88, payload[:2]))
                with contextlib.suppress(EOFError):
                    raise AssertionError(f"a frame after the close frame: {await self.frame()}")
                return int(struct.unpack("!H", payload[:2])[0])


@contextlib.asynccontextmanager
async def raw_client(echo: EchoServer) -> AsyncIterator[Raw]:
    sock = await asyncio.to_thread(raw_handshake, echo.port, "/")
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        address = sock.getsockname()
        proto = await eventually(lambda: echo.connection((address[0], address[1])), what="the connection")
        raw = Raw(sock, proto)
        raw.reader = asyncio.create_task(raw.read())
        try:
            yield raw
        finally:
            raw.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await raw.reader
    finally:
        sock.close()


def text(payload: bytes) -> bytes:
    return masked_frame(0x81, payload)


async def busy_and_pinged(raw: Raw) -> bytes:
    """Sent data (an echo), the connection is pinged within half the stall budget: its payload."""
    await raw.send(text(b"busy"))
    return await raw.ping()


async def test_a_pong_split_anywhere_across_two_reads_answers_the_ping(tmp_path: Path) -> None:
    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=STALL_SECONDS) as echo:

        async def split_at(offset: int) -> None:
            async with raw_client(echo) as raw:
                payload = await busy_and_pinged(raw)
                pong = masked_frame(0x8A, payload)
                assert len(pong) == 10
                await raw.send(pong[:offset], pong[offset:])
                # Answered: the ping's payload is no longer awaited (unanswered, it stays until
                # the stall rule closes the connection).
                assert raw.proto.pong_payload != payload and not raw.proto.closed

        await asyncio.gather(*(split_at(offset) for offset in range(1, 10)))


async def test_a_pong_between_the_fragments_of_a_message(tmp_path: Path) -> None:
    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=STALL_SECONDS) as echo:
        async with raw_client(echo) as raw:
            payload = await busy_and_pinged(raw)
            first, last = masked_frame(0x01, b"hello "), masked_frame(0x80, b"world")
            await raw.send(first, masked_frame(0x8A, payload))  # each in its own read
            assert raw.proto.pong_payload != payload
            await raw.send(last)
            assert await raw.message() == (TEXT, b"hello world")
            payload = await raw.ping()  # the echo was data: pinged again
            await raw.send(first + masked_frame(0x8A, payload) + last)  # all in one read
            assert raw.proto.pong_payload != payload
            assert await raw.message() == (TEXT, b"hello world")


async def test_text_frames_split_at_every_offset_arrive_whole_and_in_order(tmp_path: Path) -> None:
    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=60) as echo:
        async with raw_client(echo) as raw:
            # 20 bytes: a 7-bit length; 130: a 16-bit one. Each split frame is followed by a
            # whole one in its own read: the server must have found where the next frame starts.
            for size in (20, 130):
                for n, offset in enumerate(range(1, size + (6 if size < 126 else 8))):
                    body = f"{size}.{n}.".encode().ljust(size, b"x")
                    frame = text(body)
                    await raw.send(frame[:offset], frame[offset:], text(b"next %d" % n))
                    assert await raw.message() == (TEXT, body)
                    assert await raw.message() == (TEXT, b"next %d" % n)


def mixed_frames() -> tuple[list[bytes], list[tuple[int, bytes]]]:
    """Frames of every kind and length, and the messages the echo sends back, in order."""
    big = bytes(range(256)) * 260  # 66,560 bytes: a 64-bit length
    frames = [
        text(b"one"),
        text("two: ü€".encode() * 20),  # a 16-bit length, UTF-8 across the mask's period
        masked_frame(0x82, big),
        masked_frame(0x89, b"pp"),  # a ping: answered with a pong, not echoed
        text(b"three"),
        masked_frame(0x01, b"frag"),
        masked_frame(0x8A, b"unasked"),  # an unsolicited pong between fragments: ignored
        masked_frame(0x00, b"men"),
        masked_frame(0x80, b"ted"),
        masked_frame(0x82, b"\x00\xff"),
        text(b""),
        text(b"four"),
    ]
    replies = [
        (TEXT, b"one"),
        (TEXT, "two: ü€".encode() * 20),
        (BINARY, big),
        (TEXT, b"three"),
        (TEXT, b"fragmented"),
        (BINARY, b"\x00\xff"),
        (TEXT, b""),
        (TEXT, b"four"),
    ]
    return frames, replies


def mixed_cuttings() -> list[list[bytes]]:
    """mixed_frames() cut into reads in many ways."""
    frames, _ = mixed_frames()
    stream = b"".join(frames)
    # Where frames start and end: cuts near them split headers (7-, 16- and 64-bit lengths, masks).
    edges = [sum(len(f) for f in frames[:i]) for i in range(len(frames) + 1)]
    rng = random.Random(22)

    def cut(positions: set[int]) -> list[bytes]:
        at = sorted(p for p in positions if 0 < p < len(stream))
        return [stream[a:b] for a, b in zip([0, *at], [*at, len(stream)], strict=True)]

    return [
        [stream],  # all in one read
        frames,  # each frame in its own read
        [b"".join(frames[:2]), b"".join(frames[2:5]), b"".join(frames[5:])],
        *(cut({rng.choice(edges) + rng.randint(-10, 10) for _ in range(12)}) for _ in range(30)),
        *(cut(set(rng.sample(range(1, len(stream)), 11))) for _ in range(4)),  # anywhere
    ]


async def send_mixed(raw: Raw, parts: list[bytes]) -> None:
    """mixed_frames() in these reads: every message echoed in order, the ping answered."""
    _, replies = mixed_frames()
    await raw.send(*parts)
    got, pongs = [], []
    while len(got) < len(replies) or not pongs:
        opcode, payload = await raw.frame()
        (pongs if opcode == PONG else got).append((opcode, payload))
    assert got == replies
    assert pongs == [(PONG, b"pp")]


async def test_frames_of_every_kind_in_any_reads_keep_their_order(tmp_path: Path) -> None:
    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=60) as echo:
        async with raw_client(echo) as raw:
            for parts in mixed_cuttings():
                await send_mixed(raw, parts)


async def test_invalid_utf8_in_a_text_frame_is_closed_with_1007(tmp_path: Path) -> None:
    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=60) as echo:
        for bad in (b"ok \xff", "ü".encode() * 70 + b"\xc3"):  # 7-bit and 16-bit lengths
            async with raw_client(echo) as raw:
                await raw.send(text(b"fine"))
                assert await raw.message() == (TEXT, b"fine")
                await raw.send_unread(text(bad) + text(b"never echoed"))
                assert await raw.close_code() == 1007


async def test_a_text_frame_over_the_size_limit_is_closed_with_1009(tmp_path: Path) -> None:
    async with echo_server(tmp_path, max_bytes=100, stall_seconds=60) as echo:
        for size in (101, 300):  # 7-bit and 16-bit lengths
            async with raw_client(echo) as raw:
                await raw.send(text(b"x" * 100))  # at the limit: taken
                assert await raw.message() == (TEXT, b"x" * 100)
                await raw.send_unread(text(b"y" * size))
                assert await raw.close_code() == 1009


async def test_a_ping_from_the_client_is_answered(tmp_path: Path) -> None:
    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=60) as echo:
        async with raw_client(echo) as raw:
            ping = masked_frame(0x89, b"are you there")
            await raw.send(ping)
            assert await raw.frame() == (PONG, b"are you there")
            await raw.send(ping[:3], ping[3:])
            assert await raw.frame() == (PONG, b"are you there")


async def test_a_pong_with_the_wrong_payload_does_not_answer_and_the_stall_rule_closes(
    tmp_path: Path,
) -> None:
    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=STALL_SECONDS) as echo:
        async with raw_client(echo) as raw:
            stalled = FastWebSocketProtocol.stalled_total
            payload = await busy_and_pinged(raw)
            wrong = bytes(b ^ 0xFF for b in payload)
            await raw.send(masked_frame(0x8A, wrong))
            assert raw.proto.pong_payload == payload  # still awaited
            await eventually(lambda: raw.proto.closed, STALL_SECONDS * 3, "the stalled connection to close")
            assert FastWebSocketProtocol.stalled_total == stalled + 1


async def test_the_close_handshake_after_text_frames(tmp_path: Path) -> None:
    close = masked_frame(0x88, struct.pack("!H", 1000) + b"bye")
    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=60) as echo:
        async with raw_client(echo) as raw:
            await raw.send(text(b"a") + text(b"b"))
            assert [await raw.message(), await raw.message()] == [(TEXT, b"a"), (TEXT, b"b")]
            await raw.send_unread(close)
            assert await raw.close_code(reply=False) == 1000
        async with raw_client(echo) as raw:  # the close in the same read as the messages
            await raw.send_unread(text(b"a") + text(b"b") + close)
            assert await raw.close_code(reply=False) == 1000


async def test_frames_that_break_the_protocol_are_closed_with_1002(tmp_path: Path) -> None:
    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=60) as echo:
        for bad in (
            masked_frame(0x81, b"unmasked", masked=False),
            masked_frame(0x8A, b"abcd", masked=False),  # an unmasked pong
            masked_frame(0xC1, b"rsv1"),  # a reserved bit, no extension negotiated
            masked_frame(0x00, b"continuing nothing"),
            masked_frame(0x0A, b"fragmented pong"),
        ):
            async with raw_client(echo) as raw:
                await raw.send(text(b"fine"))
                assert await raw.message() == (TEXT, b"fine")
                await raw.send_unread(bad)
                assert await raw.close_code() == 1002, bad


async def test_whole_pongs_and_text_frames_skip_websockets_parser(tmp_path: Path) -> None:
    """The fast path is taken: whole pongs and text frames are counted in FAST_FRAMES, frames
    split across reads, and whatever follows a frame it does not take in the same read, are not."""
    from liveblog.web.wsproto import FAST_FRAMES

    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=STALL_SECONDS) as echo:
        async with raw_client(echo) as raw:
            payload = await busy_and_pinged(raw)
            before = dict(FAST_FRAMES)
            await raw.send(masked_frame(0x8A, payload))
            assert raw.proto.pong_payload != payload
            await raw.send(text(b"1") + text(b"2" * 200) + text(b"3"))
            split = text(b"4")
            await raw.send(split[:3], split[3:])
            await raw.send(masked_frame(0x89, b"p") + text(b"5"))  # behind a ping: websockets'
            assert [(await raw.message())[1] for _ in range(5)] == [b"1", b"2" * 200, b"3", b"4", b"5"]
            assert FAST_FRAMES["pong"] - before["pong"] == 1
            assert FAST_FRAMES["text"] - before["text"] == 3


async def test_after_frames_of_every_kind_in_any_reads_a_whole_text_frame_is_taken_fast(
    tmp_path: Path,
) -> None:
    """The protocol follows where each frame starts through all that websockets parses: after
    any of the cuttings, a whole text frame in its own read is taken without websockets."""
    from liveblog.web.wsproto import FAST_FRAMES

    async with echo_server(tmp_path, max_bytes=MAX_BYTES, stall_seconds=60) as echo:
        async with raw_client(echo) as raw:
            for n, parts in enumerate(mixed_cuttings()):
                await send_mixed(raw, parts)
                taken = FAST_FRAMES["text"]
                await raw.send(text(b"lone %d" % n))
                assert FAST_FRAMES["text"] == taken + 1, f"cutting {n}: {[len(p) for p in parts]}"
                assert await raw.message() == (TEXT, b"lone %d" % n)

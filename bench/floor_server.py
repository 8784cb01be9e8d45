"""The kernel floor for bench/live.py's fan-out: what sending the same bytes to the same sockets
costs with nothing but the send itself.

One `select.epoll` loop, no asyncio, no websocket library. It speaks the same subset of
Liveblog's protocol as bench/baseline_server.py, so the same load generator drives it: viewers
get a `hello` and then every change; each `note.create` on a capture socket becomes a change
frame of the same shape and size, framed once, and written with one `socket.send` per viewer in
a plain loop, then an `ack`. Nothing is validated, stored, timed or pinged. Whatever a server
spends per delivery above this line is its own; this line is the system call and the kernel's
loopback TCP path (charged to the sender) plus a few hundred nanoseconds of Python per call.

Run: python -m bench.floor_server --port 8767
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import select
import signal
import socket
import struct
import sys

from bench.baseline_server import change_frame
from liveblog.streams.protocol import ws_text_frame as frame

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Conn:
    __slots__ = ("sock", "buf", "open", "capture", "unsent")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.open = False
        self.capture = False
        self.unsent = b""  # only when the kernel's buffer was full (never at this load)


def client_frames(conn: Conn) -> list[tuple[int, bytes]]:
    """Complete (masked) client frames off the front of the buffer."""
    out = []
    buf = conn.buf
    while len(buf) >= 2:
        opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
        at = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < at + 4 + n:
            break
        mask = buf[at : at + 4]
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[at + 4 : at + 4 + n]))
        out.append((opcode, payload))
        buf = buf[at + 4 + n :]
    conn.buf = buf
    return out


def main(port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(2048)
    listener.setblocking(False)
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, Conn] = {}
    viewers: list[socket.socket] = []  # open viewer sockets, in the order they joined
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def send(conn: Conn, data: bytes) -> None:
        if conn.unsent:
            conn.unsent += data
            return
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            conn.unsent = data[sent:]
            ep.modify(conn.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)

    def drop(fd: int) -> None:
        conn = conns.pop(fd)
        ep.unregister(fd)
        if conn.open and not conn.capture:
            viewers.remove(conn.sock)
        conn.sock.close()

    def handshake(conn: Conn) -> None:
        head, _, conn.buf = conn.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest())
        reply = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        reply += b"Sec-WebSocket-Accept: " + accept + b"\r\n"
        if "liveblog.v1" in headers.get("sec-websocket-protocol", ""):
            reply += b"Sec-WebSocket-Protocol: liveblog.v1\r\n"
        conn.open = True
        conn.capture = lines[0].split(" ")[1].split("?")[0].endswith("/capture")
        hello = {"type": "hello", "protocol": 1, "seq": 0, "role": "note-taker" if conn.capture else "viewer"}
        send(conn, reply + b"\r\n" + frame(json.dumps(hello, separators=(",", ":")).encode()))
        if not conn.capture:
            viewers.append(conn.sock)

    def message(conn: Conn, opcode: int, payload: bytes) -> None:
        # No pings come from the load generator; a close frame ends the connection (on its EOF).
        if opcode == 0x1 and conn.capture:
            note = json.loads(payload)
            if note.get("type") != "note.create":
                return
            text, ack = change_frame(note, "Bench note-taker")
            data = frame(text.encode())
            # The floor: one send of the same bytes per viewer, in a plain loop.
            for sock in viewers:
                try:
                    sock.send(data)
                except (BlockingIOError, ConnectionError):
                    pass  # never at this load: a viewer that cannot take 1 KB has gone
            send(conn, frame(json.dumps(ack, separators=(",", ":")).encode()))

    while True:
        for fd, events in ep.poll():
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    # As all three servers do (asyncio, so Liveblog and websockets; Node's ws).
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = Conn(sock)
                    ep.register(sock.fileno(), select.EPOLLIN)
                continue
            conn = conns.get(fd)
            if conn is None:
                continue
            if events & select.EPOLLOUT and conn.unsent:
                try:
                    sent = conn.sock.send(conn.unsent)
                    conn.unsent = conn.unsent[sent:]
                except BlockingIOError:
                    pass
                except ConnectionError:
                    drop(fd)
                    continue
                if not conn.unsent:
                    ep.modify(fd, select.EPOLLIN)
            if not events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                continue
            try:
                data = conn.sock.recv(1 << 16)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            if not data:
                drop(fd)
                continue
            conn.buf += data
            if not conn.open:
                if b"\r\n\r\n" not in conn.buf:
                    continue
                handshake(conn)
            for opcode, payload in client_frames(conn):
                message(conn, opcode, payload)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    main(p.parse_args().port)

"""Viewer load generator: worker processes, each holding thousands of raw websocket viewers.

The load generator shares the machine's two cores with the server under test, so it must be
cheap per received message. A worker is therefore a plain `select.epoll` loop over
non-blocking sockets, not asyncio: no callback scheduling, no transport objects, one `recv()`
per readable socket and a few slices to parse the (unmasked) server frames. It does a real
handshake (random Sec-WebSocket-Key, checks the 101), answers pings with masked pongs, and
answers a close frame.

The parent drives each worker over a multiprocessing pipe (connect N viewers, reset, collect,
drop all). A viewer records, per note, when it arrived; the worker keeps per note only the latest
arrival over its viewers and how many got it, so the parent computes "until the last viewer has
the note". Notes are recognised without parsing JSON: the note body starts with `bench t=<ns>`,
the sender's CLOCK_MONOTONIC (time.monotonic_ns, comparable across processes on one Linux host).
The arrival time of a message is taken when epoll reports its socket readable, once per batch
of ready sockets, so the worker's own time to walk a batch is not counted against the server.

A reconnect storm (`storm`): every open viewer is cut at once (a TCP reset, as when the venue's
wifi blinks) and reconnects at a time spread over the next second, with `?since=` its last seq
when the server resumes. Each viewer keeps its last change seq across connections and counts
gaps and duplicates; it is caught up when the server says `synced` (or, for a server that does
not resume, at its `hello`). Only notes received live (after that point) count in the latency:
those replayed while catching up are counted apart.
"""

from __future__ import annotations

import base64
import errno
import multiprocessing as mp
import os
import random
import select
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bench.servers import cpu_seconds, raise_fd_limit
from bench.wsraw import OP_CLOSE, OP_CONT, OP_PING, OP_PONG, masked_frame

MARK = b"bench t="
RECV = 1 << 16  # below glibc's mmap threshold: a bigger recv buffer costs an mmap+munmap per call

CONNECTING, HANDSHAKE, OPEN = 0, 1, 2

# What a desktop Chromium sends besides Host, Origin and the key: servers keep request headers
# for the life of the connection, so a realistic set matters for memory per viewer. Browsers
# always offer permessage-deflate; both servers under test decline it.
BROWSER_HEADERS = (
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-GB,en;q=0.9\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
)


CHANGE = b'{"type":"change","seq":'
SYNCED = b'{"type":"synced"'
SEQ_KEY = b'"seq":'


class Viewer:
    __slots__ = (
        "sock", "state", "buf", "hello", "close_code", "closed", "seq", "gaps", "dups", "live",
        "path", "caught_ns", "opened_ns", "started_ns",
    )  # fmt: skip

    def __init__(self, sock: socket.socket, path: str | None = None) -> None:
        self.sock = sock
        self.state = CONNECTING
        self.buf = b""
        self.hello = False
        self.close_code: int | None = None
        self.closed = False
        self.seq = -1  # the last change seq received (over every connection), -1 before the hello
        self.gaps = 0  # changes skipped (seq jumped ahead)
        self.dups = 0  # changes received again (seq did not move forward)
        self.live = True  # False while catching up after a reconnect: notes are replays
        self.path = path  # the path to connect to, if not the connect command's
        self.caught_ns = 0  # when this connection was caught up (storm)
        self.opened_ns = 0  # when this connection's handshake completed (storm)
        self.started_ns = 0  # when this connection was started (storm)


class Worker:
    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.ep = select.epoll()
        self.viewers: dict[int, Viewer] = {}
        self.ready = 0
        self.notes: dict[int, list[int]] = {}  # t_sent -> [latest arrival, viewers that got it]
        self.frames = 0
        self.bytes = 0
        self.running = True
        # A connect command in progress: (addr, path, remaining to start, in flight, target, ...).
        self.pending: dict[str, Any] | None = None
        self.addr: tuple[str, int] = ("", 0)
        self.host = ""
        # A storm in progress: reconnects not started yet, (due ns, viewer), earliest first.
        self.storm_due: list[tuple[int, Viewer]] = []
        self.storm_resume = False
        self.storm_failures: list[str] = []
        self.replayed = 0  # notes received while catching up (storm)

    # -- receiving -------------------------------------------------------------------------

    def on_readable(self, fd: int, v: Viewer, now: int) -> None:
        try:
            data = v.sock.recv(RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.lost(fd, v)
            return
        if v.buf:
            data = v.buf + data
            v.buf = b""
        if v.state == HANDSHAKE:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                v.buf = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                self.failed(fd, v, data[: data.find(b"\r\n")].decode(errors="replace"))
                return
            v.state = OPEN
            v.opened_ns = now
            self.handshake_done()
            data = data[end + 4 :]
        pos = 0
        size = len(data)
        while size - pos >= 2:
            b0 = data[pos]
            n = data[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (data[pos + 2] << 8) | data[pos + 3]
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
            end = pos + head + n
            if end > size:
                break
            opcode = b0 & 0x0F
            if opcode == 1:  # text, unfragmented: all this server sends
                self.frames += 1
                self.bytes += n
                start = pos + head
                if data.startswith(CHANGE, start):
                    k = start + len(CHANGE)
                    seq = int(data[k : data.find(b",", k, end)])
                    if v.seq >= 0:
                        if seq <= v.seq:
                            v.dups += 1
                        elif seq > v.seq + 1:
                            v.gaps += seq - v.seq - 1
                    if seq > v.seq:
                        v.seq = seq
                i = data.find(MARK, start, end)
                if i >= 0:
                    if not v.live:
                        self.replayed += 1
                    else:
                        t = int(data[i + 8 : data.find(b" ", i + 8, end)])
                        rec = self.notes.get(t)
                        if rec is None:
                            self.notes[t] = [now, 1]
                        else:
                            rec[1] += 1
                            if now > rec[0]:
                                rec[0] = now
                elif not v.hello:
                    v.hello = True  # the hello: this viewer is subscribed
                    self.ready += 1
                    if v.seq < 0:
                        k = data.find(SEQ_KEY, start, end)
                        if k >= 0:
                            k += len(SEQ_KEY)
                            v.seq = int(data[k : data.find(b",", k, end)])
                    if not v.live and not self.storm_resume:
                        self.caught_up(v, now)
                elif not v.live and data.startswith(SYNCED, start):
                    self.caught_up(v, now)
            elif opcode == OP_PING:
                self.send(v, OP_PONG, data[pos + head : end])
            elif opcode == OP_CLOSE:
                payload = data[pos + head : end]
                v.close_code = struct.unpack("!H", payload[:2])[0] if n >= 2 else 1005
                self.send(v, OP_CLOSE, payload[:2])
                self.lost(fd, v)
                return
            elif opcode == OP_CONT:
                pass  # never sent fragmented by the servers under test
            pos = end
        if pos < size:
            v.buf = data[pos:]

    def caught_up(self, v: Viewer, now: int) -> None:
        v.live = True
        v.caught_ns = now

    def send(self, v: Viewer, opcode: int, payload: bytes) -> None:
        try:
            v.sock.send(masked_frame(opcode, payload))
        except OSError:
            pass

    def lost(self, fd: int, v: Viewer) -> None:
        if v.closed:
            return
        v.closed = True
        if v.state != OPEN:
            self.failed(fd, v, "connection closed during the handshake")
            return
        try:
            self.ep.unregister(fd)
        except OSError:
            pass
        v.sock.close()

    # -- connecting ------------------------------------------------------------------------

    def start_connect(self, host: str, port: int, path: str, n: int, concurrency: int) -> None:
        self.addr = (host, port)
        self.host = f"{host}:{port}"
        self.pending = {
            "addr": (host, port),
            "host": f"{host}:{port}",
            "path": path,
            "to_start": n,
            "in_flight": 0,
            "n": n,
            "failures": [],
            "start": time.monotonic(),
            "concurrency": concurrency,
            "ready_target": self.ready + n,
            "deadline": time.monotonic() + 120,
        }
        self.connect_more()

    def connect_more(self) -> None:
        p = self.pending
        assert p is not None
        while p["to_start"] > 0 and p["in_flight"] < p["concurrency"]:
            p["to_start"] -= 1
            p["in_flight"] += 1
            sock, err = self.open_socket()
            if sock is None:
                p["in_flight"] -= 1
                p["failures"].append(err)
                continue
            v = Viewer(sock)
            self.viewers[sock.fileno()] = v
            self.ep.register(sock.fileno(), select.EPOLLOUT)

    def open_socket(self) -> tuple[socket.socket | None, str]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            return None, os.strerror(err)
        return sock, ""

    def on_connected(self, fd: int, v: Viewer) -> None:
        p = self.pending
        assert p is not None or v.path is not None
        err = v.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.failed(fd, v, os.strerror(err))
            return
        key = base64.b64encode(os.urandom(16)).decode()
        path = v.path if v.path is not None else (p["path"] if p is not None else "/")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Origin: http://{self.host}\r\nSec-WebSocket-Key: {key}\r\n{BROWSER_HEADERS}\r\n"
        )
        v.sock.send(request.encode())
        v.state = HANDSHAKE
        self.ep.modify(fd, select.EPOLLIN)

    def handshake_done(self) -> None:
        if self.pending is not None:
            self.pending["in_flight"] -= 1
            self.connect_more()

    def failed(self, fd: int, v: Viewer, why: str) -> None:
        v.closed = True
        try:
            self.ep.unregister(fd)
        except OSError:
            pass
        v.sock.close()
        self.viewers.pop(fd, None)
        if v.path is not None:
            self.storm_failures.append(why)
        if self.pending is not None:
            self.pending["in_flight"] -= 1
            self.pending["failures"].append(why)
            self.connect_more()

    def check_pending(self) -> None:
        p = self.pending
        if p is None or p["to_start"] or p["in_flight"]:
            if p is not None and time.monotonic() > p["deadline"]:
                self.finish_connect()
            return
        # All handshakes done; wait for every hello (the server has subscribed the viewer).
        if self.ready >= p["ready_target"] - len(p["failures"]) or time.monotonic() > p["deadline"]:
            self.finish_connect()

    def finish_connect(self) -> None:
        p = self.pending
        assert p is not None
        self.pending = None
        self.pipe.send(
            {
                "connected": p["n"] - len(p["failures"]),
                "ready": self.ready,
                "failures": p["failures"][:5],
                "failed": len(p["failures"]),
                "seconds": time.monotonic() - p["start"],
            }
        )

    # -- the reconnect storm -----------------------------------------------------------------

    def storm(self, path: str, spread: float, resume: bool) -> dict[str, Any]:
        """Cut every open viewer at once (TCP reset) and schedule each one's reconnect at a
        random moment within `spread` seconds, from its last seq if the server resumes."""
        self.storm_resume = resume
        self.storm_failures = []
        self.replayed = 0
        now = time.monotonic_ns()
        due: list[tuple[int, Viewer]] = []
        viewers, self.viewers = self.viewers, {}
        for fd, v in viewers.items():
            if v.closed:
                continue
            try:
                self.ep.unregister(fd)
            except OSError:
                pass
            v.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            v.sock.close()
            v.closed = True
            v.live = False
            v.hello = False
            v.buf = b""
            v.caught_ns = v.opened_ns = 0
            v.path = f"{path}?since={v.seq}" if resume and v.seq >= 0 else path
            due.append((now + int(random.random() * spread * 1e9), v))
        self.ready = 0
        due.sort(key=lambda item: item[0])
        self.storm_due = due
        return {"dropped": len(due), "at": now}

    def reconnect_due(self) -> None:
        now = time.monotonic_ns()
        due = self.storm_due
        started = 0
        while started < len(due) and due[started][0] <= now:
            v = due[started][1]
            started += 1
            sock, err = self.open_socket()
            if sock is None:
                self.storm_failures.append(err)
                continue
            v.sock = sock
            v.started_ns = now
            v.state = CONNECTING
            v.closed = False
            self.viewers[sock.fileno()] = v
            self.ep.register(sock.fileno(), select.EPOLLOUT)
        if started:
            del due[:started]

    def storm_status(self) -> dict[str, Any]:
        viewers = list(self.viewers.values())
        caught = [v.caught_ns for v in viewers if v.caught_ns]
        opened = [v.opened_ns for v in viewers if v.opened_ns]
        return {
            "waiting": len(self.storm_due),
            "caught": len(caught),
            "last_caught": max(caught, default=0),
            "last_opened": max(opened, default=0),
            # each viewer's own time from its reconnect to caught up, ms
            "took_ms": [(v.caught_ns - v.started_ns) / 1e6 for v in viewers if v.caught_ns and v.started_ns],
            "failed": len(self.storm_failures),
            "failures": self.storm_failures[:5],
            "gaps": sum(v.gaps for v in viewers),
            "dups": sum(v.dups for v in viewers),
            "with_gaps": sum(1 for v in viewers if v.gaps),
            "seqs": dict(Counter(v.seq for v in viewers)),  # last seq -> viewers there
            "replayed": self.replayed,
            "closed": sum(1 for v in viewers if v.closed),
        }

    # -- commands --------------------------------------------------------------------------

    def reset(self) -> None:
        self.notes = {}
        self.frames = 0
        self.bytes = 0

    def collect(self) -> dict[str, Any]:
        codes: dict[int | None, int] = {}
        closed = 0
        for v in self.viewers.values():
            if v.closed:
                closed += 1
                codes[v.close_code] = codes.get(v.close_code, 0) + 1
        return {
            "notes": {t: tuple(rec) for t, rec in self.notes.items()},
            "frames": self.frames,
            "bytes": self.bytes,
            "open": len(self.viewers) - closed,
            "closed": closed,
            "close_codes": codes,
            "cpu": cpu_seconds(os.getpid()),
        }

    def drop_all(self) -> dict[str, Any]:
        viewers, self.viewers = self.viewers, {}
        for fd, v in viewers.items():
            if not v.closed:
                try:
                    self.ep.unregister(fd)
                except OSError:
                    pass
                v.sock.close()
        self.ready = 0
        self.reset()
        return {"dropped": len(viewers)}

    def on_command(self) -> None:
        try:
            command = self.pipe.recv()
        except EOFError:
            self.running = False
            return
        name, *args = command
        try:
            if name == "connect":
                self.start_connect(*args)
                return  # answered by finish_connect()
            if name == "reset":
                self.reset()
                result: Any = {"ok": True}
            elif name == "collect":
                result = self.collect()
            elif name == "drop":
                result = self.drop_all()
            elif name == "storm":
                result = self.storm(*args)
            elif name == "storm_status":
                result = self.storm_status()
            elif name == "cpu":
                result = {"cpu": cpu_seconds(os.getpid())}
            elif name == "exit":
                self.drop_all()
                self.running = False
                result = {"ok": True}
            else:
                result = {"error": f"unknown command {name}"}
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            result = {"error": repr(exc)}
        self.pipe.send(result)

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        pipe_fd = self.pipe.fileno()
        self.ep.register(pipe_fd, select.EPOLLIN)
        viewers = self.viewers
        while self.running:
            if self.storm_due:
                timeout = max(0.0, min(0.005, (self.storm_due[0][0] - time.monotonic_ns()) / 1e9))
            else:
                timeout = 0.05 if self.pending is not None else 1.0
            events = self.ep.poll(timeout)
            now = time.monotonic_ns()
            viewers = self.viewers
            for fd, mask in events:
                if fd == pipe_fd:
                    self.on_command()
                    continue
                v = viewers.get(fd)
                if v is None or v.closed:
                    continue
                if v.state == CONNECTING:
                    self.on_connected(fd, v)
                elif mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                    self.on_readable(fd, v, now)
            if self.pending is not None:
                self.check_pending()
            if self.storm_due:
                self.reconnect_due()


def _worker_main(pipe: Connection) -> None:
    raise_fd_limit()
    Worker(pipe).run()


@dataclass
class WorkerHandle:
    proc: Any
    pipe: Connection

    def send(self, *command: Any) -> None:
        self.pipe.send(command)

    def reply(self, timeout: float = 120) -> Any:
        if not self.pipe.poll(timeout):
            raise TimeoutError("load generator worker did not answer")
        result = self.pipe.recv()
        if isinstance(result, dict) and "error" in result:
            raise RuntimeError(f"worker: {result['error']}")
        return result


class Pool:
    """Several worker processes; commands go to all and answers are gathered."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self.workers: list[WorkerHandle] = []
        for _ in range(size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
            proc.start()
            child.close()
            self.workers.append(WorkerHandle(proc, parent))

    def all(self, *command: Any, timeout: float = 120) -> list[Any]:
        for w in self.workers:
            w.send(*command)
        return [w.reply(timeout) for w in self.workers]

    def storm(self, path: str, spread: float, resume: bool) -> list[dict[str, Any]]:
        return self.all("storm", path, spread, resume)

    def connect(self, host: str, port: int, path: str, n: int, concurrency: int = 64) -> list[dict[str, Any]]:
        shares = [
            n // len(self.workers) + (1 if i < n % len(self.workers) else 0) for i in range(len(self.workers))
        ]
        for w, share in zip(self.workers, shares, strict=True):
            w.send("connect", host, port, path, share, concurrency)
        return [w.reply(180) for w in self.workers]

    def close(self) -> None:
        for w in self.workers:
            if w.proc.is_alive():
                try:
                    w.send("exit")
                    w.reply(15)
                except Exception:  # noqa: BLE001
                    pass
            w.proc.join(5)
            if w.proc.is_alive():
                w.proc.terminate()
                w.proc.join(5)

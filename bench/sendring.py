"""One frame to many loopback sockets: `os.write` per socket against the send ring (one
`io_uring_enter` for all of them, liveblog/streams/uring.py), the same sockets, alternating.

    .venv/bin/python -m bench.sendring                    # 3,000 sockets, 4 rounds of each
    .venv/bin/python -m bench.sendring --sockets 1000,5000 --rounds 3

For each way it prints the CPU per send of the sending process, of the reading process (a plain
epoll loop that reads everything, as a load generator does) and of the whole machine (every
process, ksoftirqd included, from /proc/stat: so nothing saved is merely moved elsewhere; other
work on the machine adds to it). On loopback the kernel's receive path and the reader's wake-up
run in the sender's system call: a burst of sends that reaches a reader already awake costs
less than sends that each wake it. docs/performance.md, "One system call per pass".
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import select
import socket
import time
from collections.abc import Callable

from liveblog.streams.uring import SendRing

FRAME = b"\x81\x7e\x03\x80" + b"x" * 896  # a 900-byte websocket frame, as a note's
PASSES = 100  # passes per measurement


def reader(ports: mp.Queue[int]) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=8192)
    listener.setblocking(False)
    ports.put(listener.getsockname()[1])
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, socket.socket] = {}
    while True:
        for fd, _ in ep.poll():
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    conns[sock.fileno()] = sock
                    ep.register(sock.fileno(), select.EPOLLIN)
                continue
            try:
                if not conns[fd].recv(1 << 16):
                    ep.unregister(fd)
                    conns.pop(fd).close()
            except BlockingIOError:
                pass


def cpu_of(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    values = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def measure(count: int, rounds: int) -> dict[str, list[tuple[float, float, float]]]:
    ports: mp.Queue[int] = mp.Queue()
    proc = mp.Process(target=reader, args=(ports,), daemon=True)
    proc.start()
    port = ports.get(timeout=10)
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    fds = [s.fileno() for s in socks]
    ring = SendRing.open()
    if ring is None:
        raise SystemExit("this kernel refuses io_uring: nothing to compare")

    def one_write_each() -> None:
        write = os.write
        for _ in range(PASSES):
            for fd in fds:
                try:
                    write(fd, FRAME)
                except BlockingIOError:
                    pass  # the reader fell behind: as the server, this socket waits

    def send_ring() -> None:
        for _ in range(PASSES):
            ring.send(fds, FRAME)

    ways: dict[str, Callable[[], None]] = {"os.write each": one_write_each, "send ring": send_ring}
    out: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, run in ways.items():
            time.sleep(0.5)  # the reader catches up: each way starts from empty buffers
            sends = PASSES * count / 1e6
            m0, r0, t0 = machine_busy(), cpu_of(proc.pid), time.process_time()
            run()
            t1 = time.process_time()
            time.sleep(0.3)  # the reader's share of these sends
            m1, r1 = machine_busy(), cpu_of(proc.pid)
            out[name].append(((t1 - t0) / sends, (r1 - r0) / sends, (m1 - m0) / sends))
    ring.close()
    for s in socks:
        s.close()
    proc.terminate()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sockets", default="3000", help="comma-separated socket counts")
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    print("| Sockets | Way | Sender µs per send | Reader µs per send | Machine µs per send |")
    print("|---:|---|---|---|---|")
    for count in (int(c) for c in args.sockets.split(",")):
        for name, rows in measure(count, args.rounds).items():
            cols = [" ".join(f"{row[i]:.2f}" for row in rows) for i in range(3)]
            print(f"| {count:,} | {name} | {cols[0]} | {cols[1]} | {cols[2]} |")


if __name__ == "__main__":
    main()

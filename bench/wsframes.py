"""What reading one frame from a client costs Liveblog's websocket protocol (web/wsproto.py): a
viewer's pong, and a note-taker's note, each passed to `data_received` as one read.

    .venv/bin/python -m bench.wsframes                             # this checkout
    .venv/bin/python -m bench.wsframes --rounds 3 --liveblog-src DIR   # DIR's package and this one, alternately

One connection on a socket pair (asyncio's own transport), opened by the plain handshake and
handed over (`hand_over`, as a joined viewer is), so each message is dropped as it is delivered
and nothing else runs. Hot: the same read again and again, median of batches. Cold: reads
between which a few MiB are walked through, as at 10 notes a second, when every note finds the
CPU's caches full of something else (docs/performance.md, "The note's own cost"). Each source
runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.live import note_body
from bench.servers import REPO
from bench.wsraw import OP_PONG, OP_TEXT, masked_frame

HOT_BATCHES, HOT_READS = 30, 2000
COLD_READS = 300
SPOILER = bytearray(8 * 1024 * 1024)  # walked between cold reads: more than the CPU's caches


async def noop_app(scope: dict[str, Any], receive: Any, send: Any) -> None:  # pragma: no cover
    """Never run: the loop does not turn while the reads are timed."""


def measure() -> dict[str, float]:
    """ns per read: {pong, note} x {hot, cold}, in this process's liveblog package."""
    import uvicorn
    from uvicorn.server import ServerState

    from liveblog.web.wsproto import FastWebSocketProtocol

    loop = asyncio.new_event_loop()
    ours, theirs = socket.socketpair()
    config = uvicorn.Config(noop_app, ws_max_size=1024 * 1024, ws_ping_interval=4.0, lifespan="off")
    config.load()
    proto = FastWebSocketProtocol(config, ServerState(), _loop=loop)

    async def connect() -> None:
        await loop.connect_accepted_socket(lambda: proto, ours)

    loop.run_until_complete(connect())
    key = base64.b64encode(os.urandom(16)).decode()
    proto.data_received(
        (
            f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    proto.hand_over(lambda message: None)
    payload = os.urandom(4)
    pong = masked_frame(OP_PONG, payload)
    note = masked_frame(
        OP_TEXT,
        json.dumps(
            {"type": "note.create", "client_id": "n0-1", "body": note_body(time.monotonic_ns())},
            separators=(",", ":"),
        ).encode(),
    )
    out: dict[str, float] = {}
    for name, data in (("pong", pong), ("note", note)):
        read = proto.data_received
        batches = []
        for _ in range(HOT_BATCHES):
            t0 = time.perf_counter_ns()
            for _ in range(HOT_READS):
                proto.pong_payload = payload
                read(data)
            batches.append((time.perf_counter_ns() - t0) / HOT_READS)
        out[f"{name} hot"] = statistics.median(batches)
        cold = []
        for _ in range(COLD_READS):
            for i in range(0, len(SPOILER), 64):
                SPOILER[i] = i & 0xFF
            proto.pong_payload = payload
            t0 = time.perf_counter_ns()
            read(data)
            cold.append(time.perf_counter_ns() - t0)
        out[f"{name} cold"] = statistics.median(cold)
        assert proto.pong_payload == b"" or name == "note", "the pong was not taken as the answer"
    theirs.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.wsframes", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--liveblog-src", help="another copy of the liveblog package, measured alternately")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a measuring child
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(measure()))
        return 0
    sources = [args.liveblog_src, None] if args.liveblog_src else [None]
    for _ in range(args.rounds):
        for src in sources:
            # The child imports liveblog from src (or this checkout) and bench from this checkout.
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([src or str(REPO), str(REPO)])}
            child = [sys.executable, "-m", "bench.wsframes", "--one"]
            got = json.loads(subprocess.run(child, env=env, cwd="/", check=True, capture_output=True).stdout)
            cells = ", ".join(f"{k} {v / 1000:.2f} us" for k, v in got.items())
            print(f"{src or REPO}: {cells}; load average {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

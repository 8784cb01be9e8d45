"""Liveblog's own websocket protocol class (liveblog/web/wsproto.py) against the Autobahn TestSuite's
core cases (1-10: framing, pings, reserved bits, opcodes, fragmentation, UTF-8, closing, limits),
driven by kosoku (PyPI), which runs Autobahn's own case files. The server under test is uvicorn
with `ws=FastWebSocketProtocol` and the production options, serving a test-only echo app: the
echo endpoint exists here and nowhere in the production routes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kosoku import FailureError, run_fuzzingclient

from tests.echo_server import echo_server

# Autobahn's case 9 sends messages of up to 16 MiB (and 10.1.1 one of 64 KiB); an echo server
# must accept them to pass. Production keeps its own limits.frame_bytes.
ECHO_MAX_BYTES = 16 * 1024 * 1024 + 1024
# The fixed 32 KiB kernel send buffer (wsproto.SEND_BUFFER_BYTES) paces one connection to a few
# MB/s on loopback, so case 9's 16 MiB echo takes longer than streams.stall_seconds, and the
# stall rule would close it (4408) as it closes a viewer that stops reading. The echo gets a
# longer budget: the stall rule is tested in test_fastpath.py, the framing here.
ECHO_STALL_SECONDS = 60.0
# The core cases (Autobahn has no 8.*); 12.* and 13.* are permessage-deflate, which the server
# switches off (serving.uvicorn_options).
CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]


async def test_the_protocol_class_passes_the_autobahn_core_cases(tmp_path: Path) -> None:
    async with echo_server(tmp_path, max_bytes=ECHO_MAX_BYTES, stall_seconds=ECHO_STALL_SECONDS) as echo:
        async with asyncio.timeout(100):
            try:  # cases wait on the network, not the CPU: 12 at once keep the run near 15 s
                results = await run_fuzzingclient(echo.url, cases=CASES, concurrency=12)
            except FailureError as failed:  # raised when any case did not pass: report them all below
                results = failed.results
    # OK, NON-STRICT and INFORMATIONAL are conforming; FAILED, UNIMPLEMENTED and ERROR are not,
    # and neither is a closing handshake that is unclean, wrong or failed.
    bad = [
        f"{r.case_id}: {r.behavior.value} / close {r.behavior_close.value} ({r.description[:80]})"
        for r in results
        if r.behavior.value not in ("OK", "NON-STRICT", "INFORMATIONAL")
        or r.behavior_close.value not in ("OK", "INFORMATIONAL")
    ]
    assert len(results) > 250, f"only {len(results)} cases ran"
    assert not bad, "\n".join(bad)

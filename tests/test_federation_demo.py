"""A newcomer tries the fediverse with the demo (docs/federation.md, "Try it with the demo"):
`liveblog serve --demo --https` prints a session's handle and the command that follows it; that
command (scripts/fediverse-follow, a Fedify server on loopback: software written outside this
project) looks the handle up over https, trusting only the CA the demo made, follows, receives
the Accept and then the notes the demo note-taker writes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
FOLLOW = ROOT / "scripts" / "fediverse-follow"
pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def demo_over_https(folder: Path) -> AsyncIterator[tuple[str, list[str]]]:
    """`liveblog serve --demo --https` as a newcomer starts it; (its base URL, its output lines,
    growing), once it has printed how to follow a session."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liveblog",
        "--db",
        str(folder / "demo.sqlite3"),
        "serve",
        "--demo",
        "--https",
        "--port",
        str(port),
        "--demo-every",
        "0.5",
        "--log-level",
        "warning",
        cwd=folder,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    printed = asyncio.Event()

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:  # read to the end: the server never blocks on a full pipe
            lines.append(raw.decode(errors="replace").rstrip("\n"))
            if "Follow it:" in lines[-1]:
                printed.set()

    reader = asyncio.create_task(read())
    try:
        try:
            async with asyncio.timeout(60):
                await printed.wait()
        except TimeoutError:
            raise AssertionError(
                "the demo did not say how to follow it:\n" + "\n".join(lines[-40:])
            ) from None
        yield f"https://127.0.0.1:{port}", lines
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(20):
            await proc.wait()
            await reader


async def test_a_standard_client_looks_the_demo_session_up_by_its_handle_and_follows_it(
    tmp_path: Path,
) -> None:
    if not (FOLLOW.parent / "fediverse" / "node_modules" / "@fedify" / "fedify").exists():
        pytest.fail(
            "scripts/fediverse/node_modules is not installed: run ./scripts/test (it runs npm ci there)"
        )
    async with demo_over_https(tmp_path) as (base, output):
        told = next(line for line in output if "Follow it:" in line)
        command = shlex.split(told.split("Follow it:", 1)[1])
        env_part, script, handle = command
        assert script == "scripts/fediverse-follow"
        assert re.fullmatch(r"@[a-z0-9-]+@127\.0\.0\.1:\d+", handle), handle
        ca_file = Path(env_part.removeprefix("NODE_EXTRA_CA_CERTS="))
        assert ca_file.parent == tmp_path and ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")

        # The demo's certificate is trusted through this run's CA only: an ordinary client
        # without it refuses the connection.
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as untrusting:
                await untrusting.get(f"{base}/healthz")

        # The printed command, run as printed (from the checkout), with a deadline for each wait.
        follow = await asyncio.create_subprocess_exec(
            str(ROOT / script),
            handle,
            "--until",
            "note",
            "--timeout",
            "45",
            cwd=ROOT,
            env={**os.environ, "NODE_EXTRA_CA_CERTS": str(ca_file)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(100):
            said = (await follow.communicate())[0].decode()
        assert follow.returncode == 0, said
        async with httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=ca_file), base_url=base
        ) as client:
            finger = (
                await client.get("/.well-known/webfinger", params={"resource": f"acct:{handle[1:]}"})
            ).json()
            actor = next(link["href"] for link in finger["links"] if link["rel"] == "self")
            followers = (
                await client.get(f"{actor}/followers", headers={"accept": "application/activity+json"})
            ).json()
        assert f"Found {handle}: {actor}" in said
        assert f"Accepted: you follow {handle}" in said
        assert re.search(rf"New note {re.escape(base)}/ap/notes/\d+: \S", said), said
        assert followers["totalItems"] == 1  # the follower is stored

"""The delivery queue survives kill -9 (docs/federation.md): a delivery in flight when the server
process is killed is made again by the next process, at least once, under the same activity id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import eventually, free_port, listening
from tests.fediverse_peer import running_peer
from tests.test_durability import prepare

pytestmark = pytest.mark.slow


def start(tmp_path: Path, db: Path, port: int) -> subprocess.Popen[bytes]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\npath = "{db}"\n[server]\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
        "[federation]\nallow_private_addresses = true\n"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "liveblog", "--config", str(config), "serve", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_delivery_in_flight_at_kill_9_is_made_by_the_next_process(tmp_path: Path) -> None:
    db, s = await prepare(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = start(tmp_path, db, port)
    second = None
    try:
        await listening(first, url)
        async with running_peer() as peer:
            peer.add("alice")
            actor = f"{url}/ap/sessions/{s.session_id}"
            follow = {
                "id": f"{peer.actor('alice')}/follows/1",
                "type": "Follow",
                "actor": peer.actor("alice"),
                "object": actor,
            }
            assert (await peer.post(f"{actor}/inbox", follow, as_="alice")).status_code == 202
            await peer.wait_for("Accept")

            peer.hold = True  # the next delivery hangs: it is in flight when the process dies
            async with httpx.AsyncClient(timeout=10) as client:
                sent = await client.post(
                    f"{url}/api/v1/sessions/{s.session_id}/capture",
                    json={"type": "note.create", "client_id": "n1", "body": "said before the crash"},
                    headers={"authorization": f"Bearer {s.token}"},
                )
            assert sent.status_code == 201, sent.text
            await eventually(lambda: peer.held == 1, 15, "the Create to be in flight")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            peer.hold = False
            peer.release.set()

            second = start(tmp_path, db, port)
            await listening(second, url)
            create = await peer.wait_for("Create", 20)
            assert create.verified == "ok"
            assert "said before the crash" in create.activity["object"]["content"]
            assert create.activity["id"].endswith("/activity")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)

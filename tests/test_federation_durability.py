"""The delivery queue survives kill -9 (docs/federation.md): a delivery in flight when the server
process is killed is made again by the next process, at least once, under the same activity id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from liveblog.services import Services
from tests.conftest import eventually, free_port, listening, make_settings
from tests.fediverse_peer import running_peer
from tests.test_durability import prepare
from tests.test_redaction import note_taker

pytestmark = pytest.mark.slow


def start(tmp_path: Path, db: Path, port: int, held_bind: bool = False) -> subprocess.Popen[bytes]:
    """`liveblog serve` on the file; with `held_bind`, its socket is bound only once a line is
    written to its stdin, and its stderr is a pipe to read (tests/held_bind.py)."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\npath = "{db}"\n[server]\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
        "[federation]\nallow_private_addresses = true\n"
    )
    module = "tests.held_bind" if held_bind else "liveblog"
    return subprocess.Popen(
        [sys.executable, "-m", module, "--config", str(config), "serve", "--log-level", "warning"],
        stdin=subprocess.PIPE if held_bind else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if held_bind else subprocess.DEVNULL,
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


async def test_a_restarted_server_delivers_only_once_it_listens(tmp_path: Path) -> None:
    """A server restarted with deliveries due starts them once it answers: the receiver fetches
    our key as the delivery arrives (as Mastodon does), and before uvicorn had bound its socket
    that fetch failed (the delivery then waited 30 s for its retry). The bind is held here until
    the delivery reached the receiver, or the server said it waits for the socket."""
    db, s = await prepare(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with running_peer() as peer:
        peer.add("alice")
        first = start(tmp_path, db, port)
        try:
            await listening(first, url)
            actor = f"{url}/ap/sessions/{s.session_id}"
            follow = {
                "id": f"{peer.actor('alice')}/follows/1",
                "type": "Follow",
                "actor": peer.actor("alice"),
            }
            answer = await peer.post(f"{actor}/inbox", {**follow, "object": actor}, as_="alice")
            assert answer.status_code == 202
            await peer.wait_for("Accept")
        finally:
            first.terminate()
            first.wait(10)

        # Written while the server is down: the next one publishes it, and delivers it as it starts.
        settings = make_settings(tmp_path, database={"path": str(db)}, federation={"enabled": False})
        services = Services.build(settings)
        await services.open()
        try:
            await services.notes.handle(
                s.session_id,
                await note_taker(services, s),
                {"type": "note.create", "client_id": "n1", "body": "said while it was down"},
            )
        finally:
            await services.close()

        second = start(tmp_path, db, port, held_bind=True)
        said: list[bytes] = []  # its log, line by line

        def read() -> None:
            assert second.stderr is not None
            for line in second.stderr:
                said.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:

            def waiting() -> bool:
                return any(b"binding" in line for line in said) and (
                    any(d.activity["type"] == "Create" for d in peer.received)
                    or any(b"deliveries wait until the server listens" in line for line in said)
                )

            await eventually(waiting, 20, "the delivery, or the server to say it waits for its socket")
            assert second.stdin is not None
            second.stdin.write(b"bind\n")
            second.stdin.flush()
            await listening(second, url)
            create = await peer.wait_for("Create", 20)
            assert create.verified == "ok", create.verified
            assert "said while it was down" in create.activity["object"]["content"]
        finally:
            second.kill()
            second.wait(10)
            reader.join(10)
            for pipe in (second.stdin, second.stderr):
                if pipe is not None:
                    pipe.close()

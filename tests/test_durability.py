"""Real server processes: kill -9 loses no acknowledged note; SIGTERM shuts down cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from liveblog.services import Services
from tests.conftest import Seed, free_port, listening, make_settings, seed
from tests.wsclient import connect, recv, recv_type, send

pytestmark = pytest.mark.slow


async def prepare(tmp_path: Path) -> tuple[Path, Seed]:
    settings = make_settings(
        tmp_path, database={"path": str(tmp_path / "test.sqlite3")}
    )  # read as a file below
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
    finally:
        await services.close()
    return Path(settings.database.path), s


class ServerProcess:
    def __init__(self, db: Path, tmp_path: Path) -> None:
        self.port = free_port()
        config = tmp_path / "config.toml"
        config.write_text(f'[database]\npath = "{db}"\n[server]\nport = {self.port}\n')
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "liveblog", "--config", str(config), "serve", "--log-level", "warning"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        await listening(self.proc, self.url)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)  # waits, reads and closes the pipe


@pytest.fixture
async def server_factory(tmp_path: Path) -> AsyncIterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def stored_client_ids(db: Path, session_id: str) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [
            r[0]
            for r in conn.execute(
                "SELECT client_id FROM items WHERE session_id = ? ORDER BY id", (session_id,)
            )
        ]
    finally:
        conn.close()


async def test_kill_9_during_a_stream_of_notes_loses_no_acknowledged_note(
    tmp_path: Path, server_factory: list[ServerProcess]
) -> None:
    db, s = await prepare(tmp_path)
    server = ServerProcess(db, tmp_path)
    server_factory.append(server)
    await server.ready()
    acked: set[str] = set()
    sent: list[str] = []
    url = f"{server.ws_url}/ws/v1/sessions/{s.session_id}/capture"
    ws = await connect(url, token=s.token)
    await recv_type(ws, "synced")
    progressed = asyncio.Event()

    async def reader() -> None:
        try:
            while True:
                message = await recv(ws, timeout=30)
                if message["type"] == "ack":
                    acked.add(message["client_id"])
                    progressed.set()
        except ConnectionClosed:
            progressed.set()

    reading = asyncio.create_task(reader())
    # Pipeline notes without waiting for acks, like an outbox flushing; kill mid-stream.
    try:
        for i in range(2000):
            cid = f"note-{i:05d}"
            sent.append(cid)
            await send(ws, {"type": "note.create", "client_id": cid, "body": f"- point {i}"})
            if len(acked) >= 200:
                os.kill(server.proc.pid, signal.SIGKILL)
                break
            # Keep up to 50 notes in flight (unacknowledged), like an outbox flushing.
            while len(sent) - len(acked) > 50:
                progressed.clear()
                await asyncio.wait_for(progressed.wait(), 10)
    except ConnectionClosed:
        pass
    async with asyncio.timeout(10):
        await reading
    server.proc.wait(10)
    assert server.proc.returncode == -signal.SIGKILL
    assert len(acked) >= 200

    stored = stored_client_ids(db, s.session_id)
    assert acked <= set(stored), f"acknowledged but lost: {sorted(acked - set(stored))[:5]}"
    assert len(stored) == len(set(stored))

    # The note-taker's outbox resends everything not acknowledged: nothing lost, nothing doubled.
    restarted = ServerProcess(db, tmp_path)
    server_factory.append(restarted)
    await restarted.ready()
    ws = await connect(f"{restarted.ws_url}/ws/v1/sessions/{s.session_id}/capture", token=s.token)
    await recv_type(ws, "synced")
    pending = [cid for cid in sent if cid not in acked]
    for cid in pending:
        await send(ws, {"type": "note.create", "client_id": cid, "body": f"- point {int(cid[5:])}"})
    for _ in pending:
        ack = await recv_type(ws, "ack")
        acked.add(ack["client_id"])
    await ws.close()
    final = stored_client_ids(db, s.session_id)
    assert sorted(final) == sorted(sent)


async def test_sigterm_closes_connections_and_the_database_within_seconds(
    tmp_path: Path, server_factory: list[ServerProcess]
) -> None:
    db, s = await prepare(tmp_path)
    server = ServerProcess(db, tmp_path)
    server_factory.append(server)
    await server.ready()
    viewer = await connect(f"{server.ws_url}/ws/v1/sessions/{s.session_id}")
    await recv_type(viewer, "synced")
    note_taker = await connect(f"{server.ws_url}/ws/v1/sessions/{s.session_id}/capture", token=s.token)
    await recv_type(note_taker, "synced")
    await send(note_taker, {"type": "note.create", "client_id": "before-term", "body": "saved"})
    await recv_type(note_taker, "ack")
    loop = asyncio.get_running_loop()
    started = loop.time()
    server.proc.send_signal(signal.SIGTERM)
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(10):
            while True:
                await viewer.recv()
    assert viewer.close_code in (1001, 1012)  # going away / service restart: clients reconnect
    await asyncio.to_thread(server.proc.wait, 10)
    # uvicorn finishes its shutdown (lifespan included) and then re-raises SIGTERM, as it should.
    assert server.proc.returncode in (0, -signal.SIGTERM)
    assert loop.time() - started < 6
    # Closed cleanly: the WAL was checkpointed into the main file and removed or emptied.
    wal = Path(str(db) + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert stored_client_ids(db, s.session_id) == ["before-term"]

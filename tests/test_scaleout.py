"""Three app processes behind real PostgreSQL and Redis (issue 11): notes written on any process
reach viewers on every process in order; a Redis restart mid-stream loses nothing; a viewer
that moves to another process resumes exactly; kill -9 of a process loses no acknowledged note."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from liveblog.services import Services
from tests.conftest import (
    ORGANISER,
    Seed,
    eventually,
    free_port,
    listening,
    make_settings,
    query,
    seed,
    stop_process,
)
from tests.servers import RedisServer
from tests.wsclient import connect, recv, recv_type, send

pytestmark = pytest.mark.slow

SECRET = "scaleout-test-secret"


class AppProcess:
    def __init__(self, tmp_path: Path, pg_url: str, redis_url: str, index: int, secret: str = SECRET) -> None:
        self.port = free_port()
        config = tmp_path / f"app{index}.toml"
        config.write_text(
            f'[server]\nport = {self.port}\n[database]\nurl = "{pg_url}"\n'
            f'[redis]\nurl = "{redis_url}"\nresync_seconds = 1\n'
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "liveblog", "--config", str(config), "serve", "--log-level", "warning"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LIVEBLOG_SECRET_KEY": secret},
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)


class Viewer:
    """A websocket viewer that records every change it is sent, in order, and how it ended."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.changes: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, app: AppProcess, session_id: str, query_string: str = "") -> Viewer:
        ws = await connect(f"{app.ws_url}/ws/v1/sessions/{session_id}{query_string}")
        await recv_type(ws, "synced")
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if message.get("type") == "change":
                    self.changes.append(message)
        except ConnectionClosed:
            pass
        self.close_code = self.ws.close_code

    def seqs(self) -> list[int]:
        return [c["seq"] for c in self.changes]

    async def until(self, seq: int, timeout: float = 20) -> None:
        await eventually(lambda: self.changes and self.changes[-1]["seq"] >= seq, timeout, f"seq {seq}")

    async def close(self) -> None:
        await self.ws.close()
        await self.task


@pytest.fixture
async def cluster(
    tmp_path: Path, pg_url: str
) -> AsyncIterator[tuple[list[AppProcess], RedisServer, Seed, str]]:
    """Seeded PostgreSQL, a Redis of this test's own (it gets restarted), three app processes."""
    services = Services.build(make_settings(tmp_path, database={"url": pg_url}))
    await services.open()
    try:
        seeded = await seed(services)
    finally:
        await services.close()
    redis = RedisServer().start()
    apps = [AppProcess(tmp_path, pg_url, redis.url, i) for i in range(3)]
    try:
        await asyncio.gather(*(listening(app.proc, app.url, timeout=60) for app in apps))
        yield apps, redis, seeded, pg_url
    finally:
        for app in apps:
            app.stop()
        redis.remove()


async def write_notes(
    app: AppProcess, session_id: str, token: str, prefix: str, n: int
) -> list[dict[str, Any]]:
    """Send n notes on one capture socket; return their acks (each one means: committed)."""
    async with await connect(f"{app.ws_url}/ws/v1/sessions/{session_id}/capture", token=token) as ws:
        await recv_type(ws, "synced")
        for i in range(n):
            await send(ws, {"type": "note.create", "client_id": f"{prefix}-{i}", "body": f"{prefix} {i}"})
        return [await recv_type(ws, "ack") for _ in range(n)]


async def test_three_processes_share_one_ordered_stream_through_redis_restarts_and_moves(
    cluster: tuple[list[AppProcess], RedisServer, Seed, str],
) -> None:
    apps, redis, s, _ = cluster
    viewers = [await Viewer.open(app, s.session_id) for app in apps for _ in range(2)]

    # Viewer counts are shared: every process reports the six viewers (within a resync).
    async def everyone_counted() -> bool:
        for app in apps:
            async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
                stats = (await http.get(f"/api/v1/sessions/{s.session_id}/presence")).json()
            if stats["viewers"] != 6:
                return False
        return True

    await eventually(everyone_counted, 15, "every process to count all six viewers")

    # Two note-takers on two processes at once: seqs interleave across processes.
    acks = await asyncio.gather(
        write_notes(apps[0], s.session_id, s.token, "a", 15),
        write_notes(apps[1], s.session_id, s.token2, "b", 15),
    )
    head = max(a["seq"] for batch in acks for a in batch)
    for v in viewers:
        await v.until(head)
    expected = viewers[0].seqs()
    assert expected == list(range(expected[0], head + 1))
    assert all(v.seqs() == expected for v in viewers), "every viewer on every process sees the same order"

    # Redis goes away mid-stream and comes back on the same port: notes keep being acknowledged
    # (storage does not need Redis) and every viewer still gets every one, in order, without
    # being disconnected (the subscriber reconnects and fills the gap from storage).
    redis.stop(signal.SIGKILL)
    during = await write_notes(apps[0], s.session_id, s.token, "during", 10)
    redis.start()
    after = await write_notes(apps[2], s.session_id, s.token2, "after", 10)
    head = max(a["seq"] for a in during + after)
    for v in viewers:
        await v.until(head)
    for v in viewers:
        assert v.seqs() == list(range(expected[0], head + 1))
        assert v.close_code is None
    bodies = [c["item"]["body"] for c in viewers[2].changes if c["op"] == "item.created"]
    assert [b for b in bodies if b.startswith("during")] == [f"during {i}" for i in range(10)]

    # A viewer on process 1 leaves; notes go on; it comes back to process 2 with its position.
    mover = viewers[2]
    await mover.close()
    last = mover.changes[-1]["seq"]
    async with await connect(f"{apps[1].ws_url}/ws/v1/sessions/{s.session_id}") as probe:
        epoch = (await recv_type(probe, "hello"))["epoch"]
    more = await write_notes(apps[0], s.session_id, s.token, "moved", 5)
    head = max(a["seq"] for a in more)
    back = await connect(f"{apps[2].ws_url}/ws/v1/sessions/{s.session_id}?since={last}&epoch={epoch}")
    hello = await recv_type(back, "hello")
    assert hello["since"] == last
    # The changes it missed, in order, whether this process had them yet (replayed before
    # `synced`) or receives them from Redis a moment later (live after `synced`).
    replay = []
    while not replay or replay[-1]["seq"] < head:
        message = await recv(back)
        if message["type"] == "change":
            replay.append(message)
    await back.close()
    assert [c["seq"] for c in replay] == list(range(last + 1, head + 1))  # exactly what it missed
    for v in viewers[:2]:
        await v.until(head)
        assert replay == v.changes[-len(replay) :]
    for v in viewers:
        if v is not mover:
            await v.close()


async def test_kill_9_of_one_process_loses_no_acknowledged_note_for_anyone(
    cluster: tuple[list[AppProcess], RedisServer, Seed, str],
) -> None:
    apps, _, s, pg_url = cluster
    watchers = [await Viewer.open(app, s.session_id) for app in (apps[0], apps[2])]
    victim = apps[1]
    ws = await connect(f"{victim.ws_url}/ws/v1/sessions/{s.session_id}/capture", token=s.token)
    await recv_type(ws, "synced")
    acked: dict[str, int] = {}
    sent: list[str] = []
    progressed = asyncio.Event()

    async def reader() -> None:
        try:
            while True:
                message = await recv(ws, timeout=30)
                if message["type"] == "ack":
                    acked[message["client_id"]] = message["seq"]
                    progressed.set()
        except ConnectionClosed:
            progressed.set()

    reading = asyncio.create_task(reader())
    try:
        for i in range(1000):
            cid = f"k-{i:04d}"
            sent.append(cid)
            await send(ws, {"type": "note.create", "client_id": cid, "body": f"kill {i}"})
            if len(acked) >= 60:
                os.kill(victim.proc.pid, signal.SIGKILL)
                break
            while len(sent) - len(acked) > 20:
                progressed.clear()
                await asyncio.wait_for(progressed.wait(), 10)
    except ConnectionClosed:
        pass
    async with asyncio.timeout(15):
        await reading
    assert victim.proc.wait(10) == -signal.SIGKILL

    # Every acknowledged note reached the viewers on the surviving processes, once each.
    top = max(acked.values())
    for v in watchers:
        await v.until(top)
        seen = [c["item"]["client_id"] for c in v.changes if c["op"] == "item.created"]
        assert set(acked) <= set(seen)
        assert len(seen) == len(set(seen))
        assert v.seqs() == list(range(v.seqs()[0], v.seqs()[-1] + 1))

    # The outbox resends what was not acknowledged to another process: nothing lost or doubled.
    survivor = apps[2]
    async with await connect(
        f"{survivor.ws_url}/ws/v1/sessions/{s.session_id}/capture", token=s.token
    ) as again:
        await recv_type(again, "synced")
        for cid in sent:
            if cid not in acked:
                await send(again, {"type": "note.create", "client_id": cid, "body": f"kill {int(cid[2:])}"})
        for cid in sent:
            if cid not in acked:
                await recv_type(again, "ack")
    services = Services.build(make_settings(Path("/nonexistent"), database={"url": pg_url}))
    await services.open()
    try:
        rows = await query(services.db, f"SELECT client_id FROM items WHERE session_id = '{s.session_id}'")
    finally:
        await services.close()
    stored = [r[0] for r in rows]
    assert sorted(stored) == sorted(sent)
    for v in watchers:
        await v.close()


async def test_state_is_shared_throttles_poll_state_and_the_secret_key(
    cluster: tuple[list[AppProcess], RedisServer, Seed, str],
    tmp_path: Path,
) -> None:
    apps, redis, s, pg_url = cluster
    # Password guessing spread over three processes is counted once: after ACCOUNT_FREE + 3
    # failures in all (under each process's own allowance), every process makes the next try
    # wait. With per-process counts none would.
    from liveblog.access.throttle import ACCOUNT_FREE

    clients = [httpx.AsyncClient(base_url=app.url, timeout=30) for app in apps]
    try:
        turn = iter(range(10**6))

        async def counted_failure() -> bool:
            wrong = await clients[next(turn) % 3].post(
                "/api/v1/login", json={"username": ORGANISER[0], "password": "guess"}
            )
            assert wrong.status_code in (401, 429), wrong.text
            return wrong.status_code == 401  # 429: inside a back-off, not counted; try again

        # ACCOUNT_FREE + 3 counted failures, round the processes: the back-off is then 8 s.
        for _ in range(ACCOUNT_FREE + 3):
            await eventually(counted_failure, 30, "a counted failed log-in")
        # Within that back-off: the right password is refused on all three at once.
        tries = await asyncio.gather(
            *(
                c.post("/api/v1/login", json={"username": ORGANISER[0], "password": ORGANISER[1]})
                for c in clients
            )
        )
        assert [t.status_code for t in tries] == [429, 429, 429], [t.text for t in tries]
    finally:
        for c in clients:
            await c.aclose()

    # A poll created and opened on one process takes votes on the others at once.
    async with httpx.AsyncClient(base_url=apps[0].url, timeout=30) as http:
        created = await http.post(
            f"/api/v1/sessions/{s.session_id}/polls",
            json={"question": "Tea?", "options": ["yes", "no"], "open": False},
            headers={"Authorization": f"Bearer {s.token}"},
        )
        assert created.status_code == 201, created.text
        poll_id = created.json()["id"]
    async with httpx.AsyncClient(base_url=apps[1].url, timeout=30) as http:
        token = (await http.post("/api/v1/participants")).json()["token"]
        http.cookies.clear()  # the header alone (a cookie would need the CSRF token too)
        early = await http.post(
            f"/api/v1/polls/{poll_id}/votes", json={"choice": "a"}, headers={"Liveblog-Participant": token}
        )
        assert early.status_code == 409  # not open yet: process 1 has now cached it as a draft
    async with httpx.AsyncClient(base_url=apps[0].url, timeout=30) as http:
        opened = await http.post(
            f"/api/v1/polls/{poll_id}/state",
            json={"state": "open"},
            headers={"Authorization": f"Bearer {s.token}"},
        )
        assert opened.status_code == 200, opened.text
    async with httpx.AsyncClient(base_url=apps[1].url, timeout=30) as http:
        voted = await http.post(
            f"/api/v1/polls/{poll_id}/votes", json={"choice": "a"}, headers={"Liveblog-Participant": token}
        )
        assert voted.status_code in (200, 201), voted.text

    # Votes spread over three processes: one tally writer per poll per interval in all (claims in
    # Redis), and the last tally exact.
    watcher = await Viewer.open(apps[2], s.session_id)
    started = asyncio.get_running_loop().time()
    for i in range(30):
        async with httpx.AsyncClient(base_url=apps[i % 3].url, timeout=30) as http:
            who = (await http.post("/api/v1/participants")).json()["token"]
            http.cookies.clear()
            r = await http.post(
                f"/api/v1/polls/{poll_id}/votes", json={"choice": "b"}, headers={"Liveblog-Participant": who}
            )
            assert r.status_code in (200, 201), r.text

    def tallies() -> list[dict[str, Any]]:
        return [c for c in watcher.changes if c["op"] == "poll.tally" and c["item_id"] == poll_id]

    await eventually(
        lambda: tallies() and tallies()[-1]["tally"] == {"a": 1, "b": 30}, 15, "the exact final tally"
    )
    elapsed = asyncio.get_running_loop().time() - started
    interval = 0.25  # votes.tally_interval_ms
    # Three writers would make up to three tallies per interval; one writer at most one (+ the edges).
    assert len(tallies()) <= elapsed / interval + 3, (len(tallies()), elapsed)
    await watcher.close()

    # Feed pollers run in exactly one of the three processes (a lease in Redis).
    leaders = 0
    for app in apps:
        async with httpx.AsyncClient(base_url=app.url, timeout=30) as http:
            report = (await http.get("/healthz")).json()
        leaders += bool(report["components"]["feeds"]["runs_here"])
    assert leaders == 1

    # Revoking an invite on one process closes the socket it opened on another, at once.
    async with await connect(f"{apps[2].ws_url}/ws/v1/sessions/{s.session_id}/capture", token=s.token) as ws:
        await recv_type(ws, "synced")
        async with httpx.AsyncClient(base_url=apps[0].url, timeout=30) as http:
            revoked = await http.delete(
                f"/api/v1/invites/{s.invite_id}", headers={"Authorization": f"Bearer {s.login_token}"}
            )
        assert revoked.status_code == 200, revoked.text
        assert (await recv_type(ws, "error"))["code"] == "revoked"

    # A process with another secret key refuses to start, and says why.
    stranger = AppProcess(tmp_path, pg_url, redis.url, 9, secret="some-other-secret")
    out, _ = stranger.proc.communicate(timeout=60)
    assert stranger.proc.returncode != 0
    assert b"LIVEBLOG_SECRET_KEY" in out


@pytest.fixture
def process_logging() -> Iterator[None]:
    """`serve` configures logging for the whole process (root handler to the stderr of the
    moment, INFO): put it back, or every later test in the session logs INFO through a handler
    on this test's closed capture stream ("--- Logging error ---" and a traceback per record)."""
    root, httpx_log = logging.getLogger(), logging.getLogger("httpx")
    handlers, levels = list(root.handlers), (root.level, httpx_log.level)
    yield
    root.handlers[:] = handlers
    root.setLevel(levels[0])
    httpx_log.setLevel(levels[1])


def test_serve_workers_refuses_without_shared_storage_fanout_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, process_logging: None
) -> None:
    from liveblog.cli import main

    monkeypatch.delenv("LIVEBLOG_SECRET_KEY", raising=False)
    config = tmp_path / "one.toml"
    config.write_text('[database]\npath = "x.sqlite3"\n')
    assert main(["--config", str(config), "serve", "--workers", "3"]) == 2
    err = capsys.readouterr().err
    assert "database.url" in err and "redis.url" in err and "LIVEBLOG_SECRET_KEY" in err


async def test_serve_workers_runs_n_processes_on_one_port_sharing_the_stream(
    tmp_path: Path, pg_url: str, redis_server: RedisServer
) -> None:
    services = Services.build(make_settings(tmp_path, database={"url": pg_url}))
    await services.open()
    try:
        s = await seed(services)
    finally:
        await services.close()
    port = free_port()
    config = tmp_path / "workers.toml"
    config.write_text(
        f'[server]\nport = {port}\n[database]\nurl = "{pg_url}"\n[redis]\nurl = "{redis_server.url}"\n'
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liveblog",
            "--config",
            str(config),
            "serve",
            "--workers",
            "2",
            "--log-level",
            "info",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LIVEBLOG_SECRET_KEY": SECRET},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await listening(proc, base, timeout=60)
        # Connections land on either worker; every viewer gets every note, in order.
        app = AppProcess.__new__(AppProcess)
        app.ws_url, app.url = f"ws://127.0.0.1:{port}", base
        viewers = [await Viewer.open(app, s.session_id) for _ in range(6)]
        acks = await write_notes(app, s.session_id, s.token, "w", 10)
        top = acks[-1]["seq"]
        for v in viewers:
            await v.until(top)
            assert v.seqs()[-10:] == list(range(top - 9, top + 1))
            await v.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert out.count(b"Started server process") >= 2, out.decode(errors="replace")[-2000:]


async def test_revoking_an_invite_on_one_process_closes_its_socket_on_another(
    cluster: tuple[list[AppProcess], RedisServer, Seed, str],
) -> None:
    apps, _redis, s, _pg = cluster
    async with await connect(f"{apps[1].ws_url}/ws/v1/sessions/{s.session_id}/capture", token=s.token) as ws:
        await recv_type(ws, "synced")
        async with httpx.AsyncClient(base_url=apps[0].url, timeout=30) as http:
            revoked = await http.delete(
                f"/api/v1/invites/{s.invite_id}", headers={"Authorization": f"Bearer {s.login_token}"}
            )
            assert revoked.status_code == 200
        await assert_revoked_and_closed(ws)


@dataclass
class CaptureOnB:
    """Two processes' services in this one (each its own writer, hub and Redis subscriber, as
    separate processes have), and a note-taker's capture socket open on B."""

    a: Services
    b: Services
    b_fanout: Any
    seed: Seed
    ws: Any
    redis: RedisServer


@contextlib.asynccontextmanager
async def capture_socket_on_b(tmp_path: Path, pg_url: str) -> AsyncIterator[CaptureOnB]:
    from liveblog.streams.fanout import RedisFanout
    from tests.conftest import run_server

    redis = RedisServer().start()
    settings = make_settings(
        tmp_path, database={"url": pg_url}, redis={"url": redis.url, "resync_seconds": 1}
    )
    a, b = Services.build(settings), Services.build(settings)
    try:
        await a.open()
        await b.open()
        s = await seed(a)
        b_fanout = next(c for c in b.components if isinstance(c, RedisFanout))
        async with (
            run_server(settings, b) as live,
            await connect(f"{live.ws_url}/ws/v1/sessions/{s.session_id}/capture", token=s.token) as ws,
        ):
            await recv_type(ws, "synced")
            await eventually(lambda: b_fanout.connected, what="B's subscriber")
            yield CaptureOnB(a, b, b_fanout, s, ws, redis)
    finally:
        await b.close()
        await a.close()
        redis.remove()


async def assert_revoked_and_closed(ws: Any) -> None:
    from liveblog.streams.protocol import CloseCode

    assert (await recv_type(ws, "error", timeout=30))["code"] == "revoked"
    async with asyncio.timeout(20):
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
    assert ws.close_code == CloseCode.REVOKED


async def test_a_revocation_made_while_redis_is_down_closes_the_socket_elsewhere_once_redis_is_back(
    tmp_path: Path, pg_url: str
) -> None:
    # The organiser revokes on A while Redis is down, so the revocation's message to B is lost.
    # When B subscribes again it re-checks its sockets' invites against storage and closes this one.
    from liveblog.access.sockets import invite_key

    async with capture_socket_on_b(tmp_path, pg_url) as c:
        c.redis.stop()
        await eventually(lambda: not c.b_fanout.connected, what="B to notice Redis is gone")
        await c.a.accounts.revoke_invite(c.seed.invite_id)
        assert c.b.accounts.sockets.count(invite_key(c.seed.invite_id)) == 1  # B has not heard
        c.redis.start()
        await assert_revoked_and_closed(c.ws)


async def test_a_revocation_whose_message_is_lost_closes_the_socket_elsewhere_at_the_next_resync(
    tmp_path: Path, pg_url: str
) -> None:
    # Redis stays up and B stays subscribed, but A's message about the revocation is lost on the
    # way (what a failed publish does). B's resync re-checks its sockets' invites.
    from liveblog.access.sockets import invite_key

    async with capture_socket_on_b(tmp_path, pg_url) as c:
        lost: list[str] = []
        c.a.accounts.sockets.broadcast = lost.append  # the publish never reaches Redis
        await c.a.accounts.revoke_invite(c.seed.invite_id)
        assert lost == [invite_key(c.seed.invite_id)]
        reconnects = c.b_fanout.reconnects
        await assert_revoked_and_closed(c.ws)
        assert c.b_fanout.connected and c.b_fanout.reconnects == reconnects  # no reconnect needed


async def test_what_a_process_queued_for_the_others_is_sent_before_it_closes(
    redis_server: RedisServer,
) -> None:
    """`liveblog import` restores an event and signals the servers (feeds.retarget) just before it
    exits: the message must reach Redis, not die in the publisher's queue when the process
    closes its services a moment later."""
    import redis.asyncio as aioredis

    from liveblog.lifecycle import Supervisor
    from liveblog.streams.fanout import CHANNEL, RedisFanout
    from liveblog.streams.hub import StreamHub

    async def nothing(*args: Any) -> Any:
        raise AssertionError("no session is watched here")

    listener = aioredis.from_url(redis_server.url)
    pubsub = listener.pubsub()
    await pubsub.subscribe(CHANNEL)
    assert (await pubsub.get_message(timeout=5) or {}).get("type") == "subscribe"
    supervisor = Supervisor()
    fanout = RedisFanout(
        redis_server.url, StreamHub(load_head=nothing, load_changes=nothing), secret_key="a test key"
    )
    try:
        await fanout.open(supervisor)
        for _ in range(3):
            fanout.send_signal("feeds.retarget")
        await fanout.close()  # at once, as a command's services close after its work
        await supervisor.close()
        received = []
        async with asyncio.timeout(5):
            while len(received) < 3:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    received.append(json.loads(message["data"])["sig"])
        assert received == ["feeds.retarget"] * 3
    finally:
        await supervisor.close()
        await pubsub.aclose()
        await listener.aclose()

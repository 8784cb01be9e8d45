"""End to end over real websockets on loopback: fan-out, resume, dedupe, slow viewers, origins,
and every bad input of issue 2 point 7 with its documented answer."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from liveblog.capture.notes import Author
from liveblog.storage.repo import StreamOps
from liveblog.streams.protocol import CloseCode
from tests.conftest import BACKENDS, LiveServer, Seed, eventually, make_settings, query, run_server, seed
from tests.wsclient import connect, recv, recv_type, recv_until, send


def changes(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("type") == "change"]


async def close_code(ws: Any, timeout: float = 10) -> int | None:
    """Read until the server closes; return its close code."""
    async with asyncio.timeout(timeout):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed:
            pass
    return ws.close_code  # type: ignore[no-any-return]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_notes_from_two_note_takers_reach_50_viewers_in_order(live: LiveServer, seeded: Seed) -> None:
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}"
    viewers = await asyncio.gather(*(connect(url) for _ in range(50)))
    heads = [await recv_type(v, "synced") for v in viewers]
    start = heads[0]["seq"]
    ada = await connect(url + "/capture", token=seeded.token)
    grace = await connect(url + "/capture", token=seeded.token2)
    for ws in (ada, grace):
        await recv_type(ws, "synced")

    async def write(ws: Any, who: str) -> None:
        for i in range(10):
            await send(ws, {"type": "note.create", "client_id": f"{who}-{i}", "body": f"{who} says {i}"})

    await asyncio.gather(write(ada, "ada"), write(grace, "grace"))
    end = start + 20

    async def collect(v: Any) -> list[dict[str, Any]]:
        return changes(await recv_until(v, lambda m: m.get("type") == "change" and m["seq"] == end))

    received = await asyncio.gather(*(collect(v) for v in viewers))
    for got in received:
        assert [m["seq"] for m in got] == list(range(start + 1, end + 1))
    bodies = [m["item"]["body"] for m in received[0]]
    assert [b for b in bodies if b.startswith("ada")] == [f"ada says {i}" for i in range(10)]
    assert [b for b in bodies if b.startswith("grace")] == [f"grace says {i}" for i in range(10)]
    # Each note-taker sees the other's notes live on the capture socket.
    ada_seen = changes(await recv_until(ada, lambda m: m.get("type") == "change" and m["seq"] == end))
    grace_seen = changes(await recv_until(grace, lambda m: m.get("type") == "change" and m["seq"] == end))
    assert [m["item"]["author"] for m in ada_seen] == [m["item"]["author"] for m in grace_seen]
    assert {m["item"]["author"] for m in ada_seen} == {"Ada", "Grace"}
    for ws in (*viewers, ada, grace):
        await ws.close()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_ack_comes_after_commit_and_resend_creates_nothing(live: LiveServer, seeded: Seed) -> None:
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}/capture"
    async with await connect(url, token=seeded.token) as ws:
        await recv_type(ws, "synced")
        await send(ws, {"type": "note.create", "client_id": "n1", "body": "hello"})
        ack = await recv_type(ws, "ack")
        # The ack promises durability: the row is visible to a separate connection now.
        stored = await query(live.services.db, "SELECT id FROM items WHERE client_id = 'n1'")
        assert [r[0] for r in stored] == [ack["item_id"]]
    # The ack was "lost": a new connection resends the same message.
    async with await connect(url, token=seeded.token) as ws:
        await recv_type(ws, "synced")
        await send(ws, {"type": "note.create", "client_id": "n1", "body": "hello"})
        again = await recv_type(ws, "ack")
        await send(ws, {"type": "note.create", "client_id": "n1", "body": "changed"})
        error = await recv_type(ws, "error")
    assert again == {**ack, "duplicate": True}
    assert error["code"] == "client_id_conflict" and error["client_id"] == "n1"
    async with live.client() as http:
        snapshot = (await http.get(f"/api/v1/sessions/{seeded.session_id}/items")).json()
    assert [i["body"] for i in snapshot["items"]] == ["hello"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_viewer_resumes_with_exactly_the_missed_items_then_live(
    live: LiveServer, seeded: Seed
) -> None:
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}"
    note_taker = await connect(url + "/capture", token=seeded.token)
    await recv_type(note_taker, "synced")
    viewer = await connect(url)
    hello = await recv_type(viewer, "hello")
    await recv_type(viewer, "synced")
    for i in range(5):
        await send(note_taker, {"type": "note.create", "client_id": f"a{i}", "body": f"note {i}"})
    seen = changes(
        await recv_until(viewer, lambda m: m.get("seq") == hello["seq"] + 3 and m["type"] == "change")
    )
    last = seen[-1]["seq"]
    await viewer.close()  # drops mid-stream
    for i in range(5, 10):
        await send(note_taker, {"type": "note.create", "client_id": f"a{i}", "body": f"note {i}"})
    await recv_until(note_taker, lambda m: m.get("type") == "ack" and m["client_id"] == "a9")
    resumed = await connect(f"{url}?since={last}&epoch={hello['epoch']}")
    replay = await recv_until(resumed, lambda m: m["type"] == "synced")
    await send(note_taker, {"type": "note.create", "client_id": "a10", "body": "note 10"})
    live_one = await recv_type(resumed, "change")
    got = [m["seq"] for m in changes(replay)] + [live_one["seq"]]
    assert got == list(range(last + 1, hello["seq"] + 12))
    assert [m["item"]["body"] for m in changes(replay)] == [f"note {i}" for i in range(3, 10)]
    await resumed.close()
    await note_taker.close()


async def test_positions_that_cannot_be_resumed_are_told_to_reload(live: LiveServer, seeded: Seed) -> None:
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}"
    async with await connect(f"{url}?since=999") as ws:
        reload = await recv_type(ws, "reload")
        assert reload["reason"] == "future_position"
        assert await close_code(ws) == CloseCode.RELOAD
    async with await connect(f"{url}?since=0&epoch=abc123") as ws:
        assert (await recv_type(ws, "reload"))["reason"] == "epoch_changed"
        assert await close_code(ws) == CloseCode.RELOAD


async def test_too_far_behind_must_reload(tmp_path: Any) -> None:
    settings = make_settings(tmp_path, streams={"replay_window": 3, "ring_size": 2})
    from liveblog.services import Services

    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        from liveblog.capture.notes import Author

        for i in range(6):
            await services.notes.handle(
                s.session_id, Author("Ada", "x"), {"type": "note.create", "client_id": f"n{i}", "body": "x"}
            )
        async with run_server(settings, services) as live:
            async with await connect(f"{live.ws_url}/ws/v1/sessions/{s.session_id}?since=1") as ws:
                assert (await recv_type(ws, "reload"))["reason"] == "too_far_behind"
            # Within the window but older than the ring: served from storage, no gap.
            head = (await services.programme.session(s.session_id)).last_seq
            async with await connect(f"{live.ws_url}/ws/v1/sessions/{s.session_id}?since={head - 3}") as ws:
                replay = await recv_until(ws, lambda m: m["type"] == "synced")
                assert [m["seq"] for m in changes(replay)] == [head - 2, head - 1, head]
    finally:
        await services.close()


async def test_a_viewer_that_never_reads_is_disconnected_without_holding_others_back(tmp_path: Any) -> None:
    settings = make_settings(tmp_path, streams={"viewer_buffer_bytes": 65536})
    from liveblog.services import Services

    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        async with run_server(settings, services) as live:
            url = f"{live.ws_url}/ws/v1/sessions/{s.session_id}"
            # max_queue=1: the client library stops reading from the socket at once.
            stalled = await connect(url, max_queue=1, max_size=None)
            healthy = await connect(url)
            await recv_type(healthy, "synced")
            note_taker = await connect(url + "/capture", token=s.token, max_size=None)
            await recv_type(note_taker, "synced")
            big = "x" * 60000
            sent = 0
            channel = services.hub.channels[s.session_id]
            # Loopback kernel buffers absorb a few MB before the server-side buffer grows.
            async with asyncio.timeout(60):
                while services.hub.dropped_slow == 0:
                    assert sent < 1000, "the stalled viewer was never disconnected"
                    await send(note_taker, {"type": "note.create", "client_id": f"big{sent}", "body": big})
                    await recv_type(note_taker, "ack")
                    sent += 1
                    # Bounded: the server never holds more than the limit (+ one frame) for it.
                    for outlet in channel.live:
                        buffered = outlet.buffered  # type: ignore[attr-defined]
                        assert buffered <= 65536 + 125000  # one change holds the body and its HTML
            assert len(channel.live) == 2  # the healthy viewer and the note-taker remain
            head = channel.head
            got = await recv_until(
                healthy, lambda m: m.get("type") == "change" and m["seq"] == head, timeout=30
            )
            assert len(changes(got)) == sent
            assert await close_code(stalled, timeout=60) == CloseCode.TOO_SLOW
            for ws in (healthy, note_taker):
                await ws.close()
    finally:
        await services.close()


async def test_a_foreign_origin_is_refused_at_the_handshake(live: LiveServer, seeded: Seed) -> None:
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}"
    for path, token in ((url, None), (url + "/capture", seeded.token)):
        with pytest.raises(InvalidStatus) as info:
            await connect(path, token=token, origin="https://evil.example")
        assert info.value.response.status_code == 403
    async with await connect(url, origin=live.url) as ws:  # same origin is fine
        assert (await recv(ws))["type"] == "hello"
    async with live.client() as http:
        response = await http.post(
            f"/api/v1/sessions/{seeded.session_id}/capture",
            json={"client_id": "x", "body": "csrf"},
            headers={"Authorization": f"Bearer {seeded.token}", "Origin": "https://evil.example"},
        )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_origin"


async def test_note_taker_tokens_are_checked(live: LiveServer, seeded: Seed) -> None:
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}/capture"
    async with await connect(url) as ws:
        assert (await recv(ws))["code"] == "unauthorized"
        assert await close_code(ws) == CloseCode.UNAUTHORIZED
    async with await connect(url, token="made-up") as ws:
        assert await close_code(ws) == CloseCode.UNAUTHORIZED
    other = f"{live.ws_url}/ws/v1/sessions/{seeded.other_session_id}/capture"
    async with await connect(other, token=seeded.token) as ws:  # invited to another session
        assert (await recv(ws))["code"] == "forbidden"
        assert await close_code(ws) == CloseCode.FORBIDDEN
    await live.services.accounts.revoke_invite(seeded.invite_id)
    async with await connect(url, token=seeded.token) as ws:
        assert await close_code(ws) == CloseCode.UNAUTHORIZED


async def test_twenty_note_takers_joining_at_once_each_get_hello_for_one_read_each(
    live: LiveServer, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A room's note-takers reconnect together: each join costs one read of the live pool (the
    session and the invite in one snapshot), not one per check, so a burst queues half as long
    behind the two live readers. Timings are in bench.joins (docs/performance.md)."""
    db = live.services.db
    tokens = [
        (await live.services.accounts.invite(seeded.event_id, seeded.session_id, f"Taker {i}"))[1]
        for i in range(20)
    ]
    reads: list[str] = []
    plain_read = db.read

    async def counted(fn: Any, **kwargs: Any) -> Any:
        reads.append(kwargs.get("pool", "live"))
        return await plain_read(fn, **kwargs)

    monkeypatch.setattr(db, "read", counted)
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}/capture"
    # Each takes in whatever comes (max_queue=None): the others' presence fills a default queue,
    # a client with a full queue no longer reads, and its close would wait for websockets' 10 s
    # close timeout instead of the server's close frame.
    sockets = await asyncio.gather(*(connect(url, token=t, max_queue=None) for t in tokens))
    try:
        hellos = await asyncio.gather(*(recv_type(ws, "hello") for ws in sockets))
        assert sorted(h["you"]["name"] for h in hellos) == sorted(f"Taker {i}" for i in range(20))
        assert all(h["session"] == seeded.session_id for h in hellos)
        # One read per join, and one more to load the stream's head the first time.
        assert reads.count("live") <= 21, reads
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))


async def test_a_note_taker_joins_while_viewers_replay_from_storage_hold_the_readers(
    live: LiveServer, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Viewers resuming from before the ring (here: a fresh channel, as after a restart) replay
    from storage. However many there are, they leave one live reader for a join's checks: the
    note-taker gets its hello while their reads are held, and they resume without a gap after."""
    for i in range(3):
        note = {"type": "note.create", "client_id": f"r{i}", "body": "x"}
        await live.services.notes.handle(seeded.session_id, Author("Ada", "x"), note)
    head = (await live.services.programme.session(seeded.session_id)).last_seq
    hub = live.services.hub
    hub.sweep(now=time.monotonic() + hub.idle_seconds)  # freed, as after a restart: an empty ring
    assert seeded.session_id not in hub.channels
    gate = asyncio.Event()
    held: list[int] = []
    changes_between = StreamOps.changes_between

    async def held_back(self: StreamOps, session_id: str, after: int, upto: int) -> list[str]:
        held.append(after)
        await gate.wait()  # holds this reader connection, as a long replay read does
        return await changes_between(self, session_id, after, upto)

    monkeypatch.setattr(StreamOps, "changes_between", held_back)
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}"
    viewers = [await connect(f"{url}?since=0") for _ in range(3)]
    try:
        for ws in viewers:
            assert (await recv_type(ws, "hello"))["seq"] == head
        await eventually(lambda: len(held) >= 2, what="two replays reading")
        async with await connect(f"{url}/capture", token=seeded.token) as taker:
            assert (await recv_type(taker, "hello"))["role"] == "note-taker"
        gate.set()
        for ws in viewers:
            replayed = await recv_until(ws, lambda m: m["type"] == "synced")
            assert [m["seq"] for m in replayed if m["type"] == "change"] == list(range(1, head + 1))
    finally:
        gate.set()
        await asyncio.gather(*(ws.close() for ws in viewers))


async def test_bad_frames_get_error_frames_and_the_server_keeps_serving(
    live: LiveServer, seeded: Seed
) -> None:
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}"
    bystander = await connect(url)
    await recv_type(bystander, "synced")
    async with await connect(url + "/capture", token=seeded.token) as ws:
        await recv_type(ws, "synced")
        cases: list[tuple[Any, str]] = [
            ("{not json", "invalid_json"),
            ("[1, 2]", "invalid_json"),
            (b"\x00\x01", "unsupported_binary"),
            (json.dumps({"type": "note.shout", "client_id": "a"}), "unknown_type"),
            (json.dumps({"type": "note.create", "client_id": "a"}), "missing_field"),
            (json.dumps({"type": "note.create", "client_id": "a", "body": "x" * 70000}), "too_large"),
            (
                json.dumps({"type": "note.update", "client_id": "b", "item_id": 424242, "body": "x"}),
                "unknown_item",
            ),
        ]
        for frame, code in cases:
            await ws.send(frame)
            error = await recv_type(ws, "error")
            assert error["code"] == code, frame
        # Still serving: a good note goes through and the bystander gets it.
        await send(ws, {"type": "note.create", "client_id": "good", "body": "still here"})
        assert (await recv_type(ws, "ack"))["client_id"] == "good"
        assert (await recv_type(bystander, "change"))["item"]["body"] == "still here"
        # A frame over limits.frame_bytes closes with 1009 (message too big).
        await ws.send("x" * (live.services.settings.limits.frame_bytes + 1))
        assert await close_code(ws) == CloseCode.MESSAGE_TOO_BIG
    # Only the good note was stored: no bad frame left anything behind.
    stored = await live.services.db.read(lambda r: r.list_items(seeded.session_id, include_deleted=True))
    assert [i.client_id for i in stored] == ["good"]
    await bystander.close()


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("since=-1", CloseCode.BAD_REQUEST),
        ("since=abc", CloseCode.BAD_REQUEST),
        ("epoch=%3Cx%3E", CloseCode.BAD_REQUEST),
    ],
)
async def test_bad_positions_are_refused(live: LiveServer, seeded: Seed, query: str, code: int) -> None:
    async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}?{query}") as ws:
        assert (await recv(ws))["code"] == "bad_position"
        assert await close_code(ws) == code


async def test_unknown_session_and_ended_session(live: LiveServer, seeded: Seed) -> None:
    async with await connect(f"{live.ws_url}/ws/v1/sessions/nope") as ws:
        assert (await recv(ws))["code"] == "unknown_session"
        assert await close_code(ws) == CloseCode.NOT_FOUND
    async with await connect(f"{live.ws_url}/ws/v1/sessions/nope/capture", token=seeded.token) as ws:
        assert await close_code(ws) == CloseCode.NOT_FOUND
    await live.services.programme.set_state(seeded.session_id, "ended")
    async with await connect(
        f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}/capture", token=seeded.token
    ) as ws:
        await recv_type(ws, "synced")
        await send(ws, {"type": "note.create", "client_id": "late", "body": "too late"})
        assert (await recv_type(ws, "error"))["code"] == "session_ended"


async def test_the_session_ending_reaches_viewers_as_a_change(live: LiveServer, seeded: Seed) -> None:
    async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
        await recv_type(ws, "synced")
        await live.services.programme.set_state(seeded.session_id, "ended")
        change = await recv_type(ws, "change")
    assert change["op"] == "session.updated" and change["session"]["state"] == "ended"


async def test_heartbeats_and_ping(tmp_path: Any) -> None:
    settings = make_settings(tmp_path, streams={"heartbeat_seconds": 0.2})
    from liveblog.services import Services

    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        async with run_server(settings, services) as live:
            async with await connect(f"{live.ws_url}/ws/v1/sessions/{s.session_id}") as ws:
                beat = await recv_type(ws, "heartbeat", timeout=5)
                assert beat["viewers"] == 1 and beat["seq"] >= 1
                await send(ws, {"type": "ping"})
                await recv_type(ws, "pong")
    finally:
        await services.close()


async def test_the_fast_delivery_path_is_used_under_uvicorn(live: LiveServer, seeded: Seed) -> None:
    from liveblog.web.wsproto import FastWebSocketProtocol

    async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
        await recv_type(ws, "synced")
        (outlet,) = live.services.hub.channels[seeded.session_id].live
        assert isinstance(outlet, FastWebSocketProtocol)  # the connection itself is the outlet


async def test_one_commit_of_many_items_reaches_websocket_and_sse_viewers_as_separate_messages(
    live: LiveServer, seeded: Seed
) -> None:
    """A commit's changes go to each viewer in one write (hub.FrameBatch): a websocket viewer on
    the fast path and an SSE viewer each still get every change as its own message, in order."""
    count = 30

    async def many(tx: Any) -> int:
        last = 0
        for i in range(count):
            item, change = await tx.insert_item(
                session_id=seeded.session_id,
                kind="social",
                client_id=f"burst-{i}",
                author="Room",
                author_ref=None,
                body=f"burst {i} " + "x" * 200,
                html="",
                key_point=False,
                data={},
                typed_at="2026-05-14T09:30:00+00:00",
            )
            last = change.seq
        return last

    sse_seen: list[dict[str, Any]] = []
    async with (
        await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws,
        live.client() as http,
    ):
        hello = await recv_type(ws, "hello")
        await recv_type(ws, "synced")
        async with http.stream("GET", f"/api/v1/sessions/{seeded.session_id}/stream") as response:
            async with asyncio.timeout(10):
                lines = response.aiter_lines()
                async for line in lines:
                    if line.startswith("data: ") and json.loads(line[6:])["type"] == "synced":
                        break
                last = await live.services.db.write(many)
                ws_seen = [await recv_type(ws, "change") for _ in range(count)]
                async for line in lines:
                    if line.startswith("data: "):
                        message = json.loads(line[6:])
                        if message["type"] == "change":
                            sse_seen.append(message)
                        if len(sse_seen) == count:
                            break
    expected = list(range(hello["seq"] + 1, last + 1))
    assert len(expected) == count
    assert [m["seq"] for m in ws_seen] == expected
    assert [m["item"]["body"][:9] for m in ws_seen[:2]] == ["burst 0 x", "burst 1 x"]
    assert [m["seq"] for m in sse_seen] == expected


async def test_sse_resumes_from_last_event_id(live: LiveServer, seeded: Seed) -> None:
    from liveblog.capture.notes import Author

    for i in range(3):
        await live.services.notes.handle(
            seeded.session_id,
            Author("Ada", "x"),
            {"type": "note.create", "client_id": f"s{i}", "body": f"n{i}"},
        )
    session = await live.services.programme.session(seeded.session_id)
    events: list[tuple[str, str]] = []
    async with live.client() as http:
        headers = {"Last-Event-ID": f"{session.stream_epoch}:{session.last_seq - 2}"}
        async with http.stream(
            "GET", f"/api/v1/sessions/{seeded.session_id}/stream", headers=headers
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event_id = ""
            async with asyncio.timeout(10):
                async for line in response.aiter_lines():
                    if line.startswith("id: "):
                        event_id = line[4:]
                    if line.startswith("data: "):
                        message = json.loads(line[6:])
                        events.append((event_id, message["type"]))
                        event_id = ""
                        if message["type"] == "synced":
                            break
    assert events[0][1] == "hello"
    assert events[1:] == [
        (f"{session.stream_epoch}:{session.last_seq - 1}", "change"),
        (f"{session.stream_epoch}:{session.last_seq}", "change"),
        ("", "synced"),
    ]


async def test_capture_over_http_for_scripts(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as http:
        url = f"/api/v1/sessions/{seeded.session_id}/capture"
        auth = {"Authorization": f"Bearer {seeded.token}"}
        first = await http.post(url, json={"client_id": "bot-1", "body": "from a bot"}, headers=auth)
        again = await http.post(url, json={"client_id": "bot-1", "body": "from a bot"}, headers=auth)
        bad = await http.post(url, content=b"{oops", headers=auth)
        anon = await http.post(url, json={"client_id": "bot-2", "body": "x"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["item_id"] == first.json()["item_id"]
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    assert anon.status_code == 401


async def test_a_note_not_committed_in_time_is_answered_with_an_error_and_its_resend_as_a_duplicate(
    tmp_path: Any,
) -> None:
    import sqlite3

    from liveblog.services import Services

    path = tmp_path / "slow.sqlite3"
    settings = make_settings(tmp_path, database={"path": str(path), "write_timeout_seconds": 1})
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        async with run_server(settings, services) as live:
            url = f"{live.ws_url}/ws/v1/sessions/{s.session_id}/capture"
            async with await connect(url, token=s.token) as ws:
                await recv_type(ws, "synced")
                # Another process holds the write lock: the writer waits for it (busy_timeout).
                holder = sqlite3.connect(path, isolation_level=None)
                holder.execute("BEGIN IMMEDIATE")
                try:
                    await send(ws, {"type": "note.create", "client_id": "n1", "body": "hello"})
                    await send(ws, {"type": "note.create", "client_id": "n2", "body": "again"})
                    first = await recv_type(ws, "error", timeout=10)
                    second = await recv_type(ws, "error", timeout=10)
                finally:
                    holder.execute("ROLLBACK")
                    holder.close()
                assert (first["code"], first["client_id"]) == ("unavailable", "n1")
                assert (second["code"], second["client_id"]) == ("unavailable", "n2")
                # The writes were queued and commit once the lock is free: resends are duplicates.
                await send(ws, {"type": "note.create", "client_id": "n1", "body": "hello"})
                ack = await recv_type(ws, "ack", timeout=15)
                assert ack["client_id"] == "n1" and ack["duplicate"] is True
    finally:
        await services.close()

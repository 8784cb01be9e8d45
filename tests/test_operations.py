"""What operators see: Prometheus metrics, /healthz turning red while the database is down and
green again after, JSON log lines."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from liveblog.capture.notes import Author
from liveblog.logs import JsonFormatter
from liveblog.services import Services
from tests.conftest import LiveServer, Seed, eventually, make_settings, run_server, seed
from tests.servers import PostgresServer
from tests.wsclient import connect, recv_type, send


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


async def test_prometheus_metrics_count_connections_deliveries_and_latencies(
    live: LiveServer, seeded: Seed
) -> None:
    async with live.client() as http:
        before = (await http.get("/metrics")).text
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}"
    viewers = [await connect(url) for _ in range(3)]
    for v in viewers:
        await recv_type(v, "synced")
    async with await connect(url + "/capture", token=seeded.token) as ws:
        await recv_type(ws, "synced")
        await send(ws, {"type": "note.create", "client_id": "m1", "body": "measured"})
        await recv_type(ws, "ack")
        for v in viewers:
            await recv_type(v, "change")
        async with live.client() as http:
            response = await http.get("/metrics")
        text = response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert metric(text, 'liveblog_connections{role="viewer"}') == 3
    assert metric(text, 'liveblog_connections{role="note_taker"}') == 1
    assert metric(text, "liveblog_deliveries_total") >= 4  # 3 viewers + the note-taker's own socket
    assert (
        metric(text, "liveblog_capture_seconds_count") == metric(before, "liveblog_capture_seconds_count") + 1
    )
    assert metric(text, "liveblog_commit_seconds_count") > metric(before, "liveblog_commit_seconds_count")
    assert metric(text, 'liveblog_capture_seconds_bucket{le="+Inf"}') == metric(
        text, "liveblog_capture_seconds_count"
    )
    assert metric(text, "liveblog_writer_queue_depth") == 0
    assert metric(text, "liveblog_fanout_failures_total") == 0
    assert metric(text, "liveblog_database_up") == 1 and metric(text, "liveblog_up") == 1
    assert 'liveblog_task_state{task="votes.tallies",state="running"} 1' in text
    for v in viewers:
        await v.close()


@pytest.mark.slow
async def test_healthz_fails_while_postgresql_is_down_and_writes_resume_after(tmp_path: Path) -> None:
    server = PostgresServer().start()  # its own: this test stops it
    try:
        url = await server.new_database()
        settings = make_settings(tmp_path, database={"url": url, "write_timeout_seconds": 5})
        services = Services.build(settings)
        await services.open()
        try:
            s = await seed(services)
            author = Author(name="Ada", ref=s.invite_id)
            async with run_server(settings, services) as live, live.client() as http:
                assert (await http.get("/healthz")).status_code == 200
                server.stop()
                report = await eventually(lambda: _red(http), 15, "/healthz to report the database down")
                assert report["components"]["store"]["reachable"] is False
                async with live.client() as h2:
                    assert (await h2.get("/metrics")).status_code == 200  # metrics still answer
                server.start()
                await eventually(lambda: _green(http), 20, "/healthz to recover")
                # The writer reconnected by itself: notes are acknowledged again.
                ack = await services.notes.handle(
                    s.session_id, author, {"type": "note.create", "client_id": "back", "body": "back"}
                )
                assert ack.seq > 0
        finally:
            await services.close()
    finally:
        server.remove()


async def _red(http: object) -> object:
    response = await http.get("/healthz")  # type: ignore[attr-defined]
    return response.json() if response.status_code == 503 else None


async def _green(http: object) -> bool:
    return bool((await http.get("/healthz")).status_code == 200)  # type: ignore[attr-defined]


def test_json_log_lines_carry_the_fields_and_the_traceback() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("liveblog.test").makeRecord(
            "liveblog.test",
            logging.ERROR,
            __file__,
            1,
            "writer failed after %d tries",
            (3,),
            exc_info=True,
            extra={"session_id": "s1"},
        )
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(formatter.format(record))
    assert line["level"] == "error" and line["logger"] == "liveblog.test"
    assert line["message"] == "writer failed after 3 tries"
    assert line["session_id"] == "s1" and isinstance(line["pid"], int)
    assert "ValueError: boom" in line["exception"]

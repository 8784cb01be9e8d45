"""The `liveblog` command as a user runs it: organiser creation, demo data, `serve --demo`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from liveblog.capture.notes import Author
from liveblog.cli import main
from liveblog.errors import Unauthorized
from liveblog.services import Services
from tests.conftest import free_port, listening, make_settings
from tests.wsclient import connect, recv_type, recv_until

pytestmark = pytest.mark.slow


def test_create_organiser_then_log_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("LIVEBLOG_ORGANISER_PASSWORD", "a long password")
    assert main(["--db", str(db), "create-organiser", "alice"]) == 0
    assert "organiser 'alice' created" in capsys.readouterr().out
    assert main(["--db", str(db), "create-organiser", "alice"]) == 1
    assert "exists already" in capsys.readouterr().err
    monkeypatch.setenv("LIVEBLOG_ORGANISER_PASSWORD", "short")
    assert main(["--db", str(db), "create-organiser", "bob"]) == 1

    async def check() -> str:
        services = Services.build(make_settings(tmp_path, database={"path": str(db)}))
        await services.open()
        try:
            return await services.accounts.login("alice", "a long password")
        finally:
            await services.close()

    assert asyncio.run(check())
    monkeypatch.setenv("LIVEBLOG_ORGANISER_PASSWORD", "another long password")
    assert main(["--db", str(db), "set-password", "alice"]) == 0
    assert "password changed for 'alice'" in capsys.readouterr().out
    with pytest.raises(Unauthorized):
        asyncio.run(check())
    assert main(["--db", str(db), "set-password", "nobody"]) == 1
    assert "nobody" in capsys.readouterr().err


def test_a_config_error_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[streams]\nheartbeat = 5\n")
    assert main(["--config", str(config), "demo"]) == 2
    assert "unknown key streams.heartbeat" in capsys.readouterr().err


def test_backup_refuses_postgresql_and_export_names_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused before any connection: the URL need not answer.
    url = "postgresql://liveblog@127.0.0.1:9/liveblog"
    assert main(["--db", url, "backup", str(tmp_path / "b.sqlite3")]) == 2
    assert "pg_dump" in capsys.readouterr().err
    assert main(["--db", url, "restore", str(tmp_path / "b.sqlite3"), "--yes"]) == 2
    assert "pg_dump" in capsys.readouterr().err
    # An export from a file that is not there says so (it used to create an empty database and
    # then find "no event" in it).
    missing = tmp_path / "missing.sqlite3"
    assert main(["--db", str(missing), "export", "some-event", "-"]) == 1
    assert f"there is no SQLite database at {missing}" in capsys.readouterr().err
    assert main(["--db", str(missing), "export-site", "some-event", str(tmp_path / "site")]) == 1
    assert f"there is no SQLite database at {missing}" in capsys.readouterr().err
    assert not missing.exists()


async def test_serve_demo_shows_a_live_session_with_a_note_taker_posting(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liveblog",
            "--db",
            str(tmp_path / "demo.sqlite3"),
            "serve",
            "--demo",
            "--port",
            str(port),
            "--demo-every",
            "0.5",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await listening(proc, base)
        async with httpx.AsyncClient(base_url=base) as http:
            events = (await http.get("/api/v1/events")).json()["events"]
            assert [e["title"] for e in events] == ["Public Service Workforce Forum 2026"]
            sessions = (await http.get(f"/api/v1/events/{events[0]['id']}/sessions")).json()["sessions"]
            assert {s["state"] for s in sessions} == {"scheduled", "live", "ended"}
            live = next(s for s in sessions if s["state"] == "live")
            ended = next(s for s in sessions if s["state"] == "ended")
            assert len((await http.get(f"/api/v1/sessions/{ended['id']}/items")).json()["items"]) >= 3
            page = await http.get(f"/sessions/{live['id']}")
            assert page.status_code == 200 and "Growing our own" in page.text
        async with await connect(f"ws://127.0.0.1:{port}/ws/v1/sessions/{live['id']}") as ws:
            await recv_type(ws, "synced")
            # The first note-taker note (social posts from the demo's fake networks arrive too).
            seen = await recv_until(
                ws,
                lambda m: m.get("type") == "change" and m.get("item", {}).get("kind") == "note",
                timeout=20,
            )
            assert seen[-1]["item"]["author"].startswith("Demo note-taker")
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0].decode()  # waits, reads and closes the pipe
    assert "Liveblog demo is ready" in output
    assert "/n/" in output and "organiser / liveblog-demo" in output


async def test_loading_the_demo_twice_keeps_one_event_and_one_working_invite(tmp_path: Path) -> None:
    from liveblog.demo import load_demo

    services = Services.build(make_settings(tmp_path))
    await services.open()
    try:
        first = await load_demo(services)
        second = await load_demo(services)
        assert first["event"] == second["event"]
        invites = await services.accounts.invites(first["event"])
        assert [i.id for i in invites if i.active] == [second["invite_id"]]
        assert await services.accounts.invite_for_token(first["invite_url"].removeprefix("/n/")) is None
    finally:
        await services.close()


async def test_a_demo_loaded_again_between_midnight_and_three_carries_on_with_its_event(
    tmp_path: Path,
) -> None:
    # The demo's programme starts three hours before "now": loaded in the small hours at the
    # venue, its event spans yesterday and today. Loaded again (a restart), it must carry on with
    # that event, not retire it as another day's. The venue's zone is chosen so that it is about
    # 1 a.m. there whenever the test runs.
    from datetime import UTC, datetime

    from liveblog.demo import load_demo

    ahead = (1 - datetime.now(UTC).hour) % 24  # hours the venue is ahead of UTC
    ahead = ahead - 24 if ahead > 14 else ahead
    zone = f"Etc/GMT{-ahead:+d}" if ahead else "Etc/UTC"  # Etc/GMT-2 is two hours ahead
    services = Services.build(make_settings(tmp_path, archive={"timezone": zone}))
    await services.open()
    try:
        first = await load_demo(services)
        event = await services.programme.event(first["event"])
        assert event.starts_on < event.ends_on  # the programme spans midnight
        second = await load_demo(services)
        assert second["event"] == first["event"]
        assert second["live_session"] == first["live_session"]
        assert [e.id for e in await services.programme.events()] == [first["event"]]
    finally:
        await services.close()


async def test_backup_while_serving_then_restore_changes_the_epoch_so_viewers_reload(tmp_path: Path) -> None:
    from tests.conftest import run_server, seed
    from tests.wsclient import recv_until

    db = tmp_path / "live.sqlite3"
    settings = make_settings(tmp_path, database={"path": str(db)})
    services = Services.build(settings)
    await services.open()
    try:
        seeded = await seed(services)
        async with run_server(settings, services) as live:
            for i in range(3):
                await services.notes.handle(
                    seeded.session_id,
                    _author(),
                    {"type": "note.create", "client_id": f"b{i}", "body": f"before {i}"},
                )
            # Online: the server keeps running and writing while the backup is taken.
            code = await asyncio.to_thread(
                main, ["--db", str(db), "backup", str(tmp_path / "backup.sqlite3")]
            )
            assert code == 0
            await services.notes.handle(
                seeded.session_id,
                _author(),
                {"type": "note.create", "client_id": "after", "body": "after the backup"},
            )
            old = await services.programme.session(seeded.session_id)
    finally:
        await services.close()

    assert main(["--db", str(db), "restore", str(tmp_path / "backup.sqlite3")]) == 2  # asks for --yes
    assert main(["--db", str(db), "restore", str(tmp_path / "backup.sqlite3"), "--yes"]) == 0

    restored = Services.build(settings)
    await restored.open()
    try:
        items = await restored.programme.items(seeded.session_id)
        assert [i.client_id for i in items] == ["b0", "b1", "b2"]
        session = await restored.programme.session(seeded.session_id)
        assert session.stream_epoch != old.stream_epoch and session.last_seq == old.last_seq - 1
        async with run_server(settings, restored) as live:
            url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}?since={session.last_seq}&epoch={old.stream_epoch}"
            async with await connect(url) as ws:
                reload = (await recv_until(ws, lambda m: m.get("type") == "reload"))[-1]
                assert reload["reason"] == "epoch_changed"
    finally:
        await restored.close()


def _author() -> Author:
    return Author(name="Ada", ref="inv-ada")


def test_serve_on_a_port_taken_exits_with_uvicorns_start_up_failure(tmp_path: Path) -> None:
    """`liveblog serve` runs uvicorn's server itself (to say when it listens, web/serving.py):
    a server that cannot start still exits with status 3, as uvicorn.run did, its port named."""
    import socket

    from tests.cli_process import run_liveblog

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_liveblog(
            ["--db", str(tmp_path / "t.sqlite3"), "serve", "--port", str(port), "--log-level", "warning"],
            tmp_path,
            timeout=60,
        )
    assert done.returncode == 3, done.stderr
    assert (
        f"error while attempting to bind on address ('127.0.0.1', {port}): address already in use"
        in done.stderr
    )

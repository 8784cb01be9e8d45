"""The signing key kept in the data directory (liveblog/access/secret.py): without LIVEBLOG_SECRET_KEY
the room code and the audience's participant ids survive a restart (issue 17)."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from liveblog.access.secret import KEY_FILE, kept_secret
from liveblog.settings import settings_from_dict
from tests.conftest import Seed, free_port, listening, page_csrf, seed_database, stop_process

pytestmark = pytest.mark.slow


class ServeProcess:
    """`liveblog serve` in a real process, started with no LIVEBLOG_SECRET_KEY."""

    def __init__(self, config: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if k != "LIVEBLOG_SECRET_KEY"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "liveblog", "--config", str(config), "serve", "--log-level", "warning"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.url = f"http://127.0.0.1:{port}"


async def seeded_data_directory(tmp_path: Path) -> tuple[Seed, Path, int]:
    """A seeded SQLite file in its own data directory, and a configuration serving it on a free port."""
    database = tmp_path / "data" / "liveblog.sqlite3"
    database.parent.mkdir()
    seeded = await seed_database(tmp_path, path=str(database))
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'[server]\nport = {port}\n[database]\npath = "{database}"\n')
    return seeded, config, port


async def test_the_room_code_and_participant_ids_survive_a_restart_without_configuration(
    tmp_path: Path,
) -> None:
    """Before: each start made a random key, so the room code changed (B5ECK3 became HE8USP) and
    a voter's signed id was refused (403 bad_participant) after a restart."""
    seeded, config, port = await seeded_data_directory(tmp_path)
    invite = {"Authorization": f"Bearer {seeded.token}"}
    seen: list[tuple[str, str]] = []
    token = None
    for _ in range(2):
        server = ServeProcess(config, port)
        try:
            await listening(server.proc, server.url, timeout=60)
            async with httpx.AsyncClient(base_url=server.url) as http:
                moderation = await http.get(
                    f"/api/v1/sessions/{seeded.session_id}/moderation", headers=invite
                )
                assert moderation.status_code == 200, moderation.text
                if token is None:
                    minted = await http.post("/api/v1/participants")
                    assert minted.status_code == 201
                    token = minted.json()["token"]
                again = await http.post("/api/v1/participants", headers={"Liveblog-Participant": token})
                assert again.status_code == 200, again.text  # the id signed before the restart is still ours
                seen.append((moderation.json()["room_code"], again.json()["participant"]))
        finally:
            stop_process(server.proc)
    assert seen[0] == seen[1]
    key = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_key_that_cannot_be_kept_is_said_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / KEY_FILE).mkdir()  # something in the way: neither readable nor writable as a file
    settings = settings_from_dict({"database": {"path": str(tmp_path / "x.sqlite3")}}, env={})
    with caplog.at_level(logging.ERROR, logger="liveblog.access.secret"):
        kept = kept_secret(settings)
    assert kept.secret_key == settings.secret_key  # this run still works, with a key of its own
    assert any("participant ids and the room codes will change" in r.getMessage() for r in caplog.records)


def test_the_environment_key_wins_and_nothing_is_written(tmp_path: Path) -> None:
    settings = settings_from_dict(
        {"database": {"path": str(tmp_path / "x.sqlite3")}}, env={"LIVEBLOG_SECRET_KEY": "k"}
    )
    assert kept_secret(settings).secret_key == "k"
    assert not (tmp_path / KEY_FILE).exists()


async def test_a_page_loaded_before_a_restart_still_posts_its_form_after_it(tmp_path: Path) -> None:
    """Found by the rehearsal (tests/test_rehearsal.py): the CSRF wall signed with the random key of
    each start, not the kept one, so after a restart every open page's form was refused ("this page
    is out of date"), and the token `POST /api/v1/login` answers never matched at all."""
    seeded, config, port = await seeded_data_directory(tmp_path)
    reader = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=20)
    try:
        for n in range(2):
            server = ServeProcess(config, port)
            try:
                await listening(server.proc, server.url, timeout=60)
                if n == 0:
                    r = await reader.post(
                        "/account/register", data={"username": "sam", "password": "a long password"}
                    )
                    assert r.status_code == 303, r.text
                    page = await reader.get(f"/sessions/{seeded.session_id}")
                    reader.headers["X-CSRF-Token"] = page_csrf(page.text)
                r = await reader.post(
                    f"/sessions/{seeded.session_id}/comments", data={"body": f"comment {n}"}
                )
                assert r.status_code == 303, (n, r.text)
            finally:
                stop_process(server.proc)
    finally:
        await reader.aclose()

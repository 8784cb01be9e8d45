"""The lowest uvicorn that pyproject.toml admits serves the fast path too.

The rest of the suite runs the installed (newest admitted) uvicorn. This test installs the lower
bound into a directory of its own once (with pip, from the package index; cached in .venv) and runs
`liveblog serve` on it: start-up line, a note reaching a viewer, and the 1012 on shutdown.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from liveblog.services import Services
from liveblog.web.serving import UVICORN_TESTED
from tests.conftest import free_port, listening, make_settings, seed
from tests.wsclient import connect, recv_type, send

pytestmark = pytest.mark.slow

LOWER = UVICORN_TESTED[0]
CACHE = Path(sys.prefix) / f"uvicorn-{LOWER}"


def test_pyproject_admits_the_tested_range() -> None:
    text = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert f'"uvicorn>={LOWER.rsplit(".", 1)[0]},<' in text


def install_lower_bound() -> Path:
    if not (CACHE / "uvicorn" / "__init__.py").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--target",
                str(CACHE),
                f"uvicorn=={LOWER}",
            ],
            check=True,
            timeout=120,
        )
    return CACHE


async def test_the_lowest_admitted_uvicorn_serves_the_fast_path(tmp_path: Path) -> None:
    target = await asyncio.to_thread(install_lower_bound)
    settings = make_settings(
        tmp_path, database={"path": str(tmp_path / "test.sqlite3")}
    )  # served with --db below
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
    finally:
        await services.close()
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{target}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "LIVEBLOG_SECRET_KEY": "test-secret",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liveblog",
            "--db",
            settings.database.path,
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        await listening(proc, f"http://127.0.0.1:{port}")
        url = f"ws://127.0.0.1:{port}/ws/v1/sessions/{s.session_id}"
        async with await connect(url) as viewer, await connect(url + "/capture", token=s.token) as note_taker:
            await recv_type(viewer, "synced")
            await recv_type(note_taker, "synced")
            await send(
                note_taker, {"type": "note.create", "client_id": "old-1", "body": "on the oldest uvicorn"}
            )
            await recv_type(note_taker, "ack")
            assert (await recv_type(viewer, "change"))["item"]["body"] == "on the oldest uvicorn"
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(Exception) as closed:
                await recv_type(viewer, "never")
            assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 1012  # type: ignore[attr-defined]
    finally:
        if proc.poll() is None:
            proc.terminate()
        output, _ = proc.communicate(timeout=15)
    text = output.decode()
    assert "viewer websockets: FAST path" in text and f"uvicorn {LOWER})" in text, text
    assert "PORTABLE" not in text and "Traceback" not in text, text

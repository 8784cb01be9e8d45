"""Components open in order and close in reverse; background tasks that fail are logged and
restarted, or turn /healthz red; no caller waits forever."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from liveblog.lifecycle import Listening, Supervisor
from liveblog.services import Services
from tests.conftest import LiveServer, eventually, make_settings


async def test_a_failing_task_is_logged_and_restarted_with_back_off(caplog: Any) -> None:
    supervisor = Supervisor()
    runs: list[int] = []
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def no_wait(delay: float) -> None:
        waits.append(delay)
        await real_sleep(0)

    supervisor._sleep = no_wait  # type: ignore[method-assign]
    done = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 4:
            raise RuntimeError(f"poll {len(runs)} failed")
        done.set()
        await asyncio.Event().wait()  # then runs until cancelled

    with caplog.at_level(logging.ERROR):
        supervisor.spawn("flaky", flaky)
        await asyncio.wait_for(done.wait(), 5)
    entry = supervisor.tasks["flaky"]
    assert entry.state == "running" and entry.failures == 3
    assert entry.last_error == "RuntimeError: poll 3 failed"
    assert caplog.text.count("background task flaky failed; restarting") == 3
    assert "Traceback" in caplog.text  # logged with its traceback, not swallowed
    # Back-off grows (jittered +-50% around 0.1, 0.2, 0.4 s).
    assert len(waits) == 3 and waits[0] <= 0.15 and waits[2] >= 0.2
    assert supervisor.ok
    await supervisor.close()
    assert entry.state == "stopped"


async def test_a_task_that_cannot_restart_turns_health_red(live: LiveServer, caplog: Any) -> None:
    async with live.client() as http:
        healthy = await http.get("/healthz")
        assert healthy.status_code == 200
        report = healthy.json()
        assert report["ok"] is True
        assert report["components"]["store"]["ok"] is True
        assert report["tasks"]["votes.tallies"]["state"] == "running"

        async def broken() -> None:
            raise ValueError("index corrupt")

        with caplog.at_level(logging.ERROR):
            live.services.supervisor.spawn("search.indexer", broken, restart=False)
            await eventually(lambda: live.services.supervisor.tasks["search.indexer"].state == "failed", 5)
        red = await http.get("/healthz")
        assert red.status_code == 503
        assert red.json()["tasks"]["search.indexer"] == {
            "state": "failed",
            "failures": 1,
            "last_error": "ValueError: index corrupt",
            "failed_at": red.json()["tasks"]["search.indexer"]["failed_at"],
        }
        assert "background task search.indexer failed" in caplog.text


async def test_the_tally_task_restarts_after_a_failure_and_keeps_counting(
    live: LiveServer, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The coalescer retries failed flushes itself; a bug elsewhere in its loop kills the loop.
    real_prune = live.services.audience.housekeeping
    calls = {"n": 0}

    def housekeeping_fails_once() -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("bug in housekeeping")
        real_prune()

    monkeypatch.setattr(live.services.audience, "housekeeping", housekeeping_fails_once)
    monkeypatch.setattr("liveblog.capture.votes.tallies.HOUSEKEEPING_SECONDS", 0.05)
    with caplog.at_level(logging.ERROR):
        live.services.audience.coalescer._wake.set()
        await eventually(lambda: live.services.supervisor.tasks["votes.tallies"].failures >= 1, 5)
        await eventually(lambda: live.services.supervisor.tasks["votes.tallies"].state == "running", 5)
    assert "background task votes.tallies failed; restarting" in caplog.text
    await eventually(lambda: calls["n"] >= 2, 5, "housekeeping to run again in the restarted loop")
    async with live.client() as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_components_open_in_order_and_close_in_reverse(tmp_path: Path) -> None:
    events: list[str] = []

    class Probe:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name = name
            self.fail = fail

        async def open(self, supervisor: Supervisor) -> None:
            if self.fail:
                raise RuntimeError("cannot open")
            events.append(f"open {self.name}")

        async def close(self) -> None:
            events.append(f"close {self.name}")

        def health(self) -> dict[str, Any]:
            return {"ok": True}

    services = Services.build(make_settings(tmp_path))
    services.add(Probe("a"))
    services.add(Probe("b"))
    await services.open()
    assert services.health()["ok"] and services.db.healthy
    await services.close()
    assert events == ["open a", "open b", "close b", "close a"]
    assert not services.db.healthy

    events.clear()
    (tmp_path / "x").mkdir()
    broken = Services.build(make_settings(tmp_path / "x"))
    broken.add(Probe("a"))
    broken.add(Probe("bad", fail=True))
    with pytest.raises(RuntimeError):
        await broken.open()
    # What had opened is closed again, in reverse, store included.
    assert events == ["open a", "close a"]
    assert not broken.db.healthy


async def test_what_waits_for_the_server_to_listen_goes_on_after_a_bounded_wait_and_says_so(
    caplog: Any,
) -> None:
    listening = Listening()
    async with asyncio.timeout(1):
        await listening.wait("nothing")  # open: no runner said it would tell
    listening.expect()  # a runner that will say when it listens, and never does
    with caplog.at_level(logging.WARNING, logger="liveblog.lifecycle"):
        async with asyncio.timeout(5):
            await listening.wait("fediverse deliveries", timeout=0.05)
    assert "did not say it listens within 0.05 s: fediverse deliveries go on" in caplog.text
    assert listening.is_set()  # what waits after it does not wait again

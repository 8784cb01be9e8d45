"""Shared fixtures: a temporary SQLite file per test, opened services, and a real uvicorn server
on loopback running in the test's own event loop (so websockets use the production fast path)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher

from liveblog.services import Services
from liveblog.settings import Settings, settings_from_dict
from liveblog.web.app import create_app

ORGANISER = ("org", "correct horse battery")


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    base: dict[str, Any] = {
        "database": {"path": str(tmp_path / "test.sqlite3")},
        "streams": {"heartbeat_seconds": 30},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return settings_from_dict(base, env={"LIVEBLOG_SECRET_KEY": "test-secret"})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    svc = Services.build(settings)
    await svc.open()
    try:
        yield svc
    finally:
        await svc.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    ws_url: str
    services: Services
    server: uvicorn.Server

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kwargs)


@contextlib.asynccontextmanager
async def run_server(settings: Settings, services: Services) -> AsyncIterator[LiveServer]:
    """uvicorn on 127.0.0.1 with production websocket settings, inside this event loop."""
    port = free_port()
    app = create_app(settings, services)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=settings.limits.frame_bytes,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", services, server)
    finally:
        server.should_exit = True
        async with asyncio.timeout(15):
            await task


@pytest.fixture
async def live(settings: Settings, services: Services) -> AsyncIterator[LiveServer]:
    async with run_server(settings, services) as server:
        yield server


@dataclass
class Seed:
    event_id: str
    session_id: str
    other_session_id: str
    token: str
    token2: str
    invite_id: str
    login_token: str


# Tests hash many passwords: cheap argon2 parameters keep them fast (production uses the defaults).
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


async def seed(services: Services) -> Seed:
    """An event with a live session, two note-takers invited to it, and an organiser."""
    services.accounts.hasher = FAST_HASHER
    event = await services.programme.create_event(
        {"title": "Test Summit", "starts_on": "2026-05-14", "ends_on": "2026-05-15", "hashtags": ["#test"]}
    )
    session = await services.programme.create_session(
        event.id, {"title": "Keynote", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00", "room": "Hall"}
    )
    other = await services.programme.create_session(
        event.id, {"title": "Workshop", "starts_at": "2026-05-14T11:00", "ends_at": "2026-05-14T12:00", "room": "Room 2"}
    )
    await services.programme.set_state(session.id, "live")
    invite, token = await services.accounts.invite(event.id, session.id, "Ada")
    _, token2 = await services.accounts.invite(event.id, session.id, "Grace")
    await services.accounts.create_organiser(*ORGANISER)
    login = await services.accounts.login(*ORGANISER)
    return Seed(event.id, session.id, other.id, token, token2, invite.id, login)


@pytest.fixture
async def seeded(services: Services) -> Seed:
    return await seed(services)

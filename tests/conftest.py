"""Shared fixtures: a temporary SQLite file per test, opened services, and a real uvicorn server
on loopback running in the test's own event loop (so websockets use the production fast path)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
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
from liveblog.web.serving import uvicorn_options
from tests.servers import PostgresServer, RedisServer

ORGANISER = ("org", "correct horse battery")


def _share_default_tls_context() -> None:
    """One verifying TLS context per CA source for the whole test run, where httpx would build
    a new one for every client and transport, loading the CA bundle each time (~50 ms here): a
    Services opens four outbound clients (two contexts each) and tests open many clients, which
    made about a third of the suite's time. The shared context is the one httpx builds for the
    same arguments and environment (SSL_CERT_FILE or SSL_CERT_DIR when trust_env, else
    certifi's bundle; hostnames checked); one context is safe to share between connections and
    threads. Anything else (verify=False, a context, a client certificate) goes to httpx."""
    from httpx import _config
    from httpx._transports import default

    build = _config.create_ssl_context
    shared: dict[tuple[str | None, str | None] | None, Any] = {}

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is not True or cert:
            return build(verify, cert, trust_env)
        source = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if trust_env else None
        if source not in shared:
            shared[source] = build(verify, cert, trust_env)
        return shared[source]

    for module in (httpx, _config, default):
        module.create_ssl_context = create_ssl_context  # type: ignore[attr-defined]


_share_default_tls_context()


def page_csrf(html: str) -> str:
    """The CSRF token a page carries (its <meta name="csrf-token">), as a browser's script reads it."""
    import re

    found = re.search(r'<meta name="csrf-token" content="([^"]*)">', html)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


# The server's secret key in every app make_settings builds: CSRF tokens are keyed with it.
TEST_SECRET_KEY = "test-secret"


def csrf_header(cookies: dict[str, str]) -> dict[str, str]:
    """The CSRF header for requests carrying these cookies, to an app of make_settings (docs/protocol.md)."""
    from liveblog.web.security import csrf_token_for_cookies

    return {"X-CSRF-Token": csrf_token_for_cookies(TEST_SECRET_KEY, cookies)}


def organiser_csrf(login_token: str) -> dict[str, str]:
    """The CSRF header for requests carrying only this login's cookie (an organiser's or a reader's)."""
    return csrf_header({"lb_login": login_token})


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    base: dict[str, Any] = {
        "database": {"path": str(tmp_path / "test.sqlite3")},
        "streams": {"heartbeat_seconds": 30},
    }
    if os.environ.get("LIVEBLOG_TEST_BACKEND") == "postgres" and "database" not in sections:
        # The whole suite on PostgreSQL: a fresh database for every app a test builds (a test that
        # names its own SQLite file keeps it). Databases live as long as the test run's server.
        base["database"]["url"] = _env_pg_server().new_database_sync()
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return settings_from_dict(base, env={"LIVEBLOG_SECRET_KEY": TEST_SECRET_KEY})


_ENV_PG: list[PostgresServer] = []


def _env_pg_server() -> PostgresServer:
    if not _ENV_PG:
        server = PostgresServer().start()
        atexit.register(server.remove)
        _ENV_PG.append(server)
    return _ENV_PG[0]


# -- real PostgreSQL and Redis (tests/servers.py): one server each per test run, started on first use


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
async def pg_url(pg_server: PostgresServer) -> AsyncIterator[str]:
    """A fresh, empty database on the session's server for this test; dropped afterwards."""
    url = await pg_server.new_database()
    try:
        yield url
    finally:
        await pg_server.drop_database(url)


@pytest.fixture(scope="session")
def _redis_process() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def redis_server(_redis_process: RedisServer) -> RedisServer:
    """The test run's Redis, emptied for each test: what one test leaves (the secret key's
    fingerprint, sequence keys) must not decide another's outcome."""
    import redis

    client = redis.Redis.from_url(_redis_process.url)
    try:
        client.flushall()
    finally:
        client.close()
    return _redis_process


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend of the app under test: LIVEBLOG_TEST_BACKEND (default sqlite) runs
    the whole suite on either; `@pytest.mark.parametrize("backend", BACKENDS, indirect=True)`
    runs one test on both."""
    return str(getattr(request, "param", os.environ.get("LIVEBLOG_TEST_BACKEND", "sqlite")))


BACKENDS = ["sqlite", "postgres"]


def settings_for(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, **sections: dict[str, Any]
) -> Settings:
    """make_settings on the given backend: on postgres, a fresh database dropped after the test."""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.new_database_sync()
        request.addfinalizer(lambda: server.drop_database_sync(url))
        sections = {**sections, "database": {**sections.get("database", {}), "url": url}}
    else:  # pinned: on SQLite even when LIVEBLOG_TEST_BACKEND=postgres
        sections = {
            **sections,
            "database": {"path": str(tmp_path / "test.sqlite3"), **sections.get("database", {})},
        }
    return make_settings(tmp_path, **sections)


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    return settings_for(request, tmp_path, backend)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    svc = Services.build(settings)
    await svc.open()
    try:
        yield svc
    finally:
        await svc.close()


# How often a deadline-bounded wait looks again. Used only where no event exists to await (a
# process starting to listen, a background task's effect); every such wait has a deadline.
POLL_INTERVAL = 0.02


async def eventually(predicate: Any, timeout: float = 10, what: str = "the condition") -> Any:
    """Await until `predicate()` (sync or async) is truthy; fail with a clear message at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL)


async def listening(proc: Any, base_url: str, timeout: float = 30) -> None:
    """Wait for a server subprocess to answer /healthz (or fail with its output if it died)."""
    async with httpx.AsyncClient(base_url=base_url) as http:

        async def up() -> bool:
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"the server exited with {proc.returncode}: {output}")
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(up, timeout, f"{base_url} to listen")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    ws_url: str
    services: Services
    server: PromptServer

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kwargs)


class PromptServer(uvicorn.Server):
    """uvicorn's Server, whose main loop ends as soon as `exit()` is called: uvicorn's own looks
    at `should_exit` every 0.1 s, which made every test server's stop wait for its next look.
    It still ticks every second (the Date header stays current, `should_exit` is honoured)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter += 10  # each pass is a second: uvicorn refreshes its headers every tenth tick
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._exit.wait()


@contextlib.asynccontextmanager
async def run_server(settings: Settings, services: Services, wrap: Any = None) -> AsyncIterator[LiveServer]:
    """uvicorn on 127.0.0.1 with production websocket settings, inside this event loop.
    `wrap(app)` may put middleware around the app."""
    port = free_port()
    app: Any = create_app(settings, services)
    config = uvicorn.Config(
        wrap(app) if wrap else app,
        host="127.0.0.1",
        port=port,
        **uvicorn_options(settings),
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = PromptServer(config)
    task = asyncio.create_task(server.serve())

    def started() -> bool:
        if task.done():
            task.result()  # failed to start: raise its error
        return bool(server.started)

    await eventually(started, 10, "the server to start")
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", services, server)
    finally:
        server.exit()
        async with asyncio.timeout(15):
            await task


@pytest.fixture
async def live(settings: Settings, services: Services) -> AsyncIterator[LiveServer]:
    async with run_server(settings, services) as server:
        yield server


def db_arg(settings: Settings) -> str:
    """`--db` for a `liveblog` command on the same database as these settings (file or URL)."""
    return settings.database.url or settings.database.path


async def query(db: Any, sql: str) -> list[tuple[Any, ...]]:
    """Raw SQL for a test's own checks (rows no operation returns), on either backend."""

    async def fn(unit: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await unit.db.fetch_all(sql)]  # the query layer (storage/sql.py)

    return list(await db.read(fn))


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
        event.id,
        {"title": "Keynote", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00", "room": "Hall"},
    )
    other = await services.programme.create_session(
        event.id,
        {
            "title": "Workshop",
            "starts_at": "2026-05-14T11:00",
            "ends_at": "2026-05-14T12:00",
            "room": "Room 2",
        },
    )
    await services.programme.set_state(session.id, "live")
    invite, token = await services.accounts.invite(event.id, session.id, "Ada")
    _, token2 = await services.accounts.invite(event.id, session.id, "Grace")
    await services.accounts.create_organiser(*ORGANISER)
    login = await services.accounts.login(*ORGANISER)
    return Seed(event.id, session.id, other.id, token, token2, invite.id, login)


async def seed_database(tmp_path: Path, **database: Any) -> Seed:
    """Seed the database a server process will open (`path=` or `url=`), and close it again."""
    services = Services.build(make_settings(tmp_path, database=database))
    await services.open()
    try:
        return await seed(services)
    finally:
        await services.close()


def stop_process(proc: Any) -> str:
    """Stop a server process as systemd does (SIGTERM, then SIGKILL after 15 s); its output."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    output = proc.communicate(timeout=10)[0]
    return output.decode() if output else ""


@pytest.fixture
async def seeded(services: Services) -> Seed:
    return await seed(services)


@contextlib.asynccontextmanager
async def seeded_server(tmp_path: Path, **sections: dict[str, Any]) -> AsyncIterator[tuple[LiveServer, Seed]]:
    """A seeded database (settings changed by `sections`) served by `run_server`; closed after."""
    settings = make_settings(tmp_path, **sections)
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        async with run_server(settings, services) as live:
            yield live, s
    finally:
        await services.close()

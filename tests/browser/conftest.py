"""Browser fixtures: Debian's chromium driven by Playwright's *sync* API, against a real server.

Why this shape (read before adding fixtures):

- Playwright's sync API refuses to run inside a running asyncio loop, and pytest-asyncio runs
  every async test and fixture inside one. So browser tests are plain *sync* tests, and the
  server runs in a background thread with its own event loop (`ThreadServer`). It is the same
  production stack as tests/conftest.py (`run_server`: uvicorn with websockets-sansio, a fresh
  SQLite file per test) seeded with `seed()` (event, live session, two note-taker tokens,
  an organiser login token).
- To look at the server's state from a test, use `server.call(fn)`: `fn(services)` is an async
  function run on the server's loop; `server.items()` is the stored items of the seeded
  session. Poll with `server.wait_for(...)` or Playwright's `expect(...)`; never sleep.
- One chromium per test session (`browser`, session-scoped), a fresh context per use
  (`browser_context(**kwargs)` factory; contexts are closed after the test). Contexts get
  `base_url=server.url`, so `page.goto("/sessions/...")` works.
- Tests under tests/browser/ are marked `browser` automatically (also mark them explicitly).
- Screenshots go to artifacts/screenshots/ (`screenshot_dir` fixture), where CI keeps artefacts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from liveblog.models import Item
from liveblog.services import Services
from tests.conftest import POLL_INTERVAL, LiveServer, Seed, make_settings, run_server, seed

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

# Default wait for expect(...) assertions; the machine is small and shared.
expect.set_options(timeout=15_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
    # Browser tests run last: the session-wide sync Playwright keeps a loop running in the main
    # thread, and pytest-asyncio tests collected after it would fail ("loop already running").
    items.sort(key=lambda item: here in Path(str(item.fspath)).parents)


class ThreadServer:
    """A seeded liveblog server on 127.0.0.1, running in its own thread and event loop."""

    def __init__(self, tmp_path: Path, wrap: Any = None, **sections: dict[str, Any]) -> None:
        self.settings = make_settings(tmp_path, **sections)
        self.wrap = wrap  # run_server's: middleware around the app (a test's own files beside it)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.live: LiveServer | None = None
        self.seed: Seed | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="liveblog-test-server", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> ThreadServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("the test server did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by start()/stop() in the test thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        services = Services.build(self.settings)
        await services.open()
        try:
            self.seed = await seed(services)
            async with run_server(self.settings, services, self.wrap) as live:
                self.live = live
                self._ready.set()
                await self._stop.wait()
        finally:
            await services.close()

    # -- helpers for tests --------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.live is not None
        return self.live.url

    @property
    def services(self) -> Services:
        assert self.live is not None
        return self.live.services

    @property
    def session_id(self) -> str:
        assert self.seed is not None
        return self.seed.session_id

    def call(self, fn: Callable[[Services], Awaitable[T]], timeout: float = 15) -> T:
        """Run `await fn(services)` on the server's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(fn(self.services), self.loop).result(timeout)  # type: ignore[arg-type]

    def items(self, session_id: str | None = None, *, include_deleted: bool = False) -> list[Item]:
        """The stored items of a session (the seeded one by default), in stream order."""
        sid = session_id or self.session_id

        async def read(svc: Services) -> list[Item]:
            return await svc.db.read(lambda r: r.list_items(sid, include_deleted=include_deleted))

        return self.call(read)

    def wait_for(self, predicate: Callable[[], T], timeout: float = 15, message: str = "condition") -> T:
        """Poll `predicate()` (run in the test thread) until it is truthy; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {message}; last value {value!r}"
                )
            time.sleep(POLL_INTERVAL)  # the interval of a deadline-bounded wait

    def notetaker_url(self, token: str | None = None) -> str:
        assert self.seed is not None
        return f"/n/{token or self.seed.token}/sessions/{self.seed.session_id}"

    def viewer_url(self) -> str:
        return f"/sessions/{self.session_id}"


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadServer]:
    srv = ThreadServer(tmp_path).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def browser_context(browser: Browser, server: ThreadServer) -> Iterator[Callable[..., BrowserContext]]:
    """Factory: `ctx = browser_context(viewport=PHONE)`; all contexts close after the test."""
    made: list[BrowserContext] = []

    def make(**kwargs: Any) -> BrowserContext:
        kwargs.setdefault("base_url", server.url)
        kwargs.setdefault("viewport", DESKTOP)
        ctx = browser.new_context(**kwargs)
        ctx.set_default_timeout(15_000)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        with contextlib.suppress(PlaywrightError):  # already closed by the test
            ctx.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    path = ROOT / "artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path

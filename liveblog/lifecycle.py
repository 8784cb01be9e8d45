"""Components and supervised background tasks: nothing runs unowned, nothing dies silently.

A *component* has `open(supervisor)` and `close()`; `Services` opens its components in order and
closes them in reverse (the app's lifespan does exactly that). A component's background loops
run under the `Supervisor`: a loop that raises is logged with its traceback and, where a restart
is safe, started again after a jittered back-off; otherwise it is marked failed. `/healthz`
reports every component and task, and turns red (503) while any is failed or down.

      Services.open ──► component.open(supervisor) ──► supervisor.spawn(name, loop)
                                                          │ raises → log, back-off, restart
                                                          │ (or "failed" → /healthz 503)
      Services.close ◄── component.close() in reverse ◄───┘ cancelled, awaited
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from liveblog.models import utcnow

log = logging.getLogger(__name__)

# Back-off between restarts of a failed task: from FIRST_BACKOFF doubling to MAX_BACKOFF, each
# with +-50% jitter (many processes restarting after one shared outage must not retry in step).
# A task that ran STABLE_SECONDS without failing starts again from FIRST_BACKOFF.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 30.0
STABLE_SECONDS = 60.0
# uvicorn binds its socket within milliseconds of the lifespan's start-up: a runner that said it
# would tell when it listens and has not within this long never will (what waits goes on).
LISTEN_TIMEOUT_SECONDS = 10.0


class Component(Protocol):
    name: str

    async def open(self, supervisor: Supervisor) -> None: ...

    async def close(self) -> None: ...

    def health(self) -> dict[str, Any]:
        """{"ok": bool, ...details}: what /healthz shows for this component."""
        ...


@dataclass
class Supervised:
    name: str
    run: Callable[[], Awaitable[None]]
    restart: bool
    state: str = "starting"  # running | restarting | failed | stopped
    failures: int = 0
    last_error: str | None = None
    failed_at: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "failures": self.failures,
            "last_error": self.last_error,
            "failed_at": self.failed_at,
        }


class Supervisor:
    """Owns every background task of the process."""

    def __init__(self) -> None:
        self.tasks: dict[str, Supervised] = {}
        self._sleep = asyncio.sleep  # tests may replace the back-off wait

    def spawn(self, name: str, run: Callable[[], Awaitable[None]], *, restart: bool = True) -> Supervised:
        """Run `run()` as the task `name`. It should loop until cancelled; if it raises it is logged
        and (restart=True) run again after a back-off, or (restart=False) marked failed."""
        if name in self.tasks and self.tasks[name].state not in ("stopped", "failed"):
            raise RuntimeError(f"a task named {name!r} is already running")
        entry = Supervised(name, run, restart)
        entry.task = asyncio.create_task(self._guard(entry), name=f"liveblog:{name}")
        self.tasks[name] = entry
        return entry

    async def _guard(self, entry: Supervised) -> None:
        backoff = FIRST_BACKOFF
        while True:
            entry.state = "running"
            started = time.monotonic()
            try:
                await entry.run()
            except asyncio.CancelledError:
                entry.state = "stopped"
                raise
            except Exception as exc:
                entry.failures += 1
                entry.last_error = f"{type(exc).__name__}: {exc}"[:500]
                entry.failed_at = utcnow()
                if not entry.restart:
                    entry.state = "failed"
                    log.exception("background task %s failed; not restartable, health is now red", entry.name)
                    return
                if time.monotonic() - started > STABLE_SECONDS:
                    backoff = FIRST_BACKOFF
                delay = backoff * random.uniform(0.5, 1.5)
                entry.state = "restarting"
                log.exception("background task %s failed; restarting in %.2f s", entry.name, delay)
                await self._sleep(delay)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            entry.state = "stopped"  # returned on its own: finished its work
            return

    async def stop(self, name: str) -> None:
        entry = self.tasks.get(name)
        if entry is None or entry.task is None:
            return
        entry.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await entry.task
        entry.state = "stopped"

    async def close(self) -> None:
        for name in reversed(list(self.tasks)):
            await self.stop(name)

    def health(self) -> dict[str, Any]:
        return {name: entry.as_dict() for name, entry in self.tasks.items()}

    @property
    def ok(self) -> bool:
        return all(entry.state != "failed" for entry in self.tasks.values())


class Listening:
    """Whether the server accepts connections yet. The services open in the lifespan, before
    uvicorn binds its socket: work that makes a remote server call back at once (a fediverse
    delivery, whose receiver fetches our key) waits for this. Open unless a runner that will say
    when it listens closed it first (`liveblog serve`, web/serving.py); `serve --workers` binds
    before it starts the workers, and other runners say nothing."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    def expect(self) -> None:
        """Closed until `set()`: called by a runner that will call it once it listens."""
        self._open.clear()

    def set(self) -> None:
        self._open.set()

    def is_set(self) -> bool:
        return self._open.is_set()

    async def wait(self, what: str, timeout: float = LISTEN_TIMEOUT_SECONDS) -> None:
        """Return once the server listens, or after `timeout` (logged, and open from then on)."""
        try:
            async with asyncio.timeout(timeout):
                await self._open.wait()
        except TimeoutError:
            log.warning("the server did not say it listens within %g s: %s go on", timeout, what)
            self._open.set()

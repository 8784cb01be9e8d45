"""The login throttle: slows password guessing without letting a guesser lock the organiser out.

The rule (docs/configuration.md, "Logging in"):

- Failed log-ins are counted per account and per address, over a 15-minute window.
- Per account: the first ACCOUNT_FREE failures cost nothing; after that, each try must wait a
  back-off that doubles with every further failure (1 s, 2 s, 4 s, ...) up to MAX_BACKOFF
  seconds after the last failure. Tries inside the wait are refused (429) without checking the
  password and are not counted. Nothing is ever locked for longer than MAX_BACKOFF.
- Per address: the same with ADDRESS_FREE failures, so one address spraying many accounts slows
  down too; the allowance is large because a conference shares one address.
- A browser that has logged in to the account before carries a signed *known device* cookie.
  Its tries skip both back-offs, so an attacker at the same conference address cannot keep the
  organiser out of a browser they used before. It has its own allowance (DEVICE_FAILURES in the
  window); past it the cookie counts for nothing until the window passes.

The state is in memory, per process, and bounded. With several processes (`redis.url`), the
failures per account and per address are also recorded in Redis (sharedstate.py) and every
process checks the back-off against all of them, so spreading guesses over processes gains
nothing; a known device's own allowance stays with the process that sees it.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable

from itsdangerous import BadSignature, Signer

from liveblog.errors import RateLimited
from liveblog.sharedstate import SharedCounters
from liveblog.text import plural

WINDOW_SECONDS = 15 * 60
# Free failures per account before the back-off starts: room for a person who mistypes.
ACCOUNT_FREE = 5
# A whole conference venue may share one address; several organisers mistyping stay well under.
ADDRESS_FREE = 30
# The longest anyone waits: at most one guess per minute per account (about 96 in the window
# after the free ones ... a guesser's budget), while the organiser is never locked out for long.
MAX_BACKOFF = 60.0
# Mistakes a known device may make in the window before it is treated as unknown.
DEVICE_FAILURES = 10
# Bounded memory under a spray of usernames or addresses.
MAX_KEYS = 10_000
DEVICE_SALT = "liveblog.known-device.v1"


class KnownDevices:
    """Signed `<username>|<nonce>` tokens for browsers that logged in successfully."""

    def __init__(self, secret_key: str) -> None:
        self._signer = Signer(secret_key or secrets.token_urlsafe(32), salt=DEVICE_SALT)

    def issue(self, username: str) -> str:
        return self._signer.sign(f"{username.lower()}|{secrets.token_urlsafe(12)}").decode()

    def device_of(self, token: str | None, username: str) -> str | None:
        """The device id in a valid token for this username; None otherwise."""
        if not token or len(token) > 300:
            return None
        try:
            value = self._signer.unsign(token).decode()
        except (BadSignature, UnicodeDecodeError):
            return None
        name, _, nonce = value.rpartition("|")
        return nonce if name == username.lower() and nonce else None


class LoginThrottle:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, shared: SharedCounters | None = None
    ) -> None:
        self.clock = clock
        self._accounts: dict[str, deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}
        self._devices: dict[str, deque[float]] = {}
        self.shared = shared or SharedCounters()

    async def check_shared(self, username: str, address: str, device: str | None = None) -> None:
        """`check`, then the same back-off over the failures every process recorded."""
        self.check(username, address, device)
        if self.trusted(device) or not self.shared.available:
            return
        now = time.time()  # wall clock: comparable between processes
        waits = []
        for key, free in (
            (f"login:account:{username.lower()}", ACCOUNT_FREE),
            (f"login:address:{address}", ADDRESS_FREE),
        ):
            times = await self.shared.recent(key, now, WINDOW_SECONDS)
            if times:
                waits.append(self._wait(deque(times), free, now))
        wait = max(waits, default=0.0)
        if wait > 0:
            raise RateLimited(
                f"too many failed log-ins: try again in {plural(int(wait) + 1, 'second')}"
                " (a browser you logged in with before is not held up)",
                code="rate_limited",
            )

    async def failed_shared(self, username: str, address: str, device: str | None = None) -> None:
        trusted = self.trusted(device)
        self.failed(username, address, device)
        if not trusted and self.shared.available:
            now = time.time()
            await self.shared.record(f"login:account:{username.lower()}", now, WINDOW_SECONDS)
            await self.shared.record(f"login:address:{address}", now, WINDOW_SECONDS)

    def _recent(self, table: dict[str, deque[float]], key: str, now: float) -> deque[float]:
        times = table.get(key)
        if times is None:
            return deque()
        while times and now - times[0] > WINDOW_SECONDS:
            times.popleft()
        if not times:
            del table[key]
        return times

    def _record(self, table: dict[str, deque[float]], key: str, now: float) -> None:
        times = self._recent(table, key, now)
        times.append(now)
        table[key] = times
        if len(table) > MAX_KEYS:
            for stale in list(table)[: MAX_KEYS // 10]:
                del table[stale]

    @staticmethod
    def _wait(times: deque[float], free: int, now: float) -> float:
        extra = len(times) - free
        if extra < 0 or not times:
            return 0.0
        backoff = min(MAX_BACKOFF, 2.0**extra)
        return max(0.0, times[-1] + backoff - now)

    def trusted(self, device: str | None) -> bool:
        if device is None:
            return False
        return len(self._recent(self._devices, device, self.clock())) < DEVICE_FAILURES

    def check(self, username: str, address: str, device: str | None = None) -> None:
        """Refuse (RateLimited) a try that must wait; a trusted known device never waits."""
        if self.trusted(device):
            return
        now = self.clock()
        wait = max(
            self._wait(self._recent(self._accounts, username.lower(), now), ACCOUNT_FREE, now),
            self._wait(self._recent(self._addresses, address, now), ADDRESS_FREE, now),
        )
        if wait > 0:
            seconds = int(wait) + 1
            raise RateLimited(
                f"too many failed log-ins: try again in {plural(seconds, 'second')}"
                " (a browser you logged in with before is not held up)",
                code="rate_limited",
            )

    def failed(self, username: str, address: str, device: str | None = None) -> None:
        now = self.clock()
        if self.trusted(device):
            assert device is not None
            # The owner's own typo: counted against this device only, never toward a lock-out.
            self._record(self._devices, device, now)
            return
        self._record(self._accounts, username.lower(), now)
        self._record(self._addresses, address, now)

    def succeeded(self, username: str, address: str, device: str | None = None) -> None:
        # Only the device's count is cleared: clearing the account's would hand a guesser a fresh
        # set of free tries every time the organiser logs in.
        if device is not None:
            self._devices.pop(device, None)

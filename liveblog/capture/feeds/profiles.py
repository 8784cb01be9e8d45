"""Bluesky handles and display names for the DIDs Jetstream gives.

A Jetstream commit names its author by DID only. We ask the public AppView's
`app.bsky.actor.getProfiles` (an unauthenticated XRPC GET, at most 25 actors a call) for the
handle and display name, in the background: a post is stored at once with what is known (its
DID until then), and when its author is resolved the source renames the stored copy through the
feed (`Feed.update_author`, a storage operation on both backends), which also updates the item
in its stream. Resolved profiles are cached; failures are remembered for a while, so one bad DID
or an AppView that is down never turns into a stream of requests.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from liveblog.capture.feeds.base import Backoff, describe, obj, text_value
from liveblog.capture.outbound import Network, OutboundClient

log = logging.getLogger(__name__)

METHOD = "/xrpc/app.bsky.actor.getProfiles"
MAX_ACTORS = 25  # the lexicon's maxLength for `actors`
BATCH_WINDOW = 0.25  # seconds to gather DIDs into one call: a burst of posts costs one request
PROFILES_KEPT = 50_000  # DID -> (handle, name) cached; an event meets thousands of authors at most
RETRY_UNKNOWN = 600.0  # seconds before asking again about a DID the AppView did not know
INVALID_HANDLE = "handle.invalid"  # what the AppView says when a handle no longer verifies


class ProfileResolver:
    def __init__(
        self,
        base_url: str,
        timeout: float,
        backoff_max: float,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        allow_private: bool = False,
        network: Network | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + METHOD
        self.timeout = timeout
        self.client = OutboundClient(
            "bluesky profiles",
            allow_private=allow_private,
            timeout=timeout,
            network=network,
            transport=transport,
            headers={"accept": "application/json"},
        )
        self.cache: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.avatars: dict[str, str] = {}  # DID -> the picture's URL, for the DIDs in `cache`
        self.unknown: dict[str, float] = {}  # DID -> monotonic time after which it may be asked again
        self.pending: dict[str, None] = {}  # DIDs waiting for the next call, in arrival order
        self._wake = asyncio.Event()
        self.backoff = Backoff(base=1.0, cap=backoff_max)
        self.requests = 0
        self.resolved = 0
        self.failures = 0

    async def close(self) -> None:
        await self.client.aclose()

    def known(self, did: str) -> tuple[str, str] | None:
        """(handle, display name) if resolved; never waits."""
        found = self.cache.get(did)
        if found is not None:
            self.cache.move_to_end(did)
        return found

    def want(self, did: str) -> None:
        """Ask for this DID in the next call (unless known, asked for, or recently unknown)."""
        if did in self.cache or did in self.pending:
            return
        if self.unknown.get(did, 0.0) > time.monotonic():
            return
        self.pending[did] = None
        self._wake.set()

    def forget(self, did: str) -> tuple[str, str] | None:
        """Drop what is known of an author (their profile changed); what was known, if anything."""
        self.avatars.pop(did, None)
        return self.cache.pop(did, None)

    def avatar_of(self, did: str) -> str:
        """The resolved author's picture URL ('' if none or not resolved)."""
        return self.avatars.get(did, "")

    def remember(self, did: str, handle: str, name: str) -> None:
        self.cache[did] = (handle, name)
        self.cache.move_to_end(did)
        while len(self.cache) > PROFILES_KEPT:
            gone, _ = self.cache.popitem(last=False)
            self.avatars.pop(gone, None)

    async def run(self, rename: Callable[[str, str, str], Awaitable[None]]) -> None:
        """Resolve what is wanted, batch by batch, for as long as the source runs, calling
        `rename(did, handle, name)` for each author found. Never raises: a failed call is
        logged, backed off and retried with the same DIDs."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(BATCH_WINDOW)  # let a burst gather into one call
            while self.pending:
                batch = list(itertools.islice(self.pending, MAX_ACTORS))
                try:
                    profiles = await self.fetch(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # down, slow, junk: wait and ask again, posts keep their DIDs
                    self.failures += 1
                    delay = self.backoff.next_delay()
                    log.info("bluesky profiles: %s; retrying in %.1fs", describe(exc), delay)
                    await asyncio.sleep(delay)
                    continue
                self.backoff.reset()
                for did in batch:
                    self.pending.pop(did, None)
                    found = profiles.get(did)
                    if found is None:
                        self.unknown[did] = time.monotonic() + RETRY_UNKNOWN
                        continue
                    self.remember(did, *found)
                    self.resolved += 1
                    try:
                        await rename(did, *found)
                    except Exception:  # the store is busy or down: the posts keep their DID
                        log.exception("bluesky profiles: renaming %s failed", did)
                if len(self.unknown) > PROFILES_KEPT:
                    now = time.monotonic()
                    self.unknown = {d: t for d, t in self.unknown.items() if t > now}

    async def fetch(self, dids: list[str]) -> dict[str, tuple[str, str]]:
        """One getProfiles call: {did: (handle, display name)} for the DIDs the AppView knows."""
        self.requests += 1
        response = await self.client.get(
            self.url, params=[("actors", d) for d in dids]
        )  # OutboundError if not
        if response.status_code != 200:
            raise ValueError(f"getProfiles answered {response.status_code}")
        body: Any = response.json()
        out: dict[str, tuple[str, str]] = {}
        for profile in obj(body).get("profiles") or []:
            profile = obj(profile)
            did, handle = text_value(profile.get("did")), text_value(profile.get("handle"))
            if did not in dids or not handle:
                continue
            name = " ".join(text_value(profile.get("displayName")).split())[:200]
            if handle == INVALID_HANDLE:  # the account's handle no longer verifies: keep its DID
                handle = did
            if (avatar := text_value(profile.get("avatar"))).startswith("https://") or avatar.startswith(
                "http://"
            ):
                self.avatars[did] = avatar
            out[did] = (handle[:200], name or handle[:200])
        return out

"""Fan-out between app processes through Redis pub/sub (redis-py's asyncio client).

Every process publishes the changes it committed to one Redis channel, after commit and in
commit order, and feeds the changes it receives to its own StreamHub. Its own viewers never
wait for Redis: the hub has its changes already (`StreamHub.publish` drops the echo by seq).

Redis pub/sub is fire-and-forget, so nothing here is trusted to be complete or ordered:
- a change that arrives ahead of a missing one waits in the hub, which fills the gap from
  storage if the missing one does not follow within a few ms (StreamHub._fill);
- the subscriber reconnects and resubscribes by itself with a capped back-off (redis-py's async
  pub/sub does not), and after every (re)subscription catches every watched session up from
  storage, so what was published while it was down is not missed;
- revocations travel on the same channel; after every (re)subscription and at every resync
  `on_resync` lets the access layer re-check the credentials of the sockets open here against
  storage, so one revoked elsewhere whose message was lost is closed too;
- every `redis.resync_seconds` it catches up anyway, which covers a publish lost while the
  subscriber stayed connected (the publisher's own connection failed).

The same component checks that every process signs with the same secret key: a fingerprint of
the key is stored in Redis by the first process; a process with another key refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from liveblog.errors import ConfigError
from liveblog.models import Change
from liveblog.streams.hub import StreamHub

log = logging.getLogger(__name__)

CHANNEL = "liveblog:changes"
SECRET_FINGERPRINT_KEY = "liveblog:secret-fingerprint"
PRESENCE_PREFIX = "liveblog:presence:"

# Reconnect back-off: from 50 ms doubling to 1 s. Capped low on purpose: while the subscriber is
# down, viewers on this process see nothing from the others, and a reconnect costs one round trip.
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 1.0
# Changes waiting to be published at most; past this (Redis down for long) the oldest are dropped:
# the other processes fill them from storage when they resync.
MAX_OUTBOX = 50_000
# How long `open` waits for the first subscription before serving anyway (health stays red).
OPEN_TIMEOUT = 10.0
CLOSE_FLUSH_TIMEOUT = 2.0  # how long close waits for the publisher to send what is queued


class SecretKeyMismatch(ConfigError):
    pass


def secret_fingerprint(secret_key: str) -> str:
    return hmac.new(secret_key.encode(), b"liveblog-shared-secret-check", hashlib.sha256).hexdigest()


class RedisFanout:
    """The `redis` service component: publisher and self-healing subscriber."""

    name = "redis"

    def __init__(self, url: str, hub: StreamHub, *, secret_key: str, resync_seconds: float = 5.0) -> None:
        self.url = url
        self.hub = hub
        self.secret_key = secret_key
        self.resync_seconds = resync_seconds
        self.origin = f"{os.getpid()}-{secrets.token_hex(4)}"  # this process, to skip its own echo
        # One client (a connection pool) for publishing, the subscriber and shared counters.
        self._redis: aioredis.Redis | None = aioredis.from_url(
            url, socket_connect_timeout=2, socket_timeout=None
        )
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._subscribed = asyncio.Event()
        self.connected = False
        self.published = 0
        self.received = 0
        self.reconnects = 0
        self.publish_failures = 0
        self.dropped = 0
        self.filled = 0  # changes caught up from storage after a (re)subscription or a resync
        # What this process does with what the others send: given once by `listen`.
        self.on_revoke: Callable[[str], None] | None = None
        self.on_resync: Callable[[], Awaitable[Any]] | None = None
        self.signals: dict[str, Callable[[], None]] = {}
        self.last_error: str | None = None

    def listen(
        self,
        *,
        on_revoke: Callable[[str], None],
        on_resync: Callable[[], Awaitable[Any]],
        signals: dict[str, Callable[[], None]],
    ) -> None:
        """The receiving side, registered once before open (the components it calls are built
        after this one, since they publish through it):
        - on_revoke(key): a credential revoked on another process; close the sockets it opened
          here (access/sockets.py).
        - on_resync(): revocations published while we were not subscribed, or whose publish
          failed, are lost: after each subscription and at each resync this re-checks the
          credentials of the sockets open here against storage.
        - signals: named work for whichever process runs it (e.g. "feeds.poll": the lease
          holder's pollers should poll now). Fire-and-forget like everything on this channel."""
        self.on_revoke = on_revoke
        self.on_resync = on_resync
        self.signals = dict(signals)

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def client(self) -> aioredis.Redis | None:
        return self._redis

    async def open(self, supervisor: Any) -> None:
        await self._check_secret()
        supervisor.spawn("redis.subscriber", self.run_subscriber)
        supervisor.spawn("redis.publisher", self.run_publisher)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OPEN_TIMEOUT):
                await self._subscribed.wait()

    async def close(self) -> None:
        # What this process queued for the others just before closing (a command's last signal,
        # the changes of its last commit) is sent first, if Redis answers within the timeout:
        # the publisher task runs until the supervisor stops it, after the components close.
        if self._redis is not None and self.connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_FLUSH_TIMEOUT):
                    await self._outbox.join()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def health(self) -> dict[str, Any]:
        return {
            "ok": self.connected,
            "subscriber": "connected" if self.connected else "reconnecting",
            "published": self.published,
            "received": self.received,
            "reconnects": self.reconnects,
            "publish_failures": self.publish_failures,
            "filled_from_storage": self.filled,
            "last_error": self.last_error,
        }

    async def _check_secret(self) -> None:
        """Refuse to run beside processes that sign with another key (votes and cookies signed by
        one would be refused by the others)."""
        assert self._redis is not None
        mine = secret_fingerprint(self.secret_key)
        try:
            await self._redis.set(SECRET_FINGERPRINT_KEY, mine, nx=True)
            theirs = await self._redis.get(SECRET_FINGERPRINT_KEY)
        except (RedisError, OSError) as exc:
            raise ConfigError(f"cannot reach Redis at {self.url}: {exc}") from None
        if isinstance(theirs, bytes):
            theirs = theirs.decode()
        if theirs is not None and theirs != mine:
            raise SecretKeyMismatch(
                "another Liveblog process sharing this Redis uses a different LIVEBLOG_SECRET_KEY: "
                "set the same LIVEBLOG_SECRET_KEY on every process (or clear the Redis key "
                f"{SECRET_FINGERPRINT_KEY} after changing it everywhere)"
            )

    # -- publishing ------------------------------------------------------------------------------

    def _done(self, n: int) -> None:
        for _ in range(n):
            self._outbox.task_done()

    def _put(self, message: dict[str, Any]) -> None:
        if self._outbox.qsize() >= MAX_OUTBOX:
            self._outbox.get_nowait()
            self._outbox.task_done()
            self.dropped += 1
        self._outbox.put_nowait(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())

    def forward(self, changes: Iterable[Change]) -> None:
        """After commit, in commit order: queue this process's changes for the other processes."""
        for change in changes:
            self._put({"o": self.origin, "s": change.session_id, "p": change.payload})

    def forward_revocation(self, key: str) -> None:
        """After a revocation committed: tell the other processes to close its sockets too."""
        message = {"o": self.origin, "r": key}
        self._outbox.put_nowait(json.dumps(message, separators=(",", ":")).encode())

    def send_signal(self, name: str) -> None:
        """Ask the other processes to run `signals[name]` (this one calls its own directly)."""
        self._put({"o": self.origin, "sig": name})

    async def run_publisher(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            first = await self._outbox.get()
            batch = [first]
            while not self._outbox.empty() and len(batch) < 512:
                batch.append(self._outbox.get_nowait())
            assert self._redis is not None
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for message in batch:
                        pipe.publish(CHANNEL, message)
                    await pipe.execute()
                self.published += len(batch)
                backoff = FIRST_BACKOFF
                self._done(len(batch))
            except (RedisError, OSError) as exc:
                # Dropped, not retried: the others fill these from storage (gap or resync), and
                # retrying would reorder them behind newer ones.
                self.publish_failures += 1
                self.last_error = f"publish: {type(exc).__name__}: {exc}"
                log.warning("publishing %d changes to Redis failed: %s", len(batch), exc)
                self._done(len(batch))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    # -- subscribing -----------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        message = json.loads(data)
        if message.get("o") == self.origin:
            return  # our own: the hub has it already
        if "r" in message:
            if self.on_revoke is not None:
                self.on_revoke(str(message["r"]))
            return
        if "sig" in message:
            handler = self.signals.get(str(message["sig"]))
            if handler is not None:
                handler()
            return
        payload = message["p"]
        self.received += 1
        self.hub.publish([Change(message["s"], int(payload["seq"]), str(payload["op"]), payload)])

    async def _catch_up(self) -> None:
        self.filled += await self.hub.catch_up_all()

    async def _recheck_credentials(self) -> None:
        """Run `on_resync` (after each subscription and at each resync)."""
        if self.on_resync is None:
            return
        try:
            await self.on_resync()
        except Exception as exc:  # storage down: the sockets stay open until it answers
            log.warning("re-checking open sockets' credentials failed: %s", exc)

    async def share_presence(self) -> None:
        """Tell the others who watches each session here, and learn who watches there: one hash
        per session, a field per process, expiring unless refreshed (a killed process drops out)."""
        assert self._redis is not None
        ttl = max(2, int(self.resync_seconds * 3))
        watched = [
            (sid, ch) for sid, ch in self.hub.channels.items() if ch.subscriber_count or ch.remote_viewers
        ]
        if not watched:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid, ch in watched:
                key = PRESENCE_PREFIX + sid
                mine = {"v": ch.subscriber_count, "n": sorted(ch.note_takers)}
                if ch.subscriber_count:
                    pipe.hset(key, self.origin, json.dumps(mine))
                    pipe.expire(key, ttl)
                else:
                    pipe.hdel(key, self.origin)
                pipe.hgetall(key)
            replies = await pipe.execute()
        tables = [r for r in replies if isinstance(r, dict)]
        for (sid, _), table in zip(watched, tables, strict=False):
            viewers = 0
            names: set[str] = set()
            for origin, raw in table.items():
                origin = origin.decode() if isinstance(origin, bytes) else origin
                if origin == self.origin:
                    continue
                entry = json.loads(raw)
                viewers += int(entry.get("v", 0))
                names.update(entry.get("n", []))
            self.hub.set_remote_presence(sid, viewers, sorted(names))

    async def run_subscriber(self) -> None:
        """Subscribe, catch up from storage, then feed the hub; on any failure, reconnect."""
        backoff = FIRST_BACKOFF
        assert self._redis is not None
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                confirmation = await pubsub.get_message(timeout=5)
                if confirmation is None or confirmation.get("type") != "subscribe":
                    raise RedisError("no subscription confirmation from Redis")
                self.connected = True
                self._subscribed.set()
                backoff = FIRST_BACKOFF
                # Whatever was published while we were not subscribed is in storage.
                await self._catch_up()
                await self._recheck_credentials()
                loop = asyncio.get_running_loop()
                next_resync = loop.time() + self.resync_seconds
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self.resync_seconds
                    )
                    if message is not None and message.get("type") == "message":
                        self._receive(message["data"])
                    if loop.time() >= next_resync:
                        await self._catch_up()
                        await self._recheck_credentials()
                        await self.share_presence()
                        next_resync = loop.time() + self.resync_seconds
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("Redis subscriber lost its connection (%s); reconnecting", exc)
                self.last_error = f"subscribe: {type(exc).__name__}: {exc}"
            finally:
                self.connected = False
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            self.reconnects += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)


# A lease renewed every third of its length; a process that dies hands the work over within it.
LEASE_SECONDS = 15.0
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class SingleProcess:
    """Run a component in one process of several at a time: the one holding a Redis lease.

    For work that must not be done once per process (social feed pollers: a paid API billed per
    read). The others stand by and take over when the holder stops renewing (it died, or lost
    Redis for longer than the lease). If Redis is unreachable the holder keeps working: at worst
    two processes poll for a while, and posts are stored once (by network and post id) anyway.
    """

    def __init__(
        self, inner: Any, fanout: RedisFanout, *, key: str, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.fanout = fanout
        self.key = "liveblog:lease:" + key
        self.lease_seconds = lease_seconds
        self.leading = False
        self._supervisor: Any = None

    async def open(self, supervisor: Any) -> None:
        self._supervisor = supervisor
        await self._step()  # the first process to start leads at once
        supervisor.spawn(f"{self.name}.lease", self.run_lease)

    async def _step(self) -> None:
        client = self.fanout.client
        assert client is not None
        ms = int(self.lease_seconds * 1000)
        try:
            if self.leading:
                held = bool(await client.eval(_RENEW, 1, self.key, self.fanout.origin, ms))
            else:
                held = bool(await client.set(self.key, self.fanout.origin, nx=True, px=ms))
        except (RedisError, OSError) as exc:
            log.warning("lease %s: Redis unreachable (%s); keeping the current role", self.key, exc)
            return
        if held and not self.leading:
            log.info("this process now runs %s", self.name)
            await self.inner.open(self._supervisor)
            self.leading = True
        elif not held and self.leading:
            log.warning("lease %s lost: %s stops here", self.key, self.name)
            self.leading = False
            await self.inner.close()

    async def run_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            await self._step()

    async def close(self) -> None:
        if self.leading:
            self.leading = False
            await self.inner.close()
            client = self.fanout.client
            if client is not None:
                with contextlib.suppress(RedisError, OSError):
                    await client.eval(_RELEASE, 1, self.key, self.fanout.origin)

    def health(self) -> dict[str, Any]:
        report = dict(self.inner.health()) if self.leading else {"ok": True}
        report["runs_here"] = self.leading
        return report

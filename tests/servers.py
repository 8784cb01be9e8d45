"""Real PostgreSQL and Redis servers for tests and benchmarks, from Debian's packages.

Each runs on loopback from a temporary data directory, as a child of the test process (no
system service), and is stopped by its PID. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` user that Debian's package creates (any non-root user would do).
scripts/test installs both packages with apt when missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# How long a server may take to start or stop (initdb is ~1.5 s on a busy 2-core machine).
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
POLL = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on port {port} within {START_TIMEOUT} s")
        time.sleep(POLL)  # the interval of this deadline-bounded poll: a process gives no signal


def _stop(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL is not installed: `apt-get install postgresql` (scripts/test does it)")


class PostgresServer:
    """`postgres` on 127.0.0.1:port, trust authentication for the `liveblog` superuser."""

    user = "liveblog"

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="liveblog-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._databases = 0
        self._uid: int | None = None
        self._gid: int | None = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")  # created by Debian's postgresql package
            self._uid, self._gid = entry.pw_uid, entry.pw_gid
            os.chown(self.root, self._uid, self._gid)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            args,
            user=self._uid,
            group=self._gid,
            extra_groups=[] if self._uid is not None else None,
            cwd=self.root,
            **kwargs,
        )  # type: ignore[call-overload, no-any-return]

    def start(self) -> PostgresServer:
        bindir = postgres_bindir()
        if not self.data.exists():
            with open(self.root / "initdb.log", "wb") as out:
                init = self._run(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(self.data),
                        "-U",
                        self.user,
                        "--auth=trust",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                        "--no-sync",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
                if init.wait(START_TIMEOUT) != 0:
                    raise RuntimeError(f"initdb failed: {(self.root / 'initdb.log').read_text()[-2000:]}")
        with open(self.log, "ab") as out:
            self.proc = self._run(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.root}",
                    # Tests want speed, not crash safety of the test server itself: an app killed
                    # with -9 is still tested for real, PostgreSQL itself is never killed.
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "max_connections=300",
                    "-c",
                    "shared_buffers=32MB",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_port(self.port, self.proc, "postgres", self.log)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Listening is not accepting: wait for pg_isready to say so."""
        deadline = time.monotonic() + START_TIMEOUT
        isready = str(postgres_bindir() / "pg_isready")
        while (
            subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False).returncode
            != 0
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("postgres did not accept connections in time")
            time.sleep(POLL)  # the interval of this deadline-bounded poll, as _wait_port's

    def new_database_sync(self) -> str:
        self._databases += 1
        name = f"test_{os.getpid()}_s{self._databases}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database_sync(self, url: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    async def new_database(self) -> str:
        """A fresh, empty database on this server: its URL. (CREATE DATABASE copies the tiny
        template1: ~20 ms, so every test gets its own.)"""
        import asyncpg

        self._databases += 1
        name = f"test_{os.getpid()}_{self._databases}"
        admin = await asyncpg.connect(self.url())
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return self.url(name)

    async def drop_database(self, url: str) -> None:
        import asyncpg

        admin = await asyncpg.connect(self.url())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await admin.close()

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [
                str(postgres_bindir() / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                self.url(database),
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # "fast" shutdown: disconnect clients, checkpoint, exit
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """`redis-server` on 127.0.0.1:port with no persistence: restartable on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="liveblog-redis-"))
        self.log = self.root / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: `apt-get install redis-server` (scripts/test does it)"
            )
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.root),
                    "--daemonize",
                    "no",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        _wait_port(self.port, self.proc, "redis-server", self.log)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.proc, sig)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

"""Start the servers under test in their own processes, and read their CPU time and memory.

`liveblog serve` runs exactly as in production (liveblog/cli.py: uvicorn, websockets-sansio,
no permessage-deflate) on a temporary SQLite file seeded beforehand with an event, a live
session and note-taker invites. The baselines are bench/baseline_server.py (websockets) and
bench/node/server.js (Node.js `ws`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Seeded:
    db_path: str
    session_id: str
    tokens: list[str] = field(default_factory=list)


async def _seed(db_path: str, note_takers: int) -> Seeded:
    from liveblog.services import Services
    from liveblog.settings import settings_from_dict

    settings = settings_from_dict({"database": {"path": db_path}}, env={"LIVEBLOG_SECRET_KEY": "bench"})
    services = Services.build(settings)
    await services.open()
    try:
        event = await services.programme.create_event(
            {"title": "Bench Summit", "starts_on": "2026-05-14", "ends_on": "2026-05-15"}
        )
        session = await services.programme.create_session(
            event.id, {"title": "Keynote", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00"}
        )
        await services.programme.set_state(session.id, "live")
        tokens = []
        for i in range(note_takers):
            _, token = await services.accounts.invite(event.id, session.id, f"Bench note-taker {i + 1}")
            tokens.append(token)
        return Seeded(db_path, session.id, tokens)
    finally:
        await services.close()


def seed(db_path: str, note_takers: int = 1) -> Seeded:
    # In a thread of its own: the caller may be inside a running event loop.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _seed(db_path, note_takers)).result()


@dataclass
class Server:
    kind: str  # "liveblog", "baseline" (websockets) or "node" (Node.js ws)
    proc: subprocess.Popen[bytes]
    port: int
    session_id: str
    tokens: list[str]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def viewer_path(self) -> str:
        return f"/ws/v1/sessions/{self.session_id}"

    def capture_path(self) -> str:
        return f"/ws/v1/sessions/{self.session_id}/capture"

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode}:\n{tail}")


def _wait_listening(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.check_alive()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{server.kind} server did not listen on {server.port} within {timeout}s")


@contextlib.contextmanager
def liveblog_server(
    workdir: Path,
    note_takers: int = 1,
    synchronous: str = "FULL",
    prepare: Callable[[Seeded], None] | None = None,
) -> Iterator[Server]:
    """`liveblog serve` on a fresh, seeded SQLite file (`prepare(seeded)`, if given, adds to the
    file before the server starts)."""
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = str(workdir / "bench.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(db_path + suffix)
    seeded = seed(db_path, note_takers)
    if prepare is not None:
        prepare(seeded)
    port = free_port()
    config = workdir / "config.toml"
    config.write_text(
        "[server]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        "[database]\n"
        f'path = "{db_path}"\n'
        f'synchronous = "{synchronous}"\n'
    )
    log_path = workdir / "liveblog.log"
    cmd = [sys.executable, "-m", "liveblog.cli", "--config", str(config), "serve", "--log-level", "warning"]
    if os.environ.get("LIVEBLOG_BENCH_CPROFILE"):
        # Profile the server (bench only): the stats are written when it stops.
        cmd[1:3] = ["-m", "bench.profiled", os.environ["LIVEBLOG_BENCH_CPROFILE"]]
    if os.environ.get("LIVEBLOG_BENCH_LOOP"):
        cmd += ["--loop", os.environ["LIVEBLOG_BENCH_LOOP"]]
    env = {**os.environ, "LIVEBLOG_SECRET_KEY": "bench"}
    if os.environ.get("LIVEBLOG_BENCH_SRC"):
        # Benchmark another copy of the package (e.g. a prototype fix) with the same harness.
        # The probes of bench/soak.py (bench/tracemalloc_probe) stay on the path, after it.
        probes = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p.endswith("_probe")]
        env["PYTHONPATH"] = os.pathsep.join([os.environ["LIVEBLOG_BENCH_SRC"], *probes])
    with open(log_path, "wb") as log:
        # cwd is the scratch directory: `-m` puts cwd first on sys.path, which must not shadow
        # LIVEBLOG_BENCH_SRC; otherwise the installed (editable) package is found.
        proc = subprocess.Popen(
            cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=raise_fd_limit
        )
    server = Server("liveblog", proc, port, seeded.session_id, seeded.tokens, log_path)
    try:
        _wait_listening(server)
        yield server
    finally:
        _stop(proc)


@contextlib.contextmanager
def _bench_server(kind: str, module: str, workdir: Path) -> Iterator[Server]:
    """One of the bench's own Python servers (`python -m <module> --port N`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"{kind}.log"
    cmd = [sys.executable, "-m", module, "--port", str(port)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_fd_limit
        )
    server = Server(kind, proc, port, "bench", ["bench-token"], log_path)
    try:
        _wait_listening(server)
        yield server
    finally:
        _stop(proc)


def baseline_server(workdir: Path) -> contextlib.AbstractContextManager[Server]:
    """The bare `websockets` broadcast server (bench/baseline_server.py)."""
    return _bench_server("baseline", "bench.baseline_server", workdir)


def floor_server(workdir: Path) -> contextlib.AbstractContextManager[Server]:
    """The kernel floor (bench/floor_server.py): a raw `send` of each frame to each viewer."""
    return _bench_server("floor", "bench.floor_server", workdir)


NODE_DIR = REPO / "bench" / "node"


@contextlib.contextmanager
def node_server(workdir: Path) -> Iterator[Server]:
    """The bare Node.js `ws` broadcast server (bench/node/server.js), installed from its lockfile."""
    workdir.mkdir(parents=True, exist_ok=True)
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True
        )
    port = free_port()
    log_path = workdir / "node.log"
    cmd = ["node", str(NODE_DIR / "server.js"), "--port", str(port)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=NODE_DIR, stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_fd_limit
        )
    server = Server("node", proc, port, "bench", ["bench-token"], log_path)
    try:
        _wait_listening(server)
        yield server
    finally:
        _stop(proc)


def node_version() -> str:
    try:
        ws = json.loads((NODE_DIR / "node_modules" / "ws" / "package.json").read_text())["version"]
        node = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        return f"Node.js {node}, ws {ws}"
    except (OSError, ValueError, subprocess.CalledProcessError):
        return "Node.js ws"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def machine_busy_seconds() -> float:
    """CPU seconds used by everything on the machine (all CPUs), from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


@contextlib.contextmanager
def serve_config(
    workdir: Path,
    port: int,
    config: str,
    session_id: str,
    tokens: list[str],
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`liveblog serve` with this config.toml text (which names `port`), in its own process,
    logging to workdir/liveblog.log; stopped on exit."""
    path = workdir / "config.toml"
    path.write_text(config)
    log_path = workdir / "liveblog.log"
    cmd = [sys.executable, "-m", "liveblog.cli", "--config", str(path), "serve", "--log-level", "warning"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LIVEBLOG_SECRET_KEY": "bench", **(env or {})},
            preexec_fn=raise_fd_limit,
        )
    server = Server("liveblog", proc, port, session_id, tokens, log_path)
    try:
        _wait_listening(server)
        yield server
    finally:
        _stop(proc)

"""`liveblog` commands as processes of their own, forked from one that has imported the package.

A `python -m liveblog.cli` spends ~0.8 s importing before it does anything; a test file that runs
the command forty times spent most of its time there. multiprocessing's forkserver imports
liveblog.cli once and forks a fresh child for every command: still its own process, with its own
exit status, stdout and stderr (an uncaught exception prints its traceback there, as Python's
own would), working directory and environment (the caller's, at the moment of the call).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_CONTEXT: list[Any] = []


def _context() -> Any:
    if not _CONTEXT:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["liveblog.cli"])
        _CONTEXT.append(context)
    return _CONTEXT[0]


def _command(args: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """The child: stdio to the files, then what `python -m liveblog.cli ARGS` does."""
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's own
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    import liveblog.cli

    sys.argv = [liveblog.cli.__file__, *args]
    try:
        code = liveblog.cli.main(args)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    raise SystemExit(code)


def run_liveblog(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run `liveblog ARGS` in `cwd` as a forked process; its status and output, as subprocess.run
    with capture_output=True, text=True would give them."""
    with tempfile.TemporaryDirectory(prefix="liveblog-cli-") as tmp:
        out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        process = _context().Process(target=_command, args=(args, str(cwd), dict(os.environ), out, err))
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(["liveblog", *args], timeout)
        with open(out, encoding="utf-8") as o, open(err, encoding="utf-8") as e:
            return subprocess.CompletedProcess(["liveblog", *args], process.exitcode, o.read(), e.read())

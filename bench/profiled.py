"""Run `liveblog.cli` under cProfile (bench only: `LIVEBLOG_BENCH_CPROFILE=out.prof python -m bench.live ...`).

uvicorn raises SIGTERM again once it has shut down, which would kill the process before
cProfile writes its stats: the handler it restores here ends the process with SystemExit instead.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
from typing import Any


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def main() -> None:
    out = sys.argv.pop(1)
    signal.signal(signal.SIGTERM, _exit)
    profile = cProfile.Profile()
    profile.enable()
    try:
        runpy.run_module("liveblog.cli", run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profile.disable()
        profile.dump_stats(out)


if __name__ == "__main__":
    main()

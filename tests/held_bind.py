"""`python -m tests.held_bind ARGS`: `liveblog ARGS`, whose server binds its listening socket only
once a line arrives on stdin (it says "binding" on stderr when it gets there).

uvicorn runs the lifespan (which opens the services) and then binds; on a loaded machine the
moment in between can last. This holds it open, for as long as a test needs, to show what the
server does before it answers (tests/test_federation_durability.py).
"""

from __future__ import annotations

import sys
from asyncio import base_events
from typing import Any

from liveblog.cli import main

create_server = base_events.BaseEventLoop.create_server
held = [False]


async def create_server_when_told(self: base_events.BaseEventLoop, *args: Any, **kwargs: Any) -> Any:
    if not held[0]:  # the first server is uvicorn's
        held[0] = True
        print("binding", file=sys.stderr, flush=True)
        await self.run_in_executor(None, sys.stdin.readline)
    return await create_server(self, *args, **kwargs)


base_events.BaseEventLoop.create_server = create_server_when_told  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""How Liveblog runs under uvicorn: the options `liveblog serve` and the tests both use.

Viewers are served by the fast path when uvicorn runs Liveblog's own websocket protocol
(liveblog/web/wsproto.py); under any other server or protocol they get the portable queue path.
The start-up log says which (`viewer_path_line`). `ListeningServer` says when the socket
accepts connections (lifecycle.Listening).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import uvicorn

from liveblog.lifecycle import Listening
from liveblog.settings import Settings
from liveblog.web.wsproto import FastWebSocketProtocol

# uvicorn versions this is tested with: the lower bound runs in tests/test_uvicorn_versions.py,
# the upper in the rest of the suite. Keep in step with pyproject.toml.
UVICORN_TESTED = ("0.30.0", "0.54.0")


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` (besides the app, host, port)."""
    return {
        "ws": FastWebSocketProtocol,  # the fast path: liveblog.fast_send in every websocket scope
        "ws_per_message_deflate": False,  # 3-4x the CPU and 3x the memory per viewer, for small JSON
        "ws_max_size": settings.limits.frame_bytes,
        # The protocol pings a connection it has sent data to every half of this budget and closes
        # it (4408) when no pong comes back in the other half: stalled viewers go within it.
        "ws_ping_interval": settings.streams.stall_seconds / 2,
        "ws_ping_timeout": settings.streams.stall_seconds / 2,
    }


def viewer_path_line(ws: Any) -> str:
    """The start-up line naming the path that serves viewers under this `ws=` choice."""
    if ws is FastWebSocketProtocol:
        return (
            "viewer websockets: FAST path (liveblog.web.wsproto.FastWebSocketProtocol offers liveblog.fast_send: "
            f"each change is encoded once and written straight to every viewer's socket; uvicorn {uvicorn.__version__})"
        )
    return (
        f"viewer websockets: PORTABLE queue path (ws={ws!r} offers no liveblog.fast_send: "
        f"one task and one encoding per viewer per change; uvicorn {uvicorn.__version__})"
    )


class ListeningServer(uvicorn.Server):
    """uvicorn's Server that opens `listening` once its socket accepts connections. uvicorn
    runs the lifespan (which opens the services) first and binds after it; what must not start
    before the server answers waits for this (lifecycle.Listening)."""

    def __init__(self, config: uvicorn.Config, listening: Listening) -> None:
        super().__init__(config)
        self.listening = listening
        listening.expect()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)  # the lifespan's start-up, then the socket bound
        self.listening.set()


def serve(app: Any, listening: Listening, **config: Any) -> bool:
    """What `uvicorn.run` does for one process, with a server that opens `listening` once it
    accepts connections; whether it started (a taken port: False). Tests replace this, as they
    did `uvicorn.run`, to run the app's lifespan without a socket."""
    server = ListeningServer(uvicorn.Config(app, **config), listening)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return bool(server.started)

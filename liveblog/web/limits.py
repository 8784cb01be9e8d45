"""One bound on every request body, whatever reads it.

The JSON API and uploads check their own, tighter limits as they read; this one covers what
reads a body without a limit of its own (Starlette's url-encoded form parser keeps a whole
form in memory, from anyone, /login included). Past the limit, reading the body raises
TooLarge, which the app's error handler renders as 413 (JSON for the API, a page otherwise).
"""

from __future__ import annotations

from typing import Any

from liveblog.errors import TooLarge


class BodyLimitMiddleware:
    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        over = declared.isdigit() and len(declared) < 20 and int(declared) > limit
        seen = 0

        async def bounded_receive() -> Any:
            nonlocal seen
            if over:
                raise TooLarge(f"a request body is limited to {limit // (1024 * 1024)} MB")
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge(f"a request body is limited to {limit // (1024 * 1024)} MB")
            return message

        await self.app(scope, bounded_receive, send)

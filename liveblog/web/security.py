"""Security headers on every response, and the same-origin rule for anything that changes state.

A browser on another site must not be able to post notes, votes or organiser actions with the
user's cookies, nor open our websockets: requests carrying a foreign Origin are refused.
Requests with no Origin (scripts, bots, curl) are not cross-site requests and pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from liveblog.access.origins import origin_allowed

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-src https://www.youtube-nocookie.com https://player.vimeo.com; "
    "manifest-src 'self'; worker-src 'self'"
)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

__all__ = ["SecurityMiddleware", "origin_allowed"]



class SecurityMiddleware:
    def __init__(self, app: Any, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed_origins = tuple(allowed_origins)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in UNSAFE_METHODS and not origin_allowed(Headers(scope=scope), self.allowed_origins):
            response = JSONResponse(
                {"error": {"code": "bad_origin", "message": "cross-site requests are not allowed"}}, status_code=403
            )
            await response(scope, receive, send)
            return
        embeddable = scope["path"].startswith("/embed/")

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                ancestors = "*" if embeddable else "'none'"
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", f"{CSP}; frame-ancestors {ancestors}".encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                if not embeddable:
                    headers.append((b"x-frame-options", b"DENY"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

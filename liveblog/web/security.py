"""Security headers on every response, and the checks every state-changing request passes.

A browser on another site must not be able to post notes, votes or organiser actions with the
user's cookies, nor open our websockets. Two walls (docs/protocol.md, "Origins and CSRF"):
the origin rule (liveblog/access/origins.py: Origin, else Referer, scheme and host and port), and
for requests that carry our cookies, the per-session CSRF token (liveblog/access/csrf.py) as a
form field or header. Requests authenticated by a bearer token need no CSRF token.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, Response

from liveblog.access import csrf
from liveblog.access.origins import origin_allowed
from liveblog.settings import Settings

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-src https://www.youtube-nocookie.com https://player.vimeo.com; media-src 'self' https:; "
    "manifest-src 'self'; worker-src 'self'"
)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Cookies that make a request act for someone: a request carrying one must prove it comes from
# our own page (the CSRF token). lb_csrf itself counts: a browser that loaded one of our pages.
AMBIENT_COOKIES = ("lb_login", "lb_reader", "lb_participant", csrf.COOKIE)
LOGIN_COOKIE = "lb_login"
PARTICIPANT_COOKIE = "lb_participant"
PARTICIPANT_HEADER = "liveblog-participant"
READER_COOKIE = "lb_reader"  # a reader account's login (liveblog/web/comments.py)
# Our forms are small; a form body is read whole to find its token.
MAX_FORM_BYTES = 1024 * 1024
SCOPE_TOKEN = "liveblog.csrf_token"

__all__ = ["SecurityMiddleware", "origin_allowed", "trusted_origins"]


def trusted_origins(settings: Settings) -> tuple[str, ...]:
    """Origins besides the request's own: server.allowed_origins and server.public_url."""
    extra = (settings.server.public_url,) if settings.server.public_url else ()
    return (*settings.server.allowed_origins, *extra)


def session_ids(cookies: Mapping[str, str]) -> tuple[str, ...]:
    """The credentials a request's CSRF token is bound to (liveblog/access/csrf.py): every login
    it carries (an organiser's and a reader's, in that order: a planted one beside the real one
    yields a token its planter cannot know), else its browser session, else (a script that keeps
    cookies but loads no page) its participant cookie."""
    logins = tuple(
        csrf.login_id(cookies[name]) for name in (LOGIN_COOKIE, READER_COOKIE) if cookies.get(name)
    )
    if logins:
        return logins
    if cookies.get(csrf.COOKIE):
        return (csrf.browser_id(cookies[csrf.COOKIE]),)
    if cookies.get(PARTICIPANT_COOKIE):
        return (csrf.participant_id(cookies[PARTICIPANT_COOKIE]),)
    return ()


def csrf_token_for_cookies(secret_key: str, cookies: Mapping[str, str]) -> str:
    """The CSRF token of a request carrying these cookies ("" when it carries none of ours)."""
    ids = session_ids(cookies)
    return csrf.token_for(secret_key, ids) if ids else ""


def _is_page_load(scope: dict[str, Any]) -> bool:
    path = scope["path"]
    return scope["method"] == "GET" and not path.startswith(("/api/", "/static/", "/media/"))


def csrf_token(scope: MutableMapping[str, Any]) -> str:
    """The CSRF token for the page being rendered (set by SecurityMiddleware)."""
    return str(scope.get(SCOPE_TOKEN, ""))


def _refuse(scope: dict[str, Any], code: str, message: str) -> Response:
    wants_json = scope["path"].startswith("/api/") or "application/json" in Headers(scope=scope).get(
        "accept", ""
    )
    if wants_json:
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=403)
    return HTMLResponse(
        f"<!doctype html><title>Not allowed</title><h1>Not allowed</h1><p>{message}</p>"
        '<p><a href="/">Back to the start</a></p>',
        status_code=403,
    )


class SecurityMiddleware:
    def __init__(
        self, app: Any, allowed_origins: Iterable[str] = (), hsts_seconds: int = 0, secret_key: str = ""
    ) -> None:
        self.app = app
        # Tokens are keyed with the server's secret; without one (a bare test app), a random key
        # for this process, never an empty one anybody could compute tokens with.
        self.secret_key = secret_key or secrets.token_urlsafe(32)
        self.allowed_origins = tuple(allowed_origins)
        self.hsts_seconds = hsts_seconds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = cookie_parser(headers.get("cookie", ""))
        ids = session_ids(cookies)
        new_cookie = None
        logged_in = LOGIN_COOKIE in cookies or READER_COOKIE in cookies
        if not logged_in and csrf.COOKIE not in cookies and _is_page_load(scope):
            # A browser's first page: it gets its own CSRF session, which its later requests carry.
            new_cookie = csrf.new_browser_session()
            ids = (csrf.browser_id(new_cookie),)
        scope[SCOPE_TOKEN] = csrf.token_for(self.secret_key, ids) if ids else ""

        if scope["method"] in UNSAFE_METHODS:
            if not origin_allowed(headers, self.allowed_origins, scope.get("scheme", "http")):
                await _refuse(scope, "bad_origin", "cross-site requests are not allowed")(
                    scope, receive, send
                )
                return
            # A credential in a header (a bearer token, a participant token) is not ambient: a
            # foreign page cannot add such a header without a CORS preflight, which we never allow.
            scripted = (
                headers.get("authorization", "").lower().startswith("bearer ")
                or PARTICIPANT_HEADER in headers
            )
            if not scripted and any(name in cookies for name in AMBIENT_COOKIES):
                token = headers.get(csrf.HEADER)
                if token is None and headers.get("content-type", "").startswith(
                    "application/x-www-form-urlencoded"
                ):
                    body, receive = await _buffer(receive)
                    if body is None:
                        await _refuse(scope, "too_large", "that form is too large")(scope, receive, send)
                        return
                    found = parse_qs(body.decode("latin-1")).get(csrf.FIELD)
                    token = found[0] if found else None
                if token is None and headers.get("content-type", "").startswith("multipart/form-data"):
                    # A file form without JavaScript (the programme import): multipart bodies are
                    # not parsed here, so its token rides in the form's action, ?csrf_token=...
                    found = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(csrf.FIELD)
                    token = found[0] if found else None
                if not csrf.token_valid(self.secret_key, ids, token):
                    await _refuse(
                        scope,
                        "bad_csrf",
                        "this page is out of date or came from another site: reload it and try again",
                    )(scope, receive, send)
                    return

        embeddable = scope["path"].startswith("/embed/")
        https = scope.get("scheme") == "https"
        set_cookie = None
        if new_cookie is not None:
            secure = "; Secure" if https else ""
            set_cookie = f"{csrf.COOKIE}={new_cookie}; Path=/; HttpOnly; SameSite=Lax{secure}".encode()

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                ancestors = "*" if embeddable else "'none'"
                if b"content-security-policy" not in names:
                    headers.append(
                        (b"content-security-policy", f"{CSP}; frame-ancestors {ancestors}".encode())
                    )
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                if not embeddable:
                    headers.append((b"x-frame-options", b"DENY"))
                if https and self.hsts_seconds > 0:
                    headers.append((b"strict-transport-security", f"max-age={self.hsts_seconds}".encode()))
                if set_cookie is not None:
                    headers.append((b"set-cookie", set_cookie))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _buffer(receive: Any) -> tuple[bytes | None, Any]:
    """Read a request body whole (None past MAX_FORM_BYTES); returns it and a receive that replays it."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


# An invite token in a page path: /n/<token>, /n/<token>/sessions/..., /n/<token>/...
INVITE_IN_PATH = re.compile(r"(/n/)[^/?#\s\"]+")
REDACTED = r"\1[invite]"


class _RedactInviteTokens(logging.Filter):
    """Access logs keep the path of a note-taker page but never its invite token: a log shipped
    to a shared system, or read over someone's shoulder, must not hand out note-taking rights."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                INVITE_IN_PATH.sub(REDACTED, a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str) and "/n/" in record.msg:
            record.msg = INVITE_IN_PATH.sub(REDACTED, record.msg)
        return True


def redact_invite_tokens_in_logs() -> None:
    """Install the redaction on uvicorn's loggers once (after uvicorn configured them)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactInviteTokens) for f in logger.filters):
            logger.addFilter(_RedactInviteTokens())

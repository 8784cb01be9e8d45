"""Who is asking: the organiser behind a login cookie or bearer token, or a note-taker's invite."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response

from liveblog.access.accounts import LOGIN_SECONDS
from liveblog.errors import Unauthorized
from liveblog.models import Account, Invite, Session
from liveblog.services import Services

LOGIN_COOKIE = "lb_login"
READER_COOKIE = "lb_reader"  # a reader account's login (comments), apart from organisers'


DEVICE_COOKIE = "lb_device"
DEVICE_SECONDS = 365 * 24 * 3600


async def log_in(conn: HTTPConnection, username: str, password: str) -> str:
    """Check a password through the throttle (known-device cookie and address); a login token."""
    address = conn.client.host if conn.client else ""
    return await services(conn).accounts.login(username, password, address, conn.cookies.get(DEVICE_COOKIE))


def set_login_cookie(response: Response, conn: HTTPConnection, token: str, username: str) -> None:
    """The login cookie, living exactly as long as its server-side session, and the known-device
    cookie that keeps this browser from being throttled by someone else's guessing."""
    secure = conn.url.scheme == "https"
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=LOGIN_SECONDS, httponly=True, samesite="lax", secure=secure
    )
    device = services(conn).accounts.known_device(username, conn.cookies.get(DEVICE_COOKIE))
    response.set_cookie(
        DEVICE_COOKIE, device, max_age=DEVICE_SECONDS, httponly=True, samesite="strict", secure=secure
    )


def services(conn: HTTPConnection) -> Services:
    return conn.app.state.services


def bearer(conn: HTTPConnection) -> str | None:
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


async def current_organiser(conn: HTTPConnection) -> Account | None:
    cached = conn.scope.get("liveblog.organiser", False)
    if cached is not False:
        return cached
    token = conn.cookies.get(LOGIN_COOKIE) or bearer(conn)
    account = await services(conn).accounts.account_for_token(token)
    if account is not None and account.role != "organiser":
        account = None  # a reader's login (comments) is never an organiser's
    conn.scope["liveblog.organiser"] = account
    return account


async def require_organiser(conn: HTTPConnection) -> Account:
    account = await current_organiser(conn)
    if account is None:
        raise Unauthorized("log in as an organiser first", code="login_required")
    return account


async def organiser_or_login(request: Request) -> Response | None:
    """A redirect to the login page for anyone not logged in as an organiser."""
    if await current_organiser(request) is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    return None


async def require_invite(conn: HTTPConnection, session: Session) -> Invite:
    """The note-taker invite in the Authorization header, if it covers the session."""
    return await services(conn).accounts.authorize_capture(bearer(conn), session)


async def current_reader(conn: HTTPConnection) -> Account | None:
    """Who may comment: a reader logged in, or else an organiser (who comments as themselves)."""
    cached = conn.scope.get("liveblog.reader", False)
    if cached is not False:
        return cached
    account = await services(conn).readers.account(conn.cookies.get(READER_COOKIE))
    if account is None:
        account = await current_organiser(conn)
    conn.scope["liveblog.reader"] = account
    return account


async def require_reader(conn: HTTPConnection) -> Account:
    account = await current_reader(conn)
    if account is None:
        raise Unauthorized("log in to comment", code="login_required")
    return account


async def path_invite(request: Request) -> Invite:
    """The active invite named by the path's {token}; Unauthorized if it is unknown or revoked."""
    invite = await services(request).accounts.invite_for_token(request.path_params["token"])
    if invite is None:
        raise Unauthorized(
            "This invite link is not valid: it may have been revoked. Ask the organiser for a new one."
        )
    return invite

"""The application factory: create_app(settings, services=None) -> a Starlette app.

The lifespan opens the services (database, then hub) and closes them in reverse; tests may pass
ready-made services in.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from liveblog.archive.chapters import clock
from liveblog.errors import LiveblogError
from liveblog.models import SEARCH_LANGUAGES
from liveblog.paths import resource_dir
from liveblog.services import Services
from liveblog.settings import Settings
from liveblog.text import plural
from liveblog.web import (
    answers,
    api,
    archive,
    audience,
    comments,
    federation,
    feeds,
    long_pages,
    memory,
    pages,
    programme,
    sockets,
)
from liveblog.web.archive import Cards, card_warmer
from liveblog.web.limits import BodyLimitMiddleware
from liveblog.web.outlets import fast_send
from liveblog.web.render import error_page
from liveblog.web.security import SecurityMiddleware, redact_invite_tokens_in_logs, trusted_origins
from liveblog.web.viewers import VIEWER_PATH, serve_viewer

log = logging.getLogger(__name__)


def make_templates(venue_timezone: str = "UTC") -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(resource_dir("templates")))  # autoescape on for .html
    templates.env.globals["search_languages"] = SEARCH_LANGUAGES  # the event form's language choice
    # Stored times are UTC; the programme is in the venue's wall-clock time (archive.timezone),
    # so the times items and comments were written are shown in that zone too.
    zone = ZoneInfo(venue_timezone)
    templates.env.globals["venue_timezone"] = venue_timezone
    templates.env.filters["plural"] = plural
    templates.env.globals["chapter_clock"] = clock
    templates.env.tests["fediverse_handle"] = federation.is_handle  # a reply's author: its avatar beside it
    templates.env.filters["venue_time"] = lambda iso: venue_clock(iso, zone, "%H:%M")
    templates.env.filters["venue_datetime"] = lambda iso: venue_clock(iso, zone, "%Y-%m-%d %H:%M")
    return templates


def compile_templates(env: Environment) -> None:
    """Compile every template now (Jinja compiles each on its first use, and keeps it)."""
    for name in env.list_templates():
        env.get_template(name)


def venue_clock(iso: str | None, zone: ZoneInfo, fmt: str) -> str:
    """A stored UTC time ('...Z') as wall-clock time in the venue's zone; anything else (no time,
    or not one) as it is."""
    if not isinstance(iso, str):  # a template may pass a missing time (None)
        return str(iso)
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime(fmt)


async def handle_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LiveblogError)
    if request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"error": exc.as_dict()}, status_code=exc.status)
    return error_page(request, exc.status, exc.message)


# Starlette's own refusals (no route, wrong method, a malformed form) in the documented codes.
HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


async def handle_http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "error")
    if request.url.path.startswith("/api/"):
        code = HTTP_ERROR_CODES.get(status, "bad_request" if 400 <= status < 500 else "internal")
        return JSONResponse({"error": {"code": code, "message": str(detail)}}, status_code=status)
    return error_page(request, status, str(detail))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": {"code": "internal", "message": "internal error"}}, status_code=500)
    return error_page(request, 500, "Something went wrong on our side.")


class LiveblogApp:
    """The ASGI entry point: viewer websockets go to their lean handler, the rest to Starlette.

    The fast delivery path is found through the scope's `liveblog.fast_send` extension
    (liveblog/web/wsproto.py), so middleware wrapping `send` does not turn it off. The first
    websocket served without it is logged: viewers then take the portable queue path.
    """

    def __init__(self, app: Starlette, services: Services) -> None:
        self.app = app
        self.services = services
        self.portable_logged = False

    def __getattr__(self, name: str) -> Any:  # state, router, ...: the Starlette app's
        return getattr(self.app, name)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            fast = fast_send(scope)
            if fast is None and not self.portable_logged:
                self.portable_logged = True
                log.warning(
                    "viewer websockets: PORTABLE queue path (this server offers no liveblog.fast_send; "
                    "`liveblog serve` runs the fast path)"
                )
            viewer = VIEWER_PATH.match(scope["path"])
            if viewer is not None:
                await serve_viewer(self.services, scope, receive, send, viewer.group(1), fast)
                return
        await self.app(scope, receive, send)


def create_app(
    settings: Settings,
    services: Services | None = None,
    *,
    open_services: bool | None = None,
    freeze_gc: bool = False,
    warm_templates: bool = False,
) -> LiveblogApp:
    """The ASGI app. Its lifespan opens the services' components in order and closes them in
    reverse: services it built itself always, services passed in only with open_services=True
    (tests that manage their own services pass them without). With freeze_gc (`liveblog serve`:
    one app per process), what start-up made is moved out of the cyclic GC's sight once the
    services are open (gc.freeze), and a full collection runs every minute (a supervised
    task, "gc.full_pass", every memory.FULL_PASS_SECONDS). With warm_templates (`liveblog
    serve` too), every template is compiled before the first request, not by it."""
    own_services = services is None if open_services is None else open_services
    svc = services or Services.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sockets.quiet_invalid_utf8_frames()  # after the server configured its loggers
        redact_invite_tokens_in_logs()
        if warm_templates:
            # A page's first view after a start compiled its templates: the knowledge page's
            # first load paid ~100-300 ms for them. Here, before the first request (and the
            # freeze), and before the services open: their tasks start work at once (a restarted
            # server's fediverse deliveries, whose receivers fetch our keys back while we are not
            # listening yet; test_federation_durability), so start-up must not pause after them.
            await asyncio.to_thread(compile_templates, app.state.templates.env)
        if own_services:
            await svc.open()
        if freeze_gc:
            # Modules, templates, settings, the services: live for the whole process, yet every
            # full collection walked them again, and a full collection comes each time the heap
            # grows by a quarter, as when thousands of viewers join or reconnect at once. Frozen,
            # those collections walk only what came after (docs/performance.md, issue 22).
            gc.collect()
            gc.freeze()
            # Once more, so that the collector counts what is left (nearly nothing), not all
            # that start-up made: its next full pass comes when objects made since then number a
            # quarter of what the last full pass left, and without this that was a quarter of
            # the ~100,000 frozen objects, so closed connections' garbage waited 25 minutes in
            # the soak (docs/performance.md, "Soak: full passes after the freeze").
            gc.collect()
            every = memory.FULL_PASS_SECONDS
            # From then on the collector's own full passes come too late to matter (25 minutes
            # into the soak): one a minute returns closed connections' garbage as it comes.
            svc.supervisor.spawn("gc.full_pass", lambda: memory.full_passes(every))
        try:
            yield
        finally:
            if own_services:
                await svc.close()

    app = Starlette(
        routes=[
            *pages.routes,
            *programme.routes,
            *archive.routes,
            *comments.routes,
            *answers.routes,
            *api.routes,
            *audience.routes,
            *feeds.routes,
            *long_pages.routes,
            *federation.routes,
            WebSocketRoute("/ws/v1/sessions/{session_id}/capture", sockets.capture_socket),
            Mount("/static", StaticFiles(directory=str(resource_dir("static"))), name="static"),
        ],
        middleware=[
            # The services' key: without LIVEBLOG_SECRET_KEY, the one kept in the data directory
            # (Services.build), so CSRF tokens survive a restart and match those the API answers.
            Middleware(
                SecurityMiddleware,
                allowed_origins=trusted_origins(settings),
                hsts_seconds=settings.server.hsts_seconds,
                secret_key=svc.settings.secret_key,
            ),
            # The largest body any route takes: a photo with its form wrapping, or a capture message.
            Middleware(
                BodyLimitMiddleware,
                limit=max(settings.limits.upload_bytes + 64 * 1024, settings.limits.frame_bytes),
            ),
        ],
        exception_handlers={
            LiveblogError: handle_error,
            HTTPException: handle_http_error,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.services = svc
    app.state.settings = settings
    app.state.templates = make_templates(settings.archive.timezone)
    # Pages link to their fediverse actors (rel="alternate", docs/federation.md).
    app.state.templates.env.globals["federated"] = svc.federation is not None
    app.state.templates.env.globals["public_url"] = settings.server.public_url
    app.state.cards = Cards(app.state.templates.env)
    svc.archive.warm_cards_with(card_warmer(svc, app.state.cards))
    return LiveblogApp(app, svc)

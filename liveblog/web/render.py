"""What every page module renders with: `render` (a template, with the visitor's CSRF token and
the organiser already known to the request), the one render thread for big pages (`off_loop`),
error pages, the site's public base URL and inline QR codes. Page modules import these from here,
never from each other, so no page module needs another to render."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from html import escape
from typing import Any, TypeVar

import segno
from starlette.requests import Request
from starlette.responses import Response

from liveblog.web.auth import services
from liveblog.web.security import csrf_token

T = TypeVar("T")


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """The template `name` with `context`. The header's organiser is the context's "organiser"
    if given, else the one this request already looked up (auth.current_organiser's cached
    answer): render never looks anyone up, so a page that shows who is logged in passes it."""
    templates = request.app.state.templates
    context.setdefault("organiser", request.scope.get("liveblog.organiser"))
    context.setdefault("csrf_token", csrf_token(request.scope))
    return templates.TemplateResponse(request, name, context, status_code=status)


# Pages with more items than this are rendered in a worker thread: a 2,000-note session page
# takes tens of ms of Jinja, which would hold every live viewer's delivery for that long.
THREAD_RENDER_ITEMS = 100


# Big pages render in ONE worker thread, not the default pool: rendering is pure Python, so each
# extra rendering thread is one more contender for the GIL with the event loop. With one, the loop
# gets at least every other switch interval, whatever the number of page loads.
_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liveblog-render")


async def render_off_loop(request: Request, name: str, context: dict[str, Any], items: int) -> Response:
    """render(), in the render thread when the page has more than THREAD_RENDER_ITEMS items."""
    return await off_loop(lambda: render(request, name, context), items)


async def off_loop(work: Callable[[], T], items: int) -> T:
    """work() (rendering), in the render thread when it covers more than THREAD_RENDER_ITEMS items."""
    if items <= THREAD_RENDER_ITEMS:
        return work()
    return await asyncio.get_running_loop().run_in_executor(_RENDERER, work)


def error_page(request: Request, status: int, message: str) -> Response:
    titles = {
        400: "That did not work",
        401: "Please log in",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Too large",
        429: "Slow down",
    }
    return render(
        request,
        "error.html",
        {"status": status, "title": titles.get(status, "Error"), "message": message},
        status,
    )


def base_url(request: Request) -> str:
    configured = services(request).settings.server.public_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def qr_svg(text: str, *, label: str = "QR code of the invite link") -> str:
    """An inline SVG QR code, made on the server: no script, no third-party request."""
    qr = segno.make(text, error="m")
    svg = qr.svg_inline(scale=4, border=2, dark="#111827", light="#ffffff", title=label)
    return str(svg).replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)

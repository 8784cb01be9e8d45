"""Reader accounts and comment threads over HTTP: register, log in and out, change a password,
use a reset link; post, reply, edit and delete comments; organiser moderation. Every form is a
same-origin POST (the security middleware refuses cross-site ones) and answers with a redirect
back to the page, or JSON when asked for it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from liveblog.archive.ledger import read_ledger
from liveblog.capture.validate import moderation_reason
from liveblog.errors import BadRequest, LiveblogError, NotFound, Unauthorized
from liveblog.web.auth import READER_COOKIE, current_reader, require_organiser, require_reader, services
from liveblog.web.pages import session_page
from liveblog.web.render import base_url, render
from liveblog.web.threads import RefusedComment


def _next(request: Request, default: str = "/") -> str:
    target = request.query_params.get("next", default)
    return target if target.startswith("/") and not target.startswith("//") else default


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _login_response(request: Request, token: str, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        READER_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=30 * 24 * 3600,
    )
    return response


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


# -- accounts ----------------------------------------------------------------------------------


async def register(request: Request) -> Response:
    target = _next(request)
    if request.method == "POST":
        form = await request.form()
        username = str(form.get("username", ""))
        try:
            _, token = await services(request).readers.register(
                username, str(form.get("password", "")), _address(request)
            )
        except LiveblogError as exc:
            return render(
                request,
                "account/register.html",
                {"error": exc.message, "username": username, "next": target},
                exc.status,
            )
        return _login_response(request, token, target)
    return render(request, "account/register.html", {"next": target})


async def reader_login(request: Request) -> Response:
    target = _next(request)
    if request.method == "POST":
        form = await request.form()
        username = str(form.get("username", ""))
        try:
            _, token = await services(request).readers.login(
                username, str(form.get("password", "")), _address(request)
            )
        except LiveblogError as exc:
            return render(
                request,
                "account/login.html",
                {"error": exc.message, "username": username, "next": target},
                exc.status,
            )
        return _login_response(request, token, target)
    return render(request, "account/login.html", {"next": target})


async def reader_logout(request: Request) -> Response:
    token = request.cookies.get(READER_COOKIE)
    if token:
        await services(request).readers.logout(token)
    response = RedirectResponse(_next(request), status_code=303)
    response.delete_cookie(READER_COOKIE)
    return response


async def account_page(request: Request) -> Response:
    account = await current_reader(request)
    if account is None:
        return RedirectResponse("/account/login?next=/account", status_code=303)
    error = None
    done = False
    answers = await services(request).answers.for_asker(account.id)
    if request.method == "POST":
        form = await request.form()
        try:
            token = await services(request).readers.change_password(
                account, str(form.get("current", "")), str(form.get("password", ""))
            )
        except LiveblogError as exc:
            error = exc
        else:
            response = render(
                request, "account/account.html", {"account": account, "done": True, "answers": answers}
            )
            if request.cookies.get(READER_COOKIE):
                response.set_cookie(
                    READER_COOKIE,
                    token,
                    httponly=True,
                    samesite="lax",
                    secure=request.url.scheme == "https",
                    max_age=30 * 24 * 3600,
                )
            return response
    return render(
        request,
        "account/account.html",
        {"account": account, "error": error, "done": done, "answers": answers},
        error.status if error else 200,
    )


async def reset_page(request: Request) -> Response:
    readers = services(request).readers
    token = request.path_params["token"]
    if request.method == "POST":
        form = await request.form()
        try:
            account = await readers.reset_password(token, str(form.get("password", "")))
        except LiveblogError as exc:
            target = await readers.reset_target(token)
            return render(
                request,
                "account/reset.html",
                {"error": exc.message, "target": target, "token": token},
                exc.status,
            )
        return render(request, "account/reset.html", {"done": True, "target": account, "token": token})
    target = await readers.reset_target(token)
    if target is None:
        return render(
            request,
            "account/reset.html",
            {"error": "This reset link is not valid: it was used already or has expired.", "token": token},
            401,
        )
    return render(request, "account/reset.html", {"target": target, "token": token})


async def organise_readers(request: Request) -> Response:
    await require_organiser(request)
    link = None
    error = None
    if request.method == "POST":
        form = await request.form()
        try:
            account, token = await services(request).readers.reset_link(str(form.get("username", "")))
        except LiveblogError as exc:
            error = exc
        else:
            link = {"account": account, "url": f"{base_url(request)}/account/reset/{quote(token)}"}
    return render(
        request, "account/organise.html", {"link": link, "error": error}, error.status if error else 200
    )


async def ban_account(request: Request) -> Response:
    organiser = await require_organiser(request)
    account_id = request.path_params["account_id"]
    form = await request.form()
    await services(request).readers.ban(account_id, organiser.username, moderation_reason(form.get("reason")))
    return RedirectResponse(_next(request), status_code=303)


# -- comments ----------------------------------------------------------------------------------


def _comment_url(session_id: str, comment_id: int | None = None) -> str:
    return f"/sessions/{session_id}" + (f"#comment-{comment_id}" if comment_id else "#comments")


async def post_comment(request: Request) -> Response:
    account = await require_reader(request)
    session_id = request.path_params["session_id"]
    form = await request.form()
    parent = str(form.get("parent_id", "") or "")
    if parent and not parent.isdigit():
        raise BadRequest("parent_id must be a comment id", code="invalid_field", field="parent_id")
    body = str(form.get("body", ""))
    try:
        comment = await services(request).comments.post(
            session_id,
            account,
            body,
            parent_id=int(parent) if parent else None,
            address=_address(request),
            honeypot=str(form.get("website", "")),
        )
    except LiveblogError as exc:
        if _wants_json(request) or isinstance(exc, (NotFound, Unauthorized)):
            raise
        # Refused (the spam guard, a locked thread, too long, too fast): the reader gets the page
        # back with their text in the form and the reason beside it, never a bare error page.
        refused = RefusedComment(body, exc.message, int(parent) if parent else None)
        response = await session_page(request, refused)
        response.status_code = exc.status
        return response
    if _wants_json(request):
        return JSONResponse({"comment": comment.to_wire()}, status_code=201)
    return RedirectResponse(_comment_url(session_id, comment.id), status_code=303)


async def edit_comment(request: Request) -> Response:
    account = await require_reader(request)
    form = await request.form()
    comment = await services(request).comments.edit(
        request.path_params["comment_id"], account, str(form.get("body", ""))
    )
    return RedirectResponse(_comment_url(comment.session_id, comment.id), status_code=303)


async def delete_comment(request: Request) -> Response:
    account = await require_reader(request)
    comment = await services(request).comments.delete(request.path_params["comment_id"], account)
    return RedirectResponse(_comment_url(comment.session_id), status_code=303)


async def moderate_comment(request: Request) -> Response:
    organiser = await require_organiser(request)
    form = await request.form()
    comment = await services(request).comments.moderate(
        request.path_params["comment_id"],
        str(form.get("action", "")),
        organiser.username,
        moderation_reason(form.get("reason")),
    )
    return RedirectResponse(_next(request, _comment_url(comment.session_id, comment.id)), status_code=303)


async def organise_comments(request: Request) -> Response:
    """The organisers' moderation queue: comments awaiting approval and hidden ones, of every
    event, newest first, each with its session and the same actions as on the thread."""
    await require_organiser(request)
    queue = await services(request).comments.moderation_queue()
    return render(request, "organise/comments.html", {"queue": queue})


async def moderation_log(request: Request) -> Response:
    """An event's moderation ledger (docs/archive.md), or one session's (?session=)."""
    await require_organiser(request)
    session_id = request.query_params.get("session") or None
    ledger = await read_ledger(services(request).db, request.path_params["event_id"], session_id)
    return render(request, "organise/ledger.html", {"ledger": ledger})


async def lock_thread(request: Request) -> Response:
    await require_organiser(request)
    form = await request.form()
    session_id = request.path_params["session_id"]
    await services(request).comments.lock(session_id, form.get("locked") == "1")
    return RedirectResponse(_comment_url(session_id), status_code=303)


async def premoderation(request: Request) -> Response:
    await require_organiser(request)
    form = await request.form()
    event_id = request.path_params["event_id"]
    await services(request).comments.set_premoderation(event_id, form.get("on") == "1")
    return RedirectResponse(_next(request, f"/events/{event_id}/archive"), status_code=303)


async def comments_json(request: Request) -> Response:
    """The public thread as JSON (what a page shows to someone logged out)."""
    session_id = request.path_params["session_id"]
    thread = await services(request).comments.thread(session_id)

    def node(n: Any) -> dict[str, Any]:
        return {**n.comment.to_wire(), "replies": [node(r) for r in n.replies]}

    return JSONResponse(
        {
            "session_id": session_id,
            "locked": thread.locked,
            "count": thread.count,
            "comments": [node(n) for n in thread.roots],
        }
    )


routes = [
    Route("/account/register", register, methods=["GET", "POST"]),
    Route("/account/login", reader_login, methods=["GET", "POST"]),
    Route("/account/logout", reader_logout, methods=["POST"]),
    Route("/account", account_page, methods=["GET", "POST"]),
    Route("/account/reset/{token}", reset_page, methods=["GET", "POST"]),
    Route("/organise/readers", organise_readers, methods=["GET", "POST"]),
    Route("/organise/readers/{account_id:id}/ban", ban_account, methods=["POST"]),
    Route("/organise/comments", organise_comments),
    Route("/organise/events/{event_id}/moderation", moderation_log),
    Route("/sessions/{session_id}/comments", post_comment, methods=["POST"]),
    Route("/api/v1/sessions/{session_id}/comments", comments_json),
    Route("/comments/{comment_id:id}/edit", edit_comment, methods=["POST"]),
    Route("/comments/{comment_id:id}/delete", delete_comment, methods=["POST"]),
    Route("/comments/{comment_id:id}/moderate", moderate_comment, methods=["POST"]),
    Route("/sessions/{session_id}/comments/lock", lock_thread, methods=["POST"]),
    Route("/events/{event_id}/comments/premoderation", premoderation, methods=["POST"]),
]

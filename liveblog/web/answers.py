"""Pages for questions answered after the talk (archive/answers.py): the speaker's page behind
a speaker link, where each unanswered question gets a written answer, and the organisers' hide
and show of an answer (a form post, like a comment's)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from liveblog.capture.validate import moderation_reason
from liveblog.errors import BadRequest, LiveblogError
from liveblog.web.auth import require_organiser, services
from liveblog.web.render import render


async def speaker_page(request: Request) -> Response:
    """GET: the session's unanswered questions, most voted first, each with a form for its
    answer. POST: write one (question_id, body); the page again, at that question."""
    svc = services(request)
    token = request.path_params["token"]
    link = await svc.answers.link_for_token(token)
    error: LiveblogError | None = None
    failed: dict[str, str] = {}
    if request.method == "POST":
        form = await request.form()
        raw_id = str(form.get("question_id", ""))
        body = str(form.get("body", ""))
        try:
            if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 18):
                raise BadRequest("no question chosen", code="missing_field", field="question_id")
            await svc.answers.answer(link, int(raw_id), body)
        except LiveblogError as exc:
            error = exc
            failed = {"question_id": raw_id, "body": body}
        else:
            return RedirectResponse(f"/a/{quote(token)}?saved={raw_id}#q-{raw_id}", status_code=303)
    page = await svc.answers.page(link)
    saved = request.query_params.get("saved", "")
    return render(
        request,
        "speaker.html",
        {"page": page, "token": token, "error": error, "failed": failed, "saved": saved},
        error.status if error else 200,
    )


async def moderate_answer(request: Request) -> Response:
    organiser = await require_organiser(request)
    question_id = request.path_params["question_id"]
    form = await request.form()
    answer = await services(request).answers.moderate(
        question_id,
        str(form.get("action", "")),
        organiser.username,
        moderation_reason(form.get("reason")),
    )
    return RedirectResponse(f"/organise/sessions/{answer.session_id}#answers", status_code=303)


routes = [
    Route("/a/{token}", speaker_page, methods=["GET", "POST"]),
    Route("/answers/{question_id:id}/moderate", moderate_answer, methods=["POST"]),
]

"""Audience routes: polls, votes, questions and upvotes (JSON API under /api/v1), moderation, and
the big-screen page for the room's projector. docs/protocol-votes.md documents the API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from liveblog.access.participants import FRESH_SECONDS, Participants
from liveblog.capture.votes import Audience, Moderator, Voter
from liveblog.errors import NotFound, Unauthorized
from liveblog.models import Item, Session
from liveblog.web.api import json_object, ok
from liveblog.web.auth import bearer, current_organiser, current_reader, require_organiser, services
from liveblog.web.render import qr_svg, render
from liveblog.web.security import csrf_token, csrf_token_for_cookies, session_ids

PARTICIPANT_COOKIE = "lb_participant"
# For scripts and bots, which keep no cookies: the same signed token in a header.
PARTICIPANT_HEADER = "liveblog-participant"
COOKIE_MAX_AGE = 365 * 24 * 3600
# The room code (docs/protocol-votes.md) for polls and Q&A open to "people in the room".
ROOM_CODE_HEADER = "liveblog-room-code"
# Votes and questions are small; a large body is a mistake or an attack.
MAX_BODY = 16 * 1024
# The fields each write takes (docs/protocol-votes.md); any other is refused by name.
VOTE_FIELDS = ("choice",)
QUESTION_FIELDS = ("body", "name", "client_id")
POLL_FIELDS = ("question", "kind", "options", "audience", "open", "duration_seconds", "client_id")
POLL_STATE_FIELDS = ("state", "duration_seconds")
POLL_DISCOUNT_FIELDS = ("discount", "reason")
QUESTION_ACTION_FIELDS = ("action", "answer_item_id", "into", "reason")


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def _voter(request: Request, *, issue: bool = True) -> tuple[Voter | None, str | None]:
    """Who is voting, and a new signed token to set as a cookie when they had none.

    A logged-in account (a reader or an organiser) votes as itself, once per account; anyone
    else as their signed participant id. A token that is present but not signed by us is refused
    (403 bad_participant), never replaced.
    """
    audience = services(request).audience
    room_code = request.headers.get(ROOM_CODE_HEADER, "")[:32]
    account = await current_reader(request)
    if account is not None:
        return Voter(Participants.for_account(account.id), _ip(request), room_code), None
    token = request.headers.get(PARTICIPANT_HEADER) or request.cookies.get(PARTICIPANT_COOKIE)
    if token is not None:
        participant, age = audience.participants.verify_with_age(token)
        fresh = age is not None and age < FRESH_SECONDS
        return Voter(participant, _ip(request), room_code, fresh), None
    if not issue:
        return None, None
    participant, token = audience.participants.issue()
    return Voter(participant, _ip(request), room_code, fresh=True), token


def _participant_csrf(request: Request, token: str) -> str:
    """The CSRF token of a request that carries only this new participant cookie."""
    return csrf_token_for_cookies(services(request).settings.secret_key, {PARTICIPANT_COOKIE: token})


def _respond(request: Request, data: Any, status: int, new_token: str | None) -> Response:
    if new_token is not None and isinstance(data, dict) and not session_ids(request.cookies):
        # A script that keeps the new cookie (and loads no page) signs its later requests with this.
        data = {**data, "csrf_token": _participant_csrf(request, new_token)}
    response = JSONResponse(data, status_code=status)
    if new_token is not None:
        response.set_cookie(
            PARTICIPANT_COOKIE,
            new_token,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


async def _moderator(request: Request, session: Session) -> Moderator:
    """An organiser (login cookie or bearer), or a note-taker whose invite covers the session."""
    account = await current_organiser(request)
    if account is not None:
        return Moderator(account.username, f"account:{account.id}")
    token = bearer(request)
    if token is None:
        raise Unauthorized(
            "moderating needs an organiser login or a note-taker invite token (Authorization: Bearer ...)"
        )
    invite = await services(request).accounts.authorize_capture(token, session)
    return Moderator(invite.name, invite.id)


async def _item_moderator(request: Request, item_id: int, kind: str) -> Moderator:
    svc = services(request)
    session_id = await svc.audience.item_session(item_id, kind)
    return await _moderator(request, await svc.programme.session(session_id))


# -- audience ----------------------------------------------------------------------------------


async def participant(request: Request) -> Response:
    """Issue (or confirm) a participant id. Browsers get a cookie; scripts use the token."""
    voter, token = await _voter(request)
    assert voter is not None
    data: dict[str, Any] = {"participant": voter.participant}
    if token is not None:
        data["token"] = token
    return _respond(request, data, 201 if token else 200, token)


async def audience_state(request: Request) -> Response:
    svc = services(request)
    voter, token = await _voter(request)
    assert voter is not None
    data = await svc.audience.snapshot(request.path_params["session_id"], voter.participant)
    # This browser's CSRF token for its votes and questions: the page it came from may be an
    # copy cached for many visitors (the archive's public knowledge pages), which carries nobody's token.
    data["csrf_token"] = csrf_token(request.scope) or (_participant_csrf(request, token) if token else "")
    response = _respond(request, data, 200, token)
    response.headers["cache-control"] = "no-store"
    return response


async def vote(request: Request) -> Response:
    svc = services(request)
    voter, token = await _voter(request)
    assert voter is not None
    result = await svc.audience.vote(
        request.path_params["poll_id"], voter, await json_object(request, VOTE_FIELDS, "a vote", MAX_BODY)
    )
    return _respond(request, result, 201 if result["status"] == "created" else 200, token)


async def ask(request: Request) -> Response:
    svc = services(request)
    voter, token = await _voter(request)
    assert voter is not None
    item, duplicate = await svc.audience.ask(
        request.path_params["session_id"],
        voter,
        await json_object(request, QUESTION_FIELDS, "a question", MAX_BODY),
    )
    data = {"question": item.to_wire(), "state": item.data["state"], "duplicate": duplicate}
    return _respond(request, data, 200 if duplicate else 201, token)


async def upvote(request: Request) -> Response:
    svc = services(request)
    voter, token = await _voter(request)
    assert voter is not None
    result = await svc.audience.upvote(request.path_params["question_id"], voter)
    return _respond(request, result, 201 if result["status"] == "created" else 200, token)


# -- moderation --------------------------------------------------------------------------------


async def create_poll(request: Request) -> Response:
    svc = services(request)
    session = await svc.programme.session(request.path_params["session_id"])
    moderator = await _moderator(request, session)
    item = await svc.audience.create_poll(
        session.id, moderator, await json_object(request, POLL_FIELDS, "a poll", MAX_BODY)
    )
    return ok(item.to_wire(), 201)


async def _item_action(
    request: Request,
    param: str,
    kind: str,
    act: Callable[[Audience, int, Moderator, Any], Awaitable[Item]],
    fields: tuple[str, ...],
    what: str,
) -> Response:
    """A moderator's action on one poll or question (the path's `param`): the moderator is checked
    against the item's session before the body (which may name only `fields`) is read."""
    item_id = request.path_params[param]
    moderator = await _item_moderator(request, item_id, kind)
    body = await json_object(request, fields, what, MAX_BODY)
    item = await act(services(request).audience, item_id, moderator, body)
    return ok(item.to_wire())


async def poll_state(request: Request) -> Response:
    return await _item_action(
        request, "poll_id", "poll", Audience.set_poll_state, POLL_STATE_FIELDS, "a poll's state"
    )


async def poll_discount(request: Request) -> Response:
    return await _item_action(
        request, "poll_id", "poll", Audience.discount_flagged, POLL_DISCOUNT_FIELDS, "a poll's discount"
    )


async def moderate_question(request: Request) -> Response:
    return await _item_action(
        request,
        "question_id",
        "question",
        Audience.moderate_question,
        QUESTION_ACTION_FIELDS,
        "a question's moderation",
    )


async def moderation_state(request: Request) -> Response:
    svc = services(request)
    session = await svc.programme.session(request.path_params["session_id"])
    await _moderator(request, session)
    response = ok(await svc.audience.moderation(session.id))
    response.headers["cache-control"] = "no-store"
    return response


# -- pages -------------------------------------------------------------------------------------


async def big_screen(request: Request) -> Response:
    svc = services(request)
    session = await svc.programme.session(request.path_params["session_id"])
    event = await svc.programme.event(session.event_id)
    room_code = svc.audience.rooms.code_for(session.id)
    # The way in for the room: a short address that carries the code, and its QR code.
    join_url = f"{str(request.base_url).rstrip('/')}/j/{room_code}"
    return render(
        request,
        "bigscreen.html",
        {
            "session": session,
            "event": event,
            "room_code": room_code,
            "join_url": join_url,
            "join_short": join_url.split("://", 1)[-1],
            "join_qr": qr_svg(join_url, label=f"QR code to join {session.title}"),
        },
    )


async def join_by_room_code(request: Request) -> Response:
    """/j/CODE, the big screen's short address: the session whose room code this is, with the code
    filled in (?code=, which the audience panel keeps). Live sessions are looked at first."""
    svc = services(request)
    rooms = svc.audience.rooms
    typed = "".join(request.path_params["code"].split()).upper()
    # Only events on today (a day either side, for time zones) have their sessions read: a public
    # address must not cost a read of every event's programme.
    today = datetime.now(ZoneInfo(svc.settings.archive.timezone)).date()
    near = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()

    async def candidates() -> AsyncIterator[Session]:
        for session in await svc.programme.live_sessions():
            yield session
        for event in await svc.programme.events():
            if event.starts_on > near[1] or event.ends_on < near[0]:
                continue
            for session in await svc.programme.sessions(event.id):
                if session.state != "ended":
                    yield session

    async for session in candidates():
        if rooms.valid(session.id, typed):
            return RedirectResponse(
                f"/sessions/{session.id}?code={rooms.code_for(session.id)}", status_code=303
            )
    raise NotFound("No session in progress has that room code: check the code on the screen in the room.")


async def organiser_moderation_page(request: Request) -> Response:
    await require_organiser(request)
    svc = services(request)
    session = await svc.programme.session(request.path_params["session_id"])
    event = await svc.programme.event(session.event_id)
    room_code = svc.audience.rooms.code_for(session.id)
    return render(
        request,
        "organise/moderation.html",
        {"session": session, "event": event, "token": "", "room_code": room_code},
    )


async def notetaker_moderation_page(request: Request) -> Response:
    svc = services(request)
    token = request.path_params["token"]
    session = await svc.programme.session(request.path_params["session_id"])
    await svc.accounts.authorize_capture(token, session)
    event = await svc.programme.event(session.event_id)
    room_code = svc.audience.rooms.code_for(session.id)
    return render(
        request,
        "organise/moderation.html",
        {"session": session, "event": event, "token": token, "room_code": room_code},
    )


routes = [
    Route("/api/v1/participants", participant, methods=["POST"]),
    Route("/api/v1/sessions/{session_id}/audience", audience_state, methods=["GET"]),
    Route("/api/v1/sessions/{session_id}/polls", create_poll, methods=["POST"]),
    Route("/api/v1/sessions/{session_id}/questions", ask, methods=["POST"]),
    Route("/api/v1/sessions/{session_id}/moderation", moderation_state, methods=["GET"]),
    Route("/api/v1/polls/{poll_id:id}/votes", vote, methods=["POST"]),
    Route("/api/v1/polls/{poll_id:id}/state", poll_state, methods=["POST"]),
    Route("/api/v1/polls/{poll_id:id}/discount", poll_discount, methods=["POST"]),
    Route("/api/v1/questions/{question_id:id}/upvotes", upvote, methods=["POST"]),
    Route("/api/v1/questions/{question_id:id}/moderation", moderate_question, methods=["POST"]),
    Route("/sessions/{session_id}/screen", big_screen),
    Route("/j/{code}", join_by_room_code),
    Route("/organise/sessions/{session_id}/moderate", organiser_moderation_page),
    Route("/n/{token}/sessions/{session_id}/moderate", notetaker_moderation_page),
]

"""Social feed routes: the moderation queue (organisers and note-takers), event rules, the
organiser's feed status panel (JSON, and a live Server-Sent Events feed of it), and their pages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from liveblog.capture import validate
from liveblog.capture.feeds.render import quote_markdown
from liveblog.capture.feeds.routing import route_session
from liveblog.errors import BadRequest, Forbidden, NotFound, Unauthorized
from liveblog.models import Session
from liveblog.web.api import json_object, ok
from liveblog.web.auth import bearer, current_organiser, path_invite, require_organiser, services
from liveblog.web.render import render

MAX_BODY = 4096
STATUS_HEARTBEAT = 15.0  # seconds between status frames when nothing changes (keeps proxies open)


async def _moderator(request: Request, session: Session) -> str:
    """Who moderates: an organiser (login or bearer) or a note-taker whose invite covers the session.
    The event's own feed belongs to no session: its moderators are organisers and note-takers
    invited to the whole event."""
    if session.is_event_feed:
        return await _event_moderator(request, session.event_id, whole_event=True)
    account = await current_organiser(request)
    if account is not None:
        return f"account:{account.id}"
    invite = await services(request).accounts.invite_for_token(bearer(request))
    if invite is None:
        raise Unauthorized(
            "moderating needs an organiser login or a note-taker invite token (Authorization: Bearer ...)"
        )
    if not invite.allows(session):
        raise Forbidden("your invite does not cover this session")
    return invite.id


async def _event_moderator(
    request: Request, event_id: str, *, whole_event: bool = False, token: str | None = None
) -> str:
    account = await current_organiser(request)
    if account is not None:
        return f"account:{account.id}"
    invite = await services(request).accounts.invite_for_token(
        token if token is not None else bearer(request)
    )
    if invite is None:
        raise Unauthorized(
            "moderating needs an organiser login or a note-taker invite token (Authorization: Bearer ...)"
        )
    if not invite.active or invite.event_id != event_id or (whole_event and invite.session_id is not None):
        raise Forbidden("your invite does not cover this event" + (" as a whole" if whole_event else ""))
    return invite.id


async def queue(request: Request) -> Response:
    svc = services(request)
    session = await svc.programme.stream_session(request.path_params["session_id"])
    await _moderator(request, session)
    pending = await svc.feeds.moderation.queue(session)
    recent = await svc.feeds.moderation.recent(session, limit=50)
    response = ok(
        {
            "session_id": session.id,
            "event_id": session.event_id,
            "event_feed": session.is_event_feed,
            "moderate": await svc.feeds.moderation.moderates(session.event_id, route_session(session)),
            "pending": [r.to_wire() for r in pending],
            "recent": [r.to_wire() for r in reversed(recent)],
        }
    )
    response.headers["cache-control"] = "no-store"
    return response


async def moderate_post(request: Request) -> Response:
    svc = services(request)
    session = await svc.programme.stream_session(request.path_params["session_id"])
    by = await _moderator(request, session)
    body = await json_object(request, ("action", "reason"), "a post's moderation", MAX_BODY)
    action = body.get("action")
    if not isinstance(action, str):
        raise BadRequest("field 'action' is required", code="missing_field", field="action")
    route = await svc.feeds.moderation.moderate(
        session.id,
        request.path_params["post_row"],
        action,
        by,
        validate.moderation_reason(body.get("reason")),
    )
    return ok(route.to_wire())


async def quote(request: Request) -> Response:
    svc = services(request)
    session = await svc.programme.stream_session(request.path_params["session_id"])
    await _moderator(request, session)
    row = request.path_params["post_row"]
    route = await svc.feeds.moderation.routed_post(row, session.event_id, route_session(session))
    if route is None:
        raise NotFound("no such post in this session", code="unknown_post")
    return ok({"markdown": quote_markdown(route.post)})


async def policy(request: Request) -> Response:
    """A session's policy; for the event's own feed, the event's default (which it follows)."""
    await require_organiser(request)
    svc = services(request)
    session = await svc.programme.stream_session(request.path_params["session_id"])
    body = await json_object(request, ("moderate",), "a feed policy", MAX_BODY)
    if not isinstance(body.get("moderate"), bool):
        raise BadRequest('send {"moderate": true|false}', code="invalid_field", field="moderate")
    await svc.feeds.moderation.set_policy(session.event_id, route_session(session), body["moderate"])
    return ok({"moderate": body["moderate"]})


async def event_policy(request: Request) -> Response:
    await require_organiser(request)
    svc = services(request)
    event = await svc.programme.event(request.path_params["event_id"])
    body = await json_object(request, ("moderate",), "a feed policy", MAX_BODY)
    if not isinstance(body.get("moderate"), bool):
        raise BadRequest('send {"moderate": true|false}', code="invalid_field", field="moderate")
    await svc.feeds.moderation.set_policy(event.id, "", body["moderate"])
    return ok({"moderate": body["moderate"]})


async def rules(request: Request) -> Response:
    svc = services(request)
    event_id = request.path_params["event_id"]
    if request.method == "GET":
        await _event_moderator(request, event_id)
        return ok({"rules": [{"kind": k, "value": v} for k, v in await svc.feeds.moderation.rules(event_id)]})
    by = await _event_moderator(request, event_id)
    body = await json_object(request, ("kind", "value"), "a feed rule", MAX_BODY)
    if not isinstance(body.get("kind"), str) or not isinstance(body.get("value"), str):
        raise BadRequest('send {"kind": ..., "value": ...}', code="invalid_field", field="kind")
    if request.method == "DELETE":
        await require_organiser(request)
        await svc.feeds.moderation.remove_rule(event_id, body["kind"], body["value"])
        return ok({"removed": True})
    decided = await svc.feeds.moderation.add_rule(event_id, body["kind"], body["value"], by)
    return ok({"kind": body["kind"], "value": body["value"].strip().lower(), "decided": decided}, 201)


async def poll(request: Request) -> Response:
    """Poll now: every source of every process that runs them (with Redis, the lease holder)."""
    await require_organiser(request)
    svc = services(request)
    await svc.programme.event(request.path_params["event_id"])
    svc.feeds.request_poll()
    return ok({"asked": True}, 202)


async def status(request: Request) -> Response:
    await require_organiser(request)
    svc = services(request)
    event = await svc.programme.event(request.path_params["event_id"])
    response = ok(await svc.feeds.panel.status(event.id))
    response.headers["cache-control"] = "no-store"
    return response


async def status_stream(request: Request) -> Response:
    """The panel's live feed: one `status` event now and at each change (at most ~4 a second)."""
    await require_organiser(request)
    svc = services(request)
    event = await svc.programme.event(request.path_params["event_id"])

    async def frames() -> AsyncIterator[str]:
        version = -1
        while True:
            version = await svc.feeds.wait_for_status(version, STATUS_HEARTBEAT)
            data = await svc.feeds.panel.status(event.id)
            yield f"event: status\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
            await asyncio.sleep(0.25)  # coalesce bursts: a poll of many pages is one update

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


# -- pages ---------------------------------------------------------------------------------------


async def _page_context(request: Request, session_id: str, token: str) -> dict[str, Any]:
    svc = services(request)
    session = await svc.programme.stream_session(session_id)
    event = await svc.programme.event(session.event_id)
    if session.is_event_feed:
        return {
            "session": session,
            "event": event,
            "token": token,
            "title": "Around the event",
            "stream_url": f"/events/{event.id}/around",
        }
    return {
        "session": session,
        "event": event,
        "token": token,
        "title": session.title,
        "stream_url": f"/sessions/{session.id}",
    }


async def organiser_social_page(request: Request) -> Response:
    await require_organiser(request)
    return render(
        request, "organise/social.html", await _page_context(request, request.path_params["session_id"], "")
    )


async def notetaker_social_page(request: Request) -> Response:
    token = request.path_params["token"]
    invite = await path_invite(request)
    context = await _page_context(request, request.path_params["session_id"], token)
    session = context["session"]
    if session.is_event_feed:
        await _event_moderator(request, session.event_id, whole_event=True, token=token)
    elif not invite.allows(session):
        raise NotFound("Your invite does not cover this session.")
    return render(request, "organise/social.html", context)


async def organiser_event_social_page(request: Request) -> Response:
    """The moderation queue of the event's own feed ("Around the event")."""
    await require_organiser(request)
    svc = services(request)
    event = await svc.programme.event(request.path_params["event_id"])
    feed = await svc.feeds.moderation.event_feed(event.id)
    return render(request, "organise/social.html", await _page_context(request, feed.id, ""))


async def notetaker_event_social_page(request: Request) -> Response:
    svc = services(request)
    token = request.path_params["token"]
    invite = await path_invite(request)
    event = await svc.programme.event(request.path_params["event_id"])
    if invite.event_id != event.id or invite.session_id is not None:
        raise NotFound("Your invite does not cover this event as a whole.")
    feed = await svc.feeds.moderation.event_feed(event.id)
    return render(request, "organise/social.html", await _page_context(request, feed.id, token))


async def feeds_panel_page(request: Request) -> Response:
    await require_organiser(request)
    svc = services(request)
    event = await svc.programme.event(request.path_params["event_id"])
    sessions = await svc.programme.sessions(event.id)
    return render(
        request,
        "organise/feeds.html",
        {
            "event": event,
            "sessions": sessions,
            "moderate": await svc.feeds.moderation.moderates(event.id, ""),
            "rules": await svc.feeds.moderation.rules(event.id),
        },
    )


routes = [
    Route("/api/v1/sessions/{session_id}/feeds/queue", queue, methods=["GET"]),
    Route("/api/v1/sessions/{session_id}/feeds/posts/{post_row:int}", moderate_post, methods=["POST"]),
    Route("/api/v1/sessions/{session_id}/feeds/posts/{post_row:int}/quote", quote, methods=["GET"]),
    Route("/api/v1/sessions/{session_id}/feeds/policy", policy, methods=["POST"]),
    Route("/api/v1/events/{event_id}/feeds/policy", event_policy, methods=["POST"]),
    Route("/api/v1/events/{event_id}/feeds/rules", rules, methods=["GET", "POST", "DELETE"]),
    Route("/api/v1/events/{event_id}/feeds/status", status, methods=["GET"]),
    Route("/api/v1/events/{event_id}/feeds/poll", poll, methods=["POST"]),
    Route("/api/v1/events/{event_id}/feeds/status/stream", status_stream, methods=["GET"]),
    Route("/organise/sessions/{session_id}/social", organiser_social_page),
    Route("/n/{token}/sessions/{session_id}/social", notetaker_social_page),
    Route("/organise/events/{event_id}/feeds", feeds_panel_page),
    Route("/organise/events/{event_id}/social", organiser_event_social_page),
    Route("/n/{token}/events/{event_id}/social", notetaker_event_social_page),
]

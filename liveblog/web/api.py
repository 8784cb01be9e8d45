"""The JSON API, version 1: events, sessions, snapshots, capture over HTTP, invites, media, SSE."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Collection
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liveblog.capture.media import store_upload
from liveblog.capture.notes import Author
from liveblog.capture.validate import known_fields
from liveblog.errors import BadRequest, TooLarge
from liveblog.metrics import COUNTERS, HISTOGRAMS, sample
from liveblog.streams.protocol import REJECTED, decode_json
from liveblog.web.archive import not_modified
from liveblog.web.auth import (
    current_organiser,
    log_in,
    require_invite,
    require_organiser,
    services,
    set_login_cookie,
)
from liveblog.web.security import LOGIN_COOKIE, csrf_token_for_cookies
from liveblog.web.sse import sse_response
from liveblog.web.wsproto import FastWebSocketProtocol

MAX_JSON_BODY = 2 * 1024 * 1024


async def raw_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413 too_large) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body over {limit} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise TooLarge(f"request body over {limit} bytes")
    return bytes(raw)


async def json_body(request: Request, limit: int = MAX_JSON_BODY) -> Any:
    return decode_json(await raw_body(request, limit))


async def json_object(
    request: Request, fields: Collection[str], what: str, limit: int = MAX_JSON_BODY
) -> dict[str, Any]:
    """A JSON object body that holds only the fields the endpoint takes (400 `unknown_field`
    names any other: a misspelt field is never silently ignored)."""
    data = await json_body(request, limit)
    if not isinstance(data, dict):
        raise BadRequest("expected a JSON object", code="invalid_json")
    known_fields(data, fields, what)
    return data


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


async def index(request: Request) -> Response:
    return ok({"liveblog": "v1", "protocol": 1, "docs": "/docs/protocol.md"})


async def metrics(request: Request) -> Response:
    """Counters for operators: input refused since the process started, by reason."""
    return ok({"rejected_input": dict(sorted(REJECTED.items()))})


async def prometheus(request: Request) -> Response:
    """GET /metrics: this process in Prometheus' text format (docs/deployment.md)."""
    svc = services(request)
    hub = svc.hub
    viewers = note_takers = 0
    for channel in hub.channels.values():
        takers = sum(channel.note_takers.values())
        note_takers += takers
        viewers += channel.subscriber_count - takers
    health = svc.health()
    components = health["components"]
    lines: list[str] = []
    lines += sample(
        "liveblog_connections",
        "Open stream connections by role.",
        "gauge",
        {'role="viewer"': viewers, 'role="note_taker"': note_takers},
    )
    lines += sample(
        "liveblog_deliveries_total", "Frames handed to viewers' sockets.", "counter", hub.delivered
    )
    lines += sample(
        "liveblog_slow_viewers_dropped_total",
        "Viewers closed as too slow (4408).",
        "counter",
        hub.dropped_slow,
    )
    lines += sample(
        "liveblog_fanout_failures_total",
        "Fan-out passes that raised (a bug, logged): their stream's viewers were closed to resume.",
        "counter",
        hub.pass_failures,
    )
    lines += sample(
        "liveblog_stalled_websockets_total",
        "Websockets closed because they stopped reading: a ping unanswered (4408, then reset).",
        "counter",
        FastWebSocketProtocol.stalled_total,
    )
    lines += sample(
        "liveblog_writer_queue_depth", "Writes waiting for the database writer.", "gauge", svc.db.queue_depth
    )
    lines += sample("liveblog_commits_total", "Write transactions committed.", "counter", svc.db.commits)
    lines += sample(
        "liveblog_database_up",
        "1 while the writer runs and the database answers.",
        "gauge",
        1 if components.get("store", {}).get("ok") else 0,
    )
    if "redis" in components:
        lines += sample(
            "liveblog_redis_up",
            "1 while the Redis subscriber is connected.",
            "gauge",
            1 if components["redis"]["ok"] else 0,
        )
        lines += sample(
            "liveblog_redis_filled_from_storage_total",
            "Changes Redis did not deliver, read from the database instead.",
            "counter",
            components["redis"].get("filled_from_storage", 0),
        )
    states = ("running", "restarting", "failed", "stopped", "starting")
    lines += sample(
        "liveblog_task_state",
        "Background tasks (feed pollers, tallies, heartbeats...) by state: 1 for the current one.",
        "gauge",
        {
            f'task="{name}",state="{state}"': 1 if task["state"] == state else 0
            for name, task in health["tasks"].items()
            for state in states
        },
    )
    lines += sample("liveblog_up", "1 while /healthz is green.", "gauge", 1 if health["ok"] else 0)
    for histogram in HISTOGRAMS:
        lines += histogram.render()
    for counter in COUNTERS:
        lines += counter.render()
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


async def list_events(request: Request) -> Response:
    events = await services(request).programme.events()
    return ok({"events": [e.to_wire() for e in events]})


async def create_event(request: Request) -> Response:
    await require_organiser(request)
    event = await services(request).programme.create_event(await json_body(request))
    return ok(event.to_wire(), 201)


async def event_detail(request: Request) -> Response:
    svc = services(request)
    event_id = request.path_params["event_id"]
    if request.method == "PATCH":
        await require_organiser(request)
        event = await svc.programme.update_event(event_id, await json_body(request))
    else:
        event = await svc.programme.event(event_id)
    return ok(event.to_wire())


async def event_sessions(request: Request) -> Response:
    svc = services(request)
    event_id = request.path_params["event_id"]
    if request.method == "POST":
        await require_organiser(request)
        session = await svc.programme.create_session(event_id, await json_body(request))
        return ok(session.to_wire(), 201)
    await svc.programme.event(event_id)
    sessions = [s.to_wire() for s in await svc.programme.sessions(event_id)]
    fields = [f for f in request.query_params.get("fields", "").split(",") if f]
    if not fields:
        return ok({"sessions": sessions})
    # ?fields=id,state: what the programme page's badges poll for every 30 s (a congress's
    # sessions in full, abstracts and all, were 1.5 MB a poll), with an ETag for a 304.
    if unknown := [f for f in fields if sessions and f not in sessions[0]]:
        raise BadRequest(f"unknown session field {unknown[0]!r}", code="invalid_field", field="fields")
    body = json.dumps({"sessions": [{f: s[f] for f in fields} for s in sessions]}, separators=(",", ":"))
    etag = f'"{hashlib.blake2b(body.encode(), digest_size=16).hexdigest()}"'
    headers = {"etag": etag, "cache-control": "no-cache", "vary": "accept-encoding"}
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):  # ids compress ~6x; ~1 ms for 1,000
        return Response(
            gzip.compress(body.encode(), 6),
            media_type="application/json",
            headers={**headers, "content-encoding": "gzip"},
        )
    return Response(body, media_type="application/json", headers=headers)


async def session_detail(request: Request) -> Response:
    svc = services(request)
    session_id = request.path_params["session_id"]
    if request.method == "DELETE":
        await require_organiser(request)
        await svc.programme.delete_session(session_id)
        svc.archive.invalidate({session_id})
        return Response(status_code=204)
    if request.method == "PATCH":
        await require_organiser(request)
        was = await svc.programme.session(session_id)
        session = await svc.programme.update_session(session_id, await json_body(request))
        svc.feeds.state_changed(was, session)
    else:
        session = await svc.programme.session(session_id)
    return ok(session.to_wire())


async def session_items(request: Request) -> Response:
    """A consistent snapshot: the session (with epoch and seq) and its items as of that seq."""
    svc = services(request)
    session_id = request.path_params["session_id"]

    session, _event, items, reactions = await svc.programme.session_snapshot(session_id)
    return ok(
        {
            "session": session.to_wire(),
            "epoch": session.stream_epoch,
            "seq": session.last_seq,
            "items": [i.to_wire() for i in items],
            # Likes and boosts on the fediverse, of the notes that have any (docs/protocol.md).
            "reactions": {
                str(item_id): {"likes": c.get("Like", 0), "boosts": c.get("Announce", 0)}
                for item_id, c in reactions.items()
            },
        }
    )


async def capture(request: Request) -> Response:
    """Capture over plain HTTP for scripts and bots: the same messages and acks as the socket."""
    svc = services(request)
    session = await svc.programme.session(request.path_params["session_id"])
    # An organiser's login moderates (edit or delete any note); otherwise an invite is needed.
    account = await current_organiser(request)
    author = (
        Author.organiser(account) if account else Author.from_invite(await require_invite(request, session))
    )
    message = await json_body(request, limit=svc.settings.limits.frame_bytes)
    if isinstance(message, dict) and "type" not in message:
        message = {"type": "note.create", **message}
    ack = await svc.notes.handle(session.id, author, message)
    return ok(ack.to_wire(), 200 if ack.duplicate else 201)


async def upload_media(request: Request) -> Response:
    svc = services(request)
    session = await svc.programme.session(request.path_params["session_id"])
    invite = await require_invite(request, session)
    media_id = await store_upload(svc.db, session.id, invite.id, request, svc.settings.limits.upload_bytes)
    return ok({"id": media_id, "url": f"/media/{media_id}", "markdown": f"![](/media/{media_id})"}, 201)


async def stream(request: Request) -> Response:
    svc = services(request)
    session_id = request.path_params["session_id"]
    await svc.programme.stream_session(session_id)
    return sse_response(request, svc, session_id)


async def presence(request: Request) -> Response:
    svc = services(request)
    session_id = request.path_params["session_id"]
    await svc.programme.stream_session(session_id)
    return ok(svc.hub.stats(session_id))


async def invites(request: Request) -> Response:
    await require_organiser(request)
    svc = services(request)
    event_id = request.path_params["event_id"]
    if request.method == "POST":
        data = await json_object(request, ("name", "session_id"), "an invite")
        session_id = data.get("session_id") or None
        invite, token = await svc.accounts.invite(event_id, session_id, str(data.get("name") or ""))
        return ok({**invite.to_wire(), "token": token, "url": f"/n/{token}"}, 201)
    await svc.programme.event(event_id)
    return ok({"invites": [i.to_wire() for i in await svc.accounts.invites(event_id)]})


async def revoke_invite(request: Request) -> Response:
    await require_organiser(request)
    invite = await services(request).accounts.revoke_invite(request.path_params["invite_id"])
    return ok(invite.to_wire())


async def login(request: Request) -> Response:
    data = await json_object(request, ("username", "password"), "a log-in")
    username = str(data.get("username", ""))
    token = await log_in(request, username, str(data.get("password", "")))
    # A client that keeps the cookie instead of using the bearer token sends this as X-CSRF-Token
    # (bound to the cookies it will hold: this login's and any reader login it had already).
    cookies = {**request.cookies, LOGIN_COOKIE: token}
    csrf_token = csrf_token_for_cookies(services(request).settings.secret_key, cookies)
    response = ok({"token": token, "csrf_token": csrf_token})
    set_login_cookie(response, request, token, username)
    return response


routes = [
    Route("/api/v1", index),
    Route("/api/v1/login", login, methods=["POST"]),
    Route("/api/v1/metrics", metrics),
    Route("/metrics", prometheus),
    Route("/api/v1/events", list_events, methods=["GET"]),
    Route("/api/v1/events", create_event, methods=["POST"]),
    Route("/api/v1/events/{event_id}", event_detail, methods=["GET", "PATCH"]),
    Route("/api/v1/events/{event_id}/sessions", event_sessions, methods=["GET", "POST"]),
    Route("/api/v1/events/{event_id}/invites", invites, methods=["GET", "POST"]),
    Route("/api/v1/invites/{invite_id}", revoke_invite, methods=["DELETE"]),
    Route("/api/v1/sessions/{session_id}", session_detail, methods=["GET", "PATCH", "DELETE"]),
    Route("/api/v1/sessions/{session_id}/items", session_items),
    Route("/api/v1/sessions/{session_id}/capture", capture, methods=["POST"]),
    Route("/api/v1/sessions/{session_id}/media", upload_media, methods=["POST"]),
    Route("/api/v1/sessions/{session_id}/stream", stream),
    Route("/api/v1/sessions/{session_id}/presence", presence),
]

"""The fediverse's addresses (docs/federation.md): WebFinger, NodeInfo, actors (JSON for
ActivityPub clients, a redirect to the page for browsers), collections, inboxes, and the
organisers' page that switches federation, edits handles and removes followers."""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from liveblog.errors import BadRequest, LiveblogError, NotFound, TooLarge
from liveblog.federation import documents as ap
from liveblog.federation.service import Federation
from liveblog.web.auth import services
from liveblog.web.pages import base_url, organiser_or_login, render

log = logging.getLogger(__name__)


def federation(request: Request) -> Federation:
    fed = services(request).federation
    if fed is None:
        raise NotFound("federation is switched off on this server")
    return fed


def activity_json(doc: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(doc, separators=(",", ":"), ensure_ascii=False),
        status_code=status,
        media_type=ap.ACTIVITY_JSON,
        headers={"vary": "Accept", "access-control-allow-origin": "*"},
    )


def json_error(exc: LiveblogError) -> Response:
    return JSONResponse({"error": exc.as_dict()}, status_code=exc.status)


def actor_of(request: Request) -> tuple[str, str]:
    kinds = request.path_params["kinds"]
    if kinds not in ap.KINDS:
        raise NotFound("no such account")
    return ap.KINDS[kinds], request.path_params["actor_id"]


async def webfinger(request: Request) -> Response:
    fed = federation(request)
    resource = request.query_params.get("resource", "").strip()
    if not resource:
        return json_error(BadRequest("resource is required", field="resource"))
    try:
        doc = await fed.webfinger(fed.base(base_url(request)), resource)
    except LiveblogError as exc:
        return json_error(exc)
    return JSONResponse(doc, media_type="application/jrd+json", headers={"access-control-allow-origin": "*"})


async def nodeinfo_links(request: Request) -> Response:
    fed = federation(request)
    return JSONResponse(
        ap.nodeinfo_links(fed.base(base_url(request))), headers={"access-control-allow-origin": "*"}
    )


async def nodeinfo(request: Request) -> Response:
    doc = await federation(request).nodeinfo()
    return JSONResponse(
        doc,
        media_type=f'application/json; profile="{ap.NODEINFO_SCHEMA}#"',
        headers={"access-control-allow-origin": "*"},
    )


async def instance_actor(request: Request) -> Response:
    fed = federation(request)
    return activity_json(ap.instance_actor(fed.base(base_url(request)), fed.public_pem))


async def actor(request: Request) -> Response:
    """An event's or session's actor: ActivityPub JSON when asked for it, else its page."""
    fed = federation(request)
    kind, actor_id = actor_of(request)
    base = fed.base(base_url(request))
    if not ap.wants_activity(request.headers.get("accept", "")):
        return RedirectResponse(
            ap.page_url(base, kind, actor_id), status_code=303, headers={"vary": "Accept"}
        )
    try:
        return activity_json(await fed.actor(base, kind, actor_id))
    except LiveblogError as exc:
        return json_error(exc)


async def followers(request: Request) -> Response:
    fed = federation(request)
    kind, actor_id = actor_of(request)
    try:
        return activity_json(await fed.followers_collection(fed.base(base_url(request)), kind, actor_id))
    except LiveblogError as exc:
        return json_error(exc)


async def outbox(request: Request) -> Response:
    fed = federation(request)
    kind, actor_id = actor_of(request)
    page = request.query_params.get("page") == "true"
    before = request.query_params.get("before", "")
    try:
        if before and not before.isdigit():
            raise BadRequest("before must be a number", field="before")
        doc = await fed.outbox(
            fed.base(base_url(request)), kind, actor_id, page, int(before) if before else None
        )
    except LiveblogError as exc:
        return json_error(exc)
    return activity_json(doc)


async def note(request: Request) -> Response:
    """A published note: the Note as it is now, or a Tombstone (410) once it is gone."""
    fed = federation(request)
    base = fed.base(base_url(request))
    item = request.path_params["item_id"]
    try:
        doc = await fed.note(base, item)
    except LiveblogError as exc:
        return json_error(exc)
    if doc is None:
        return activity_json(ap.tombstone(base, item), status=410)
    if not ap.wants_activity(request.headers.get("accept", "")):
        return RedirectResponse(doc["url"], status_code=303, headers={"vary": "Accept"})
    return activity_json(doc)


async def empty_collection(request: Request) -> Response:
    """The accounts followed (none, ever)."""
    fed = federation(request)
    kind, actor_id = actor_of(request)
    base = fed.base(base_url(request))
    try:
        await fed.actor(base, kind, actor_id)
    except LiveblogError as exc:
        return json_error(exc)
    return activity_json(ap.collection(str(request.url.replace(query="")), 0, []))


async def inbox(request: Request) -> Response:
    fed = federation(request)
    target = None if "kinds" not in request.path_params else actor_of(request)
    body = await _body(request, fed.settings.max_document_bytes)
    path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        if body is None:
            raise TooLarge(f"that activity is over {fed.settings.max_document_bytes} bytes")
        done = await fed.receive(
            fed.base(base_url(request)), target, "POST", path + (f"?{query}" if query else ""), headers, body
        )
    except LiveblogError as exc:
        log.info("inbox refused an activity: %s", exc.message)
        return json_error(exc)
    log.info("inbox: %s", done)
    return Response(status_code=202)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None past `limit` bytes (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def webmention(request: Request) -> Response:
    """W3C Webmention: 202 once accepted for processing (docs/federation.md)."""
    fed = federation(request)
    form = await request.form()
    try:
        fed.webmention(fed.base(base_url(request)), str(form.get("source", "")), str(form.get("target", "")))
    except LiveblogError as exc:
        return json_error(exc)
    return Response("accepted: the source is read shortly", status_code=202, media_type="text/plain")


HANDLE_AUTHOR = re.compile(r"^@[^@\s]+@[^@\s]+$")


def is_handle(author: object) -> bool:
    """Whether a comment's author is a fediverse account (@user@instance)."""
    return isinstance(author, str) and HANDLE_AUTHOR.match(author) is not None


async def avatar(request: Request) -> Response:
    """A fediverse replier's avatar, copied to our media; our icon when there is none (not
    kept by browsers: a copy made later shows at once)."""
    fed = federation(request)
    media_id = await fed.avatar_of(request.path_params["account_id"])
    if not media_id:
        return RedirectResponse(
            "/static/fediverse-icon.png", status_code=302, headers={"cache-control": "no-cache"}
        )
    return RedirectResponse(
        f"/media/{media_id}", status_code=302, headers={"cache-control": "public, max-age=3600"}
    )


# -- organisers --------------------------------------------------------------------------------


async def organise(request: Request) -> Response:
    """An event's fediverse page: the switch, its accounts' handles, their followers."""
    if (redirect := await organiser_or_login(request)) is not None:
        return redirect
    svc = services(request)
    fed = federation(request)
    event = await svc.programme.event(request.path_params["event_id"])
    error = None
    if request.method == "POST":
        form = {k: str(v) for k, v in (await request.form()).items()}
        action, kind, actor_id = form.get("action", ""), form.get("kind", ""), form.get("id", "")
        try:
            if action in ("on", "off"):
                await fed.switch(event.id, action == "on")
            elif action == "handle":
                await fed.rename(event, kind, actor_id, form.get("handle", ""))
            elif action == "block":
                await fed.block(form.get("target", ""))
            elif action == "unblock":
                await fed.unblock(form.get("target", ""))
            elif action == "remove":
                base = fed.base(base_url(request))
                await fed.remove_follower(base, event.id, kind, actor_id, form.get("follower", ""))
            else:
                raise BadRequest("unknown action")
        except LiveblogError as exc:
            error = exc
        else:
            return RedirectResponse(request.url.path, status_code=303)
    state = await fed.organiser_view(event, await svc.programme.sessions(event.id))
    return render(
        request,
        "organise/fediverse.html",
        {
            "event": event,
            "host": ap.host_of(fed.base(base_url(request))),
            "editable": date.today().isoformat() < event.starts_on,
            "error": error,
            "blocks": await fed.blocks(),
            **state,
        },
        status=error.status if error else 200,
    )


KINDS = "{kinds:str}/{actor_id:str}"
routes = [
    Route("/.well-known/webfinger", webfinger),
    Route("/.well-known/nodeinfo", nodeinfo_links),
    Route("/nodeinfo/2.1", nodeinfo),
    Route("/ap/actor", instance_actor),
    Route("/ap/inbox", inbox, methods=["POST"]),
    Route("/ap/notes/{item_id:id}", note),
    Route("/ap/avatars/{account_id:id}", avatar),
    Route(f"/ap/{KINDS}", actor),
    Route(f"/ap/{KINDS}/inbox", inbox, methods=["POST"]),
    Route(f"/ap/{KINDS}/followers", followers),
    Route(f"/ap/{KINDS}/outbox", outbox),
    Route(f"/ap/{KINDS}/following", empty_collection),
    Route("/webmention", webmention, methods=["POST"]),
    Route("/organise/events/{event_id}/fediverse", organise, methods=["GET", "POST"]),
]

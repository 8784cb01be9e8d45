"""Server-rendered pages: programme, viewer, embed, note-taker, organiser; plus media and errors.

Pages render the current items on the server, so they read fine without JavaScript; the
scripts in static/js then resume the live stream from the seq the page was rendered at.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from liveblog.archive.chapters import clock
from liveblog.archive.exports import jsonld_live, jsonld_script
from liveblog.capture.notes import Author
from liveblog.errors import BadRequest, LiveblogError, NotFound, RateLimited, Unauthorized
from liveblog.models import Event, Item, Session
from liveblog.paths import resource_dir
from liveblog.web.archive import knowledge_page
from liveblog.web.auth import (
    LOGIN_COOKIE,
    current_organiser,
    log_in,
    organiser_or_login,
    path_invite,
    require_organiser,
    services,
    set_login_cookie,
)
from liveblog.web.listing import GRID_ROOMS, day_label, listing
from liveblog.web.paging import STREAM_PAGE, Older, older_link
from liveblog.web.render import base_url, off_loop, qr_svg, render
from liveblog.web.threads import RefusedComment, thread_context

# The expensive part of a session page, its item cards (~200 ms and 1.3 MB for 2,000 notes), is
# the same for every visitor at one stream position: it is rendered once per (session, epoch,
# seq) and shared; loads that arrive while it renders wait for it. The rest of the page (the
# visitor's own CSRF token, login links) is rendered per request and is cheap.
SHARED_VIEW_SECONDS = 30.0


@dataclass(frozen=True)
class StreamView:
    session: Session
    event: Event
    items: list[Item]  # the newest notes and posts (web/paging.py STREAM_PAGE), oldest first
    cards_html: Markup
    key_points: list[Item] = field(default_factory=list)  # all of them, loaded or not
    older: Older | None = None  # the way to older items, when the stream holds more


_views: dict[str, tuple[float, StreamView]] = {}
_rendering: dict[str, asyncio.Future[StreamView]] = {}


async def _build_view(request: Request, session_id: str) -> StreamView:
    # Only the newest page of cards: a keynote's thousands come a page at a time (web/paging.py).
    head = await services(request).programme.stream_head(session_id, STREAM_PAGE)
    items = head.items
    cards = request.app.state.templates.env.get_template("_cards.html")
    html = await off_loop(lambda: cards.render(items=items, reactions=head.reactions), len(items))
    older = older_link(session_id, [i.id for i in items], head.total)
    return StreamView(head.session, head.event, items, Markup(html), head.key_points, older)


async def stream_view(request: Request, session_id: str) -> StreamView:
    """The session, its card items and their rendered cards, shared while the stream is still."""
    channel = services(request).hub.channels.get(session_id)
    if channel is None or channel.head is None or channel.epoch is None:
        return await _build_view(request, session_id)  # position unknown: nothing to share by
    key = f"{session_id}:{channel.epoch}:{channel.head}"
    now = time.monotonic()
    hit = _views.get(key)
    if hit is not None and now - hit[0] < SHARED_VIEW_SECONDS:
        return hit[1]
    pending = _rendering.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[StreamView] = asyncio.get_running_loop().create_future()
    _rendering[key] = future
    try:
        view = await _build_view(request, session_id)
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # marked retrieved: only waiters, if any, re-raise it
        raise
    finally:
        _rendering.pop(key, None)
    future.set_result(view)
    if view.session.last_seq == channel.head:  # the snapshot is of this very position
        if len(_views) > 256:  # bounded: drop what is stale
            for stale in [k for k, (t, _) in _views.items() if now - t >= SHARED_VIEW_SECONDS]:
                del _views[stale]
            while len(_views) > 256:
                del _views[next(iter(_views))]
        _views[key] = (now, view)
    return view


def programme_by_day(sessions: list[Session]) -> list[dict[str, Any]]:
    """The programme as one grid per day: rooms are columns, start times are rows.

    Each day is {"day", "label", "rooms", "rows": [(time, [sessions in room 0, room 1, ...])],
    "grid"}; on a phone the CSS stacks the cells, and every card also names its room. A day in
    more than GRID_ROOMS rooms is no grid (its page lists it by start time).
    """
    by_day: dict[str, list[Session]] = defaultdict(list)
    for s in sessions:
        by_day[s.starts_at[:10]].append(s)
    out = []
    for day, day_sessions in sorted(by_day.items()):
        rooms = sorted({s.room for s in day_sessions}, key=lambda r: (r == "", r.lower()))
        slots: dict[str, dict[str, list[Session]]] = defaultdict(lambda: defaultdict(list))
        for s in day_sessions:
            slots[s.starts_at[11:16]][s.room].append(s)
        rows = [(time, [by_room.get(r, []) for r in rooms]) for time, by_room in sorted(slots.items())]
        grid = len(rooms) <= GRID_ROOMS
        out.append({"day": day, "label": day_label(day), "rooms": rooms, "rows": rows, "grid": grid})
    return out


def overlapping_sessions(sessions: list[Session]) -> list[tuple[str, list[Session]]]:
    """Sessions that share a room at the same time, as (room, [sessions that clash]) per room.

    Back to back (one ends at 10:00, the next starts at 10:00) is not a clash; sessions with no
    room are never compared (they may well be in different places), nor cancelled ones (their
    slot is free for another talk).
    """
    by_room: dict[str, list[Session]] = defaultdict(list)
    for s in sessions:
        if s.room.strip() and not s.cancelled:
            by_room[s.room.strip().casefold()].append(s)
    out = []
    for same_room in by_room.values():
        same_room.sort(key=lambda s: (s.starts_at, s.ends_at))
        clashing: list[Session] = []
        for i, a in enumerate(same_room):
            for b in same_room[i + 1 :]:
                if b.starts_at >= a.ends_at:
                    break
                for s in (a, b):
                    if s not in clashing:
                        clashing.append(s)
        if clashing:
            out.append((clashing[0].room, clashing))
    return sorted(out, key=lambda pair: pair[0].casefold())


# Item kinds shown as cards in the stream of notes (social posts will join them).
CARD_KINDS = ("note", "social")


async def snapshot(request: Request, session_id: str) -> tuple[Session, Event, list[Any]]:
    session, event, items, _ = await services(request).programme.session_snapshot(session_id)
    # Polls and questions live in the audience panel, not among the notes.
    return session, event, [i for i in items if i.kind in CARD_KINDS]


# -- public pages ------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    svc = services(request)
    organiser = await current_organiser(request)
    events, live = await svc.programme.events(), await svc.programme.live_sessions()
    return render(request, "home.html", {"organiser": organiser, "events": events, "live": live})


AROUND_PREVIEW = 3  # newest posts of the event's own feed shown on the event page (the rest: its page)


async def event_page(request: Request) -> Response:
    svc = services(request)
    organiser = await current_organiser(request)
    event = await svc.programme.event(request.path_params["event_id"])
    sessions = await svc.programme.sessions(event.id)
    shown = listing(sessions, request.query_params, svc.settings.archive.timezone)
    feed = await svc.programme.event_feed(event.id)
    # Only the newest few are read: a busy event's feed holds thousands of posts.
    around = await svc.programme.items(feed.id, kind="social", newest=AROUND_PREVIEW) if feed else []
    return render(
        request,
        "event.html",
        {
            "organiser": organiser,
            "event": event,
            "days": programme_by_day(shown.sessions),
            "listing": shown,
            "live": [s for s in sessions if s.is_live],
            "around": around[::-1],
            "around_count": await svc.programme.count_items(feed.id) if feed else 0,
        },
    )


async def around_page(request: Request) -> Response:
    """The event's own feed ("Around the event"): social posts under the event's hashtags while no
    session is live, as a live stream like a session's (same socket, seqs, resume)."""
    svc = services(request)
    organiser = await current_organiser(request)
    event = await svc.programme.event(request.path_params["event_id"])
    feed = await svc.feeds.moderation.event_feed(event.id)
    view = await stream_view(request, feed.id)
    return render(
        request,
        "around.html",
        {
            "organiser": organiser,
            "event": event,
            "session": view.session,
            "items": view.items,
            "cards_html": view.cards_html,
            "older": view.older,
            "embed_url": f"{base_url(request)}/embed/sessions/{feed.id}",
        },
    )


def _shared_view(request: Request, session_id: str) -> StreamView | None:
    """The shared view of the session at its channel's current position, if one is at hand
    (no database read)."""
    channel = services(request).hub.channels.get(session_id)
    if channel is None or channel.head is None or channel.epoch is None:
        return None
    hit = _views.get(f"{session_id}:{channel.epoch}:{channel.head}")
    if hit is None or time.monotonic() - hit[0] >= SHARED_VIEW_SECONDS:
        return None
    return hit[1]


async def session_page(request: Request, refused: RefusedComment | None = None) -> Response:
    """The live page of a scheduled or live session; once it has ended, its knowledge page
    (the same page as at /archive/sessions/ID, canonical link, validators and 304s included).
    With `refused`, the page shows that comment again in its form (web/comments.py)."""
    svc = services(request)
    session_id = request.path_params["session_id"]
    # Which page: a knowledge page checked moments ago, or a shared live view at the stream's
    # head, tells without a read; otherwise one small read of the session does.
    if svc.archive.fresh(f"k:{session_id}") is not None:
        return await knowledge_page(request, session_id, refused)
    view = _shared_view(request, session_id)
    if view is None:
        if await svc.programme.session_state(session_id) == "ended":
            return await knowledge_page(request, session_id, refused)
        view = await stream_view(request, session_id)
    if view.session.state == "ended":  # it ended in the meantime
        return await knowledge_page(request, session_id, refused)
    return await _live_page(request, view, refused)


async def _live_page(request: Request, view: StreamView, refused: RefusedComment | None) -> Response:
    svc = services(request)
    session = view.session
    if session.is_event_feed:
        return RedirectResponse(f"/events/{quote(session.event_id)}/around", status_code=308)
    organiser = await current_organiser(request)
    thread = await thread_context(request, session.id, refused)
    # The event as it is now: its edits are no change to the session's stream, so the shared view
    # (kept per stream position) may hold it as it was.
    event = await svc.programme.event(session.event_id)
    url = f"{base_url(request)}/sessions/{session.id}"
    # Only a live session is a LiveBlogPosting; a scheduled one has nothing to say yet.
    jsonld = jsonld_script(jsonld_live(session, event, view.items, url)) if session.is_live else None
    return render(
        request,
        "session.html",
        {
            "organiser": organiser,
            "session": session,
            "event": event,
            "items": view.items,
            "cards_html": view.cards_html,
            "key_points": view.key_points,
            "shown": {i.id for i in view.items},
            "older": view.older,
            "embed_url": f"{base_url(request)}/embed/sessions/{session.id}",
            "stats": svc.hub.stats(session.id),
            "jsonld": jsonld,
            "canonical": url,
            **thread,
        },
    )


async def embed_page(request: Request) -> Response:
    view = await stream_view(request, request.path_params["session_id"])
    event = await services(request).programme.event(view.session.event_id)  # as now (see _live_page)
    return render(
        request,
        "embed.html",
        {
            "session": view.session,
            "event": event,
            "items": view.items,
            "cards_html": view.cards_html,
            "older": view.older,
        },
    )


async def media(request: Request) -> Response:
    found = await services(request).programme.media(request.path_params["media_id"])
    if found is None:
        raise NotFound("No such photo.")
    content_type, data = found
    # Content-addressed by id and never changed: cache for a year.
    return Response(
        data, media_type=content_type, headers={"cache-control": "public, max-age=31536000, immutable"}
    )


async def service_worker(request: Request) -> Response:
    # Served from the root so its scope covers the note-taker pages.
    return FileResponse(
        resource_dir("static") / "js" / "sw.js",
        media_type="text/javascript",
        headers={"cache-control": "no-cache", "service-worker-allowed": "/"},
    )


async def favicon(request: Request) -> Response:
    # Browsers ask for /favicon.ico whatever the page links; send them to the one icon we have.
    return RedirectResponse("/static/favicon.svg", status_code=308)


async def healthz(request: Request) -> Response:
    """200 while every component and background task is up; 503 (with what is down) otherwise."""
    report = services(request).health()
    return JSONResponse(
        report, status_code=200 if report["ok"] else 503, headers={"cache-control": "no-store"}
    )


# -- note-takers -------------------------------------------------------------------------------


async def notetaker_landing(request: Request) -> Response:
    invite = await path_invite(request)
    svc = services(request)
    token = request.path_params["token"]
    if invite.session_id is not None:
        return RedirectResponse(f"/n/{quote(token)}/sessions/{invite.session_id}", status_code=303)
    event = await svc.programme.event(invite.event_id)
    sessions = await svc.programme.sessions(event.id)
    shown = listing(sessions, request.query_params, svc.settings.archive.timezone)
    return render(
        request,
        "notetaker_event.html",
        {"invite": invite, "event": event, "listing": shown, "token": token},
    )


async def notetaker_page(request: Request) -> Response:
    session, event, items = await snapshot(request, request.path_params["session_id"])
    invite = await services(request).accounts.authorize_capture(request.path_params["token"], session)
    return render(
        request,
        "notetaker.html",
        {
            "invite": invite,
            "session": session,
            "event": event,
            "items": items,
            "token": request.path_params["token"],
            "limits": services(request).settings.limits,
        },
    )


# -- organisers --------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    next_url = request.query_params.get("next", "/organise")
    if not next_url.startswith("/") or next_url.startswith("//"):
        next_url = "/organise"
    if request.method == "POST":
        form = await request.form()
        username = str(form.get("username", ""))
        try:
            token = await log_in(request, username, str(form.get("password", "")))
        except (Unauthorized, RateLimited) as exc:
            return render(
                request,
                "login.html",
                {"error": exc.message, "username": username, "next": next_url},
                exc.status,
            )
        response = RedirectResponse(next_url, status_code=303)
        set_login_cookie(response, request, token, username)
        return response
    return render(request, "login.html", {"next": next_url})


async def logout(request: Request) -> Response:
    token = request.cookies.get(LOGIN_COOKIE)
    if token:
        await services(request).accounts.logout(token)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(LOGIN_COOKIE)
    return response


def _form_dict(form: FormData, names: list[str]) -> dict[str, Any]:
    return {n: str(form.get(n, "")).strip() for n in names if str(form.get(n, "")).strip() != ""}


# Sessions offered in the event page's invite form: more is a select box nobody scrolls through
# (a congress has ~1,000); the list above it narrows to a day, a room or a few words first.
INVITE_CHOICES = 60

# Newest notes listed for moderation on the organiser's session page.
MODERATION_NOTES = 50

EVENT_FIELDS = ["title", "starts_on", "ends_on", "venue", "description", "hashtags", "language"]
SESSION_FIELDS = ["title", "starts_at", "ends_at", "room", "speakers", "hashtags", "description"]


async def organise_home(request: Request) -> Response:
    if (redirect := await organiser_or_login(request)) is not None:
        return redirect
    events = await services(request).programme.events()
    pending = await services(request).comments.pending_count()
    return render(request, "organise/home.html", {"events": events, "pending_comments": pending})


async def organise_new_event(request: Request) -> Response:
    if (redirect := await organiser_or_login(request)) is not None:
        return redirect
    values: dict[str, Any] = {"language": services(request).programme.default_language}
    error = None
    if request.method == "POST":
        form = await request.form()
        values = _form_dict(form, EVENT_FIELDS)
        try:
            event = await services(request).programme.create_event(values)
        except BadRequest as exc:
            error = exc
        else:
            return RedirectResponse(f"/organise/events/{event.id}", status_code=303)
    return render(
        request,
        "organise/event_form.html",
        {"values": values, "error": error, "form_name": "event"},
        400 if error else 200,
    )


async def _invite_action(
    request: Request, form: FormData, event: Event, session_id: str | None
) -> dict[str, Any] | None:
    """The invite and revoke forms, shared by the event and the session page."""
    svc = services(request)
    if str(form.get("form", "")) == "invite":
        invite, token = await svc.accounts.invite(event.id, session_id, str(form.get("name", "")).strip())
        url = f"{base_url(request)}/n/{token}"
        return {"invite": invite, "url": url, "qr": qr_svg(url)}
    invite_id = str(form.get("invite_id", ""))
    if invite_id not in {i.id for i in await svc.accounts.invites(event.id)}:
        raise NotFound("There is no such invite for this event.")
    await svc.accounts.revoke_invite(invite_id)
    return None


def _session_values(form: FormData) -> dict[str, Any]:
    values = _form_dict(form, SESSION_FIELDS)
    if "recording_url" in form:  # kept when emptied: that takes the recording away
        values["recording_url"] = str(form.get("recording_url", "")).strip()
        values["recording_offset"] = str(form.get("recording_offset", "")).strip() or "0"
    values["question_moderation"] = form.get("question_moderation") == "on"
    if form.get("questions_audience"):
        values["questions_audience"] = str(form.get("questions_audience"))
    return values


async def organise_event(request: Request) -> Response:
    if (redirect := await organiser_or_login(request)) is not None:
        return redirect
    svc = services(request)
    event = await svc.programme.event(request.path_params["event_id"])
    error = None
    new_invite = None
    form_name = None
    values: dict[str, Any] = {}
    if request.method == "POST":
        form = await request.form()
        form_name = str(form.get("form", ""))
        try:
            if form_name == "event":
                values = {
                    **_form_dict(form, EVENT_FIELDS),
                    "show_viewers": form.get("show_viewers") == "on",
                    "public_reasons": form.get("public_reasons") == "on",
                }
                event = await svc.programme.update_event(event.id, values)
                # Its knowledge pages show the event (and, if chosen, the moderation reasons).
                svc.archive.invalidate({s.id for s in await svc.programme.sessions(event.id)})
            elif form_name == "session":
                values = _session_values(form)
                await svc.programme.create_session(event.id, values)
            elif form_name in ("invite", "revoke"):
                values = _form_dict(form, ["name", "session_id"])
                session_id = str(form.get("session_id") or "") or None
                new_invite = await _invite_action(request, form, event, session_id)
                values = {}  # made: the form is empty again for the next note-taker
            else:
                raise BadRequest("unknown form")
        except LiveblogError as exc:
            error = exc
        else:
            if new_invite is None:
                return RedirectResponse(request.url.path, status_code=303)
    sessions = await svc.programme.sessions(event.id)
    shown = listing(sessions, request.query_params, svc.settings.archive.timezone)
    invites = await svc.accounts.invites(event.id)
    return render(
        request,
        "organise/event.html",
        {
            "event": event,
            "listing": shown,
            "invite_choices": INVITE_CHOICES,
            "session_titles": {s.id: s.title for s in sessions},
            "overlaps": overlapping_sessions(sessions),
            "invites": invites,
            "error": error,
            "form_name": form_name,
            "values": values,
            "new_invite": new_invite,
            "stats": {s.id: svc.hub.stats(s.id) for s in shown.sessions},
        },
        error.status if error else 200,
    )


async def organise_session(request: Request) -> Response:
    if (redirect := await organiser_or_login(request)) is not None:
        return redirect
    svc = services(request)
    session = await svc.programme.session(request.path_params["session_id"])
    event = await svc.programme.event(session.event_id)
    error = None
    form_name = None
    new_invite = None
    new_speaker_link = None
    values: dict[str, Any] = {}
    if request.method == "POST":
        await require_organiser(request)
        form = await request.form()
        form_name = str(form.get("form", ""))
        try:
            if form_name == "state":
                was = session
                session = await svc.programme.set_state(session.id, str(form.get("state", "")))
                svc.feeds.state_changed(was, session)
            elif form_name == "session":
                values = _session_values(form)
                session = await svc.programme.update_session(session.id, values)
            elif form_name == "cancel":
                session = await svc.programme.update_session(
                    session.id, {"cancelled": form.get("cancelled") == "yes"}
                )
            elif form_name == "delete":
                if form.get("confirm") != "yes":
                    raise BadRequest(
                        "tick the box to confirm the delete", code="missing_field", field="confirm"
                    )
                await svc.programme.delete_session(session.id)
                svc.archive.invalidate({session.id})  # its knowledge page, if it had one, is gone too
                return RedirectResponse(f"/organise/events/{event.id}", status_code=303)
            elif form_name in ("invite", "revoke"):
                values = _form_dict(form, ["name"])
                new_invite = await _invite_action(request, form, event, session.id)
                values = {}  # made: the form is empty again for the next note-taker
            elif form_name == "speaker_link":
                values = _form_dict(form, ["name"])
                link, token = await svc.answers.make_link(session.id, str(form.get("name", "")))
                url = f"{base_url(request)}/a/{token}"
                new_speaker_link = {
                    "link": link,
                    "url": url,
                    "qr": qr_svg(url, label="QR code of the speaker link"),
                }
                values = {}
            elif form_name == "speaker_revoke":
                await svc.answers.revoke_link(session.id, str(form.get("link_id", "")))
            elif form_name == "remove_note":
                account = await require_organiser(request)
                item_id = str(form.get("item_id", ""))
                if not (item_id.isascii() and item_id.isdigit()):
                    raise BadRequest("no note chosen")
                # Through the capture path like any deletion: sequenced, so every viewer drops it.
                await svc.notes.handle(
                    session.id,
                    Author.organiser(account),
                    {
                        "type": "note.delete",
                        "client_id": f"moderation-{secrets.token_hex(8)}",
                        "item_id": int(item_id),
                    },
                )
            else:
                raise BadRequest("unknown form")
        except LiveblogError as exc:
            error = exc
        else:
            if new_invite is None and new_speaker_link is None:
                return RedirectResponse(request.url.path, status_code=303)
    invites = [i for i in await svc.accounts.invites(event.id) if i.session_id in (None, session.id)]
    notes = await svc.programme.items(session.id, kind="note")
    answers = await svc.answers.session_answers(session.id)
    questions = {q.id: q for q in await svc.programme.items(session.id, kind="question")} if answers else {}
    return render(
        request,
        "organise/session.html",
        {
            "notes": list(reversed(notes))[:MODERATION_NOTES],
            "session": session,
            "event": event,
            "invites": invites,
            "error": error,
            "form_name": form_name,
            "values": values,
            "new_invite": new_invite,
            "new_speaker_link": new_speaker_link,
            "speaker_links": await svc.answers.links(session.id),
            "answers": [(a, questions.get(a.question_id)) for a in answers.values()],
            "stats": svc.hub.stats(session.id),
            "viewer_url": f"{base_url(request)}/sessions/{session.id}",
            "room_code": svc.audience.rooms.code_for(session.id),
            "holdings": await svc.programme.holdings(session.id),
            "recording_clock": clock(session.recording_offset) if session.recording_url else "",
        },
        error.status if error else 200,
    )


routes = [
    Route("/", home),
    Route("/healthz", healthz),
    Route("/favicon.ico", favicon),
    Route("/sw.js", service_worker),
    Route("/events/{event_id}", event_page),
    Route("/events/{event_id}/around", around_page),
    Route("/sessions/{session_id}", session_page),
    Route("/embed/sessions/{session_id}", embed_page),
    Route("/media/{media_id}", media),
    Route("/n/{token}", notetaker_landing),
    Route("/n/{token}/sessions/{session_id}", notetaker_page),
    Route("/login", login_page, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/organise", organise_home),
    Route("/organise/events/new", organise_new_event, methods=["GET", "POST"]),
    Route("/organise/events/{event_id}", organise_event, methods=["GET", "POST"]),
    Route("/organise/sessions/{session_id}", organise_session, methods=["GET", "POST"]),
]

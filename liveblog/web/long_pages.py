"""The pages of a long session (issue 17 item 7; sizes and cursors in web/paging.py).

- /sessions/ID/older?before=ITEM: the live stream's next older cards, for static/js/older.js;
- /sessions/ID/page/N: a numbered page of the stream, counted from the oldest, for readers and
  crawlers without JavaScript (linked to its neighbours, rel="prev"/"next");
- /archive/sessions/ID/page/N and /archive/sessions/ID/cards?section=notes|posts&after=ITEM:
  the same for a knowledge page (static/js/more.js);
- /sessions/ID/items/ITEM and /archive/sessions/ID/items/ITEM: an item's permalink, sent to the
  page that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from liveblog.archive.service import KnowledgePage
from liveblog.capture.programme import Reactions
from liveblog.errors import BadRequest, NotFound
from liveblog.models import RenderedCard
from liveblog.web.archive import SlotCards, cards_of, knowledge_page
from liveblog.web.auth import current_organiser, services
from liveblog.web.pages import CARD_KINDS
from liveblog.web.paging import (
    KNOWLEDGE_PAGE,
    STREAM_PAGE,
    card_id,
    page_of,
    pages_for,
    split_cards,
)
from liveblog.web.render import base_url, render


def _whole(value: str | None, name: str) -> int:
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise BadRequest(f"{name} must be an item id (a whole number)", code="invalid_field", field=name)
    return int(value)


def _cards(request: Request, items: list[Any], reactions: Reactions) -> str:
    """Live stream cards (templates/_items.html), newest first, as the first page has them."""
    cards = request.app.state.templates.env.get_template("_cards.html")
    return str(cards.render(items=items, reactions=reactions))


async def older_cards(request: Request) -> Response:
    """The next older page of a live stream's cards, read now (so edits and deletions made since
    the page loaded are in it), with the stream position it reflects: the script applies live
    changes after that seq on top."""
    session_id = request.path_params["session_id"]
    before = _whole(request.query_params.get("before"), "before")
    session, items, reactions = await services(request).programme.stream_page(
        session_id, before, STREAM_PAGE + 1
    )
    more = len(items) > STREAM_PAGE
    items = items[-STREAM_PAGE:] if more else items
    return JSONResponse(
        {
            "html": _cards(request, items, reactions),
            "before": items[0].id if more and items else None,
            "epoch": session.stream_epoch,
            "seq": session.last_seq,
        },
        headers={"cache-control": "no-store"},
    )


async def stream_page(request: Request) -> Response:
    """Numbered page N of a session's stream: its notes and posts N*50-49 to N*50 from the
    oldest, newest first; an ended session's are on its knowledge pages."""
    organiser = await current_organiser(request)
    session_id = request.path_params["session_id"]
    number = request.path_params["number"]
    if number < 1:
        raise NotFound("Pages are numbered from 1.")
    svc = services(request)
    session, event, items, total, reactions = await svc.programme.stream_numbered(
        session_id, (number - 1) * STREAM_PAGE, STREAM_PAGE
    )
    if session.state == "ended" and not session.is_event_feed:
        return RedirectResponse(f"/archive/sessions/{session_id}", status_code=303)
    pages = pages_for(total, STREAM_PAGE)
    if number > pages:
        raise NotFound(f"This stream has {pages} page{'' if pages == 1 else 's'}: there is no page {number}.")
    home = f"/events/{event.id}/around" if session.is_event_feed else f"/sessions/{session_id}"
    return render(
        request,
        "stream_page.html",
        {
            "organiser": organiser,
            "session": session,
            "event": event,
            "cards_html": Markup(_cards(request, items, reactions)),
            "number": number,
            "pages": pages,
            "first": (number - 1) * STREAM_PAGE + 1,
            "last": (number - 1) * STREAM_PAGE + len(items),
            "total": total,
            "home": home,
            # Newer is towards the live page, older towards page 1.
            "newer": f"/sessions/{session_id}/page/{number + 1}" if number < pages else home,
            "older": f"/sessions/{session_id}/page/{number - 1}" if number > 1 else None,
            "canonical": f"{base_url(request)}/sessions/{session_id}/page/{number}",
        },
    )


async def stream_item(request: Request) -> Response:
    """An item's permalink: to the live page when it is among the newest, else to the numbered
    page that holds it; to the knowledge page's once the session has ended."""
    session_id = request.path_params["session_id"]
    item_id = request.path_params["item_id"]
    session, item, place, total = await services(request).programme.stream_place(session_id, item_id)
    if session.state == "ended" and not session.is_event_feed:
        return RedirectResponse(f"/archive/sessions/{session_id}/items/{item_id}", status_code=303)
    if item.deleted:
        raise NotFound("This item was deleted.", code="unknown_item")
    home = f"/events/{session.event_id}/around" if session.is_event_feed else f"/sessions/{session_id}"
    if item.kind not in CARD_KINDS or place > total - STREAM_PAGE:
        return RedirectResponse(f"{home}#item-{item_id}", status_code=303)
    return RedirectResponse(
        f"/sessions/{session_id}/page/{page_of(place, STREAM_PAGE)}#item-{item_id}", status_code=303
    )


async def knowledge_numbered(request: Request) -> Response:
    number = request.path_params["number"]
    if number == 1:
        return RedirectResponse(f"/archive/sessions/{request.path_params['session_id']}", status_code=308)
    if number < 1:
        raise NotFound("Pages are numbered from 1.")
    return await knowledge_page(request, request.path_params["session_id"], page_no=number)


class SectionCards(NamedTuple):
    """One section (notes or posts) of a knowledge page: its items' ids and cards, in page order."""

    ids: list[int]
    cards: Sequence[str]


def _knowledge_sections(
    request: Request, view: KnowledgePage, fresh: list[RenderedCard]
) -> tuple[SectionCards, SectionCards]:
    """A knowledge page's notes and posts: from its assembled cards when current, else from its
    card slots, each card rendered only when read (and added to `fresh`, to keep)."""
    if view.section is not None:
        notes, posts = split_cards(view.section.notes_html), split_cards(view.section.posts_html)
        return SectionCards([card_id(c) for c in notes], notes), SectionCards(
            [card_id(c) for c in posts], posts
        )
    cards = cards_of(request)
    return (
        SectionCards([slot.item_id for slot in view.notes], SlotCards(cards, view, view.notes, fresh)),
        SectionCards([slot.item_id for slot in view.posts], SlotCards(cards, view, view.posts, fresh)),
    )


async def knowledge_cards(request: Request) -> Response:
    """The knowledge page's next cards of one section after item `after`, for more.js."""
    session_id = request.path_params["session_id"]
    section = request.query_params.get("section")
    if section not in ("notes", "posts"):
        raise BadRequest("section must be notes or posts", code="invalid_field", field="section")
    after = _whole(request.query_params.get("after"), "after")
    svc = services(request)
    view = await svc.archive.knowledge_view(session_id, cards_of(request).key)
    if view.section is None:  # the cards asked for are rendered: their items are read
        slots = view.notes if section == "notes" else view.posts
        ids = [slot.item_id for slot in slots]
        if after in ids:
            start = ids.index(after) + 1
            view = await svc.archive.fill(view, slots[start : start + KNOWLEDGE_PAGE])
    fresh: list[RenderedCard] = []
    notes, posts = _knowledge_sections(request, view, fresh)
    wanted = notes if section == "notes" else posts
    if after not in wanted.ids:
        raise NotFound(
            f"after={after} is not a {section[:-1]} of this page (any more): reload the page",
            code="unknown_item",
        )
    start = wanted.ids.index(after) + 1
    some = list(wanted.cards[start : start + KNOWLEDGE_PAGE])
    more = start + KNOWLEDGE_PAGE < len(wanted.ids)
    svc.archive.keep_cards_later(session_id, view.card_key, fresh, None)
    return JSONResponse(
        {"html": "\n".join(some), "after": wanted.ids[start + len(some) - 1] if more and some else None},
        headers={"cache-control": "no-cache"},
    )


async def knowledge_item(request: Request) -> Response:
    """An item's permalink on a knowledge page: the numbered page that holds it."""
    session_id = request.path_params["session_id"]
    item_id = request.path_params["item_id"]
    view = await services(request).archive.knowledge_view(session_id, cards_of(request).key)
    base = f"/archive/sessions/{session_id}"
    for section in _knowledge_sections(request, view, []):
        if item_id in section.ids:
            page = section.ids.index(item_id) // KNOWLEDGE_PAGE + 1
            return RedirectResponse(
                f"{base}{'' if page == 1 else f'/page/{page}'}#item-{item_id}", status_code=303
            )
    # Polls and questions are on the first page.
    if item_id in {p.item.id for p in view.polls} | {q.item.id for q in view.questions}:
        return RedirectResponse(f"{base}#item-{item_id}", status_code=303)
    raise NotFound("There is no such item on this knowledge page.", code="unknown_item")


routes = [
    Route("/sessions/{session_id}/older", older_cards),
    Route("/sessions/{session_id}/page/{number:id}", stream_page),
    Route("/sessions/{session_id}/items/{item_id:id}", stream_item),
    Route("/archive/sessions/{session_id}/page/{number:id}", knowledge_numbered),
    Route("/archive/sessions/{session_id}/cards", knowledge_cards),
    Route("/archive/sessions/{session_id}/items/{item_id:id}", knowledge_item),
]

"""Archive pages: knowledge pages (at /archive/sessions/ID, and at the live URL once a session
ended), tag pages, search and the event archive. Knowledge pages are cacheable: an ETag and
Last-Modified from the page's version, 304 when unchanged, and rendered bytes kept in memory."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import html
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, overload
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from liveblog.archive.chapters import (
    Chapter,
    chapters_text,
    chapters_vtt,
    page_chapters,
    recording_of,
    start_utc,
)
from liveblog.archive.charts import activity_chart, bar_chart
from liveblog.archive.exports import (
    Entry,
    atom_feed,
    comment_entry,
    event_markdown,
    jsonld_article,
    jsonld_script,
    session_entry,
    session_markdown,
    sitemap,
)
from liveblog.archive.proceedings import MEDIA_TYPES
from liveblog.archive.service import SEARCH_KINDS, CardSlot, EventArchive, KnowledgePage
from liveblog.errors import BadRequest, NotFound, Unavailable
from liveblog.models import MARK_END, MARK_START, CardSection, RenderedCard, SearchHit, Session
from liveblog.services import Services
from liveblog.web.auth import current_organiser, current_reader, require_organiser, services
from liveblog.web.listing import listing
from liveblog.web.paging import KNOWLEDGE_PAGE, knowledge_pager, split_cards
from liveblog.web.render import base_url, off_loop, render
from liveblog.web.threads import RefusedComment, thread_context


class Cards:
    """Knowledge-page cards (templates/archive/_card.html), rendered once per item version and
    kept in storage, so that an uncached page is a read of its cards plus a small frame.

    Cards are kept under a key: the card template's version (a hash of its source, of Jinja's
    version and of the venue's time zone the card shows times in, so a change of any renders
    every card again, lazily) and the session's
    end time (a card says "Edited after the event"). The stored HTML is this renderer's own
    autoescaped output, so a page made of kept cards is byte for byte a freshly rendered one.

    A note's likes and boosts (templates/_reactions.html) are not in its kept card, whose key is
    the item's version: they are added as the page's cards are assembled, and the assembled
    cards are kept for the stream position, which every change of the counts moves on."""

    TEMPLATE = "archive/_card.html"
    REACTIONS = "_reactions.html"

    def __init__(self, env: jinja2.Environment) -> None:
        assert env.loader is not None
        source = "\0".join(env.loader.get_source(env, name)[0] for name in (self.TEMPLATE, self.REACTIONS))
        zone = env.globals.get("venue_timezone", "UTC")
        self.version = hashlib.sha256(f"{jinja2.__version__}\0{zone}\0{source}".encode()).hexdigest()[:16]
        self._card = env.get_template(self.TEMPLATE).module.card  # type: ignore[attr-defined]
        self._reactions = env.get_template(self.REACTIONS).module.reactions_line  # type: ignore[attr-defined]

    def key(self, session: Session) -> str:
        return f"{self.version}:{session.ended_at or ''}"

    def render(self, view: KnowledgePage) -> tuple[Markup, Markup, list[RenderedCard], CardSection | None]:
        """The page's notes and posts as HTML: its assembled section when current, else from
        kept cards where current, rendering the rest. Also what to keep: the cards just
        rendered, and the section just assembled."""
        if view.section is not None:
            return Markup(view.section.notes_html), Markup(view.section.posts_html), [], None
        fresh: list[RenderedCard] = []
        notes = "\n".join([self.shown_html(view, slot, fresh) for slot in view.notes])
        posts = "\n".join([self.shown_html(view, slot, fresh) for slot in view.posts])
        s = view.session
        section = CardSection(
            s.id,
            view.card_key,
            s.stream_epoch,
            s.last_seq,
            notes,
            posts,
            len(view.notes),
            len(view.posts),
            view.word_count,
        )
        return Markup(notes), Markup(posts), fresh, section

    def slot_html(self, view: KnowledgePage, slot: CardSlot, fresh: list[RenderedCard]) -> str:
        """One slot's card: the kept one, or rendered now (and added to `fresh`, to keep)."""
        if slot.html is not None:
            return slot.html
        item = slot.item
        assert item is not None
        text = str(self._card(item, view.history.get(item.id), view.session.ended_at))
        fresh.append(RenderedCard(item.id, item.version, text, slot.words))
        return text

    def shown_html(self, view: KnowledgePage, slot: CardSlot, fresh: list[RenderedCard]) -> str:
        """One slot's card as the page shows it: with its note's likes and boosts, if any."""
        text = self.slot_html(view, slot, fresh)
        counts = view.reactions.get(slot.item_id)
        if not counts:
            return text
        card = text.rstrip()
        assert card.endswith("</article>"), "a knowledge card ends its <article>"
        return f"{card[: -len('</article>')]}  {self._reactions(counts)}\n</article>{text[len(card) :]}"


class SlotCards(Sequence[str]):
    """A knowledge page's slots as card HTML, each card rendered only when read: a long page's
    first view, before its cards are kept, renders the cards of the page asked for, not all."""

    def __init__(
        self, cards: Cards, view: KnowledgePage, slots: list[CardSlot], fresh: list[RenderedCard]
    ) -> None:
        self._cards, self._view, self._slots, self._fresh = cards, view, slots, fresh

    def __len__(self) -> int:
        return len(self._slots)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        # Stripped, as split_cards() gives assembled cards: a page is the same bytes either way.
        if isinstance(index, slice):
            return [
                self._cards.shown_html(self._view, slot, self._fresh).strip() for slot in self._slots[index]
            ]
        return self._cards.shown_html(self._view, self._slots[index], self._fresh).strip()


def card_warmer(svc: Services, cards: Cards) -> Callable[[str], Awaitable[None]]:
    """What the archive's background check calls for a session it has just archived: its page's
    cards rendered (in the render thread) and kept, before anyone asks for the page."""

    async def warm(session_id: str) -> None:
        view = await svc.archive.knowledge_view(session_id, cards.key, render_all=True)
        if view.section is not None:
            return
        # In pieces, each its own job for the one render thread: a page asked for meanwhile (a
        # knowledge page's first view, a long live page) waits for one piece, not for all of a
        # long session's cards (7,000 cards in one job: waits of 80-140 ms; in pieces: 8-29 ms).
        fresh: list[RenderedCard] = []
        rendered: dict[int, str] = {}
        todo = [slot for slot in view.notes + view.posts if slot.html is None]
        for start in range(0, len(todo), WARM_PIECE):
            piece = todo[start : start + WARM_PIECE]
            rendered.update(
                await off_loop(functools.partial(_rendered, cards, view, piece, fresh), len(piece))
            )
        done = dataclasses.replace(
            view,
            notes=[slot._replace(html=rendered.get(slot.item_id, slot.html)) for slot in view.notes],
            posts=[slot._replace(html=rendered.get(slot.item_id, slot.html)) for slot in view.posts],
        )
        _, _, _, section = await off_loop(lambda: cards.render(done), len(todo))  # assembled only
        await svc.archive.keep_cards(session_id, view.card_key, fresh, section)

    return warm


# Cards the archive's check renders in one job of the render thread (10-30 ms of Jinja).
WARM_PIECE = 200


def _rendered(
    cards: Cards, view: KnowledgePage, slots: list[CardSlot], fresh: list[RenderedCard]
) -> dict[int, str]:
    return {slot.item_id: cards.slot_html(view, slot, fresh) for slot in slots}


# Up to this many cards to render, a knowledge page renders them all and keeps its assembled
# cards (one read next time); beyond, only the page's own (SlotCards).
RENDER_ALL_CARDS = 4 * KNOWLEDGE_PAGE


def slots_to_render(view: KnowledgePage, page_no: int) -> list[CardSlot]:
    """The slots whose cards knowledge page `page_no` renders: all, when few are to render,
    else those of its own page (the rest wait for their pages, or for the archive's warm)."""
    if view.to_render <= RENDER_ALL_CARDS:
        return view.notes + view.posts
    start, end = (page_no - 1) * KNOWLEDGE_PAGE, page_no * KNOWLEDGE_PAGE
    return view.notes[start:end] + view.posts[start:end]


def cards_of(request: Request) -> Cards:
    cards: Cards = request.app.state.cards
    return cards


# Markdown as typed, read as plain text: an escaped character stands for itself (a fediverse
# reply's body escapes its punctuation), an autolink for its URL, the rest of the punctuation
# goes. Escapes and autolinks come first in the alternation, so `\[` is a bracket kept.
_MARKDOWN_NOISE = re.compile(
    r"\\([\\`*_{}\[\]()#+\-.!<>|~])|<(https?://[^>\s]+)>"
    r"|\*\*|__|`|!\[|\]\([^)]*\)|^[-*#>]+\s|(?<=\s)[-*]\s|\[|\]",
    re.M,
)


def plain_text(markdown: str) -> str:
    """What a reader sees of Markdown, without its punctuation: search snippets, the static
    site's search index."""
    return _MARKDOWN_NOISE.sub(lambda m: m.group(1) or m.group(2) or "", markdown)


def highlight(snippet: str) -> Markup:
    """A search snippet as HTML: Markdown punctuation dropped (the index holds what people
    typed), escaped, then the match markers become <mark>."""
    escaped = html.escape(plain_text(snippet), quote=False)
    return Markup(escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>"))


def hit_url(hit: SearchHit) -> str:
    if hit.in_event_feed:  # the event's own feed has no knowledge page: its page is the record
        # (its permalink: the around page, or the numbered page that holds an older post)
        return f"/sessions/{hit.session_id}/items/{hit.ref}"
    base = f"/archive/sessions/{hit.session_id}"
    if hit.kind in ("note", "social"):  # a long page's later notes are on its numbered pages
        return f"{base}/items/{hit.ref}"
    if hit.kind in ("poll", "question"):
        return f"{base}#item-{hit.ref}"
    if hit.kind == "summary":
        return f"{base}#summary"
    if hit.kind == "comment":
        return f"{base}#comment-{hit.ref}"
    if hit.kind == "answer":  # answered after the talk: under its question (ref)
        return f"{base}#answer-{hit.ref}"
    return base


def _http_date(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def not_modified(request: Request, etag: str, last_modified: str | None = None) -> bool:
    """True when the client's copy is current (If-None-Match wins over If-Modified-Since)."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        return etag in [t.strip().removeprefix("W/") for t in inm.split(",")] or inm.strip() == "*"
    ims = request.headers.get("if-modified-since")
    if ims and last_modified:
        try:
            return parsedate_to_datetime(ims) >= parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            return False
    return False


def knowledge_context(
    page: KnowledgePage, canonical: str, zone: ZoneInfo, *, can_edit: bool
) -> dict[str, Any]:
    """The context of templates/archive/knowledge.html that the server's page and the static
    site share (each adds its comment thread, and the cards' HTML from Cards.render)."""
    return {
        "page": page,
        "session": page.session,
        "event": page.event,
        "canonical": canonical,
        "can_edit": can_edit,
        "jsonld": jsonld_script(jsonld_article(page, canonical)),
        "recording": recording_of(page.session),
        "chapters": page_chapters(page, zone),
    }


# Bars in the contributions chart: 38C3's 1,007 sessions drew a 26,000 px, 318 KB chart.
CHART_SESSIONS = 20


def event_archive_context(archive: EventArchive) -> dict[str, Any]:
    """The context of templates/archive/event.html that the server's page and the static site
    share: the archive and its charts."""
    titles = {s.id: s.title for s in archive.sessions}
    contributions = [
        (titles[s.id], sum(archive.counts.get(s.id, {}).get(k, 0) for k in ("note", "social", "question")))
        for s in archive.sessions
    ]
    title = "Notes, posts and questions per session"
    if len(contributions) > CHART_SESSIONS:  # a congress: its busiest sessions, not a bar each
        contributions = sorted(contributions, key=lambda row: -row[1])[:CHART_SESSIONS]
        title = f"{title}: the {CHART_SESSIONS} busiest of {len(archive.sessions):,}"
    return {
        "archive": archive,
        "event": archive.event,
        "activity_svg": activity_chart(archive.activity, title="Items posted per quarter hour (UTC)"),
        "contrib_svg": bar_chart(contributions, title=title),
        "turnout_svg": bar_chart(
            [(question, voters) for _, _, question, voters in archive.turnout],
            title="Voters per poll",
            details=[titles.get(sid, "") for _, sid, _, _ in archive.turnout],
        ),
    }


async def knowledge_page(
    request: Request,
    session_id: str | None = None,
    refused: RefusedComment | None = None,
    page_no: int = 1,
) -> Response:
    """A knowledge page of an ended session: its first page (page_no 1) or a numbered page of its
    notes and posts (web/paging.py), each cached under its own key; with `refused`, showing that
    comment again in its form (web/comments.py)."""
    svc = services(request)
    sid = session_id or request.path_params["session_id"]
    organiser = await current_organiser(request)
    reader = await current_reader(request)
    # Organisers and logged-in readers see forms, so only the public page is shared and cached.
    public = organiser is None and reader is None
    cache_key = f"k:{sid}" if page_no == 1 else f"k:{sid}:{page_no}"
    # invalidate() drops only a first page at once: a numbered page is always checked.
    recent = svc.archive.fresh(cache_key) if public and page_no == 1 else None
    if recent is not None:  # checked moments ago and nothing committed since: no database read
        fresh_version, (body, last_modified) = recent
        headers = {"etag": f'"{fresh_version}"', "last-modified": last_modified, "cache-control": "no-cache"}
        if not_modified(request, headers["etag"], last_modified):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="text/html", headers=headers)
    # A page in the cache is checked against the database's version (one small read); with
    # none, there is nothing to check and the read of the page itself gives its version.
    version = await svc.archive.version(sid) if public and svc.archive.holds(cache_key) else None
    if version is not None:
        etag = f'"{version}"'
        cached = svc.archive.cached(cache_key, version)
        if cached is not None:
            body, last_modified = cached
            headers = {"etag": etag, "last-modified": last_modified, "cache-control": "no-cache"}
            if not_modified(request, etag, last_modified):
                return Response(status_code=304, headers=headers)
            return Response(body, media_type="text/html", headers=headers)
    cards = cards_of(request)
    page = await svc.archive.knowledge_view(sid, cards.key)
    if page.section is None:
        page = await svc.archive.fill(page, slots_to_render(page, page_no))
    thread = await thread_context(request, sid, refused)
    last_modified = _http_date(
        max(page.session.updated_at, page.record.updated_at, page.session.ended_at or "")
    )
    canonical = f"{base_url(request)}/archive/sessions/{sid}"
    if page_no > 1:  # each numbered page is its own page (and says which are next to it)
        canonical += f"/page/{page_no}"
    context = {
        **knowledge_context(
            page, canonical, ZoneInfo(svc.settings.archive.timezone), can_edit=organiser is not None
        ),
        "organiser": organiser,
        **({"jsonld": None} if page_no > 1 else {}),  # the article is its first page
        **thread,
        # The public page is cached and served to everyone: it must carry nobody's token
        # (it has no form that posts; a reader or organiser gets a page of their own).
        **({"csrf_token": ""} if public else {}),
    }

    def build() -> tuple[Response, list[RenderedCard], CardSection | None]:
        if page.section is None and page.to_render > RENDER_ALL_CARDS:
            # Many cards to render (a long session's first view, a new card template): this
            # page's now, kept; the rest when asked for, or by the archive's warmer.
            fresh: list[RenderedCard] = []
            section = None
            notes_cards = SlotCards(cards, page, page.notes, fresh)
            shown = knowledge_pager(sid, page_no, notes_cards, SlotCards(cards, page, page.posts, fresh))
        else:
            notes_html, posts_html, fresh, section = cards.render(page)
            shown = knowledge_pager(sid, page_no, split_cards(notes_html), split_cards(posts_html))
        response = render(request, "archive/knowledge.html", {**context, **shown})
        return response, fresh, section

    # Kept cards make the page a small frame; cards to render (the first view, or after a
    # template change) go to the pages' one render thread (render.off_loop), off the event loop.
    # What was rendered or assembled is handed to the archive's background job to keep: a GET
    # never writes.
    response, fresh, section = await off_loop(build, page.to_render)
    svc.archive.keep_cards_later(sid, page.card_key, fresh, section)
    if public:
        etag = f'"{page.version}"'
        response.headers["etag"] = etag
        response.headers["last-modified"] = last_modified
        response.headers["cache-control"] = "no-cache"
        svc.archive.remember(cache_key, page.version, (response.body, last_modified))
        if not_modified(request, etag, last_modified):
            return Response(status_code=304, headers={"etag": etag, "last-modified": last_modified})
    return response


async def edit_summary(request: Request) -> Response:
    account = await require_organiser(request)
    sid = request.path_params["session_id"]
    form = await request.form()
    await services(request).archive.set_summary(sid, str(form.get("summary", "")), account.username)
    return RedirectResponse(f"/archive/sessions/{sid}#summary", status_code=303)


async def edit_tags(request: Request) -> Response:
    await require_organiser(request)
    sid = request.path_params["session_id"]
    form = await request.form()
    await services(request).archive.set_organiser_tags(sid, str(form.get("tags", "")))
    return RedirectResponse(f"/archive/sessions/{sid}#tags", status_code=303)


async def notetaker_summary(request: Request) -> Response:
    """A note-taker (through their invite link) writes or edits the summary of a session their
    invite covers, once it has ended."""
    svc = services(request)
    token = request.path_params["token"]
    session = await svc.programme.session(request.path_params["session_id"])
    invite = await svc.accounts.authorize_capture(token, session)
    page = await svc.archive.knowledge(session.id)  # 404 not_archived until the session ended
    if request.method == "POST":
        form = await request.form()
        await svc.archive.set_summary(session.id, str(form.get("summary", "")), invite.name)
        return RedirectResponse(f"/archive/sessions/{session.id}#summary", status_code=303)
    return render(
        request,
        "archive/summary_form.html",
        {"page": page, "session": session, "event": page.event, "token": token},
    )


async def tag_page(request: Request) -> Response:
    organiser = await current_organiser(request)
    page = await services(request).archive.tag_page(request.path_params["tag"])
    return render(request, "archive/tag.html", {"organiser": organiser, "page": page})


async def tags_page(request: Request) -> Response:
    organiser = await current_organiser(request)
    tags = await services(request).archive.top_tags(200)
    return render(request, "archive/tags.html", {"organiser": organiser, "tags": tags})


def _int(value: str | None, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    assert value is not None
    if not value.isdigit():
        raise BadRequest(f"{name} must be a whole number", code="invalid_field", field=name)
    return int(value)


async def search_page(request: Request) -> Response:
    organiser = await current_organiser(request)
    svc = services(request)
    params = request.query_params
    text = params.get("q", "")[:500]
    filters = {
        "event_id": params.get("event", ""),
        "tag": params.get("tag", ""),
        "kind": params.get("kind", ""),
        "date_from": params.get("from", ""),
        "date_to": params.get("to", ""),
    }
    page_no = _int(params.get("page"), "page", 1)
    query = svc.archive.query(text, page=page_no, **{k: v or None for k, v in filters.items()})
    result = await svc.archive.search(query) if query.terms else None
    events = await svc.programme.events()
    keep = {
        k: v
        for k, v in {
            "q": text,
            "event": filters["event_id"],
            "tag": filters["tag"],
            "kind": filters["kind"],
            "from": filters["date_from"],
            "to": filters["date_to"],
        }.items()
        if v
    }
    return render(
        request,
        "archive/search.html",
        {
            "organiser": organiser,
            "q": text,
            "filters": filters,
            "result": result,
            "page_no": page_no,
            "first_rank": query.offset + 1,
            "events": events,
            "kinds": SEARCH_KINDS,
            "highlight": highlight,
            "hit_url": hit_url,
            "prev_url": "/search?" + urlencode({**keep, "page": page_no - 1}) if page_no > 1 else None,
            "next_url": "/search?" + urlencode({**keep, "page": page_no + 1})
            if result and result.more
            else None,
        },
    )


async def event_archive_page(request: Request) -> Response:
    organiser = await current_organiser(request)
    svc = services(request)
    archive = await svc.archive.event_archive(request.path_params["event_id"])
    return render(
        request,
        "archive/event.html",
        {
            "organiser": organiser,
            **event_archive_context(archive),
            # A congress's archive is read a day (or a room, a track, a few words) at a time.
            "listing": listing(archive.sessions, request.query_params, svc.settings.archive.timezone),
            # Asks for a build when the kept books are not of this version; never builds here.
            "proceedings": svc.proceedings.status(archive) if svc.proceedings and archive.records else None,
        },
    )


async def proceedings_download(request: Request) -> Response:
    """The event's kept book, or 503 "being prepared" (the build runs in the background)."""
    svc = services(request)
    fmt = request.path_params["fmt"]
    if fmt not in MEDIA_TYPES or svc.proceedings is None:
        raise NotFound("There is no such download.")
    archive = await svc.archive.event_archive(request.path_params["event_id"])
    if not archive.records:
        raise NotFound("This event has no archived session yet.", code="not_archived")
    kept = svc.proceedings.kept(archive, fmt)
    if kept is None:
        svc.proceedings.status(archive)  # asks for the build if it is not under way
        raise Unavailable("The proceedings are being prepared: try again in a minute.", code="being_prepared")
    data = await asyncio.to_thread(kept.read_bytes)
    return _download(data, MEDIA_TYPES[fmt], f"{archive.event.id}-proceedings.{fmt}")


# -- exports -----------------------------------------------------------------------------------


def _download(body: str | bytes, media_type: str, filename: str | None = None) -> Response:
    headers = {"cache-control": "no-cache"}
    if filename:
        headers["content-disposition"] = f'inline; filename="{filename}"'
    return Response(body, media_type=media_type, headers=headers)


async def session_json(request: Request) -> Response:
    svc = services(request)
    session = await svc.programme.session(request.path_params["session_id"])
    doc = await svc.archive.export(session.event_id, [session.id])
    return JSONResponse(doc, headers={"content-disposition": f'inline; filename="{session.id}.json"'})


async def event_json(request: Request) -> Response:
    event_id = request.path_params["event_id"]
    doc = await services(request).archive.export(event_id)
    return JSONResponse(doc, headers={"content-disposition": f'inline; filename="{event_id}.json"'})


async def session_md(request: Request) -> Response:
    svc = services(request)
    sid = request.path_params["session_id"]
    page = await svc.archive.knowledge(sid)
    thread = await svc.comments.thread(sid)
    return _download(
        session_markdown(page, thread, base_url(request)), "text/markdown; charset=utf-8", f"{sid}.md"
    )


async def event_md(request: Request) -> Response:
    event_id = request.path_params["event_id"]
    archive = await services(request).archive.event_archive(event_id)
    return _download(
        event_markdown(archive, base_url(request)), "text/markdown; charset=utf-8", f"{event_id}.md"
    )


ATOM = "application/atom+xml; charset=utf-8"


def _atom(request: Request, title: str, feed_path: str, alt_path: str, entries: list[Entry]) -> Response:
    """An Atom feed whose id and alternate link are paths of this site, served as itself."""
    base = base_url(request)
    return _download(
        atom_feed(
            title=title,
            feed_id=f"{base}{feed_path}",
            self_url=str(request.url),
            alt_url=f"{base}{alt_path}",
            entries=entries,
        ),
        ATOM,
    )


async def event_feed(request: Request) -> Response:
    base = base_url(request)
    archive = await services(request).archive.event_archive(request.path_params["event_id"])
    archived = [s for s in archive.sessions if s.id in archive.records]
    archived.sort(key=lambda s: s.ended_at or s.updated_at, reverse=True)
    entries = [session_entry(base, s, archive.records[s.id].summary_html) for s in archived]
    where = f"/events/{archive.event.id}"
    return _atom(request, f"{archive.event.title}: knowledge pages", where, f"{where}/archive", entries)


async def tag_feed(request: Request) -> Response:
    base = base_url(request)
    svc = services(request)
    page = await svc.archive.tag_page(request.path_params["tag"])
    summaries = await svc.archive.summaries([s.id for s in page.sessions])
    entries = [
        session_entry(base, s, summaries.get(s.id, ""), page.events[s.event_id]) for s in page.sessions
    ]
    return _atom(request, f"#{page.tag}", f"/tags/{page.tag}", f"/tags/{page.tag}", entries)


async def comments_feed(request: Request) -> Response:
    base = base_url(request)
    event_id = request.path_params.get("event_id")
    svc = services(request)
    if event_id:
        await svc.programme.event(event_id)  # 404 for an unknown event
    found = await svc.archive.recent_comments(event_id)
    entries = [comment_entry(base, c, s.title) for c, s in found]
    where = f"/events/{event_id}" if event_id else ""
    return _atom(request, "New comments", f"{where}/comments", where or "/", entries)


async def sitemap_xml(request: Request) -> Response:
    base = base_url(request)
    entries = await services(request).archive.sitemap_entries()
    return Response(
        sitemap([(base + quote(path), lastmod) for path, lastmod in entries]),
        media_type="application/xml; charset=utf-8",
    )


async def replay_page(request: Request) -> Response:
    organiser = await current_organiser(request)
    svc = services(request)
    session = await svc.programme.session(request.path_params["session_id"])
    event = await svc.programme.event(session.event_id)
    return render(
        request,
        "archive/replay.html",
        {
            "organiser": organiser,
            "session": session,
            "event": event,
            "recording": recording_of(session),
            "session_start": start_utc(session, ZoneInfo(svc.settings.archive.timezone)),
        },
    )


async def _chapters(request: Request) -> tuple[Session, list[Chapter], ZoneInfo]:
    svc = services(request)
    zone = ZoneInfo(svc.settings.archive.timezone)
    page = await svc.archive.knowledge(request.path_params["session_id"])
    if recording_of(page.session) is None:
        raise NotFound("this session has no recording", code="no_recording")
    return page.session, page_chapters(page, zone), zone


async def chapters_vtt_file(request: Request) -> Response:
    """The recording's chapters as WebVTT: the page's <track kind="chapters">, and to download."""
    session, found, zone = await _chapters(request)
    return Response(chapters_vtt(found, session, zone), media_type="text/vtt; charset=utf-8")


async def chapters_txt_file(request: Request) -> Response:
    """The chapters as "00:12:34 Title" lines, for a YouTube or PeerTube description."""
    _, found, _ = await _chapters(request)
    return Response(chapters_text(found), media_type="text/plain; charset=utf-8")


async def replay_json(request: Request) -> Response:
    return JSONResponse(await services(request).archive.replay(request.path_params["session_id"]))


routes = [
    Route("/archive/sessions/{session_id}/replay.json", replay_json),
    Route("/archive/sessions/{session_id}/chapters.vtt", chapters_vtt_file),
    Route("/archive/sessions/{session_id}/chapters.txt", chapters_txt_file),
    Route("/archive/sessions/{session_id}/replay", replay_page),
    Route("/archive/sessions/{session_id}.json", session_json),
    Route("/archive/sessions/{session_id}.md", session_md),
    Route("/events/{event_id}/archive.json", event_json),
    Route("/events/{event_id}/archive.md", event_md),
    Route("/events/{event_id}/feed.atom", event_feed),
    Route("/events/{event_id}/comments.atom", comments_feed),
    Route("/tags/{tag}/feed.atom", tag_feed),
    Route("/comments.atom", comments_feed),
    Route("/sitemap.xml", sitemap_xml),
    # After the exports: "/archive/sessions/{session_id}" would also match "ID.json".
    Route("/archive/sessions/{session_id}", knowledge_page),
    Route("/archive/sessions/{session_id}/summary", edit_summary, methods=["POST"]),
    Route("/archive/sessions/{session_id}/tags", edit_tags, methods=["POST"]),
    Route("/n/{token}/sessions/{session_id}/summary", notetaker_summary, methods=["GET", "POST"]),
    Route("/tags", tags_page),
    Route("/tags/{tag}", tag_page),
    Route("/search", search_page),
    Route("/events/{event_id}/archive", event_archive_page),
    Route("/events/{event_id}/proceedings.{fmt}", proceedings_download),
]

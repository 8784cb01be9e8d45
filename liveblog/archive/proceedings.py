"""Proceedings: an event's archive as one book, EPUB 3 or PDF (`liveblog proceedings`, and the
download on the event's archive page, built in the background and kept until the archive changes).

Everything comes from the archive's read model (Archive.event_archive, Archive.knowledge) and
the stored sanitised HTML, re-serialised as XHTML. The same archive and build date give the same
bytes: fixed zip times, sorted entries, ids derived from the event, no clock but `built_at`.

    gather(archive, event) ──► Book ──► epub_bytes(book, built_at) / pdf_bytes(book, built_at)
    ProceedingsKeeper: page view ──► kept(archive, fmt)? ──► file │ request() ──► background build
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import pickle
import re
import sys
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from html import escape
from html.parser import HTMLParser
from itertools import groupby
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from liveblog.archive.charts import activity_chart, bar_chart
from liveblog.archive.service import Archive, EventArchive, KnowledgePage
from liveblog.errors import NotFound
from liveblog.lifecycle import Supervisor
from liveblog.models import Event
from liveblog.storage import Unit
from liveblog.text import plural, xml_chars

log = logging.getLogger(__name__)

FORMATS = ("epub", "pdf")
MEDIA_TYPES = {"epub": "application/epub+zip", "pdf": "application/pdf"}
# Part of every kept book's version: bump it when the books' layout changes, so that every
# book kept from before is built again.
LAYOUT = "1"
# Photos are downscaled to this longest side and re-encoded as JPEG: sharp on a reader's screen
# and on the page (at most 110 mm wide in the PDF: 230 dpi), at most ~160 KB each even for busy
# photos, so ~120 photos fit in the 20 MB an e-reader handles comfortably (bench/proceedings.py).
PHOTO_EDGE = 1000
PHOTO_QUALITY = 80
# Events carry no licence field: this line says what holds unless the organisers say otherwise.
DEFAULT_LICENCE = (
    "The notes, summaries and photos are the work of their authors, named in these credits, "
    "published by the organisers of {event}. All rights reserved unless the organisers state otherwise."
)
# Zip entries carry this time (the zip format's earliest), whatever the day of the build.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# A background build (both formats) taking longer than this is stopped and reported as failed:
# 40 sessions take well under a minute (docs/performance.md); ten times that means something is wrong.
BUILD_SECONDS = 600

CHART_FONT = 'font-family="system-ui, sans-serif"'  # as charts.py draws them
PDF_CHART_FONT = 'font-family="DejaVu Sans, sans-serif"'
_MEDIA = re.compile(r"/media/([A-Za-z0-9_-]+)")
_MEDIA_SRC = re.compile(r'\bsrc="/media/([A-Za-z0-9_-]+)"')
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Photo:
    id: str
    file: str  # inside the book: images/ID.jpg
    data: bytes


@dataclass
class Book:
    """What a book is made of, read once (picklable: a PDF is laid out in another process)."""

    event: Event
    pages: list[KnowledgePage]  # archived sessions, in programme order
    tags: dict[str, list[str]]  # tag -> session ids
    photos: dict[str, Photo]
    charts: list[tuple[str, str]]  # (caption, inline SVG): the event archive page's charts
    version: str
    base_url: str = ""
    timezone: str = "UTC"
    licence: str = ""


def proceedings_version(ea: EventArchive) -> str:
    """What a kept book is valid for: every archived session's stream position and record, the
    event and the layout. Any change to a session (a note edited, a tag, a comment) changes it."""
    parts: list[Any] = [LAYOUT, ea.event.to_wire()]
    for s in ea.sessions:
        record = ea.records.get(s.id)
        if record is not None:
            parts.append(
                [s.id, s.stream_epoch, s.last_seq, s.updated_at, record.updated_at, ea.tags.get(s.id, [])]
            )
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def event_charts(ea: EventArchive) -> list[tuple[str, str]]:
    """The event archive page's three charts (same functions, same titles)."""
    titles = {s.id: s.title for s in ea.sessions}
    contributions = [
        (titles[s.id], sum(ea.counts.get(s.id, {}).get(k, 0) for k in ("note", "social", "question")))
        for s in ea.sessions
        if s.id in ea.records
    ]
    return [
        (
            "Activity over the day",
            str(activity_chart(ea.activity, title="Items posted per quarter hour (UTC)")),
        ),
        (
            "Contributions per session",
            str(bar_chart(contributions, title="Notes, posts and questions per session")),
        ),
        (
            "Poll turnout",
            str(
                bar_chart(
                    [(q, v) for _, _, q, v in ea.turnout],
                    title="Voters per poll",
                    details=[titles.get(sid, "") for _, sid, _, _ in ea.turnout],
                )
            ),
        ),
    ]


def downscale(data: bytes) -> bytes:
    """A photo as a JPEG at most PHOTO_EDGE px on its longest side, without metadata (stored
    photos were already cleaned; this makes them book-sized)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        img.seek(0)
        # Before anything loads it: a JPEG is then decoded at 1/2, 1/4... of its size (DCT scaling).
        img.thumbnail((PHOTO_EDGE, PHOTO_EDGE))
        pic = ImageOps.exif_transpose(img)  # stored photos were turned upright already; a guard
        if pic.mode in ("RGBA", "LA", "P"):
            rgba = pic.convert("RGBA")
            pic = Image.new("RGB", rgba.size, "white")
            pic.paste(rgba, mask=rgba.getchannel("A"))
        elif pic.mode != "RGB":
            pic = pic.convert("RGB")
        out = io.BytesIO()
        pic.save(out, "JPEG", quality=PHOTO_QUALITY, optimize=True)
        return out.getvalue()


async def gather(
    archive: Archive,
    event_id: str,
    *,
    base_url: str = "",
    progress: Callable[[str, int], None] = lambda step, total: None,
) -> Book:
    """Read everything a book shows from the archive (`progress(step, total)` once per session)."""
    ea = await archive.event_archive(event_id)
    sessions = sorted(
        (s for s in ea.sessions if s.id in ea.records), key=lambda s: (s.starts_at, s.room, s.id)
    )
    if not sessions:
        raise NotFound(
            f"event {event_id!r} has no archived session yet: its proceedings would be empty",
            code="not_archived",
        )
    pages = []
    for s in sessions:
        pages.append(await archive.knowledge(s.id))
        progress(s.title, len(sessions))
    media_ids = sorted(
        {m for p in pages for n in p.note_items if not n.deleted for m in _MEDIA_SRC.findall(n.html)}
    )
    photos = {}
    for media_id in media_ids:
        found = await archive.db.read(_media_reader(media_id), pool="pages")
        if found is None:
            continue
        try:
            data = await asyncio.to_thread(downscale, found[1])
        except Exception:  # noqa: BLE001 - one unreadable photo becomes its alt text, not a failed book
            log.warning("photo %s could not be read for the proceedings; its alt text stands in", media_id)
            continue
        photos[media_id] = Photo(media_id, f"images/{media_id}.jpg", data)
    seen = {s.id: (s.last_seq, s.updated_at, ea.records[s.id].updated_at) for s in sessions}
    if any(
        seen[p.session.id] != (p.session.last_seq, p.session.updated_at, p.record.updated_at) for p in pages
    ):
        ea = await archive.event_archive(
            event_id
        )  # the archive's job synced tags meanwhile: the version moved on
    tags: dict[str, list[str]] = {}
    for p in pages:
        for t in p.tags:
            tags.setdefault(t, []).append(p.session.id)
    return Book(
        event=ea.event,
        pages=pages,
        tags=dict(sorted(tags.items())),
        photos=photos,
        charts=event_charts(ea),
        version=proceedings_version(ea),
        base_url=base_url.rstrip("/"),
        timezone=archive.settings.timezone,
        licence=DEFAULT_LICENCE.format(event=ea.event.title),
    )


def _media_reader(media_id: str) -> Callable[[Unit], Awaitable[tuple[str, bytes] | None]]:
    async def read(r: Unit) -> tuple[str, bytes] | None:
        return await r.get_media(media_id)

    return read


# -- HTML ---------------------------------------------------------------------------------------


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {k}="{escape(v)}"' for k, v in attrs.items())


class _Xhtml(HTMLParser):
    """Stored sanitised HTML re-serialised as XHTML (void elements closed, every tag closed,
    text escaped), with photos and site links made to work inside the book."""

    def __init__(self, image: Callable[[dict[str, str]], str], link: Callable[[str], str | None]) -> None:
        super().__init__(convert_charrefs=True)
        self.image, self.link = image, link
        self.out: list[str] = []
        self.open: list[tuple[str, bool]] = []  # (tag, written): a link dropped keeps its text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs if not k.startswith("on")}
        if tag == "img":
            self.out.append(self.image(a))
            return
        if "align" in a:  # obsolete in HTML5: the same as a style
            a["style"] = f"text-align: {a.pop('align')}"
        written = True
        if tag == "a":
            href = self.link(a.get("href", ""))
            written = href is not None
            a = {"href": href} if href is not None else {}
        if tag in _VOID:
            self.out.append(f"<{tag}{_attrs(a)}/>")
            return
        self.open.append((tag, written))
        if written:
            self.out.append(f"<{tag}{_attrs(a)}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or tag not in (t for t, _ in self.open):
            return
        while self.open:
            name, written = self.open.pop()
            if written:
                self.out.append(f"</{name}>")
            if name == tag:
                return

    def handle_data(self, data: str) -> None:
        self.out.append(escape(data, quote=False))

    def result(self) -> str:
        self.close()
        while self.open:
            name, written = self.open.pop()
            if written:
                self.out.append(f"</{name}>")
        return "".join(self.out)


class _Writer:
    """The book's parts as XHTML fragments, for one format: EPUB (a file per part, photos as
    files) or PDF (one document, photos inline)."""

    def __init__(self, book: Book, fmt: str) -> None:
        self.book, self.fmt = book, fmt
        self.zone = ZoneInfo(book.timezone)
        self.session_part = {p.session.id: f"s{n:03d}" for n, p in enumerate(book.pages, 1)}
        self.tag_anchor = {t: f"tag-{n}" for n, t in enumerate(book.tags, 1)}
        self.day_part = {
            d: f"day{n}" for n, d in enumerate(sorted({p.session.starts_at[:10] for p in book.pages}), 1)
        }

    def href(self, part: str, anchor: str = "") -> str:
        if self.fmt == "pdf":
            return f"#{anchor or part}"
        return f"{part}.xhtml" + (f"#{anchor}" if anchor else "")

    def photo_src(self, photo: Photo) -> str:
        if self.fmt == "pdf":
            import base64

            return "data:image/jpeg;base64," + base64.b64encode(photo.data).decode()
        return photo.file

    def chart(self, svg: str) -> str:
        """A chart as the pages draw it; in the PDF in the book's own font: WeasyPrint looks
        "system-ui" up for every text of a chart, which made the charts most of the layout time."""
        return svg.replace(CHART_FONT, PDF_CHART_FONT) if self.fmt == "pdf" else svg

    def _image(self, a: dict[str, str]) -> str:
        found = _MEDIA.fullmatch(a.get("src", ""))
        photo = self.book.photos.get(found.group(1)) if found else None
        alt = a.get("alt", "")
        if photo is None:
            return f'<span class="missing-photo">[photo{": " + escape(alt) if alt else ""}]</span>'
        return f'<img class="photo" src="{escape(self.photo_src(photo))}" alt="{escape(alt)}"/>'

    def _link(self, href: str) -> str | None:
        if href.startswith(("http://", "https://", "mailto:")):
            return href
        if href.startswith("/") and not href.startswith("//") and self.book.base_url:
            return self.book.base_url + href
        return None  # a page of this site with no public address, or a fragment: its text stays

    def html(self, stored: str) -> str:
        parser = _Xhtml(self._image, self._link)
        parser.feed(stored)
        return parser.result()

    def time(self, iso: str) -> str:
        """A stored UTC moment as the venue's wall-clock HH:MM."""
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        return moment.astimezone(self.zone).strftime("%H:%M")

    # -- parts: (id, title, body) -----------------------------------------------------------

    def parts(self) -> list[tuple[str, str, str]]:
        book = self.book
        out = [
            ("contents", f"{book.event.title}: proceedings", self.cover()),
            ("glance", "At a glance", self.glance()),
        ]
        for day, pages in groupby(book.pages, key=lambda p: p.session.starts_at[:10]):
            pages_of_day = list(pages)
            out.append((self.day_part[day], day_label(day), self.day(day, pages_of_day)))
            for page in pages_of_day:
                out.append((self.session_part[page.session.id], page.session.title, self.session(page)))
        out.append(("tags", "Tag index", self.tag_index()))
        out.append(("credits", "Credits", self.credits()))
        return out

    def cover(self) -> str:
        e = self.book.event
        dates = day_label(e.starts_on) + (
            f" to {day_label(e.ends_on)}" if e.ends_on and e.ends_on != e.starts_on else ""
        )
        nav_type = ' epub:type="toc"' if self.fmt == "epub" else ""
        lines = [
            '<section class="cover" id="contents">',
            f'<h1 class="title">{escape(e.title)}</h1>',
            '<p class="subtitle">Proceedings</p>',
            f'<p class="dates">{escape(dates)}</p>',
            f'<p class="venue">{escape(e.venue)}</p>' if e.venue else "",
            f'<p class="sessions">{plural(len(self.book.pages), "session")}</p>',
            f'<nav{nav_type} id="toc" aria-labelledby="toc-heading"><h2 id="toc-heading">Contents</h2><ol>',
            f'<li><a href="{self.href("glance")}">At a glance</a></li>',
        ]
        for day, pages in groupby(self.book.pages, key=lambda p: p.session.starts_at[:10]):
            lines.append(f'<li><a href="{self.href(self.day_part[day])}">{escape(day_label(day))}</a><ol>')
            by_room = sorted(pages, key=lambda p: (p.session.room, p.session.starts_at, p.session.id))
            for room, in_room in groupby(by_room, key=lambda p: p.session.room):
                lines.append(f"<li><span>{escape(room or 'No room given')}</span><ol>")
                for p in in_room:
                    s = p.session
                    lines.append(
                        f'<li><a href="{self.href(self.session_part[s.id])}">{escape(s.starts_at[11:16])} '
                        f"{escape(s.title)}</a></li>"
                    )
                lines.append("</ol></li>")
            lines.append("</ol></li>")
        lines.append(f'<li><a href="{self.href("tags")}">Tag index</a></li>')
        lines.append(f'<li><a href="{self.href("credits")}">Credits</a></li></ol></nav></section>')
        return "".join(lines)

    def glance(self) -> str:
        figures = "".join(
            f'<figure class="chart-fig"><figcaption>{escape(caption)}</figcaption>{self.chart(svg)}</figure>'
            for caption, svg in self.book.charts
        )
        return f'<section class="part" id="glance"><h1>At a glance</h1>{figures}</section>'

    def day(self, day: str, pages: list[KnowledgePage]) -> str:
        items = "".join(
            f'<li><a href="{self.href(self.session_part[p.session.id])}">{escape(p.session.starts_at[11:16])}'
            f"{' · ' + escape(p.session.room) if p.session.room else ''} · {escape(p.session.title)}</a></li>"
            for p in pages
        )
        return (
            f'<section class="part day" id="{self.day_part[day]}"><h1>{escape(day_label(day))}</h1>'
            f'<ul class="day-list">{items}</ul></section>'
        )

    def session(self, page: KnowledgePage) -> str:
        s = page.session
        part = self.session_part[s.id]
        when = f"{day_label(s.starts_at[:10])}, {s.starts_at[11:16]}–{s.ends_at[11:16]}"
        out = [
            f'<section class="session" id="{part}">',
            f"<h2>{escape(s.title)}</h2>",
            f'<p class="meta">{escape(when)}{" · " + escape(s.room) if s.room else ""}</p>',
        ]
        if s.speakers:
            out.append(f'<p class="speakers">Speakers: {escape(", ".join(s.speakers))}</p>')
        if page.record.summary_html:
            out.append(f'<h3>Summary</h3><div class="summary">{self.html(page.record.summary_html)}</div>')
        key_points = [i for i in page.key_points if not i.deleted]
        if key_points:
            out.append('<h3>Key points</h3><ul class="key-points">')
            out.extend(f"<li>{self.html(i.html)}</li>" for i in key_points)
            out.append("</ul>")
        notes = [i for i in page.note_items if not i.deleted]
        if notes:
            out.append("<h3>Notes</h3>")
            for i in notes:
                out.append(
                    f'<div class="note"><p class="note-meta">{self.time(i.typed_at)} · {escape(i.author)}</p>'
                    f"{self.html(i.html)}</div>"
                )
        polls = [p for p in page.polls if not p.item.deleted]
        if polls:
            out.append("<h3>Polls</h3>")
            for poll in polls:
                average = f" · average {poll.average}" if poll.average is not None else ""
                rows = "".join(
                    f'<tr><td>{escape(label)}</td><td class="num">{votes}</td>'
                    f'<td class="num">{round(share * 100)}%</td></tr>'
                    for label, votes, share in poll.rows
                )
                chart = self.chart(
                    str(bar_chart([(label, votes) for label, votes, _ in poll.rows], title=poll.item.body))
                )
                out.append(
                    f'<div class="poll"><p class="poll-question"><strong>{escape(poll.item.body)}</strong> '
                    f"· {poll.voter_text}{average}</p>"
                    f'<table><thead><tr><th scope="col">Answer</th><th scope="col">Votes</th>'
                    f'<th scope="col">Share</th></tr></thead><tbody>{rows}</tbody></table>{chart}</div>'
                )
        answered = [q for q in page.questions if (q.answered or q.later is not None) and not q.item.deleted]
        if answered:
            out.append("<h3>Questions and answers</h3>")
            for q in answered:
                if q.later is not None and not q.answered:
                    answer = (
                        f'<p class="later"><em>Answered after the talk by {escape(q.later.author)}, '
                        f"{escape(q.later.answered_at[:10])}:</em></p>{self.html(q.later.html)}"
                    )
                elif q.answer is not None and not q.answer.deleted:
                    answer = self.html(q.answer.html)
                else:
                    answer = "<p>Answered in the session.</p>"
                out.append(
                    f'<div class="qa"><p class="question"><strong>Q:</strong> {escape(q.item.body)} '
                    f'<span class="votes">({plural(q.votes, "vote")})</span></p>'
                    f'<div class="answer">{answer}</div></div>'
                )
        if page.tags:
            links = ", ".join(
                f'<a href="{self.href("tags", self.tag_anchor[t])}">#{escape(t)}</a>' for t in page.tags
            )
            out.append(f'<p class="tags">Tags: {links}</p>')
        out.append("</section>")
        return "".join(out)

    def tag_index(self) -> str:
        titles = {p.session.id: p.session.title for p in self.book.pages}
        entries = "".join(
            f'<li id="{self.tag_anchor[t]}"><strong>#{escape(t)}</strong>: '
            + ", ".join(
                f'<a href="{self.href(self.session_part[sid])}">{escape(titles[sid])}</a>' for sid in sids
            )
            + "</li>"
            for t, sids in self.book.tags.items()
        )
        body = f'<ul class="tag-index">{entries}</ul>' if entries else "<p>No session has a tag.</p>"
        return f'<section class="part" id="tags"><h1>Tag index</h1>{body}</section>'

    def credits(self) -> str:
        takers = sorted(
            {i.author for p in self.book.pages for i in p.note_items if not i.deleted and i.author},
            key=str.casefold,
        )
        summaries = sorted(
            {p.record.summary_by for p in self.book.pages if p.record.summary_by} - set(takers),
            key=str.casefold,
        )
        people = "".join(f"<li>{escape(name)}</li>" for name in takers) or "<li>No notes were taken.</li>"
        extra = f"<p>Summaries also by {escape(', '.join(summaries))}.</p>" if summaries else ""
        return (
            f'<section class="part" id="credits"><h1>Credits</h1><h2 class="plain">Note-takers</h2>'
            f'<ul class="people">{people}</ul>{extra}<p class="licence">{escape(self.book.licence)}</p>'
            f'<p class="colophon">Made with Liveblog from the archive of {escape(self.book.event.title)}'
            f" (archive version {self.book.version}).</p></section>"
        )


def day_label(day: str) -> str:
    """'2026-05-14' -> 'Thursday 14 May 2026' (English, like the rest of the interface)."""
    try:
        d = date.fromisoformat(day[:10])
    except ValueError:
        return day
    return f"{DAYS[d.weekday()]} {d.day} {MONTH_NAMES[d.month - 1]} {d.year}"


DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

STYLE = """
body { font-family: "DejaVu Serif", Georgia, serif; line-height: 1.45; color: #1f2937; }
h1, h2, h3 { font-family: "DejaVu Sans", Helvetica, sans-serif; line-height: 1.2; }
.cover .title { font-size: 2.2em; margin-top: 2em; }
.cover .subtitle { font-size: 1.4em; color: #4b5563; }
.cover nav ol { list-style: none; padding-left: 1em; }
.meta, .speakers, .note-meta, .votes, .colophon { color: #4b5563; font-size: 0.9em; }
.note { margin: 0.6em 0; }
.note-meta { margin-bottom: 0.1em; }
.photo { max-width: 100%; height: auto; }
.missing-photo { font-style: italic; color: #4b5563; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { border: 1px solid #d1d5db; padding: 0.2em 0.5em; text-align: left; }
td.num { text-align: right; }
svg.chart { max-width: 100%; height: auto; }
.qa .answer { margin-left: 1.5em; }
figure { margin: 1em 0; }
"""

PRINT_STYLE = """
@page { size: A4; margin: 18mm 16mm; @bottom-center { content: counter(page); font-size: 8pt; } }
body { font-size: 10pt; line-height: 1.35; }
p { margin: 0.3em 0; }
.photo { display: block; max-width: 110mm; max-height: 75mm; width: auto; }
.note { margin: 0.4em 0; page-break-inside: avoid; }
svg.chart { max-height: 90mm; }
h1, h2, h3, h4, h5, h6 { bookmark-level: none; }
.part > h1 { bookmark-level: 1; page-break-before: always; }
.session > h2 { bookmark-level: 2; }
.session { page-break-before: always; }
.cover .title { bookmark-level: 1; }
a { color: inherit; }
"""


# -- EPUB -----------------------------------------------------------------------------------------


def book_language(event: Event) -> str:
    return event.language if event.language and event.language != "none" else "en"


def _xhtml_document(title: str, body: str, lang: str) -> str:
    # Stored text from before characters XML forbids were dropped at input is cleaned here, as the
    # Atom feeds clean it as they are written (liveblog.text.xml_chars).
    return xml_chars(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" lang="{lang}"'
        f' xml:lang="{lang}">\n<head><meta charset="utf-8"/><title>{escape(title)}</title>'
        '<link rel="stylesheet" type="text/css" href="style.css"/></head>\n'
        f"<body>{body}</body>\n</html>\n"
    )


def _moment(built_at: datetime) -> str:
    return built_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epub_bytes(book: Book, built_at: datetime) -> bytes:
    """The book as EPUB 3 (zip with the mimetype first and stored; every entry at ZIP_TIME)."""
    writer = _Writer(book, "epub")
    lang = book_language(book.event)
    files: dict[str, bytes] = {"OEBPS/style.css": STYLE.lstrip().encode()}
    manifest = ['<item id="css" href="style.css" media-type="text/css"/>']
    spine = []
    for part, title, body in writer.parts():
        files[f"OEBPS/{part}.xhtml"] = _xhtml_document(title, body, lang).encode()
        props = " ".join(p for p, on in (("nav", part == "contents"), ("svg", "<svg" in body)) if on)
        manifest.append(
            f'<item id="{part}" href="{part}.xhtml" media-type="application/xhtml+xml"'
            + (f' properties="{props}"' if props else "")
            + "/>"
        )
        spine.append(f'<itemref idref="{part}"/>')
    for photo in sorted(book.photos.values(), key=lambda p: p.id):
        files[f"OEBPS/{photo.file}"] = photo.data
        manifest.append(f'<item id="img-{photo.id}" href="{photo.file}" media-type="image/jpeg"/>')
    identifier = uuid.uuid5(uuid.NAMESPACE_URL, f"liveblog:proceedings:{book.event.id}")
    e = book.event
    opf = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="book-id" xml:lang="{lang}">\n'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f'<dc:identifier id="book-id">urn:uuid:{identifier}</dc:identifier>\n'
        f"<dc:title>{escape(e.title)}: proceedings</dc:title>\n"
        f"<dc:language>{lang}</dc:language>\n"
        + (f"<dc:date>{escape(e.starts_on)}</dc:date>\n" if e.starts_on else "")
        + f"<dc:rights>{escape(book.licence)}</dc:rights>\n"
        f'<meta property="dcterms:modified">{_moment(built_at)}</meta>\n'
        "</metadata>\n<manifest>\n" + "\n".join(manifest) + "\n</manifest>\n"
        "<spine>\n" + "\n".join(spine) + "\n</spine>\n</package>\n"
    )
    files["OEBPS/content.opf"] = xml_chars(opf).encode()
    files["META-INF/container.xml"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">\n'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles>\n</container>\n"
    ).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        # The mimetype first and stored, as the OCF spec requires (readers sniff it at offset 38).
        z.writestr(_entry("mimetype", zipfile.ZIP_STORED), b"application/epub+zip")
        for name in sorted(files):
            z.writestr(_entry(name, zipfile.ZIP_DEFLATED), files[name], compresslevel=6)
    return out.getvalue()


def _entry(name: str, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    info.create_system = 3  # Unix, whatever machine builds it
    return info


# -- PDF ------------------------------------------------------------------------------------------


def pdf_html(book: Book, built_at: datetime) -> str:
    """The whole book as one HTML document for WeasyPrint."""
    writer = _Writer(book, "pdf")
    lang = book_language(book.event)
    moment = _moment(built_at)
    body = "".join(body for _, _, body in writer.parts())
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"/>'
        f"<title>{escape(book.event.title)}: proceedings</title>"
        f'<meta name="dcterms.created" content="{moment}"/><meta name="dcterms.modified" content="{moment}"/>'
        f'<meta name="dcterms.rights" content="{escape(book.licence)}"/>'
        f"<style>{STYLE}{PRINT_STYLE}</style></head><body>{body}</body></html>"
    )


def pdf_bytes(book: Book, built_at: datetime) -> bytes:
    """The book as a tagged PDF (PDF/UA-1: structure tags, the title shown, bookmarks from the
    h1/h2 bookmark levels, real text); its file identifier comes from the archive's version."""
    import weasyprint

    pdf = weasyprint.HTML(string=pdf_html(book, built_at)).write_pdf(
        pdf_variant="pdf/ua-1",
        pdf_tags=True,
        pdf_identifier=hashlib.sha256(f"{book.event.id}:{book.version}".encode()).hexdigest()[:32].encode(),
    )
    assert pdf is not None
    return bytes(pdf)


def render(book: Book, fmt: str, built_at: datetime) -> bytes:
    if fmt == "epub":
        return epub_bytes(book, built_at)
    if fmt == "pdf":
        return pdf_bytes(book, built_at)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


# -- kept books, built in the background ---------------------------------------------------------


@dataclass
class ProceedingsKeeper:
    """Keeps each event's books as files in `directory` (`<event hash>-<version>.<fmt>`), built
    in the background when asked for a version not kept; older versions are removed once the
    new one is there. Page views only look (`kept`) and ask (`request`): they never build."""

    archive: Archive
    directory: Path
    base_url: str = ""
    name: str = "proceedings"
    pending: dict[str, None] = field(default_factory=dict)  # event ids, in the order asked
    failed: dict[str, str] = field(default_factory=dict)  # event id -> the version that failed
    built: int = 0
    last_error: str | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _supervisor: Supervisor | None = None

    def path(self, event_id: str, version: str, fmt: str) -> Path:
        stem = hashlib.sha256(event_id.encode()).hexdigest()[:16]
        return self.directory / f"{stem}-{version}.{fmt}"

    def kept(self, ea: EventArchive, fmt: str) -> Path | None:
        """The book of this archive's version, if it is built."""
        found = self.path(ea.event.id, proceedings_version(ea), fmt)
        return found if found.is_file() else None

    def status(self, ea: EventArchive) -> str:
        """ "ready" (every format kept), "failed" (this version could not be built) or
        "preparing" (asked for now, if it was not)."""
        version = proceedings_version(ea)
        if all(self.path(ea.event.id, version, fmt).is_file() for fmt in FORMATS):
            return "ready"
        if self.failed.get(ea.event.id) == version:
            return "failed"
        self.request(ea.event.id)
        return "preparing"

    def request(self, event_id: str) -> None:
        self.pending[event_id] = None
        self._wake.set()

    async def open(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        supervisor.spawn("proceedings.build", self.run)

    async def close(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.stop("proceedings.build")

    def health(self) -> dict[str, Any]:
        return {"ok": True, "pending": len(self.pending), "built": self.built, "last_error": self.last_error}

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                event_id = next(iter(self.pending))
                del self.pending[event_id]
                await self.build(event_id)

    async def build(self, event_id: str) -> None:
        """Build every format of the event's current version not yet kept, then drop older ones.
        The layout runs in a process of its own (so the server's event loop keeps its core),
        killed if this task is cancelled (shutdown) or the build takes over BUILD_SECONDS."""
        version = ""
        try:
            ea = await self.archive.event_archive(event_id)
            version = proceedings_version(ea)
            if all(self.path(event_id, version, fmt).is_file() for fmt in FORMATS):
                return
            book = await gather(self.archive, event_id, base_url=self.base_url)
            self.directory.mkdir(parents=True, exist_ok=True)
            targets = {fmt: self.path(event_id, book.version, fmt) for fmt in FORMATS}
            temps = {fmt: target.with_name(target.name + ".part") for fmt, target in targets.items()}
            payload = pickle.dumps((book, datetime.now(timezone.utc), {f: str(t) for f, t in temps.items()}))
            async with asyncio.timeout(BUILD_SECONDS):
                await _run_worker(payload)
            for fmt, temp in temps.items():
                temp.replace(targets[fmt])  # whole or not at all: a reader never gets half a book
        except Exception as exc:  # noqa: BLE001 - one event's failure must not stop the others' builds
            log.exception("the proceedings of %s could not be built", event_id)
            self.failed[event_id] = version
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            return
        self.built += 1
        self.failed.pop(event_id, None)
        stem = self.path(event_id, book.version, "x").name.split("-")[0]
        for old in self.directory.glob(f"{stem}-*"):
            if f"-{book.version}." not in old.name:
                old.unlink(missing_ok=True)


# The layout process: reads (book, built_at, {format: path}) pickled on its standard input.
WORKER = "from liveblog.archive.proceedings import worker_main; worker_main()"


async def _run_worker(payload: bytes) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await proc.communicate(payload)
    except BaseException:  # cancelled or timed out: the process goes too
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(
            f"the layout process exited with {proc.returncode}: {err.decode(errors='replace')[-400:]}"
        )


def worker_main() -> None:
    book, built_at, paths = pickle.load(sys.stdin.buffer)
    for fmt, path in paths.items():
        Path(path).write_bytes(render(book, fmt, built_at))

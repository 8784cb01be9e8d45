"""Exports that outlive the server: JSON (a documented, versioned schema; imported back with
nothing lost), Markdown, Atom feeds, schema.org JSON-LD and a sitemap. Everything is built from
storage reads alone."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from liveblog.archive.comments import Thread, ThreadNode
from liveblog.archive.service import EventArchive, KnowledgePage
from liveblog.errors import NotFound
from liveblog.models import EXPORT_FORMAT, EXPORT_VERSION, Comment, Event, Item, Session, utcnow
from liveblog.storage import Store, Unit
from liveblog.text import plural, xml_chars

FORMAT = EXPORT_FORMAT  # the format name and schema version live in models: imports check them


# -- JSON --------------------------------------------------------------------------------------


def _encode_media(bundle: dict[str, Any]) -> dict[str, Any]:
    media = [
        {k: v for k, v in m.items() if k != "bytes"} | {"data_base64": base64.b64encode(m["bytes"]).decode()}
        for m in bundle["media"]
    ]
    return bundle | {"media": media}


async def export_json(db: Store, event_id: str, session_ids: list[str] | None = None) -> dict[str, Any]:
    """An event (or some of its sessions) as the versioned JSON export, read in one snapshot."""

    async def read(r: Unit) -> dict[str, Any]:
        event = await r.export_event_row(event_id)
        if event is None:
            raise NotFound(f"no event {event_id!r}")
        ids = session_ids if session_ids is not None else [s.id for s in await r.list_sessions(event_id)]
        sessions = []
        for sid in ids:
            bundle = await r.export_session_rows(sid)
            if bundle is None or bundle["session"]["event_id"] != event_id:
                raise NotFound("There is no such session.", code="unknown_session")
            sessions.append(_encode_media(bundle))
        feed = await r.get_event_feed(event_id) if session_ids is None else None
        feed_bundle = await r.export_session_rows(feed.id) if feed is not None else None
        # The moderation ledger of what is exported: the whole event's, or those sessions'.
        ledger = [
            e.to_export()
            for e in reversed(await r.moderation_log(event_id))
            if session_ids is None or e.session_id in ids
        ]
        return {
            "format": FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": utcnow(),
            "event": event,
            "comment_premoderation": await r.event_premoderation(event_id),
            # The fediverse: the organisers' switch and the handles they chose (of what is exported).
            "federation": {
                "enabled": await r.federation_on(event_id),
                "handles": [
                    h
                    for h in await r.chosen_handles(event_id)
                    if h["kind"] == "event" or session_ids is None or h["id"] in ids
                ],
            },
            "sessions": sessions,
            # The event's own feed ("Around the event"), in a session's shape; absent when it has none.
            **({"event_feed": _encode_media(feed_bundle)} if feed_bundle is not None else {}),
            "moderation": ledger,
        }

    return await db.read(read, pool="pages")


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """An export without the moment it was made: two exports of the same data compare equal."""
    return {k: v for k, v in doc.items() if k != "exported_at"}


# -- Markdown ----------------------------------------------------------------------------------


def _md_lines(text: str, prefix: str = "") -> str:
    return "\n".join(prefix + line if line else prefix.rstrip() for line in text.strip().splitlines())


def reactions_text(counts: dict[str, int]) -> str:
    """A note's likes and boosts on the fediverse in words: '3 likes and 1 boost on the fediverse'."""
    said = [
        plural(n, word)
        for kind, word in (("Like", "like"), ("Announce", "boost"))
        if (n := counts.get(kind, 0))
    ]
    return " and ".join(said) + " on the fediverse"


def session_markdown(page: KnowledgePage, thread: Thread | None, base_url: str = "") -> str:
    s, e = page.session, page.event
    out = [f"# {s.title}", ""]
    meta = [f"{s.starts_at[:10]} {s.starts_at[11:16]}–{s.ends_at[11:16]}"]
    if s.room:
        meta.append(s.room)
    if s.speakers:
        meta.append(", ".join(s.speakers))
    out += [f"*{e.title}* · " + " · ".join(meta), ""]
    if page.tags:
        out += ["Tags: " + " ".join(f"#{t}" for t in page.tags), ""]
    out += [f"Permanent page: {base_url}/archive/sessions/{s.id}", ""]
    out += ["## Summary", "", page.record.summary.strip() or "_No summary._", ""]
    out += ["## Key points", ""]
    out += [f"- {' '.join(i.body.split())}" for i in page.key_points] or ["_None._"]
    out += ["", "## Notes", ""]
    for i in page.note_items:
        star = " ★" if i.key_point else ""
        out += [f"### {i.typed_at[11:16]} · {i.author}{star} {{#item-{i.id}}}", "", i.body.strip(), ""]
        if counts := page.reactions.get(i.id):  # as the knowledge page shows them
            out += [f"_{reactions_text(counts)}_", ""]
    if page.post_items:
        out += ["## Social posts", ""]
        for i in page.post_items:
            out += [
                f"- **{i.author}**: {' '.join(i.body.split())}"
                + (f" ({i.data['url']})" if i.data.get("url") else "")
            ]
        out.append("")
    if page.polls:
        out += ["## Polls", ""]
        for p in page.polls:
            out += [
                f"### {p.item.body}",
                "",
                p.voter_text + (f", average {p.average}" if p.average else ""),
                "",
                "| Answer | Votes | Share |",
                "| --- | ---: | ---: |",
            ]
            out += [f"| {label} | {votes} | {round(share * 100)}% |" for label, votes, share in p.rows]
            out.append("")
    if page.questions:
        out += ["## Questions", ""]
        for q in page.questions:
            out.append(
                f"- **{plural(q.votes, 'vote')}** {' '.join(q.item.body.split())}"
                + (" *(answered)*" if q.answered else " *(answered after the talk)*" if q.later else "")
            )
            if q.answer is not None:
                out.append(_md_lines(q.answer.body, "  > "))
            if q.later is not None:
                out.append(f"  > *Answered after the talk by {q.later.author}, {q.later.answered_at[:10]}:*")
                out.append(_md_lines(q.later.body, "  > "))
        out.append("")
    if thread is not None and thread.roots:
        out += ["## Comments", ""]

        def walk(nodes: list[ThreadNode], depth: int) -> None:
            for n in nodes:
                c = n.comment
                text = " ".join(c.body.split()) if c.public else "_(removed)_"
                who = f"**{c.author}** " if c.public else ""
                out.append("  " * depth + f"- {who}{c.created_at[:16].replace('T', ' ')}: {text}")
                walk(n.replies, depth + 1)

        walk(thread.roots, 0)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def event_markdown(archive: EventArchive, base_url: str = "") -> str:
    e = archive.event
    out = [
        f"# {e.title}",
        "",
        f"{e.starts_on}"
        + (f" to {e.ends_on}" if e.ends_on != e.starts_on else "")
        + (f" · {e.venue}" if e.venue else ""),
        "",
    ]
    if e.description:
        out += [e.description, ""]
    if archive.top_tags:
        out += ["Top tags: " + " ".join(f"#{t} ({n})" for t, n in archive.top_tags), ""]
    for s in archive.sessions:
        counts = archive.counts.get(s.id, {})
        out += [
            f"## {s.title}",
            "",
            f"{s.starts_at[:10]} {s.starts_at[11:16]}–{s.ends_at[11:16]}"
            + (f" · {s.room}" if s.room else "")
            + (f" · {', '.join(s.speakers)}" if s.speakers else ""),
            "",
            f"{plural(counts.get('note', 0), 'note')} · {plural(counts.get('social', 0), 'post')} · "
            f"{plural(counts.get('votes', 0) + counts.get('upvotes', 0), 'vote')} · "
            f"{plural(counts.get('question', 0), 'question')} · {plural(counts.get('comments', 0), 'comment')}",
            "",
        ]
        record = archive.records.get(s.id)
        if record is not None:
            if record.summary:
                out += [record.summary.strip(), ""]
            out += [f"{base_url}/archive/sessions/{s.id}", ""]
        else:
            out += ["_Not archived yet._", ""]
    if archive.event_posts:
        out += ["## Around the event", "", "Posts under the event's hashtags while no session was live.", ""]
        for i in archive.event_posts:
            out += [
                f"- {i.typed_at[:16].replace('T', ' ')} **{i.author}**: {' '.join(i.body.split())}"
                + (f" ({i.data['url']})" if i.data.get("url") else "")
            ]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# -- Atom --------------------------------------------------------------------------------------


@dataclass
class Entry:
    id: str
    title: str
    url: str
    updated: str
    html: str
    author: str = ""


def atom_time(iso: str) -> str:
    """Programme times are venue wall-clock without a zone; Atom needs one: read them as UTC."""
    if not iso:
        return "1970-01-01T00:00:00Z"
    if iso.endswith("Z") or "+" in iso[10:]:
        return iso
    return (iso + ":00Z") if len(iso) == 16 else iso + "Z"


def atom_feed(*, title: str, feed_id: str, self_url: str, alt_url: str, entries: list[Entry]) -> str:
    updated = max((atom_time(e.updated) for e in entries), default=atom_time(utcnow()))
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(title)}</title>",
        f"<id>{escape(feed_id)}</id>",
        f"<updated>{updated}</updated>",
        f'<link rel="self" href={quoteattr(self_url)}/>',
        f'<link rel="alternate" href={quoteattr(alt_url)}/>',
        "<generator>Liveblog</generator>",
    ]
    for e in entries:
        parts += [
            "<entry>",
            f"<title>{escape(e.title)}</title>",
            f"<id>{escape(e.id)}</id>",
            f"<updated>{atom_time(e.updated)}</updated>",
            f'<link rel="alternate" href={quoteattr(e.url)}/>',
            f"<author><name>{escape(e.author or 'Liveblog')}</name></author>",
            f'<content type="html">{escape(e.html)}</content>',
            "</entry>",
        ]
    parts.append("</feed>")
    return xml_chars("\n".join(parts) + "\n")  # also from text stored before input dropped them


def session_entry(base: str, session: Session, summary_html: str, event: Event | None = None) -> Entry:
    url = f"{base}/archive/sessions/{session.id}"
    title = session.title + (f" ({event.title})" if event else "")
    html = summary_html or f"<p>{escape(session.description or session.title)}</p>"
    return Entry(
        id=url,
        title=title,
        url=url,
        updated=session.ended_at or session.updated_at,
        html=html,
        author=", ".join(session.speakers),
    )


def comment_entry(base: str, comment: Comment, session_title: str) -> Entry:
    url = f"{base}/sessions/{comment.session_id}#comment-{comment.id}"
    return Entry(
        id=f"{base}/comments/{comment.id}",
        title=f"{comment.author} on {session_title}",
        url=url,
        updated=comment.updated_at,
        html=comment.html,
        author=comment.author,
    )


# -- schema.org JSON-LD ------------------------------------------------------------------------


def _iso(moment: str) -> str:
    return atom_time(moment)


def jsonld_live(
    session: Session, event: Event, items: list[Item], url: str, limit: int = 50
) -> dict[str, Any]:
    """A live session: LiveBlogPosting with its latest updates."""
    updates = [i for i in items if i.kind in ("note", "social")][-limit:]
    return {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "@id": url,
        "url": url,
        "headline": session.title,
        "description": session.description or f"Live notes from {session.title} at {event.title}",
        "coverageStartTime": _iso(session.starts_at),
        "coverageEndTime": _iso(session.ends_at),
        "about": {
            "@type": "Event",
            "name": session.title,
            "startDate": session.starts_at,
            "endDate": session.ends_at,
            "location": {"@type": "Place", "name": session.room or event.venue or event.title},
            "superEvent": {"@type": "Event", "name": event.title},
        },
        "liveBlogUpdate": [
            {
                "@type": "BlogPosting",
                "@id": f"{url}#item-{i.id}",
                "url": f"{url}#item-{i.id}",
                "headline": " ".join(i.body.split())[:110] or session.title,
                "articleBody": i.body,
                "datePublished": _iso(i.typed_at),
                "dateModified": _iso(i.updated_at),
                "author": {"@type": "Person", "name": i.author or "Note-taker"},
            }
            for i in reversed(updates)
        ],
    }


def jsonld_article(page: KnowledgePage, url: str) -> dict[str, Any]:
    """A finished session's knowledge page: an Article, published by its event (with the site's
    logo as the event's logo and the article's image: what structured-data checkers require)."""
    s, e = page.session, page.event
    import re

    summary = re.sub(r"<[^>]+>", " ", page.record.summary_html)
    base = url.rsplit("/archive/sessions/", 1)[0]
    logo = {"@type": "ImageObject", "url": f"{base}/static/favicon.svg"}
    return {
        "@context": "https://schema.org",
        "@type": "Article",
        "@id": url,
        "url": url,
        "mainEntityOfPage": url,
        "headline": s.title,
        "description": " ".join(summary.split())[:300] or s.description or s.title,
        "datePublished": _iso(s.ended_at or s.ends_at),
        "dateModified": _iso(max(page.record.updated_at, s.updated_at)),
        "keywords": page.tags,
        "author": [{"@type": "Person", "name": n} for n in s.speakers]
        or {"@type": "Organization", "name": e.title},
        "about": {
            "@type": "Event",
            "name": s.title,
            "startDate": s.starts_at,
            "endDate": s.ends_at,
            "location": {"@type": "Place", "name": s.room or e.venue or e.title},
            "superEvent": {"@type": "Event", "name": e.title},
        },
        "isPartOf": {"@type": "CreativeWorkSeries", "name": e.title},
        "publisher": {"@type": "Organization", "name": e.title, "url": f"{base}/events/{e.id}", "logo": logo},
        "image": logo["url"],
        "wordCount": page.word_count,
    }


def jsonld_script(data: dict[str, Any]) -> str:
    """JSON for a <script type="application/ld+json">: '<' escaped so no text can end the element."""
    return (
        json.dumps(data, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


# -- sitemap -----------------------------------------------------------------------------------


def sitemap(urls: list[tuple[str, str]]) -> str:
    """(loc, lastmod) pairs as a sitemaps.org urlset."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    for loc, lastmod in urls:
        parts.append(
            f"<url><loc>{escape(loc)}</loc>"
            + (f"<lastmod>{escape(lastmod[:10])}</lastmod>" if lastmod else "")
            + "</url>"
        )
    parts.append("</urlset>")
    return xml_chars("\n".join(parts) + "\n")

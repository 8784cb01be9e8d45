"""`liveblog export-site EVENT DIR`: an event's archive as a folder of plain HTML, CSS and
images that works from any web host or opened from disk. The pages are the server's own
templates rendered in "static" mode (no forms, no live scripts), then every link is made
relative; a link to something not in the folder becomes plain text, so none is broken. Search
works offline: a small prebuilt index (search-index.js) and a script (offline-search.js)."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from liveblog.archive.comments import Thread
from liveblog.archive.exports import event_markdown, session_markdown
from liveblog.errors import BadRequest
from liveblog.models import SNOWBALL_ALGORITHMS
from liveblog.paths import UnsafePath, resource_dir, safe_join
from liveblog.services import Services
from liveblog.web.archive import Cards, event_archive_context, knowledge_context, plain_text
from liveblog.web.federation import is_handle

# Characters of each item kept in the offline index: enough to find it and show a snippet,
# small enough that a 40-session event's index stays a few MB.
INDEX_TEXT_CHARS = 400
_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif"}
_ATTR = re.compile(r'(?P<attr>\b(?:href|src|action))="(?P<url>/[^"]*)"')
_ANCHOR = re.compile(r'<a\b[^>]*\bhref="(?P<url>/[^"]*)"[^>]*>(?P<inner>.*?)</a>', re.S)
_LINK_TAG = re.compile(r'<link\b[^>]*\bhref="(?P<url>/[^"]*)"[^>]*>')
_IMG = re.compile(r'<img\b[^>]*\bsrc="(?P<url>/[^"]*)"[^>]*>')
_ALT = re.compile(r'\balt="([^"]*)"')
_MEDIA_SRC = re.compile(r'\bsrc="/media/([A-Za-z0-9_-]+)"')


def _media_of(item: Any) -> set[str]:
    """Photos an item shows: a note's uploads, and the images and avatar a post was fetched with."""
    return set(item.data.get("media", [])) | set(_MEDIA_SRC.findall(item.html))


class SiteMap:
    """Server paths -> files in the export (POSIX paths relative to its root)."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    def add(self, server_path: str, file: str) -> None:
        self.files[server_path] = file

    def resolve(self, url: str, here: str) -> str | None:
        """The relative link from file `here` for a server URL, or None when it is not exported."""
        path, _, fragment = url.partition("#")
        path = path.split("?", 1)[0]
        target = self.files.get(path)
        if target is None:
            return None
        rel = posixpath.relpath(target, posixpath.dirname(here) or ".")
        return rel + (f"#{fragment}" if fragment else "")

    def relink(self, html: str, here: str) -> str:
        html = _LINK_TAG.sub(lambda m: m.group(0) if self.resolve(m["url"], here) else "", html)

        def image(m: re.Match[str]) -> str:
            if self.resolve(m["url"], here):
                return m.group(0)
            alt = _ALT.search(m.group(0))
            return f'<span class="missing-photo">[photo{": " + alt.group(1) if alt and alt.group(1) else ""}]</span>'

        html = _IMG.sub(image, html)
        html = _ANCHOR.sub(
            lambda m: m.group(0) if self.resolve(m["url"], here) else f"<span>{m['inner']}</span>", html
        )

        def attr(m: re.Match[str]) -> str:
            rel = self.resolve(m["url"], here)
            return f'{m["attr"]}="{rel}"' if rel is not None else f'{m["attr"]}="#"'

        return _ATTR.sub(attr, html)


_STATIC_FILES = ("css/liveblog.css", "css/archive.css", "js/offline-search.js", "favicon.svg")


# What stands in for a fediverse replier with no avatar, as on the server (/ap/avatars/ID).
_FEDIVERSE_ICON = "fediverse-icon.png"


def _shown_repliers(thread: Thread) -> set[int]:
    """The accounts of the fediverse replies a thread shows (with an avatar beside each)."""
    found: set[int] = set()
    nodes = list(thread.roots)
    while nodes:
        node = nodes.pop()
        nodes.extend(node.replies)
        if node.comment.public and is_handle(node.comment.author):
            found.add(node.comment.account_id)
    return found


def _stemmer_files(algorithm: str | None) -> tuple[str, ...]:
    """The vendored Snowball scripts a search in this language needs (none for "none")."""
    if algorithm is None:
        return ()
    return ("js/snowball/base-stemmer.js", f"js/snowball/{algorithm}-stemmer.js", "js/snowball/COPYING")


async def offline_index(
    services: Services, event_id: str, sessions: dict[str, str], event_posts: list[Any]
) -> list[dict[str, str]]:
    """The offline search's entries: every row the server's search index holds for the event
    whose page is in the site (the same documents, so the same matches), each with its words
    stemmed as the server stems them (`w`: title, body and tags, " | " between them), its link
    (`u`), its session (`s`), kind (`k`) and the start of its text for the result (`x`)."""
    feed = {str(item.id) for item in event_posts}
    entries = []
    for doc in await services.archive.search_documents(event_id):
        if doc.kind != "session" and doc.ref in feed:
            url, label = f"index.html#item-{doc.ref}", "Around the event"
        elif doc.session_id in sessions:
            url, label = f"sessions/{doc.session_id}.html", sessions[doc.session_id]
            if doc.kind in ("note", "social", "poll", "question"):
                url += f"#item-{doc.ref}"
            elif doc.kind == "summary":
                url += "#summary"
            elif doc.kind == "comment":
                url += f"#comment-{doc.ref}"
            elif doc.kind == "answer":
                url += f"#answer-{doc.ref}"
        else:
            continue  # a session not (yet) in the archive: no page here to link
        text = " ".join(t for t in (doc.title if doc.kind == "session" else "", doc.body, doc.tags) if t)
        entries.append(
            {
                "u": url,
                "s": label,
                "k": doc.kind,
                "x": " ".join(plain_text(text).split())[:INDEX_TEXT_CHARS],
                "w": " | ".join(doc.words),
            }
        )
    return entries


async def export_site(
    services: Services,
    templates: Any,
    event_id: str,
    out: Path,
    base_url: str = "",
    progress: Callable[[str, int], None] = lambda step, total: None,
) -> dict[str, int]:
    """Write the event's static site to `out`; `progress(file, total)` is called once per page
    written (`total` pages in all). Returns counts of what was written."""
    archive = services.archive
    event_archive = await archive.event_archive(event_id)
    event = event_archive.event
    sessions = [s for s in event_archive.sessions if s.id in event_archive.records]
    out.mkdir(parents=True, exist_ok=True)
    site = SiteMap()
    site.add("/", "index.html")  # the site's home (brand, footer) is the event's archive
    site.add(f"/events/{event.id}/archive", "index.html")
    site.add(f"/events/{event.id}/archive.md", "archive.md")
    site.add(f"/events/{event.id}/archive.json", "archive.json")
    site.add("/search", "search.html")
    algorithm = SNOWBALL_ALGORITHMS.get(event.language)
    for name in _STATIC_FILES + _stemmer_files(algorithm):
        site.add(f"/static/{name}", f"static/{name}")
    for s in sessions:
        site.add(f"/archive/sessions/{s.id}", f"sessions/{s.id}.html")
        site.add(f"/archive/sessions/{s.id}.md", f"sessions/{s.id}.md")
        site.add(f"/archive/sessions/{s.id}.json", f"sessions/{s.id}.json")
    tags = sorted({t for s in sessions for t in event_archive.tags.get(s.id, [])})
    for t in tags:
        site.add(f"/tags/{t}", f"tags/{t}.html")
    total_pages = len(sessions) + len(tags) + 2

    def write(file: str, text: str | bytes) -> None:
        # Every file of the site goes through here: names made from ids (sessions, tags, photos)
        # are checked at the moment of writing to stay inside the folder.
        try:
            path = safe_join(out, file)
        except UnsafePath as exc:
            raise BadRequest(
                f"export-site refused to write {exc} (an id in the database is not a safe file name)",
                code="unsafe_path",
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")

    def page(name: str, file: str, context: dict[str, Any]) -> None:
        html = templates.get_template(name).render({"static": True, "organiser": None, "me": None, **context})
        write(file, site.relink(html, file))
        progress(file, total_pages)

    cards = Cards(templates)  # the server's cards
    zone = ZoneInfo(archive.settings.timezone)
    counts = {"pages": 0, "photos": 0, "index_entries": 0}
    media_ids: set[str] = set()
    written_media: dict[str, str] = {}  # media id -> its file ('' when it is not stored)
    static_files = list(_STATIC_FILES + _stemmer_files(algorithm))

    async def write_media() -> None:
        # Photos before the page that shows them, so its <img> links resolve.
        for media_id in sorted(media_ids - written_media.keys()):
            written_media[media_id] = ""
            found = await services.programme.media(media_id)
            if found is None:
                continue
            content_type, data = found
            file = written_media[media_id] = f"media/{media_id}{_EXT.get(content_type, '')}"
            write(file, data)
            site.add(f"/media/{media_id}", file)
            counts["photos"] += 1

    async def replier_avatars(session_id: str, thread: Thread) -> None:
        # Each fediverse replier shown: their avatar's copy (with the photos), else our icon.
        avatars = await services.comments.avatars(session_id)
        media_ids.update(avatars.values())
        await write_media()
        for account_id in _shown_repliers(thread):
            file = written_media.get(avatars.get(account_id, ""), "")
            if not file:
                file = f"static/{_FEDIVERSE_ICON}"
                if _FEDIVERSE_ICON not in static_files:
                    static_files.append(_FEDIVERSE_ICON)
            site.add(f"/ap/avatars/{account_id}", file)

    for s in sessions:
        kp = await archive.knowledge(s.id)  # the page read in full: its HTML, Markdown and index
        thread = await services.comments.thread(s.id)
        for item in kp.note_items + kp.post_items:
            media_ids.update(_media_of(item))
        await replier_avatars(s.id, thread)
        # Every card rendered from its item (the export writes nothing to the database).
        notes_html, posts_html, _, _ = cards.render(kp)
        page(
            "archive/knowledge.html",
            f"sessions/{s.id}.html",
            {
                **knowledge_context(kp, f"{base_url}/archive/sessions/{s.id}", zone, can_edit=False),
                "thread": thread,
                "moderator": False,
                "notes_html": notes_html,
                "posts_html": posts_html,
            },
        )
        write(f"sessions/{s.id}.md", session_markdown(kp, thread, base_url))
        write(f"sessions/{s.id}.json", json.dumps(await archive.export(event.id, [s.id]), ensure_ascii=False))
        counts["pages"] += 1
    for t in tags:
        tag_page = await archive.tag_page(t)
        tag_page.sessions = [s for s in tag_page.sessions if s.event_id == event.id]
        page("archive/tag.html", f"tags/{t}.html", {"page": tag_page})
        counts["pages"] += 1
    # The event's own feed ("Around the event") is part of the archive's index page.
    for item in event_archive.event_posts:
        media_ids.update(_media_of(item))
    await write_media()
    event_archive.sessions = sessions + [
        s for s in event_archive.sessions if s.id not in event_archive.records
    ]
    page("archive/event.html", "index.html", event_archive_context(event_archive))
    write("archive.md", event_markdown(event_archive, base_url))
    write("archive.json", json.dumps(await archive.export(event.id), ensure_ascii=False))
    page(
        "archive/static_search.html",
        "search.html",
        {
            "event": event,
            "stemmer_scripts": [
                f"/static/{name}" for name in _stemmer_files(algorithm) if name.endswith(".js")
            ],
        },
    )
    counts["pages"] += 2
    index = await offline_index(
        services, event.id, {s.id: s.title for s in sessions}, event_archive.event_posts
    )
    # A script, not JSON: a page opened from disk may not fetch() files next to it, but may load scripts.
    write(
        "search-index.js",
        f"window.LIVEBLOG_STEMMER = {json.dumps(algorithm or '')};\n"
        f"window.LIVEBLOG_INDEX = {json.dumps(index, ensure_ascii=False)};\n",
    )
    counts["index_entries"] = len(index)
    static = resource_dir("static")
    for name in static_files:
        write(f"static/{name}", (static / name).read_bytes())
    return counts

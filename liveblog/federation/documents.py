"""The ActivityPub and discovery documents we serve, built from plain data: actors (one per event
and per session, and the instance's own), WebFinger answers, NodeInfo, collections and the
activities we send. Addresses are made here and parsed here, nowhere else."""

from __future__ import annotations

import re
import secrets
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from liveblog.models import FEDIVERSE_HANDLE, Event, Session
from liveblog.text import render_markdown, sanitise

AS = "https://www.w3.org/ns/activitystreams"
SECURITY = "https://w3id.org/security/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
CONTEXT = [AS, SECURITY]
ACTIVITY_JSON = "application/activity+json"
# What a client may ask for to get ActivityPub rather than a page (Mastodon sends the first).
AP_TYPES = ("application/activity+json", "application/ld+json")
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
# The instance actor (signs our fetches for servers in authorized-fetch mode). Its handle has a
# dot, which neither a derived handle (a slug) nor a chosen one (HANDLE) can have.
INSTANCE_HANDLE = "instance.actor"
# Handles organisers choose: lower-case letters, digits, hyphens and underscores, as a slug.
HANDLE = FEDIVERSE_HANDLE
# Any name a WebFinger query may ask about (a chosen or derived handle, an id, the instance's).
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
KINDS = {"events": "event", "sessions": "session"}
DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$")


def actor_url(base: str, kind: str, actor_id: str) -> str:
    return f"{base}/ap/{kind}s/{quote(actor_id, safe='')}"


def instance_url(base: str) -> str:
    return f"{base}/ap/actor"


def key_id(actor: str) -> str:
    return f"{actor}#main-key"


def page_url(base: str, kind: str, actor_id: str) -> str:
    return f"{base}/{kind}s/{quote(actor_id, safe='')}"


def local_actor(base: str, url: str) -> tuple[str, str] | None:
    """(kind, id) when `url` is one of our event or session actors, else None."""
    if not url.startswith(base + "/ap/"):
        return None
    parts = url[len(base) + 4 :].split("/")
    if len(parts) != 2 or parts[0] not in KINDS or not parts[1]:
        return None
    return KINDS[parts[0]], unquote(parts[1])


class _Text(HTMLParser):
    """Remote HTML's words (`parts`), and the same as Markdown (`markdown`): its links kept as
    links, every other character that Markdown would read as markup escaped."""

    BREAKS = frozenset({"p", "br", "div", "li", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.markdown: list[str] = []
        self._link: tuple[str, list[str]] | None = None  # an open <a>: its href, its words

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.handle_endtag("a")  # a link does not span paragraphs
            self.parts.append("\n")
            self.markdown.append("\n")
        elif tag == "a" and self._link is None:
            self._link = (dict(attrs).get("href") or "", [])

    def handle_endtag(self, tag: str) -> None:
        if tag != "a" or self._link is None:
            return
        href, words = self._link
        self._link = None
        text = " ".join("".join(words).split())
        if not _LINKABLE.match(href):
            self.markdown.append(_md_escape(text))
        elif text == href:
            self.markdown.append(f"<{href}>")  # a URL shown as itself (shortened, on Mastodon)
        elif text:
            self.markdown.append(f"[{_md_escape(text)}](<{href}>)")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._link is not None:
            self._link[1].append(data)
        else:
            self.markdown.append(_md_escape(data))

    def close(self) -> None:
        super().close()
        self.handle_endtag("a")


# What a link of a reply may point at, written as a Markdown destination in <...>.
_LINKABLE = re.compile(r"^https?://[^\s<>\\]+$", re.I)
_MD_INLINE = re.compile(r"([\\`*_\[\]<>~|&])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+=-]|\d+[.)])")


def _md_escape(text: str) -> str:
    return _MD_INLINE.sub(r"\\\1", text)


def _lines(parts: list[str]) -> str:
    lines = (" ".join(line.split()) for line in "".join(parts).splitlines())
    return "\n".join(line for line in lines if line)


def plain_text(html: str) -> str:
    """The words of remote HTML (a reply's), paragraphs on lines of their own."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return _lines(parser.parts)


def markdown_text(html: str) -> str:
    """Remote HTML (a reply's, sanitised) as a comment's Markdown body: its words, paragraphs on
    lines of their own, its http(s) links as links, and nothing else read as markup. The body a
    comment's HTML is rendered again from (an import), so that it keeps the reply's links."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = _lines(parser.markdown).split("\n")
    return "\n".join(_MD_LINE_START.sub(lambda m: m[1] + _block_escape(m[2]), line) for line in lines)


def _block_escape(marker: str) -> str:
    """A line's start that Markdown would read as a heading, quote, list or rule, as text."""
    return marker[:-1] + "\\" + marker[-1] if marker[-1] in ".)" else "\\" + marker


class _Links(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.links: set[str] = set()
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.add(urljoin(self.base, href.strip()).split("#", 1)[0])
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def page_links(html: str, url: str) -> tuple[str, set[str]]:
    """(title, the absolute URLs it links to) of a web page."""
    parser = _Links(url)
    parser.feed(html)
    parser.close()
    return " ".join(parser.title.split())[:200], parser.links


def local_page(base: str, url: str) -> str | None:
    """The session id when `url` is one of our session or knowledge pages."""
    for prefix in (f"{base}/archive/sessions/", f"{base}/sessions/"):
        if url.startswith(prefix):
            tail = unquote(url[len(prefix) :].split("?", 1)[0])
            return tail if tail and "/" not in tail else None
    return None


def local_note(base: str, url: str) -> int | None:
    """The item id when `url` is one of our notes (/ap/notes/N), else None."""
    prefix = f"{base}/ap/notes/"
    tail = url[len(prefix) :] if url.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


def host_of(base: str) -> str:
    return urlsplit(base).netloc.lower()


def wants_activity(accept: str) -> bool:
    """Whether an Accept header asks for ActivityPub rather than a page."""
    return any(kind in accept.lower() for kind in AP_TYPES)


def new_activity_id(base: str) -> str:
    return f"{base}/ap/activities/{secrets.token_hex(12)}"


def _actor(
    base: str,
    url: str,
    *,
    handle: str,
    name: str,
    summary: str,
    page: str,
    public_pem: str,
    published: str,
) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "id": url,
        # Service: an account that posts on its own schedule (Mastodon marks it as automated).
        "type": "Service",
        "preferredUsername": handle,
        "name": name,
        "summary": summary,
        "url": page,
        "published": _iso(published),
        "inbox": f"{url}/inbox",
        "outbox": f"{url}/outbox",
        "followers": f"{url}/followers",
        "following": f"{url}/following",
        "endpoints": {"sharedInbox": f"{base}/ap/inbox"},
        "manuallyApprovesFollowers": False,
        "discoverable": True,
        "icon": {"type": "Image", "mediaType": "image/png", "url": f"{base}/static/fediverse-icon.png"},
        "publicKey": {"id": key_id(url), "owner": url, "publicKeyPem": public_pem},
    }


def _iso(stamp: str) -> str:
    """A stored time as ActivityPub's xsd:dateTime (UTC, seconds, Z)."""
    text = stamp[:19] if len(stamp) >= 19 else stamp
    return text + "Z" if text and not text.endswith("Z") else text


def event_actor(base: str, event: Event, handle: str, public_pem: str) -> dict[str, Any]:
    dates = event.starts_on if event.starts_on == event.ends_on else f"{event.starts_on} to {event.ends_on}"
    where = f", {event.venue}" if event.venue else ""
    summary = f"<p>{_escape(dates + where)}</p>" + (
        render_markdown(event.description) if event.description else ""
    )
    return _actor(
        base,
        actor_url(base, "event", event.id),
        handle=handle,
        name=event.title,
        summary=summary,
        page=page_url(base, "event", event.id),
        public_pem=public_pem,
        published=event.created_at,
    )


def session_actor(base: str, session: Session, event: Event, handle: str, public_pem: str) -> dict[str, Any]:
    when = f"{session.starts_at.replace('T', ' ')} to {session.ends_at[-5:]}"
    facts = [event.title, when] + ([session.room] if session.room else [])
    if session.speakers:
        facts.append("with " + ", ".join(session.speakers))
    summary = f"<p>{_escape(' · '.join(facts))}</p>" + (
        render_markdown(session.description) if session.description else ""
    )
    return _actor(
        base,
        actor_url(base, "session", session.id),
        handle=handle,
        name=session.title,
        summary=summary,
        page=page_url(base, "session", session.id),
        public_pem=public_pem,
        published=session.created_at,
    )


def instance_actor(base: str, public_pem: str) -> dict[str, Any]:
    url = instance_url(base)
    return {
        "@context": CONTEXT,
        "id": url,
        "type": "Application",
        "preferredUsername": INSTANCE_HANDLE,
        "name": "Liveblog",
        "url": f"{base}/",
        "inbox": f"{base}/ap/inbox",
        "outbox": f"{url}/outbox",
        "manuallyApprovesFollowers": True,
        "publicKey": {"id": key_id(url), "owner": url, "publicKeyPem": public_pem},
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webfinger(handle: str, host: str, actor: str, page: str) -> dict[str, Any]:
    return {
        "subject": f"acct:{handle}@{host}",
        "aliases": [actor, page],
        "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": actor},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": page},
        ],
    }


def nodeinfo_links(base: str) -> dict[str, Any]:
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{base}/nodeinfo/2.1"}]}


def nodeinfo(version: str, actors: int) -> dict[str, Any]:
    return {
        "version": "2.1",
        "software": {
            "name": "liveblog",
            "version": version,
            "homepage": "https://github.com/liveblog",
        },
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {"users": {"total": actors}},
        "metadata": {"nodeName": "Liveblog"},
    }


def collection(url: str, total: int, items: list[Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"@context": AS, "id": url, "type": "OrderedCollection", "totalItems": total}
    if items is not None:
        doc["orderedItems"] = items
    return doc


def accept(base: str, actor: str, follow: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": AS,
        "id": new_activity_id(base),
        "type": "Accept",
        "actor": actor,
        "object": _follow_summary(follow),
    }


def reject(base: str, actor: str, follower: str, follow_id: str) -> dict[str, Any]:
    """What removing a follower sends them: their Follow, rejected (Mastodon unfollows)."""
    return {
        "@context": AS,
        "id": new_activity_id(base),
        "type": "Reject",
        "actor": actor,
        "object": {"id": follow_id, "type": "Follow", "actor": follower, "object": actor},
    }


def _follow_summary(follow: dict[str, Any]) -> dict[str, Any]:
    return {k: follow[k] for k in ("id", "type", "actor", "object") if k in follow}


def id_of(value: Any) -> str:
    """The id of an ActivityPub reference: a URL string, or an object with an id."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return ""


# -- notes -------------------------------------------------------------------------------------

HASHTAG = re.compile(r"(?<![\w#&/])#(\w{1,100})")
IMAGE = re.compile(r"<img\b[^>]*>", re.I)
ATTRIBUTE = re.compile(r"""\b(src|alt)\s*=\s*"([^"]*)\"""", re.I)
NOTE_CONTEXT = [AS, {"Hashtag": "as:Hashtag", "sensitive": "as:sensitive"}]


def note_url(base: str, item_id: int) -> str:
    return f"{base}/ap/notes/{item_id}"


def images_of(html: str) -> list[tuple[str, str]]:
    """(src, alt) of each image in a note's HTML, in order."""
    found = []
    for tag in IMAGE.findall(html):
        attrs = {k.lower(): unescape(v) for k, v in ATTRIBUTE.findall(tag)}
        if attrs.get("src"):
            found.append((attrs["src"], attrs.get("alt", "")))
    return found


def note(
    base: str,
    *,
    item_id: int,
    session_id: str,
    body: str,
    html: str,
    key_point: bool,
    published: str,
    updated: str | None,
    media_types: dict[str, str],
) -> dict[str, Any]:
    """A note, key point or photo as an ActivityPub Note: its sanitised HTML without the images,
    which are attachments (our /media/ URLs, with their alt text), its hashtags as tags."""
    actor = actor_url(base, "session", session_id)
    content = sanitise(IMAGE.sub("", html)).strip()
    if key_point:
        content = "<p><strong>Key point</strong></p>" + content
    attachments = []
    for src, alt in images_of(html):
        url = src if src.startswith(("http://", "https://")) else f"{base}{src}"
        media_id = src.rsplit("/", 1)[-1]
        attachments.append(
            {
                "type": "Document",
                "mediaType": media_types.get(media_id, "image/jpeg"),
                "url": url,
                "name": alt,
            }
        )
    tags = [
        {"type": "Hashtag", "href": f"{base}/tags/{quote(tag.lower())}", "name": f"#{tag}"}
        for tag in dict.fromkeys(HASHTAG.findall(body))
    ]
    doc: dict[str, Any] = {
        "id": note_url(base, item_id),
        "type": "Note",
        "attributedTo": actor,
        "content": content,
        "published": _iso(published),
        "url": f"{page_url(base, 'session', session_id)}#item-{item_id}",
        "to": [PUBLIC],
        "cc": [f"{actor}/followers"],
        "tag": tags,
        "attachment": attachments,
        "sensitive": False,
    }
    if updated is not None:
        doc["updated"] = _iso(updated)
    return doc


def wrap(activity_type: str, activity_id: str, actor: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A Create or Update of an object, addressed as the object is."""
    return {
        "@context": NOTE_CONTEXT,
        "id": activity_id,
        "type": activity_type,
        "actor": actor,
        "published": obj.get("updated", obj.get("published")),
        "to": obj["to"],
        "cc": obj["cc"],
        "object": obj,
    }


def delete(base: str, item_id: int, session_id: str) -> dict[str, Any]:
    actor = actor_url(base, "session", session_id)
    url = note_url(base, item_id)
    return {
        "@context": AS,
        "id": f"{url}/delete",
        "type": "Delete",
        "actor": actor,
        "to": [PUBLIC],
        "cc": [f"{actor}/followers"],
        "object": {"id": url, "type": "Tombstone"},
    }


def announcement(base: str, event_id: str, session: Session, state: str, published: str) -> dict[str, Any]:
    """The event's note that a session starts ("live") or has ended ("ended"), which points
    to its knowledge page."""
    actor = actor_url(base, "event", event_id)
    page = page_url(base, "session", session.id)
    title = _escape(session.title)
    room = f" ({_escape(session.room)})" if session.room else ""
    if state == "live":
        content = f'<p>Starting now{room}: <a href="{page}">{title}</a>. Follow it for live notes.</p>'
    else:
        archive = f"{base}/archive/sessions/{quote(session.id, safe='')}"
        content = f'<p>Ended: {title}{room}. Its notes and key points: <a href="{archive}">{archive}</a></p>'
    return {
        "id": f"{actor}/sessions/{quote(session.id, safe='')}/{state}",
        "type": "Note",
        "attributedTo": actor,
        "content": content,
        "published": _iso(published),
        "url": page,
        "to": [PUBLIC],
        "cc": [f"{actor}/followers"],
        "tag": [],
        "attachment": [],
        "sensitive": False,
    }


def tombstone(base: str, item_id: int) -> dict[str, Any]:
    return {"@context": AS, "id": note_url(base, item_id), "type": "Tombstone"}


def outbox_page(url: str, items: list[dict[str, Any]], next_url: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AS,
        "id": url,
        "type": "OrderedCollectionPage",
        "partOf": url.split("?", 1)[0],
        "orderedItems": items,
    }
    if next_url:
        doc["next"] = next_url
    return doc

"""A collected post as safe HTML for the stream: plain text with its links, mentions and
hashtags made clickable, and nothing else live.

Everything from the network is escaped first; only http(s) links are made, images only from our
own /media/ store (fetched, stripped copies), and nh3 cleans the result again as a second wall.
A post's own HTML, scripts or `javascript:` links therefore arrive as visible, inert text.
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import quote, urlsplit

import nh3

from liveblog.capture.hashtags import TAG_CHAR
from liveblog.models import SocialPost

SENSITIVE = "social-sensitive"  # the class of the <details> holding media marked sensitive

NETWORK_NAMES = {"x": "X", "mastodon": "Mastodon", "bluesky": "Bluesky", "rss": "RSS"}

_TOKEN = re.compile(
    r"(?P<url>https?://[^\s<>\"'`]+)"
    r"|(?P<mention>(?<![\w@/])@[A-Za-z0-9_][A-Za-z0-9_.\-]*(?:@[A-Za-z0-9.\-]+)?)"
    rf"|(?P<tag>(?<![\w&#/])#{TAG_CHAR}{{1,100}})"
)

_TAGS = {"div", "p", "span", "a", "img", "br", "ul", "li", "blockquote", "details", "summary"}
_ATTRIBUTES = {
    "details": {"class"},
    "div": {"class"},
    "ul": {"class"},
    "li": {"class"},
    "blockquote": {"class"},
    "p": {"class"},
    "span": {"class"},
    "a": {"href", "class"},
    "img": {"src", "alt", "width", "height", "loading", "class"},
}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return ""


def tag_url(post: SocialPost, tag: str) -> str | None:
    tag = quote(tag, safe="")
    if post.network == "x":
        return f"https://x.com/hashtag/{tag}"
    if post.network == "bluesky":
        return f"https://bsky.app/hashtag/{tag}"
    if post.network == "mastodon" and (origin := _origin(post.url)):
        return f"{origin}/tags/{tag}"
    return None


def profile_url(post: SocialPost, handle: str) -> str | None:
    handle = handle.lstrip("@")
    if not handle:
        return None
    if post.network == "x":
        return f"https://x.com/{quote(handle, safe='')}"
    if post.network == "bluesky":
        return f"https://bsky.app/profile/{quote(handle, safe='')}"
    if post.network == "mastodon":
        user, _, host = handle.partition("@")
        if host:
            return f"https://{quote(host, safe='.-')}/@{quote(user, safe='')}"
        if origin := _origin(post.url):
            return f"{origin}/@{quote(user, safe='')}"
    return None


def _link(href: str | None, text: str, cls: str) -> str:
    if not href or not href.startswith(("https://", "http://")):
        return escape(text)
    return f'<a class="{cls}" href="{escape(href, quote=True)}">{escape(text)}</a>'


def linkify(post: SocialPost, text: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        out.append(escape(text[pos : match.start()]))
        token = match.group(0)
        trail = ""
        if match.lastgroup == "url":
            stripped = token.rstrip(".,;:!?)]}")
            trail = token[len(stripped) :]
            out.append(_link(stripped, stripped, "social-link"))
        elif match.lastgroup == "mention":
            out.append(_link(profile_url(post, token), token, "social-mention"))
        else:
            out.append(_link(tag_url(post, token[1:]), token, "social-tag"))
        out.append(escape(trail))
        pos = match.end()
    out.append(escape(text[pos:]))
    return "".join(out).replace("\n", "<br>")


def _local(path: str) -> bool:
    return path.startswith("/media/") and re.fullmatch(r"/media/[A-Za-z0-9_-]{1,64}", path) is not None


def _dimension(value: object) -> str:
    return str(value) if isinstance(value, int) and 0 < value < 100_000 else ""


def render_post(post: SocialPost) -> str:
    network = NETWORK_NAMES.get(post.network, post.network)
    parts = [f'<div class="social-post social-{escape(post.network)}">']
    who = []
    if _local(post.avatar_local):
        who.append(
            f'<img class="social-avatar" src="{post.avatar_local}" alt="" width="32" height="32" loading="lazy">'
        )
    name = post.author_name or post.author_handle
    who.append(f'<span class="social-name">{escape(name)}</span>')
    # No display name (a Bluesky author not resolved yet, an X author without includes): the
    # handle is the name, shown once.
    if post.author_handle and post.author_handle.lstrip("@").lower() != name.lstrip("@").lower():
        # An RSS author's handle is "feed host/author name": the host is what it adds to the name.
        handle = (
            post.author_handle.split("/", 1)[0]
            if post.network == "rss"
            else "@" + post.author_handle.lstrip("@")
        )
        who.append(f'<span class="social-handle">{escape(handle)}</span>')
    parts.append('<p class="social-who">' + " ".join(who) + "</p>")
    relation = post.relation or {}
    if "repost_of" in relation:
        parts.append('<p class="social-relation">Reposted</p>')
    elif "reply_to" in relation:
        parts.append('<p class="social-relation">Reply</p>')
    if post.text:
        parts.append(f'<p class="social-text">{linkify(post, post.text)}</p>')
    media: list[str] = []
    hidden: list[str] = []  # media its author marked sensitive: shown when the reader asks
    for m in post.media:
        shown = hidden if m.get("sensitive") is True else media
        alt = str(m.get("alt") or "")
        local = str(m.get("local") or "")
        kind = str(m.get("type") or "media").capitalize()
        if _local(local):
            w, h = _dimension(m.get("width")), _dimension(m.get("height"))
            size = (f' width="{w}"' if w else "") + (f' height="{h}"' if h else "")
            shown.append(
                f'<img class="social-image" src="{local}" alt="{escape(alt, quote=True)}"{size} loading="lazy">'
            )
            if m.get("preview"):  # our copy is a video's or a sound's preview: the original is a link
                shown.append(_link(str(m.get("url") or ""), f"{kind} (original)", "social-media-link"))
        else:
            label = (
                f"{str(m.get('type') or 'media').capitalize()}: {alt}"
                if alt
                else str(m.get("type") or "media").capitalize()
            )
            shown.append(_link(str(m.get("url") or ""), label, "social-media-link"))
    if media:
        parts.append('<p class="social-media">' + " ".join(media) + "</p>")
    if hidden:
        parts.append(
            f'<details class="{SENSITIVE}"><summary>Media marked sensitive by its author: show</summary>'
            '<p class="social-media">' + " ".join(hidden) + "</p></details>"
        )
    if post.poll:
        parts.append(_poll(post.poll))
    if post.quote:
        quoted = post.quote
        who_q = escape(quoted.get("author_name") or quoted.get("author_handle") or "")
        parts.append(
            '<blockquote class="social-quote"><p class="social-who"><span class="social-name">'
            + who_q
            + "</span></p>"
            + (
                f'<p class="social-text">{linkify(post, str(quoted.get("text") or ""))}</p>'
                if quoted.get("text")
                else ""
            )
            + '<p class="social-source">'
            + _link(str(quoted.get("url") or ""), "Quoted post", "social-original")
            + "</p></blockquote>"
        )
    elif "quote_of" in relation:
        parts.append('<p class="social-relation">Quotes another post</p>')
    parts.append(
        f'<p class="social-source"><span class="social-network">{escape(network)}</span> · '
        + _link(post.url, "Original post", "social-original")
        + "</p>"
    )
    parts.append("</div>")
    return nh3.clean(
        "".join(parts),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="nofollow noopener noreferrer ugc",
    )


def _poll(poll: dict[str, object]) -> str:
    """A poll as it stood when collected: read-only, each option with its votes."""
    rows = []
    for option in poll.get("options") or []:  # type: ignore[attr-defined]
        votes = option.get("votes")
        count = "" if not isinstance(votes, int) else f" — {votes} vote{'' if votes == 1 else 's'}"
        rows.append(f'<li class="social-poll-option">{escape(str(option.get("title") or ""))}{count}</li>')
    voters = poll.get("voters")
    note = (
        f"Poll, {voters} {'person' if voters == 1 else 'people'} voted" if isinstance(voters, int) else "Poll"
    )
    note += " (as collected)"
    return f'<p class="social-relation">{note}</p><ul class="social-poll">' + "".join(rows) + "</ul>"


def quote_markdown(post: SocialPost) -> str:
    """A post quoted into a note (Markdown): its text as a quotation, who said it, a link back."""
    lines = [f"> {line}" if line else ">" for line in post.text.splitlines()] or [">"]
    who = post.author_name or post.author_handle
    network = NETWORK_NAMES.get(post.network, post.network)
    lines.append(">")
    url = post.url if post.url.startswith(("https://", "http://")) else ""
    source = f"[{network}]({url})" if url else network
    lines.append(f"> — {who} on {source}")
    return "\n".join(lines)

"""Turning what people type into safe HTML: CommonMark with raw HTML off, then nh3 sanitising.

Only http, https and mailto links survive; images render only from our own /media/ store (anything
else becomes a plain link, so a note cannot make every viewer's browser fetch a tracker); video
and slide links are noted in `embeds` so pages can offer a click-to-load preview.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import nh3
from markdown_it import MarkdownIt

# What str.split() takes for whitespace (every character whose str.isspace() is true): a knowledge
# page counts the words of its notes as runs of anything else, in Python and in SQL alike
# (storage/sql.py `word_count`). tests/test_knowledge_reads.py checks the list against Python's.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def word_count(text: str) -> int:
    """The words of a text as a knowledge page counts them."""
    return len(text.split())


_md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False, "breaks": True})
_md.enable(["linkify", "strikethrough", "table"])


def _validate_link(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://", "mailto:", "/media/"))


_md.validateLink = _validate_link  # type: ignore[method-assign]


# What an upload inserts is `![](/media/...)`; older clients inserted `![photo](...)`. Neither
# describes the photo, so such photos get the note's own text as their alt text.
_PLACEHOLDER_ALTS = {"", "photo", "image"}
# Alt text longer than this is cut: a screen reader reads it all before moving on.
ALT_CHARS = 200


def _render_image(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = token.attrGet("src") or ""
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    if alt.strip().lower() in _PLACEHOLDER_ALTS:
        alt = env.get("fallback_alt") or "Photo"
    if src.startswith("/media/"):
        return f'<img src="{_escape(src)}" alt="{_escape(alt)}" loading="lazy">'
    return f'<a href="{_escape(src)}">{_escape(alt or src)}</a>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


_md.add_render_rule("image", _render_image)

ALLOWED_TAGS = set(
    "a p br strong em del s code pre blockquote ul ol li h1 h2 h3 h4 h5 h6 hr img table thead tbody tr th td".split()
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "loading"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}


# XML 1.0's Char production (https://www.w3.org/TR/xml/#charsets) leaves out the C0 controls but
# tab, newline and carriage return, the surrogates, and U+FFFE and U+FFFF. Nobody types them to
# mean something, and one of them makes a whole Atom feed unreadable to every feed reader (and an
# HTML page invalid). Text drops them where it enters (notes, comments, titles, questions, polls,
# summaries, social posts, note-takers' names), and the Atom and sitemap writers drop them again,
# for rows stored before.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_chars(text: str) -> str:
    """The text without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("", text)


def sanitise(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer ugc",
    )


def _plain_text(tokens: Any) -> str:
    """The words of a parsed note without its images: the alt text of an undescribed photo."""
    blocks = []
    for token in tokens:
        if token.type != "inline":
            continue
        words = []
        for child in token.children or []:
            if child.type in ("text", "code_inline"):
                words.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
        blocks.append("".join(words))
    text = re.sub(r"\s+", " ", " ".join(blocks)).strip()
    return text if len(text) <= ALT_CHARS else text[: ALT_CHARS - 1].rstrip() + "…"


# What is plain inside a line: letters, digits, spaces and the punctuation of sentences, none of
# which Markdown (with tables, strikethrough and breaks) gives a meaning there; non-ASCII too, but
# not spaces, controls and format characters (Markdown trims or folds some of them).
_NOT_PLAIN = re.compile(
    "[^A-Za-z0-9 \n,.;:?!'\"()%=/+@$\\-\u00a1-\u167f\u1681-\u1fff\u2010-\u2027\u2030-\u205e"
    "\u2070-\u2fff\u3001-\ud7ff\ue000-\ufefe\uff00-\ufff8\U00010000-\U000dffff]"
)
# A line starting so may open an ordered list.
_LIST_START = re.compile(r"[0-9]{1,9}[.)]")
# What every link the link finder's test (linkify-it's `pretest`) looks for has: a scheme's ":" or
# "//", a domain's ".", an e-mail's "@", or "localhost". A line without them needs no test (the
# test's regular expression takes ~0.1 ms on a line of long words).
_MAY_LINK = re.compile(r"[.:/@]|localhost", re.IGNORECASE)


def plain_html(text: str) -> str | None:
    """The sanitised HTML Markdown makes of plain text (one paragraph, a break at each line's end),
    without parsing it: most live notes are sentences, and the parser and the sanitiser cost
    0.15-0.45 ms of CPU a note. None when the text may mean more: a character of Markdown's
    syntax, a line that could open a block (list, heading, code), a blank line, or something the
    link finder would take for a link."""
    if not text or _NOT_PLAIN.search(text):
        return None
    lines = text.split("\n")
    for line in lines:
        if not line or line[0] == " " or line[-1] == " ":
            return None
        first = line[0]
        if not (first.isalnum() or first in "\"'(" or first > "\x7f"):
            return None
        if "0" <= first <= "9" and _LIST_START.match(line):
            return None
        linkify = _md.linkify
        if linkify is not None and _MAY_LINK.search(line) and linkify.pretest(line):  # per line, as it runs
            return None
    # As the sanitiser writes what Markdown makes of it; there is nothing to sanitise, as no "<", ">"
    # or "&" got this far (tests/test_text.py compares this with the full path).
    return "<p>" + "<br>\n".join(lines) + "</p>\n"


def render_markdown(text: str) -> str:
    html = plain_html(text)
    if html is not None:
        return html
    tokens = _md.parse(text)
    env = {"fallback_alt": _plain_text(tokens)}
    return sanitise(_md.renderer.render(tokens, _md.options, env))


class _LinkCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and any(name == "href" and value for name, value in attrs):
            self.links += 1


def count_links(html: str) -> int:
    """How many links rendered HTML holds: what render_markdown made links of (bare domains,
    e-mail addresses, `mailto:`, outside images included), so a limit on links counts exactly
    what readers would see as links."""
    counter = _LinkCounter()
    counter.feed(html)
    counter.close()
    return counter.links


_YOUTUBE = re.compile(r"^(?:www\.|m\.)?(?:youtube\.com|youtube-nocookie\.com)$")
_SLIDE_HOSTS = {
    "speakerdeck.com": "Speaker Deck",
    "www.slideshare.net": "SlideShare",
    "slideshare.net": "SlideShare",
    "docs.google.com": "Google Slides",
    "prezi.com": "Prezi",
}
_URL = re.compile(r"https?://[^\s<>()\"']+")
_MEDIA = re.compile(r"\(/media/([0-9a-f]{16})\)")


def find_embeds(text: str) -> list[dict[str, str]]:
    """Video and slide links in a note, with the privacy-friendly player URL where one exists."""
    found: list[dict[str, str]] = []
    seen: set[str] = set()
    for url in _URL.findall(text):
        url = url.rstrip(".,;:!?")
        if url in seen:
            continue
        seen.add(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        video_id = ""
        if _YOUTUBE.match(host):
            if parts.path == "/watch":
                video_id = parse_qs(parts.query).get("v", [""])[0]
            elif parts.path.startswith(("/embed/", "/shorts/", "/live/")):
                video_id = parts.path.split("/")[2]
        elif host == "youtu.be":
            video_id = parts.path.lstrip("/").split("/")[0]
        if video_id and re.fullmatch(r"[A-Za-z0-9_-]{6,20}", video_id):
            found.append(
                {
                    "provider": "YouTube",
                    "url": url,
                    "player": f"https://www.youtube-nocookie.com/embed/{video_id}",
                }
            )
            continue
        if host in ("vimeo.com", "www.vimeo.com"):
            vid = parts.path.strip("/").split("/")[0]
            if vid.isdigit():
                found.append(
                    {"provider": "Vimeo", "url": url, "player": f"https://player.vimeo.com/video/{vid}"}
                )
                continue
        if host in _SLIDE_HOSTS:
            found.append({"provider": _SLIDE_HOSTS[host], "url": url, "player": ""})
    return found


def find_media(text: str) -> list[str]:
    return _MEDIA.findall(text)


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 note', '2 notes', '0 notes': a count with its noun in the right number (English, like the
    rest of the interface). `many` is for nouns that do not just take an s ('reply', 'replies')."""
    return f"{n} {one if n == 1 else (many or one + 's')}"

"""Long sessions in pages (issue 17 item 7): page sizes, the "Older notes" link of a live stream
and the knowledge page's cards cut into pages. The routes that serve the pages are in
web/long_pages.py; this module imports nothing of the web layer, so pages.py can use it.

A live page shows the newest STREAM_PAGE notes and posts; older ones come a page at a time
from /sessions/ID/older?before=ITEM (keyed by the place of the oldest item shown, so items
arriving meanwhile never shift a page), and without JavaScript from numbered pages
/sessions/ID/page/N, counted from the oldest item so that new items never move them.
A knowledge page shows its first KNOWLEDGE_PAGE notes and posts, the rest on /page/N.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from liveblog.errors import NotFound

# Cards on the first page of a live stream and per older page: about 1 KB a card (a social post
# with its credit line), so a first page stays well under the 150 KB budget with the rest of
# the page (key points, audience panel, JSON-LD), and a screen or two of reading.
STREAM_PAGE = 50

# Notes and posts per knowledge page (each section): a knowledge card is ~0.6-1 KB.
KNOWLEDGE_PAGE = 50


@dataclass(frozen=True)
class Older:
    """The way to a stream's older items: `before` (the oldest item shown, for the script),
    `href` (the numbered page that holds the next older item, for everyone else)."""

    before: int
    href: str
    url: str  # the script's endpoint


def page_of(place: int, size: int) -> int:
    """The numbered page (1-based, from the oldest) holding the item at 1-based `place`."""
    return max(1, (place - 1) // size + 1)


def pages_for(total: int, size: int) -> int:
    return max(1, -(-total // size))


def older_link(session_id: str, shown_oldest_first: list[int], total: int) -> Older | None:
    """The "Older notes" link of a stream page showing these item ids (the newest `len` of
    `total`), or None when it shows them all."""
    if not shown_oldest_first or total <= len(shown_oldest_first):
        return None
    page = page_of(total - len(shown_oldest_first), STREAM_PAGE)
    return Older(
        shown_oldest_first[0], f"/sessions/{session_id}/page/{page}", f"/sessions/{session_id}/older"
    )


# Every knowledge card starts with this (templates/archive/_card.html). Item HTML cannot hold it:
# notes are sanitised to a list of tags without <article> (text.py ALLOWED_TAGS), and so are
# social posts (capture/feeds/render.py); anything else in a card is escaped text.
_CARD_START = '<article class="arch-item'
_CARD_ID = re.compile(r'<article class="arch-item[^"]*" id="item-(\d+)"')


def split_cards(html: str) -> list[str]:
    """A knowledge page's assembled cards (Cards.render) back into one string per card. Each
    page's first view splits all the session's cards: str.split finds the fixed start ~7 times
    faster than a regular expression's look-ahead (9 -> 1.3 ms for 5,000 cards)."""
    head, *cards = str(html).split(_CARD_START)  # plain text: Markup + str would escape the str
    return ([head.strip()] if head.strip() else []) + [(_CARD_START + card).strip() for card in cards]


def card_id(card: str) -> int:
    m = _CARD_ID.match(card.lstrip())
    if m is None:  # a card template that no longer starts as _CARD_START says
        raise ValueError("not a knowledge card")
    return int(m.group(1))


@dataclass(frozen=True)
class KnowledgePager:
    """Which notes and posts a knowledge page shows, and its neighbours."""

    session_id: str
    page: int
    pages: int
    notes_from: int  # 1-based place of the first note shown (0: none shown)
    notes_to: int
    posts_from: int
    posts_to: int
    notes_after: int | None  # the last note shown, when more notes follow (for the script)
    posts_after: int | None
    shown: frozenset[int] = frozenset()  # the notes and posts on this page

    def href(self, page: int) -> str:
        base = f"/archive/sessions/{self.session_id}"
        return base if page == 1 else f"{base}/page/{page}"

    def item_href(self, item_id: int) -> str:
        """A link to a note or post: on this page, or its permalink (the page that holds it)."""
        if item_id in self.shown:
            return f"#item-{item_id}"
        return f"/archive/sessions/{self.session_id}/items/{item_id}"

    @property
    def prev_href(self) -> str | None:
        return self.href(self.page - 1) if self.page > 1 else None

    @property
    def next_href(self) -> str | None:
        return self.href(self.page + 1) if self.page < self.pages else None


def knowledge_pager(
    session_id: str, page: int, notes: Sequence[str], posts: Sequence[str]
) -> dict[str, object]:
    """The template context of knowledge page `page` cut from all its cards: the notes and
    posts it shows (as HTML) and its pager. NotFound past the last page."""
    pages = max(pages_for(len(notes), KNOWLEDGE_PAGE), pages_for(len(posts), KNOWLEDGE_PAGE))
    if not 1 <= page <= pages:
        raise NotFound(
            f"This knowledge page has {pages} page{'' if pages == 1 else 's'}: there is no page {page}."
        )
    start, end = (page - 1) * KNOWLEDGE_PAGE, page * KNOWLEDGE_PAGE
    some_notes, some_posts = notes[start:end], posts[start:end]
    pager = KnowledgePager(
        session_id,
        page,
        pages,
        start + 1 if some_notes else 0,
        start + len(some_notes),
        start + 1 if some_posts else 0,
        start + len(some_posts),
        card_id(some_notes[-1]) if some_notes and end < len(notes) else None,
        card_id(some_posts[-1]) if some_posts and end < len(posts) else None,
        frozenset(card_id(card) for card in [*some_notes, *some_posts]),
    )
    return {
        "notes_html": Markup("\n".join(some_notes)),
        "posts_html": Markup("\n".join(some_posts)),
        "pager": pager,
    }

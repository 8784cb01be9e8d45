"""Hashtags and search terms as the networks define them, in one place: what an event's hashtags
field accepts, how tags are found in a post's text, and how two tags are compared.

- A **hashtag** is `#` then 1 to 60 Unicode letters, digits, marks or `_`, with at least one
  letter (X and Mastodon do not link `#2026`): `#café`, `#JournéesDuNumérique`, `#日本語`.
- A **search term** is any other entry (a word or a phrase): X searches for it, other sources
  look for it in the text as a whole word.
- Tags compare **case-insensitively** (Unicode NFKC, then lower case) on every network. On
  Mastodon they also compare **accent-insensitively**, as Mastodon's own HashtagNormalizer
  does (NFKC, lower case, then Latin-1 and Latin Extended-A letters folded to ASCII: `#café` and
  `#cafe` are one tag there, and its tag timeline answers both).
"""

from __future__ import annotations

import re
import unicodedata

MAX_TAG = 60
RULE = (
    "a hashtag is # followed by 1 to 60 letters, digits, marks or _ (with at least one letter), "
    "for example #café or #日本語; any entry without # is a search term"
)


def _marks() -> str:
    """The combining marks (Unicode categories Mn, Mc, Me) as regex class ranges: Python's \\w has
    letters and digits but not the marks that Devanagari, Thai or decomposed accents need."""
    ranges: list[tuple[int, int]] = []
    for cp in list(range(0x0300, 0x20000)) + list(range(0xE0100, 0xE01F0)):
        if unicodedata.category(chr(cp)).startswith("M"):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(f"\\U{a:08x}-\\U{b:08x}" if a != b else f"\\U{a:08x}" for a, b in ranges)


_MARKS = _marks()
TAG_CHAR = rf"[\w{_MARKS}]"
# A '#' starting a tag in text: not inside a word, an entity (&#38;) or a URL path (/#anchor).
IN_TEXT = re.compile(rf"(?<![\w&#/])#({TAG_CHAR}{{1,100}})")


def is_hashtag(value: str) -> bool:
    """'#' and a valid name (see RULE)."""
    name = unicodedata.normalize("NFC", value)[1:] if value.startswith("#") else ""
    return (
        0 < len(name) <= MAX_TAG
        and all(
            ch == "_" or unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) == "Nd"
            for ch in name
        )
        and any(unicodedata.category(ch)[0] == "L" for ch in name)
    )


def normalise(tag: str) -> str:
    """A tag's compared form on every network: no '#', NFKC (full-width letters become ordinary
    ones), lower case."""
    return unicodedata.normalize("NFKC", tag.strip().lstrip("#")).lower()


def hashtags_in(text: str) -> list[str]:
    return [normalise(t) for t in IN_TEXT.findall(unicodedata.normalize("NFC", text))]


# Latin letters whose ASCII form is not their decomposition (as Mastodon's folding has them).
_FOLD_SPECIAL = {
    "æ": "ae",
    "ð": "d",
    "þ": "th",
    "ß": "ss",
    "ø": "o",
    "đ": "d",
    "ħ": "h",
    "ı": "i",
    "ĳ": "ij",
    "ĸ": "k",
    "ŀ": "l",
    "ł": "l",
    "ŋ": "ng",
    "œ": "oe",
    "ŧ": "t",
    "ſ": "s",
}
_NOT_MASTODON_TAG = re.compile(rf"[^\w{_MARKS}\u00b7\u30fb\u200c]")


def _fold(ch: str) -> str:
    if not "\u00c0" <= ch <= "\u017f":
        return ch
    return _FOLD_SPECIAL.get(ch) or "".join(
        c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)
    )


def mastodon_key(tag: str) -> str:
    """The tag as Mastodon stores and compares it (HashtagNormalizer): NFKC, lower case, Latin
    accents folded to ASCII, anything but letters, marks, digits and its separators dropped."""
    return _NOT_MASTODON_TAG.sub("", "".join(_fold(ch) for ch in normalise(tag)))


def key_for(network: str, tag: str) -> str:
    """How `network` compares tags: Mastodon folds accents, the others only case."""
    return mastodon_key(tag) if network == "mastodon" else normalise(tag)


def term_in(term: str, text: str) -> bool:
    """A search term (word or phrase) appears in text as a whole word, ignoring case."""
    needle = unicodedata.normalize("NFKC", term.strip()).casefold()
    if not needle:
        return False
    haystack = unicodedata.normalize("NFKC", text).casefold()
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


def split_field(value: str) -> list[str]:
    """An event's hashtags field typed in a form: entries separated by spaces or commas, a
    "quoted phrase" kept whole."""
    return [
        quoted or bare
        for quoted, bare in re.findall(r'"([^"]*)"|([^,\s"]+)', value)
        if (quoted or bare).strip()
    ]

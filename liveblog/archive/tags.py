"""Tags: one normal form for session hashtags and organiser tags, so "#AI", "ai" and " Ai " meet."""

from __future__ import annotations

import re
import unicodedata

# Longest tag kept, in characters (hashtags are at most 60).
TAG_CHARS = 60
_SPACE = re.compile(r"\s+")
_NOT_TAG = re.compile(r"[^\w+.-]", re.UNICODE)  # a tag is a path segment: no '/', '?', '#'...
_WORD = re.compile(r"\w+", re.UNICODE)


def normalise_tag(raw: str) -> str:
    """Unicode NFC, case folded, leading '#' and every space removed: '#Machine Learning' ->
    'machinelearning'. Characters other than letters, digits, _ + . - are dropped
    (a tag is a URL path segment). Empty when nothing is left."""
    tag = unicodedata.normalize("NFC", raw).strip().lstrip("#")
    tag = _NOT_TAG.sub("", _SPACE.sub("", tag).casefold()).strip(".")
    return unicodedata.normalize("NFC", tag)[:TAG_CHARS]


def parse_tags(text: str) -> list[str]:
    """Tags from what an organiser typed: separated by commas (or by '#' starting a new one)."""
    parts = re.split(r",|(?=#)", text)
    out = [normalise_tag(p) for p in parts]
    return list(dict.fromkeys(t for t in out if t))


def search_terms(text: str) -> tuple[str, ...]:
    """The words of a search box query (punctuation and FTS operators dropped), NFC, at most 12."""
    words = _WORD.findall(unicodedata.normalize("NFC", text))
    return tuple(dict.fromkeys(w for w in words))[:12]


def search_phrases(text: str) -> tuple[tuple[str, ...], ...]:
    """The quoted phrases of a search box query ('"stay interviews"'), each as its words (at most
    12, like the terms), that must stand together in order; a quote of one word is just a word,
    and an unclosed quote is not a phrase."""
    quoted = re.findall(r'["“”„]([^"“”„]+)["“”„]', unicodedata.normalize("NFC", text))
    phrases = (tuple(_WORD.findall(q))[:12] for q in quoted)
    return tuple(dict.fromkeys(p for p in phrases if len(p) > 1))[:4]

"""Words for SQLite's full-text index, stemmed in each event's language.

FTS5's own stemmer (porter) is English only and Python cannot add an FTS5 tokenizer, so the
words are made here: `index_words(language, text)` folds case and diacritics, stems each word
with Snowball's stemmer for the language (the `snowballstemmer` package: the algorithms
PostgreSQL's `snowball` dictionaries use) and marks it with the language, "policies" in an
English event becoming `en_polici`. Triggers call it as the SQL function `liveblog_words` (every
connection that writes registers it: `register`), and a search asks for each language's stems of
the words typed (`match_expression`), so one query finds "manger" in a French event as
"mangeaient" and "policy" in an English one as "policies". Snippets are cut here too
(`snippet`): the index holds stems, and a snippet shows the text as it was written.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import snowballstemmer

from liveblog.models import MARK_END, MARK_START, SEARCH_LANGUAGES, SNOWBALL_ALGORITHMS

# Snowball's name for each language; "none" folds only.
_ALGORITHMS = SNOWBALL_ALGORITHMS
assert set(_ALGORITHMS) == set(SEARCH_LANGUAGES)

# A word: letters and digits (FTS5's unicode61 splits on everything else, underscores too).
WORD = re.compile(r"[^\W_]+")

# Stemmer objects keep state while stemming: one per thread (the writer thread indexes while
# reader threads stem queries and cut snippets).
_local = threading.local()


def _stemmer(language: str) -> snowballstemmer.stemmer:
    stemmers = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = {}
    if language not in stemmers:
        stemmers[language] = snowballstemmer.stemmer(_ALGORITHMS[language])
    return stemmers[language]


def fold(word: str) -> str:
    """Lower case without diacritics ("Crème" -> "creme"), as FTS5's remove_diacritics does."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=50_000)
def stem(language: str, word: str) -> str:
    """One word's index form in a language: folded first (so accents typed or not stem alike, as
    on PostgreSQL, where `unaccent` runs before the stemmer), then stemmed."""
    folded = fold(word)
    if _ALGORITHMS.get(language) is None:
        return folded
    return str(_stemmer(language).stemWord(folded))


def stems(language: str | None, text: str) -> list[str]:
    """A text's words as the index stems them, in order, without the language mark: the static
    site's offline index (web/static_site.py), matched by a browser stemming with Snowball too."""
    lang = language_of(language)
    return [stem(lang, w) for w in WORD.findall(text)]


def language_of(language: str | None) -> str:
    """A stored language code, or English for anything unknown (events made before languages)."""
    return language if language in _ALGORITHMS else "en"


def index_words(language: str | None, text: str | None) -> str:
    """The index's words for a text: each word's stem marked with its language."""
    if not text:
        return ""
    lang = language_of(language)
    return " ".join(f"{lang}_{w}" for w in stems(lang, text))


def register(conn: sqlite3.Connection) -> None:
    """Make `liveblog_words(language, text)` callable by this connection's SQL (the triggers that
    keep the index: schema.py step 7). A connection without it cannot write indexed rows."""
    conn.create_function("liveblog_words", 2, index_words, deterministic=True)


def query_words(language: str, terms: Iterable[str]) -> tuple[str, ...]:
    """The index words that a search's typed terms must all match in one language."""
    lang = language_of(language)
    return tuple(dict.fromkeys(f"{lang}_{stem(lang, w)}" for t in terms for w in WORD.findall(t)))


def facet(kind: str, value: str) -> str:
    """The index word of an event or kind filter (`facets` column): values are hex, so any id is one word."""
    return f"{kind}_{value.encode().hex()}"


def match_expression(
    terms: Iterable[str],
    languages: Iterable[str],
    facets: Iterable[Iterable[str]] = (),
    phrases: Iterable[Iterable[str]] = (),
) -> str:
    """An FTS5 query: every word, stemmed in some one language, each phrase's words side by side
    in order (an FTS5 phrase: index words are one per word typed, stop words included), and one
    word of each facet group. Words are quoted, so nothing typed is read as an operator."""
    terms = tuple(terms)
    phrases = [tuple(p) for p in phrases]
    branches = []
    for lang in dict.fromkeys(languages):
        words = query_words(lang, terms)
        if words:
            parts = [f'"{w}"' for w in words]
            for phrase in phrases:
                lang_ = language_of(lang)
                stems = [f"{lang_}_{stem(lang_, w)}" for t in phrase for w in WORD.findall(t)]
                if len(stems) > 1:
                    parts.append('"' + " ".join(stems) + '"')
            branches.append("(" + " AND ".join(parts) + ")")
    if not branches:
        return ""
    expr = "(" + " OR ".join(dict.fromkeys(branches)) + ")"
    for group in facets:
        expr += " AND (" + " OR ".join(f'"{w}"' for w in group) + ")"
    return expr


def snippet(texts: Iterable[str], language: str, terms: Iterable[str], size: int = 16) -> str:
    """About `size` words around the most matches of the typed terms in the first text with the
    most, as written, the matching words between MARK_START and MARK_END; '…' where cut."""
    lang = language_of(language)
    wanted = {stem(lang, w) for t in terms for w in WORD.findall(t)}
    best: tuple[int, str, list[re.Match[str]], list[bool]] | None = None
    for text in texts:
        if not text or not text.strip():
            continue
        words = list(WORD.finditer(text))
        hits = [stem(lang, m.group()) in wanted for m in words]
        if best is None or sum(hits) > best[0]:
            best = (sum(hits), text, words, hits)
    if best is None:
        return ""
    _, text, words, hits = best
    if not words:
        return text[:200]
    # The window of `size` words holding the most matches (the earliest such), started a couple
    # of words before its first match so that the match has some context.
    start, most = 0, -1
    for i in range(len(words)):
        if not hits[i]:
            continue
        first = max(0, min(i - 2, len(words) - size))
        count = sum(hits[first : first + size])
        if count > most:
            start, most = first, count
    end = min(len(words), start + size)
    out = ["…"] if start > 0 else []
    pos = words[start].start()
    for i in range(start, end):
        m = words[i]
        out.append(text[pos : m.start()])
        out.append(f"{MARK_START}{m.group()}{MARK_END}" if hits[i] else m.group())
        pos = m.end()
    if end < len(words):
        out.append("…")
    else:
        out.append(text[pos:].rstrip())
    return "".join(out).strip()


# BM25's parameters (FTS5's) and column weights: a word in a session's title counts most, then
# its tags, then text (title, body, tags: the index's columns).
K1 = 1.2
B = 0.75
WEIGHTS = (4.0, 1.0, 3.0)


def rank_bm25(rows: list[Any], wanted: set[str], doc_counts: tuple[int, dict[str, int]]) -> list[int]:
    """Row ids by BM25 score (as FTS5's bm25 with WEIGHTS), best first, newer first on ties.
    `rows` are (rowid, title, body, tags) in index words; `wanted` the query's index words (all of
    its languages'); `doc_counts` (rows in the index, rows holding each word). The average length
    is the rows' own: they are what is ranked."""
    if not rows:
        return []
    total, counts = doc_counts
    total = max(total, *counts.values()) if counts else total  # an estimate: never below a word's rows
    idf = {
        w: max(1e-6, math.log((total - counts.get(w, 0) + 0.5) / (counts.get(w, 0) + 0.5))) for w in wanted
    }
    # Counted with str.count, not by splitting: a word is "xx_stem" and a stem has no "_", so
    # "en_data " can only match where the word en_data starts (no language code but "en" ends in "en").
    # A row's words are all in its event's language: only that language's words are looked for.
    probes: dict[str, list[tuple[float, str]]] = {}
    for w in wanted:
        probes.setdefault(w[: w.index("_") + 1], []).append((idf[w], w + " "))
    wt, wb, wg = WEIGHTS
    padded = []
    length_sum = 0
    for rowid, title, body, tags in rows:
        title, body, tags = (
            (title + " " if title else ""),
            (body + " " if body else ""),
            (tags + " " if tags else ""),
        )
        length = title.count(" ") + body.count(" ") + tags.count(" ")
        length_sum += length
        padded.append((rowid, title, body, tags, length))
    avg = max(1.0, length_sum / len(padded))
    k1b, k1 = K1 * B / avg, K1 * (1 - B)
    scored = []
    for rowid, title, body, tags, length in padded:
        norm = k1 + k1b * length
        score = 0.0
        first = body or title or tags
        for weight, probe in probes.get(first[: first.find("_") + 1], ()):
            f = body.count(probe) * wb
            if title:
                f += title.count(probe) * wt
            if tags:
                f += tags.count(probe) * wg
            if f:
                score += weight * f * (K1 + 1) / (f + norm)
        scored.append((-score, -rowid))
    scored.sort()
    return [-r for _, r in scored]

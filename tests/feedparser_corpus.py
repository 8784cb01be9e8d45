"""feedparser's corpus (tests/data/feedparser/, see its README): each file states its expected
parse in an `Expect:` comment, a Python expression over feedparser's result. This reads the
parts of it that say something about what we keep of an entry (its title, text, link, id,
author and categories), so a test can check our RSS source against them."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "data" / "feedparser"
_EXPECT = re.compile(r"Expect:\s*(.*?)\s*-->", re.S)
_HEADER = re.compile(r"^Header:\s+([^:]+):(.*)$", re.M)

# feedparser's name for a part of an entry -> what we keep of it.
FIELDS = {
    ("title",): "title",
    ("title_detail", "value"): "title",
    ("description",): "body",
    ("summary",): "body",
    ("summary_detail", "value"): "body",
    ("content", 0, "value"): "content",  # we keep the summary when there is one, else the content
    ("link",): "link",
    ("id",): "id",
    ("guid",): "id",
    ("author",): "author",
    ("author_detail", "name"): "author",
    ("tags", 0, "term"): "tag",
}


@dataclass(frozen=True)
class Expectation:
    entry: int
    field: str  # title | body | content | link | id | author | tag
    value: str


@dataclass(frozen=True)
class CorpusFile:
    name: str  # path under CORPUS
    data: bytes
    headers: dict[str, str]  # what feedparser's harness would send over HTTP
    expect: str
    checks: tuple[Expectation, ...]


def _text(data: bytes) -> str:
    for bom, codec in (
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
        (b"<\x00?\x00", "utf-16-le"),
        (b"\x00<\x00?", "utf-16-be"),
    ):
        if data.startswith(bom):
            return data.decode(codec, "ignore")
    return data.decode("utf-8", "ignore")


def _path(node: ast.expr) -> tuple[int, tuple[str | int, ...]] | None:
    """entries[N][a][b]... as (N, (a, b, ...)); None for anything else."""
    keys: list[str | int] = []
    while isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        keys.append(node.slice.value)
        node = node.value
    if not (isinstance(node, ast.Name) and node.id == "entries" and keys and isinstance(keys[-1], int)):
        return None
    return keys[-1], tuple(reversed(keys[:-1]))


def checks_of(expect: str) -> tuple[Expectation, ...]:
    """The `a == 'text'` parts of an Expect line that concern an entry field we keep."""
    try:
        tree = ast.parse(expect, mode="eval").body
    except SyntaxError:
        return ()
    parts = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    out = []
    for part in parts:
        if not (isinstance(part, ast.Compare) and len(part.ops) == 1 and isinstance(part.ops[0], ast.Eq)):
            continue
        value = part.comparators[0]
        where = _path(part.left)
        if where is None or not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            continue
        field = FIELDS.get(where[1])
        if field:
            out.append(Expectation(where[0], field, value.value))
    return tuple(out)


def corpus() -> Iterator[CorpusFile]:
    for path in sorted(CORPUS.rglob("*.xml")):
        data = path.read_bytes()
        text = _text(data)
        found = _EXPECT.search(text)
        if not found:
            continue
        headers = {k.strip().lower(): v.strip() for k, v in _HEADER.findall(text)}
        headers.setdefault("content-type", "application/xml")
        checks = checks_of(found.group(1))
        if checks:
            yield CorpusFile(str(path.relative_to(CORPUS)), data, headers, found.group(1), checks)

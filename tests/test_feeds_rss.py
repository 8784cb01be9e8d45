"""RSS and Atom through our RSS source, served over loopback: the feed formats and encodings
feedparser reads, links, ids, per-entry authors and images; then feedparser's own corpus, each
file's `Expect:` line checked where it speaks of what we keep."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from liveblog.capture.feeds.base import EventTarget, SourceError, plain_text
from liveblog.capture.feeds.render import render_post
from liveblog.capture.feeds.routing import author_key
from liveblog.capture.feeds.rss import RssSource
from liveblog.demo.fakes import FakeNetworks, serve_fakes
from liveblog.models import SocialPost
from liveblog.services import Services
from tests.conftest import eventually, make_settings, run_server, seed
from tests.feed_stub import Collected
from tests.feedparser_corpus import CORPUS as CORPUS_DIR
from tests.feedparser_corpus import CorpusFile, Expectation, corpus


@pytest.fixture
async def fake() -> AsyncIterator[FakeNetworks]:
    async with serve_fakes() as fakes:
        yield fakes


TARGET = EventTarget("e", frozenset({"test"}), (), (), datetime(2026, 1, 1, tzinfo=UTC))


async def poll(
    fake: FakeNetworks, tmp_path: Path, body: bytes, content_type: str = "application/xml"
) -> list[SocialPost]:
    """One poll of our RSS source over a document served on loopback; the entries it keeps
    (those carrying #test)."""
    name = f"feed{len(fake.documents)}.xml"
    fake.documents[name] = (body, {"content-type": content_type})
    source = RssSource(
        make_settings(tmp_path, feeds={"allow_private_addresses": True}), f"{fake.base_url}/doc/{name}"
    )
    collected = Collected()
    try:
        await source.poll_once(collected, [TARGET])  # type: ignore[arg-type]
    finally:
        await source.close()
    return collected.posts


RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://blog.example/"><title>A blog</title><link>https://blog.example/</link></channel>
  <item rdf:about="https://blog.example/1"><title>RDF entry</title><link>https://blog.example/1</link>
    <description>Seen at #test</description><dc:creator>Rosa</dc:creator><dc:date>2026-05-14T09:30:00Z</dc:date></item>
</rdf:RDF>"""

ATOM03 = b"""<?xml version="1.0"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#">
  <title>Old Atom</title>
  <entry><title>Atom 0.3 entry</title><link rel="alternate" type="text/html" href="https://old.example/e1"/>
    <id>tag:old.example,2004:e1</id><issued>2026-05-14T09:30:00Z</issued><author><name>Ivo</name></author>
    <summary>Written at #test</summary></entry>
</feed>"""


async def test_rss_1_0_and_atom_0_3_are_read(fake: FakeNetworks, tmp_path: Path) -> None:
    (rdf,) = await poll(fake, tmp_path, RDF)
    assert (
        rdf.text.startswith("RDF entry") and rdf.url == "https://blog.example/1" and rdf.author_name == "Rosa"
    )
    assert rdf.posted_at == "2026-05-14T09:30:00.000Z"
    (atom,) = await poll(fake, tmp_path, ATOM03)
    assert (
        atom.text.startswith("Atom 0.3 entry")
        and atom.url == "https://old.example/e1"
        and atom.author_name == "Ivo"
    )
    assert atom.post_id == "tag:old.example,2004:e1"


@pytest.mark.parametrize(
    ("encoding", "title"),
    [
        (
            "utf16",
            "Grüße aus Köln",
        ),  # declared by a Python alias, as feedparser's corpus has it (encoding/utf16.xml)
        ("big5", "我希望你們喜歡這個會議"),
        ("gb2312", "我们在会议上见"),
        ("euc-kr", "회의에서 만나요"),
    ],
)
async def test_multi_byte_encodings_are_read(
    fake: FakeNetworks, tmp_path: Path, encoding: str, title: str
) -> None:
    document = (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>{title}</title>'
        f"<item><title>{title}</title><link>https://blog.example/1</link><category>test</category></item>"
        "</channel></rss>"
    )
    (post,) = await poll(fake, tmp_path, document.encode(encoding))
    assert post.text == title


async def test_the_http_charset_is_used(fake: FakeNetworks, tmp_path: Path) -> None:
    # No encoding in the document: the charset sent over HTTP says how to read the bytes.
    document = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>Quoted</title>'
        b"<description>She said \x93test.\x94 #test</description><link>https://blog.example/1</link></item>"
        b"</channel></rss>"
    )
    (post,) = await poll(fake, tmp_path, document, "application/rss+xml; charset=windows-1252")
    assert "She said \u201ctest.\u201d" in post.text


async def test_links_come_from_permalink_guids_xml_base_and_the_feed_url(
    fake: FakeNetworks, tmp_path: Path
) -> None:
    rss = (
        b'<rss version="2.0"><channel>'
        b'<item><title>Guid only</title><guid isPermaLink="true">https://blog.example/guid</guid><category>test</category></item>'
        b'<item><title>Relative</title><link>/posts/2</link><guid isPermaLink="false">id-2</guid><category>test</category></item>'
        b"</channel></rss>"
    )
    guid_only, relative = await poll(fake, tmp_path, rss)
    assert guid_only.url == "https://blog.example/guid" and guid_only.links == ("https://blog.example/guid",)
    assert relative.url == f"{fake.base_url}/posts/2" and relative.post_id == "id-2"
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://news.example/blog/">'
        b'<entry><title>Based</title><id>urn:x:1</id><link href="2026/talk"/><category term="test"/></entry></feed>'
    )
    (based,) = await poll(fake, tmp_path, atom)
    assert based.url == "https://news.example/blog/2026/talk"


async def test_entries_without_id_or_link_are_kept_under_a_stable_key(
    fake: FakeNetworks, tmp_path: Path
) -> None:
    rss = (
        b'<rss version="2.0"><channel>'
        b"<item><title>First thought</title><description>At #test</description></item>"
        b"<item><title>Second thought</title><description>At #test</description></item>"
        b"</channel></rss>"
    )
    first, second = await poll(fake, tmp_path, rss)
    again = await poll(fake, tmp_path, rss)
    assert first.post_id != second.post_id and first.post_id.startswith("sha256:")
    assert [p.post_id for p in again] == [first.post_id, second.post_id]  # the next poll stores nothing new


async def test_image_enclosures_and_media_content_are_kept_as_media(
    fake: FakeNetworks, tmp_path: Path
) -> None:
    rss = (
        b'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
        b"<item><title>Pictures</title><link>https://blog.example/p</link><category>test</category>"
        b'<enclosure url="https://blog.example/a.jpg" length="100" type="image/jpeg"/>'
        b'<enclosure url="https://blog.example/talk.mp3" length="100" type="audio/mpeg"/>'
        b'<media:content url="https://blog.example/b.png" type="image/png" width="640" height="480"/>'
        b"</item></channel></rss>"
    )
    (post,) = await poll(fake, tmp_path, rss)
    assert [(m["type"], m["url"]) for m in post.media] == [
        ("image", "https://blog.example/a.jpg"),
        ("image", "https://blog.example/b.png"),
    ]
    assert post.media[1]["width"] == 640 and post.media[1]["height"] == 480


# -- through the whole service: authors, images, the knowledge page ------------------------------


def rss_settings(tmp_path: Path, fake: FakeNetworks, **feeds: Any) -> Any:
    return make_settings(
        tmp_path,
        feeds={
            "allow_private_addresses": True,
            "moderate_by_default": False,
            "fetch_media": False,
            "backoff_max_seconds": 0.2,
            "request_timeout_seconds": 2.0,
            **feeds,
        },
        feeds_x={"enabled": False},
        feeds_rss={"urls": [fake.base_url + "/feed.rss"], "poll_seconds": 3600.0},
    )


async def social(svc: Services, session_id: str) -> list[Any]:
    return list(await svc.programme.items(session_id, kind="social"))


async def test_each_entry_has_its_own_author_so_one_can_be_blocked(
    fake: FakeNetworks, tmp_path: Path
) -> None:
    svc = Services.build(rss_settings(tmp_path, fake, fetch_media=True))
    await svc.open()
    try:
        ids = await seed(svc)
        fake.add_rss_item("Spam", "Buy now #test", ["test"], author="Spammer")
        fake.add_rss_item(
            "Write-up", "What we learnt at #test", ["test"], author="Ana Lima", image="photo.jpg"
        )
        svc.feeds.poll_now()
        await eventually(lambda: _count(svc, ids.session_id, 2), what="both entries")
        items = {i.author: i for i in await social(svc, ids.session_id)}
        assert set(items) == {"Spammer", "Ana Lima"}
        ana = items["Ana Lima"]
        assert ana.data["handle"] != items["Spammer"].data["handle"]  # not the feed's host for both
        assert re.search(
            r'<img class="social-image" src="/media/[A-Za-z0-9_-]+"', ana.html
        )  # the enclosure, our copy
        routes = await svc.db.read(lambda r: r.list_social_routes(session_id=ids.session_id))
        spammer = next(r.post for r in routes if r.post.author_name == "Spammer")
        await svc.feeds.moderation.add_rule(ids.event_id, "block_author", author_key(spammer), by="test")
        fake.add_rss_item("More spam", "Buy again #test", ["test"], author="Spammer")
        fake.add_rss_item("Second write-up", "More from #test", ["test"], author="Ana Lima")
        svc.feeds.poll_now()
        await eventually(lambda: _count(svc, ids.session_id, 3), what="Ana's second entry")
        authors = sorted(i.author for i in await social(svc, ids.session_id))
        assert authors == ["Ana Lima", "Ana Lima", "Spammer"]  # the blocked author's new entry never came in
    finally:
        await svc.close()


async def _count(svc: Services, session_id: str, n: int) -> bool:
    return len(await social(svc, session_id)) >= n


async def test_the_knowledge_page_credits_an_rss_post_once(fake: FakeNetworks, tmp_path: Path) -> None:
    settings = rss_settings(tmp_path, fake)
    svc = Services.build(settings)
    await svc.open()
    try:
        ids = await seed(svc)
        fake.add_rss_item("Write-up", "What we learnt at #test", ["test"])
        svc.feeds.poll_now()
        await eventually(lambda: _count(svc, ids.session_id, 1), what="the entry")
        (item,) = await social(svc, ids.session_id)
        await svc.programme.set_state(ids.session_id, "ended")
        async with run_server(settings, svc) as live, live.client() as http:
            page = (await http.get(f"/archive/sessions/{ids.session_id}")).text
        card = page[page.index(f'id="item-{item.id}"') :]
        card = card[: card.index("</article>")]
        assert len(re.findall(r"original post", card, re.I)) == 1, card
    finally:
        await svc.close()


# -- feedparser's corpus -------------------------------------------------------------------------


CORPUS = list(corpus())


def _flat(text: str) -> str:
    return " ".join(text.split())


def holds(check: Expectation, posts: list[SocialPost], base: str) -> bool:
    """Whether what we kept agrees with one `entries[N][field] == value` of an Expect line.

    We keep text, not HTML: an expected title or body is compared as written (plain-text
    constructs) or reduced to text (HTML ones). We read the feed from a URL, so (as feedparser
    does then) links and Atom ids are URIs relative to it: the harness's own URL becomes ours. We keep
    the author's name, not feedparser's "name (email)"."""
    if check.entry >= len(posts):
        return False
    post = posts[check.entry]
    text = _flat(post.text)
    if check.field == "title":
        return any(text.startswith(_flat(v)) for v in (check.value, plain_text(check.value)))
    if check.field in ("body", "content"):
        return any(_flat(v) in text for v in (check.value, plain_text(check.value)))
    if check.field in ("link", "id"):
        written = check.value.replace(HARNESS_URL, base.split("/doc/")[0])
        expected = urljoin(base, written)
        if check.field == "id":  # an Atom id is a URI (resolved); an RSS guid is any string
            return post.post_id in (written, expected)
        return post.url == (expected if expected.startswith(("https://", "http://")) else "")
    if check.field == "author":
        return post.author_name == re.sub(r"\s*\([^()]*@[^()]*\)$", "", check.value)
    return check.value.lower() in post.hashtags  # tag


HARNESS_URL = "http://127.0.0.1:8097"  # where feedparser's harness serves its corpus


# Files whose expected text is feedparser's mojibake, which we repair (each has its own test).
REPAIRED = {"encoding/bozo_linenoise.xml"}


def applies(check: Expectation, case: CorpusFile) -> bool:
    """What an Expect line says that concerns us: an empty expected value says nothing (our text
    of nothing is the feed's name or empty), and an entry's content is ours only when it has no
    summary (we keep one body, the summary)."""
    if case.name in REPAIRED:
        return False
    if not (check.value.strip() and (_flat(plain_text(check.value)) or check.field in ("link", "id"))):
        return False
    return not (check.field == "content" and re.search(rb"<(description|summary)\b", case.data))


async def test_feedparser_corpus_through_our_rss_source(fake: FakeNetworks, tmp_path: Path) -> None:
    assert len(CORPUS) > 300
    source = RssSource(make_settings(tmp_path, feeds={"allow_private_addresses": True}), fake.base_url)
    checked = 0
    failures: list[str] = []
    try:
        for case in CORPUS:
            checked += await _replay(fake, source, case, failures)
    finally:
        await source.close()
    assert not failures, f"{len(failures)} of {len(CORPUS)} files:\n" + "\n".join(failures[:40])
    assert checked > 250


async def _replay(fake: FakeNetworks, source: RssSource, case: CorpusFile, failures: list[str]) -> int:
    fake.documents[case.name] = (case.data, case.headers)
    source.url = f"{fake.base_url}/doc/{case.name}"
    posts = await source.read()
    checks = [c for c in case.checks if applies(c, case)]
    for check in checks:
        if not holds(check, posts, source.url):
            got = posts[check.entry] if check.entry < len(posts) else None
            failures.append(
                f"{case.name}: {check} but got {got and (got.text[:80], got.url, got.author_name, got.post_id)}"
            )
    return len(checks)


# -- feedparser's ill-formed feeds (tests/data/feedparser/illformed/) -------------------------------


ILLFORMED = CORPUS_DIR / "illformed"


async def _read(fake: FakeNetworks, tmp_path: Path, name: str, body: bytes) -> tuple[str, list[SocialPost]]:
    """Our source's read of a document served as a feed with no charset (as feedparser's harness
    serves its ill-formed corpus): the feed's URL and the posts of every entry."""
    fake.documents[name] = (body, {"content-type": "application/xml"})
    url = f"{fake.base_url}/doc/{name}"
    source = RssSource(make_settings(tmp_path, feeds={"allow_private_addresses": True}), url)
    try:
        return url, await source.read()
    finally:
        await source.close()


@pytest.mark.parametrize("path", sorted((ILLFORMED / "chardet").glob("*.xml")), ids=lambda p: p.stem)
async def test_a_feed_that_does_not_say_its_encoding_is_read_in_the_one_it_has(
    fake: FakeNetworks, tmp_path: Path, path: Path
) -> None:
    """Real feeds in Big5's neighbours (EUC-JP, EUC-KR, GB2312, KOI8-R, Shift_JIS, TIS-620,
    windows-1255) with no declaration: not guessed as windows-1252 (mojibake stored for good)."""
    data = path.read_bytes()
    encoding = re.search(rb"encoding == '([^']+)'", data)
    assert encoding
    document = data.decode(encoding.group(1).decode())
    # What the entry says, read from the file in the encoding feedparser's corpus names for it:
    # its title, else the start of its description (before any entity).
    said = re.search(r"<item>\s*<title>([^<]+)</title>|<entry>\s*<title>([^<]+)</title>", document)
    first = said and (said.group(1) or said.group(2))
    if not first:
        described = re.search(r"<description>\s*([^<&]{1,40})", document)
        assert described
        first = described.group(1)
    _, (post,) = await _read(fake, tmp_path, path.name, data)
    assert _flat(first) in _flat(post.text), post.text[:80]


async def test_broken_feeds_yield_their_entries_or_an_error_naming_the_feed(
    fake: FakeNetworks, tmp_path: Path
) -> None:
    # An XML declaration after a comment (not well-formed): feedparser's loose parser still reads
    # the entry, and so do we.
    broken = (ILLFORMED / "rdf_channel_empty_textinput.xml").read_bytes()
    _, (post,) = await _read(fake, tmp_path, "textinput.xml", broken)
    assert post.text == "crashes here" and post.post_id == "http://example.com/1"
    # Nothing but a comment: not a feed. The error names the feed (a host may serve several).
    empty = (ILLFORMED / "rss_empty_document.xml").read_bytes()
    with pytest.raises(SourceError) as refused:
        await _read(fake, tmp_path, "blog/empty.xml", empty)
    assert f"{fake.base_url}/doc/blog/empty.xml" in str(refused.value)
    assert "not a readable feed" in str(refused.value) and "<unknown>" not in str(refused.value)


# -- feedparser's sanitizer corpus: nothing live gets through ----------------------------------------

_DANGER = re.compile(
    rb"script|\bon[a-z]+\s*=|javascript:|vbscript:|expression\(|iframe|<object|<embed|&lt;(object|embed)",
    re.I,
)
_INERT = re.compile(
    r"<\s*/?\s*(script|iframe|object|embed|applet|frame|meta|link|style)\b|\bon[a-z]+\s*=|javascript:|vbscript:",
    re.I,
)


class _Live(HTMLParser):
    """What in rendered HTML could run or load: any element outside our few, any on* attribute,
    any href or src that is not http(s) or our /media/."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in {"div", "p", "span", "a", "img", "br", "ul", "li", "blockquote"}:
            self.found.append(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}")
            elif name in ("href", "src") and not re.match(r"(https?://|/media/)", value or ""):
                self.found.append(f"{tag} {name}={value}")


def _dangerous_sanitize_cases() -> list[Path]:
    """feedparser's sanitizer files that put scripts, event handlers, javascript: URLs, frames or
    objects into an entry."""
    return [
        path
        for path in sorted((CORPUS_DIR / "wellformed" / "sanitize").glob("*.xml"))
        if re.match(r"(entry|item)_", path.name)
        and _DANGER.search(re.sub(rb"<!--.*?-->", b"", path.read_bytes(), flags=re.S))
    ]


async def test_scripts_handlers_and_javascript_urls_never_reach_a_post(
    fake: FakeNetworks, tmp_path: Path
) -> None:
    cases = _dangerous_sanitize_cases()
    assert len(cases) > 240
    source = RssSource(make_settings(tmp_path, feeds={"allow_private_addresses": True}), fake.base_url)
    leaks: list[str] = []
    try:
        for path in cases:
            fake.documents[path.name] = (path.read_bytes(), {"content-type": "application/xml"})
            source.url = f"{fake.base_url}/doc/{path.name}"
            posts = await source.read()
            assert len(posts) == len(re.findall(rb"<(?:entry|item)\b", path.read_bytes())), path.name
            for post in posts:
                stored = [post.text, post.author_name, post.author_handle, post.post_id, post.url]
                stored += [*post.links, *(str(m.get("url")) for m in post.media)]
                leaks += [f"{path.name} stored {v[:80]!r}" for v in stored if _INERT.search(v)]
                live = _Live()
                live.feed(render_post(post))
                leaks += [f"{path.name} rendered {found}" for found in live.found]
    finally:
        await source.close()
    assert not leaks, "\n".join(leaks[:40])


async def test_a_utf_8_feed_with_a_stray_byte_keeps_its_text(fake: FakeNetworks, tmp_path: Path) -> None:
    """feedparser's bozo_linenoise.xml: declared UTF-8, holding "’<>”" in UTF-8 and one stray
    windows-1252 byte (0xA9, ©), as a CMS pasting text into a UTF-8 feed makes. feedparser reads
    the whole document as iso-8859-2 then ("â€™â€\x9dŠ", every accent of every entry spoilt);
    we keep the UTF-8 and read the stray byte alone as windows-1252 (the empty "<>" is markup
    that feedparser's sanitiser drops either way)."""
    data = (CORPUS_DIR / "encoding" / "bozo_linenoise.xml").read_bytes()
    _, (post,) = await _read(fake, tmp_path, "linenoise.xml", data)
    assert post.text == "’”©"

"""The static site export: crawled from disk, every link and image resolves, it shows the same
items as the live page, search has its offline index, and the command shows progress."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from liveblog.capture.notes import Author
from liveblog.capture.votes.common import Voter
from liveblog.errors import BadRequest
from liveblog.paths import UnsafePath, resource_dir, safe_join
from liveblog.services import Services
from liveblog.storage import Tx
from liveblog.web.app import make_templates
from liveblog.web.static_site import export_site
from tests.conftest import BACKENDS, LiveServer, Seed, db_arg, query
from tests.test_exports import a_full_event
from tests.test_federation_follow import World, make_world
from tests.test_federation_replies import published_note, reply

# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "0000050001e226059b0000000049454e44ae426082"
)
_REF = re.compile(r'\b(href|src|action)="([^"]*)"')
_ID = re.compile(r'\bid="([^"]+)"')


def crawl(root: Path) -> list[str]:
    """Every link, image and form target in every page, checked against the files on disk."""
    problems = []
    for page in root.rglob("*.html"):
        html = page.read_text()
        for attr, ref in _REF.findall(html):
            if attr == "src" and ref == "#":
                problems.append(f"{page.relative_to(root)}: an image with no source")
            if ref.startswith(("http://", "https://", "mailto:")) or ref == "#":
                continue
            if ref.startswith("/"):
                problems.append(f"{page.relative_to(root)}: absolute link {ref}")
                continue
            path, _, fragment = ref.partition("#")
            path = path.split("?", 1)[0]
            target = (page.parent / unquote(path)).resolve() if path else page
            if not target.is_file():
                problems.append(f"{page.relative_to(root)}: {ref} is missing")
            elif fragment and target.suffix == ".html" and fragment not in _ID.findall(target.read_text()):
                problems.append(f"{page.relative_to(root)}: {ref} has no #{fragment}")
    return problems


async def test_the_static_site_works_from_disk(live: LiveServer, seeded: Seed, tmp_path: Path) -> None:
    svc = live.services
    media_id = await svc.db.write(lambda tx: tx.insert_media(seeded.session_id, "image/png", PNG, None))
    invite = await svc.accounts.invite_for_token(seeded.token)
    assert invite is not None
    await svc.notes.handle(
        seeded.session_id,
        Author.from_invite(invite),
        {
            "type": "note.create",
            "client_id": str(uuid.uuid4()),
            "body": f"The board: ![whiteboard](/media/{media_id})",
        },
    )
    cactus, _ = await svc.audience.ask(
        seeded.session_id, Voter("p_cactusasker0000001"), {"body": "Do cacti photosynthesise at night?"}
    )
    await a_full_event(live, seeded)
    link, _ = await svc.answers.make_link(seeded.session_id, "Dr Rosa Fern")
    await svc.answers.answer(link, cactus.id, "Yes: *CAM plants* do.")
    out = tmp_path / "site"
    steps: list[tuple[str, int]] = []
    counts = await export_site(
        svc,
        make_templates().env,
        seeded.event_id,
        out,
        live.url,
        lambda step, total: steps.append((step, total)),
    )
    assert counts["photos"] == 1 and (out / "media" / f"{media_id}.png").read_bytes() == PNG
    assert len(steps) == steps[0][1] == counts["pages"]  # one progress step per page
    assert crawl(out) == []
    page = (out / "sessions" / f"{seeded.session_id}.html").read_text()
    assert f'src="../media/{media_id}.png"' in page
    assert "Answered after the talk" in page and "<em>CAM plants</em> do." in page
    assert 'href="../static/css/liveblog.css"' in page and "<script" not in page.replace(
        '<script type="application/ld+json">', ""
    )
    # The same items as the live knowledge page.
    async with live.client() as c:
        online = (await c.get(f"/archive/sessions/{seeded.session_id}")).text
    ids = re.compile(r'id="((?:item|comment)-\d+)"')
    assert ids.findall(page) == ids.findall(online) and len(ids.findall(page)) >= 8
    index_html = (out / "index.html").read_text()
    assert f'href="sessions/{seeded.session_id}.html"' in index_html and "<svg" in index_html
    assert (out / "tags" / "botany.html").is_file() and (out / "archive.json").is_file()
    search_index = (out / "search-index.js").read_text()
    assert search_index.startswith('window.LIVEBLOG_STEMMER = "english";\nwindow.LIVEBLOG_INDEX = [')
    assert "xanthophyll" in search_index and "Great" in search_index  # comments are searchable offline too
    assert (out / "static" / "js" / "snowball" / "english-stemmer.js").is_file()
    assert 'src="static/js/snowball/english-stemmer.js"' in (out / "search.html").read_text()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)  # the CLI on the configured store
async def test_the_export_site_command_shows_progress(live: LiveServer, seeded: Seed, tmp_path: Path) -> None:
    await live.services.programme.set_state(seeded.session_id, "ended")
    await live.services.archive.archive_due()
    out = tmp_path / "site"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liveblog.cli",
        "--db",
        db_arg(live.services.settings),
        "export-site",
        seeded.event_id,
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "pages" in err.decode() and (out / "index.html").is_file()
    assert crawl(out) == []


async def _plant(services: Services, sql: str, *params: object) -> None:
    """Rows no operation writes (ids that climb out of a folder), straight into the database: what
    a hostile import could once leave behind (imports now refuse them: tests/test_imports.py)."""

    async def op(tx: Tx) -> None:
        await tx.db.execute(sql, params)  # type: ignore[attr-defined]

    await services.db.write(op)


@pytest.mark.parametrize("kind", ["session", "tag", "media"])
async def test_export_site_writes_nothing_outside_its_folder(
    services: Services, seeded: Seed, tmp_path: Path, kind: str
) -> None:
    sid, hostile = seeded.session_id, "../../escaped-" + kind
    invite = await services.accounts.invite_for_token(seeded.token)
    assert invite is not None
    await services.notes.handle(
        sid,
        Author.from_invite(invite),
        {"type": "note.create", "client_id": str(uuid.uuid4()), "body": "A photo"},
    )
    await services.programme.set_state(sid, "ended")
    await services.archive.archive_session(sid)
    if kind == "session":
        await _plant(
            services,
            "INSERT INTO sessions (id, event_id, title, starts_at, ends_at, state, stream_epoch,"
            " created_at, updated_at, ended_at) SELECT ?, event_id, 'Escape', starts_at, ends_at, 'ended',"
            " stream_epoch, created_at, updated_at, updated_at FROM sessions WHERE id = ?",
            hostile,
            sid,
        )
        await services.archive.archive_session(hostile)
    elif kind == "tag":
        await _plant(
            services,
            "INSERT INTO session_tags (session_id, tag, source) VALUES (?, ?, 'organiser')",
            sid,
            hostile,
        )
    else:
        await _plant(
            services,
            "INSERT INTO media (id, session_id, content_type, bytes, size, sha256, created_at)"
            " VALUES (?, ?, 'image/png', ?, ?, '', '2026-05-14T09:00:00.000Z')",
            hostile,
            sid,
            PNG,
            len(PNG),
        )
        await _plant(
            services, "UPDATE items SET data = ? WHERE session_id = ?", json.dumps({"media": [hostile]}), sid
        )
    before = {p for p in tmp_path.rglob("*")}
    out = tmp_path / "a" / "b" / "site"
    with pytest.raises(BadRequest) as refused:
        await export_site(services, make_templates().env, seeded.event_id, out)
    assert refused.value.code == "unsafe_path" and "escaped-" + kind in refused.value.message
    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(out)} - before
    assert outside <= {tmp_path / "a", tmp_path / "a" / "b"}  # only the folders leading to the site


def test_safe_join_keeps_every_name_inside(tmp_path: Path) -> None:
    root = tmp_path / "site"
    (root / "tags").mkdir(parents=True)
    (root / "tags" / "link").symlink_to(tmp_path)  # a link planted inside that points out
    assert safe_join(root, "tags/ai.html") == (root / "tags" / "ai.html").resolve()
    for name in (
        "../x.html",
        "tags/../../x",
        "/etc/passwd",
        "tags\\..\\x",
        "a\x00b",
        "",
        "tags//x",
        "tags/link/x",
    ):
        with pytest.raises(UnsafePath):
            safe_join(root, name)


async def test_a_session_ended_a_moment_ago_is_in_the_static_site(
    services: Services, seeded: Seed, tmp_path: Path
) -> None:
    """Found by the rehearsal (tests/test_rehearsal.py): `export-site` right after the last talk ended
    left out every session the background check (archive.check_seconds) had not archived yet,
    without a word, though its knowledge page is made at once when someone opens it."""
    invite = await services.accounts.invite_for_token(seeded.token)
    assert invite is not None
    await services.notes.handle(
        seeded.session_id,
        Author.from_invite(invite),
        {"type": "note.create", "client_id": "last-words", "body": "The last words of the day"},
    )
    await services.programme.set_state(seeded.session_id, "ended")
    out = tmp_path / "site"
    await export_site(services, make_templates().env, seeded.event_id, out)
    page = out / "sessions" / f"{seeded.session_id}.html"
    assert page.is_file() and "The last words of the day" in page.read_text()
    assert f'href="sessions/{seeded.session_id}.html"' in (out / "index.html").read_text()


def test_the_vendored_snowball_stemmers_are_the_servers_release() -> None:
    """The static site stems queries with Snowball's JavaScript (static/js/snowball/), the server
    with the `snowballstemmer` package: both must come from one Snowball release, or a word may
    stem apart (3.1 changed English, German and Italian). Upgrading the package means running
    scripts/vendor-snowball-js again at the matching tag."""
    import snowballstemmer

    from liveblog.models import SNOWBALL_ALGORITHMS
    from liveblog.paths import resource_dir

    header = re.compile(r"Generated from (\w+)\.sbl by Snowball ([\d.]+)")
    package = Path(snowballstemmer.__file__).parent
    snowball = resource_dir("static") / "js" / "snowball"
    assert (snowball / "COPYING").read_text().startswith("Copyright")
    for name in filter(None, SNOWBALL_ALGORITHMS.values()):
        python = header.search((package / f"{name}_stemmer.py").read_text())
        javascript = header.search((snowball / f"{name}-stemmer.js").read_text())
        assert python and javascript, name
        assert javascript.groups() == python.groups(), f"{name}: vendored {javascript[2]}, server {python[2]}"


@pytest.fixture
async def world(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> AsyncIterator[World]:
    async for w in make_world(request, tmp_path, backend):
        yield w


async def test_fediverse_repliers_avatars_are_in_the_static_site(world: World, tmp_path: Path) -> None:
    """A fediverse reply shows its author's avatar beside it (/ap/avatars/ACCOUNT on the server,
    which the folder has no copy of): the site carries the avatar's copy with its photos, and
    our fediverse icon for a replier without one, as the server shows."""
    note_id = await published_note(world)
    world.peer.add("bob")
    world.peer.no_avatar.add("bob")
    for who, text in (("alice", "<p>Agreed!</p>"), ("bob", "<p>Me too</p>")):
        answer = await world.peer.post(
            f"{world.live.url}/ap/inbox", reply(world, who, 1, note_id, text), as_=who
        )
        assert answer.status_code == 202, answer.text
    svc, sid = world.live.services, world.seed.session_id
    rows = await query(
        svc.db,
        "SELECT c.account_id, fa.avatar FROM comments c"
        " JOIN federation_authors fa ON fa.account_id = c.account_id ORDER BY c.id",
    )
    [(_, alice_avatar), (_, bob_avatar)] = rows
    assert alice_avatar and not bob_avatar
    await svc.programme.set_state(sid, "ended")
    out = tmp_path / "site"
    await export_site(svc, make_templates().env, world.seed.event_id, out)
    assert crawl(out) == []
    page = (out / "sessions" / f"{sid}.html").read_text()
    assert f'<img class="comment-avatar" src="../media/{alice_avatar}.png"' in page
    assert '<img class="comment-avatar" src="../static/fediverse-icon.png"' in page
    assert "[photo]" not in page
    stored = await svc.programme.media(alice_avatar)
    assert stored is not None and (out / "media" / f"{alice_avatar}.png").read_bytes() == stored[1]
    icon = resource_dir("static") / "fediverse-icon.png"
    assert (out / "static" / "fediverse-icon.png").read_bytes() == icon.read_bytes()

"""Exports: the JSON export imports into a fresh instance with nothing lost (export -> import ->
export is equal), Atom feeds parse with the right entries, JSON-LD parses (LiveBlogPosting while
live, Article after), Markdown carries the record, the sitemap lists knowledge pages."""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from liveblog.archive.exports import comparable, export_json
from liveblog.capture.imports import import_json
from liveblog.capture.notes import Author
from liveblog.errors import BadRequest, Conflict
from liveblog.services import Services
from tests.archive_fixtures import fill_session, organiser_account
from tests.conftest import (
    BACKENDS,
    FAST_HASHER,
    LiveServer,
    Seed,
    db_arg,
    make_settings,
    organiser_csrf,
    run_server,
)

ATOM = "{http://www.w3.org/2005/Atom}"


async def a_full_event(live: LiveServer, seeded: Seed) -> None:
    svc = live.services
    svc.accounts.hasher = FAST_HASHER
    filled = await fill_session(svc, seeded)
    await svc.programme.update_session(seeded.session_id, {"hashtags": ["#Botany"]})
    await svc.programme.set_state(seeded.session_id, "ended")
    await svc.archive.archive_session(seeded.session_id)
    await svc.archive.set_summary(seeded.session_id, "Plants **eat light**", "org")
    await svc.archive.set_organiser_tags(seeded.session_id, "photosynthesis")
    account = await organiser_account(svc)
    await svc.notes.handle(
        seeded.session_id,
        Author.organiser(account),
        {
            "type": "note.update",
            "client_id": str(uuid.uuid4()),
            "item_id": filled.note_id,
            "body": "Edited after",
        },
    )
    await svc.notes.handle(
        seeded.session_id,
        Author.organiser(account),
        {"type": "note.delete", "client_id": str(uuid.uuid4()), "item_id": filled.photo_note_id},
    )
    async with live.client(follow_redirects=False) as c:
        r = await c.post("/account/register", data={"username": "commenter", "password": "a long password"})
        assert r.status_code == 303
        c.headers.update(organiser_csrf(str(c.cookies["lb_reader"])))
        r = await c.post(f"/sessions/{seeded.session_id}/comments", data={"body": "Great *talk*"})
        root = int(r.headers["location"].rsplit("-", 1)[1])
        await c.post(
            f"/sessions/{seeded.session_id}/comments", data={"body": "Agreed", "parent_id": str(root)}
        )
        await c.post(f"/sessions/{seeded.other_session_id}/comments", data={"body": "What will you cover?"})


async def test_export_import_round_trip_loses_nothing(live: LiveServer, seeded: Seed, tmp_path: Path) -> None:
    await a_full_event(live, seeded)
    first = await export_json(live.services.db, seeded.event_id)
    text = json.dumps(first)  # it is plain JSON
    assert first["version"] == 1 and first["format"] == "liveblog-archive"
    # Moderated-out content never leaves: the deleted note's text is gone from items and changes.
    assert "The slide" not in text and "0123456789abcdef" not in text
    fresh_settings = make_settings(tmp_path / "fresh")
    (tmp_path / "fresh").mkdir()
    fresh = Services.build(fresh_settings)
    await fresh.open()
    try:
        event_id, count = await import_json(fresh.db, json.loads(text))
        assert (event_id, count) == (seeded.event_id, 2)
        second = await export_json(fresh.db, seeded.event_id)
        assert comparable(second) == comparable(first)
        # Importing twice is refused: the ids are in use.
        try:
            await import_json(fresh.db, json.loads(text))
        except Conflict:
            pass
        else:
            raise AssertionError("a second import must be refused")
        # The imported instance serves the same knowledge page items and finds them.
        async with run_server(fresh_settings, fresh) as other, other.client() as c, live.client() as orig:
            a = (await orig.get(f"/archive/sessions/{seeded.session_id}")).text
            b = (await c.get(f"/archive/sessions/{seeded.session_id}")).text
            assert re.findall(r'id="(item-\d+|comment-\d+)"', a) == re.findall(
                r'id="(item-\d+|comment-\d+)"', b
            )
            assert "Edited after the event" in b and "Plants <strong>eat light</strong>" in b
            found = await c.get("/search", params={"q": "xanthophyll"})
            assert f"/archive/sessions/{seeded.session_id}" in found.text
    finally:
        await fresh.close()


async def test_import_rejects_what_is_not_an_export(services: Services) -> None:
    for doc in ({}, {"format": "liveblog-archive", "version": 99, "event": {}, "sessions": []}, [1, 2]):
        try:
            await import_json(services.db, doc)
        except BadRequest as exc:
            assert exc.code == "invalid_export"
        else:
            raise AssertionError(f"{doc!r} must be refused")


async def test_feeds_jsonld_markdown_and_sitemap(live: LiveServer, seeded: Seed) -> None:
    await a_full_event(live, seeded)
    async with live.client() as c:
        live_page = await c.get(f"/sessions/{seeded.other_session_id}")
        assert "application/ld+json" not in live_page.text  # scheduled: nothing to say yet
        await live.services.programme.set_state(seeded.other_session_id, "live")
        invite = await live.services.accounts.invite_for_token(seeded.token)
        assert invite is not None
        await live.services.notes.handle(
            seeded.other_session_id,
            Author.from_invite(invite),
            {"type": "note.create", "client_id": str(uuid.uuid4()), "body": "Live </script><b>note</b>"},
        )
        live_page = await c.get(f"/sessions/{seeded.other_session_id}")
        ld = json.loads(
            re.search(r'<script type="application/ld\+json">(.*?)</script>', live_page.text, re.S)[1]
        )
        assert (
            ld["@type"] == "LiveBlogPosting"
            and ld["liveBlogUpdate"][0]["articleBody"] == "Live </script><b>note</b>"
        )
        page = await c.get(f"/archive/sessions/{seeded.session_id}")
        ld = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', page.text, re.S)[1])
        assert ld["@type"] == "Article" and ld["headline"] == "Keynote" and "botany" in ld["keywords"]
        assert f'<link rel="canonical" href="{live.url}/archive/sessions/{seeded.session_id}">' in page.text
        assert '<meta property="og:title" content="Keynote">' in page.text

        feed = ET.fromstring((await c.get(f"/events/{seeded.event_id}/feed.atom")).content)
        titles = [e.findtext(f"{ATOM}title") for e in feed.iter(f"{ATOM}entry")]
        assert titles == ["Keynote"]
        tag = ET.fromstring((await c.get("/tags/botany/feed.atom")).content)
        assert [e.findtext(f"{ATOM}title") for e in tag.iter(f"{ATOM}entry")] == ["Keynote (Test Summit)"]
        comments = ET.fromstring((await c.get("/comments.atom")).content)
        entries = list(comments.iter(f"{ATOM}entry"))
        assert len(entries) == 3 and entries[0].findtext(f"{ATOM}title") == "commenter on Workshop"
        assert "<em>talk</em>" in "".join(e.findtext(f"{ATOM}content") or "" for e in entries)
        ev_comments = ET.fromstring((await c.get(f"/events/{seeded.event_id}/comments.atom")).content)
        assert len(list(ev_comments.iter(f"{ATOM}entry"))) == 3
        assert (await c.get("/events/nope/comments.atom")).status_code == 404

        md = (await c.get(f"/archive/sessions/{seeded.session_id}.md")).text
        assert md.startswith("# Keynote") and "Plants **eat light**" in md and "xanthophyll" in md
        assert "| Chlorophyll | 2 | 67% |" in md and "Great *talk*" in md
        event_md = (await c.get(f"/events/{seeded.event_id}/archive.md")).text
        assert "## Keynote" in event_md and "2 comments" in event_md
        one = (await c.get(f"/archive/sessions/{seeded.session_id}.json")).json()
        assert [s["session"]["id"] for s in one["sessions"]] == [seeded.session_id]

        sitemap = ET.fromstring((await c.get("/sitemap.xml")).content)
        locs = [e.text for e in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
        assert (
            f"{live.url}/archive/sessions/{seeded.session_id}" in locs and f"{live.url}/tags/botany" in locs
        )


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)  # the CLI on the configured store
async def test_cli_export_and_import(live: LiveServer, seeded: Seed, tmp_path: Path) -> None:
    """`liveblog export` then `liveblog import` into another database file."""
    import asyncio
    import sys

    await a_full_event(live, seeded)
    out = tmp_path / "export.json"
    db = db_arg(live.services.settings)
    # The running server holds the database open; the CLI reads it as a second process (WAL on SQLite).
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liveblog.cli",
        "--db",
        db,
        "export",
        seeded.event_id,
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    other = tmp_path / "other.sqlite3"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liveblog.cli",
        "--db",
        str(other),
        "import",
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "2 sessions" in err.decode()

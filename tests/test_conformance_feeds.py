"""Atom feeds stay well-formed XML and valid RFC 4287: characters XML 1.0 cannot carry are dropped
where text enters and again where Atom is written, and every feed the app serves validates
against RFC 4287's RELAX NG schema (tests/data/atom.rnc) with jing (Debian's `jing`, installed by
scripts/test), plus the schema's two Schematron rules, which jing does not run."""

from __future__ import annotations

import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from liveblog.capture.notes import Author
from liveblog.capture.votes import Moderator, Voter
from liveblog.models import SocialPost
from liveblog.services import Services
from liveblog.storage import Tx
from tests.archive_fixtures import note
from tests.conftest import LiveServer, Seed, eventually, organiser_csrf, query
from tests.test_exports import a_full_event
from tests.test_federation_follow import World, make_world
from tests.test_federation_replies import published_note, reply

ATOM = "{http://www.w3.org/2005/Atom}"
SCHEMA = Path(__file__).parent / "data" / "atom.rnc"
# Outside XML 1.0's Char production: C0 controls other than tab, newline and carriage return,
# and the noncharacters U+FFFE and U+FFFF (the surrogates cannot enter: decode_json refuses them).
NOT_XML = "\x01\x0b\x1f\ufffe\uffff\x08"


def jing(paths: list[Path]) -> None:
    """Validate every file in one jing run (one JVM start); the failure names file, line and rule."""
    assert shutil.which("jing"), "jing is missing: scripts/test installs it (Debian package jing)"
    run = subprocess.run(
        ["jing", "-c", str(SCHEMA), *map(str, paths)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


def schematron_rules(body: bytes) -> None:
    """RFC 4287's two Schematron rules: an author for every entry (its own or the feed's), and an
    alternate link or content for every entry."""
    feed = ET.fromstring(body)
    feed_author = feed.find(f"{ATOM}author") is not None
    for entry in feed.iter(f"{ATOM}entry"):
        assert feed_author or entry.find(f"{ATOM}author") is not None, ET.tostring(entry)
        links = [link for link in entry.findall(f"{ATOM}link") if link.get("rel", "alternate") == "alternate"]
        assert links or entry.find(f"{ATOM}content") is not None, ET.tostring(entry)


async def author(services: Services, seeded: Seed) -> Author:
    invite = await services.accounts.invite_for_token(seeded.token)
    assert invite is not None
    return Author.from_invite(invite)


async def test_characters_xml_cannot_carry_are_dropped_from_notes_titles_and_the_atom_feeds(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    sid = seeded.session_id
    await svc.programme.update_session(
        sid, {"hashtags": ["#Botany"], "title": f"Key{NOT_XML}note", "speakers": [f"Rosa{NOT_XML} Lind"]}
    )
    await note(svc, sid, await author(svc, seeded), f"Leaves{NOT_XML} are green", key_point=True)
    await svc.programme.set_state(sid, "ended")
    await svc.archive.archive_session(sid)

    stored = await svc.db.read(lambda r: r.list_items(sid, kind="note"))
    assert [i.body for i in stored] == ["Leaves are green"]  # dropped where it entered
    session = await svc.programme.session(sid)
    assert session.title == "Keynote" and session.speakers == ("Rosa Lind",)
    async with live.client() as c:
        for path in (f"/events/{seeded.event_id}/feed.atom", "/tags/botany/feed.atom"):
            response = await c.get(path)
            assert response.status_code == 200
            feed = ET.fromstring(response.content)  # well-formed: it was not
            [entry] = feed.iter(f"{ATOM}entry")
            assert "Leaves are green" in (entry.findtext(f"{ATOM}content") or "")
            assert entry.findtext(f"{ATOM}author/{ATOM}name") == "Rosa Lind"


async def test_comments_questions_polls_and_invite_names_drop_them_too(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    sid = seeded.session_id
    invite = await svc.accounts.invite_for_token(seeded.token)
    assert invite is not None
    question, _ = await svc.audience.ask(sid, Voter("asker"), {"body": f"Why{NOT_XML} green?"})
    poll = await svc.audience.create_poll(
        sid,
        Moderator("Ada", invite.id),
        {
            "question": f"Best{NOT_XML} pigment?",
            "kind": "single",
            "options": [f"Chloro{NOT_XML}phyll", "Carotene"],
        },
    )
    assert question.body == "Why green?" and poll.body == "Best pigment?"
    assert [o["label"] for o in poll.data["options"]] == ["Chlorophyll", "Carotene"]
    async with live.client(follow_redirects=False) as c:
        await c.post("/account/register", data={"username": "commenter", "password": "a long password"})
        c.headers.update(organiser_csrf(str(c.cookies["lb_reader"])))
        r = await c.post(f"/sessions/{sid}/comments", data={"body": f"Great{NOT_XML} talk"})
        assert r.status_code == 303
    thread = await svc.comments.thread(sid)
    assert [n.comment.body for n in thread.roots] == ["Great talk"]
    named, _ = await svc.accounts.invite(seeded.event_id, sid, f"Grace{NOT_XML} Hopper")
    assert named.name == "Grace Hopper"


async def test_social_posts_drop_them_from_every_network(live: LiveServer, seeded: Seed) -> None:
    svc = live.services
    sid = seeded.session_id
    await svc.programme.update_session(sid, {"hashtags": ["#Botany"]})
    await svc.programme.set_state(sid, "live")
    post = SocialPost(
        network="bluesky",
        post_id="at://did:plc:rosa/app.bsky.feed.post/1",
        author_handle="rosa.example",
        author_name=f"Rosa{NOT_XML} Lind",
        text=f"Leaves{NOT_XML} #botany",
        url="https://bsky.app/x",
        posted_at="2026-05-14T09:10:00.000Z",
        hashtags=("botany",),
        media=({"type": "image", "url": "https://cdn.example/x.png", "alt": f"A{NOT_XML} leaf"},),
    )
    result = await svc.feeds.ingest("bluesky", [post])
    assert result.routed[post.post_id] == [sid]
    session = await svc.programme.session(sid)
    routes = await svc.feeds.moderation.queue(session) + await svc.feeds.moderation.recent(session)
    assert [(r.post.text, r.post.author_name, r.post.media[0]["alt"]) for r in routes] == [
        ("Leaves #botany", "Rosa Lind", "A leaf")
    ]


async def test_rows_stored_before_the_input_rule_still_make_well_formed_atom(
    live: LiveServer, seeded: Seed
) -> None:
    """Text stored before characters were dropped at input (or by an older version) is cleaned as
    the feed is written."""
    svc = live.services
    sid = seeded.session_id
    await svc.programme.update_session(sid, {"hashtags": ["#Botany"]})
    await svc.programme.set_state(sid, "ended")
    await svc.archive.archive_session(sid)

    async def op(tx: Tx) -> None:  # the storage layer below every input rule
        await tx.set_summary(sid, f"Old{NOT_XML} summary", f"<p>Old{NOT_XML} summary</p>", "org")

    await svc.db.write(op)
    async with live.client() as c:
        for path in (f"/events/{seeded.event_id}/feed.atom", "/tags/botany/feed.atom"):
            feed = ET.fromstring((await c.get(path)).content)
            [entry] = feed.iter(f"{ATOM}entry")
            assert entry.findtext(f"{ATOM}content") == "<p>Old summary</p>"


async def test_every_atom_feed_validates_against_rfc_4287(
    live: LiveServer, seeded: Seed, tmp_path: Path
) -> None:
    """Every feed the app serves, with realistic content (Unicode, markup, a reply, several
    sessions and events), through RFC 4287's RELAX NG schema."""
    svc = live.services
    sid = seeded.session_id
    await a_full_event(live, seeded)  # an archived session with key points, a summary, comments and a reply
    await svc.programme.update_session(
        sid, {"speakers": ["Zoë Ångström", "Jo <Lee>"], "title": "Photosynthesis & you: “light” in <leaves>"}
    )
    await svc.archive.set_organiser_tags(sid, "photosynthesis, Pflanzen")
    await svc.programme.update_session(seeded.other_session_id, {"hashtags": ["#Botany"]})
    await svc.programme.set_state(seeded.other_session_id, "live")
    await svc.programme.set_state(seeded.other_session_id, "ended")
    await svc.archive.archive_session(seeded.other_session_id)  # no key points: the fallback entry
    async with live.client() as c:
        paths = [
            f"/events/{seeded.event_id}/feed.atom",
            "/tags/botany/feed.atom",
            "/tags/pflanzen/feed.atom",
            "/comments.atom",
            f"/events/{seeded.event_id}/comments.atom",
        ]
        files = []
        for n, path in enumerate(paths):
            response = await c.get(path)
            assert response.status_code == 200 and response.headers["content-type"].startswith(
                "application/atom+xml"
            )
            assert len(list(ET.fromstring(response.content).iter(f"{ATOM}entry"))) >= 1, path
            schematron_rules(response.content)
            files.append(tmp_path / f"feed-{n}.xml")
            files[-1].write_bytes(response.content)
    jing(files)


def test_jing_refuses_what_rfc_4287_does_not_allow(tmp_path: Path) -> None:
    """The check can fail: an entry without its required id or with a date that is not one."""
    bad = tmp_path / "bad.xml"
    bad.write_text(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>'
        f"<updated>yesterday</updated><entry><title>e</title><updated>{uuid.uuid4()}</updated></entry></feed>"
    )
    with pytest.raises(AssertionError, match="updated"):
        jing([bad])


@pytest.fixture
async def world(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> AsyncIterator[World]:
    async for w in make_world(request, tmp_path, backend):
        yield w


async def test_fediverse_replies_names_and_webmention_titles_drop_them_too(world: World) -> None:
    """What other servers send is input too: a reply's text, its author's and a follower's name,
    a Webmention source's title lose the characters XML cannot carry as they come in (the
    comments' Atom feed, the pages and the organisers' follower list then stay well-formed)."""
    live, peer = world.live, world.peer
    named = peer.document
    peer.document = lambda name: {**named(name), "preferredUsername": f"ro{NOT_XML}sa"}  # type: ignore[method-assign]
    note_id = await published_note(world)
    [(handle,)] = await query(live.services.db, "SELECT handle FROM federation_followers")
    assert handle == f"@rosa@{peer.url.removeprefix('http://')}"
    content = f"<p>Great{NOT_XML} talk</p>"
    answer = await peer.post(f"{live.url}/ap/inbox", reply(world, "alice", 1, note_id, content), as_="alice")
    assert answer.status_code == 202, answer.text
    target = f"{live.url}/sessions/{world.seed.session_id}"
    peer.pages["/posts/rosa"] = f'<title>Rosa{NOT_XML} writes</title><a href="{target}">the talk</a>'
    async with live.client() as c:
        sent = await c.post("/webmention", data={"source": f"{peer.url}/posts/rosa", "target": target})
        assert sent.status_code == 202, sent.text

        async def both() -> list[tuple[object, ...]]:
            rows = await query(live.services.db, "SELECT author, body, html FROM comments ORDER BY id")
            return rows if len(rows) == 2 else []

        reply_row, mention_row = await eventually(both, what="the reply and the Webmention's comment")
        assert reply_row == (handle, "Great talk", "<p>Great talk</p>")
        assert mention_row[1] == f"Mentioned in [Rosa writes](<{peer.url}/posts/rosa>)"
        assert "Rosa writes</a>" in str(mention_row[2])
        await live.services.comments.moderate(
            int((await query(live.services.db, "SELECT max(id) FROM comments"))[0][0]), "approve"
        )
        feed = ET.fromstring((await c.get("/comments.atom")).content)
        assert len(list(feed.iter(f"{ATOM}entry"))) == 2

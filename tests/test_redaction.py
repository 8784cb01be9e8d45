"""Moderated-out text never leaves (docs/archive.md, "What is redacted"): for every kind of item
a moderator or its author can remove (a comment hidden, a comment deleted by a moderator or by
its author, a fediverse reply hidden or deleted by its author, a question hidden or merged, a
speaker's later answer hidden, a collected post removed, a note deleted), its text is in none
of the outputs a reader can reach: the websocket resumed from seq 0 (from the hub's ring and
from storage), SSE resumed the same way, replay.json, the JSON, Markdown and Atom exports,
search, the knowledge, event, tag, replay and embed pages and the knowledge page's paged
fragments, the chapters, the proceedings (EPUB and the PDF's HTML), the public APIs, the
asker's account page, the ActivityPub outbox, note objects and deliveries, and the static site
(its search index too).
Each output is also checked to carry the text of items that were not removed, so a check cannot
pass by reading an empty page. Run on either backend (LIVEBLOG_TEST_BACKEND=postgres)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from liveblog.archive.exports import comparable, export_json
from liveblog.archive.proceedings import epub_bytes, gather, pdf_html
from liveblog.capture.feeds.routing import publish
from liveblog.capture.imports import import_json
from liveblog.capture.notes import Author
from liveblog.capture.votes import Moderator, Voter
from liveblog.models import REDACTED_OPS, Account, Ack, SocialPost
from liveblog.services import Services
from liveblog.settings import Settings
from liveblog.storage import Tx
from liveblog.storage.schema import POSTGRES_SCRIPTS, SQLITE_SCRIPTS
from liveblog.web.app import make_templates
from liveblog.web.static_site import export_site
from tests.archive_fixtures import note, organiser_account
from tests.conftest import (
    FAST_HASHER,
    LiveServer,
    Seed,
    eventually,
    make_settings,
    organiser_csrf,
    query,
    seed,
    settings_for,
)
from tests.fediverse_peer import AP_JSON, Peer, running_peer
from tests.servers import RedisServer
from tests.wsclient import connect, recv_until

# One made-up word per removed item: each is findable by search while it is public (but for
# the later answer, which search does not index).
SECRETS = {
    "comment hidden": "zorblatthidden",
    "comment deleted by a moderator": "quuxmoddeleted",
    "comment deleted by its author": "plughselfdeleted",
    "fediverse reply hidden": "snarkfedihidden",
    "fediverse reply deleted by its author": "boojumfediself",
    "question hidden": "frobozzquestion",
    "question merged": "jabberwockmerged",
    "later answer hidden": "bandersnatchanswer",
    "later answer to a question then hidden": "tumtumanswered",
    "collected post removed": "grueblockedpost",
    "note deleted": "xyzzydeletednote",
}
SEARCHED = [kind for kind in SECRETS if not kind.startswith("later answer")]
# Text that stays public: every output checked must carry each of these.
KEPT = {
    "comment": "wombatkeptcomment",
    "comment hidden and shown again": "numbatreshown",
    "fediverse reply": "dingofedireply",
    "note": "quokkakeptnote",
    "later answer": "wallabylateranswer",
}
COMMENTS = ("comment", "comment hidden and shown again", "fediverse reply")
# What the stream and most outputs carry: a later answer is only on the knowledge page, in the
# exports and on the static site.
STREAMED = (*COMMENTS, "note")
ARCHIVED = (*STREAMED, "later answer")
BOOK = ("note", "later answer")  # the proceedings have no comments


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    """The fediverse peer runs on loopback: fetches from it are allowed here."""
    return settings_for(request, tmp_path, backend, federation={"allow_private_addresses": True})


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    async with running_peer() as p:
        yield p


@dataclass
class Scene:
    session_id: str
    event_id: str
    epoch: str
    head: int
    kept_photo: str
    removed_photo: str
    kept_note: int
    deleted_note: int
    speaker_token: str
    live_pages: dict[str, str]


@contextlib.asynccontextmanager
async def reader(live: LiveServer, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """A newly registered reader's browser (its CSRF token set, as its pages give it)."""
    async with live.client(follow_redirects=False) as c:
        r = await c.post("/account/register", data={"username": name, "password": "a long password"})
        assert r.status_code == 303, r.text
        c.headers.update(organiser_csrf(str(c.cookies["lb_reader"])))
        yield c


async def note_taker(services: Services, seeded: Seed) -> Author:
    invite = await services.accounts.invite_for_token(seeded.token)
    assert invite is not None
    return Author.from_invite(invite)


async def delete_note(services: Services, session_id: str, author: Author, item_id: int) -> Ack:
    return await services.notes.handle(
        session_id, author, {"type": "note.delete", "client_id": str(uuid.uuid4()), "item_id": item_id}
    )


async def a_kept_and_a_deleted_note(services: Services, session_id: str, author: Author) -> int:
    """A note that stays, and one deleted (its id)."""
    await note(services, session_id, author, f"Kept: {KEPT['note']}")
    gone = await note(services, session_id, author, f"Gone: {SECRETS['note deleted']}")
    await delete_note(services, session_id, author, gone)
    return gone


async def a_reader(services: Services, name: str) -> Account:
    services.accounts.hasher = FAST_HASHER
    account, _ = await services.readers.register(name, "a long password")
    return account


async def post_comment(c: httpx.AsyncClient, session_id: str, body: str) -> int:
    r = await c.post(f"/sessions/{session_id}/comments", data={"body": body})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("-", 1)[1])


async def collected_post(live: LiveServer, seeded: Seed, text: str) -> int:
    """A post collected and approved the way the feeds capture does it; its stream item id."""
    post = SocialPost(
        network="mastodon",
        post_id=uuid.uuid4().hex,
        author_handle="rosa@example.social",
        author_name="Rosa",
        text=text,
        url="https://example.social/@rosa/1",
        posted_at="2026-05-14T09:20:00.000Z",
    )

    async def op(tx: Tx) -> int:
        row = await tx.insert_social_post(post)
        assert row is not None
        await tx.insert_social_route(row, seeded.event_id, seeded.session_id, "approved")
        item = await publish(tx, row, post, seeded.session_id)
        await tx.set_social_route(
            row, seeded.event_id, seeded.session_id, state="approved", item_id=item.id, decided_by="test"
        )
        return item.id

    return await live.services.db.write(op)


def fedi_reply(peer: Peer, number: int, to: str, text: str, who: str = "fan") -> dict[str, Any]:
    actor = peer.actor(who)
    note = {
        "id": f"{actor}/statuses/{number}",
        "type": "Note",
        "attributedTo": actor,
        "inReplyTo": to,
        "content": f"<p>{text}</p>",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
    }
    return {"id": f"{note['id']}/activity", "type": "Create", "actor": actor, "object": note}


async def followed_from_the_fediverse(live: LiveServer, peer: Peer, sid: str) -> None:
    """An account on another server follows the session: its notes are published from now on."""
    actor, session_actor = peer.add("fan"), f"{live.url}/ap/sessions/{sid}"
    follow = {"id": f"{actor}/follows/1", "type": "Follow", "actor": actor, "object": session_actor}
    answer = await peer.post(f"{session_actor}/inbox", follow, as_="fan")
    assert answer.status_code == 202, answer.text
    await peer.wait_for("Accept")


async def published(peer: Peer, live: LiveServer, item_id: int) -> str:
    """The note's id as followers got it (its Create delivered)."""
    note_id = f"{live.url}/ap/notes/{item_id}"

    def arrived() -> bool:
        return any(d.activity.get("object", {}).get("id") == note_id for d in peer.received)

    await eventually(arrived, what=f"note {item_id} to be delivered")
    return note_id


async def fediverse_replies(live: LiveServer, peer: Peer, note_id: str) -> int:
    """Three replies from the fediverse, become comments: the id of the one to be hidden."""
    for number, text in enumerate(
        (
            f"Agreed {KEPT['fediverse reply']}",
            f"Troll {SECRETS['fediverse reply hidden']}",
            f"Oops {SECRETS['fediverse reply deleted by its author']}",
        ),
        1,
    ):
        answer = await peer.post(f"{live.url}/ap/inbox", fedi_reply(peer, number, note_id, text), as_="fan")
        assert answer.status_code == 202, answer.text
    rows = await query(live.services.db, "SELECT body, id FROM comments ORDER BY id")
    [hidden] = [int(i) for body, i in rows if SECRETS["fediverse reply hidden"] in body]
    return hidden


async def fediverse_reply_deleted(live: LiveServer, peer: Peer, number: int = 3, who: str = "fan") -> None:
    """A reply's author deletes it (a Delete from their server): by default the third of
    fediverse_replies."""
    actor = peer.actor(who)
    delete = {
        "id": f"{actor}/statuses/{number}#delete",
        "type": "Delete",
        "actor": actor,
        "object": f"{actor}/statuses/{number}",
    }
    assert (await peer.post(f"{live.url}/ap/inbox", delete, as_=who)).status_code == 202


async def live_pages(live: LiveServer, sid: str, last: int) -> dict[str, str]:
    """The live session's paged outputs (read before it ends: an ended session's go to its
    knowledge page): its first numbered page, and the cards older than item `last`."""
    pages = {}
    async with live.client() as c:
        for path in (f"/sessions/{sid}/page/1", f"/sessions/{sid}/older?before={last}"):
            r = await c.get(path)
            assert r.status_code == 200, (path, r.status_code)
            pages[path] = r.text
    return pages


async def answered_after_the_talk(
    svc: Services, sid: str, moderator: Moderator, kept: int, hidden: int, withdrawn: int
) -> str:
    """Three questions answered by the speaker after the talk: one answer then hidden, and one
    whose question is hidden after it was answered; the speaker link's token."""
    link, token = await svc.answers.make_link(sid, "Grace")
    await svc.answers.answer(link, kept, f"Yes: {KEPT['later answer']}")
    await svc.answers.answer(link, hidden, f"Gossip: {SECRETS['later answer hidden']}")
    await svc.answers.moderate(hidden, "hide", "org")
    await svc.answers.answer(
        link, withdrawn, f"About that: {SECRETS['later answer to a question then hidden']}"
    )
    await svc.audience.moderate_question(withdrawn, moderator, {"action": "hide"})
    return token


async def act_out(live: LiveServer, seeded: Seed, peer: Peer) -> Scene:
    """Every removable kind written while public (so search, the stream and the hub's ring saw
    it), then removed the way moderators and authors remove it; the session then ends, and
    the speaker answers after the talk."""
    svc = live.services
    svc.accounts.hasher = FAST_HASHER
    sid = seeded.session_id
    invite = await svc.accounts.invite_for_token(seeded.token)
    assert invite is not None
    ada = Author.from_invite(invite)
    await svc.programme.update_session(
        sid, {"hashtags": ["#Redaction"], "recording_url": "https://media.example.org/talk.mp4"}
    )  # a recording: the session's chapters are published
    await followed_from_the_fediverse(live, peer, sid)
    kept_photo, removed_photo = [
        await svc.db.write(lambda tx, data=data: tx.insert_media(sid, "image/png", data, invite.id))
        for data in (b"a photo that stays", b"a photo posted by mistake")
    ]
    kept_note = await note(svc, sid, ada, f"A public note: {KEPT['note']} ![](/media/{kept_photo})")
    secret_note = await note(
        svc, sid, ada, f"Said by mistake: {SECRETS['note deleted']} ![](/media/{removed_photo})"
    )
    await svc.notes.handle(
        sid,
        ada,
        {
            "type": "note.update",
            "client_id": str(uuid.uuid4()),
            "item_id": secret_note,
            "body": f"Edited, still {SECRETS['note deleted']}",
        },
    )
    question, _ = await svc.audience.ask(
        sid, Voter("asker"), {"body": f"Rude: {SECRETS['question hidden']}?"}
    )
    await svc.audience.upvote(question.id, Voter("p1"))
    curious = await a_reader(svc, "curious")  # asks logged in: answers reach their account page
    kept_question, _ = await svc.audience.ask(
        sid, Voter(f"account:{curious.id}"), {"body": "Will churn fall?"}
    )
    duplicate, _ = await svc.audience.ask(
        sid, Voter("asker3"), {"body": f"Churn falls? {SECRETS['question merged']}"}
    )
    gossip, _ = await svc.audience.ask(sid, Voter("asker4"), {"body": "Who said what?"})
    withdrawn, _ = await svc.audience.ask(sid, Voter(f"account:{curious.id}"), {"body": "And the rest?"})
    post_item = await collected_post(live, seeded, f"Spam {SECRETS['collected post removed']}")
    moderator = Moderator("Ada", invite.id)
    await published(peer, live, secret_note)
    fedi_hidden = await fediverse_replies(live, peer, await published(peer, live, kept_note))
    async with reader(live, "kept") as kept, reader(live, "selfish") as selfish:
        await post_comment(kept, sid, f"Thanks! {KEPT['comment']}")
        hidden = await post_comment(kept, sid, f"Insult {SECRETS['comment hidden']}")
        moderated = await post_comment(kept, sid, f"Libel {SECRETS['comment deleted by a moderator']}")
        reshown = await post_comment(kept, sid, f"Borderline {KEPT['comment hidden and shown again']}")
        own = await post_comment(selfish, sid, f"Regret {SECRETS['comment deleted by its author']}")
        r = await kept.post(
            f"/comments/{hidden}/edit", data={"body": f"Edited insult {SECRETS['comment hidden']}"}
        )
        assert r.status_code == 303, r.text
        # While public, each secret is findable and in the stream: the removal has something to remove.
        async with live.client() as c:
            for word in (SECRETS[kind] for kind in SEARCHED):
                found = await c.get("/search", params={"q": word})
                assert f"<mark>{word}</mark>" in found.text, f"{word} should be findable while public"
        # Now remove them.
        await delete_note(svc, sid, ada, secret_note)
        await svc.audience.moderate_question(question.id, moderator, {"action": "hide"})
        await svc.audience.moderate_question(
            duplicate.id, moderator, {"action": "merge", "into": kept_question.id}
        )
        await svc.feeds.moderation.remove_item(post_item, "org")
        await svc.comments.moderate(hidden, "hide")
        await svc.comments.moderate(fedi_hidden, "hide")
        await fediverse_reply_deleted(live, peer)
        await svc.comments.moderate(moderated, "delete")
        await svc.comments.moderate(reshown, "hide")
        await svc.comments.moderate(reshown, "show")
        r = await selfish.post(f"/comments/{own}/delete")
        assert r.status_code == 303, r.text
    pages = await live_pages(live, sid, secret_note)
    await svc.programme.set_state(sid, "ended")
    token = await answered_after_the_talk(svc, sid, moderator, kept_question.id, gossip.id, withdrawn.id)
    await svc.archive.archive_session(sid)
    head = await svc.db.read(lambda r: r.stream_head(sid))
    assert head is not None
    return Scene(
        sid,
        seeded.event_id,
        head[0],
        head[1],
        kept_photo,
        removed_photo,
        kept_note,
        secret_note,
        token,
        pages,
    )


def leaks(text: str) -> list[str]:
    return [kind for kind, word in SECRETS.items() if word in text]


def photo_leaks(scene: Scene, name: str, text: str, found: dict[str, list[str]]) -> None:
    """The deleted note's photo goes with it (no other item shows it); the kept one stays."""
    if scene.removed_photo in text:
        found.setdefault(name, []).append("the deleted note's photo")


def missing(text: str, kept: tuple[str, ...] = tuple(KEPT)) -> list[str]:
    return [kind for kind in kept if KEPT[kind] not in text]


async def ws_resume(live: LiveServer, scene: Scene) -> str:
    url = f"{live.ws_url}/ws/v1/sessions/{scene.session_id}?since=0&epoch={scene.epoch}"
    async with await connect(url) as ws:
        seen = await recv_until(ws, lambda m: m.get("type") == "synced")
    changes = [m for m in seen if m.get("type") == "change"]
    assert [m["seq"] for m in changes] == list(range(1, scene.head + 1)), "resume must stay gap-free"
    return json.dumps(changes, ensure_ascii=False)


async def sse_resume(live: LiveServer, scene: Scene) -> str:
    lines: list[str] = []
    async with live.client() as http:
        headers = {"Last-Event-ID": f"{scene.epoch}:0"}
        async with http.stream(
            "GET", f"/api/v1/sessions/{scene.session_id}/stream", headers=headers
        ) as response:
            async with asyncio.timeout(10):
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line.startswith("data: ") and json.loads(line[6:])["type"] == "synced":
                        break
    return json.dumps(lines, ensure_ascii=False)


async def fediverse_outputs(live: LiveServer, scene: Scene, peer: Peer, check: Any) -> None:
    """What the session's fediverse account serves and sends: its outbox, its notes (a deleted
    one a Tombstone), and the activities delivered since the note was deleted."""
    ap = {"accept": AP_JSON}
    async with live.client(headers=ap) as c:
        outbox = await c.get(f"/ap/sessions/{scene.session_id}/outbox", params={"page": "true"})
        assert outbox.status_code == 200, outbox.text
        check("the fediverse outbox", outbox.text, ("note",))
        kept = await c.get(f"/ap/notes/{scene.kept_note}")
        assert kept.status_code == 200, kept.text
        check("the kept note's object", kept.text, ("note",))
        gone = await c.get(f"/ap/notes/{scene.deleted_note}")
        assert gone.status_code == 410 and gone.json()["type"] == "Tombstone", gone.text
        check("the deleted note's object", gone.text, ())
    note_id = f"{live.url}/ap/notes/{scene.deleted_note}"
    delete = await peer.wait_for("Delete")
    assert delete.activity["object"]["id"] == note_id
    after = peer.received[peer.received.index(delete) :]
    check("deliveries since the deletion", json.dumps([d.activity for d in after]), ())


async def test_removed_text_is_in_no_output(
    live: LiveServer, seeded: Seed, peer: Peer, tmp_path: Path
) -> None:
    scene = await act_out(live, seeded, peer)
    sid, eid = scene.session_id, scene.event_id
    found: dict[str, list[str]] = {}
    absent: dict[str, list[str]] = {}

    def check(name: str, text: str, kept: tuple[str, ...] = STREAMED) -> None:
        if leaks(text):
            found[name] = leaks(text)
        photo_leaks(scene, name, text, found)
        if missing(text, kept):
            absent[name] = missing(text, kept)

    # The stream, resumed from the start: from the hub's ring (it saw every change; a viewer
    # watching keeps the ended session's channel), then from storage (the ring freed, as after
    # a restart or on another process).
    async with await connect(
        f"{live.ws_url}/ws/v1/sessions/{sid}?since={scene.head}&epoch={scene.epoch}"
    ) as ws:
        await recv_until(ws, lambda m: m.get("type") == "synced")
        assert live.services.hub.channels[sid].ring_covers(0)
        check("websocket resume from the ring", await ws_resume(live, scene))
        check("SSE resume from the ring", await sse_resume(live, scene))
    live.services.hub.channels.pop(sid, None)
    check("websocket resume from storage", await ws_resume(live, scene))
    live.services.hub.channels.pop(sid, None)
    check("SSE resume from storage", await sse_resume(live, scene))
    stored = await live.services.db.read(lambda r: r.changes_between(sid, 0, scene.head))
    check("the change log as stored", "\n".join(stored))
    # What pages read about earlier versions (a deleted note's are gone with it).
    history = await live.services.db.read(lambda r: r.item_history(sid))
    check("earlier versions", repr(history), ())
    # The live session's numbered page and older cards (notes and posts only), read before it ended.
    for path, text in scene.live_pages.items():
        check(path, text, ("note",))
    await fediverse_outputs(live, scene, peer, check)

    async with live.client() as c:
        for path in (
            f"/archive/sessions/{sid}/replay.json",
            f"/archive/sessions/{sid}.json",
            f"/events/{eid}/archive.json",
            f"/archive/sessions/{sid}.md",
            f"/archive/sessions/{sid}",
            f"/sessions/{sid}",
            f"/api/v1/sessions/{sid}/comments",
            "/comments.atom",
            f"/events/{eid}/comments.atom",
        ):
            r = await c.get(path)
            assert r.status_code == 200, (path, r.status_code)
            # The comments' own outputs hold no notes; the others hold both. Later answers are
            # on the knowledge page and in the exports (not in replay.json: not in the stream).
            kept = COMMENTS if "comment" in path else STREAMED
            if path.startswith("/archive/sessions/") and "replay" not in path or "archive.json" in path:
                kept = ARCHIVED
            if "replay" in path:
                kept = ("note",)  # the comment thread is no step of the replay (archive/replay.py)
            check(path, r.text, kept)
        # Outputs with summaries and counts, not items: they must not leak either. The
        # knowledge page's next cards (more.js) too, and the speaker's own page.
        for path in (
            f"/events/{eid}/archive",
            f"/events/{eid}/archive.md",
            f"/archive/sessions/{sid}/replay",
            f"/archive/sessions/{sid}/chapters.vtt",
            f"/archive/sessions/{sid}/chapters.txt",
            f"/embed/sessions/{sid}",
            f"/events/{eid}/around",
            "/tags/redaction",
            "/sitemap.xml",
            f"/events/{eid}/feed.atom",
            "/tags/redaction/feed.atom",
            f"/api/v1/sessions/{sid}/items",
            f"/archive/sessions/{sid}/cards?section=notes&after={scene.kept_note}",
            f"/a/{scene.speaker_token}",
        ):
            r = await c.get(path)
            assert r.status_code == 200, (path, r.status_code)
            check(path, r.text, ())
        for photo, status in ((scene.removed_photo, 404), (scene.kept_photo, 200)):
            if (await c.get(f"/media/{photo}")).status_code != status:
                (found if status == 404 else absent).setdefault("/media/", []).append(photo)
        for kind, word in {**SECRETS, **KEPT}.items():
            if kind.startswith("later answer"):
                continue  # search does not index them
            r = await c.get("/search", params={"q": word})
            hit = f"<mark>{word}</mark>" in r.text
            if kind in SECRETS and hit:
                found.setdefault("search", []).append(kind)
            if kind in KEPT and not hit:
                absent.setdefault("search", []).append(kind)

    async with live.client() as c:  # the asker's account page lists the answers to their questions
        r = await c.post("/account/login", data={"username": "curious", "password": "a long password"})
        assert r.status_code in (200, 303), r.status_code
        r = await c.get("/account")
        assert r.status_code == 200, r.status_code
        check("the asker's account page", r.text, ("later answer",))

    # The proceedings (notes and answers, no comments): the EPUB's every file, and the HTML the
    # PDF is printed from.
    book = await gather(live.services.archive, eid)
    built = datetime(2027, 1, 1, tzinfo=UTC)
    with zipfile.ZipFile(io.BytesIO(epub_bytes(book, built))) as epub:
        check(
            "the proceedings (EPUB)",
            "\n".join(epub.read(n).decode("utf-8", "replace") for n in epub.namelist()),
            BOOK,
        )
    check("the proceedings (PDF's HTML)", pdf_html(book, built), BOOK)

    site = tmp_path / "site"
    await export_site(live.services, make_templates(live.services.settings.archive.timezone).env, eid, site)
    everything = "\n".join(
        p.read_text(encoding="utf-8")
        for p in sorted(site.rglob("*"))
        if p.is_file() and p.suffix in (".html", ".md", ".json", ".js")
    )
    check("the static site", everything, ARCHIVED)
    check("the static site's search index", (site / "search-index.js").read_text(encoding="utf-8"), STREAMED)
    check("the static site's photos", " ".join(p.name for p in (site / "media").iterdir()), ())
    if scene.kept_photo not in everything:
        absent.setdefault("the static site", []).append("the kept photo")

    assert not found, f"removed text left through: {found}"
    assert not absent, f"outputs lack text that is still public (the check would prove nothing): {absent}"


async def test_the_migration_redacts_what_was_removed_before(services: Services, seeded: Seed) -> None:
    """A database written before redaction at the source keeps removed text in its change log
    and earlier versions: migration 11 redacts them as a removal does now, keeping each item's
    and comment's latest change (the one that says it is gone)."""
    sid = seeded.session_id
    ada = await note_taker(services, seeded)
    gone = await a_kept_and_a_deleted_note(services, sid, ada)
    account = await a_reader(services, "olden")

    async def comments(tx: Tx) -> None:
        ids = []
        for body in (SECRETS["comment hidden"], KEPT["comment"]):
            c, _ = await tx.insert_comment(
                session_id=sid,
                parent_id=None,
                account_id=account.id,
                author="olden",
                body=body,
                html=f"<p>{body}</p>",
                state="visible",
                ip="",
            )
            ids.append(c.id)
        await tx.update_comment(ids[0], {"state": "hidden"})

    await services.db.write(comments)
    head = await services.db.read(lambda r: r.stream_head(sid))
    assert head is not None
    redacted = [json.loads(t) for t in await services.db.read(lambda r: r.changes_between(sid, 0, head[1]))]
    # Put back what the log held before: the removed text in every change the removal redacted.
    olden = {
        m["seq"]: (
            m | {"op": "item.created", "item": {"id": m["item_id"], "body": SECRETS["note deleted"]}}
            if m["op"] == "item.redacted"
            else m
            | {"op": "comment.created", "comment": {"id": m["comment_id"], "html": SECRETS["comment hidden"]}}
        )
        for m in redacted
        if m["op"] in REDACTED_OPS
    }
    assert len(olden) == 2

    async def undo_and_migrate(tx: Tx) -> None:
        db: Any = tx.db  # type: ignore[attr-defined]
        for seq, payload in olden.items():
            payload.pop("item_id", None)
            payload.pop("comment_id", None)
            values = (payload["op"], json.dumps(payload, separators=(",", ":")), sid, seq)
            await db.execute(
                "UPDATE changes SET op = ?, payload = ? WHERE session_id = ? AND seq = ?", values
            )
        history = (
            gone,
            1,
            SECRETS["note deleted"],
            SECRETS["note deleted"],
            "2026-05-14T09:00:00Z",
            "2026-05-14T09:01:00Z",
        )
        sql = "INSERT INTO item_history (item_id, version, body, html, written_at, replaced_at) VALUES"
        await db.execute(f"{sql} (?, ?, ?, ?, ?, ?)", history)
        if db.dialect.name == "sqlite":
            for statement in SQLITE_SCRIPTS[10].split(";"):
                await db.execute(statement)
        else:
            pg_unit: Any = tx  # several statements: asyncpg's simple protocol, on the unit's connection
            await pg_unit.conn.execute(POSTGRES_SCRIPTS[10])

    before = await services.db.read(lambda r: r.changes_between(sid, 0, head[1]))
    await services.db.write(undo_and_migrate)
    after = await services.db.read(lambda r: r.changes_between(sid, 0, head[1]))
    assert after == before
    assert SECRETS["note deleted"] not in repr(await services.db.read(lambda r: r.item_history(sid)))
    assert not leaks("\n".join(after)) and not missing("\n".join(after), ("note", "comment"))


async def test_a_hub_on_another_process_redacts_the_frames_it_keeps(
    tmp_path: Path, pg_url: str, redis_server: RedisServer
) -> None:
    """Two processes sharing PostgreSQL and Redis: the other process's hub got the note through
    Redis and keeps it in its ring; the deletion's `redacts` reaches it the same way."""
    settings = make_settings(tmp_path, database={"url": pg_url}, redis={"url": redis_server.url})
    here, there = Services.build(settings), Services.build(settings)
    await here.open()
    await there.open()
    try:
        seeded = await seed(here)
        sid = seeded.session_id
        ada = await note_taker(here, seeded)

        async def ring_reaches(seq: int) -> str | None:
            channel = there.hub.channels.get(sid)
            if channel is None or channel.head is None or channel.head < seq:
                return None
            return "\n".join(frame.text for frame in channel.ring)

        await note(here, sid, ada, f"A public note: {KEPT['note']}")
        gone = await note(here, sid, ada, f"Said by mistake: {SECRETS['note deleted']}")
        head = await here.db.read(lambda r: r.stream_head(sid))
        assert head is not None
        before = await eventually(lambda: ring_reaches(head[1]), what="the other hub to have the note")
        assert SECRETS["note deleted"] in before  # it is there to be redacted
        ack = await delete_note(here, sid, ada, gone)
        after = await eventually(lambda: ring_reaches(ack.seq), what="the other hub to have the deletion")
        assert not leaks(after) and not missing(after, ("note",))
    finally:
        await there.close()
        await here.close()


async def test_an_import_holding_removed_text_is_redacted_as_it_goes_in(
    services: Services, seeded: Seed, tmp_path: Path
) -> None:
    """An export never holds removed text, but one written by an older version or by hand may
    (its `changes` showing a comment or note that its `comments` and `items` say is removed):
    the import redacts them as a removal would, and a clean export still round-trips."""
    sid = seeded.session_id
    ada = await note_taker(services, seeded)
    gone = await a_kept_and_a_deleted_note(services, sid, ada)
    account = await a_reader(services, "olden")
    hidden = await services.comments.post(sid, account, f"Insult {SECRETS['comment hidden']}")
    await services.comments.post(sid, account, f"Thanks {KEPT['comment']}")
    await services.comments.moderate(hidden.id, "hide")
    clean = await export_json(services.db, seeded.event_id)
    assert not leaks(json.dumps(clean))
    tampered = json.loads(json.dumps(clean))
    changes = next(b for b in tampered["sessions"] if b["session"]["id"] == sid)["changes"]
    for ch in changes:
        if ch["op"] == "item.redacted" and ch["item_id"] == gone:
            ch["op"] = "item.created"
            ch["payload"] = {
                "type": "change",
                "seq": ch["seq"],
                "op": "item.created",
                "item": {"id": gone, "body": SECRETS["note deleted"], "html": SECRETS["note deleted"]},
            }
        elif ch["op"] == "comment.redacted" and ch["payload"]["comment_id"] == hidden.id:
            ch["op"] = "comment.created"
            ch["payload"] = {
                "type": "change",
                "seq": ch["seq"],
                "op": "comment.created",
                "comment": {"id": hidden.id, "state": "visible", "html": SECRETS["comment hidden"]},
            }
    assert set(leaks(json.dumps(tampered))) == {"note deleted", "comment hidden"}
    for n, doc in enumerate((clean, tampered)):
        fresh_settings = make_settings(tmp_path / f"fresh{n}")
        (tmp_path / f"fresh{n}").mkdir()
        fresh = Services.build(fresh_settings)
        await fresh.open()
        try:
            await import_json(fresh.db, json.loads(json.dumps(doc)))
            head = await fresh.db.read(lambda r: r.stream_head(sid))
            assert head is not None
            last = head[1]
            stored = "\n".join(await fresh.db.read(lambda r, last=last: r.changes_between(sid, 0, last)))
            assert not leaks(stored) and not missing(stored, ("note", "comment")), stored
            assert comparable(await export_json(fresh.db, seeded.event_id)) == comparable(clean)
        finally:
            await fresh.close()


async def test_a_removal_after_the_event_leaves_no_kept_card(live: LiveServer, seeded: Seed) -> None:
    """Organisers still remove notes from knowledge pages: the cards kept for the page (each
    note's, and the page's assembled run) lose the note with the removal, not at the next view."""
    svc = live.services
    sid = seeded.session_id
    ada = await note_taker(svc, seeded)
    await note(svc, sid, ada, f"Kept: {KEPT['note']}")
    gone = await note(svc, sid, ada, f"Gone: {SECRETS['note deleted']}")
    await svc.programme.set_state(sid, "ended")
    async with live.client() as c:
        page = await c.get(f"/archive/sessions/{sid}")
        assert SECRETS["note deleted"] in page.text

        async def kept() -> str:
            rows = await query(svc.db, "SELECT html FROM item_cards")
            rows += await query(svc.db, "SELECT notes_html FROM card_sections")
            return "\n".join(str(r[0]) for r in rows)

        await eventually(lambda: kept_has(kept, SECRETS["note deleted"]), what="the page's cards to be kept")
        await delete_note(svc, sid, Author.organiser(await organiser_account(svc)), gone)
        assert not leaks(await kept())
        page = await c.get(f"/archive/sessions/{sid}")
        assert not leaks(page.text) and not missing(page.text, ("note",))


async def kept_has(kept: Any, word: str) -> bool:
    return word in await kept()


async def test_a_note_deleted_before_the_publisher_reads_it_leaves_the_outbox_and_is_not_delivered(
    live: LiveServer, seeded: Seed, peer: Peer
) -> None:
    """The fediverse publisher runs off the commit path (docs/federation.md) and may lag behind
    a deletion (a backlog, a restart, another process's lease). The deletion itself withdraws
    the note's activities, in its own transaction: the outbox drops the note at once, and a
    delivery queued before it (here, a Create waiting to be tried again) is never sent."""
    svc = live.services
    sid = seeded.session_id
    await followed_from_the_fediverse(live, peer, sid)
    ada = await note_taker(svc, seeded)
    await published(peer, live, await note(svc, sid, ada, f"Kept: {KEPT['note']}"))
    peer.down = True  # the follower's server is being restarted: the Create waits for a retry
    gone = await note(svc, sid, ada, f"Gone: {SECRETS['note deleted']}")
    await eventually(lambda: peer.refused >= 1, what="the note's Create to be tried once")
    await svc.supervisor.stop("federation.publish")  # lagging: it does not see the deletion
    await delete_note(svc, sid, ada, gone)
    async with live.client(headers={"accept": AP_JSON}) as c:
        outbox = (await c.get(f"/ap/sessions/{sid}/outbox", params={"page": "true"})).text
    assert not leaks(outbox) and not missing(outbox, ("note",)), outbox

    # The server is back and every retry is due now; another account's follow (its Accept,
    # queued without the publisher) shows the deliverer has run since.
    peer.down = False

    async def due_now(tx: Tx) -> None:
        sql: Any = tx.db  # type: ignore[attr-defined]
        await sql.execute("UPDATE federation_deliveries SET next_at = ?", ("2000-01-01T00:00:00.000Z",))

    await svc.db.write(due_now)
    actor, session_actor = peer.add("fan2"), f"{live.url}/ap/sessions/{sid}"
    follow = {"id": f"{actor}/follows/1", "type": "Follow", "actor": actor, "object": session_actor}
    assert (await peer.post(f"{session_actor}/inbox", follow, as_="fan2")).status_code == 202

    async def settled() -> bool:
        accepted = any(
            d.activity.get("type") == "Accept" and d.path.startswith("/users/fan2") for d in peer.received
        )
        return accepted and await query(svc.db, "SELECT count(*) FROM federation_deliveries") == [(0,)]

    await eventually(settled, what="the Accept delivered and the queue empty")
    sent = json.dumps([d.activity for d in peer.received])
    assert not leaks(sent), "a deleted note was delivered"


async def test_a_delivery_waiting_for_its_server_is_not_sent_once_its_note_is_deleted(
    live: LiveServer, seeded: Seed, peer: Peer
) -> None:
    """A delivery read from the queue waits while its server already has as many of ours as it
    may (4): if its note is deleted meanwhile, it is dropped, not sent with the note's text."""
    svc = live.services
    assert svc.delivery is not None
    sid = seeded.session_id
    await followed_from_the_fediverse(live, peer, sid)
    ada = await note_taker(svc, seeded)
    peer.hold = True  # a slow server: our POSTs to it hang
    for n in range(4):
        await note(svc, sid, ada, f"Note {n}: {KEPT['note']}")
    await eventually(lambda: peer.held == 4, what="4 deliveries hanging at the server")
    gone = await note(svc, sid, ada, f"Gone: {SECRETS['note deleted']}")
    await eventually(lambda: svc.delivery.health()["in_flight"] == 5, what="the fifth waiting its turn")
    await delete_note(svc, sid, ada, gone)
    peer.hold = False
    peer.release.set()  # the hanging ones end (503: they are tried again later); the fifth's turn
    await eventually(lambda: svc.delivery.health()["in_flight"] == 0, what="no delivery in flight")
    sent = json.dumps([d.activity for d in peer.received])
    assert not leaks(sent), "a deleted note was delivered"


async def test_a_fediverse_account_deleted_takes_its_replies_and_avatar_along(
    live: LiveServer, seeded: Seed, peer: Peer
) -> None:
    """Someone deletes their account on their server, which tells every server it knew (a
    Delete of the actor, signed with the key we kept): their replies here go as if they had
    deleted each (redacted from the stream), and so does the copy of their avatar."""
    svc = live.services
    sid = seeded.session_id
    await followed_from_the_fediverse(live, peer, sid)
    ada = await note_taker(svc, seeded)
    note_id = await published(peer, live, await note(svc, sid, ada, f"Kept: {KEPT['note']}"))
    inbox = f"{live.url}/ap/inbox"
    for number, text in enumerate((f"First {SECRETS['fediverse reply deleted by its author']}", "Second"), 1):
        answer = await peer.post(inbox, fedi_reply(peer, number, note_id, text), as_="fan")
        assert answer.status_code == 202, answer.text
    [(account_id, avatar)] = await query(svc.db, "SELECT account_id, avatar FROM federation_authors")
    assert avatar
    async with live.client() as c:
        assert (await c.get(f"/media/{avatar}")).status_code == 200
        assert (
            SECRETS["fediverse reply deleted by its author"]
            in (await c.get(f"/api/v1/sessions/{sid}/comments")).text
        )
    actor = peer.actor("fan")
    gone = {"id": f"{actor}#delete", "type": "Delete", "actor": actor, "object": actor}
    assert (await peer.post(inbox, gone, as_="fan")).status_code == 202
    assert await query(svc.db, "SELECT body, deleted FROM comments ORDER BY id") == [("", 1), ("", 1)]
    head = await svc.db.read(lambda r: r.stream_head(sid))
    assert head is not None
    stored = "\n".join(await svc.db.read(lambda r: r.changes_between(sid, 0, head[1])))
    assert not leaks(stored) and "Second" not in stored
    async with live.client() as c:
        assert (await c.get(f"/media/{avatar}")).status_code == 404
        shown = await c.get(f"/ap/avatars/{account_id}")
        assert shown.headers["location"] == "/static/fediverse-icon.png"


async def test_a_repliers_avatar_leaves_a_session_once_none_of_their_replies_is_shown_there(
    live: LiveServer, seeded: Seed, peer: Peer, tmp_path: Path
) -> None:
    """A fediverse replier's avatar is copied with their first reply, among the session's media:
    once none of their comments is shown there (hidden, or deleted by them), it leaves the
    session's exports and its static site; shown again, it comes back."""
    svc = live.services
    sid, eid = seeded.session_id, seeded.event_id
    await followed_from_the_fediverse(live, peer, sid)
    ada = await note_taker(svc, seeded)
    note_id = await published(peer, live, await note(svc, sid, ada, f"Kept: {KEPT['note']}"))
    inbox = f"{live.url}/ap/inbox"
    for who in ("fan", "fan2", "fan3"):
        peer.add(who)
        answer = await peer.post(inbox, fedi_reply(peer, 1, note_id, f"Reply by {who}", who), as_=who)
        assert answer.status_code == 202, answer.text
    rows = await query(
        svc.db,
        "SELECT c.id, fa.avatar FROM comments c JOIN federation_authors fa ON fa.account_id = c.account_id"
        " ORDER BY c.id",
    )
    [(hidden, hidden_avatar), (_, deleted_avatar), (_, shown_avatar)] = rows
    assert len({hidden_avatar, deleted_avatar, shown_avatar} - {""}) == 3
    await svc.comments.moderate(hidden, "hide")
    await fediverse_reply_deleted(live, peer, 1, "fan2")
    await svc.programme.set_state(sid, "ended")

    async def exported() -> dict[str, set[str]]:
        """The media ids of the session in each of its exports."""
        out: dict[str, set[str]] = {}
        async with live.client() as c:
            for path in (f"/archive/sessions/{sid}.json", f"/events/{eid}/archive.json"):
                doc = (await c.get(path)).json()
                [session] = [b for b in doc["sessions"] if b["session"]["id"] == sid]
                out[path] = {m["id"] for m in session["media"]}
        site = tmp_path / f"site{len(list(tmp_path.iterdir()))}"
        await export_site(svc, make_templates(svc.settings.archive.timezone).env, eid, site)
        out["the static site's photos"] = {p.stem for p in (site / "media").iterdir()}
        session = json.loads((site / "sessions" / f"{sid}.json").read_text())["sessions"][0]
        out["the static site's session JSON"] = {m["id"] for m in session["media"]}
        return out

    for where, media in (await exported()).items():
        assert shown_avatar in media, where
        assert hidden_avatar not in media and deleted_avatar not in media, where
    async with live.client() as c:  # kept for the account (a reply of theirs may be shown again)
        assert (await c.get(f"/media/{hidden_avatar}")).status_code == 200
    await svc.comments.moderate(hidden, "show")
    for where, media in (await exported()).items():
        assert {hidden_avatar, shown_avatar} <= media and deleted_avatar not in media, where

"""A finished session with every kind of item, for the archive tests (real services, real SQLite)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from liveblog.capture.feeds.render import render_post
from liveblog.capture.notes import Author
from liveblog.capture.votes import Moderator, Voter
from liveblog.models import Account, SocialPost
from liveblog.services import Services
from liveblog.storage import Store, Tx
from tests.conftest import Seed


@dataclass
class Filled:
    note_id: int
    photo_note_id: int
    key_note_id: int
    post_id: int
    poll_id: int
    question_id: int
    answer_id: int


async def note(services: Services, session_id: str, author: Author, body: str, **extra: object) -> int:
    ack = await services.notes.handle(
        session_id, author, {"type": "note.create", "client_id": str(uuid.uuid4()), "body": body, **extra}
    )
    return ack.item_id


async def social_post(services: Services, session_id: str, text: str, state: str = "approved") -> int:
    """A stored copy of an approved social post (the feeds capture writes these the same way),
    or of one in another `state` (pending, rejected, hidden: as moderation once stored them)."""

    post = SocialPost(
        network="mastodon",
        post_id="1",
        author_handle="rosa@example.social",
        author_name="@rosa@example.social",
        text=text,
        url="https://example.social/@rosa/1",
        posted_at="2026-05-14T09:20:00.000Z",
    )

    async def op(tx: Tx) -> int:
        item, _ = await tx.insert_item(
            session_id=session_id,
            kind="social",
            client_id=f"social:{uuid.uuid4()}",
            author=post.author_name,
            author_ref=None,
            body=text,
            html=render_post(post),
            key_point=False,
            data={
                "network": post.network,
                "post_id": post.post_id,
                "handle": post.author_handle,
                "url": post.url,
                "posted_at": post.posted_at,
                "state": state,
            },
            typed_at=post.posted_at,
        )
        return item.id

    return await services.db.write(op)


async def fill_session(services: Services, seeded: Seed, session_id: str | None = None) -> Filled:
    """Notes (one with a photo link, one key point), a post, a closed poll with votes, and an
    upvoted question answered by a note; the session is left live."""
    sid = session_id or seeded.session_id
    invite = await services.accounts.invite_for_token(seeded.token)
    assert invite is not None
    ada = Author.from_invite(invite)
    mod = Moderator("Ada", invite.id)
    note_id = await note(
        services, sid, ada, "Photosynthesis is how plants **make sugar** https://example.org/leaf"
    )
    photo_id = await note(services, sid, ada, "The slide: ![diagram](/media/0123456789abcdef)")
    key_id = await note(services, sid, ada, "Chlorophyll absorbs red and blue light", key_point=True)
    post_id = await social_post(services, sid, "Loving the talk about zeaxanthin pigments")
    poll = await services.audience.create_poll(
        sid,
        mod,
        {
            "question": "Favourite pigment?",
            "kind": "single",
            "options": ["Chlorophyll", "Carotene"],
            "open": True,
        },
    )
    for n, choice in enumerate(["a", "a", "b"]):
        await services.audience.vote(poll.id, Voter(f"p{n}"), {"choice": choice})
    await services.audience.set_poll_state(poll.id, mod, {"state": "closed"})
    question, _ = await services.audience.ask(
        sid, Voter("asker"), {"body": "Why are leaves green, not black?"}
    )
    await services.audience.upvote(question.id, Voter("p1"))
    await services.audience.upvote(question.id, Voter("p2"))
    answer_id = await note(services, sid, ada, "Answer: green light is reflected by the xanthophyll cycle")
    await services.audience.moderate_question(
        question.id, mod, {"action": "answer", "answer_item_id": answer_id}
    )
    return Filled(note_id, photo_id, key_id, post_id, poll.id, question.id, answer_id)


async def spread_change_times(
    db: Store, session_id: str, seqs: list[int], every: int = 60, start: int = 0
) -> None:
    """Give these changes commit times `every` seconds apart from `start` seconds after 09:00 UTC
    (a minute: as in a real session), for the replay.
    No operation rewrites a stored change's time, so this is the test's own SQL, for either
    backend (tests/test_replay.py gets such times the typed way, through an import)."""

    async def op(tx: Tx) -> None:
        db: Any = tx.db  # type: ignore[attr-defined]
        for n, seq in enumerate(seqs):
            minute, second = divmod(start + n * every, 60)
            values = (f"2026-05-14T09:{minute:02d}:{second:02d}.000Z", session_id, seq)
            await db.execute("UPDATE changes SET created_at = ? WHERE session_id = ? AND seq = ?", values)

    await db.write(op)


async def organiser_account(services: Services) -> Account:
    account = await services.accounts.account_for_token(None)
    assert account is None
    found = await services.db.read(lambda r: r.account_for_login("org"))
    assert found is not None
    return found[0]

"""Note capture: validate a note-taker's message, write it once, acknowledge after commit.

Every message carries a client-generated id. The first time an id is seen its effect and its
acknowledgement are stored in the same transaction; a resend gets that stored acknowledgement
(duplicate=true) and changes nothing; the same id with different content is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from liveblog.capture.messages import NoteCreate, NoteUpdate, capture_message
from liveblog.errors import BadRequest, Conflict, Forbidden, NotFound
from liveblog.metrics import CAPTURE_SECONDS
from liveblog.models import Account, Ack, Invite, Session, utcnow
from liveblog.settings import LimitSettings
from liveblog.storage import Op, Store, Tx
from liveblog.text import find_embeds, find_media, plural, render_markdown


@dataclass(frozen=True)
class Author:
    """Who is writing: a note-taker's invite, or an organiser acting in a session."""

    name: str
    ref: str  # invite id, or "account:<id>"; notes may be edited by the same ref only
    is_moderator: bool = False

    @classmethod
    def from_invite(cls, invite: Invite) -> Author:
        return cls(name=invite.name, ref=invite.id)

    @classmethod
    def organiser(cls, account: Account) -> Author:
        """An organiser: may edit or remove any note in any session (moderation)."""
        return cls(name=account.username, ref=f"account:{account.id}", is_moderator=True)


def fingerprint(message: dict[str, Any]) -> str:
    """What makes two messages with one client id 'the same': all fields but the id."""
    canonical = {k: v for k, v in message.items() if k != "client_id"}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# Bodies longer than this are rendered in a worker thread: a 64 KiB note takes ~100 ms of
# Markdown and sanitising, which would hold every live viewer's delivery for that long. (The
# thread still needs the GIL, but the loop gets it back every switch interval, ~5 ms.) Short
# notes, the common case, render inline: below ~1 ms the thread hop costs more than it saves.
INLINE_RENDER_BYTES = 2048


async def render_note(body: str) -> tuple[str, dict[str, Any]]:
    """A note's sanitised HTML and its data (embeds, media), off the event loop when long."""
    if len(body) <= INLINE_RENDER_BYTES:
        return render_markdown(body), note_data(body)
    return await asyncio.to_thread(lambda: (render_markdown(body), note_data(body)))


def note_data(body: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    embeds = find_embeds(body)
    if embeds:
        data["embeds"] = embeds
    media = find_media(body)
    if media:
        data["media"] = media
    return data


class NoteCapture:
    def __init__(self, db: Store, limits: LimitSettings) -> None:
        self.db = db
        self.limits = limits

    async def handle(self, session_id: str, author: Author, message: Any) -> Ack:
        """Apply one capture message; returns the acknowledgement once it is on disk."""
        started = time.monotonic()
        ack = await self.db.write(await self._op(session_id, author, message))
        CAPTURE_SECONDS.observe(time.monotonic() - started)
        return ack

    async def submit(self, session_id: str, author: Author, message: Any) -> asyncio.Future[Ack]:
        """Check one capture message and queue its write; the future is its acknowledgement,
        answered once it is on disk. Suspends only to render a long body or for room in the
        writer's queue, so a socket that awaits this for each message in turn queues them in
        order. A message the checks refuse raises here. The caller bounds its wait for the
        future (the database's write timeout) and observes CAPTURE_SECONDS."""
        return await self.db.enqueue(await self._op(session_id, author, message))

    async def _op(self, session_id: str, author: Author, message: Any) -> Op[Ack]:
        parsed = capture_message(message, note_bytes=self.limits.note_bytes)
        # The fingerprint is of the message as sent, as it always was: stored client ids from
        # before must still recognise their resends.
        fp = fingerprint(message)
        if isinstance(parsed, NoteCreate):
            return await self._create(session_id, author, parsed, fp)
        if isinstance(parsed, NoteUpdate):
            fields: dict[str, Any] = {}
            if parsed.body is not None:
                html, data = await render_note(parsed.body)
                fields.update(body=parsed.body, html=html, data=data)
            if parsed.key_point is not None:
                fields["key_point"] = parsed.key_point
            return self._change(
                session_id, author, parsed.client_id, parsed.target, fp, fields, "item.updated"
            )
        # A deleted note's text goes: the person who deleted it meant it to.
        fields = {"deleted": True, "body": "", "html": "", "data": {}}
        return self._change(session_id, author, parsed.client_id, parsed.target, fp, fields, "item.deleted")

    # Each op first looks for its client id (a resend), then checks, then writes: a check
    # that fails has written nothing.

    async def _create(self, session_id: str, author: Author, note: NoteCreate, fp: str) -> Op[Ack]:
        cid, body, typed_at = note.client_id, note.body, note.typed_at
        html, data = await render_note(body)

        async def op(tx: Tx) -> Ack:
            done = await _already_done(tx, session_id, cid, fp)
            if done is not None:
                return done
            session = await _writable_session(tx, session_id, typed_at, self.limits.late_note_grace_minutes)
            item, change = await tx.insert_item(
                session_id=session.id,
                kind="note",
                client_id=cid,
                author=author.name,
                author_ref=author.ref,
                body=body,
                html=html,
                key_point=note.key_point,
                data=data,
                typed_at=typed_at or utcnow(),
            )
            return await _remember(tx, session_id, cid, fp, Ack(cid, item.id, change.seq))

        return op

    @staticmethod
    async def _target(tx: Tx, session_id: str, author: Author, target: int | str) -> int:
        if isinstance(target, int):
            found = await tx.get_item_ref(target)
        else:
            item = await tx.find_item_by_client_id(session_id, target)
            found = await tx.get_item_ref(item.id) if item else None
        if found is None or found[0].session_id != session_id:
            raise NotFound("no such note in this session", code="unknown_item", field="item_id")
        item, ref = found
        if item.kind != "note":
            raise BadRequest("only notes can be changed this way", code="invalid_field", field="item_id")
        if item.deleted:
            raise Conflict("that note has been deleted", code="item_deleted", field="item_id")
        if ref != author.ref and not author.is_moderator:
            raise Forbidden("you can change only your own notes", code="not_your_note")
        return item.id

    def _change(
        self,
        session_id: str,
        author: Author,
        cid: str,
        target: int | str,
        fp: str,
        fields: dict[str, Any],
        op_name: str,
    ) -> Op[Ack]:
        """An edit or a deletion of an existing note, applied once per client id."""

        async def op(tx: Tx) -> Ack:
            done = await _already_done(tx, session_id, cid, fp)
            if done is not None:
                return done
            if not author.is_moderator:  # organisers may still correct or remove after the end
                await _writable_session(tx, session_id, None, self.limits.late_note_grace_minutes)
            item_id = await self._target(tx, session_id, author, target)
            before = await tx.get_item_ref(item_id)
            item, change = await tx.update_item(item_id, fields, op=op_name)
            if op_name == "item.deleted" and before is not None and before[1] != author.ref:
                # an organiser removed someone else's note: a moderation action, in the ledger
                await tx.record_moderation(
                    session_id=session_id,
                    actor=author.name,
                    action="delete",
                    target_kind="note",
                    target_id=item_id,
                )
            return await _remember(tx, session_id, cid, fp, Ack(cid, item.id, change.seq))

        return op


async def _already_done(tx: Tx, session_id: str, cid: str, fp: str) -> Ack | None:
    """Claim the client id for this message, or answer a resend with the stored ack.

    One statement (INSERT ... ON CONFLICT DO NOTHING): correct under concurrent writers. A
    claim made by an op that then fails is rolled back with the op's savepoint."""
    found = await tx.claim_client_op(session_id, cid, fp)
    if found is None:
        return None
    old_fp, response = found
    if old_fp != fp:
        raise Conflict(
            f"client_id {cid!r} was already used for a different message",
            code="client_id_conflict",
            field="client_id",
        )
    return Ack(cid, response["item_id"], response["seq"], duplicate=True)


async def _remember(tx: Tx, session_id: str, cid: str, fp: str, ack: Ack) -> Ack:
    await tx.complete_client_op(session_id, cid, {"item_id": ack.item_id, "seq": ack.seq})
    return ack


async def _writable_session(tx: Tx, session_id: str, typed_at: str | None, grace_minutes: int) -> Session:
    session = await tx.get_session(session_id)
    if session is None:
        raise NotFound(f"no session {session_id!r}", code="unknown_session")
    if session.state == "ended":
        # A note typed offline before the session ended still belongs to it: never lose it. But a
        # typed_at is the client's word, so a backdated one must not reopen the session for good:
        # late notes are taken only within the grace after the end (docs/protocol.md).
        if typed_at is None or session.ended_at is None or typed_at > session.ended_at:
            raise Conflict("this session has ended; notes are closed", code="session_ended")
        ended = datetime.fromisoformat(session.ended_at.replace("Z", "+00:00"))
        if datetime.now(UTC) - ended > timedelta(minutes=grace_minutes):
            raise Conflict(
                f"this session ended more than {plural(grace_minutes, 'minute')} ago; notes typed before the end are "
                "no longer accepted",
                code="session_ended",
            )
    return session

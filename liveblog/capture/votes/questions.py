"""Questions: asking (with optional pre-moderation), upvoting once, and moderating them."""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

from liveblog.capture import validate
from liveblog.capture.votes.common import (
    NAME_CHARS,
    PUBLIC_QUESTION_STATES,
    QUESTION_ACTIONS,
    AudienceBase,
    Moderator,
    QuestionNotVisible,
    UnknownQuestion,
    Voter,
    _object,
    _short_text,
    text_html,
)
from liveblog.errors import BadRequest, Conflict, NotFound
from liveblog.models import Item, utcnow
from liveblog.storage import Tx

log = logging.getLogger(__name__)


class QuestionActions(AudienceBase):
    # -- questions -------------------------------------------------------------------------------

    async def ask(self, session_id: str, voter: Voter, message: Any) -> tuple[Item, bool]:
        """A question from the audience: visible at once, or pending when the session moderates.
        Returns (item, duplicate)."""
        message = _object(message)
        await self._limit(session_id, voter)
        body = _short_text(message, "body", self.question_chars, required=True)
        name = _short_text(message, "name", NAME_CHARS, required=False)
        given = validate.client_id(message) if message.get("client_id") is not None else secrets.token_hex(8)
        # Hashed: the client id is public in the stream, who asked is not.
        cid = "question:" + hashlib.sha256(f"{voter.participant}:{given}".encode()).hexdigest()[:32]

        async def op(tx: Tx) -> tuple[Item, bool]:
            if await tx.claim_client_op(session_id, cid, "") is not None:
                found = await tx.find_item_by_client_id(session_id, cid)
                if found is not None:
                    return found, True
                raise UnknownQuestion("that question has been removed")
            session = await self._open_session(tx, session_id)
            self._admit(session_id, session.questions_audience, voter)
            state = "pending" if session.question_moderation else "visible"
            public = state == "visible"
            data: dict[str, Any] = {"state": state, "pinned": False, "votes": 0}
            if public and name:
                data["name"] = name
            item, _ = await tx.insert_item(
                session_id=session_id,
                kind="question",
                client_id=cid,
                author=name if public else "",
                author_ref=voter.participant,
                body=body if public else "",
                html=text_html(body) if public else "",
                key_point=False,
                data=data,
                typed_at=utcnow(),
            )
            await tx.insert_question(
                item_id=item.id,
                session_id=session_id,
                participant=voter.participant,
                name=name,
                body=body,
                ip=voter.ip,
            )
            return item, False

        return await self.db.write(op)

    async def upvote(self, question_id: int, voter: Voter) -> dict[str, Any]:
        """Upvote a visible question once. Returns {question_id, status: created|unchanged}."""

        async def check(conn: Any) -> Item:
            return await self._item(conn, question_id, "question")

        item = await self.db.read(check)
        await self._limit(item.session_id, voter)
        if item.data.get("state") not in PUBLIC_QUESTION_STATES:
            raise QuestionNotVisible("this question is not shown, so it cannot be upvoted")

        async def op(tx: Tx) -> str:
            current = await self._item(tx, question_id, "question")
            session = await self._open_session(tx, current.session_id)
            self._admit(session.id, session.questions_audience, voter)
            if current.data.get("state") not in PUBLIC_QUESTION_STATES:
                raise QuestionNotVisible("this question is not shown, so it cannot be upvoted")
            if not await tx.insert_upvote(question_id, voter.participant):
                return "unchanged"
            tx.after_commit.append(lambda: self.coalescer.mark("question", question_id))
            return "created"

        return {"question_id": question_id, "status": await self.db.write(op)}

    async def _write_upvotes(self, tx: Tx, question_id: int) -> None:
        item = await tx.get_item(question_id)
        if item is None or item.deleted:
            return
        votes = await tx.count_upvotes(question_id)
        if item.data.get("votes") == votes:
            return
        await tx.set_item_data(item, {**item.data, "votes": votes}, "question.votes", {"votes": votes})

    async def moderate_question(self, question_id: int, moderator: Moderator, message: Any) -> Item:
        """approve | hide | answer (answer_item_id?) | pin | unpin | merge (into), with an
        optional reason (the moderation ledger). Pinning unpins the others."""
        message = _object(message)
        action = message.get("action")
        if action not in QUESTION_ACTIONS:
            raise BadRequest(
                f"action must be one of {', '.join(QUESTION_ACTIONS)}", code="invalid_field", field="action"
            )
        answer_item_id = validate.integer(message, "answer_item_id", required=False)
        reason = validate.moderation_reason(message.get("reason"))
        if action == "merge":
            into = validate.integer(message, "into")
            assert into is not None
            return await self._merge_question(question_id, into, moderator, reason)

        async def op(tx: Tx) -> Item:
            item = await self._item(tx, question_id, "question")
            private = await tx.get_question(question_id)
            assert private is not None
            data = dict(item.data)
            if action == "approve":
                data["state"] = "visible"
            elif action == "hide":
                data["state"] = "hidden"
                data["pinned"] = False
            elif action == "answer":
                data["state"] = "answered"
                if answer_item_id is not None:
                    note = await tx.get_item(answer_item_id)
                    if (
                        note is None
                        or note.session_id != item.session_id
                        or note.kind != "note"
                        or note.deleted
                    ):
                        raise NotFound(
                            "no such note in this session", code="unknown_item", field="answer_item_id"
                        )
                    data["answer_item_id"] = answer_item_id
            elif action == "pin":
                if data["state"] not in PUBLIC_QUESTION_STATES:
                    data["state"] = "visible"  # pinning a held question shows it: it is being answered
                for other in await tx.pinned_questions(item.session_id):
                    if other != question_id:
                        o = await tx.get_item(other)
                        assert o is not None
                        await tx.update_item(other, {"data": {**o.data, "pinned": False}})
                data["pinned"] = True
            else:
                data["pinned"] = False
            public = data["state"] in PUBLIC_QUESTION_STATES
            data.pop("name", None)
            if public and private["name"]:
                data["name"] = private["name"]
            fields = {
                "data": data,
                "body": private["body"] if public else "",
                "html": text_html(private["body"]) if public else "",
                "author": private["name"] if public else "",
            }
            updated, _ = await tx.update_item(question_id, fields)
            await tx.record_moderation(
                session_id=item.session_id,
                actor=moderator.name,
                action=action,
                target_kind="question",
                target_id=question_id,
                reason=reason,
            )
            return updated

        return await self.db.write(op)

    async def _merge_question(self, question_id: int, into: int, moderator: Moderator, reason: str) -> Item:
        """Merge a duplicate question into another of its session: the upvotes combine (someone
        who upvoted both counts once), the duplicate leaves every public list (state "merged",
        its text redacted at the source like a hidden one's) and the kept question lists what it
        absorbed (`merged`). One transaction: two item changes and the ledger's "merge" entry.
        Returns the kept question."""

        async def op(tx: Tx) -> Item:
            item = await self._item(tx, question_id, "question")
            kept = await tx.get_item(into)
            if kept is None or kept.kind != "question" or kept.deleted or kept.session_id != item.session_id:
                raise NotFound("no such question in this session", code="unknown_question", field="into")
            if kept.id == item.id:
                raise BadRequest(
                    "a question cannot be merged into itself", code="invalid_field", field="into"
                )
            if item.data.get("state") == "merged":
                raise Conflict("this question is already merged into another", code="already_merged")
            if kept.data.get("state") not in PUBLIC_QUESTION_STATES:
                raise QuestionNotVisible(
                    "merge into a question the audience sees (approve it first)", field="into"
                )
            await tx.merge_upvotes(item.id, kept.id)
            absorbed = sorted({*kept.data.get("merged", []), item.id, *item.data.get("merged", [])})
            votes = await tx.count_upvotes(kept.id)
            updated, _ = await tx.update_item(
                kept.id, {"data": {**kept.data, "merged": absorbed, "votes": votes}}
            )
            data = {k: v for k, v in item.data.items() if k != "name"}
            data.update(state="merged", merged_into=kept.id, pinned=False)
            await tx.update_item(item.id, {"data": data, "body": "", "html": "", "author": ""})
            await tx.record_moderation(
                session_id=item.session_id,
                actor=moderator.name,
                action="merge",
                target_kind="question",
                target_id=item.id,
                reason=reason,
            )
            return updated

        return await self.db.write(op)

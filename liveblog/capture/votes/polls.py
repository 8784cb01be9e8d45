"""Polls: their fields, choices and tallies (pure), and the Audience's poll actions: create, open,
close, vote, and the tally and auto-close writes the coalescer makes."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections import Counter
from typing import Any

from liveblog.capture import validate
from liveblog.capture.votes.common import (
    MAX_OPTIONS,
    MAX_POLL_SECONDS,
    OPTION_CHARS,
    POLL_KINDS,
    POLL_QUESTION_CHARS,
    TEXT_ANSWER_CHARS,
    WORD_CLOUD_WORDS,
    AudienceBase,
    Moderator,
    PollClosed,
    UnknownOption,
    UnknownPoll,
    Voter,
    _epoch,
    _iso,
    _object,
    _PollMeta,
    _short_text,
    text_html,
)
from liveblog.errors import BadRequest, Conflict, TooLarge
from liveblog.models import PARTICIPATION, Item, utcnow
from liveblog.storage import Tx
from liveblog.text import xml_chars

log = logging.getLogger(__name__)

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "that",
        "the",
        "this",
        "to",
        "was",
        "we",
        "were",
        "will",
        "with",
        "you",
        "your",
        "our",
        "not",
        "no",
        "do",
        "does",
        "de",
        "la",
        "le",
        "les",
        "et",
        "un",
        "une",
        "der",
        "die",
        "das",
        "und",
    ]
)
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


def poll_fields(message: Any) -> dict[str, Any]:
    """Validate a new poll: {question, kind, options?} -> the poll's item data (state draft)."""
    message = _object(message)
    question = _short_text(message, "question", POLL_QUESTION_CHARS, required=True)
    kind = message.get("kind", "single")
    if kind not in POLL_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(POLL_KINDS)}", code="invalid_field", field="kind")
    options: list[dict[str, str]] = []
    if kind == "rating":
        options = [{"id": str(n), "label": str(n)} for n in range(1, 6)]
    elif kind in ("single", "multiple"):
        raw = message.get("options")
        if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
            raise BadRequest("options must be a list of strings", code="invalid_field", field="options")
        labels = [xml_chars(o).strip() for o in raw if xml_chars(o).strip()]
        if not 2 <= len(labels) <= MAX_OPTIONS:
            raise BadRequest(f"a poll has 2 to {MAX_OPTIONS} options", code="invalid_field", field="options")
        if len(set(labels)) != len(labels):
            raise BadRequest("two options have the same label", code="invalid_field", field="options")
        for label in labels:
            if len(label) > OPTION_CHARS:
                raise TooLarge(f"an option is longer than {OPTION_CHARS} characters", field="options")
        # Short stable ids: "a", "b", ... so a vote names an option, never its position in a list.
        options = [{"id": chr(ord("a") + i), "label": label} for i, label in enumerate(labels)]
    audience = message.get("audience", "anyone")
    if audience not in PARTICIPATION:
        raise BadRequest(
            f"audience must be one of {', '.join(PARTICIPATION)}", code="invalid_field", field="audience"
        )
    data: dict[str, Any] = {
        "question": question,
        "options": options,
        "audience": audience,
        "poll_kind": kind,
        "state": "draft",
        "tally": {o["id"]: 0 for o in options},
        "voters": 0,
    }
    if kind == "rating":
        data["average"] = None
    return data


def canonical_choice(data: dict[str, Any], choice: Any) -> str:
    """A vote's choice checked against the poll, as the JSON text stored (equal choices, equal text)."""
    kind = data["poll_kind"]
    ids = {o["id"] for o in data["options"]}
    if choice is None:
        raise BadRequest("field 'choice' is required", code="missing_field", field="choice")
    if kind == "text":
        if not isinstance(choice, str):
            raise BadRequest("choice must be a string for a text poll", code="invalid_field", field="choice")
        text = " ".join(choice.split())
        if not text:
            raise BadRequest("the answer must not be empty", code="empty", field="choice")
        if len(text) > TEXT_ANSWER_CHARS:
            raise TooLarge(f"an answer is at most {TEXT_ANSWER_CHARS} characters", field="choice")
        return json.dumps(text, ensure_ascii=False)
    if kind == "multiple":
        picked = [choice] if isinstance(choice, str) else choice
        if not isinstance(picked, list) or not picked or not all(isinstance(c, str) for c in picked):
            raise BadRequest(
                "choice must be a non-empty list of option ids", code="invalid_field", field="choice"
            )
        unknown = [c for c in picked if c not in ids]
        if unknown:
            raise UnknownOption(f"no option {unknown[0]!r} in this poll", field="choice")
        return json.dumps(sorted(set(picked)))
    if kind == "rating" and isinstance(choice, int) and not isinstance(choice, bool):
        choice = str(choice)
    if not isinstance(choice, str):
        raise BadRequest("choice must be an option id", code="invalid_field", field="choice")
    if choice not in ids:
        raise UnknownOption(f"no option {choice!r} in this poll", field="choice")
    return json.dumps(choice)


def words(text: str) -> set[str]:
    """The words of an open-text answer that count for the cloud (each once per answer)."""
    return {
        w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if len(w) > 1 and w not in _STOPWORDS
    }


def compute_tally(data: dict[str, Any], groups: list[tuple[str, int]]) -> dict[str, Any]:
    """{tally, voters[, average]} from (choice, count) groups."""
    kind = data["poll_kind"]
    voters = sum(n for _, n in groups)
    if kind == "text":
        counts: Counter[str] = Counter()
        for choice, n in groups:
            for word in words(json.loads(choice)):
                counts[word] += n
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:WORD_CLOUD_WORDS]
        return {"tally": dict(top), "voters": voters}
    tally = {o["id"]: 0 for o in data["options"]}
    for choice, n in groups:
        picked = json.loads(choice)
        for option in picked if isinstance(picked, list) else [picked]:
            if option in tally:
                tally[option] += n
    out: dict[str, Any] = {"tally": tally, "voters": voters}
    if kind == "rating":
        out["average"] = round(sum(int(k) * v for k, v in tally.items()) / voters, 2) if voters else None
    return out


async def counted_tally(tx: Tx, poll_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """`compute_tally` over the votes that count: all of them, or without the flagged ones when
    the poll's flagged votes are discounted (`discount_flagged`). Once any vote is flagged it
    also says how many are (`flagged`) and how many of them are left out (`discounted`)."""
    discount = bool(data.get("discount_flagged"))
    result = compute_tally(data, await tx.vote_groups(poll_id, discount_flagged=discount))
    flagged = await tx.count_flagged_votes(poll_id)
    if flagged or discount or "flagged" in data:
        result["flagged"] = flagged
        result["discounted"] = flagged if discount else 0
    return result


class PollActions(AudienceBase):
    # -- polls -----------------------------------------------------------------------------------

    async def create_poll(self, session_id: str, moderator: Moderator, message: Any) -> Item:
        data = poll_fields(message)
        message = _object(message)
        duration = self._duration(message)
        open_now = validate.boolean(message, "open")
        cid = "poll:" + (validate.client_id(message) if message.get("client_id") else secrets.token_hex(8))

        async def op(tx: Tx) -> Item:
            if await tx.claim_client_op(session_id, cid, "") is not None:
                found = await tx.find_item_by_client_id(session_id, cid)
                if found is not None:
                    return found  # a resent create (lost response): the poll made the first time
                raise UnknownPoll("that poll has been removed")
            await self._open_session(tx, session_id)
            if open_now:
                data["state"] = "open"
                data["opened_at"] = utcnow()
                if duration:
                    data["closes_at"] = _iso(time.time() + duration)
            item, _ = await tx.insert_item(
                session_id=session_id,
                kind="poll",
                client_id=cid,
                author=moderator.name,
                author_ref=moderator.ref,
                body=data["question"],
                html=text_html(data["question"]),
                key_point=False,
                data=data,
                typed_at=utcnow(),
            )
            tx.after_commit.append(lambda: self._poll_changed(item))
            return item

        return await self.db.write(op)

    @staticmethod
    def _duration(message: dict[str, Any]) -> int | None:
        duration = validate.integer(message, "duration_seconds", required=False)
        if duration is not None and not 1 <= duration <= MAX_POLL_SECONDS:
            raise BadRequest(
                f"duration_seconds is 1 to {MAX_POLL_SECONDS}", code="invalid_field", field="duration_seconds"
            )
        return duration

    def _poll_changed(self, item: Item) -> None:
        self._polls[item.id] = _PollMeta(item.session_id, item.data)
        closes_at = item.data.get("closes_at") if item.data.get("state") == "open" else None
        self.coalescer.set_deadline(item.id, closes_at)

    async def set_poll_state(self, poll_id: int, moderator: Moderator, message: Any) -> Item:
        """Open (or reopen) a poll, optionally closing itself after duration_seconds; or close it."""
        message = _object(message)
        state = message.get("state")
        if state not in ("open", "closed"):
            raise BadRequest("state must be 'open' or 'closed'", code="invalid_field", field="state")
        duration = self._duration(message) if state == "open" else None

        async def op(tx: Tx) -> Item:
            item = await self._item(tx, poll_id, "poll")
            await self._open_session(tx, item.session_id)
            data = dict(item.data)
            if data["state"] == state and not duration:
                return item
            data["state"] = state
            data.pop("closes_at", None)
            if state == "open":
                data["opened_at"] = utcnow()
                if duration:
                    data["closes_at"] = _iso(time.time() + duration)
            else:
                data["closed_at"] = utcnow()
                data.update(await counted_tally(tx, poll_id, data))
            updated, _ = await tx.update_item(poll_id, {"data": data})
            tx.after_commit.append(lambda: self._poll_changed(updated))
            return updated

        return await self.db.write(op)

    async def discount_flagged(self, poll_id: int, moderator: Moderator, message: Any) -> Item:
        """{discount: true|false, reason?}: leave the poll's flagged votes out of its result, or
        count them again (a moderation action: the ledger logs "discount" or "count"). Allowed
        after the session ended too: the knowledge page shows the result as counted."""
        message = _object(message)
        discount = validate.boolean(message, "discount", default=None)
        if discount is None:
            raise BadRequest("field 'discount' is required", code="missing_field", field="discount")
        reason = validate.moderation_reason(message.get("reason"))

        async def op(tx: Tx) -> Item:
            item = await self._item(tx, poll_id, "poll")
            if bool(item.data.get("discount_flagged")) == discount:
                return item
            if item.data.get("voters") and not await tx.count_votes(poll_id):
                raise Conflict(
                    "this poll's votes are not in this database (it was imported with its result only):"
                    " its result cannot be counted again",
                    code="votes_not_here",
                )
            data = {**item.data, "discount_flagged": discount}
            data.update(await counted_tally(tx, poll_id, data))
            updated, _ = await tx.update_item(poll_id, {"data": data})
            await tx.record_moderation(
                session_id=item.session_id,
                actor=moderator.name,
                action="discount" if discount else "count",
                target_kind="poll",
                target_id=poll_id,
                reason=reason,
            )
            tx.after_commit.append(lambda: self._poll_changed(updated))
            return updated

        return await self.db.write(op)

    async def _poll_meta(self, poll_id: int) -> _PollMeta:
        meta = self._polls.get(poll_id)
        # A poll seen as draft or closed is read again: another process may have opened it (this
        # cache is kept fresh only by this process's own commits). An open one that another
        # process closed is refused by the writer's authoritative check.
        if meta is None or meta.data.get("state") != "open":
            item = await self.db.read(lambda r: self._item(r, poll_id, "poll"))
            meta = self._polls[poll_id] = _PollMeta(item.session_id, item.data)
        return meta

    @staticmethod
    def _check_open(data: dict[str, Any]) -> None:
        if data.get("state") != "open":
            word = "has not opened yet" if data.get("state") == "draft" else "is closed"
            raise PollClosed(f"this poll {word}: votes are not accepted")
        closes_at = data.get("closes_at")
        if closes_at and _epoch(closes_at) <= time.time():
            raise PollClosed("this poll is closed: votes are not accepted")

    async def vote(self, poll_id: int, voter: Voter, message: Any) -> dict[str, Any]:
        """Record (or change) a vote. Returns {poll_id, choice, status: created|changed|unchanged}."""
        message = _object(message)
        meta = await self._poll_meta(poll_id)
        flagged = await self._limit(meta.session_id, voter)
        self._admit(meta.session_id, meta.data.get("audience", "anyone"), voter)
        # Checked here against the cached poll so a bad vote never reaches (and spoils) a batch
        # in the writer; the writer checks the state again, authoritatively.
        self._check_open(meta.data)
        choice = canonical_choice(meta.data, message.get("choice"))

        async def op(tx: Tx) -> str:
            # The hot path: one read and one write (each a thread hop in aiosqlite), however
            # many votes share this transaction.
            found = await tx.vote_context(poll_id, voter.participant)
            if found is None or found[0] != "poll" or found[1]:
                raise UnknownPoll(f"there is no poll {poll_id}")
            _, _, state, closes_at, _, session_state, current = found
            if session_state == "ended":
                raise Conflict("this session has ended", code="session_ended")
            self._check_open({"state": state, "closes_at": closes_at})
            if current == choice:
                return "unchanged"
            await tx.put_vote(poll_id, voter.participant, choice, voter.ip, flagged)
            tx.after_commit.append(lambda: self.coalescer.mark("poll", poll_id))
            return "created" if current is None else "changed"

        status = await self.db.write(op)
        return {"poll_id": poll_id, "choice": json.loads(choice), "status": status}

    async def _write_tally(self, tx: Tx, poll_id: int) -> None:
        item = await tx.get_item(poll_id)
        if item is None or item.deleted:
            return
        result = await counted_tally(tx, poll_id, item.data)
        if all(item.data.get(k) == v for k, v in result.items()):
            return  # e.g. a vote changed and changed back within one interval
        data = {**item.data, **result}
        await tx.set_item_data(item, data, "poll.tally", result)
        tx.after_commit.append(lambda: self._polls.__setitem__(poll_id, _PollMeta(item.session_id, data)))

    async def _auto_close(self, tx: Tx, poll_id: int) -> None:
        item = await tx.get_item(poll_id)
        if item is None or item.data.get("state") != "open" or not item.data.get("closes_at"):
            return
        if _epoch(item.data["closes_at"]) > time.time():
            tx.after_commit.append(lambda: self.coalescer.set_deadline(poll_id, item.data["closes_at"]))
            return
        data = {**item.data, "state": "closed", "closed_at": utcnow()}
        data.update(await counted_tally(tx, poll_id, data))
        updated, _ = await tx.update_item(poll_id, {"data": data})
        tx.after_commit.append(lambda: self._poll_changed(updated))

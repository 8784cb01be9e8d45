"""Audience votes: polls, votes, questions and upvotes, and the coalescer that turns a burst of
votes into a few tally changes in the stream.

Polls and questions are stream items (kinds "poll" and "question"). A vote or an upvote is
committed and answered at once, but it does not become a stream change by itself: it marks its
poll (or question) dirty, and one coalescer task writes the current tally as a single
`poll.tally` (or `question.votes`) change at most once per `votes.tally_interval_ms` per poll.
Tallies are state, not history: 1,000 votes in a second are a handful of changes, the last one
exact. The same task closes polls whose `closes_at` has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import escape

from liveblog.capture import validate
from liveblog.access.participants import Participants
from liveblog.errors import BadRequest, Conflict, NotFound, RateLimited, TooLarge
from liveblog.models import Item, Session, utcnow
from liveblog.settings import Settings
from liveblog.storage import Store, Tx
from liveblog.streams.hub import StreamHub

log = logging.getLogger(__name__)

POLL_KINDS = ("single", "multiple", "rating", "text")
POLL_STATES = ("draft", "open", "closed")
QUESTION_STATES = ("visible", "pending", "hidden", "answered")
PUBLIC_QUESTION_STATES = ("visible", "answered")
QUESTION_ACTIONS = ("approve", "hide", "answer", "pin", "unpin")

MAX_OPTIONS = 20
OPTION_CHARS = 200
POLL_QUESTION_CHARS = 300
NAME_CHARS = 60
TEXT_ANSWER_CHARS = 100  # an open-text answer is a few words for the word cloud, not an essay
WORD_CLOUD_WORDS = 60  # the cloud shows the most frequent words only: bounded message size
MAX_POLL_SECONDS = 24 * 3600

# One person clicking fast does a few actions a second; a script does hundreds. Over this many
# actions in FLOOD_WINDOW seconds a participant gets 429 and nothing changes.
FLOOD_ACTIONS = 10
FLOOD_WINDOW = 1.0

# How often the coalescer drops stale flood/IP counters when nothing else wakes it.
HOUSEKEEPING_SECONDS = 30.0

_STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "i", "in", "is", "it", "its", "of", "on", "or", "so", "that", "the", "this", "to", "was", "we", "were", "will", "with", "you", "your", "our", "not", "no", "do", "does", "de", "la", "le", "les", "et", "un", "une", "der", "die", "das", "und"]
)
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


# -- errors (codes are part of docs/protocol-votes.md) -----------------------------------------


class UnknownPoll(NotFound):
    code = "unknown_poll"


class UnknownQuestion(NotFound):
    code = "unknown_question"


class PollClosed(Conflict):
    code = "poll_closed"


class QuestionNotVisible(Conflict):
    code = "question_not_visible"


class UnknownOption(BadRequest):
    code = "unknown_option"


# -- who is acting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Voter:
    """A member of the audience: a verified participant id and where the request came from."""

    participant: str
    ip: str = ""


@dataclass(frozen=True)
class Moderator:
    """A note-taker (invite) or an organiser acting on a session's polls and questions."""

    name: str
    ref: str  # invite id or "account:<id>"


# -- pure helpers ------------------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()  # 3.11 reads the trailing Z


def text_html(text: str) -> str:
    """Plain text (a poll question, an audience question) as safe HTML: no Markdown, no links."""
    return "<p>" + str(escape(text)).replace("\n", "<br>") + "</p>"


def _short_text(message: dict[str, Any], name: str, limit: int, *, required: bool) -> str:
    value = message.get(name)
    if value is None or (not required and isinstance(value, str) and not value.strip()):
        if required:
            raise BadRequest(f"field {name!r} is required", code="missing_field", field=name)
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", code="invalid_field", field=name)
    value = value.strip()
    if required and not value:
        raise BadRequest(f"{name} must not be empty", code="empty", field=name)
    if len(value) > limit:
        raise TooLarge(f"{name} is {len(value)} characters; the limit is {limit}", field=name)
    return value


def _object(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise BadRequest("expected a JSON object", code="invalid_json")
    return message


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
        labels = [o.strip() for o in raw if o.strip()]
        if not 2 <= len(labels) <= MAX_OPTIONS:
            raise BadRequest(f"a poll has 2 to {MAX_OPTIONS} options", code="invalid_field", field="options")
        if len(set(labels)) != len(labels):
            raise BadRequest("two options have the same label", code="invalid_field", field="options")
        for label in labels:
            if len(label) > OPTION_CHARS:
                raise TooLarge(f"an option is longer than {OPTION_CHARS} characters", field="options")
        # Short stable ids: "a", "b", ... so a vote names an option, never its position in a list.
        options = [{"id": chr(ord("a") + i), "label": label} for i, label in enumerate(labels)]
    data: dict[str, Any] = {
        "question": question,
        "options": options,
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
            raise BadRequest("choice must be a non-empty list of option ids", code="invalid_field", field="choice")
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
    return {w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if len(w) > 1 and w not in _STOPWORDS}


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


# -- limits kept in memory ---------------------------------------------------------------------


class FloodGuard:
    """At most FLOOD_ACTIONS per participant per FLOOD_WINDOW seconds."""

    def __init__(self, actions: int = FLOOD_ACTIONS, window: float = FLOOD_WINDOW) -> None:
        self.actions = actions
        self.window = window
        self.clock = time.monotonic  # replaceable, so a test does not depend on machine speed
        self._seen: dict[str, deque[float]] = {}

    def check(self, participant: str) -> None:
        now = self.clock()
        stamps = self._seen.setdefault(participant, deque())
        while stamps and now - stamps[0] > self.window:
            stamps.popleft()
        if len(stamps) >= self.actions:
            raise RateLimited(
                f"more than {self.actions} actions in {self.window:g} s: slow down and try again in a moment"
            )
        stamps.append(now)

    def prune(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._seen.items() if not s or now - s[-1] > self.window]:
            del self._seen[key]


class IpBursts:
    """Counts actions per IP per minute. A whole room shares one IP, so this never blocks: a
    count over the limit is flagged to the session's moderators once per IP per minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._counts: Counter[tuple[str, int]] = Counter()
        self.flags: dict[str, deque[dict[str, Any]]] = {}

    def count(self, session_id: str, ip: str) -> dict[str, Any] | None:
        if not ip or self.per_minute <= 0:
            return None
        minute = int(time.time() // 60)
        key = (ip, minute)
        self._counts[key] += 1
        if self._counts[key] != self.per_minute + 1:
            return None
        flag = {
            "kind": "ip_burst",
            "ip": ip,
            "source": hashlib.sha256(ip.encode()).hexdigest()[:8],
            "minute": _iso(minute * 60),
            "limit": self.per_minute,
            "at": utcnow(),
        }
        self.flags.setdefault(session_id, deque(maxlen=50)).append(flag)
        return flag

    def prune(self) -> None:
        minute = int(time.time() // 60)
        for key in [k for k in self._counts if k[1] < minute]:
            del self._counts[key]


# -- the coalescer -----------------------------------------------------------------------------


class TallyCoalescer:
    """One task for all polls: a per-poll (per-question) dirty flag, flushed at most once per
    interval each, first flush at once after a quiet spell; and the poll close deadlines."""

    def __init__(self, audience: Audience, interval_ms: int) -> None:
        self.audience = audience
        self.interval = max(interval_ms, 0) / 1000
        self._dirty: set[tuple[str, int]] = set()
        self._last: dict[tuple[str, int], float] = {}
        self._deadlines: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0  # write transactions made, for tests and the benchmark

    def mark(self, kind: str, item_id: int) -> None:
        self._dirty.add((kind, item_id))
        self._wake.set()

    def set_deadline(self, poll_id: int, closes_at: str | None) -> None:
        if closes_at is None:
            self._deadlines.pop(poll_id, None)
        else:
            self._deadlines[poll_id] = _epoch(closes_at)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="liveblog-tally-coalescer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._dirty:  # what voters were told is counted reaches the stream before we close
            try:
                await self._flush(list(self._dirty), [])
            except Exception:  # the votes themselves are stored; only the last tally change is missing
                log.exception("writing the last tallies at shutdown failed")

    async def run(self) -> None:
        """Flush tallies and close due polls forever (run under the service supervisor)."""
        last_housekeeping = time.monotonic()
        while True:
            self._wake.clear()
            now = time.monotonic()
            due = [k for k in self._dirty if now - self._last.get(k, -math.inf) >= self.interval]
            wall = time.time()
            closing = [p for p, t in self._deadlines.items() if t <= wall]
            if due or closing:
                try:
                    await self._flush(due, closing)
                except Exception:
                    log.exception("writing tallies failed; retrying after the interval")
                    self._dirty.update(due)
                    for poll_id in closing:  # still to close: due at once on the retry
                        self._deadlines.setdefault(poll_id, wall)
                    for key in due:
                        self._last[key] = time.monotonic()
                    await asyncio.sleep(max(self.interval, 0.05))
                continue
            if now - last_housekeeping > HOUSEKEEPING_SECONDS:
                last_housekeeping = now
                self.audience.housekeeping()
                self._last = {k: t for k, t in self._last.items() if now - t < self.interval or k in self._dirty}
            waits = [self._last[k] + self.interval - now for k in self._dirty]
            waits += [t - wall for t in self._deadlines.values()]
            timeout = max(0.0, min(waits, default=HOUSEKEEPING_SECONDS))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _flush(self, due: list[tuple[str, int]], closing: list[int]) -> None:
        audience = self.audience

        # Cleared before the write is queued, on the event loop (ops run in the writer thread and
        # must not touch loop state): a vote committed after this point marks its poll again,
        # and the tally this write computes includes every vote committed before it.
        now = time.monotonic()
        for key in due:
            self._dirty.discard(key)
            self._last[key] = now
        for poll_id in closing:
            self._deadlines.pop(poll_id, None)

        async def op(tx: Tx) -> None:
            for kind, item_id in due:
                if kind == "poll":
                    await audience._write_tally(tx, item_id)
                else:
                    await audience._write_upvotes(tx, item_id)
            for poll_id in closing:
                await audience._auto_close(tx, poll_id)

        self.flushes += 1
        await audience.db.write(op)


# -- the service -------------------------------------------------------------------------------


@dataclass
class _PollMeta:
    """What a vote is checked against before it reaches the writer (the writer checks again)."""

    session_id: str
    data: dict[str, Any]


class Audience:
    def __init__(self, db: Store, hub: StreamHub, settings: Settings) -> None:
        self.db = db
        self.hub = hub
        self.settings = settings
        self.question_chars = settings.limits.question_chars
        self.participants = Participants(settings.secret_key)
        self.flood = FloodGuard()
        self.ip_bursts = IpBursts(settings.votes.ip_burst_per_minute)
        self.coalescer = TallyCoalescer(self, settings.votes.tally_interval_ms)
        self._polls: dict[int, _PollMeta] = {}

    async def load_deadlines(self) -> None:
        for poll_id, closes_at in await self.db.read(lambda r: r.open_polls_with_deadline()):
            self.coalescer.set_deadline(poll_id, closes_at)

    async def start(self) -> None:
        """Standalone use (tests, benchmarks): load deadlines and run the coalescer's own task."""
        await self.load_deadlines()
        self.coalescer.start()

    async def stop(self) -> None:
        await self.coalescer.stop()

    def housekeeping(self) -> None:
        self.flood.prune()
        self.ip_bursts.prune()
        # Per-poll state lives as long as its session's channel (freed when idle or ended); a
        # later vote reads the poll from storage again.
        self._polls = {k: m for k, m in self._polls.items() if m.session_id in self.hub.channels}

    # -- shared checks ---------------------------------------------------------------------------

    def _limit(self, session_id: str, voter: Voter) -> None:
        self.flood.check(voter.participant)
        flag = self.ip_bursts.count(session_id, voter.ip)
        if flag is not None:
            log.warning("vote burst from %s in session %s", voter.ip, session_id)
            # Unsequenced: moderators' pages refresh their flag list; no IP goes out on the stream.
            self.hub.send_unsequenced(
                session_id, {"type": "flag", "kind": flag["kind"], "source": flag["source"], "limit": flag["limit"]}
            )

    async def _item(self, conn: Any, item_id: int, kind: str) -> Item:
        item = await conn.get_item(item_id)
        if item is None or item.kind != kind or item.deleted:
            if kind == "poll":
                raise UnknownPoll(f"there is no poll {item_id}")
            raise UnknownQuestion(f"there is no question {item_id}")
        return item

    async def item_session(self, item_id: int, kind: str) -> str:
        """The session a poll or question belongs to (for the web layer's permission check)."""
        item = await self.db.read(lambda r: self._item(r, item_id, kind))
        return item.session_id

    @staticmethod
    async def _open_session(tx: Tx, session_id: str) -> Session:
        session = await tx.get_session(session_id)
        if session is None:
            raise NotFound(f"no session {session_id!r}", code="unknown_session")
        if session.state == "ended":
            raise Conflict("this session has ended", code="session_ended")
        return session

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
                data.update(compute_tally(data, await tx.vote_groups(poll_id)))
            updated, _ = await tx.update_item(poll_id, {"data": data})
            tx.after_commit.append(lambda: self._poll_changed(updated))
            return updated

        return await self.db.write(op)

    async def _poll_meta(self, poll_id: int) -> _PollMeta:
        meta = self._polls.get(poll_id)
        if meta is None:
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
        self._limit(meta.session_id, voter)
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
            await tx.put_vote(poll_id, voter.participant, choice, voter.ip)
            tx.after_commit.append(lambda: self.coalescer.mark("poll", poll_id))
            return "created" if current is None else "changed"

        status = await self.db.write(op)
        return {"poll_id": poll_id, "choice": json.loads(choice), "status": status}

    async def _write_tally(self, tx: Tx, poll_id: int) -> None:
        item = await tx.get_item(poll_id)
        if item is None or item.deleted:
            return
        result = compute_tally(item.data, await tx.vote_groups(poll_id))
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
        data.update(compute_tally(data, await tx.vote_groups(poll_id)))
        updated, _ = await tx.update_item(poll_id, {"data": data})
        tx.after_commit.append(lambda: self._poll_changed(updated))

    # -- questions -------------------------------------------------------------------------------

    async def ask(self, session_id: str, voter: Voter, message: Any) -> tuple[Item, bool]:
        """A question from the audience: visible at once, or pending when the session moderates.
        Returns (item, duplicate)."""
        message = _object(message)
        self._limit(session_id, voter)
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
                item_id=item.id, session_id=session_id, participant=voter.participant, name=name, body=body,
                ip=voter.ip,
            )
            return item, False

        return await self.db.write(op)

    async def upvote(self, question_id: int, voter: Voter) -> dict[str, Any]:
        """Upvote a visible question once. Returns {question_id, status: created|unchanged}."""

        async def check(conn: Any) -> Item:
            return await self._item(conn, question_id, "question")

        item = await self.db.read(check)
        self._limit(item.session_id, voter)
        if item.data.get("state") not in PUBLIC_QUESTION_STATES:
            raise QuestionNotVisible("this question is not shown, so it cannot be upvoted")

        async def op(tx: Tx) -> str:
            current = await self._item(tx, question_id, "question")
            await self._open_session(tx, current.session_id)
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
        """approve | hide | answer (answer_item_id?) | pin | unpin. Pinning unpins the others."""
        message = _object(message)
        action = message.get("action")
        if action not in QUESTION_ACTIONS:
            raise BadRequest(f"action must be one of {', '.join(QUESTION_ACTIONS)}", code="invalid_field", field="action")
        answer_item_id = validate.integer(message, "answer_item_id", required=False)

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
                    if note is None or note.session_id != item.session_id or note.kind != "note" or note.deleted:
                        raise NotFound("no such note in this session", code="unknown_item", field="answer_item_id")
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
            return updated

        return await self.db.write(op)

    # -- reading ---------------------------------------------------------------------------------

    async def snapshot(self, session_id: str, participant: str | None) -> dict[str, Any]:
        """What the audience panel starts from: polls, public questions, and this participant's
        own votes, upvotes and questions, with the stream position they are current at."""

        async def read(conn: Any) -> dict[str, Any]:
            session = await conn.get_session(session_id)
            if session is None:
                raise NotFound(f"no session {session_id!r}", code="unknown_session")
            polls = await conn.list_items(session_id, kind="poll")
            questions = await conn.list_items(session_id, kind="question")
            you: dict[str, Any] = {"participant": participant, "votes": {}, "upvotes": [], "questions": []}
            if participant:
                you["votes"] = {str(k): v for k, v in (await conn.votes_of(session_id, participant)).items()}
                you["upvotes"] = await conn.upvotes_of(session_id, participant)
                private = await conn.list_questions(session_id)
                you["questions"] = [
                    {"id": q.id, "state": q.data.get("state")}
                    for q in questions
                    if private.get(q.id, {}).get("participant") == participant
                ]
            return {
                "session": session_id,
                "epoch": session.stream_epoch,
                "seq": session.last_seq,
                "question_moderation": session.question_moderation,
                "limits": {"question_chars": self.question_chars, "text_answer_chars": TEXT_ANSWER_CHARS},
                "polls": [p.to_wire() for p in polls if p.data.get("state") != "draft"],
                "questions": [q.to_wire() for q in questions if q.data.get("state") in PUBLIC_QUESTION_STATES],
                "you": you,
            }

        return await self.db.read(read)

    async def moderation(self, session_id: str) -> dict[str, Any]:
        """For moderators: every poll (drafts too), every question with its private text, flags."""

        async def read(conn: Any) -> dict[str, Any]:
            session = await conn.get_session(session_id)
            if session is None:
                raise NotFound(f"no session {session_id!r}", code="unknown_session")
            polls = await conn.list_items(session_id, kind="poll")
            questions = await conn.list_items(session_id, kind="question")
            private = await conn.list_questions(session_id)
            out = []
            for q in questions:
                wire = q.to_wire()
                extra = private.get(q.id, {})
                wire["body"] = extra.get("body", q.body)
                wire["name"] = extra.get("name", "")
                out.append(wire)
            return {
                "session": session.to_wire(),
                "polls": [p.to_wire() for p in polls],
                "questions": out,
                "flags": list(self.ip_bursts.flags.get(session_id, ())),
            }

        return await self.db.read(read)


"""What every part of audience participation shares: limits on sizes, error codes, who is acting,
and the base of the Audience service (its state and the checks every action makes)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from markupsafe import escape

from liveblog.access.participants import Participants
from liveblog.access.rooms import RoomCodes
from liveblog.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from liveblog.models import Item, Session
from liveblog.settings import Settings
from liveblog.storage import Store, Tx
from liveblog.streams.hub import StreamHub
from liveblog.text import xml_chars

if TYPE_CHECKING:
    from liveblog.capture.votes.limits import FloodGuard, IpBursts
    from liveblog.capture.votes.tallies import TallyCoalescer

log = logging.getLogger(__name__)

POLL_KINDS = ("single", "multiple", "rating", "text")
POLL_STATES = ("draft", "open", "closed")
QUESTION_STATES = ("visible", "pending", "hidden", "answered", "merged")
PUBLIC_QUESTION_STATES = ("visible", "answered")
QUESTION_ACTIONS = ("approve", "hide", "answer", "pin", "unpin", "merge")

MAX_OPTIONS = 20
OPTION_CHARS = 200
POLL_QUESTION_CHARS = 300
NAME_CHARS = 60
TEXT_ANSWER_CHARS = 100  # an open-text answer is a few words for the word cloud, not an essay
WORD_CLOUD_WORDS = 60  # the cloud shows the most frequent words only: bounded message size
MAX_POLL_SECONDS = 24 * 3600

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


class RoomCodeRequired(Forbidden):
    code = "room_code_required"


class AccountRequired(Forbidden):
    code = "account_required"


# -- who is acting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Voter:
    """A member of the audience: a verified participant id and where the request came from."""

    participant: str
    ip: str = ""
    room_code: str = ""  # the code the person typed (or scanned), for "people in the room"
    fresh: bool = False  # the participant id was issued moments ago (see limits.FreshIds)

    @property
    def is_account(self) -> bool:
        """Logged in (a reader or an organiser account), not an anonymous id."""
        return self.participant.startswith("account:")


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
    value = xml_chars(value).strip()
    if required and not value:
        raise BadRequest(f"{name} must not be empty", code="empty", field=name)
    if len(value) > limit:
        raise TooLarge(f"{name} is {len(value)} characters; the limit is {limit}", field=name)
    return value


def _object(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise BadRequest("expected a JSON object", code="invalid_json")
    return message


# -- the service -------------------------------------------------------------------------------


@dataclass
class _PollMeta:
    """What a vote is checked against before it reaches the writer (the writer checks again)."""

    session_id: str
    data: dict[str, Any]


class AudienceBase:
    """The Audience's state and shared checks; polls.py and questions.py add the actions."""

    db: Store
    hub: StreamHub
    settings: Settings
    question_chars: int
    participants: Participants
    rooms: RoomCodes
    flood: FloodGuard
    ip_bursts: IpBursts
    fresh_ids: IpBursts
    coalescer: TallyCoalescer
    _polls: dict[int, _PollMeta]

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
        self.fresh_ids.prune()
        # Per-poll state lives as long as its session's channel (freed when idle or ended); a
        # later vote reads the poll from storage again.
        self._polls = {k: m for k, m in self._polls.items() if m.session_id in self.hub.channels}

    # -- shared checks ---------------------------------------------------------------------------

    async def _limit(self, session_id: str, voter: Voter) -> str:
        """The flood guard (429), and the burst counters of the voter's address: returns the kind
        of burst the address is over this minute ("ip_burst", "fresh_ids"), or "" when none. A
        vote cast over a limit is stored flagged with it (docs/protocol-votes.md, *Flagged votes*)."""
        await self.flood.check_shared(voter.participant)
        flags = [self.ip_bursts.count(session_id, voter.ip)]
        if voter.fresh:
            flags.append(self.fresh_ids.count(session_id, voter.ip))
        for flag in flags:
            if flag is None:
                continue
            log.warning("%s from %s in session %s", flag["kind"], voter.ip, session_id)
            # Unsequenced: moderators' pages refresh their flag list; no IP goes out on the stream.
            self.hub.send_unsequenced(
                session_id,
                {"type": "flag", "kind": flag["kind"], "source": flag["source"], "limit": flag["limit"]},
            )
        if self.ip_bursts.over(voter.ip):
            return "ip_burst"
        if voter.fresh and self.fresh_ids.over(voter.ip):
            return "fresh_ids"
        return ""

    def _admit(self, session_id: str, rule: str, voter: Voter) -> None:
        """Who may take part (models.PARTICIPATION; docs/protocol-votes.md)."""
        if rule == "accounts" and not voter.is_account:
            raise AccountRequired("only logged-in accounts take part here: log in first")
        if rule == "room_code" and not voter.is_account and not self.rooms.valid(session_id, voter.room_code):
            raise RoomCodeRequired("type the room code shown on the screen in the room to take part")

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

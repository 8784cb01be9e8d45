"""The Audience service: polls and questions together, and what pages and moderators read."""

from __future__ import annotations

import logging
from typing import Any

from liveblog.access.participants import Participants
from liveblog.access.rooms import RoomCodes
from liveblog.capture.votes.common import PUBLIC_QUESTION_STATES, TEXT_ANSWER_CHARS, _PollMeta
from liveblog.capture.votes.limits import FloodGuard, IpBursts
from liveblog.capture.votes.polls import PollActions
from liveblog.capture.votes.questions import QuestionActions
from liveblog.capture.votes.tallies import TallyCoalescer
from liveblog.errors import NotFound
from liveblog.settings import Settings
from liveblog.sharedstate import SharedCounters
from liveblog.storage import Store
from liveblog.streams.hub import StreamHub

log = logging.getLogger(__name__)


class Audience(PollActions, QuestionActions):
    """Polls, votes, questions and upvotes of every session (see the package docstring)."""

    def __init__(
        self, db: Store, hub: StreamHub, settings: Settings, *, shared: SharedCounters | None = None
    ) -> None:
        """`shared`: the flood limit's counters across processes (Redis), when several serve."""
        self.db = db
        self.hub = hub
        self.settings = settings
        self.question_chars = settings.limits.question_chars
        self.participants = Participants(settings.secret_key)
        self.flood = FloodGuard(shared=shared)
        self.ip_bursts = IpBursts(settings.votes.ip_burst_per_minute)
        self.fresh_ids = IpBursts(settings.votes.fresh_ids_per_minute, kind="fresh_ids")
        self.rooms = RoomCodes(settings.secret_key)
        self.coalescer = TallyCoalescer(self, settings.votes.tally_interval_ms)
        self._polls: dict[int, _PollMeta] = {}

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
                "questions_audience": session.questions_audience,
                "limits": {"question_chars": self.question_chars, "text_answer_chars": TEXT_ANSWER_CHARS},
                "polls": [p.to_wire() for p in polls if p.data.get("state") != "draft"],
                "questions": [
                    q.to_wire() for q in questions if q.data.get("state") in PUBLIC_QUESTION_STATES
                ],
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
                "flags": sorted(
                    [*self.ip_bursts.flags.get(session_id, ()), *self.fresh_ids.flags.get(session_id, ())],
                    key=lambda f: str(f["at"]),
                ),
                "room_code": self.rooms.code_for(session_id),
            }

        return await self.db.read(read)

"""Questions outlive the talk (docs/archive.md, "Answered after the talk"): when a session ends,
its questions left unanswered go, most voted first, to its speakers through a speaker link; the
speakers answer in writing; knowledge pages, exports and the askers' account pages show the
answers; organisers hide and show them like comments, in the public moderation ledger.

A speaker link is made and revoked like a note-taker invite (only its token's hash is stored),
and it grants nothing but answering its own session's questions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from liveblog.errors import BadRequest, Conflict, NotFound, Unauthorized
from liveblog.models import ANSWER_CHARS, Event, Item, LaterAnswer, Session, SpeakerLink
from liveblog.storage import Store, Tx, Unit
from liveblog.text import render_markdown, xml_chars

LINK_NAME_CHARS = 80
ANSWER_ACTIONS = ("hide", "show")


@dataclass(frozen=True)
class SpeakerQuestion:
    """A question the talk had no time for, with its votes and its written answer, if any."""

    item: Item
    votes: int
    answer: LaterAnswer | None


@dataclass(frozen=True)
class SpeakerPage:
    link: SpeakerLink
    session: Session
    event: Event
    questions: list[SpeakerQuestion]

    @property
    def ended(self) -> bool:
        return self.session.state == "ended"


def answer_text(text: str) -> str:
    """An answer's text as stored, or BadRequest naming what is wrong with it."""
    body = xml_chars(text).replace("\r\n", "\n").strip()
    if not body:
        raise BadRequest("write an answer first", code="missing_field", field="body")
    if len(body) > ANSWER_CHARS:
        raise BadRequest(f"an answer is at most {ANSWER_CHARS} characters", code="too_long", field="body")
    return body


async def unanswered(r: Unit, session_id: str) -> list[SpeakerQuestion]:
    """The session's public questions not answered during the talk, most voted first, with
    their written answers (a hidden one too: its page says so, without its text)."""
    items = await r.list_items(session_id, kind="question")  # not a long session's notes
    votes = await r.upvote_counts(session_id)
    answers = await r.session_answers(session_id, public_only=False)
    asked = [i for i in items if not i.deleted and i.data.get("state") == "visible"]
    asked.sort(key=lambda i: (-votes.get(i.id, 0), i.id))
    return [SpeakerQuestion(i, votes.get(i.id, 0), answers.get(i.id)) for i in asked]


class SpeakerAnswers:
    def __init__(self, db: Store, invalidate: Callable[[set[str]], None]) -> None:
        self.db = db
        self._invalidate = invalidate  # the archive's page cache (Archive.invalidate)

    # -- links (the organisers' session page) ------------------------------------------------------

    async def make_link(self, session_id: str, name: str) -> tuple[SpeakerLink, str]:
        name = " ".join(xml_chars(name).split())
        if not name:
            raise BadRequest("say whose link it is (the speaker's name)", code="missing_field", field="name")
        if len(name) > LINK_NAME_CHARS:
            raise BadRequest(f"a name is at most {LINK_NAME_CHARS} characters", code="too_long", field="name")

        async def op(tx: Tx) -> tuple[SpeakerLink, str]:
            if await tx.get_session(session_id) is None:
                raise NotFound("There is no such session.", code="unknown_session")
            return await tx.insert_speaker_link(session_id, name)

        return await self.db.write(op)

    async def revoke_link(self, session_id: str, link_id: str) -> SpeakerLink:
        async def op(tx: Tx) -> SpeakerLink:
            if link_id not in {link.id for link in await tx.speaker_links(session_id)}:
                raise NotFound("There is no such speaker link for this session.", code="unknown_speaker_link")
            return await tx.revoke_speaker_link(link_id)

        return await self.db.write(op)

    async def links(self, session_id: str) -> list[SpeakerLink]:
        return await self.db.read(lambda r: r.speaker_links(session_id))

    # -- the speaker's page ------------------------------------------------------------------------

    async def link_for_token(self, token: str) -> SpeakerLink:
        link = await self.db.read(lambda r: r.speaker_link_for_token(token))
        if link is None or not link.active:
            raise Unauthorized(
                "This speaker link is not valid: it may have been revoked. Ask the organisers for a new one.",
                code="bad_speaker_link",
            )
        return link

    async def page(self, link: SpeakerLink) -> SpeakerPage:
        async def read(r: Unit) -> SpeakerPage:
            session = await r.get_session(link.session_id)
            if session is None:
                raise NotFound("There is no such session.", code="unknown_session")
            event = await r.get_event(session.event_id)
            assert event is not None
            questions = await unanswered(r, session.id) if session.state == "ended" else []
            return SpeakerPage(link, session, event, questions)

        return await self.db.read(read)

    async def answer(self, link: SpeakerLink, question_id: int, text: str) -> LaterAnswer:
        """Write (or rewrite) the answer to one of the link's session's unanswered questions."""
        body = answer_text(text)
        html = render_markdown(body)

        async def op(tx: Tx) -> LaterAnswer:
            session = await tx.get_session(link.session_id)
            if session is None or session.state != "ended":
                raise Conflict(
                    "The session has not ended yet: its questions can be answered once it has.",
                    code="not_ended",
                )
            found = await tx.get_items([question_id])
            question = found.get(question_id)
            if question is None or question.session_id != session.id or question.kind != "question":
                raise NotFound(
                    "This session has no such question.", code="unknown_question", field="question"
                )
            if question.deleted or question.data.get("state") != "visible":
                raise Conflict(
                    "This question was answered in the talk or removed by the organisers.", code="not_open"
                )
            return await tx.put_answer(
                question_id=question_id,
                session_id=session.id,
                author=link.name,
                link_id=link.id,
                body=body,
                html=html,
            )

        answer = await self.db.write(op)
        self._invalidate({answer.session_id})
        return answer

    # -- moderation and readers --------------------------------------------------------------------

    async def moderate(self, question_id: int, action: str, by: str, reason: str = "") -> LaterAnswer:
        """hide | show an answer, logged in the moderation ledger (target: the answer, by its
        question's id)."""
        if action not in ANSWER_ACTIONS:
            raise BadRequest(
                f"action must be one of {', '.join(ANSWER_ACTIONS)}", code="invalid_field", field="action"
            )

        async def op(tx: Tx) -> LaterAnswer:
            answer = await tx.set_answer_state(question_id, "hidden" if action == "hide" else "visible")
            await tx.record_moderation(
                session_id=answer.session_id,
                actor=by,
                action=action,
                target_kind="answer",
                target_id=question_id,
                reason=reason,
            )
            return answer

        answer = await self.db.write(op)
        self._invalidate({answer.session_id})
        return answer

    async def answer_session(self, question_id: int) -> str:
        answer = await self.db.read(lambda r: r.get_answer(question_id))
        if answer is None:
            raise NotFound("This question has no answer.", code="unknown_answer")
        return answer.session_id

    async def session_answers(self, session_id: str) -> dict[int, LaterAnswer]:
        """Every answer of a session, shown or hidden (the organisers' moderation page)."""
        return await self.db.read(lambda r: r.session_answers(session_id, public_only=False))

    async def for_asker(self, account_id: int) -> list[tuple[LaterAnswer, str, str]]:
        """The shown answers to the questions an account asked while logged in: (answer, the
        question's text, its session's title), newest first."""
        return await self.db.read(lambda r: r.answers_to_asker(f"account:{account_id}"), pool="pages")

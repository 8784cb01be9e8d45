"""SQL for questions answered after the talk (archive/answers.py): the speaker links of a session
(only their token's SHA-256 is kept, as for invites) and the speakers' written answers, one per
question. Every write touches the session's archive record, so its knowledge page's version
changes. Written once for both backends, against the query layer (sql.py)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from liveblog.errors import NotFound
from liveblog.models import LaterAnswer, SpeakerLink, utcnow
from liveblog.storage.access import hash_token, new_token
from liveblog.storage.base import OpsBase
from liveblog.storage.redaction import PUBLIC_ANSWER_STATE, item_is_public
from liveblog.storage.sql import Sql

ANSWER_COLS = "question_id, session_id, author, link_id, body, html, state, answered_at, updated_at"


def link_of(row: Any) -> SpeakerLink:
    return SpeakerLink(
        id=row["id"],
        session_id=row["session_id"],
        name=row["name"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def answer_of(row: Any) -> LaterAnswer:
    return LaterAnswer(
        question_id=int(row["question_id"]),
        session_id=row["session_id"],
        author=row["author"],
        body=row["body"],
        html=row["html"],
        state=row["state"],
        answered_at=row["answered_at"],
        updated_at=row["updated_at"],
        link_id=row["link_id"],
    )


async def session_answer_rows(db: Sql, session_id: str, public_only: bool) -> dict[int, LaterAnswer]:
    """A session's answers by question id (AnswerOps.session_answers; exports.py reads them too)."""
    sql = f"SELECT {ANSWER_COLS} FROM question_answers WHERE session_id = ?"
    args: tuple[Any, ...] = (session_id,)
    if public_only:
        sql += " AND state = ?"
        args = (session_id, PUBLIC_ANSWER_STATE)
    return {a.question_id: a for a in map(answer_of, await db.fetch_all(sql + " ORDER BY question_id", args))}


async def insert_answer_rows(db: Sql, session_id: str, answers: list[dict[str, Any]]) -> None:
    """Restore a session's answers from an export (already validated, capture/imports.py)."""
    for a in answers:
        await db.execute(
            f"INSERT INTO question_answers ({ANSWER_COLS}) VALUES (?, ?, ?, '', ?, ?, ?, ?, ?)",
            (
                a["question_id"],
                session_id,
                a["author"],
                a["body"],
                a["html"],
                a["state"],
                a["answered_at"],
                a["updated_at"],
            ),
        )


class AnswerOps(OpsBase):
    # -- speaker links ---------------------------------------------------------------------------

    async def insert_speaker_link(self, session_id: str, name: str) -> tuple[SpeakerLink, str]:
        token = new_token()
        link = SpeakerLink("spk-" + secrets.token_hex(6), session_id, name, utcnow())
        await self.db.execute(
            "INSERT INTO speaker_links (id, token_hash, session_id, name, created_at) VALUES (?, ?, ?, ?, ?)",
            (link.id, hash_token(token), session_id, name, link.created_at),
        )
        return link, token

    async def revoke_speaker_link(self, link_id: str) -> SpeakerLink:
        await self.db.execute(
            "UPDATE speaker_links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (utcnow(), link_id)
        )
        row = await self.db.fetch_one("SELECT * FROM speaker_links WHERE id = ?", (link_id,))
        if row is None:
            raise NotFound("There is no such speaker link.", code="unknown_speaker_link")
        return link_of(row)

    async def speaker_link_for_token(self, token: str) -> SpeakerLink | None:
        row = await self.db.fetch_one(
            "SELECT * FROM speaker_links WHERE token_hash = ?", (hash_token(token),)
        )
        return link_of(row) if row is not None else None

    async def speaker_links(self, session_id: str) -> list[SpeakerLink]:
        rows = await self.db.fetch_all(
            "SELECT * FROM speaker_links WHERE session_id = ? ORDER BY created_at DESC, id", (session_id,)
        )
        return [link_of(r) for r in rows]

    # -- answers ---------------------------------------------------------------------------------

    async def put_answer(
        self, *, question_id: int, session_id: str, author: str, link_id: str, body: str, html: str
    ) -> LaterAnswer:
        """Write (or rewrite) a question's answer; a rewrite keeps its first date and its state."""
        now = utcnow()
        row = await self.db.fetch_one(
            f"INSERT INTO question_answers ({ANSWER_COLS}) VALUES (?, ?, ?, ?, ?, ?, 'visible', ?, ?)"
            " ON CONFLICT (question_id) DO UPDATE SET author = excluded.author, link_id = excluded.link_id,"
            " body = excluded.body, html = excluded.html, updated_at = excluded.updated_at RETURNING *",
            (question_id, session_id, author, link_id, body, html, now, now),
        )
        await self._touch_page(session_id)
        return answer_of(row)

    async def set_answer_state(self, question_id: int, state: str) -> LaterAnswer:
        row = await self.db.fetch_one(
            "UPDATE question_answers SET state = ? WHERE question_id = ? RETURNING *", (state, question_id)
        )
        if row is None:
            raise NotFound("This question has no answer.", code="unknown_answer")
        answer = answer_of(row)
        await self._touch_page(answer.session_id)
        return answer

    async def get_answer(self, question_id: int) -> LaterAnswer | None:
        row = await self.db.fetch_one(
            f"SELECT {ANSWER_COLS} FROM question_answers WHERE question_id = ?", (question_id,)
        )
        return answer_of(row) if row is not None else None

    async def session_answers(self, session_id: str, *, public_only: bool = True) -> dict[int, LaterAnswer]:
        """A session's answers by question id: only the shown ones unless `public_only` is False
        (the speaker's and the organisers' pages)."""
        return await session_answer_rows(self.db, session_id, public_only)

    async def answers_to_asker(self, author_ref: str) -> list[tuple[LaterAnswer, str, str]]:
        """The shown answers to the questions someone asked (their participant ref, e.g.
        'account:7'), newest first, each with its question's text and its session's title."""
        rows = await self.db.fetch_all(
            "SELECT a.question_id, a.session_id, a.author, a.link_id, a.body, a.html, a.state, a.answered_at,"
            " a.updated_at, i.body AS question, i.data AS question_data, s.title AS session_title"
            " FROM question_answers a JOIN items i ON i.id = a.question_id JOIN sessions s ON s.id = a.session_id"
            " WHERE i.author_ref = ? AND i.deleted = 0 AND a.state = ? ORDER BY a.answered_at DESC",
            (author_ref, PUBLIC_ANSWER_STATE),
        )
        # Only while the question is public: one hidden or merged since takes its answer along.
        return [
            (answer_of(r), r["question"], r["session_title"])
            for r in rows
            if item_is_public("question", False, json.loads(r["question_data"]))
        ]

    async def import_answer_rows(self, session_id: str, answers: list[dict[str, Any]]) -> None:
        await insert_answer_rows(self.db, session_id, answers)

    async def _touch_page(self, session_id: str) -> None:
        # The knowledge page's version includes its archive record's time (archive/service.py).
        await self.db.execute(
            "UPDATE archives SET updated_at = ? WHERE session_id = ?", (utcnow(), session_id)
        )

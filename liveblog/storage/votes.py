"""SQL for audience votes: poll votes, question upvotes, the private part of questions, and
in-place updates of a poll's or question's data that append one compact stream change.
Written once for both backends, against the query layer (sql.py)."""

from __future__ import annotations

import json
from typing import Any

from liveblog.errors import NotFound
from liveblog.models import Change, Item, utcnow
from liveblog.storage.base import OpsBase
from liveblog.storage.repo import dumps
from liveblog.storage.sql import Query

# A vote's hot path in one round trip: the poll, its session's state and the participant's choice.
_VOTE_CONTEXT = Query(
    lambda d: (
        f"SELECT i.kind, i.deleted, {d.json_text('i.data', 'state')}, {d.json_text('i.data', 'closes_at')},"
        " i.session_id, s.state,"
        " (SELECT choice FROM votes WHERE poll_id = i.id AND participant = ?)"
        " FROM items i JOIN sessions s ON s.id = i.session_id WHERE i.id = ?"
    )
)
_OPEN_POLLS_WITH_DEADLINE = Query(
    lambda d: (
        f"SELECT id, {d.json_text('data', 'closes_at')} FROM items WHERE kind = 'poll' AND deleted = 0"
        f" AND {d.json_text('data', 'state')} = 'open' AND {d.json_text('data', 'closes_at')} IS NOT NULL"
    )
)
_PINNED_QUESTIONS = Query(
    lambda d: (
        "SELECT id FROM items WHERE session_id = ? AND kind = 'question' AND deleted = 0"
        f" AND {d.json_is_true('data', 'pinned')}"
    )
)


class VoteOps(OpsBase):
    async def vote_context(self, poll_id: int, participant: str) -> tuple[Any, ...] | None:
        """In one round trip (a vote's hot path): (kind, deleted, state, closes_at, session_id,
        session state, this participant's current choice or None), or None for no such item."""
        row = await self.db.fetch_one(_VOTE_CONTEXT, (participant, poll_id))
        return tuple(row) if row is not None else None

    async def put_vote(self, poll_id: int, participant: str, choice: str, ip: str, flagged: str = "") -> None:
        """Insert or replace a participant's vote (one statement: the hot path of a vote). A vote
        once flagged stays flagged when changed (`flagged`: the burst limit its address was over)."""
        now = utcnow()
        await self.db.execute(
            "INSERT INTO votes (poll_id, participant, choice, ip, created_at, updated_at, flagged)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (poll_id, participant) DO UPDATE SET choice = excluded.choice, ip = excluded.ip,"
            " updated_at = excluded.updated_at,"
            " flagged = CASE WHEN excluded.flagged <> '' THEN excluded.flagged ELSE votes.flagged END",
            (poll_id, participant, choice, ip, now, now, flagged),
        )

    async def vote_groups(self, poll_id: int, *, discount_flagged: bool = False) -> list[tuple[str, int]]:
        """(choice JSON, how many participants chose exactly that) for a poll; without the
        flagged votes when they are discounted."""
        rows = await self.db.fetch_all(
            "SELECT choice, count(*) FROM votes WHERE poll_id = ?"
            + (" AND flagged = ''" if discount_flagged else "")
            + " GROUP BY choice",
            (poll_id,),
        )
        return [(r[0], int(r[1])) for r in rows]

    async def count_flagged_votes(self, poll_id: int) -> int:
        return int(
            await self.db.fetch_value(
                "SELECT count(*) FROM votes WHERE poll_id = ? AND flagged <> ''", (poll_id,)
            )
            or 0
        )

    async def count_votes(self, poll_id: int) -> int:
        return int(await self.db.fetch_value("SELECT count(*) FROM votes WHERE poll_id = ?", (poll_id,)) or 0)

    async def votes_of(self, session_id: str, participant: str) -> dict[int, Any]:
        """A participant's current choices in a session's polls: {poll_id: choice}."""
        rows = await self.db.fetch_all(
            "SELECT v.poll_id, v.choice FROM votes v JOIN items i ON i.id = v.poll_id"
            " WHERE i.session_id = ? AND v.participant = ?",
            (session_id, participant),
        )
        return {int(r[0]): json.loads(r[1]) for r in rows}

    async def insert_upvote(self, question_id: int, participant: str) -> bool:
        """True when this participant had not upvoted this question before."""
        inserted = await self.db.fetch_value(
            "INSERT INTO upvotes (question_id, participant, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (question_id, participant) DO NOTHING RETURNING 1",
            (question_id, participant, utcnow()),
        )
        return inserted is not None

    async def merge_upvotes(self, from_id: int, into_id: int) -> None:
        """Give a question the upvotes of its duplicate; a participant who upvoted both keeps one."""
        await self.db.execute(
            "INSERT INTO upvotes (question_id, participant, created_at)"
            " SELECT ?, participant, created_at FROM upvotes WHERE question_id = ?"
            " ON CONFLICT (question_id, participant) DO NOTHING",
            (into_id, from_id),
        )

    async def count_upvotes(self, question_id: int) -> int:
        return int(
            await self.db.fetch_value("SELECT count(*) FROM upvotes WHERE question_id = ?", (question_id,))
            or 0
        )

    async def upvotes_of(self, session_id: str, participant: str) -> list[int]:
        rows = await self.db.fetch_all(
            "SELECT u.question_id FROM upvotes u JOIN items i ON i.id = u.question_id"
            " WHERE i.session_id = ? AND u.participant = ? ORDER BY u.question_id",
            (session_id, participant),
        )
        return [int(r[0]) for r in rows]

    async def insert_question(
        self, *, item_id: int, session_id: str, participant: str, name: str, body: str, ip: str
    ) -> None:
        await self.db.execute(
            "INSERT INTO questions (item_id, session_id, participant, name, body, ip, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item_id, session_id, participant, name, body, ip, utcnow()),
        )

    async def get_question(self, item_id: int) -> dict[str, Any] | None:
        row = await self.db.fetch_one(
            "SELECT item_id, session_id, participant, name, body, created_at FROM questions WHERE item_id = ?",
            (item_id,),
        )
        return dict(row) if row is not None else None

    async def list_questions(self, session_id: str) -> dict[int, dict[str, Any]]:
        rows = await self.db.fetch_all(
            "SELECT item_id, participant, name, body, ip, created_at FROM questions WHERE session_id = ?",
            (session_id,),
        )
        return {int(r["item_id"]): dict(r) for r in rows}

    async def open_polls_with_deadline(self) -> list[tuple[int, str]]:
        """(poll id, closes_at) for every open poll that closes itself, across sessions."""
        return [(int(r[0]), str(r[1])) for r in await self.db.fetch_all(_OPEN_POLLS_WITH_DEADLINE)]

    async def pinned_questions(self, session_id: str) -> list[int]:
        return [int(r[0]) for r in await self.db.fetch_all(_PINNED_QUESTIONS, (session_id,))]

    async def set_item_data(
        self, item: Item, data: dict[str, Any], op: str, fields: dict[str, Any]
    ) -> Change:
        """Replace an item's data and append a compact `op` change ({item_id, version, **fields}).

        Used for tallies and upvote counts: state that changes often, where sending the whole item
        every time would be waste. The item's seq becomes this change's seq, like any item change.
        """
        seq = await self.next_seq(item.session_id)
        version = await self.db.fetch_value(
            "UPDATE items SET data = ?, version = version + 1, updated_at = ?, seq = ? WHERE id = ? RETURNING version",
            (dumps(data), utcnow(), seq, item.id),
        )
        if version is None:
            raise NotFound(f"no item {item.id}")
        return await self.store_change(
            item.session_id,
            seq,
            op,
            item.id,
            {"item_id": item.id, "kind": item.kind, "version": int(version), **fields},
        )

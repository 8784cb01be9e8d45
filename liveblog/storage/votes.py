"""SQL for audience votes: poll votes, question upvotes, the private part of questions, and
in-place updates of a poll's or question's data that append one compact stream change."""

from __future__ import annotations

import json
from typing import Any


from liveblog.errors import NotFound
from liveblog.models import Change, Item, utcnow
from liveblog.storage.repo import StreamOps, dumps

# -- votes -------------------------------------------------------------------------------------


# -- upvotes -----------------------------------------------------------------------------------


# -- questions (private part) ------------------------------------------------------------------


# -- items -------------------------------------------------------------------------------------



class VoteOps(StreamOps):
    async def vote_context(self, poll_id: int, participant: str) -> tuple[Any, ...] | None:
        """In one round trip (a vote's hot path): (kind, deleted, state, closes_at, session_id,
        session state, this participant's current choice or None), or None for no such item."""
        rows = await self.conn.execute_fetchall(
            "SELECT i.kind, i.deleted, json_extract(i.data, '$.state'), json_extract(i.data, '$.closes_at'),"
            " i.session_id, s.state,"
            " (SELECT choice FROM votes WHERE poll_id = i.id AND participant = ?)"
            " FROM items i JOIN sessions s ON s.id = i.session_id WHERE i.id = ?",
            (participant, poll_id),
        )
        for row in rows:
            return tuple(row)
        return None

    async def put_vote(self, poll_id: int, participant: str, choice: str, ip: str) -> None:
        """Insert or replace a participant's vote (one statement: the hot path of a vote)."""
        now = utcnow()
        await self.conn.execute(
            "INSERT INTO votes (poll_id, participant, choice, ip, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (poll_id, participant) DO UPDATE SET choice = excluded.choice, ip = excluded.ip,"
            " updated_at = excluded.updated_at",
            (poll_id, participant, choice, ip, now, now),
        )

    async def vote_groups(self, poll_id: int) -> list[tuple[str, int]]:
        """(choice JSON, how many participants chose exactly that) for a poll."""
        async with self.conn.execute(
            "SELECT choice, count(*) FROM votes WHERE poll_id = ? GROUP BY choice", (poll_id,)
        ) as cur:
            return [(r[0], int(r[1])) for r in await cur.fetchall()]

    async def count_votes(self, poll_id: int) -> int:
        async with self.conn.execute("SELECT count(*) FROM votes WHERE poll_id = ?", (poll_id,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def votes_of(self, session_id: str, participant: str) -> dict[int, Any]:
        """A participant's current choices in a session's polls: {poll_id: choice}."""
        async with self.conn.execute(
            "SELECT v.poll_id, v.choice FROM votes v JOIN items i ON i.id = v.poll_id"
            " WHERE i.session_id = ? AND v.participant = ?",
            (session_id, participant),
        ) as cur:
            return {int(r[0]): json.loads(r[1]) for r in await cur.fetchall()}

    async def insert_upvote(self, question_id: int, participant: str) -> bool:
        """True when this participant had not upvoted this question before."""
        async with self.conn.execute(
            "INSERT INTO upvotes (question_id, participant, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (question_id, participant) DO NOTHING RETURNING 1",
            (question_id, participant, utcnow()),
        ) as cur:
            return await cur.fetchone() is not None

    async def count_upvotes(self, question_id: int) -> int:
        async with self.conn.execute("SELECT count(*) FROM upvotes WHERE question_id = ?", (question_id,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def upvotes_of(self, session_id: str, participant: str) -> list[int]:
        async with self.conn.execute(
            "SELECT u.question_id FROM upvotes u JOIN items i ON i.id = u.question_id"
            " WHERE i.session_id = ? AND u.participant = ? ORDER BY u.question_id",
            (session_id, participant),
        ) as cur:
            return [int(r[0]) for r in await cur.fetchall()]

    async def insert_question(self, *, item_id: int, session_id: str, participant: str, name: str, body: str, ip: str
    ) -> None:
        await self.conn.execute(
            "INSERT INTO questions (item_id, session_id, participant, name, body, ip, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item_id, session_id, participant, name, body, ip, utcnow()),
        )

    async def get_question(self, item_id: int) -> dict[str, Any] | None:
        async with self.conn.execute(
            "SELECT item_id, session_id, participant, name, body, created_at FROM questions WHERE item_id = ?", (item_id,)
        ) as cur:
            row = await cur.fetchone()
        return dict(row) if row else None

    async def list_questions(self, session_id: str) -> dict[int, dict[str, Any]]:
        async with self.conn.execute(
            "SELECT item_id, participant, name, body, ip, created_at FROM questions WHERE session_id = ?", (session_id,)
        ) as cur:
            return {int(r["item_id"]): dict(r) for r in await cur.fetchall()}

    async def open_polls_with_deadline(self) -> list[tuple[int, str]]:
        """(poll id, closes_at) for every open poll that closes itself, across sessions."""
        async with self.conn.execute(
            "SELECT id, json_extract(data, '$.closes_at') FROM items WHERE kind = 'poll' AND deleted = 0"
            " AND json_extract(data, '$.state') = 'open' AND json_extract(data, '$.closes_at') IS NOT NULL"
        ) as cur:
            return [(int(r[0]), str(r[1])) for r in await cur.fetchall()]

    async def pinned_questions(self, session_id: str) -> list[int]:
        async with self.conn.execute(
            "SELECT id FROM items WHERE session_id = ? AND kind = 'question' AND deleted = 0"
            " AND json_extract(data, '$.pinned') = 1",
            (session_id,),
        ) as cur:
            return [int(r[0]) for r in await cur.fetchall()]

    async def set_item_data(self, item: Item, data: dict[str, Any], op: str, fields: dict[str, Any]) -> Change:
        """Replace an item's data and append a compact `op` change ({item_id, version, **fields}).

        Used for tallies and upvote counts: state that changes often, where sending the whole item
        every time would be waste. The item's seq becomes this change's seq, like any item change.
        """
        seq = await self.next_seq(item.session_id)
        async with self.conn.execute(
            "UPDATE items SET data = ?, version = version + 1, updated_at = ?, seq = ? WHERE id = ? RETURNING version",
            (dumps(data), utcnow(), seq, item.id),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no item {item.id}")
        version = int(row[0])
        return await self.store_change(
            item.session_id, seq, op, item.id, {"item_id": item.id, "kind": item.kind, "version": version, **fields}
        )


"""PostgreSQL SQL for audience votes, upvotes, questions and compact item-data changes (the
operations of storage/votes.py). JSON fields are read with `::jsonb` operators."""

from __future__ import annotations

import json
from typing import Any

from liveblog.errors import NotFound
from liveblog.models import Change, Item, utcnow
from liveblog.storage.postgres.repo import PgStreamOps
from liveblog.storage.repo import dumps


class PgVoteOps(PgStreamOps):
    async def vote_context(self, poll_id: int, participant: str) -> tuple[Any, ...] | None:
        row = await self.conn.fetchrow(
            "SELECT i.kind, i.deleted, i.data::jsonb ->> 'state', i.data::jsonb ->> 'closes_at',"
            " i.session_id, s.state,"
            " (SELECT choice FROM votes WHERE poll_id = i.id AND participant = $1)"
            " FROM items i JOIN sessions s ON s.id = i.session_id WHERE i.id = $2",
            participant, poll_id,
        )
        return tuple(row) if row is not None else None

    async def put_vote(self, poll_id: int, participant: str, choice: str, ip: str) -> None:
        now = utcnow()
        await self.conn.execute(
            "INSERT INTO votes (poll_id, participant, choice, ip, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)"
            " ON CONFLICT (poll_id, participant) DO UPDATE SET choice = excluded.choice, ip = excluded.ip,"
            " updated_at = excluded.updated_at",
            poll_id, participant, choice, ip, now,
        )

    async def vote_groups(self, poll_id: int) -> list[tuple[str, int]]:
        rows = await self.conn.fetch("SELECT choice, count(*) FROM votes WHERE poll_id = $1 GROUP BY choice", poll_id)
        return [(r[0], int(r[1])) for r in rows]

    async def count_votes(self, poll_id: int) -> int:
        return int(await self.conn.fetchval("SELECT count(*) FROM votes WHERE poll_id = $1", poll_id) or 0)

    async def votes_of(self, session_id: str, participant: str) -> dict[int, Any]:
        rows = await self.conn.fetch(
            "SELECT v.poll_id, v.choice FROM votes v JOIN items i ON i.id = v.poll_id"
            " WHERE i.session_id = $1 AND v.participant = $2",
            session_id, participant,
        )
        return {int(r[0]): json.loads(r[1]) for r in rows}

    async def insert_upvote(self, question_id: int, participant: str) -> bool:
        inserted = await self.conn.fetchval(
            "INSERT INTO upvotes (question_id, participant, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (question_id, participant) DO NOTHING RETURNING 1",
            question_id, participant, utcnow(),
        )
        return inserted is not None

    async def count_upvotes(self, question_id: int) -> int:
        return int(await self.conn.fetchval("SELECT count(*) FROM upvotes WHERE question_id = $1", question_id) or 0)

    async def upvotes_of(self, session_id: str, participant: str) -> list[int]:
        rows = await self.conn.fetch(
            "SELECT u.question_id FROM upvotes u JOIN items i ON i.id = u.question_id"
            " WHERE i.session_id = $1 AND u.participant = $2 ORDER BY u.question_id",
            session_id, participant,
        )
        return [int(r[0]) for r in rows]

    async def insert_question(self, *, item_id: int, session_id: str, participant: str, name: str, body: str, ip: str
    ) -> None:
        await self.conn.execute(
            "INSERT INTO questions (item_id, session_id, participant, name, body, ip, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            item_id, session_id, participant, name, body, ip, utcnow(),
        )

    async def get_question(self, item_id: int) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            "SELECT item_id, session_id, participant, name, body, created_at FROM questions WHERE item_id = $1", item_id
        )
        return dict(row) if row else None

    async def list_questions(self, session_id: str) -> dict[int, dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT item_id, participant, name, body, ip, created_at FROM questions WHERE session_id = $1", session_id
        )
        return {int(r["item_id"]): dict(r) for r in rows}

    async def open_polls_with_deadline(self) -> list[tuple[int, str]]:
        rows = await self.conn.fetch(
            "SELECT id, data::jsonb ->> 'closes_at' FROM items WHERE kind = 'poll' AND deleted = 0"
            " AND data::jsonb ->> 'state' = 'open' AND data::jsonb ->> 'closes_at' IS NOT NULL"
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    async def pinned_questions(self, session_id: str) -> list[int]:
        rows = await self.conn.fetch(
            "SELECT id FROM items WHERE session_id = $1 AND kind = 'question' AND deleted = 0"
            " AND data::jsonb -> 'pinned' = 'true'::jsonb",
            session_id,
        )
        return [int(r[0]) for r in rows]

    async def set_item_data(self, item: Item, data: dict[str, Any], op: str, fields: dict[str, Any]) -> Change:
        seq = await self.next_seq(item.session_id)
        version = await self.conn.fetchval(
            "UPDATE items SET data = $1, version = version + 1, updated_at = $2, seq = $3 WHERE id = $4 RETURNING version",
            dumps(data), utcnow(), seq, item.id,
        )
        if version is None:
            raise NotFound(f"no item {item.id}")
        return await self.store_change(
            item.session_id, seq, op, item.id, {"item_id": item.id, "kind": item.kind, "version": int(version), **fields}
        )

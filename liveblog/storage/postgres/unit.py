"""The PostgreSQL unit of work: every operation as written once (storage/unit.py), on one asyncpg
connection, plus PostgreSQL's own search (postgres/archive.py) and its benchmarked hot paths:
the one-statement item insert and the batch's acks, each with the figure it wins."""

from __future__ import annotations

from typing import Any

import asyncpg

from liveblog.errors import Conflict, NotFound
from liveblog.models import Change, Item, utcnow
from liveblog.storage.postgres.archive import PgArchiveOps
from liveblog.storage.postgres.driver import PgSql
from liveblog.storage.repo import dumps, item_of
from liveblog.storage.unit import Operations

Ack = tuple[str, str, str]  # a client op's response: (session_id, client_id, JSON)


class PgUnit(PgArchiveOps, Operations):
    """One read snapshot or one write op's share of a group-commit transaction."""

    def __init__(self, conn: Any, batch_acks: list[Ack] | None = None) -> None:
        super().__init__(PgSql(conn))
        self.conn = conn  # an asyncpg.Connection (or pool proxy) with a transaction open
        # complete_client_op's responses, written by the store for the whole batch in one
        # statement before COMMIT. In a read unit (no batch) they are written at once.
        # `batch_acks`: the ops' before this one in the batch.
        self.acks: list[Ack] = []
        self.batch_acks = batch_acks

    async def insert_item(
        self,
        *,
        session_id: str,
        kind: str,
        client_id: str,
        author: str,
        author_ref: str | None,
        body: str,
        html: str,
        key_point: bool,
        data: dict[str, Any],
        typed_at: str,
    ) -> tuple[Item, Change]:
        """Hot path, PostgreSQL's own: one round trip for what repo.py's insert_item does in four
        (each a send and a wake-up on both sides). bench.pgwrite, 3,000 notes, 3 runs each
        (2026-12-07, docs/performance.md): 3.0 statements per note instead of 6.0, app CPU
        680-950 µs per note instead of 1,130-1,340, PostgreSQL backend 460-670 instead of 810-960.
        Takes the session's next seq (its row stays locked until commit), inserts the item
        stamped with it and its `item.created` change; no session row: nothing is inserted.
        The change's wire JSON is what `dumps(payload)` gives: the item's wire fields are known
        here but for its id (first) and seq (last), which the statement splices in."""
        now = utcnow()
        sort_at = min(typed_at, now)  # a fast client clock must not push a note above later ones
        draft = Item(
            id=0,
            session_id=session_id,
            kind=kind,
            client_id=client_id,
            author=author,
            body=body,
            html=html,
            key_point=key_point,
            data=data,
            typed_at=typed_at,
            received_at=now,
            updated_at=now,
            deleted=False,
            version=1,
            seq=0,
            author_ref=author_ref,
        ).to_wire()
        middle = dumps({k: v for k, v in draft.items() if k not in ("id", "seq")})[1:-1]
        assert next(iter(draft)) == "id" and list(draft)[-1] == "seq", "Item.to_wire's order changed"
        try:
            row = await self.conn.fetchrow(
                "WITH s AS (UPDATE sessions SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq),"
                " i AS (INSERT INTO items (session_id, kind, client_id, author, author_ref, body, html, key_point,"
                " data, typed_at, received_at, sort_at, updated_at, deleted, version, seq)"
                " SELECT $1, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::integer, $9::text,"
                " $10::text, $11::text, $12::text, $11::text, 0, 1, s.last_seq FROM s RETURNING *),"
                " c AS (INSERT INTO changes (session_id, seq, op, item_id, payload, created_at)"
                ' SELECT $1, i.seq, \'item.created\', i.id, \'{"type":"change","seq":\' || i.seq'
                ' || \',"op":"item.created","item":{"id":\' || i.id || \',\' || $13::text || \',"seq":\''
                " || i.seq || '}}', $11::text FROM i)"
                " SELECT * FROM i",
                session_id,
                kind,
                client_id,
                author,
                author_ref,
                body,
                html,
                int(key_point),
                dumps(data),
                typed_at,
                now,
                sort_at,
                middle,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"client_id {client_id!r} is already used", code="client_id_conflict") from None
        if row is None:
            raise NotFound(f"no session {session_id!r}", code="unknown_session")
        item = item_of(row)
        payload = {"type": "change", "seq": item.seq, "op": "item.created", "item": item.to_wire()}
        change = Change(session_id=session_id, seq=item.seq, op="item.created", payload=payload)
        self.changes.append(change)
        return item, change

    async def complete_client_op(self, session_id: str, client_id: str, response: dict[str, Any]) -> None:
        """Hot path, PostgreSQL's own: in a write batch the store writes every op's ack in one
        statement before COMMIT (`write_acks`) instead of one round trip per note.
        bench.pgwrite, same runs: 3.0 statements per note instead of 4.0, app CPU 680-950 µs per
        note instead of 790-1,290."""
        ack = (session_id, client_id, dumps(response))
        if self.batch_acks is None:
            await write_acks(self.conn, [ack])
        else:
            self.acks.append(ack)

    async def claimed_client_op(self, session_id: str, client_id: str) -> tuple[str, dict[str, Any]]:
        # The batched acks' other half (complete_client_op, bench.pgwrite): claimed earlier in
        # this batch, perhaps, its ack may wait unwritten.
        if self.batch_acks:
            await write_acks(self.conn, self.batch_acks)
        return await super().claimed_client_op(session_id, client_id)


async def write_acks(conn: Any, acks: list[Ack]) -> None:
    """Store client ops' responses (session_id, client_id, JSON), all in one statement."""
    if acks:
        await conn.execute(
            "UPDATE client_ops AS c SET response = v.response"
            " FROM unnest($1::text[], $2::text[], $3::text[]) AS v(session_id, client_id, response)"
            " WHERE c.session_id = v.session_id AND c.client_id = v.client_id",
            [a[0] for a in acks],
            [a[1] for a in acks],
            [a[2] for a in acks],
        )

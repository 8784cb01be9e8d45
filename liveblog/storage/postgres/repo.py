"""PostgreSQL SQL for events, sessions, stream items, changes and idempotency keys: the same
operations as storage/repo.py, with `$n` parameters and asyncpg's exceptions."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from liveblog.errors import Conflict, NotFound
from liveblog.models import EVENT_FLAGS, Change, Event, Item, Session, event_feed_id, utcnow
from liveblog.storage.postgres.base import PgUnitBase
from liveblog.storage.redaction import item_change_fields
from liveblog.storage.repo import (
    _SESSION_JSON,
    _comparable,
    _event,
    _item,
    _session,
    _session_value,
    _session_wire,
    dumps,
    new_epoch,
    new_id,
)


def _sets(fields: dict[str, Any], start: int, convert: Any) -> tuple[str, list[Any]]:
    """`a = $2, b = $3` and their values, for updates of named columns (names come from code)."""
    parts = []
    values = []
    for n, (key, value) in enumerate(fields.items(), start=start):
        parts.append(f"{key} = ${n}")
        values.append(convert(key, value))
    return ", ".join(parts), values


class PgStreamOps(PgUnitBase):
    async def insert_event(self, fields: dict[str, Any], *, event_id: str | None = None) -> Event:
        now = utcnow()
        eid = event_id or new_id(fields["title"])
        await self.conn.execute(
            "INSERT INTO events (id, title, starts_on, ends_on, venue, description, hashtags, language, created_at,"
            " updated_at, show_viewers, public_reasons) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            eid,
            fields["title"],
            fields["starts_on"],
            fields["ends_on"],
            fields.get("venue", ""),
            fields.get("description", ""),
            dumps(list(fields.get("hashtags", []))),
            fields.get("language", "en"),
            now,
            now,
            int(fields.get("show_viewers", True)),
            int(fields.get("public_reasons", False)),
        )
        return Event(
            id=eid,
            created_at=now,
            updated_at=now,
            **{**fields, "hashtags": tuple(fields.get("hashtags", ()))},
        )

    async def update_event(self, event_id: str, fields: dict[str, Any]) -> Event:
        if fields:
            sets, values = _sets(
                fields,
                3,
                lambda k, v: dumps(list(v)) if k == "hashtags" else int(v) if k in EVENT_FLAGS else v,
            )
            status = await self.conn.execute(
                f"UPDATE events SET {sets}, updated_at = $2 WHERE id = $1", event_id, utcnow(), *values
            )
            if status.endswith(" 0"):
                raise NotFound(f"no event {event_id!r}")
        event = await self.get_event(event_id)
        if event is None:
            raise NotFound(f"no event {event_id!r}")
        return event

    async def get_event(self, event_id: str) -> Event | None:
        row = await self.conn.fetchrow("SELECT * FROM events WHERE id = $1", event_id)
        return _event(row) if row else None

    async def list_events(self) -> list[Event]:
        return [
            _event(r) for r in await self.conn.fetch("SELECT * FROM events ORDER BY starts_on DESC, title")
        ]

    async def insert_session(
        self, event_id: str, fields: dict[str, Any], *, session_id: str | None = None
    ) -> Session:
        now = utcnow()
        sid = session_id or new_id(fields["title"])
        try:
            row = await self.conn.fetchrow(
                "INSERT INTO sessions (id, event_id, title, starts_at, ends_at, room, speakers, hashtags, description,"
                " state, question_moderation, questions_audience, stream_epoch, last_seq, ended_at, created_at,"
                " updated_at, cancelled, tags, source_uid, recording_url, recording_offset) VALUES ($1, $2, $3, $4, $5,"
                " $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15, $16, $17, $18, $19, $20, $21) RETURNING *",
                sid,
                event_id,
                fields["title"],
                fields["starts_at"],
                fields["ends_at"],
                fields.get("room", ""),
                dumps(list(fields.get("speakers", []))),
                dumps(list(fields.get("hashtags", []))),
                fields.get("description", ""),
                fields.get("state", "scheduled"),
                int(bool(fields.get("question_moderation", False))),
                fields.get("questions_audience", "anyone"),
                new_epoch(),
                fields.get("ended_at"),
                now,
                now,
                int(bool(fields.get("cancelled", False))),
                dumps(list(fields.get("tags", []))),
                fields.get("source_uid"),
                fields.get("recording_url", ""),
                fields.get("recording_offset", 0),
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"no event {event_id!r}") from None
        return _session(row)

    async def update_session(self, session_id: str, fields: dict[str, Any]) -> Session:
        """Update a session; every visible change is also a `session.updated` change in its stream."""
        before = await self.get_session(session_id)
        if before is None:
            raise NotFound(f"no session {session_id!r}")
        # Only fields that really change: a no-op update writes nothing and appends no change.
        fields = {k: v for k, v in fields.items() if _session_value(before, k) != _comparable(v)}
        if fields:
            sets, values = _sets(
                fields,
                3,
                lambda k, v: dumps(list(v)) if k in _SESSION_JSON else int(v) if isinstance(v, bool) else v,
            )
            await self.conn.execute(
                f"UPDATE sessions SET {sets}, updated_at = $2 WHERE id = $1", session_id, utcnow(), *values
            )
        after = await self.get_session(session_id)
        assert after is not None
        if after.to_wire() != before.to_wire():
            await self.append_change(
                session_id, "session.updated", None, lambda seq: {"session": _session_wire(after, seq)}
            )
            after = await self.get_session(session_id)
            assert after is not None
        return after

    async def get_session(self, session_id: str) -> Session | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM sessions WHERE id = $1 AND kind = 'session'", session_id
        )
        return _session(row) if row else None

    async def get_stream_session(self, session_id: str) -> Session | None:
        row = await self.conn.fetchrow("SELECT * FROM sessions WHERE id = $1", session_id)
        return _session(row) if row else None

    async def get_event_feed(self, event_id: str) -> Session | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM sessions WHERE event_id = $1 AND kind = 'event_feed'", event_id
        )
        return _session(row) if row else None

    async def ensure_event_feed(self, event_id: str) -> Session:
        now = utcnow()
        await self.conn.execute(
            "INSERT INTO sessions (id, event_id, title, starts_at, ends_at, state, stream_epoch, last_seq,"
            " created_at, updated_at, kind) SELECT $1, id, '', starts_on, ends_on, 'live', $2, 0, $3, $3, 'event_feed'"
            " FROM events WHERE id = $4 ON CONFLICT DO NOTHING",
            event_feed_id(event_id),
            new_epoch(),
            now,
            event_id,
        )
        feed = await self.get_event_feed(event_id)
        if feed is None:
            raise NotFound(f"no event {event_id!r}")
        return feed

    async def list_sessions(self, event_id: str) -> list[Session]:
        rows = await self.conn.fetch(
            "SELECT * FROM sessions WHERE event_id = $1 AND kind = 'session' ORDER BY starts_at, room, title",
            event_id,
        )
        return [_session(r) for r in rows]

    async def list_live_sessions(self) -> list[Session]:
        return [
            _session(r)
            for r in await self.conn.fetch(
                "SELECT * FROM sessions WHERE state = 'live' AND kind = 'session' ORDER BY starts_at"
            )
        ]

    async def next_seq(self, session_id: str) -> int:
        """The session row stays locked until this transaction commits: a writer in another
        process waits for it, then takes the number after ours (contiguous, never predicted)."""
        seq = await self.conn.fetchval(
            "UPDATE sessions SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq", session_id
        )
        if seq is None:
            raise NotFound(f"no session {session_id!r}")
        return int(seq)

    async def append_change(self, session_id: str, op: str, item_id: int | None, build: Any) -> Change:
        seq = await self.next_seq(session_id)
        return await self.store_change(session_id, seq, op, item_id, build(seq))

    async def store_change(
        self, session_id: str, seq: int, op: str, item_id: int | None, fields: dict[str, Any]
    ) -> Change:
        payload = {"type": "change", "seq": seq, "op": op, **fields}
        await self.conn.execute(
            "INSERT INTO changes (session_id, seq, op, item_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            session_id,
            seq,
            op,
            item_id,
            dumps(payload),
            utcnow(),
        )
        change = Change(session_id=session_id, seq=seq, op=op, payload=payload)
        self.changes.append(change)
        return change

    async def changes_between(self, session_id: str, after: int, upto: int) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT payload FROM changes WHERE session_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
            session_id,
            after,
            upto,
        )
        return [r[0] for r in rows]

    async def stream_head(self, session_id: str) -> tuple[str, int] | None:
        row = await self.conn.fetchrow(
            "SELECT stream_epoch, last_seq FROM sessions WHERE id = $1", session_id
        )
        return (row[0], int(row[1])) if row else None

    async def get_item(self, item_id: int) -> Item | None:
        row = await self.conn.fetchrow("SELECT * FROM items WHERE id = $1", item_id)
        return _item(row) if row else None

    async def get_item_ref(self, item_id: int) -> tuple[Item, str | None] | None:
        row = await self.conn.fetchrow("SELECT * FROM items WHERE id = $1", item_id)
        return (_item(row), row["author_ref"]) if row else None

    async def find_item_by_client_id(self, session_id: str, client_id: str) -> Item | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM items WHERE session_id = $1 AND client_id = $2", session_id, client_id
        )
        return _item(row) if row else None

    async def list_items(
        self,
        session_id: str,
        *,
        include_deleted: bool = False,
        kind: str | None = None,
        newest: int | None = None,
    ) -> list[Item]:
        sql = "SELECT * FROM items WHERE session_id = $1"
        args: list[Any] = [session_id]
        if not include_deleted:
            sql += " AND deleted = 0"
        if kind:
            args.append(kind)
            sql += f" AND kind = ${len(args)}"
        if newest is not None:  # only the newest few (still returned oldest first)
            args.append(newest)
            sql += f" ORDER BY sort_at DESC, id DESC LIMIT ${len(args)}"
            return [_item(r) for r in reversed(await self.conn.fetch(sql, *args))]
        sql += " ORDER BY sort_at, id"
        return [_item(r) for r in await self.conn.fetch(sql, *args)]

    async def count_items(self, session_id: str) -> int:
        n = await self.conn.fetchval(
            "SELECT count(*) FROM items WHERE session_id = $1 AND deleted = 0", session_id
        )
        return int(n or 0)

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
        now = utcnow()
        sort_at = min(typed_at, now)  # a fast client clock must not push a note above later ones
        # One round trip for what SQLite does in four statements (the writer awaits each one):
        # take the session's next seq (its row stays locked until commit), insert the item
        # stamped with it and its `item.created` change. No session row: nothing is inserted.
        # The change's wire JSON is what `dumps(payload)` gives: the item's wire fields are known
        # here but for its id (first) and seq (last), which the statement splices in.
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
        item = _item(row)
        change = Change(
            session_id=session_id,
            seq=item.seq,
            op="item.created",
            payload={"type": "change", "seq": item.seq, "op": "item.created", "item": item.to_wire()},
        )
        self.changes.append(change)
        return item, change

    async def update_item(
        self, item_id: int, fields: dict[str, Any], *, op: str = "item.updated"
    ) -> tuple[Item, Change]:
        sets, values = _sets(
            fields, 3, lambda k, v: dumps(v) if k == "data" else int(v) if isinstance(v, bool) else v
        )
        session_id = await self.conn.fetchval(
            f"UPDATE items SET {sets + ', ' if sets else ''}version = version + 1, updated_at = $2 WHERE id = $1"
            " RETURNING session_id",
            item_id,
            utcnow(),
            *values,
        )
        if session_id is None:
            raise NotFound(f"no item {item_id}")
        return await self._record_item_change(session_id, item_id, op)

    async def _record_item_change(self, session_id: str, item_id: int, op: str) -> tuple[Item, Change]:
        seq = await self.next_seq(session_id)
        row = await self.conn.fetchrow("UPDATE items SET seq = $1 WHERE id = $2 RETURNING *", seq, item_id)
        if row is None:
            raise NotFound(f"no item {item_id}")
        item = _item(row)
        return item, await self.store_change(
            session_id, seq, op, item_id, await item_change_fields(self.db, item)
        )

    # -- idempotency keys ------------------------------------------------------------------------

    async def claim_client_op(
        self, session_id: str, client_id: str, fingerprint: str
    ) -> tuple[str, dict[str, Any]] | None:
        """One statement: a second claimer (in any process) waits on the first's uncommitted row,
        then does nothing and reads what the first stored."""
        claimed = await self.conn.fetchval(
            "INSERT INTO client_ops (session_id, client_id, fingerprint, response, created_at)"
            " VALUES ($1, $2, $3, 'null', $4) ON CONFLICT (session_id, client_id) DO NOTHING RETURNING 1",
            session_id,
            client_id,
            fingerprint,
            utcnow(),
        )
        if claimed is not None:
            return None
        if self.batch_acks:  # claimed earlier in this transaction, perhaps: its ack may wait unwritten
            await self.write_acks(self.batch_acks)
        row = await self.conn.fetchrow(
            "SELECT fingerprint, response FROM client_ops WHERE session_id = $1 AND client_id = $2",
            session_id,
            client_id,
        )
        assert row is not None
        return row[0], json.loads(row[1])

    async def complete_client_op(self, session_id: str, client_id: str, response: dict[str, Any]) -> None:
        """In a write batch the store writes every op's response in one statement before COMMIT
        (PgUnitBase.acks); a later claim in the same batch writes them first."""
        ack = (session_id, client_id, dumps(response))
        if self.batch_acks is None:
            await self.write_acks([ack])
        else:
            self.acks.append(ack)

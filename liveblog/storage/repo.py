"""Queries for events, sessions, stream items, changes and idempotency keys.

Write functions take a Tx (and run inside the writer's transaction); read functions take a
connection. Both deal in liveblog.models dataclasses.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from typing import Any

import aiosqlite

from liveblog.errors import Conflict, NotFound
from liveblog.models import EVENT_FLAGS, Change, Event, Item, Session, event_feed_id, utcnow
from liveblog.storage.base import UnitBase
from liveblog.storage.redaction import item_change_fields


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def new_id(title: str, *, prefix: str = "") -> str:
    """A readable, unguessable-enough id: a slug of the title plus a random suffix."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-") or "x"
    return f"{prefix}{slug}-{secrets.token_hex(3)}"


def new_epoch() -> str:
    return secrets.token_hex(8)


# -- events ------------------------------------------------------------------------------------


def _event(row: aiosqlite.Row) -> Event:
    return Event(
        id=row["id"],
        title=row["title"],
        starts_on=row["starts_on"],
        ends_on=row["ends_on"],
        venue=row["venue"],
        description=row["description"],
        hashtags=tuple(json.loads(row["hashtags"])),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        language=row["language"],
        show_viewers=bool(row["show_viewers"]),
        public_reasons=bool(row["public_reasons"]),
    )


# -- sessions ----------------------------------------------------------------------------------


def _session(row: aiosqlite.Row) -> Session:
    return Session(
        id=row["id"],
        event_id=row["event_id"],
        title=row["title"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        room=row["room"],
        speakers=tuple(json.loads(row["speakers"])),
        hashtags=tuple(json.loads(row["hashtags"])),
        description=row["description"],
        state=row["state"],
        question_moderation=bool(row["question_moderation"]),
        questions_audience=row["questions_audience"],
        stream_epoch=row["stream_epoch"],
        last_seq=row["last_seq"],
        ended_at=row["ended_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        kind=row["kind"],
        cancelled=bool(row["cancelled"]),
        tags=tuple(json.loads(row["tags"])),
        source_uid=row["source_uid"],
        exported_seq=row["exported_seq"],
        recording_url=row["recording_url"],
        recording_offset=row["recording_offset"],
    )


_SESSION_JSON = {"speakers", "hashtags", "tags"}


def _comparable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def _session_value(session: Session, key: str) -> Any:
    return _comparable(getattr(session, key, object()))


def _session_wire(session: Session, seq: int) -> dict[str, Any]:
    wire = session.to_wire()
    wire["seq"] = seq
    return wire


# -- the stream --------------------------------------------------------------------------------

# -- items -------------------------------------------------------------------------------------


def _item(row: aiosqlite.Row) -> Item:
    return Item(
        id=row["id"],
        session_id=row["session_id"],
        kind=row["kind"],
        client_id=row["client_id"],
        author=row["author"],
        body=row["body"],
        html=row["html"],
        key_point=bool(row["key_point"]),
        data=json.loads(row["data"]),
        typed_at=row["typed_at"],
        received_at=row["received_at"],
        updated_at=row["updated_at"],
        deleted=bool(row["deleted"]),
        version=row["version"],
        seq=row["seq"],
        author_ref=row["author_ref"],
    )


# -- idempotency keys --------------------------------------------------------------------------


class StreamOps(UnitBase):
    async def insert_event(self, fields: dict[str, Any], *, event_id: str | None = None) -> Event:
        now = utcnow()
        eid = event_id or new_id(fields["title"])
        await self.conn.execute(
            "INSERT INTO events (id, title, starts_on, ends_on, venue, description, hashtags, language, created_at,"
            " updated_at, show_viewers, public_reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
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
            ),
        )
        return Event(
            id=eid,
            created_at=now,
            updated_at=now,
            **{**fields, "hashtags": tuple(fields.get("hashtags", ()))},
        )

    async def update_event(self, event_id: str, fields: dict[str, Any]) -> Event:
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            values = [
                dumps(list(v)) if k == "hashtags" else int(v) if k in EVENT_FLAGS else v
                for k, v in fields.items()
            ]
            cur = await self.conn.execute(
                f"UPDATE events SET {sets}, updated_at = ? WHERE id = ?", (*values, utcnow(), event_id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"no event {event_id!r}")
        event = await self.get_event(event_id)
        if event is None:
            raise NotFound(f"no event {event_id!r}")
        return event

    async def get_event(self, event_id: str) -> Event | None:
        async with self.conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)) as cur:
            row = await cur.fetchone()
        return _event(row) if row else None

    async def list_events(self) -> list[Event]:
        async with self.conn.execute("SELECT * FROM events ORDER BY starts_on DESC, title") as cur:
            return [_event(r) for r in await cur.fetchall()]

    async def insert_session(
        self, event_id: str, fields: dict[str, Any], *, session_id: str | None = None
    ) -> Session:
        now = utcnow()
        sid = session_id or new_id(fields["title"])
        await self.conn.execute(
            "INSERT INTO sessions (id, event_id, title, starts_at, ends_at, room, speakers, hashtags, description,"
            " state, question_moderation, questions_audience, stream_epoch, last_seq, ended_at, created_at, updated_at,"
            " cancelled, tags, source_uid, recording_url, recording_offset)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
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
            ),
        )
        session = await self.get_session(sid)
        assert session is not None
        return session

    async def update_session(self, session_id: str, fields: dict[str, Any]) -> Session:
        """Update a session; every visible change is also a `session.updated` change in its stream."""
        before = await self.get_session(session_id)
        if before is None:
            raise NotFound(f"no session {session_id!r}")
        # Only fields that really change: an update that changes nothing writes nothing and
        # appends no change to the stream (every viewer would otherwise get a no-op frame).
        fields = {k: v for k, v in fields.items() if _session_value(before, k) != _comparable(v)}
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            values = [
                dumps(list(v)) if k in _SESSION_JSON else int(v) if isinstance(v, bool) else v
                for k, v in fields.items()
            ]
            await self.conn.execute(
                f"UPDATE sessions SET {sets}, updated_at = ? WHERE id = ?", (*values, utcnow(), session_id)
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
        """A programme session; an event's own feed is not one (get_stream_session finds both)."""
        async with self.conn.execute(
            "SELECT * FROM sessions WHERE id = ? AND kind = 'session'", (session_id,)
        ) as cur:
            row = await cur.fetchone()
        return _session(row) if row else None

    async def get_stream_session(self, session_id: str) -> Session | None:
        """Any stream's row: a programme session or an event's own feed (for read-only stream
        endpoints: the items snapshot, SSE, presence)."""
        async with self.conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)) as cur:
            row = await cur.fetchone()
        return _session(row) if row else None

    async def get_event_feed(self, event_id: str) -> Session | None:
        """The event's own feed stream, if it has been created (by its first post)."""
        async with self.conn.execute(
            "SELECT * FROM sessions WHERE event_id = ? AND kind = 'event_feed'", (event_id,)
        ) as cur:
            row = await cur.fetchone()
        return _session(row) if row else None

    async def ensure_event_feed(self, event_id: str) -> Session:
        """The event's own feed stream, created on first use (idempotent under concurrent writers)."""
        now = utcnow()
        await self.conn.execute(
            "INSERT INTO sessions (id, event_id, title, starts_at, ends_at, state, stream_epoch, last_seq,"
            " created_at, updated_at, kind) SELECT ?, id, '', starts_on, ends_on, 'live', ?, 0, ?, ?, 'event_feed'"
            " FROM events WHERE id = ? ON CONFLICT DO NOTHING",
            (event_feed_id(event_id), new_epoch(), now, now, event_id),
        )
        feed = await self.get_event_feed(event_id)
        if feed is None:
            raise NotFound(f"no event {event_id!r}")
        return feed

    async def list_sessions(self, event_id: str) -> list[Session]:
        async with self.conn.execute(
            "SELECT * FROM sessions WHERE event_id = ? AND kind = 'session' ORDER BY starts_at, room, title",
            (event_id,),
        ) as cur:
            return [_session(r) for r in await cur.fetchall()]

    async def list_live_sessions(self) -> list[Session]:
        async with self.conn.execute(
            "SELECT * FROM sessions WHERE state = 'live' AND kind = 'session' ORDER BY starts_at"
        ) as cur:
            return [_session(r) for r in await cur.fetchall()]

    async def next_seq(self, session_id: str) -> int:
        """Take the session's next sequence number from the database (a row lock on PostgreSQL,
        the write lock on SQLite): never predicted, so concurrent writers stay contiguous."""
        async with self.conn.execute(
            "UPDATE sessions SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq", (session_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return int(row[0])

    async def append_change(self, session_id: str, op: str, item_id: int | None, build: Any) -> Change:
        """Give the session's next sequence number to a change and store it.

        `build(seq)` returns the op-specific fields; the payload is what clients receive verbatim.
        """
        seq = await self.next_seq(session_id)
        return await self.store_change(session_id, seq, op, item_id, build(seq))

    async def store_change(
        self, session_id: str, seq: int, op: str, item_id: int | None, fields: dict[str, Any]
    ) -> Change:
        payload = {"type": "change", "seq": seq, "op": op, **fields}
        await self.conn.execute(
            "INSERT INTO changes (session_id, seq, op, item_id, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (session_id, seq, op, item_id, dumps(payload), utcnow()),
        )
        change = Change(session_id=session_id, seq=seq, op=op, payload=payload)
        self.changes.append(change)
        return change

    async def changes_between(self, session_id: str, after: int, upto: int) -> list[str]:
        """The stored wire text of changes after..upto (inclusive), in order."""
        async with self.conn.execute(
            "SELECT payload FROM changes WHERE session_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
            (session_id, after, upto),
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def stream_head(self, session_id: str) -> tuple[str, int] | None:
        async with self.conn.execute(
            "SELECT stream_epoch, last_seq FROM sessions WHERE id = ?", (session_id,)
        ) as cur:
            row = await cur.fetchone()
        return (row[0], int(row[1])) if row else None

    async def get_item(self, item_id: int) -> Item | None:
        async with self.conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)) as cur:
            row = await cur.fetchone()
        return _item(row) if row else None

    async def get_item_ref(self, item_id: int) -> tuple[Item, str | None] | None:
        """An item with the reference of who wrote it (an invite id), for ownership checks."""
        async with self.conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)) as cur:
            row = await cur.fetchone()
        return (_item(row), row["author_ref"]) if row else None

    async def find_item_by_client_id(self, session_id: str, client_id: str) -> Item | None:
        async with self.conn.execute(
            "SELECT * FROM items WHERE session_id = ? AND client_id = ?", (session_id, client_id)
        ) as cur:
            row = await cur.fetchone()
        return _item(row) if row else None

    async def list_items(
        self,
        session_id: str,
        *,
        include_deleted: bool = False,
        kind: str | None = None,
        newest: int | None = None,
    ) -> list[Item]:
        sql = "SELECT * FROM items WHERE session_id = ?"
        args: list[Any] = [session_id]
        if not include_deleted:
            sql += " AND deleted = 0"
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        if newest is not None:  # only the newest few (still returned oldest first)
            sql += " ORDER BY sort_at DESC, id DESC LIMIT ?"
            args.append(newest)
            async with self.conn.execute(sql, args) as cur:
                return [_item(r) for r in reversed(await cur.fetchall())]
        sql += " ORDER BY sort_at, id"
        async with self.conn.execute(sql, args) as cur:
            return [_item(r) for r in await cur.fetchall()]

    async def count_items(self, session_id: str) -> int:
        async with self.conn.execute(
            "SELECT count(*) FROM items WHERE session_id = ? AND deleted = 0", (session_id,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

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
        try:
            cur = await self.conn.execute(
                "INSERT INTO items (session_id, kind, client_id, author, author_ref, body, html, key_point, data,"
                " typed_at, received_at, sort_at, updated_at, deleted, version, seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1, 0)",
                (
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
                    now,
                ),
            )
        except sqlite3.IntegrityError as exc:  # the interface speaks domain errors, not a driver's
            if "FOREIGN KEY" in str(exc):
                raise NotFound(f"no session {session_id!r}", code="unknown_session") from None
            raise Conflict(f"client_id {client_id!r} is already used", code="client_id_conflict") from None
        item_id = cur.lastrowid
        assert item_id is not None
        return await self._record_item_change(session_id, item_id, "item.created")

    async def update_item(
        self, item_id: int, fields: dict[str, Any], *, op: str = "item.updated"
    ) -> tuple[Item, Change]:
        sets = []
        values: list[Any] = []
        for key, value in fields.items():
            sets.append(f"{key} = ?")
            values.append(dumps(value) if key == "data" else int(value) if isinstance(value, bool) else value)
        await self.conn.execute(
            f"UPDATE items SET {', '.join(sets)}, version = version + 1, updated_at = ? WHERE id = ?",
            (*values, utcnow(), item_id),
        )
        async with self.conn.execute("SELECT session_id FROM items WHERE id = ?", (item_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no item {item_id}")
        return await self._record_item_change(row[0], item_id, op)

    async def _record_item_change(self, session_id: str, item_id: int, op: str) -> tuple[Item, Change]:
        # The item's seq is the seq of its latest change: take the number, then stamp the item.
        seq = await self.next_seq(session_id)
        async with self.conn.execute(
            "UPDATE items SET seq = ? WHERE id = ? RETURNING *", (seq, item_id)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no item {item_id}")
        item = _item(row)
        return item, await self.store_change(
            session_id, seq, op, item_id, await item_change_fields(self.db, item)
        )

    # -- idempotency keys --------------------------------------------------------------------------

    async def claim_client_op(
        self, session_id: str, client_id: str, fingerprint: str
    ) -> tuple[str, dict[str, Any]] | None:
        """Claim a client id for a message, in one statement (no check-then-act).

        Returns None when this call claimed it (do the work, then `complete_client_op`), or the
        (fingerprint, response) stored by the message that claimed it first. Under concurrent
        writers the second INSERT waits for the first transaction and then does nothing."""
        async with self.conn.execute(
            "INSERT INTO client_ops (session_id, client_id, fingerprint, response, created_at) VALUES (?, ?, ?, 'null', ?)"
            " ON CONFLICT (session_id, client_id) DO NOTHING RETURNING 1",
            (session_id, client_id, fingerprint, utcnow()),
        ) as cur:
            claimed = await cur.fetchone()
        if claimed is not None:
            return None
        async with self.conn.execute(
            "SELECT fingerprint, response FROM client_ops WHERE session_id = ? AND client_id = ?",
            (session_id, client_id),
        ) as cur:
            row = await cur.fetchone()
        assert row is not None
        return row[0], json.loads(row[1])

    async def complete_client_op(self, session_id: str, client_id: str, response: dict[str, Any]) -> None:
        await self.conn.execute(
            "UPDATE client_ops SET response = ? WHERE session_id = ? AND client_id = ?",
            (dumps(response), session_id, client_id),
        )

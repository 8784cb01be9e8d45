"""Events, sessions, stream items, changes and idempotency keys: the stream's operations,
written once for both backends against the query layer (sql.py), with their row mappers.

PostgreSQL overrides only its benchmarked hot paths (postgres/unit.py): the one-statement item
insert and the batch's acks.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from liveblog.errors import Conflict, NotFound
from liveblog.models import EVENT_FLAGS, Change, Event, Item, Session, event_feed_id, utcnow
from liveblog.storage.base import OpsBase
from liveblog.storage.redaction import item_change_fields
from liveblog.storage.sql import ForeignKeyViolation, Row, UniqueViolation


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def new_id(title: str, *, prefix: str = "") -> str:
    """A readable, unguessable-enough id: a slug of the title plus a random suffix."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-") or "x"
    return f"{prefix}{slug}-{secrets.token_hex(3)}"


def new_epoch() -> str:
    return secrets.token_hex(8)


# -- row mappers -------------------------------------------------------------------------------


def event_of(row: Row) -> Event:
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


def session_of(row: Row) -> Session:
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


def item_of(row: Row) -> Item:
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


# -- column values -----------------------------------------------------------------------------

_SESSION_JSON = {"speakers", "hashtags", "tags"}


def _comparable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def _sets(fields: dict[str, Any], json_keys: set[str] | frozenset[str]) -> tuple[str, list[Any]]:
    """`a = ?, b = ?, ` and their values, for an update of named columns (names come from code):
    JSON columns as text, flags as 0/1."""
    values = [
        dumps(v if isinstance(v, dict) else list(v))
        if k in json_keys
        else int(v)
        if isinstance(v, bool)
        else v
        for k, v in fields.items()
    ]
    return "".join(f"{k} = ?, " for k in fields), values


_EVENT_JSON = frozenset({"hashtags"})
_ITEM_JSON = frozenset({"data"})


class StreamOps(OpsBase):
    # -- events --------------------------------------------------------------------------------

    async def insert_event(self, fields: dict[str, Any], *, event_id: str | None = None) -> Event:
        now = utcnow()
        eid = event_id or new_id(fields["title"])
        await self.db.execute(
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
            flags = {k: bool(v) if k in EVENT_FLAGS else v for k, v in fields.items()}
            sets, values = _sets(flags, _EVENT_JSON)
            if not await self.db.execute(
                f"UPDATE events SET {sets}updated_at = ? WHERE id = ?", (*values, utcnow(), event_id)
            ):
                raise NotFound(f"no event {event_id!r}")
        event = await self.get_event(event_id)
        if event is None:
            raise NotFound(f"no event {event_id!r}")
        return event

    async def get_event(self, event_id: str) -> Event | None:
        row = await self.db.fetch_one("SELECT * FROM events WHERE id = ?", (event_id,))
        return event_of(row) if row else None

    async def list_events(self) -> list[Event]:
        return [
            event_of(r)
            for r in await self.db.fetch_all("SELECT * FROM events ORDER BY starts_on DESC, title")
        ]

    # -- sessions ------------------------------------------------------------------------------

    async def insert_session(
        self, event_id: str, fields: dict[str, Any], *, session_id: str | None = None
    ) -> Session:
        now = utcnow()
        try:
            row = await self.db.fetch_one(
                "INSERT INTO sessions (id, event_id, title, starts_at, ends_at, room, speakers, hashtags, description,"
                " state, question_moderation, questions_audience, stream_epoch, last_seq, ended_at, created_at,"
                " updated_at, cancelled, tags, source_uid, recording_url, recording_offset)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    session_id or new_id(fields["title"]),
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
        except ForeignKeyViolation:
            raise NotFound(f"no event {event_id!r}") from None
        assert row is not None
        return session_of(row)

    async def update_session(self, session_id: str, fields: dict[str, Any]) -> Session:
        """Update a session; every visible change is also a `session.updated` change in its stream."""
        before = await self.get_session(session_id)
        if before is None:
            raise NotFound(f"no session {session_id!r}")
        # Only fields that really change: an update that changes nothing writes nothing and
        # appends no change to the stream (every viewer would otherwise get a no-op frame).
        fields = {
            k: v for k, v in fields.items() if _comparable(getattr(before, k, object())) != _comparable(v)
        }
        if fields:
            sets, values = _sets(fields, _SESSION_JSON)
            await self.db.execute(
                f"UPDATE sessions SET {sets}updated_at = ? WHERE id = ?", (*values, utcnow(), session_id)
            )
        after = await self.get_session(session_id)
        assert after is not None
        if after.to_wire() != before.to_wire():
            await self.append_change(
                session_id, "session.updated", None, lambda seq: {"session": {**after.to_wire(), "seq": seq}}
            )
            after = await self.get_session(session_id)
            assert after is not None
        return after

    async def get_session(self, session_id: str) -> Session | None:
        """A programme session; an event's own feed is not one (get_stream_session finds both)."""
        row = await self.db.fetch_one(
            "SELECT * FROM sessions WHERE id = ? AND kind = 'session'", (session_id,)
        )
        return session_of(row) if row else None

    async def get_stream_session(self, session_id: str) -> Session | None:
        """Any stream's row: a programme session or an event's own feed (for read-only stream
        endpoints: the items snapshot, SSE, presence)."""
        row = await self.db.fetch_one("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return session_of(row) if row else None

    async def get_event_feed(self, event_id: str) -> Session | None:
        """The event's own feed stream, if it has been created (by its first post)."""
        row = await self.db.fetch_one(
            "SELECT * FROM sessions WHERE event_id = ? AND kind = 'event_feed'", (event_id,)
        )
        return session_of(row) if row else None

    async def ensure_event_feed(self, event_id: str) -> Session:
        """The event's own feed stream, created on first use (idempotent under concurrent writers)."""
        now = utcnow()
        await self.db.execute(
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
        rows = await self.db.fetch_all(
            "SELECT * FROM sessions WHERE event_id = ? AND kind = 'session' ORDER BY starts_at, room, title",
            (event_id,),
        )
        return [session_of(r) for r in rows]

    async def list_live_sessions(self) -> list[Session]:
        rows = await self.db.fetch_all(
            "SELECT * FROM sessions WHERE state = 'live' AND kind = 'session' ORDER BY starts_at"
        )
        return [session_of(r) for r in rows]

    # -- the stream: sequence numbers and changes ----------------------------------------------

    async def next_seq(self, session_id: str) -> int:
        """Take the session's next sequence number from the database: never predicted, so
        concurrent writers stay contiguous. On PostgreSQL the session row stays locked until this
        transaction commits (a writer in another process waits, then takes the number after
        ours); on SQLite the writer holds the database's write lock."""
        seq = await self.db.fetch_value(
            "UPDATE sessions SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq", (session_id,)
        )
        if seq is None:
            raise NotFound(f"no session {session_id!r}")
        return int(seq)

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
        await self.db.execute(
            "INSERT INTO changes (session_id, seq, op, item_id, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (session_id, seq, op, item_id, dumps(payload), utcnow()),
        )
        change = Change(session_id=session_id, seq=seq, op=op, payload=payload)
        self.changes.append(change)
        return change

    async def changes_between(self, session_id: str, after: int, upto: int) -> list[str]:
        """The stored wire text of changes after..upto (inclusive), in order."""
        rows = await self.db.fetch_all(
            "SELECT payload FROM changes WHERE session_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
            (session_id, after, upto),
        )
        return [r[0] for r in rows]

    async def stream_head(self, session_id: str) -> tuple[str, int] | None:
        row = await self.db.fetch_one(
            "SELECT stream_epoch, last_seq FROM sessions WHERE id = ?", (session_id,)
        )
        return (row[0], int(row[1])) if row else None

    # -- items ---------------------------------------------------------------------------------

    async def get_item(self, item_id: int) -> Item | None:
        row = await self.db.fetch_one("SELECT * FROM items WHERE id = ?", (item_id,))
        return item_of(row) if row else None

    async def get_item_ref(self, item_id: int) -> tuple[Item, str | None] | None:
        """An item with the reference of who wrote it (an invite id), for ownership checks."""
        row = await self.db.fetch_one("SELECT * FROM items WHERE id = ?", (item_id,))
        return (item_of(row), row["author_ref"]) if row else None

    async def find_item_by_client_id(self, session_id: str, client_id: str) -> Item | None:
        row = await self.db.fetch_one(
            "SELECT * FROM items WHERE session_id = ? AND client_id = ?", (session_id, client_id)
        )
        return item_of(row) if row else None

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
            args.append(newest)
            rows = await self.db.fetch_all(sql + " ORDER BY sort_at DESC, id DESC LIMIT ?", args)
            return [item_of(r) for r in reversed(rows)]
        return [item_of(r) for r in await self.db.fetch_all(sql + " ORDER BY sort_at, id", args)]

    async def count_items(self, session_id: str) -> int:
        n = await self.db.fetch_value(
            "SELECT count(*) FROM items WHERE session_id = ? AND deleted = 0", (session_id,)
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
        # The session's next seq first, then the item stamped with it as it is inserted: one
        # statement fewer than inserting and then stamping (as _record_item_change does for edits).
        try:
            seq = await self.next_seq(session_id)
        except NotFound:
            raise NotFound(f"no session {session_id!r}", code="unknown_session") from None
        try:
            row = await self.db.fetch_one(
                "INSERT INTO items (session_id, kind, client_id, author, author_ref, body, html, key_point, data,"
                " typed_at, received_at, sort_at, updated_at, deleted, version, seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1, ?) RETURNING *",
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
                    seq,
                ),
            )
        except UniqueViolation:  # the interface speaks domain errors, not a driver's
            raise Conflict(f"client_id {client_id!r} is already used", code="client_id_conflict") from None
        assert row is not None
        item = item_of(row)
        return item, await self.store_change(
            session_id, seq, "item.created", item.id, await item_change_fields(self.db, item)
        )

    async def update_item(
        self, item_id: int, fields: dict[str, Any], *, op: str = "item.updated"
    ) -> tuple[Item, Change]:
        sets, values = _sets(fields, _ITEM_JSON)
        session_id = await self.db.fetch_value(
            f"UPDATE items SET {sets}version = version + 1, updated_at = ? WHERE id = ? RETURNING session_id",
            (*values, utcnow(), item_id),
        )
        if session_id is None:
            raise NotFound(f"no item {item_id}")
        return await self._record_item_change(session_id, item_id, op)

    async def _record_item_change(self, session_id: str, item_id: int, op: str) -> tuple[Item, Change]:
        # The item's seq is the seq of its latest change: take the number, then stamp the item.
        seq = await self.next_seq(session_id)
        row = await self.db.fetch_one("UPDATE items SET seq = ? WHERE id = ? RETURNING *", (seq, item_id))
        if row is None:
            raise NotFound(f"no item {item_id}")
        item = item_of(row)
        return item, await self.store_change(
            session_id, seq, op, item_id, await item_change_fields(self.db, item)
        )

    # -- idempotency keys ----------------------------------------------------------------------

    async def claim_client_op(
        self, session_id: str, client_id: str, fingerprint: str
    ) -> tuple[str, dict[str, Any]] | None:
        """Claim a client id for a message, in one statement (no check-then-act).

        Returns None when this call claimed it (do the work, then `complete_client_op`), or the
        (fingerprint, response) stored by the message that claimed it first. Under concurrent
        writers (PostgreSQL's processes) the second INSERT waits for the first transaction and
        then does nothing."""
        claimed = await self.db.fetch_value(
            "INSERT INTO client_ops (session_id, client_id, fingerprint, response, created_at)"
            " VALUES (?, ?, ?, 'null', ?) ON CONFLICT (session_id, client_id) DO NOTHING RETURNING 1",
            (session_id, client_id, fingerprint, utcnow()),
        )
        if claimed is not None:
            return None
        return await self.claimed_client_op(session_id, client_id)

    async def claimed_client_op(self, session_id: str, client_id: str) -> tuple[str, dict[str, Any]]:
        """What the first claim of a client id stored: (fingerprint, response)."""
        row = await self.db.fetch_one(
            "SELECT fingerprint, response FROM client_ops WHERE session_id = ? AND client_id = ?",
            (session_id, client_id),
        )
        assert row is not None
        return row[0], json.loads(row[1])

    async def complete_client_op(self, session_id: str, client_id: str, response: dict[str, Any]) -> None:
        await self.db.execute(
            "UPDATE client_ops SET response = ? WHERE session_id = ? AND client_id = ?",
            (dumps(response), session_id, client_id),
        )

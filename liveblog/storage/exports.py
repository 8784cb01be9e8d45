"""SQL for exports and imports: a session's public record as plain rows (JSON columns decoded)
and the inverse, restoring those rows with their ids into another database.

What is never exported: votes and upvotes (who voted), the private part of questions (who
asked), invites, logins, accounts and addresses, and the text of anything moderated out.
Written once for both backends, against the query layer (sql.py)."""

from __future__ import annotations

import json
from typing import Any

from liveblog.errors import BadRequest, Conflict
from liveblog.models import EVENT_FLAGS, SESSION_KINDS, redaction
from liveblog.storage.answers import insert_answer_rows, session_answer_rows
from liveblog.storage.base import OpsBase
from liveblog.storage.federation import unshown_avatars
from liveblog.storage.redaction import item_is_public, redact_imported
from liveblog.storage.repo import dumps

# A password hash no password matches (argon2 refuses it as malformed): imported comment authors
# exist as names, and the people behind them get in with an organiser's reset link.
NO_PASSWORD = "!imported"

_EVENT_COLS = (
    "id",
    "title",
    "starts_on",
    "ends_on",
    "venue",
    "description",
    "hashtags",
    "created_at",
    "updated_at",
    "language",
    "show_viewers",
    "public_reasons",
)
_SESSION_COLS = (
    "id",
    "event_id",
    "title",
    "starts_at",
    "ends_at",
    "room",
    "speakers",
    "hashtags",
    "description",
    "recording_url",
    "recording_offset",
    "state",
    "question_moderation",
    "stream_epoch",
    "last_seq",
    "ended_at",
    "created_at",
    "updated_at",
)
_ITEM_COLS = (
    "id",
    "session_id",
    "kind",
    "client_id",
    "author",
    "body",
    "html",
    "key_point",
    "data",
    "typed_at",
    "received_at",
    "sort_at",
    "updated_at",
    "deleted",
    "version",
    "seq",
)
_COMMENT_COLS = (
    "id",
    "parent_id",
    "author",
    "body",
    "html",
    "state",
    "deleted",
    "created_at",
    "updated_at",
    "edited",
)


def _row(
    row: Any, cols: tuple[str, ...], json_cols: tuple[str, ...] = (), bool_cols: tuple[str, ...] = ()
) -> dict[str, Any]:
    out = {}
    for c in cols:
        v = row[c]
        if c in json_cols:
            v = json.loads(v)
        elif c in bool_cols:
            v = bool(v)
        out[c] = v
    return out


class ExportOps(OpsBase):
    async def export_event_row(self, event_id: str) -> dict[str, Any] | None:
        rows = await self.db.fetch_all("SELECT * FROM events WHERE id = ?", (event_id,))
        return _row(rows[0], _EVENT_COLS, ("hashtags",), EVENT_FLAGS) if rows else None

    async def public_changes(self, session_id: str) -> list[dict[str, Any]]:
        """The session's stream as stored, with every change of an item that is no longer public
        (deleted, hidden, a draft poll) reduced to `item.redacted`: its text never leaves."""
        hidden = {
            r[0]
            for r in await self.db.fetch_all(
                "SELECT id, kind, deleted, data FROM items WHERE session_id = ?", (session_id,)
            )
            if not item_is_public(r[1], bool(r[2]), json.loads(r[3]))
        }
        out = []
        for r in await self.db.fetch_all(
            "SELECT seq, op, item_id, payload, created_at FROM changes WHERE session_id = ? ORDER BY seq",
            (session_id,),
        ):
            payload = json.loads(r[3])
            if r[2] is not None and r[2] in hidden:
                # Removed items' changes are redacted where they are stored (storage/redaction.py);
                # this also covers the last change of an item that is not public (a draft poll).
                payload = redaction(r[0], item_id=r[2])
            out.append(
                {"seq": r[0], "op": payload["op"], "item_id": r[2], "payload": payload, "created_at": r[4]}
            )
        return out

    async def export_session_rows(self, session_id: str) -> dict[str, Any] | None:
        """Everything public about a session, as rows (see docs/archive.md, the JSON export)."""
        rows = await self.db.fetch_all("SELECT * FROM sessions WHERE id = ?", (session_id,))
        if not rows:
            return None
        session = _row(rows[0], _SESSION_COLS, ("speakers", "hashtags"), ("question_moderation",))
        if rows[0]["kind"] != "session":
            session["kind"] = rows[0]["kind"]  # the event's own feed; absent means a programme session
        items = []
        for r in await self.db.fetch_all(
            "SELECT * FROM items WHERE session_id = ? ORDER BY id", (session_id,)
        ):
            item = _row(r, _ITEM_COLS, ("data",), ("key_point", "deleted"))
            if not item_is_public(item["kind"], item["deleted"], item["data"]):
                # Its place is kept (ids and seqs stay true), its content is not.
                item.update(
                    body="", html="", author="", data={"state": item["data"].get("state")}, deleted=True
                )
            items.append(item)
        public_ids = {i["id"] for i in items if not i["deleted"]}
        archive_rows = await self.db.fetch_all("SELECT * FROM archives WHERE session_id = ?", (session_id,))
        archive = (
            _row(
                archive_rows[0],
                ("summary", "summary_html", "summary_by", "archived_at", "updated_at", "tags_synced_at"),
            )
            if archive_rows
            else None
        )
        history = [
            _row(r, ("item_id", "version", "body", "html", "written_at", "replaced_at"))
            for r in await self.db.fetch_all(
                "SELECT h.* FROM item_history h JOIN items i ON i.id = h.item_id WHERE i.session_id = ?"
                " ORDER BY h.item_id, h.version",
                (session_id,),
            )
            if r["item_id"] in public_ids
        ]
        comments = [
            _row(r, _COMMENT_COLS, (), ("deleted", "edited"))
            for r in await self.db.fetch_all(
                "SELECT * FROM comments WHERE session_id = ? ORDER BY id", (session_id,)
            )
        ]
        for c in comments:
            if c["state"] != "visible" or c["deleted"]:
                c.update(body="", html="", deleted=True, state="visible")
        locked = await self.db.fetch_all(
            "SELECT locked FROM comment_threads WHERE session_id = ?", (session_id,)
        )
        # A replier's avatar is among the session's media while a comment of theirs is shown.
        unshown = await unshown_avatars(self.db, session_id)
        media = [
            {"id": r[0], "content_type": r[1], "sha256": r[2], "created_at": r[3], "bytes": bytes(r[4])}
            for r in await self.db.fetch_all(
                "SELECT id, content_type, sha256, created_at, bytes FROM media WHERE session_id = ? ORDER BY id",
                (session_id,),
            )
            if r[0] not in unshown
        ]
        return {
            "session": session,
            "archive": archive,
            "tags": [
                [r[0], r[1]]
                for r in await self.db.fetch_all(
                    "SELECT tag, source FROM session_tags WHERE session_id = ? ORDER BY tag, source",
                    (session_id,),
                )
            ],
            "items": items,
            "item_history": history,
            "changes": await self.public_changes(session_id),
            "comments": comments,
            "thread_locked": bool(locked and locked[0][0]),
            "media": media,
            # Answers written after the talk; a hidden one's text never leaves (to_export), nor
            # the answer to a question no longer public.
            "answers": [
                a.to_export(a.question_id in public_ids)
                for a in (await session_answer_rows(self.db, session_id, False)).values()
            ],
        }

    async def import_event_row(self, event: dict[str, Any], premoderate: bool) -> None:
        exists = await self.db.fetch_all("SELECT 1 FROM events WHERE id = ?", (event["id"],))
        if exists:
            raise Conflict(
                f"an event {event['id']!r} exists already: import into a fresh instance",
                code="already_exists",
            )
        # Exports made before events had a language were English (as search stemmed them).
        # And before an event could keep its watching count from viewers, it showed it.
        event = {"language": "en", "show_viewers": True, "public_reasons": False, **event}
        values = [
            dumps(event[c]) if c == "hashtags" else int(event[c]) if c in EVENT_FLAGS else event[c]
            for c in _EVENT_COLS
        ]
        await self.db.execute(
            f"INSERT INTO events ({', '.join(_EVENT_COLS)}) VALUES ({', '.join('?' for _ in _EVENT_COLS)})",
            values,
        )
        if premoderate:
            await self.db.execute(
                "INSERT INTO event_comment_settings (event_id, premoderate) VALUES (?, 1)", (event["id"],)
            )

    async def continue_ids(self) -> None:
        """After an import wrote rows with their own ids: ids assigned from now on come after them."""
        statement = self.db.dialect.ids_after_explicit()
        if statement is not None:
            await self.db.execute(statement)

    async def import_session_rows(self, bundle: dict[str, Any]) -> None:
        """Restore one exported session with its ids (a fresh instance: an id in use is a 409)."""
        s = {
            "recording_url": "",
            "recording_offset": 0,
            **bundle["session"],
        }  # exports from before recordings
        exists = await self.db.fetch_all("SELECT 1 FROM sessions WHERE id = ?", (s["id"],))
        if exists:
            raise Conflict(
                f"a session {s['id']!r} exists already: import into a fresh instance", code="already_exists"
            )
        values = [
            dumps(s[c])
            if c in ("speakers", "hashtags")
            else int(s[c])
            if c == "question_moderation"
            else s[c]
            for c in _SESSION_COLS
        ]
        kind = s.get("kind", "session")
        if kind not in SESSION_KINDS:
            raise BadRequest(f"unknown session kind {kind!r}", code="invalid_export")
        await self.db.execute(
            f"INSERT INTO sessions ({', '.join(_SESSION_COLS)}, kind)"
            f" VALUES ({', '.join('?' for _ in _SESSION_COLS)}, ?)",
            [*values, kind],
        )
        for m in bundle["media"]:
            await self.db.execute(
                "INSERT INTO media (id, session_id, content_type, bytes, size, sha256, uploaded_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    m["id"],
                    s["id"],
                    m["content_type"],
                    m["bytes"],
                    len(m["bytes"]),
                    m["sha256"],
                    m["created_at"],
                ),
            )
        for item in bundle["items"]:
            values = [
                dumps(item[c]) if c == "data" else int(item[c]) if c in ("key_point", "deleted") else item[c]
                for c in _ITEM_COLS
            ]
            try:
                await self.db.execute(
                    f"INSERT INTO items ({', '.join(_ITEM_COLS)}) VALUES ({', '.join('?' for _ in _ITEM_COLS)})",
                    values,
                )
            except Exception as exc:  # an item id in use: not a fresh instance
                raise Conflict(
                    f"item {item['id']} exists already: import into a fresh instance", code="already_exists"
                ) from exc
        for h in bundle["item_history"]:
            await self.db.execute(
                "INSERT INTO item_history (item_id, version, body, html, written_at, replaced_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (h["item_id"], h["version"], h["body"], h["html"], h["written_at"], h["replaced_at"]),
            )
        for ch in bundle["changes"]:
            await self.db.execute(
                "INSERT INTO changes (session_id, seq, op, item_id, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (s["id"], ch["seq"], ch["op"], ch["item_id"], dumps(ch["payload"]), ch["created_at"]),
            )
        a = bundle["archive"]
        if a is not None:
            await self.db.execute(
                "INSERT INTO archives (session_id, summary, summary_html, summary_by, archived_at, updated_at,"
                " tags_synced_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    s["id"],
                    a["summary"],
                    a["summary_html"],
                    a["summary_by"],
                    a["archived_at"],
                    a["updated_at"],
                    a["tags_synced_at"],
                ),
            )
        for tag, source in bundle["tags"]:
            await self.db.execute(
                "INSERT INTO session_tags (session_id, tag, source) VALUES (?, ?, ?)", (s["id"], tag, source)
            )
        authors: dict[str, int] = {}
        for c in bundle["comments"]:
            name = c["author"]
            if name not in authors:
                account_id = await self.db.fetch_value(
                    "INSERT INTO accounts (username, password_hash, role, created_at) VALUES (?, ?, 'reader', ?)"
                    " ON CONFLICT (username) DO UPDATE SET username = excluded.username RETURNING id",
                    (name, NO_PASSWORD, c["created_at"]),
                )
                authors[name] = int(account_id)
            await self.db.execute(
                "INSERT INTO comments (id, session_id, parent_id, account_id, author, body, html, state, deleted,"
                " created_at, updated_at, edited) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    c["id"],
                    s["id"],
                    c["parent_id"],
                    authors[name],
                    name,
                    c["body"],
                    c["html"],
                    c["state"],
                    int(c["deleted"]),
                    c["created_at"],
                    c["updated_at"],
                    int(c["edited"]),
                ),
            )
        if bundle["thread_locked"]:
            await self.db.execute(
                "INSERT INTO comment_threads (session_id, locked) VALUES (?, 1)", (s["id"],)
            )
        await insert_answer_rows(self.db, s["id"], bundle.get("answers", []))  # exports before answers: none
        await redact_imported(self.db, s["id"], bundle["items"], bundle["comments"])

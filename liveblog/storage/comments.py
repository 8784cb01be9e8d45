"""SQL for comment threads (comments, locks, per-event pre-moderation) and the reader-account
operations they need (bans, revoking every login of an account, one-time password resets).
Written once for both backends, against the query layer (sql.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from liveblog.errors import NotFound
from liveblog.models import Account, Change, Comment, utcnow
from liveblog.storage.access import account_of, hash_token, new_token
from liveblog.storage.base import OpsBase
from liveblog.storage.redaction import comment_change_fields


def comment_of(row: Any) -> Comment:
    return Comment(
        id=row["id"],
        session_id=row["session_id"],
        parent_id=row["parent_id"],
        account_id=row["account_id"],
        author=row["author"],
        body=row["body"],
        html=row["html"],
        state=row["state"],
        deleted=bool(row["deleted"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        edited=bool(row["edited"]),
    )


class CommentOps(OpsBase):
    # -- comments --------------------------------------------------------------------------------

    async def insert_comment(
        self,
        *,
        session_id: str,
        parent_id: int | None,
        account_id: int,
        author: str,
        body: str,
        html: str,
        state: str,
        ip: str,
    ) -> tuple[Comment, Change]:
        now = utcnow()
        row = await self.db.fetch_one(
            "INSERT INTO comments (session_id, parent_id, account_id, author, body, html, state, ip, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (session_id, parent_id, account_id, author, body, html, state, ip, now, now),
        )
        comment = comment_of(row)
        change = await self.append_change(
            session_id, "comment.created", None, lambda seq: {"comment": comment.to_wire()}
        )
        return comment, change

    async def update_comment(
        self, comment_id: int, fields: dict[str, Any], op: str = "comment.updated"
    ) -> tuple[Comment, Change]:
        """Change a comment (body/html/edited, state, deleted) and append its change to the stream;
        a comment hidden or deleted has its earlier changes redacted (storage/redaction.py)."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [int(v) if isinstance(v, bool) else v for v in fields.values()]
        row = await self.db.fetch_one(
            f"UPDATE comments SET {sets}, updated_at = ? WHERE id = ? RETURNING *",
            (*values, utcnow(), comment_id),
        )
        if row is None:
            raise NotFound("There is no such comment.", code="unknown_comment")
        comment = comment_of(row)
        fields = await comment_change_fields(self.db, comment)  # hidden or deleted: redacts its past
        change = await self.append_change(comment.session_id, op, None, lambda seq: fields)
        return comment, change

    async def get_comment(self, comment_id: int) -> Comment | None:
        row = await self.db.fetch_one("SELECT * FROM comments WHERE id = ?", (comment_id,))
        return comment_of(row) if row else None

    async def list_comments(self, session_id: str) -> list[Comment]:
        """Every comment of the thread (also pending, hidden and deleted ones), oldest first."""
        rows = await self.db.fetch_all(
            "SELECT * FROM comments WHERE session_id = ? ORDER BY id", (session_id,)
        )
        return [comment_of(r) for r in rows]

    async def recent_comments(self, event_id: str | None, limit: int) -> list[Comment]:
        """The newest public comments, of one event or of all (for the comments feed)."""
        sql = "SELECT c.* FROM comments c"
        args: list[Any] = []
        if event_id is not None:
            sql += " JOIN sessions s ON s.id = c.session_id WHERE s.event_id = ? AND"
            args.append(event_id)
        else:
            sql += " WHERE"
        sql += " c.state = 'visible' AND c.deleted = 0 ORDER BY c.id DESC LIMIT ?"
        return [comment_of(r) for r in await self.db.fetch_all(sql, (*args, limit))]

    async def comments_in_state(self, state: str, limit: int) -> list[Comment]:
        rows = await self.db.fetch_all(
            "SELECT * FROM comments WHERE state = ? AND deleted = 0 ORDER BY id DESC LIMIT ?", (state, limit)
        )
        return [comment_of(r) for r in rows]

    async def comment_counts(self, event_id: str) -> dict[str, int]:
        rows = await self.db.fetch_all(
            "SELECT c.session_id, count(*) FROM comments c JOIN sessions s ON s.id = c.session_id"
            " WHERE s.event_id = ? AND c.state = 'visible' AND c.deleted = 0 GROUP BY c.session_id",
            (event_id,),
        )
        return {r[0]: int(r[1]) for r in rows}

    async def thread_locked(self, session_id: str) -> bool:
        rows = await self.db.fetch_all(
            "SELECT locked FROM comment_threads WHERE session_id = ?", (session_id,)
        )
        return bool(rows and rows[0][0])

    async def set_thread_locked(self, session_id: str, locked: bool) -> Change:
        await self.db.execute(
            "INSERT INTO comment_threads (session_id, locked) VALUES (?, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET locked = excluded.locked",
            (session_id, int(locked)),
        )
        return await self.append_change(session_id, "comments.locked", None, lambda seq: {"locked": locked})

    async def event_premoderation(self, event_id: str) -> bool:
        rows = await self.db.fetch_all(
            "SELECT premoderate FROM event_comment_settings WHERE event_id = ?", (event_id,)
        )
        return bool(rows and rows[0][0])

    async def set_event_premoderation(self, event_id: str, on: bool) -> None:
        await self.db.execute(
            "INSERT INTO event_comment_settings (event_id, premoderate) VALUES (?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET premoderate = excluded.premoderate",
            (event_id, int(on)),
        )

    # -- reader accounts -------------------------------------------------------------------------

    async def account_banned(self, account_id: int) -> bool:
        rows = await self.db.fetch_all("SELECT banned_at FROM accounts WHERE id = ?", (account_id,))
        return bool(rows and rows[0][0])

    async def ban_account(self, account_id: int) -> None:
        """Mark an account banned (its logins are ended with revoke_account_logins)."""
        changed = await self.db.execute(
            "UPDATE accounts SET banned_at = coalesce(banned_at, ?) WHERE id = ?", (utcnow(), account_id)
        )
        if changed == 0:
            raise NotFound("There is no such account.", code="unknown_account")

    async def account_events(self, account_id: int) -> list[str]:
        """The events an account took part in: those with a comment of it in a session's thread."""
        rows = await self.db.fetch_all(
            "SELECT DISTINCT s.event_id FROM comments c JOIN sessions s ON s.id = c.session_id"
            " WHERE c.account_id = ? ORDER BY s.event_id",
            (account_id,),
        )
        return [str(r[0]) for r in rows]

    async def password_hash_of(self, account_id: int) -> str | None:
        rows = await self.db.fetch_all("SELECT password_hash FROM accounts WHERE id = ?", (account_id,))
        return str(rows[0][0]) if rows else None

    async def set_password_of(self, account_id: int, password_hash: str) -> None:
        await self.db.execute(
            "UPDATE accounts SET password_hash = ? WHERE id = ?", (password_hash, account_id)
        )

    async def insert_password_reset(self, account_id: int, valid_hours: int) -> str:
        token = new_token()
        now = datetime.now(UTC)
        await self.db.execute(
            "INSERT INTO password_resets (token_hash, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (
                hash_token(token),
                account_id,
                now.isoformat(),
                (now + timedelta(hours=valid_hours)).isoformat(),
            ),
        )
        return token

    async def peek_password_reset(self, token: str) -> int | None:
        """The account a reset link is for, if it is unused and unexpired (without using it)."""
        rows = await self.db.fetch_all(
            "SELECT account_id FROM password_resets WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
            (hash_token(token), datetime.now(UTC).isoformat()),
        )
        return int(rows[0][0]) if rows else None

    async def use_password_reset(self, token: str) -> int | None:
        """Use a reset link, once (one statement: two concurrent uses cannot both succeed)."""
        account_id = await self.db.fetch_value(
            "UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?"
            " RETURNING account_id",
            (utcnow(), hash_token(token), datetime.now(UTC).isoformat()),
        )
        return int(account_id) if account_id is not None else None

    async def get_account(self, account_id: int) -> Account | None:
        row = await self.db.fetch_one("SELECT * FROM accounts WHERE id = ?", (account_id,))
        return account_of(row) if row is not None else None

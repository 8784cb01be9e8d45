"""Queries for organiser accounts, login sessions, note-taker invites and uploaded media.

Tokens are never stored: only their SHA-256, so a copy of the database grants no access.
Written once for both backends, against the query layer (sql.py).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from liveblog.errors import Conflict, NotFound
from liveblog.models import Account, Invite, utcnow
from liveblog.storage.base import OpsBase
from liveblog.storage.sql import Query, Row, UniqueViolation

LOGIN_DAYS = 14  # a conference plus its follow-up week without logging in again


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


# -- row mappers ---------------------------------------------------------------------------


def account_of(row: Row) -> Account:
    return Account(int(row["id"]), row["username"], row["role"], row["created_at"])


def invite_of(row: Row) -> Invite:
    return Invite(
        id=row["id"],
        event_id=row["event_id"],
        session_id=row["session_id"],
        name=row["name"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


# Account names are one whatever their case (SQLite: a NOCASE column; PostgreSQL: lower()).
_SET_PASSWORD = Query(lambda d: f"UPDATE accounts SET password_hash = ? WHERE {d.equals_nocase('username')}")
_ACCOUNT_BY_NAME = Query(lambda d: f"SELECT * FROM accounts WHERE {d.equals_nocase('username')}")
_REVOKE_ACCOUNT_LOGINS = Query(
    lambda d: (
        "UPDATE login_sessions SET revoked_at = ?"
        f" WHERE account_id = (SELECT id FROM accounts WHERE {d.equals_nocase('username')})"
        " AND revoked_at IS NULL AND token_hash != ? RETURNING token_hash"
    )
)


class AccessOps(OpsBase):
    # -- accounts and login sessions -------------------------------------------------------------

    async def insert_account(self, username: str, password_hash: str, role: str = "organiser") -> Account:
        now = utcnow()
        try:
            account_id = await self.db.fetch_value(
                "INSERT INTO accounts (username, password_hash, role, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                (username, password_hash, role, now),
            )
        except UniqueViolation:
            raise Conflict(f"an account named {username!r} exists already", code="account_exists") from None
        return Account(id=int(account_id), username=username, role=role, created_at=now)

    async def set_password(self, username: str, password_hash: str) -> None:
        if await self.db.execute(_SET_PASSWORD, (password_hash, username)) == 0:
            raise NotFound(f"no account {username!r}")

    async def account_for_login(self, username: str) -> tuple[Account, str] | None:
        row = await self.db.fetch_one(_ACCOUNT_BY_NAME, (username,))
        return (account_of(row), row["password_hash"]) if row is not None else None

    async def insert_login(self, account_id: int) -> str:
        token = new_token()
        now = datetime.now(UTC)
        await self.db.execute(
            "INSERT INTO login_sessions (token_hash, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (hash_token(token), account_id, now.isoformat(), (now + timedelta(days=LOGIN_DAYS)).isoformat()),
        )
        return token

    async def revoke_login(self, token: str) -> None:
        await self.db.execute(
            "UPDATE login_sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
            (utcnow(), hash_token(token)),
        )

    async def revoke_account_logins(self, username: str, keep_token: str | None = None) -> list[str]:
        """End every login session of an account (but `keep_token`'s); the ended token hashes."""
        keep = hash_token(keep_token) if keep_token else ""
        rows = await self.db.fetch_all(_REVOKE_ACCOUNT_LOGINS, (utcnow(), username, keep))
        return [row[0] for row in rows]

    async def account_for_login_token(self, token: str) -> Account | None:
        row = await self.db.fetch_one(
            "SELECT a.* FROM login_sessions s JOIN accounts a ON a.id = s.account_id"
            " WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?",
            (hash_token(token), datetime.now(UTC).isoformat()),
        )
        return account_of(row) if row is not None else None

    # -- invites ---------------------------------------------------------------------------------

    async def insert_invite(self, event_id: str, session_id: str | None, name: str) -> tuple[Invite, str]:
        token = new_token()
        invite = Invite(
            id="inv-" + secrets.token_hex(6),
            event_id=event_id,
            session_id=session_id,
            name=name,
            created_at=utcnow(),
        )
        await self.db.execute(
            "INSERT INTO invites (id, token_hash, event_id, session_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (invite.id, hash_token(token), event_id, session_id, name, invite.created_at),
        )
        return invite, token

    async def revoke_invite(self, invite_id: str) -> Invite:
        await self.db.execute(
            "UPDATE invites SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (utcnow(), invite_id)
        )
        row = await self.db.fetch_one("SELECT * FROM invites WHERE id = ?", (invite_id,))
        if row is None:
            raise NotFound(f"no invite {invite_id!r}")
        return invite_of(row)

    async def invite_for_token(self, token: str) -> Invite | None:
        row = await self.db.fetch_one("SELECT * FROM invites WHERE token_hash = ?", (hash_token(token),))
        return invite_of(row) if row is not None else None

    async def list_invites(self, event_id: str) -> list[Invite]:
        rows = await self.db.fetch_all(
            "SELECT * FROM invites WHERE event_id = ? ORDER BY created_at DESC", (event_id,)
        )
        return [invite_of(r) for r in rows]

    async def inactive_invites(self, invite_ids: list[str]) -> list[str]:
        active: set[str] = set()
        for chunk in self.db.dialect.chunks(invite_ids):
            test, args = self.db.dialect.one_of("id", chunk)
            rows = await self.db.fetch_all(
                f"SELECT id FROM invites WHERE revoked_at IS NULL AND {test}", args
            )
            active.update(r[0] for r in rows)
        return [i for i in invite_ids if i not in active]

    # -- media -----------------------------------------------------------------------------------

    async def insert_media(
        self, session_id: str, content_type: str, data: bytes, uploaded_by: str | None
    ) -> str:
        digest = hashlib.sha256(data).hexdigest()
        # The same photo uploaded twice (a retried upload) is stored once.
        existing = await self.db.fetch_value(
            "SELECT id FROM media WHERE session_id = ? AND sha256 = ?", (session_id, digest)
        )
        if existing:
            return str(existing)
        media_id = secrets.token_hex(8)
        await self.db.execute(
            "INSERT INTO media (id, session_id, content_type, bytes, size, sha256, uploaded_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (media_id, session_id, content_type, data, len(data), digest, uploaded_by, utcnow()),
        )
        return media_id

    async def get_media(self, media_id: str) -> tuple[str, bytes] | None:
        row = await self.db.fetch_one("SELECT content_type, bytes FROM media WHERE id = ?", (media_id,))
        return (row[0], bytes(row[1])) if row is not None else None

"""PostgreSQL SQL for organiser accounts, login sessions, invites and media (the operations of
storage/access.py). Tokens are stored only as their SHA-256 here too."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg

from liveblog.errors import Conflict, NotFound
from liveblog.models import Account, Invite, utcnow
from liveblog.storage.access import LOGIN_DAYS, _invite, hash_token, new_token
from liveblog.storage.postgres.base import PgUnitBase


class PgAccessOps(PgUnitBase):
    async def insert_account(self, username: str, password_hash: str, role: str = "organiser") -> Account:
        now = utcnow()
        try:
            account_id = await self.conn.fetchval(
                "INSERT INTO accounts (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                username, password_hash, role, now,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"an account named {username!r} exists already", code="account_exists") from None
        return Account(id=int(account_id), username=username, role=role, created_at=now)

    async def set_password(self, username: str, password_hash: str) -> None:
        status = await self.conn.execute(
            "UPDATE accounts SET password_hash = $1 WHERE lower(username) = lower($2)", password_hash, username
        )
        if status.endswith(" 0"):
            raise NotFound(f"no account {username!r}")

    async def account_for_login(self, username: str) -> tuple[Account, str] | None:
        row = await self.conn.fetchrow("SELECT * FROM accounts WHERE lower(username) = lower($1)", username)
        if row is None:
            return None
        return Account(int(row["id"]), row["username"], row["role"], row["created_at"]), row["password_hash"]

    async def insert_login(self, account_id: int) -> str:
        token = new_token()
        now = datetime.now(UTC)
        await self.conn.execute(
            "INSERT INTO login_sessions (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            hash_token(token), account_id, now.isoformat(), (now + timedelta(days=LOGIN_DAYS)).isoformat(),
        )
        return token

    async def revoke_login(self, token: str) -> None:
        await self.conn.execute(
            "UPDATE login_sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
            utcnow(), hash_token(token),
        )

    async def revoke_account_logins(self, username: str, keep_token: str | None = None) -> list[str]:
        keep = hash_token(keep_token) if keep_token else ""
        rows = await self.conn.fetch(
            "UPDATE login_sessions SET revoked_at = $1"
            " WHERE account_id = (SELECT id FROM accounts WHERE lower(username) = lower($2))"
            " AND revoked_at IS NULL AND token_hash != $3 RETURNING token_hash",
            utcnow(), username, keep,
        )
        return [row[0] for row in rows]

    async def account_for_login_token(self, token: str) -> Account | None:
        row = await self.conn.fetchrow(
            "SELECT a.* FROM login_sessions s JOIN accounts a ON a.id = s.account_id"
            " WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
            hash_token(token), datetime.now(UTC).isoformat(),
        )
        return Account(int(row["id"]), row["username"], row["role"], row["created_at"]) if row else None

    async def insert_invite(self, event_id: str, session_id: str | None, name: str) -> tuple[Invite, str]:
        token = new_token()
        invite = Invite(
            id="inv-" + secrets.token_hex(6), event_id=event_id, session_id=session_id, name=name, created_at=utcnow()
        )
        await self.conn.execute(
            "INSERT INTO invites (id, token_hash, event_id, session_id, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            invite.id, hash_token(token), event_id, session_id, name, invite.created_at,
        )
        return invite, token

    async def revoke_invite(self, invite_id: str) -> Invite:
        await self.conn.execute(
            "UPDATE invites SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", utcnow(), invite_id
        )
        row = await self.conn.fetchrow("SELECT * FROM invites WHERE id = $1", invite_id)
        if row is None:
            raise NotFound(f"no invite {invite_id!r}")
        return _invite(row)

    async def invite_for_token(self, token: str) -> Invite | None:
        row = await self.conn.fetchrow("SELECT * FROM invites WHERE token_hash = $1", hash_token(token))
        return _invite(row) if row else None

    async def list_invites(self, event_id: str) -> list[Invite]:
        rows = await self.conn.fetch("SELECT * FROM invites WHERE event_id = $1 ORDER BY created_at DESC", event_id)
        return [_invite(r) for r in rows]

    async def inactive_invites(self, invite_ids: list[str]) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT id FROM invites WHERE revoked_at IS NULL AND id = ANY($1::text[])", invite_ids
        )
        active = {r[0] for r in rows}
        return [i for i in invite_ids if i not in active]

    async def insert_media(self, session_id: str, content_type: str, data: bytes, uploaded_by: str | None) -> str:
        digest = hashlib.sha256(data).hexdigest()
        existing = await self.conn.fetchval(
            "SELECT id FROM media WHERE session_id = $1 AND sha256 = $2", session_id, digest
        )
        if existing:
            return str(existing)
        media_id = secrets.token_hex(8)
        await self.conn.execute(
            "INSERT INTO media (id, session_id, content_type, bytes, size, sha256, uploaded_by, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            media_id, session_id, content_type, data, len(data), digest, uploaded_by, utcnow(),
        )
        return media_id

    async def get_media(self, media_id: str) -> tuple[str, bytes] | None:
        row = await self.conn.fetchrow("SELECT content_type, bytes FROM media WHERE id = $1", media_id)
        return (row[0], bytes(row[1])) if row else None

"""Queries for organiser accounts, login sessions, note-taker invites and uploaded media.

Tokens are never stored: only their SHA-256, so a copy of the database grants no access.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import aiosqlite

from liveblog.errors import Conflict, NotFound
from liveblog.models import Account, Invite, utcnow
from liveblog.storage.base import UnitBase

LOGIN_DAYS = 14  # a conference plus its follow-up week without logging in again


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


# -- accounts and login sessions -----------------------------------------------------------

# -- invites -------------------------------------------------------------------------------

def _invite(row: aiosqlite.Row) -> Invite:
    return Invite(
        id=row["id"],
        event_id=row["event_id"],
        session_id=row["session_id"],
        name=row["name"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


# -- media ---------------------------------------------------------------------------------


class AccessOps(UnitBase):
    async def insert_account(self, username: str, password_hash: str, role: str = "organiser") -> Account:
        now = utcnow()
        try:
            cur = await self.conn.execute(
                "INSERT INTO accounts (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                (username, password_hash, role, now),
            )
        except aiosqlite.IntegrityError:
            raise Conflict(f"an account named {username!r} exists already", code="account_exists") from None
        assert cur.lastrowid is not None
        return Account(id=cur.lastrowid, username=username, role=role, created_at=now)

    async def set_password(self, username: str, password_hash: str) -> None:
        cur = await self.conn.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", (password_hash, username))
        if cur.rowcount == 0:
            raise NotFound(f"no account {username!r}")

    async def account_for_login(self, username: str) -> tuple[Account, str] | None:
        async with self.conn.execute("SELECT * FROM accounts WHERE username = ?", (username,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return Account(row["id"], row["username"], row["role"], row["created_at"]), row["password_hash"]

    async def insert_login(self, account_id: int) -> str:
        token = new_token()
        now = datetime.now(UTC)
        await self.conn.execute(
            "INSERT INTO login_sessions (token_hash, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (hash_token(token), account_id, now.isoformat(), (now + timedelta(days=LOGIN_DAYS)).isoformat()),
        )
        return token

    async def revoke_login(self, token: str) -> None:
        await self.conn.execute(
            "UPDATE login_sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
            (utcnow(), hash_token(token)),
        )

    async def revoke_account_logins(self, username: str, keep_token: str | None = None) -> list[str]:
        """End every login session of an account (but `keep_token`'s); the ended token hashes."""
        keep = hash_token(keep_token) if keep_token else ""
        async with self.conn.execute(
            "UPDATE login_sessions SET revoked_at = ?"
            " WHERE account_id = (SELECT id FROM accounts WHERE username = ?)"
            " AND revoked_at IS NULL AND token_hash != ? RETURNING token_hash",
            (utcnow(), username, keep),
        ) as cur:
            return [row[0] for row in await cur.fetchall()]

    async def account_for_login_token(self, token: str) -> Account | None:
        async with self.conn.execute(
            "SELECT a.* FROM login_sessions s JOIN accounts a ON a.id = s.account_id"
            " WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?",
            (hash_token(token), datetime.now(UTC).isoformat()),
        ) as cur:
            row = await cur.fetchone()
        return Account(row["id"], row["username"], row["role"], row["created_at"]) if row else None

    async def insert_invite(self, event_id: str, session_id: str | None, name: str) -> tuple[Invite, str]:
        token = new_token()
        invite = Invite(
            id="inv-" + secrets.token_hex(6), event_id=event_id, session_id=session_id, name=name, created_at=utcnow()
        )
        await self.conn.execute(
            "INSERT INTO invites (id, token_hash, event_id, session_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (invite.id, hash_token(token), event_id, session_id, name, invite.created_at),
        )
        return invite, token

    async def revoke_invite(self, invite_id: str) -> Invite:
        await self.conn.execute(
            "UPDATE invites SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (utcnow(), invite_id)
        )
        async with self.conn.execute("SELECT * FROM invites WHERE id = ?", (invite_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no invite {invite_id!r}")
        return _invite(row)

    async def invite_for_token(self, token: str) -> Invite | None:
        async with self.conn.execute("SELECT * FROM invites WHERE token_hash = ?", (hash_token(token),)) as cur:
            row = await cur.fetchone()
        return _invite(row) if row else None

    async def list_invites(self, event_id: str) -> list[Invite]:
        async with self.conn.execute(
            "SELECT * FROM invites WHERE event_id = ? ORDER BY created_at DESC", (event_id,)
        ) as cur:
            return [_invite(r) for r in await cur.fetchall()]

    async def inactive_invites(self, invite_ids: list[str]) -> list[str]:
        active: set[str] = set()
        for start in range(0, len(invite_ids), 500):  # under SQLite's limit on parameters
            chunk = invite_ids[start:start + 500]
            async with self.conn.execute(
                f"SELECT id FROM invites WHERE revoked_at IS NULL AND id IN ({', '.join('?' for _ in chunk)})", chunk
            ) as cur:
                active.update(r[0] for r in await cur.fetchall())
        return [i for i in invite_ids if i not in active]

    async def insert_media(self, session_id: str, content_type: str, data: bytes, uploaded_by: str | None
    ) -> str:
        digest = hashlib.sha256(data).hexdigest()
        # The same photo uploaded twice (a retried upload) is stored once.
        async with self.conn.execute(
            "SELECT id FROM media WHERE session_id = ? AND sha256 = ?", (session_id, digest)
        ) as cur:
            row = await cur.fetchone()
        if row:
            return str(row[0])
        media_id = secrets.token_hex(8)
        await self.conn.execute(
            "INSERT INTO media (id, session_id, content_type, bytes, size, sha256, uploaded_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (media_id, session_id, content_type, data, len(data), digest, uploaded_by, utcnow()),
        )
        return media_id

    async def get_media(self, media_id: str) -> tuple[str, bytes] | None:
        async with self.conn.execute("SELECT content_type, bytes FROM media WHERE id = ?", (media_id,)) as cur:
            row = await cur.fetchone()
        return (row[0], bytes(row[1])) if row else None


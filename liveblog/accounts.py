"""Who may do what: organiser accounts (argon2 passwords, revocable logins) and note-taker invites."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from liveblog.errors import BadRequest, NotFound, Unauthorized
from liveblog.models import Account, Invite
from liveblog.storage import Database, Tx, access, repo

MIN_PASSWORD = 8



class Accounts:
    def __init__(self, db: Database, hasher: PasswordHasher | None = None) -> None:
        self.db = db
        # argon2id with the library's defaults (RFC 9106 low-memory profile).
        self.hasher = hasher or PasswordHasher()
        self._dummy: tuple[PasswordHasher, str] | None = None

    def _dummy_hash(self) -> str:
        """Verified against when the user does not exist, so timing does not reveal usernames."""
        if self._dummy is None or self._dummy[0] is not self.hasher:
            self._dummy = (self.hasher, self.hasher.hash("not a real password"))
        return self._dummy[1]

    async def create_organiser(self, username: str, password: str) -> Account:
        username = username.strip()
        if not username or len(username) > 64:
            raise BadRequest("a username is 1-64 characters", code="invalid_field", field="username")
        if len(password) < MIN_PASSWORD:
            raise BadRequest(f"a password is at least {MIN_PASSWORD} characters", code="invalid_field", field="password")
        hashed = self.hasher.hash(password)

        async def op(tx: Tx) -> Account:
            return await access.insert_account(tx, username, hashed)

        return await self.db.write(op)

    async def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise BadRequest(f"a password is at least {MIN_PASSWORD} characters", code="invalid_field", field="password")
        hashed = self.hasher.hash(password)

        async def op(tx: Tx) -> None:
            await access.set_password(tx, username, hashed)

        await self.db.write(op)

    async def login(self, username: str, password: str) -> str:
        """Check a password; returns a new login token (stored hashed, revocable)."""
        found = await self.db.read(lambda c: access.account_for_login(c, username.strip()))
        try:
            self.hasher.verify(found[1] if found else self._dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            found = None
        if found is None:
            raise Unauthorized("wrong username or password", code="bad_login")
        account = found[0]

        async def op(tx: Tx) -> str:
            return await access.insert_login(tx, account.id)

        return await self.db.write(op)

    async def logout(self, token: str) -> None:
        async def op(tx: Tx) -> None:
            await access.revoke_login(tx, token)

        await self.db.write(op)

    async def account_for_token(self, token: str | None) -> Account | None:
        if not token:
            return None
        return await self.db.read(lambda c: access.account_for_login_token(c, token))

    async def invite(self, event_id: str, session_id: str | None, name: str) -> tuple[Invite, str]:
        name = name.strip()
        if not name or len(name) > 80:
            raise BadRequest("give the note-taker a name of 1-80 characters", code="invalid_field", field="name")

        async def op(tx: Tx) -> tuple[Invite, str]:
            if await repo.get_event(tx.conn, event_id) is None:
                raise NotFound(f"no event {event_id!r}")
            if session_id is not None:
                session = await repo.get_session(tx.conn, session_id)
                if session is None or session.event_id != event_id:
                    raise NotFound(f"no session {session_id!r} in this event", field="session_id")
            return await access.insert_invite(tx, event_id, session_id, name)

        return await self.db.write(op)

    async def revoke_invite(self, invite_id: str) -> Invite:
        async def op(tx: Tx) -> Invite:
            return await access.revoke_invite(tx, invite_id)

        return await self.db.write(op)

    async def invite_for_token(self, token: str | None) -> Invite | None:
        if not token:
            return None
        invite = await self.db.read(lambda c: access.invite_for_token(c, token))
        return invite if invite and invite.active else None

    async def invites(self, event_id: str) -> list[Invite]:
        return await self.db.read(lambda c: access.list_invites(c, event_id))

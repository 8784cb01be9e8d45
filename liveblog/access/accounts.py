"""Who may do what: organiser accounts (argon2 passwords, revocable logins) and note-taker invites."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from liveblog.access.sockets import CredentialSockets, invite_key, login_key
from liveblog.access.throttle import KnownDevices, LoginThrottle
from liveblog.errors import BadRequest, Forbidden, NotFound, Unauthorized
from liveblog.models import Account, Invite, Session
from liveblog.sharedstate import SharedCounters
from liveblog.storage import LOGIN_DAYS, Store, Tx, hash_token
from liveblog.text import xml_chars

MIN_PASSWORD = 8
# The login cookie lives exactly as long as its server-side session.
LOGIN_SECONDS = LOGIN_DAYS * 24 * 3600


class Accounts:
    def __init__(
        self,
        db: Store,
        hasher: PasswordHasher | None = None,
        secret_key: str = "",
        *,
        shared: SharedCounters | None = None,
        broadcast: Callable[[str], None] | None = None,
    ) -> None:
        """With several processes, `shared` counts log-in failures across them (Redis) and
        `broadcast` tells them of a revoked credential, so they close its sockets too."""
        self.db = db
        # argon2id with the library's defaults (RFC 9106 low-memory profile).
        self.hasher = hasher or PasswordHasher()
        self._dummy: tuple[PasswordHasher, str] | None = None
        self.throttle = LoginThrottle(shared=shared)
        self.devices = KnownDevices(secret_key)
        self.sockets = CredentialSockets(broadcast)

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
            raise BadRequest(
                f"a password is at least {MIN_PASSWORD} characters", code="invalid_field", field="password"
            )
        hashed = await asyncio.to_thread(self.hasher.hash, password)

        async def op(tx: Tx) -> Account:
            return await tx.insert_account(username, hashed)

        return await self.db.write(op)

    async def set_password(self, username: str, password: str, *, keep_token: str | None = None) -> int:
        """Change a password and end every other login session of the account (all of them from
        the command line; all but `keep_token`'s when the organiser changes it while logged in),
        closing their sockets. Returns how many sessions ended."""
        if len(password) < MIN_PASSWORD:
            raise BadRequest(
                f"a password is at least {MIN_PASSWORD} characters", code="invalid_field", field="password"
            )
        hashed = await asyncio.to_thread(self.hasher.hash, password)

        async def op(tx: Tx) -> int:
            await tx.set_password(username, hashed)
            ended = await tx.revoke_account_logins(username, keep_token)
            tx.after_commit.append(lambda: self._close_logins(ended))
            return len(ended)

        return await self.db.write(op)

    def _close_logins(self, token_hashes: list[str]) -> None:
        self._close([login_key(h) for h in token_hashes])

    def _close(self, keys: list[str]) -> None:
        for key in keys:
            self.sockets.revoke(key)

    async def login(
        self, username: str, password: str, address: str = "", device_token: str | None = None
    ) -> str:
        """Check a password; returns a new login token (stored hashed, revocable). `device_token`
        is the browser's known-device cookie, if any (throttle.py explains the rule)."""
        username = username.strip()
        device = self.devices.device_of(device_token, username)
        await self.throttle.check_shared(username, address, device)
        found = await self.db.read(lambda r: r.account_for_login(username))
        dummy = self._dummy_hash() if found is None else ""
        try:
            # argon2 takes tens of ms of CPU: in a thread (cffi releases the GIL), not on the
            # event loop, where it would hold up every live delivery.
            await asyncio.to_thread(self.hasher.verify, found[1] if found else dummy, password)
        except (VerificationError, InvalidHashError):
            found = None
        if found is None:
            await self.throttle.failed_shared(username, address, device)
            raise Unauthorized("wrong username or password", code="bad_login")
        self.throttle.succeeded(username, address, device)
        account = found[0]

        async def op(tx: Tx) -> str:
            return await tx.insert_login(account.id)

        return await self.db.write(op)

    def known_device(self, username: str, device_token: str | None = None) -> str:
        """The known-device cookie to keep after a successful log-in (the same one if still valid)."""
        if device_token and self.devices.device_of(device_token, username.strip()):
            return device_token
        return self.devices.issue(username.strip())

    async def logout(self, token: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.revoke_login(token)
            tx.after_commit.append(lambda: self._close_logins([hash_token(token)]))

        await self.db.write(op)

    async def account_for_token(self, token: str | None) -> Account | None:
        if not token:
            return None
        return await self.db.read(lambda r: r.account_for_login_token(token))

    async def invite(self, event_id: str, session_id: Any, name: str) -> tuple[Invite, str]:
        if session_id is not None and not isinstance(session_id, str):
            raise BadRequest(
                "session_id is a session's id (a string) or null", code="invalid_field", field="session_id"
            )
        name = xml_chars(name).strip()
        if not name or len(name) > 80:
            raise BadRequest(
                "give the note-taker a name of 1-80 characters", code="invalid_field", field="name"
            )

        async def op(tx: Tx) -> tuple[Invite, str]:
            if await tx.get_event(event_id) is None:
                raise NotFound(f"no event {event_id!r}")
            if session_id is not None:
                session = await tx.get_session(session_id)
                if session is None or session.event_id != event_id:
                    raise NotFound(f"no session {session_id!r} in this event", field="session_id")
            return await tx.insert_invite(event_id, session_id, name)

        return await self.db.write(op)

    async def revoke_invite(self, invite_id: str) -> Invite:
        async def op(tx: Tx) -> Invite:
            invite = await tx.revoke_invite(invite_id)
            # Once durable, every socket the invite opened is closed: it posts nothing more.
            tx.after_commit.append(lambda: self._close([invite_key(invite_id)]))
            return invite

        return await self.db.write(op)

    async def recheck_sockets(self) -> int:
        """Close the sockets of this process whose invite was revoked meanwhile (another process
        revoked it while Redis, which would have told us, was down). Returns how many closed."""
        prefix = invite_key("")
        invite_ids = [k.removeprefix(prefix) for k in self.sockets.open_keys() if k.startswith(prefix)]
        if not invite_ids:
            return 0
        revoked = await self.db.read(lambda r: r.inactive_invites(invite_ids))
        return sum(self.sockets.revoke(invite_key(i), local_only=True) for i in revoked)

    async def invite_for_token(self, token: str | None) -> Invite | None:
        if not token:
            return None
        invite = await self.db.read(lambda r: r.invite_for_token(token))
        return invite if invite and invite.active else None

    async def authorize_capture(self, token: str | None, session: Session) -> Invite:
        """The one door for note-takers: the invite that lets `token` write to and moderate
        `session`. Unauthorized when the token is missing, unknown or revoked; Forbidden when the
        invite is for another session or event. Every transport (HTTP capture, the capture socket via
        capture_door, uploads, moderation, the note-taker pages) asks here."""
        return _allowed(await self.invite_for_token(token), session)

    async def capture_door(self, token: str | None, session_id: str) -> tuple[Session, Invite]:
        """`authorize_capture` for a transport that names the session (the capture socket): the
        session and the invite in one read, so a room's note-takers joining at once queue once
        each behind the live readers, not twice. NotFound first, then authorize_capture's errors."""

        async def both(r: Any) -> tuple[Session | None, Invite | None]:
            return await r.get_session(session_id), (await r.invite_for_token(token) if token else None)

        session, invite = await self.db.read(both)
        if session is None:
            raise NotFound(f"no session {session_id!r}")
        return session, _allowed(invite, session)

    async def invites(self, event_id: str) -> list[Invite]:
        return await self.db.read(lambda r: r.list_invites(event_id))


def _allowed(invite: Invite | None, session: Session) -> Invite:
    """The invite, if it is active and covers the session (the checks of authorize_capture)."""
    if invite is None or not invite.active:
        raise Unauthorized("this invite is missing, unknown or revoked: ask the organiser for a new link")
    if not invite.allows(session):
        raise Forbidden("your invite does not cover this session")
    return invite

"""Reader accounts: people who register to comment. Username and password (argon2, through the
same hasher and log-in throttle as organisers), server-side login sessions that logout and a
password change revoke, one-time reset links made by an organiser (for readers who took part in an
event, never for an organiser's account), and bans that end every session of the account."""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque

from argon2.exceptions import InvalidHashError, VerificationError

from liveblog.access.accounts import MIN_PASSWORD, Accounts
from liveblog.errors import BadRequest, Forbidden, NotFound, RateLimited, Unauthorized
from liveblog.models import Account
from liveblog.storage import Store, Tx

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
MAX_PASSWORD = 1024  # argon2 hashes anything, but a megabyte "password" is only a way to burn CPU
# Registrations per address per hour: a venue's shared wifi may register a few dozen people,
# a script registering throwaway accounts is slowed to a crawl.
REGISTRATIONS_PER_HOUR = 30
# How long an organiser's reset link stays valid.
RESET_HOURS = 48


class Readers:
    def __init__(self, db: Store, accounts: Accounts) -> None:
        self.db = db
        self.accounts = accounts
        self._registrations: dict[str, deque[float]] = {}

    def _check_password(self, password: str) -> None:
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise BadRequest(
                f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters",
                code="invalid_field",
                field="password",
            )

    def _registration_allowed(self, address: str) -> None:
        now = time.monotonic()
        stamps = self._registrations.setdefault(address, deque())
        while stamps and now - stamps[0] > 3600:
            stamps.popleft()
        if len(stamps) >= REGISTRATIONS_PER_HOUR:
            raise RateLimited("too many new accounts from this address; try again later", code="rate_limited")
        stamps.append(now)
        if len(self._registrations) > 10_000:
            for stale in list(self._registrations)[:1000]:
                del self._registrations[stale]

    async def register(self, username: str, password: str, address: str = "") -> tuple[Account, str]:
        """A new reader account, logged in: returns it and a login token."""
        username = username.strip()
        if not USERNAME.match(username):
            raise BadRequest(
                "a username is 3-32 letters, digits, '.', '_' or '-'", code="invalid_field", field="username"
            )
        self._check_password(password)
        self._registration_allowed(address)
        hashed = await asyncio.to_thread(self.accounts.hasher.hash, password)

        async def op(tx: Tx) -> tuple[Account, str]:
            account = await tx.insert_account(username, hashed, role="reader")
            return account, await tx.insert_login(account.id)

        return await self.db.write(op)

    async def login(self, username: str, password: str, address: str = "") -> tuple[Account, str]:
        """Log in (throttled per username and address, like organisers). A banned account is refused."""
        token = await self.accounts.login(username, password, address)
        account = await self.accounts.account_for_token(token)
        assert account is not None
        if await self.db.read(lambda r: r.account_banned(account.id)):
            await self.accounts.logout(token)
            raise Forbidden("this account has been banned", code="account_banned")
        return account, token

    async def logout(self, token: str) -> None:
        await self.accounts.logout(token)

    async def account(self, token: str | None) -> Account | None:
        return await self.accounts.account_for_token(token)

    async def change_password(self, account: Account, old: str, new: str) -> str:
        """Change a password: every login of the account ends; returns a fresh login token."""
        self._check_password(new)
        current = await self.db.read(lambda r: r.password_hash_of(account.id))
        try:
            await asyncio.to_thread(self.accounts.hasher.verify, current or "", old)
        except (VerificationError, InvalidHashError):
            raise Unauthorized("the current password is wrong", code="bad_login") from None
        hashed = await asyncio.to_thread(self.accounts.hasher.hash, new)

        async def op(tx: Tx) -> str:
            await tx.set_password_of(account.id, hashed)
            self._end_logins(tx, await tx.revoke_account_logins(account.username))
            return await tx.insert_login(account.id)

        return await self.db.write(op)

    async def reset_link(self, username: str) -> tuple[Account, str]:
        """For an organiser: a one-time token that lets a reader set a new password.

        Only for a reader account: an organiser's password is changed only by that organiser
        (logged in) or from the command line (`liveblog set-password`), so no organiser can take
        over another's account. And only for a reader who took part in an event (wrote a comment
        in one of its threads): the organiser vouches for someone from their event. Organisers
        organise every event of the instance, so any organiser may make it."""

        async def op(tx: Tx) -> tuple[Account, str]:
            found = await tx.account_for_login(username.strip())
            if found is None:
                raise NotFound(
                    "There is no account with that name.", code="unknown_account", field="username"
                )
            account = found[0]
            if account.role != "reader":
                raise Forbidden(
                    "Reset links are only for reader accounts. An organiser changes their own password,"
                    " or the server's operator runs `liveblog set-password`.",
                    code="not_a_reader",
                    field="username",
                )
            if not await tx.account_events(account.id):
                raise Forbidden(
                    f"{account.username} has not taken part in any event here (no comments), so no organiser"
                    " can vouch for them with a reset link.",
                    code="not_a_participant",
                    field="username",
                )
            return account, await tx.insert_password_reset(account.id, RESET_HOURS)

        return await self.db.write(op)

    async def reset_target(self, token: str) -> Account | None:
        """The reader account a reset link is for, while it is unused and unexpired."""

        async def read(r: Tx) -> Account | None:
            account_id = await r.peek_password_reset(token)
            account = await r.get_account(account_id) if account_id is not None else None
            return account if account is not None and account.role == "reader" else None

        return await self.db.read(read)

    async def reset_password(self, token: str, new: str) -> Account:
        """Use a reset link (once): set the password and end every login of the account. A link
        for an account that is not a reader's (made before the rule above) sets nothing."""
        self._check_password(new)
        hashed = await asyncio.to_thread(self.accounts.hasher.hash, new)

        async def op(tx: Tx) -> Account:
            account_id = await tx.use_password_reset(token)
            account = await tx.get_account(account_id) if account_id is not None else None
            if account is None or account.role != "reader":
                raise Unauthorized(
                    "this reset link is not valid: it was used already or has expired", code="bad_reset"
                )
            await tx.set_password_of(account.id, hashed)
            self._end_logins(tx, await tx.revoke_account_logins(account.username))
            return account

        return await self.db.write(op)

    async def ban(self, account_id: int, by: str = "", reason: str = "") -> None:
        """Ban an account: it can no longer log in or comment, and every login it has ends. The
        ban goes in the moderation ledger of every event the account commented in."""

        async def op(tx: Tx) -> None:
            account = await tx.get_account(account_id)
            if account is None:
                raise NotFound("There is no such account.", code="unknown_account")
            if account.role == "organiser":
                raise Forbidden("organiser accounts cannot be banned here", code="forbidden")
            await tx.ban_account(account_id)
            for event_id in await tx.account_events(account_id):
                await tx.record_event_moderation(
                    event_id=event_id,
                    actor=by,
                    action="ban",
                    target_kind="account",
                    target_id=account_id,
                    reason=reason,
                )
            self._end_logins(tx, await tx.revoke_account_logins(account.username))

        await self.db.write(op)

    def _end_logins(self, tx: Tx, token_hashes: list[str]) -> None:
        """Once committed, close whatever those logins opened (the access layer's socket registry)."""
        tx.after_commit.append(lambda: self.accounts._close_logins(token_hashes))

    async def banned(self, account_id: int) -> bool:
        return await self.db.read(lambda r: r.account_banned(account_id))

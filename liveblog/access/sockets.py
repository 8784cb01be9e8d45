"""The open sockets of every credential, so revoking a credential closes what it opened.

The web layer registers each socket it accepts under the credential that authorised it (an
invite, a login session, a participant) with a callback that closes it; the access layer calls
`revoke` after the revocation has committed. Keys are plain strings made by the helpers below,
never a raw token. This is per process: a deployment with several processes must pass the
revocation on to each: `broadcast` is the Redis fan-out's publisher (given when built), and revocations
received from the others come back through `revoke(..., local_only=True)`. A revocation whose
message was lost (Redis down, a failed publish) reaches no other process that way: each process
re-checks its open sockets' credentials against storage when its Redis subscriber subscribes
and at every resync (`Accounts.recheck_sockets`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

Closer = Callable[[str], None]

# Keys revoked in this process, so a socket that registers just after its credential was
# revoked (it was authorised a moment before) is closed at once. Revocations are rare
# (organiser actions), so a plain bounded set is enough.
MAX_REMEMBERED = 100_000


def invite_key(invite_id: str) -> str:
    return f"invite:{invite_id}"


def login_key(token_hash: str) -> str:
    return f"login:{token_hash}"


def participant_key(participant: str) -> str:
    return f"participant:{participant}"


class CredentialSockets:
    """credential key -> the close callbacks of the sockets it opened."""

    def __init__(self, broadcast: Callable[[str], None] | None = None) -> None:
        self._open: dict[str, dict[int, Closer]] = {}
        self._revoked: set[str] = set()
        self._next = 0
        # Several processes: tells the others (streams/fanout.py). Fire-and-forget, like changes.
        self.broadcast = broadcast

    def register(self, key: str, close: Closer) -> Callable[[], None]:
        """Remember a socket; returns the function that forgets it (call it when the socket ends)."""
        if key in self._revoked:
            close("revoked")
            return lambda: None
        self._next += 1
        handle = self._next
        self._open.setdefault(key, {})[handle] = close

        def unregister() -> None:
            sockets = self._open.get(key)
            if sockets is not None:
                sockets.pop(handle, None)
                if not sockets:
                    del self._open[key]

        return unregister

    def count(self, key: str) -> int:
        return len(self._open.get(key, {}))

    def open_keys(self) -> list[str]:
        """Every credential with a socket open in this process."""
        return list(self._open)

    def revoke(self, key: str, reason: str = "revoked", *, local_only: bool = False) -> int:
        """Close every socket the credential opened (in this process, and through `broadcast` in
        the others unless local_only); returns how many were open here."""
        if self.broadcast is not None and not local_only:
            try:
                self.broadcast(key)
            except Exception:
                log.exception("telling the other processes about a revocation failed")
        if len(self._revoked) >= MAX_REMEMBERED:
            self._revoked.clear()
        self._revoked.add(key)
        closers = list(self._open.pop(key, {}).values())
        for close in closers:
            try:
                close(reason)
            except Exception:  # one socket failing to close must not keep the others open
                log.exception("closing a socket of a revoked credential failed")
        return len(closers)

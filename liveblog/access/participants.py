"""Participant ids for audience votes: a random id signed with the server's secret key.

An anonymous participant carries `p_<random>.<signature>` in a cookie (or a header, for scripts);
the signature makes ids unforgeable, so one person cannot vote as many by inventing ids. A
logged-in organiser votes as `account:<id>`. What is stored is the plain id, never the signature.
"""

from __future__ import annotations

import re
import secrets

from itsdangerous import BadSignature, Signer

from liveblog.errors import Forbidden

# Salted so a signature made for another purpose with the same key never passes as a participant.
SALT = "liveblog.participant.v1"
ANON_ID = re.compile(r"^p_[A-Za-z0-9_-]{16,64}$")


class BadParticipant(Forbidden):
    code = "bad_participant"


class Participants:
    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("a secret key is required to sign participant ids")
        self._signer = Signer(secret_key, salt=SALT)

    def issue(self) -> tuple[str, str]:
        """A new anonymous participant: (id, signed token for the cookie)."""
        participant = "p_" + secrets.token_urlsafe(16)
        return participant, self._signer.sign(participant).decode()

    def verify(self, token: str) -> str:
        """The participant id in a signed token; BadParticipant when unsigned, forged or malformed."""
        if not token or len(token) > 200:
            raise BadParticipant("the participant id is missing or malformed: reload the page to get a new one")
        try:
            participant = self._signer.unsign(token).decode()
        except BadSignature:
            raise BadParticipant(
                "the participant id is not signed by this server: reload the page to get a new one"
            ) from None
        if not ANON_ID.match(participant):
            raise BadParticipant("the participant id is malformed: reload the page to get a new one")
        return participant

    @staticmethod
    def for_account(account_id: int) -> str:
        return f"account:{account_id}"

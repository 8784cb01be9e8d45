"""Participant ids for audience votes: a random id signed with the server's secret key.

An anonymous participant carries `p_<random>.<signature>` in a cookie (or a header, for scripts);
the signature makes ids unforgeable, so one person cannot vote as many by inventing ids. A
logged-in organiser votes as `account:<id>`. What is stored is the plain id, never the signature.
"""

from __future__ import annotations

import re
import secrets
import time

from itsdangerous import BadSignature, Signer, TimestampSigner

from liveblog.errors import Forbidden

# Salted so a signature made for another purpose with the same key never passes as a participant.
SALT = "liveblog.participant.v1"
# Tokens issued now also carry when they were made, so a burst of brand-new ids (a script
# minting one per vote) can be told from a room of people who opened the page earlier.
TIMED_SALT = "liveblog.participant.v2"
# An id used within this many seconds of being issued is "fresh". People open the page, read the
# poll and then vote; a script mints an id and votes in the same breath.
FRESH_SECONDS = 10.0
ANON_ID = re.compile(r"^p_[A-Za-z0-9_-]{16,64}$")


class BadParticipant(Forbidden):
    code = "bad_participant"


class Participants:
    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("a secret key is required to sign participant ids")
        self._signer = Signer(secret_key, salt=SALT)  # tokens issued before ids carried a time
        self._timed = TimestampSigner(secret_key, salt=TIMED_SALT)

    def issue(self) -> tuple[str, str]:
        """A new anonymous participant: (id, signed token for the cookie)."""
        participant = "p_" + secrets.token_urlsafe(16)
        return participant, self._timed.sign(participant).decode()

    def verify(self, token: str) -> str:
        """The participant id in a signed token; BadParticipant when unsigned, forged or malformed."""
        return self.verify_with_age(token)[0]

    def verify_with_age(self, token: str) -> tuple[str, float | None]:
        """(participant id, seconds since it was issued, None for an older token without a time)."""
        if not token or len(token) > 200:
            raise BadParticipant(
                "the participant id is missing or malformed: reload the page to get a new one"
            )
        age: float | None = None
        try:
            raw, issued = self._timed.unsign(token, return_timestamp=True)
            participant = raw.decode()
            age = max(0.0, time.time() - issued.timestamp())
        except BadSignature:
            try:
                participant = self._signer.unsign(token).decode()
            except BadSignature:
                raise BadParticipant(
                    "the participant id is not signed by this server: reload the page to get a new one"
                ) from None
        if not ANON_ID.match(participant):
            raise BadParticipant("the participant id is malformed: reload the page to get a new one")
        return participant, age

    @staticmethod
    def for_account(account_id: int) -> str:
        return f"account:{account_id}"

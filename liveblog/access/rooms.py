"""Room codes: a short code per session, shown in the room (the big screen) and to its organisers,
that a poll or Q&A set to "people in the room" asks of everyone taking part.

The code is derived from the server's secret key and the session id, so every process of a
deployment agrees on it without storing it. It proves that someone saw the room's screen (or was
told the code), nothing more: docs/protocol-votes.md says what each setting prevents.
"""

from __future__ import annotations

import hashlib
import hmac

# No 0/O, 1/I/L: read off a projector at the back of a hall and typed on a phone.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 6  # 31^6 ≈ 900 million: not guessable at the vote rate limits


class RoomCodes:
    def __init__(self, secret_key: str) -> None:
        self._key = (secret_key or "").encode()

    def code_for(self, session_id: str) -> str:
        digest = hmac.new(self._key, f"liveblog.room.v1:{session_id}".encode(), hashlib.sha256).digest()
        number = int.from_bytes(digest[:8], "big")
        out = []
        for _ in range(LENGTH):
            number, index = divmod(number, len(ALPHABET))
            out.append(ALPHABET[index])
        return "".join(out)

    def valid(self, session_id: str, code: str | None) -> bool:
        if not code:
            return False
        typed = "".join(code.split()).upper().replace("-", "")
        return hmac.compare_digest(typed.encode(), self.code_for(session_id).encode())

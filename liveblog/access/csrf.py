"""CSRF tokens: a per-session secret that every form and cookie-authenticated request carries.

The Origin/Referer rule (origins.py) stops most cross-site requests; the token is the second
wall, for browsers or proxies that drop both headers. The token is an HMAC keyed by the browser's
session: its login token when logged in (so a login gets a fresh CSRF token, and an attacker who
plants a cookie learns nothing), otherwise a random `lb_csrf` cookie. Forms send it as the hidden
field `csrf_token`, scripts as the `X-CSRF-Token` header. Requests authenticated by a bearer token
(API scripts) carry no ambient credential a foreign page could borrow, and need none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

FIELD = "csrf_token"
HEADER = "x-csrf-token"
COOKIE = "lb_csrf"
PURPOSE = b"liveblog.csrf.v1"


def new_browser_session() -> str:
    """The random value of a browser's `lb_csrf` cookie."""
    return secrets.token_urlsafe(24)


def token_for(session_secret: str) -> str:
    return hmac.new(session_secret.encode(), PURPOSE, hashlib.sha256).hexdigest()[:40]


def token_valid(session_secret: str | None, token: str | None) -> bool:
    if not session_secret or not token:
        return False
    return hmac.compare_digest(token_for(session_secret), token.strip())

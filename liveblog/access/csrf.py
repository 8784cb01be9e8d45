"""CSRF tokens: a per-session secret that every form and cookie-authenticated request carries.

The Origin/Referer rule (origins.py) stops most cross-site requests; the token is the second
wall, for browsers or proxies that drop both headers. The token is an HMAC keyed by the server's
secret key (`LIVEBLOG_SECRET_KEY`) over the ids of the credentials the request carries: its logins
(the id the server keeps of a login, the hash of its token; an organiser's and a reader's both,
when both cookies are there), else its random `lb_csrf` cookie, else its participant cookie. So
nobody can compute a token offline, and a cookie planted beside a real login (a sibling subdomain
can plant one) changes the token to one its planter cannot know. Forms send it as the hidden
field `csrf_token`, scripts as the `X-CSRF-Token` header. Requests authenticated by a bearer token
(API scripts) carry no ambient credential a foreign page could borrow, and need none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from liveblog.storage import hash_token

FIELD = "csrf_token"
HEADER = "x-csrf-token"
COOKIE = "lb_csrf"
PURPOSE = b"liveblog.csrf.v2"


def new_browser_session() -> str:
    """The random value of a browser's `lb_csrf` cookie."""
    return secrets.token_urlsafe(24)


def login_id(login_token: str) -> str:
    """The id of a login session, as the server keeps it (login_sessions.token_hash)."""
    return "login:" + hash_token(login_token)


def browser_id(value: str) -> str:
    return "browser:" + hash_token(value)


def participant_id(token: str) -> str:
    return "participant:" + hash_token(token)


def token_for(secret_key: str, ids: tuple[str, ...]) -> str:
    """The token of a session made of these credential ids (order matters; see the callers)."""
    message = PURPOSE + b"\n" + "\n".join(ids).encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:40]


def token_valid(secret_key: str, ids: tuple[str, ...], token: str | None) -> bool:
    if not ids or not token:
        return False
    return hmac.compare_digest(token_for(secret_key, ids), token.strip())

"""The same-origin rule: which browser origins may change state or open our websockets.

An origin is scheme, host and port, all three compared: `https://host:8000` is not the origin of a
page served as `http://host:8000`. A request's own origin is its scheme (as the server saw it,
after a trusted proxy's X-Forwarded-Proto) and its Host header; `server.public_url` and
`server.allowed_origins` add more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

# A websocket's scheme names the page origin it belongs to.
PAGE_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
DEFAULT_PORT = {"http": 80, "https": 443}


def normalise(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, lower case, default port dropped; None when not http(s)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORT[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def own_origin(scheme: str, host: str) -> str | None:
    return normalise(f"{PAGE_SCHEME.get(scheme, scheme)}://{host}") if host else None


def origin_allowed(headers: Mapping[str, str], allowed: Iterable[str], scheme: str) -> bool:
    """False when the request comes from a foreign page.

    The Origin header decides when present ("null", an opaque origin, is foreign). Without it, a
    Referer decides (browsers omit Origin on some same-origin requests; a page that suppresses
    Origin still sends a foreign Referer or none). With neither, the request does not come from a
    page (a script, curl): the CSRF token rule (csrf.py) covers those that carry our cookies.
    `scheme` is the request's as the server saw it: "http", "https", "ws" or "wss".
    """
    origin = headers.get("origin")
    if origin is None:
        origin = headers.get("referer")
        if not origin:
            return True
    elif origin.strip() == "null":
        return False
    claimed = normalise(origin)
    if claimed is None:
        return False
    if claimed == own_origin(scheme, headers.get("host", "")):
        return True
    return claimed in {normalise(a) for a in allowed}

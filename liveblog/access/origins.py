"""The same-origin rule: which browser origins may change state or open our websockets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit


def origin_allowed(headers: Mapping[str, str], allowed: Iterable[str]) -> bool:
    """False when the request carries a foreign (or opaque "null") Origin."""
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    if origin.rstrip("/") in {a.rstrip("/") for a in allowed}:
        return True
    host = headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()

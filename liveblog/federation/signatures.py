"""HTTP Signatures as the fediverse uses them: draft-cavage-http-signatures-12 with `rsa-sha256`
(RSASSA-PKCS1-v1_5 over SHA-256) and a `Digest: SHA-256=` header on bodies, as Mastodon sends and
expects. RFC 9421 (HTTP Message Signatures) is not what Mastodon speaks yet.

The cryptography is the `cryptography` package's (maintained, OpenSSL underneath); the signature
format (which headers, in which order, how the string to sign is built) is these few lines, as
no maintained Python library speaks cavage: `http-message-signatures` does RFC 9421 only,
`httpsig` was last released in 2018, `bovine` brings aiohttp and pins an older cryptography.
tests/test_federation_interop.py checks our signatures with independent implementations (npm
`http-signature`, Joyent's reference one, and Fedify), tests/test_federation_bovine.py with bovine
(which also signs what it sends to us, its own way).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_BITS = 2048  # Mastodon's own; 4096 would quadruple the signing cost of every delivery
# A signed request's Date may be this old (Mastodon allows 12 hours, and an hour in the future).
MAX_AGE_SECONDS = 12 * 3600
MAX_SKEW_SECONDS = 3600
PARAM = re.compile(r'\s*([a-zA-Z]+)\s*=\s*"([^"]*)"\s*(?:,|$)')


class SignatureError(Exception):
    """A request whose signature is missing, malformed, stale or wrong; the message says which."""


def new_key_pair() -> tuple[str, str]:
    """(public PEM, private PEM) of a new RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return public, private


@functools.lru_cache(maxsize=4)
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@functools.lru_cache(maxsize=1024)
def _public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise SignatureError(f"the key is not a PEM public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("the key is not an RSA key (only rsa-sha256 is accepted)")
    return key


def digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def body_digest_matches(header: str, body: bytes) -> bool:
    """Whether a Digest header (RFC 3230) carries the body's SHA-256. Its algorithm names are
    case-insensitive: Mastodon sends `SHA-256=`, bovine `sha-256=`. Only SHA-256 is sent by the
    servers we know; a header without it is refused, not skipped."""
    for instance in header.split(","):
        algorithm, _, value = instance.strip().partition("=")
        if algorithm.lower() == "sha-256":
            return value == digest(body).removeprefix("SHA-256=")
    return False


CONTENT_DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def content_digest_matches(header: str, body: bytes) -> bool:
    """Whether a Content-Digest header (RFC 9530, a structured dictionary such as
    `sha-256=:BASE64:`) carries the body's SHA-256 or SHA-512, and no other value for either.
    Other algorithms are not checked (RFC 9530 lets a receiver ignore them)."""
    checked = False
    for member in header.split(","):
        algorithm, _, value = member.partition(";")[0].strip().partition("=")
        known = CONTENT_DIGESTS.get(algorithm.lower())
        if known is None:
            continue
        if not (len(value) > 1 and value.startswith(":") and value.endswith(":")):
            return False
        if value[1:-1] != base64.b64encode(known(body).digest()).decode():
            return False
        checked = True
    return checked


def http_date(moment: datetime | None = None) -> str:
    return format_datetime(moment or datetime.now(UTC), usegmt=True)


def signing_string(names: list[str], method: str, target: str, headers: Mapping[str, str]) -> str:
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name in headers:
            lines.append(f"{name}: {headers[name]}")
        else:
            raise SignatureError(f"the signature covers {name}, which the request does not have")
    return "\n".join(lines)


def sign(method: str, url: str, private_pem: str, key_id: str, body: bytes | None = None) -> dict[str, str]:
    """The headers that sign a request: Host, Date, Digest (with a body) and Signature."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    headers = {"host": parts.netloc, "date": http_date()}
    names = ["(request-target)", "host", "date"]
    if body is not None:
        headers["digest"] = digest(body)
        names.append("digest")
    text = signing_string(names, method, target, headers)
    signature = _private_key(private_pem).sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(names)}",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    return headers


def parse(header: str) -> dict[str, str]:
    """The parameters of a Signature header; SignatureError when it is not one."""
    params: dict[str, str] = {}
    rest = header.strip()
    while rest:
        match = PARAM.match(rest)
        if match is None:
            raise SignatureError("the Signature header is malformed")
        params[match.group(1)] = match.group(2)
        rest = rest[match.end() :]
    if "keyId" not in params or "signature" not in params:
        raise SignatureError("the Signature header lacks keyId or signature")
    return params


def check(
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes | None,
    params: dict[str, str],
    public_pem: str,
    now: datetime | None = None,
) -> None:
    """Raise SignatureError unless `params` (a parsed Signature header) sign this request with
    the key: its covered headers, a fresh Date, and with a body a Digest that matches it.
    `headers` are the request's, names in lower case."""
    algorithm = params.get("algorithm", "rsa-sha256").lower()
    if algorithm not in ("rsa-sha256", "hs2019"):  # hs2019: "ask the key", which is RSA here
        raise SignatureError(f"unsupported signature algorithm {algorithm[:40]!r}")
    names = params.get("headers", "date").lower().split()
    if missing := sorted({"(request-target)", "host", "date"} - set(names)):
        raise SignatureError(f"the signature must cover {', '.join(missing)}")
    if body is not None:
        # Digest (RFC 3230, what Mastodon sends) or Content-Digest (RFC 9530, bovine can send it):
        # whichever the signature covers must match the body.
        if "digest" not in names and "content-digest" not in names:
            raise SignatureError("the signature must cover digest (or content-digest)")
        if "digest" in names and not body_digest_matches(headers.get("digest", ""), body):
            raise SignatureError("the Digest header does not match the body")
        if "content-digest" in names and not content_digest_matches(headers.get("content-digest", ""), body):
            raise SignatureError("the Content-Digest header does not match the body")
    try:
        sent = parsedate_to_datetime(headers.get("date", ""))
    except (TypeError, ValueError):
        raise SignatureError("the Date header is not a date") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    age = ((now or datetime.now(UTC)) - sent).total_seconds()
    if age > MAX_AGE_SECONDS or age < -MAX_SKEW_SECONDS:
        raise SignatureError("the Date header is too far from now")
    text = signing_string(names, method, target, headers)
    try:
        signature = base64.b64decode(params["signature"], validate=True)
        _public_key(public_pem).verify(signature, text.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not match") from None

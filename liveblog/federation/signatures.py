"""HTTP Signatures as the fediverse uses them: draft-cavage-http-signatures-12 with `rsa-sha256`
(RSASSA-PKCS1-v1_5 over SHA-256) and a `Digest: SHA-256=` header on bodies, as Mastodon sends and
expects; we sign so. Incoming, we also accept what other servers send: `hs2019` over `(created)`,
`Content-Digest` (RFC 9530), and RFC 9421 (HTTP Message Signatures) with RSA keys.

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
from dataclasses import dataclass
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
# keyId="…" and the like; created and expires are integers, unquoted (draft-cavage-12 §2.1).
PARAM = re.compile(r'\s*([a-zA-Z]+)\s*=\s*(?:"([^"]*)"|(\d+))\s*(?:,|$)')


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


def signing_string(
    names: list[str],
    method: str,
    target: str,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
) -> str:
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name in ("(created)", "(expires)"):
            value = (params or {}).get(name.strip("()"), "")
            if not value.isdigit():
                raise SignatureError(f"the signature covers {name} but has no {name.strip('()')} time")
            lines.append(f"{name}: {value}")
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
        params[match.group(1)] = match.group(2) if match.group(2) is not None else match.group(3)
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
    if missing := sorted({"(request-target)", "host"} - set(names)):
        raise SignatureError(f"the signature must cover {', '.join(missing)}")
    if "date" not in names and "(created)" not in names:
        raise SignatureError("the signature must cover date (or (created))")
    if ("(created)" in names or "(expires)" in names) and algorithm != "hs2019":
        # The draft: an implementation must refuse them with an rsa-… algorithm name.
        raise SignatureError("(created) and (expires) are signed with algorithm hs2019 only")
    _check_body(names, headers, body)
    if "date" in names:
        try:
            sent = parsedate_to_datetime(headers.get("date", ""))
        except (TypeError, ValueError):
            raise SignatureError("the Date header is not a date") from None
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        _check_age(sent, now, "the Date header")
    text = signing_string(names, method, target, headers, params)  # (created) and (expires) are numbers
    if "(created)" in names:
        _check_age(_moment(int(params["created"])), now, "the signature's (created) time")
    if "(expires)" in names:
        _check_expiry(int(params["expires"]), now)
    _verify(params["signature"], text, public_pem)


def _moment(seconds: int) -> datetime:
    """A signature's created or expires time (seconds since 1970), as the moment it names."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise SignatureError(f"{str(seconds)[:20]} is not a time") from None


def _check_expiry(expires: int, now: datetime | None) -> None:
    if _moment(expires) < (now or datetime.now(UTC)):
        raise SignatureError("the signature has expired")


def _check_body(names: list[str], headers: Mapping[str, str], body: bytes | None) -> None:
    """With a body, the signature covers Digest (RFC 3230, what Mastodon sends) or Content-Digest
    (RFC 9530, bovine can send it), and whichever it covers matches the body."""
    if body is None:
        return
    if "digest" not in names and "content-digest" not in names:
        raise SignatureError("the signature must cover digest (or content-digest)")
    if "digest" in names and not body_digest_matches(headers.get("digest", ""), body):
        raise SignatureError("the Digest header does not match the body")
    if "content-digest" in names and not content_digest_matches(headers.get("content-digest", ""), body):
        raise SignatureError("the Content-Digest header does not match the body")


def _check_age(sent: datetime, now: datetime | None, what: str) -> None:
    age = ((now or datetime.now(UTC)) - sent).total_seconds()
    if age > MAX_AGE_SECONDS or age < -MAX_SKEW_SECONDS:
        raise SignatureError(f"{what} is too far from now")


def _verify(signature: str | bytes, text: str, public_pem: str) -> None:
    """RSASSA-PKCS1-v1_5 over SHA-256 of `text`; `signature` in base64 (or bytes)."""
    try:
        raw = signature if isinstance(signature, bytes) else base64.b64decode(signature, validate=True)
        _public_key(public_pem).verify(raw, text.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not match") from None


# -- RFC 9421 (HTTP Message Signatures) ----------------------------------------------------------
# One signature, rsa-v1_5-sha256, plain component names (no `;sf`, `;key`, `;req` parameters),
# `created` for freshness: `@method @target-uri content-digest`, or `@method @path @authority`
# as bovine's verifier reads them.

SF_KEY = r"[a-z*][a-z0-9_.*-]*"
SF_PARAM = re.compile(
    rf';\s*({SF_KEY})(?:=("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|[A-Za-z*][^;,\s]*|\?[01]|:[^:]*:))?'
)
SF_MEMBER = re.compile(rf"\s*({SF_KEY})=(\(([^()]*)\)((?:{SF_PARAM.pattern})*))\s*(?:,|$)")
SF_COMPONENT = re.compile(r'"([^"]*)"((?:;[^\s)"]*)?)\s*')


@dataclass(frozen=True)
class MessageSignature:
    """One RFC 9421 signature: its covered components, its parameters as sent (what the
    `@signature-params` line signs) and parsed, and the signature's bytes."""

    components: list[str]
    params_text: str
    params: dict[str, str | int]
    signature: bytes

    @property
    def key_id(self) -> str:
        return str(self.params["keyid"])


def parse_message_signature(signature_input: str, signature: str) -> MessageSignature:
    """The first signature of RFC 9421 `Signature-Input` and `Signature` headers (structured
    dictionaries); SignatureError when they are not ones we can check."""
    match = SF_MEMBER.match(signature_input)
    if match is None:
        raise SignatureError("the Signature-Input header is malformed")
    label, params_text, inner = match.group(1, 2, 3)
    components = []
    for component in SF_COMPONENT.finditer(inner):
        if component.group(2):
            raise SignatureError(
                f"component parameters are not supported ({component.group(0)[:40].strip()})"
            )
        components.append(component.group(1))
    if " ".join(f'"{c}"' for c in components) != " ".join(inner.split()):
        raise SignatureError("the Signature-Input header is malformed")
    params: dict[str, str | int] = {}
    for name, value in SF_PARAM.findall(params_text[len(inner) + 2 :]):  # after "(" inner ")"
        params[name] = int(value) if value.lstrip("-").isdigit() else value.strip('"')
    if not isinstance(params.get("keyid"), str):
        raise SignatureError("the Signature-Input header lacks keyid")
    found = re.search(rf"(?:^|,)\s*{re.escape(label)}=:([A-Za-z0-9+/=]*):", signature)
    if found is None:
        raise SignatureError(f"the Signature header has no signature {label[:40]!r}")
    try:
        raw = base64.b64decode(found.group(1), validate=True)
    except ValueError:
        raise SignatureError("the Signature header is malformed") from None
    return MessageSignature(components, params_text, params, raw)


def check_message(
    method: str,
    target_uri: str,
    headers: Mapping[str, str],
    body: bytes | None,
    sig: MessageSignature,
    public_pem: str,
    now: datetime | None = None,
) -> None:
    """Raise SignatureError unless `sig` (RFC 9421) signs this request with the key: its method
    and target, a fresh `created`, and with a body a digest that matches it. `target_uri` is the
    request's full URL as the sender saw it; `headers` names in lower case."""
    algorithm = sig.params.get("alg", "rsa-v1_5-sha256")
    if algorithm != "rsa-v1_5-sha256":
        raise SignatureError(f"unsupported signature algorithm {str(algorithm)[:40]!r}")
    names = sig.components
    if "@method" not in names or not (
        {"@target-uri", "@request-target"} & set(names) or {"@authority", "@path"} <= set(names)
    ):
        raise SignatureError("the signature must cover @method and @target-uri (or @authority and @path)")
    _check_body(names, headers, body)
    created = sig.params.get("created")
    if not isinstance(created, int):
        raise SignatureError("the signature has no created time")
    _check_age(_moment(created), now, "the signature's created time")
    expires = sig.params.get("expires")
    if isinstance(expires, int):
        _check_expiry(expires, now)
    parts = urlsplit(target_uri)
    derived = {
        "@method": method.upper(),
        "@target-uri": target_uri,
        "@authority": headers.get("host", parts.netloc).lower(),
        "@scheme": parts.scheme.lower(),
        "@path": parts.path or "/",
        "@query": "?" + parts.query,
        "@request-target": (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
    }
    lines = []
    for name in names:
        if name in derived:
            lines.append(f'"{name}": {derived[name]}')
        elif name.startswith("@"):
            raise SignatureError(f"unsupported derived component {name[:40]}")
        elif name in headers:
            lines.append(f'"{name}": {headers[name].strip()}')
        else:
            raise SignatureError(f"the signature covers {name[:40]}, which the request does not have")
    lines.append(f'"@signature-params": {sig.params_text}')
    _verify(sig.signature, "\n".join(lines), public_pem)

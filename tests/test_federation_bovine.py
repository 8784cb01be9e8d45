"""Interoperability with bovine (PyPI `bovine`, a Python fediverse library nobody on this project
wrote; docs/federation.md): a server made of its code (tests/tools/bovine/peer.py, in a virtualenv
of its own) finds a session by its handle with bovine's WebFinger client and parses its actor,
follows it with a request signed by bovine's signer, checks our Accept and our notes with bovine's
signature checker and parses them with bovine's parser, replies, and unfollows. Each way bovine
signs differently from Mastodon (its lowercase `sha-256=` Digest, RFC 9530's `Content-Digest`,
its signed `content-type`) must be accepted, and so must an RFC 9421 signature in the form
bovine's verifier reads."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from liveblog.capture.notes import Author
from liveblog.federation.signatures import (
    SignatureError,
    check,
    check_message,
    http_date,
    new_key_pair,
    parse_message_signature,
    signing_string,
)
from liveblog.services import Services
from tests.conftest import Seed, eventually, query
from tests.test_federation_interop import control, https_server, peer_process

BOVINE = Path(__file__).resolve().parent / "tools" / "bovine"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bovine_python() -> Path:
    python = BOVINE / ".venv" / "bin" / "python"
    if not python.exists():
        pytest.fail(
            "tests/tools/bovine/.venv is not installed: run ./scripts/test (it installs bovine there)"
        )
    return python


@contextlib.asynccontextmanager
async def bovine_peer(python: Path, ca_file: Path, scratch: Path) -> AsyncIterator[str]:
    scratch.mkdir()  # its working directory: bovine keeps its JSON-LD cache there

    def command(port: int) -> list[str]:
        return [str(python), str(BOVINE / "peer.py"), str(port), str(ca_file)]

    async with peer_process("the bovine peer", command, scratch) as url:
        yield url


async def arrived(peer: str, kind: str, inbox: str = "bovine", count: int = 1) -> list[dict[str, Any]]:
    async def found() -> list[dict[str, Any]] | None:
        got = [a for a in await control(peer, "received") if a["type"] == kind and a["inbox"] == inbox]
        return got if len(got) >= count else None

    return await eventually(found, 30, f"{count} {kind} at bovine's {inbox}")  # type: ignore[no-any-return]


async def refusals(peer: str) -> list[dict[str, Any]]:
    return await control(peer, "refused")  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def world(tmp_path: Path, python: Path) -> AsyncIterator[tuple[str, Services, Seed, str]]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with (
        https_server(tmp_path, ca) as (url, services, s),
        bovine_peer(python, ca_file, tmp_path / "bovine") as peer,
    ):
        yield url, services, s, peer


async def write(services: Services, s: Seed, message: dict[str, Any]) -> int:
    invite = await services.accounts.invite_for_token(s.token)
    assert invite is not None
    ack = await services.notes.handle(
        s.session_id, Author.from_invite(invite), {"client_id": str(uuid.uuid4()), **message}
    )
    return ack.item_id


async def test_bovine_finds_a_session_by_its_handle_and_reads_its_actor(
    tmp_path: Path, bovine_python: Path
) -> None:
    async with world(tmp_path, bovine_python) as (url, services, s, peer):
        host = url.removeprefix("https://")
        found = await control(peer, "lookup", {"handle": f"@keynote@{host}"})
        actor = f"{url}/ap/sessions/{s.session_id}"
        assert found["id"] == actor
        assert found["preferredUsername"] == "keynote" and found["name"] == "Keynote"
        assert found["inbox"] == f"{actor}/inbox" and found["outbox"] == f"{actor}/outbox"
        # bovine looks the handle up again from the actor's preferredUsername and host: it is ours.
        assert found["acct"] == f"acct:keynote@{host}" and found["acct_verified"] is True
        assert found["identifiers"] == sorted([actor, f"acct:keynote@{host}"])
        assert found["keys"] == [{"id": f"{actor}#main-key", "controller": actor}]
        assert found["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
        # FEP-4adb: bovine looks an actor's URL up at its server; the answer names the actor.
        by_url = await control(peer, "webfinger", {"uri": actor, "domain": url})
        assert by_url == {"actor": actor, "verification_necessary": True}
        assert await refusals(peer) == []


async def test_bovine_follows_gets_notes_replies_and_unfollows(tmp_path: Path, bovine_python: Path) -> None:
    async with world(tmp_path, bovine_python) as (url, services, s, peer):
        actor = f"{url}/ap/sessions/{s.session_id}"
        peer_host = peer.removeprefix("http://")
        follows = {}
        for name in ("bovine", "other"):
            sent = await control(peer, "follow", {"as": name, "actor": actor})
            assert sent["status"] == 202, sent["text"]
            follows[name] = sent["activity"]
            (accept,) = await arrived(peer, "Accept", name)
            # Verified by bovine's checker with our key, and parsed as the Accept of that Follow.
            assert accept["owner"] == actor and accept["actor"] == actor
            assert accept["follow"] == follows[name]["id"]
        followers = await query(services.db, "SELECT handle FROM federation_followers ORDER BY handle")
        assert followers == [(f"@bovine@{peer_host}",), (f"@other@{peer_host}",)]

        item_id = await write(services, s, {"type": "note.create", "body": "Hello, bovine #interop"})
        (create,) = await arrived(peer, "Create")
        note = create["object"]
        assert create["owner"] == actor
        assert note["id"] == f"{url}/ap/notes/{item_id}" and note["type"] == "Note"
        assert "Hello, bovine" in note["content"]
        assert note["url"] == f"{url}/sessions/{s.session_id}#item-{item_id}"
        assert note["attributedTo"] == actor == note["attributed_to_id"]
        assert note["published"].startswith("20")
        assert create["headers"]["Digest"].startswith("SHA-256=")  # bovine checked it against the body

        await write(services, s, {"type": "note.update", "item_id": item_id, "body": "Hello again, bovine"})
        (update,) = await arrived(peer, "Update")
        assert "Hello again" in update["object"]["content"] and update["owner"] == actor

        # bovine likes the note, then fetches it (signed GET) and reads the count.
        sent = await control(peer, "like", {"as": "bovine", "object": note["id"], "inbox": f"{actor}/inbox"})
        assert sent["status"] == 202, sent["text"]
        fetched = await control(peer, "fetch", {"url": note["id"]})
        assert fetched["type"] == "Note" and "Hello again" in fetched["content"]
        assert fetched["likes"]["totalItems"] == 1 and fetched["shares"]["totalItems"] == 0

        # bovine replies to the note (to the session's inbox): it waits in the moderation queue.
        sent = await control(
            peer,
            "reply",
            {
                "as": "bovine",
                "note": update["note"],
                "inbox": f"{actor}/inbox",
                "content": "<p>Moo, agreed</p>",
            },
        )
        assert sent["status"] == 202, sent["text"]
        queue = await services.comments.moderation_queue()
        assert [(c.author, c.body) for c in queue.pending] == [(f"@bovine@{peer_host}", "Moo, agreed")]

        # bovine's Undo names the Follow by its id; then only "other" is sent the next note.
        sent = await control(
            peer, "undo", {"as": "bovine", "follow": follows["bovine"], "inbox": f"{actor}/inbox"}
        )
        assert sent["status"] == 202, sent["text"]
        followers = await query(services.db, "SELECT handle FROM federation_followers")
        assert followers == [(f"@other@{peer_host}",)]
        later = await write(services, s, {"type": "note.create", "body": "Only for the other one"})
        to_other = await arrived(peer, "Create", "other", count=2)
        assert [c["object"]["id"] for c in to_other] == [
            f"{url}/ap/notes/{item_id}",
            f"{url}/ap/notes/{later}",
        ]

        async def delivered() -> bool:
            return await query(services.db, "SELECT count(*) FROM federation_deliveries") == [(0,)]

        await eventually(delivered, 10, "the delivery queue to empty")
        received = [(a["inbox"], a["type"]) for a in await control(peer, "received")]
        assert received.count(("bovine", "Create")) == 1  # the first note only
        # The deletion of a note reaches the follower left, verified and parsed by bovine.
        await write(services, s, {"type": "note.delete", "item_id": later})
        (delete,) = await arrived(peer, "Delete", "other")
        assert delete["owner"] == actor and delete["object"] == f"{url}/ap/notes/{later}"

        # Our signed GETs of bovine's actors were verified by bovine too (authorized fetch).
        gets = await control(peer, "signed-gets")
        assert {g["path"] for g in gets} == {"/users/bovine", "/users/other"}
        assert {g["owner"] for g in gets} == {f"{url}/ap/actor"}
        assert await refusals(peer) == []


@pytest.mark.parametrize(
    ("digest", "content_type"),
    [
        ("legacy", None),  # bovine's default: `Digest: sha-256=...`, lowercase
        ("uppercase", None),  # `Digest: SHA-256=...`, as Mastodon
        ("rfc9530", None),  # `Content-Digest: sha-256=:...:` (RFC 9530), signed as content-digest
        ("rfc9421", None),  # RFC 9421 Signature-Input/Signature, as bovine's verifier reads them
        ("legacy", 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'),
    ],
)
async def test_a_follow_signed_each_way_bovine_can_is_accepted(
    tmp_path: Path, bovine_python: Path, digest: str, content_type: str | None
) -> None:
    async with world(tmp_path, bovine_python) as (url, services, s, peer):
        actor = f"{url}/ap/sessions/{s.session_id}"
        request = {"as": "bovine", "actor": actor, "digest": digest, "content_type": content_type}
        sent = await control(peer, "follow", request)
        assert sent["status"] == 202, sent["text"]
        (accept,) = await arrived(peer, "Accept")
        assert accept["follow"] == sent["activity"]["id"]


def test_a_content_digest_is_checked_against_the_body() -> None:
    """RFC 9530's Content-Digest, as bovine sends it, is held to the body as Digest is."""
    public, private = new_key_pair()
    body = b'{"type":"Follow"}'
    names = ["(request-target)", "host", "date", "content-digest"]

    def verify(content_digest: str) -> None:
        headers = {"host": "liveblog.example", "date": http_date(), "content-digest": content_digest}
        text = signing_string(names, "POST", "/ap/inbox", headers).encode()
        key = serialization.load_pem_private_key(private.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()
        params = {"keyId": "k", "headers": " ".join(names), "signature": signature}
        check("POST", "/ap/inbox", headers, body, params, public)

    sha256 = base64.b64encode(hashlib.sha256(body).digest()).decode()
    sha512 = base64.b64encode(hashlib.sha512(body).digest()).decode()
    verify(f"sha-256=:{sha256}:")
    verify(f"sha-512=:{sha512}:, sha-256=:{sha256}:")
    verify(f"unknown=:AAAA:, sha-256=:{sha256}:")
    for wrong in (
        "sha-256=:AAAA:",  # another body's
        f"sha-256=:{sha256}:, sha-512=:AAAA:",  # one right, one wrong
        f"sha-256={sha256}",  # not a byte sequence
        "unknown=:AAAA:",  # nothing we can check
        "",
    ):
        with pytest.raises(SignatureError, match="Content-Digest header does not match"):
            verify(wrong)


def rfc9421_headers(
    private: str, url: str, body: bytes, components: list[str], params: str, headers: dict[str, str]
) -> dict[str, str]:
    """Signature-Input and Signature (RFC 9421) over `components`, built by the RFC's rules."""
    parts = urlsplit(url)
    values = {"@method": "POST", "@target-uri": url, "@authority": parts.netloc, "@path": parts.path}
    inner = " ".join(f'"{c}"' for c in components)
    signed = f"({inner}){params}"
    base = [f'"{c}": {values[c] if c in values else headers[c]}' for c in components]
    text = "\n".join([*base, f'"@signature-params": {signed}']).encode()
    key = serialization.load_pem_private_key(private.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()
    return {**headers, "signature-input": f"sig1={signed}", "signature": f"sig1=:{signature}:"}


def test_rfc9421_signatures_are_checked() -> None:
    """RFC 9421 over `@method @target-uri content-digest`, and what is refused."""
    public, private = new_key_pair()
    url = "https://liveblog.example/ap/inbox"
    body = b'{"type":"Follow"}'
    sha256 = base64.b64encode(hashlib.sha256(body).digest()).decode()
    plain = {"host": "liveblog.example", "content-digest": f"sha-256=:{sha256}:"}
    now = int(datetime.now(UTC).timestamp())
    mastodon = ["@method", "@target-uri", "content-digest"]
    fresh = f';created={now};keyid="https://remote.example/users/a#main-key"'

    def verify(headers: dict[str, str], sent: bytes = body) -> None:
        sig = parse_message_signature(headers["signature-input"], headers["signature"])
        check_message("POST", url, headers, sent, sig, public)

    verify(rfc9421_headers(private, url, body, mastodon, fresh, plain))
    refused = [
        (
            "the Content-Digest header does not match",
            rfc9421_headers(private, url, body, mastodon, fresh, plain),
            b"{}",
        ),
        (
            "the signature does not match",
            rfc9421_headers(new_key_pair()[1], url, body, mastodon, fresh, plain),
            body,
        ),
        (
            "no created time",
            rfc9421_headers(private, url, body, mastodon, ';keyid="k"', plain),
            body,
        ),
        (
            "created time is too far from now",
            rfc9421_headers(private, url, body, mastodon, f';created={now - 13 * 3600};keyid="k"', plain),
            body,
        ),
        (
            "is not a time",
            rfc9421_headers(private, url, body, mastodon, f';created={10**30};keyid="k"', plain),
            body,
        ),
        (
            "has expired",
            rfc9421_headers(
                private, url, body, mastodon, f';created={now};expires={now - 60};keyid="k"', plain
            ),
            body,
        ),
        (
            "unsupported signature algorithm",
            rfc9421_headers(private, url, body, mastodon, f'{fresh};alg="ed25519"', plain),
            body,
        ),
        (
            "must cover @method",
            rfc9421_headers(private, url, body, ["@method", "content-digest"], fresh, plain),
            body,
        ),
        (
            "must cover digest",
            rfc9421_headers(private, url, body, ["@method", "@target-uri"], fresh, plain),
            body,
        ),
    ]
    for message, headers, sent in refused:
        with pytest.raises(SignatureError, match=message):
            verify(headers, sent)
    with pytest.raises(SignatureError, match="component parameters are not supported"):
        parse_message_signature(f'sig1=("@method" "content-digest";sf){fresh}', "sig1=:AAAA:")
    # A key id with a parenthesis in it is read whole.
    odd = parse_message_signature(
        f'sig1=("@method");created={now};keyid="https://r.example/(a)"', "sig1=:AAAA:"
    )
    assert odd.key_id == "https://r.example/(a)" and odd.params["created"] == now
    with pytest.raises(SignatureError, match="lacks keyid"):
        parse_message_signature(f'sig1=("@method");created={now}', "sig1=:AAAA:")

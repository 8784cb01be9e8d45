"""Following a session from another fediverse server (docs/federation.md): signed Follow →
Accept, Undo, refused signatures, key rotation, organisers removing followers. The other
server is tests/fediverse_peer.py, on loopback."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from liveblog.archive.comments import Limiter
from liveblog.federation.signatures import digest, http_date, new_key_pair, sign
from liveblog.services import Services
from tests.conftest import LiveServer, Seed, organiser_csrf, query, run_server, seed, settings_for
from tests.fediverse_peer import AP_JSON, Peer, running_peer
from tests.test_federation_bovine import rfc9421_headers


@dataclasses.dataclass
class World:
    live: LiveServer
    seed: Seed
    peer: Peer

    @property
    def session_actor(self) -> str:
        return f"{self.live.url}/ap/sessions/{self.seed.session_id}"

    @property
    def inbox(self) -> str:
        return f"{self.session_actor}/inbox"

    def follow(self, who: str, number: int = 1) -> dict[str, Any]:
        actor = self.peer.actor(who)
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{actor}/follows/{number}",
            "type": "Follow",
            "actor": actor,
            "object": self.session_actor,
        }

    async def followers(self) -> list[tuple[Any, ...]]:
        return await query(
            self.live.services.db,
            "SELECT actor_id, follower, handle, inbox, shared_inbox FROM federation_followers ORDER BY follower",
        )


async def make_world(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, allow_private: bool = True
) -> AsyncIterator[World]:
    settings = settings_for(request, tmp_path, backend, federation={"allow_private_addresses": allow_private})
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        async with run_server(settings, services) as live, running_peer() as peer:
            yield World(live, s, peer)
    finally:
        await services.close()


@pytest.fixture
async def world(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> AsyncIterator[World]:
    async for w in make_world(request, tmp_path, backend):
        yield w


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_follow_is_accepted_and_undo_removes_the_follower(world: World) -> None:
    alice = world.peer.add("alice")
    answer = await world.peer.post(world.inbox, world.follow("alice"), as_="alice")
    assert answer.status_code == 202, answer.text
    assert await world.followers() == [
        (
            world.seed.session_id,
            alice,
            f"@alice@{world.peer.url.removeprefix('http://')}",
            f"{alice}/inbox",
            f"{world.peer.url}/inbox",
        )
    ]
    accept = await world.peer.wait_for("Accept")
    assert accept.path == "/users/alice/inbox"
    assert accept.verified == "ok"  # signed with the session's key, fetched from its actor
    assert accept.activity["actor"] == world.session_actor
    assert accept.activity["object"]["id"] == world.follow("alice")["id"]
    assert accept.headers["signature"].startswith(f'keyId="{world.session_actor}#main-key"')
    async with world.live.client() as client:
        followers = (await client.get(f"{world.session_actor}/followers", headers={"accept": AP_JSON})).json()
    assert followers["totalItems"] == 1

    undo = {
        "id": f"{alice}/undo/1",
        "type": "Undo",
        "actor": alice,
        "object": world.follow("alice"),
    }
    assert (await world.peer.post(f"{world.live.url}/ap/inbox", undo, as_="alice")).status_code == 202
    assert await world.followers() == []


async def test_an_undo_by_id_and_an_account_deletion_end_follows(world: World) -> None:
    alice = world.peer.add("alice")
    await world.peer.post(world.inbox, world.follow("alice", 7), as_="alice")
    undo = {"id": f"{alice}/undo/7", "type": "Undo", "actor": alice, "object": f"{alice}/follows/7"}
    await world.peer.post(world.inbox, undo, as_="alice")
    assert await world.followers() == []

    await world.peer.post(world.inbox, world.follow("alice", 8), as_="alice")
    assert len(await world.followers()) == 1
    delete = {"id": f"{alice}#delete", "type": "Delete", "actor": alice, "object": alice}
    assert (await world.peer.post(f"{world.live.url}/ap/inbox", delete, as_="alice")).status_code == 202
    assert await world.followers() == []


async def test_unsigned_forged_and_stale_activities_are_refused(world: World) -> None:
    world.peer.add("alice")
    world.peer.add("mallory")
    follow = world.follow("alice")
    async with httpx.AsyncClient(timeout=10) as client:
        unsigned = await client.post(
            world.inbox, content=json.dumps(follow), headers={"content-type": AP_JSON}
        )
    assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "unsigned"

    # Signed, but by another account than the activity's actor.
    forged = await world.peer.post(world.inbox, follow, as_="mallory")
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "wrong_actor"

    # A body changed after signing: the Digest no longer matches.
    tampered = await world.peer.post(
        world.inbox, follow, as_="alice", body=json.dumps({**follow, "object": "x"}).encode()
    )
    assert tampered.status_code == 401 and "Digest" in tampered.json()["error"]["message"]

    # A signature made 13 hours ago (replayed).
    payload = json.dumps(follow).encode()
    old = http_date(datetime.now(UTC) - timedelta(hours=13))
    headers = sign_with_date(
        world.inbox, world.peer.keys["alice"][1], f"{follow['actor']}#main-key", payload, old
    )
    async with httpx.AsyncClient(timeout=10) as client:
        stale = await client.post(world.inbox, content=payload, headers={**headers, "content-type": AP_JSON})
    assert stale.status_code == 401 and "Date" in stale.json()["error"]["message"]

    # A signature of alice's request with a key that is not alice's.
    headers = sign("POST", world.inbox, new_key_pair()[1], f"{follow['actor']}#main-key", payload)
    async with httpx.AsyncClient(timeout=10) as client:
        wrong = await client.post(world.inbox, content=payload, headers={**headers, "content-type": AP_JSON})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_signature"
    assert await world.followers() == []


def sign_with_date(url: str, private_pem: str, key_id: str, body: bytes, date: str) -> dict[str, str]:
    """A signature as `sign` makes, over a Date of our choosing."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    from liveblog.federation.signatures import digest

    path = url.split("://", 1)[1].split("/", 1)[1]
    host = url.split("://", 1)[1].split("/", 1)[0]
    text = f"(request-target): post /{path}\nhost: {host}\ndate: {date}\ndigest: {digest(body)}"
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    signature = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()  # type: ignore[union-attr,call-arg]
    return {
        "host": host,
        "date": date,
        "digest": digest(body),
        "signature": f'keyId="{key_id}",algorithm="rsa-sha256",headers="(request-target) host date digest",'
        f'signature="{signature}"',
    }


async def test_an_hs2019_signature_over_created_instead_of_date_is_accepted(world: World) -> None:
    """draft-cavage-12's `(created)` and `(expires)` (with hs2019, as Mastodon accepts them): the
    signature's own time instead of a Date header."""
    world.peer.add("alice")
    follow = world.follow("alice")
    payload = json.dumps(follow).encode()
    now = int(datetime.now(UTC).timestamp())

    async def post(created: int, algorithm: str = "hs2019", expires: int | None = None) -> httpx.Response:
        names = ["(request-target)", "host", "(created)", *(["(expires)"] if expires else []), "digest"]
        host = world.inbox.split("/")[2]
        values = {
            "(request-target)": f"post /{world.inbox.split('/', 3)[3]}",
            "host": host,
            "(created)": str(created),
            "(expires)": str(expires),
            "digest": digest(payload),
        }
        text = "\n".join(f"{name}: {values[name]}" for name in names).encode()
        key = serialization.load_pem_private_key(world.peer.keys["alice"][1].encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()
        params = f'keyId="{follow["actor"]}#main-key",algorithm="{algorithm}",created={created},'
        params += f"expires={expires}," if expires else ""
        params += f'headers="{" ".join(names)}",signature="{signature}"'
        headers = {"host": host, "digest": digest(payload), "signature": params, "content-type": AP_JSON}
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(world.inbox, content=payload, headers=headers)

    stale = await post(now - 13 * 3600)
    assert stale.status_code == 401 and "(created)" in stale.json()["error"]["message"]
    absurd = await post(10**30)
    assert absurd.status_code == 401 and "is not a time" in absurd.json()["error"]["message"]
    expired = await post(now - 60, expires=now - 30)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    rsa_named = await post(now, algorithm="rsa-sha256")  # the draft: (created) only with hs2019
    assert rsa_named.status_code == 401 and "hs2019" in rsa_named.json()["error"]["message"]
    assert await world.followers() == []
    accepted = await post(now, expires=now + 300)
    assert accepted.status_code == 202, accepted.text
    assert len(await world.followers()) == 1


async def test_an_rfc9421_signature_over_the_target_uri_is_accepted(world: World) -> None:
    """RFC 9421 through the server: `@target-uri` is our address as the sender saw it."""
    world.peer.add("alice")
    follow = world.follow("alice")
    payload = json.dumps(follow).encode()
    content_digest = "sha-256=:" + digest(payload).removeprefix("SHA-256=") + ":"
    created = int(datetime.now(UTC).timestamp())
    params = f';created={created};keyid="{follow["actor"]}#main-key";alg="rsa-v1_5-sha256"'
    components = ["@method", "@target-uri", "content-digest"]
    private = world.peer.keys["alice"][1]
    plain = {"content-digest": content_digest, "content-type": AP_JSON}
    elsewhere = rfc9421_headers(
        private, world.inbox.replace("/ap/", "/other/"), payload, components, params, plain
    )
    async with httpx.AsyncClient(timeout=10) as client:
        wrong = await client.post(world.inbox, content=payload, headers=elsewhere)
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_signature"
        headers = rfc9421_headers(private, world.inbox, payload, components, params, plain)
        answer = await client.post(world.inbox, content=payload, headers=headers)
    assert answer.status_code == 202, answer.text
    assert len(await world.followers()) == 1


async def test_remote_keys_are_cached_and_fetched_again_once_after_rotation(world: World) -> None:
    world.peer.add("alice")
    await world.peer.post(world.inbox, world.follow("alice", 1), as_="alice")
    key_fetches = world.peer.fetches.count("/users/alice")
    await world.peer.post(world.inbox, world.follow("alice", 2), as_="alice")
    # The key was cached: only the follower's account is read again (for its inbox).
    assert world.peer.fetches.count("/users/alice") == key_fetches + 1

    world.peer.keys["alice"] = new_key_pair()  # alice's server rotates her key
    before = world.peer.fetches.count("/users/alice")
    answer = await world.peer.post(world.inbox, world.follow("alice", 3), as_="alice")
    assert answer.status_code == 202, answer.text
    assert world.peer.fetches.count("/users/alice") == before + 2  # the key once, the account once
    rows = await query(world.live.services.db, "SELECT public_pem FROM federation_remote_keys")
    assert rows == [(world.peer.keys["alice"][0],)]


async def test_organisers_remove_a_follower_and_their_server_is_told(world: World) -> None:
    alice = world.peer.add("alice")
    await world.peer.post(world.inbox, world.follow("alice"), as_="alice")
    await world.peer.wait_for("Accept")
    s = world.seed
    async with world.live.client(cookies={"lb_login": s.login_token}) as client:
        page = await client.get(f"/organise/events/{s.event_id}/fediverse")
        assert f"@alice@{world.peer.url.removeprefix('http://')}" in page.text
        removed = await client.post(
            f"/organise/events/{s.event_id}/fediverse",
            data={"action": "remove", "kind": "session", "id": s.session_id, "follower": alice},
            headers=organiser_csrf(s.login_token),
        )
    assert removed.status_code == 303
    assert await world.followers() == []
    reject = await world.peer.wait_for("Reject")
    assert reject.verified == "ok"
    assert reject.activity["object"]["id"] == world.follow("alice")["id"]


async def test_no_follow_when_the_event_switched_federation_off(world: World) -> None:
    world.peer.add("alice")
    await world.live.services.federation.switch(world.seed.event_id, False)  # type: ignore[union-attr]
    answer = await world.peer.post(world.inbox, world.follow("alice"), as_="alice")
    assert answer.status_code == 404
    assert await world.followers() == []


async def test_keys_are_not_fetched_from_private_addresses_by_default(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    async for w in make_world(request, tmp_path, backend, allow_private=False):
        w.peer.add("alice")
        answer = await w.peer.post(w.inbox, w.follow("alice"), as_="alice")
        assert answer.status_code == 401
        assert "loopback" in answer.json()["error"]["message"]
        assert w.peer.fetches == []  # nothing was asked of the peer
        assert await w.followers() == []


async def test_our_fetches_are_signed_for_servers_in_authorized_fetch_mode(world: World) -> None:
    # alice's server answers only signed GETs, checking them as Mastodon's authorized fetch
    # does: a key fetched from its keyId (our instance actor), the signature over the request.
    world.peer.authorized_fetch = True
    alice = world.peer.add("alice")
    async with httpx.AsyncClient(timeout=10) as client:
        unsigned = await client.get(alice, headers={"accept": AP_JSON})
    assert unsigned.status_code == 401 and world.peer.unsigned_gets  # the mode is real
    world.peer.unsigned_gets.clear()
    answer = await world.peer.post(world.inbox, world.follow("alice"), as_="alice")
    assert answer.status_code == 202, answer.text  # her key and her account were read, signed
    assert world.peer.unsigned_gets == []
    assert (await world.followers())[0][1] == alice


async def test_a_remote_server_over_its_rate_gets_429(world: World) -> None:
    fed = world.live.services.federation
    assert fed is not None
    fed.per_host = Limiter(((2, 60.0),))  # the rule as INBOX_PER_MINUTE's, with a small number
    world.peer.add("alice")
    codes = [
        (await world.peer.post(world.inbox, world.follow("alice", n), as_="alice")).status_code
        for n in range(3)
    ]
    assert codes == [202, 202, 429]


async def test_an_activity_over_the_size_cap_is_refused_unread(world: World) -> None:
    world.peer.add("alice")
    cap = world.live.services.settings.federation.max_document_bytes
    big = {**world.follow("alice"), "summary": "x" * cap}
    answer = await world.peer.post(world.inbox, big, as_="alice")
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"
    assert world.peer.fetches == []  # not even its signature's key was asked for
    assert await world.followers() == []

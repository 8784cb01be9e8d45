"""A fediverse server made of bovine's code (PyPI `bovine`, written outside this project), for
tests/test_federation_bovine.py. It runs in its own virtualenv (tests/tools/bovine/.venv, made by
scripts/test from requirements.txt: bovine pins a cryptography older than ours), as a process of
its own on http://127.0.0.1:PORT, with two accounts, "bovine" and "other".

What it does with bovine's own code, as bovine-based servers do:
- looks accounts up with bovine's WebFinger client (over https: the test's CA is trusted),
  fetches them with bovine's signed GET, and parses them with bovine's `Actor`;
- signs what it sends with bovine's `SignedHttpClient` (draft-cavage, `Digest: sha-256=...`
  lowercase by default, `content-type` signed), builds its activities with bovine's factories;
- checks every delivery with bovine's `SignatureChecker` (signature, Date, Digest) against the
  key it finds with bovine's `Actor` parser, and our signed GETs of its actors as well
  (authorized fetch): what fails is answered 401 and recorded with bovine's log of why;
- parses what arrives with bovine's `Activity` / `Object` (JSON-LD compacted by bovine).

The test drives it over HTTP (JSON in and out):
  POST /control/lookup {"handle": "@name@host"}           -> what bovine read of the actor
  POST /control/webfinger {"uri", "domain"}              -> {"actor", "verification_necessary"}
  POST /control/follow {"as", "actor", "digest"?, "content_type"?}   -> {"status", "text", "activity"}
  POST /control/undo   {"as", "follow", "inbox"}           -> {"status", "text", "activity"}
  POST /control/reply  {"as", "note", "inbox", "content"}  -> {"status", "text", "activity"}
  POST /control/like   {"as", "object", "inbox"}           -> {"status", "text", "activity"}
  POST /control/fetch  {"url"}                             -> the object, as bovine parsed it
  GET  /control/received                                   -> deliveries, as bovine parsed them
  GET  /control/refused                                    -> requests bovine refused, and why
  GET  /control/signed-gets                                -> signed GETs of its actors bovine verified
"digest" chooses bovine's digest method: "legacy" (its default, `sha-256=`), "uppercase"
(`SHA-256=`) or "rfc9530" (`Content-Digest`); or "rfc9421": an RFC 9421 signature (HTTP Message
Signatures) in the form bovine's verifier reads (see send_rfc9421). Usage: python peer.py PORT CA_FILE
(run from a scratch directory: bovine keeps its JSON-LD cache in the working directory).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from bovine.activitystreams import Actor as ActorBuilder
from bovine.activitystreams import factories_for_actor_object
from bovine.clients import lookup_uri_with_webfinger
from bovine.clients.signed_http import SignedHttpClient, legacy_digest_method, legacy_digest_method_uppercase
from bovine.clients.utils import host_target_from_url
from bovine.crypto import generate_rsa_public_private_key
from bovine.crypto.helper import content_digest_sha256_rfc_9530
from bovine.crypto.http_signature import HttpSignature
from bovine.crypto.signature_checker import SignatureChecker
from bovine.crypto.types import CryptographicIdentifier
from bovine.jsonld import jsonld_cache
from bovine.parse import Activity, Actor, Object
from bovine.utils import webfinger_response_json

HERE = Path(__file__).resolve().parent
NAMES = ("bovine", "other")
DIGESTS = {
    "legacy": legacy_digest_method,
    "uppercase": legacy_digest_method_uppercase,
    "rfc9530": content_digest_sha256_rfc_9530,
}
AP_JSON = "application/activity+json"


class Why(logging.Handler):
    """bovine says why it refuses a signature only in its log: kept for the test's messages."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}"[:500])


def preload_contexts() -> None:
    """The JSON-LD contexts bovine would fetch over the network (the security vocabulary, for
    `publicKey`), put in bovine's own context cache: the test machines are offline. The copies
    are Fedify's preloaded ones (tests/tools/bovine/contexts.json)."""
    for url, context in json.loads((HERE / "contexts.json").read_text()).items():
        if jsonld_cache.retrieve(url) is None:
            jsonld_cache.add(url, context)


class Peer:
    def __init__(self, port: int, ca_file: str) -> None:
        self.origin = f"http://127.0.0.1:{port}"
        self.ca_file = ca_file
        self.keys = {name: generate_rsa_public_private_key() for name in NAMES}
        self.received: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self.signed_gets: list[dict[str, Any]] = []  # GETs of our actors, verified by bovine
        self.counter = itertools.count(1)
        self.why = Why()
        logging.getLogger("bovine").addHandler(self.why)
        logging.getLogger("bovine").setLevel(logging.INFO)
        self.session: aiohttp.ClientSession | None = None

    def actor_id(self, name: str) -> str:
        return f"{self.origin}/users/{name}"

    def actor(self, name: str) -> dict[str, Any]:
        actor = self.actor_id(name)
        return ActorBuilder(
            id=actor,
            preferred_username=name,
            name=f"bovine peer {name}",
            inbox=f"{actor}/inbox",
            outbox=f"{actor}/outbox",
            followers=f"{actor}/followers",
            public_key=self.keys[name][0],
            public_key_name="main-key",
        ).build()

    def client(self, name: str, digest: str = "legacy") -> SignedHttpClient:
        assert self.session is not None
        return SignedHttpClient(
            self.session, f"{self.actor_id(name)}#main-key", self.keys[name][1], DIGESTS[digest]
        )

    def new_id(self, name: str) -> str:
        return f"{self.actor_id(name)}/objects/{next(self.counter)}"

    def factories(self, name: str) -> tuple[Any, Any]:
        """bovine's activity and object factories for one of the accounts, giving ids."""
        return factories_for_actor_object(self.actor(name), id_generator=lambda: self.new_id(name))

    async def fetch(self, url: str) -> dict[str, Any]:
        """A document, with bovine's signed GET (as "bovine")."""
        async with await self.client("bovine").get(url) as response:
            if response.status != 200:
                raise web.HTTPBadGateway(text=f"{url} answered {response.status}: {await response.text()}")
            return dict(await response.json(content_type=None))

    async def key_for(self, key_id: str) -> Any:
        """bovine's key_retriever: the key's document parsed as an actor by bovine."""
        actor = Actor(await self.fetch(key_id), validate=False)
        return next((k for k in actor.cryptographic_identifiers if k.id == key_id), None)

    async def checked(self, request: web.Request, body: bytes | None) -> str | None:
        """The owner of the key that signed this request, by bovine's SignatureChecker."""
        self.why.lines.clear()

        async def read() -> bytes:
            return body or b""

        return await SignatureChecker(self.key_for).validate_signature(
            request.method, str(request.url), request.headers, read
        )

    def refuse(self, request: web.Request, what: str) -> web.Response:
        self.refused.append(
            {
                "path": request.path,
                "what": what,
                "why": list(self.why.lines),
                "headers": dict(request.headers),
            }
        )
        return web.Response(status=401, text=what)

    # -- served ---------------------------------------------------------------------------------

    async def webfinger(self, request: web.Request) -> web.Response:
        resource = request.query.get("resource", "")
        name = resource.removeprefix("acct:").split("@", 1)[0]
        if name not in NAMES:
            return web.Response(status=404)
        doc = webfinger_response_json(resource, self.actor_id(name))
        return web.json_response(doc, content_type="application/jrd+json")

    async def actor_doc(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in NAMES:
            return web.Response(status=404)
        if "signature" in request.headers:
            owner = await self.checked(request, None)
            if owner is None:
                return self.refuse(request, "a signed GET that bovine could not verify")
            self.signed_gets.append({"path": request.path, "owner": owner})
        return web.json_response(self.actor(name), content_type=AP_JSON)

    async def inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        owner = await self.checked(request, body)
        if owner is None:
            return self.refuse(request, "a delivery that bovine could not verify")
        data = json.loads(body)
        activity = Activity(data)
        if activity.actor_id != owner:
            return self.refuse(request, f"signed by {owner}, not by its actor {activity.actor_id}")
        record: dict[str, Any] = {
            "inbox": request.match_info["name"],
            "type": activity.data.get("type"),
            "id": activity.data.get("id"),
            "actor": activity.actor_id,
            "owner": owner,
            "headers": dict(request.headers),
        }
        if activity.is_create or activity.data.get("type") == "Update":
            obj = (
                await activity.object_for_create(self.fetch)
                if activity.is_create
                else Object(activity.data["object"], domain=activity.domain)
            )
            assert obj is not None
            record["object"] = {
                k: obj.data.get(k)
                for k in ("id", "type", "content", "url", "attributedTo", "published", "updated", "to", "cc")
            }
            record["object"]["attributed_to_id"] = obj.attributed_to_id
            record["note"] = activity.data["object"]  # what a reply is built from
        elif activity.is_accept:
            follow = await activity.accept_for_follow(self.fetch)
            record["follow"] = follow.data.get("id") if follow is not None else None
        else:
            record["object"] = activity.object_id
        self.received.append(record)
        return web.Response(status=202)

    # -- control --------------------------------------------------------------------------------

    async def received_list(self, request: web.Request) -> web.Response:
        return web.json_response(self.received)

    async def refused_list(self, request: web.Request) -> web.Response:
        return web.json_response(self.refused)

    async def signed_gets_list(self, request: web.Request) -> web.Response:
        return web.json_response(self.signed_gets)

    async def lookup(self, request: web.Request) -> web.Response:
        handle = (await request.json())["handle"]
        actor_id, _ = await lookup_uri_with_webfinger(self.session, "acct:" + handle.removeprefix("@"))
        if actor_id is None:
            return web.json_response({"error": f"WebFinger found nothing for {handle}"}, status=404)
        actor = Actor(await self.fetch(actor_id))
        acct_verified = await actor.validate_acct_uri(self.session)
        keys = actor.cryptographic_identifiers
        key = actor.data.get("publicKey", {})
        return web.json_response(
            {
                "id": actor.id,
                "type": actor.data.get("type"),
                "inbox": actor.data.get("inbox"),
                "outbox": actor.data.get("outbox"),
                "followers": actor.data.get("followers"),
                "name": actor.data.get("name"),
                "preferredUsername": actor.data.get("preferredUsername"),
                "url": actor.data.get("url"),
                "acct": actor.unvalidated_acct_uri,
                "acct_verified": acct_verified,
                "identifiers": sorted(actor.identifiers),
                "keys": [{"id": k.id, "controller": k.controller} for k in keys],
                "publicKeyPem": actor.publicKeyPem(key.get("id")) if isinstance(key, dict) else None,
            }
        )

    async def webfinger_uri(self, request: web.Request) -> web.Response:
        """bovine's WebFinger lookup of any URI at a domain (FEP-4adb), e.g. an actor's URL."""
        control = await request.json()
        found, verify = await lookup_uri_with_webfinger(
            self.session, control["uri"], domain=control["domain"]
        )
        return web.json_response({"actor": found, "verification_necessary": verify})

    async def send(
        self, name: str, url: str, activity: dict[str, Any], control: dict[str, Any]
    ) -> web.Response:
        body = json.dumps(activity)
        if control.get("digest") == "rfc9421":
            return await self.send_rfc9421(name, url, activity, body)
        client = self.client(name, control.get("digest", "legacy"))
        async with await client.post(url, body, content_type=control.get("content_type")) as response:
            text = await response.text()
            return web.json_response({"status": response.status, "text": text, "activity": activity})

    async def send_rfc9421(self, name: str, url: str, activity: dict[str, Any], body: str) -> web.Response:
        """A POST signed as RFC 9421 (HTTP Message Signatures) in the form bovine's verifier reads
        (`@method @path @authority`, `Content-Digest`, `created`, `keyid`): bovine does not sign
        this way yet, so the message is built with its HttpSignature (`build_message_quoted`) and
        signed with its CryptographicSecret, and checked with its SignatureChecker before it goes."""
        assert self.session is not None
        secret = self.client(name).secret
        host, path = host_target_from_url(url)
        digest_name, digest = content_digest_sha256_rfc_9530(body.encode())
        headers = {"host": host, digest_name: digest, "content-type": AP_JSON}
        components = ["@method", "@path", "@authority", digest_name, "content-type"]
        params = " ".join(f'"{c}"' for c in components)
        params = f'({params});created={int(time.time())};keyid="{secret.key_id}";alg="rsa-v1_5-sha256"'
        message = HttpSignature()
        for component, value in zip(components, ["POST", path, host, digest, AP_JSON], strict=True):
            message.with_field(component, value)
        message.with_field("@signature-params", params)
        headers["signature-input"] = f"sig1={params}"
        headers["signature"] = f"sig1=:{secret.sign(message.build_message_quoted())}:"

        async def own_key(key_id: str) -> CryptographicIdentifier:
            return CryptographicIdentifier.from_pem(self.keys[name][0], self.actor_id(name))

        async def read() -> bytes:
            return body.encode()

        signer = await SignatureChecker(own_key).validate_signature("POST", url, headers, read)
        assert signer == self.actor_id(name), f"bovine does not verify its own RFC 9421 signature: {signer}"
        async with self.session.post(url, data=body, headers=headers) as response:
            text = await response.text()
            return web.json_response({"status": response.status, "text": text, "activity": activity})

    async def follow(self, request: web.Request) -> web.Response:
        control = await request.json()
        name = control["as"]
        activities, _ = self.factories(name)
        target = Actor(await self.fetch(control["actor"]))
        follow = activities.follow(target.id).build()
        return await self.send(name, target.data["inbox"], follow, control)

    async def undo(self, request: web.Request) -> web.Response:
        return await self.send_to_inbox(
            request, lambda activities, control: activities.undo(control["follow"])
        )

    async def like(self, request: web.Request) -> web.Response:
        return await self.send_to_inbox(
            request, lambda activities, control: activities.like(control["object"])
        )

    async def send_to_inbox(self, request: web.Request, build: Any) -> web.Response:
        """An activity that bovine's factory `build(activities, control)` makes, sent to control's inbox."""
        control = await request.json()
        activities, _ = self.factories(control["as"])
        return await self.send(control["as"], control["inbox"], build(activities, control).build(), control)

    async def fetch_object(self, request: web.Request) -> web.Response:
        """An object fetched with bovine's signed GET, as bovine's parser reads it."""
        obj = Object(await self.fetch((await request.json())["url"]))
        return web.json_response(
            {k: obj.data.get(k) for k in ("id", "type", "content", "url", "attributedTo", "likes", "shares")}
        )

    async def reply(self, request: web.Request) -> web.Response:
        control = await request.json()
        name = control["as"]
        activities, objects = self.factories(name)
        note = objects.reply(control["note"], content=control["content"]).as_public().build()
        create = activities.create(note).build()
        return await self.send(name, control["inbox"], create, control)


async def main(port: int, ca_file: str) -> None:
    preload_contexts()
    peer = Peer(port, ca_file)
    context = ssl.create_default_context(cafile=ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        peer.session = session
        app = web.Application()
        app.add_routes(
            [
                web.get("/.well-known/webfinger", peer.webfinger),
                web.get("/users/{name}", peer.actor_doc),
                web.post("/users/{name}/inbox", peer.inbox),
                web.get("/control/received", peer.received_list),
                web.get("/control/refused", peer.refused_list),
                web.get("/control/signed-gets", peer.signed_gets_list),
                web.post("/control/lookup", peer.lookup),
                web.post("/control/webfinger", peer.webfinger_uri),
                web.post("/control/follow", peer.follow),
                web.post("/control/undo", peer.undo),
                web.post("/control/reply", peer.reply),
                web.post("/control/like", peer.like),
                web.post("/control/fetch", peer.fetch_object),
            ]
        )
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(f"bovine peer on {peer.origin}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))

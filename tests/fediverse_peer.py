"""A small fediverse server for tests, on loopback: accounts with their own RSA keys, actor
documents, inboxes that record what arrives (and check its signature against the sender's key,
fetched from our server as a remote would), and signed sending as a Mastodon would do."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liveblog.federation.signatures import SignatureError, check, new_key_pair, parse, sign
from tests.conftest import eventually, free_port

AP_JSON = "application/activity+json"


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    activity: dict[str, Any]
    verified: str  # "ok", or why the signature did not check


@dataclass
class Peer:
    url: str = ""
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (public, private)
    received: list[Delivery] = field(default_factory=list)
    fetches: list[str] = field(default_factory=list)  # paths GET by anyone
    gone: set[str] = field(default_factory=set)  # accounts answering 410
    down: bool = False  # inboxes answer 503 and keep nothing (a server being restarted)
    refused: int = 0  # deliveries answered 503 while down
    hold: bool = False  # inboxes never answer (until released), keeping nothing
    held: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    pages: dict[str, str] = field(default_factory=dict)  # path -> HTML (blog posts, for Webmention)
    avatars_held: bool = False  # avatars are not answered until avatars_release is set
    authorized_fetch: bool = False  # accounts answer only signed GETs (Mastodon's authorized fetch)
    unsigned_gets: list[str] = field(default_factory=list)  # why GETs were refused in that mode
    avatars_release: asyncio.Event = field(default_factory=asyncio.Event)
    no_avatar: set[str] = field(default_factory=set)  # accounts whose document has no icon

    def actor(self, name: str) -> str:
        return f"{self.url}/users/{name}"

    def add(self, name: str) -> str:
        self.keys[name] = new_key_pair()
        return self.actor(name)

    def document(self, name: str) -> dict[str, Any]:
        url = self.actor(name)
        return {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": url,
            "type": "Person",
            "preferredUsername": name,
            "inbox": f"{url}/inbox",
            "outbox": f"{url}/outbox",
            "endpoints": {"sharedInbox": f"{self.url}/inbox"},
            "publicKey": {"id": f"{url}#main-key", "owner": url, "publicKeyPem": self.keys[name][0]},
            **(
                {}
                if name in self.no_avatar
                else {
                    "icon": {
                        "type": "Image",
                        "mediaType": "image/png",
                        "url": f"{self.url}/avatars/{name}.png",
                    }
                }
            ),
        }

    async def post(
        self, inbox: str, activity: dict[str, Any], *, as_: str, body: bytes | None = None
    ) -> httpx.Response:
        """POST an activity signed with the key of account `as_` (a tampered `body` if given)."""
        payload = json.dumps(activity).encode()
        headers = sign("POST", inbox, self.keys[as_][1], f"{self.actor(as_)}#main-key", payload)
        headers["content-type"] = AP_JSON
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(inbox, content=body or payload, headers=headers)

    async def wait_for(self, kind: str, timeout: float = 10) -> Delivery:
        def found() -> Delivery | None:
            return next((d for d in self.received if d.activity.get("type") == kind), None)

        return await eventually(found, timeout, f"a {kind} at the peer")  # type: ignore[no-any-return]


async def signed_by(request: Request, body: bytes | None, actor: str | None = None) -> str:
    """ "ok" when the request carries a valid HTTP Signature by a key fetched from its keyId (and
    belonging to `actor`, when given), else why not: what a remote server checks."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        params = parse(headers.get("signature", ""))
        async with httpx.AsyncClient(timeout=10) as client:
            key_doc = (await client.get(params["keyId"], headers={"accept": AP_JSON})).json()
        if key_doc["publicKey"]["id"] != params["keyId"] or (actor is not None and key_doc["id"] != actor):
            raise SignatureError("the key is not the actor's")
        check(request.method, request.url.path, headers, body, params, key_doc["publicKey"]["publicKeyPem"])
    except (SignatureError, KeyError, ValueError) as exc:
        return str(exc)
    except httpx.TransportError as exc:  # as a Mastodon would: the signature cannot be checked
        return f"the key could not be fetched: {exc!r}"
    return "ok"


def peer_app(peer: Peer) -> Starlette:
    async def actor(request: Request) -> Response:
        name = request.path_params["name"]
        peer.fetches.append(request.url.path)
        if peer.authorized_fetch and (why := await signed_by(request, None)) != "ok":
            peer.unsigned_gets.append(why)
            return Response(status_code=401)
        if name in peer.gone:
            return Response(status_code=410)
        if name not in peer.keys:
            return Response(status_code=404)
        return JSONResponse(peer.document(name), media_type=AP_JSON)

    async def inbox(request: Request) -> Response:
        body = await request.body()
        if peer.down:
            peer.refused += 1
            return Response(status_code=503)
        if peer.hold:
            peer.held += 1
            await asyncio.wait_for(peer.release.wait(), 30)
            return Response(status_code=503)
        headers = {k.lower(): v for k, v in request.headers.items()}
        activity = json.loads(body)
        verified = await signed_by(request, body, str(activity.get("actor")))
        peer.received.append(Delivery(request.url.path, headers, activity, verified))
        return Response(status_code=202)

    async def avatar(request: Request) -> Response:
        peer.fetches.append(request.url.path)
        if peer.avatars_held:
            await asyncio.wait_for(peer.avatars_release.wait(), 30)
        out = io.BytesIO()
        Image.new("RGB", (16, 16), avatar_colour(request.path_params["name"])).save(out, "PNG")
        return Response(out.getvalue(), media_type="image/png")

    async def page(request: Request) -> Response:
        html = peer.pages.get(request.url.path)
        return Response(html, media_type="text/html") if html is not None else Response(status_code=404)

    return Starlette(
        routes=[
            Route("/posts/{name}", page),
            Route("/avatars/{name}.png", avatar),
            Route("/users/{name}", actor),
            Route("/users/{name}/inbox", inbox, methods=["POST"]),
            Route("/inbox", inbox, methods=["POST"]),
        ]
    )


def avatar_colour(name: str) -> tuple[int, int, int]:
    """The colour of the avatar the peer draws for an account: each account's its own, since
    our copies are kept once per picture and session."""
    return (10, 120, zlib.crc32(name.encode()) % 256)


@contextlib.asynccontextmanager
async def running_peer() -> AsyncIterator[Peer]:
    peer = Peer()
    port = free_port()
    peer.url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(peer_app(peer), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, 10, "the peer to start")
    try:
        yield peer
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task

"""Interoperability with fediverse software nobody on this project wrote (docs/federation.md):
Fedify (npm @fedify/fedify, a server in tests/tools/fedify_peer.mjs) finds a session by its
handle over https (a local CA from trustme: Fedify looks handles up over https only), follows
it, receives a note, its edit and its delete (checking our signatures as it does for any
server), and replies; the reply reaches the moderation queue. Joyent's http-signature (npm, the
reference implementation of the draft) checks our signatures too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn

from liveblog.capture.notes import Author
from liveblog.federation.signatures import new_key_pair, sign
from liveblog.services import Services
from liveblog.web.app import create_app
from tests.conftest import Seed, eventually, free_port, make_settings, seed

TOOLS = Path(__file__).resolve().parent / "tools"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tools() -> Path:
    if not (TOOLS / "node_modules" / "@fedify" / "fedify").exists():
        pytest.fail("tests/tools/node_modules is not installed: run ./scripts/test (it runs npm ci there)")
    return TOOLS


@contextlib.asynccontextmanager
async def https_server(tmp_path: Path, ca: trustme.CA) -> AsyncIterator[tuple[str, Services, Seed]]:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    settings = make_settings(
        tmp_path, server={"public_url": url}, federation={"allow_private_addresses": True}
    )
    services = Services.build(settings)
    await services.open()
    s = await seed(services)
    await services.comments.set_premoderation(s.event_id, True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, services),
            host="127.0.0.1",
            port=port,
            ssl_keyfile=str(tmp_path / "key.pem"),
            ssl_certfile=str(tmp_path / "cert.pem"),
            log_level="warning",
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, 10, "the https server to start")
        yield url, services, s
    finally:
        server.should_exit = True
        async with asyncio.timeout(15):
            await task
        await services.close()


@contextlib.asynccontextmanager
async def fedify_peer(tools: Path, ca_file: Path) -> AsyncIterator[str]:
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(ca_file)}
    async with peer_process(
        "the Fedify peer", lambda port: ["node", str(tools / "fedify_peer.mjs"), str(port)], tools, env
    ) as url:
        yield url


@contextlib.asynccontextmanager
async def peer_process(
    what: str, command: Callable[[int], list[str]], cwd: Path, env: dict[str, str] | None = None
) -> AsyncIterator[str]:
    """A peer server run as `command(port)` that the test drives over `/control/...`: its URL,
    once it answers; stopped (SIGTERM, then SIGKILL) afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(command(port), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:

        async def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{what} stopped: {proc.communicate()[0].decode()[-2000:]}")
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(f"{url}/control/received")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(up, 30, f"{what} to listen")
        yield url
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


async def control(peer: str, path: str, body: dict[str, Any] | None = None) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        if body is None:
            answer = await client.get(f"{peer}/control/{path}")
        else:
            answer = await client.post(f"{peer}/control/{path}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def arrived(peer: str, kind: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        return next((a for a in await control(peer, "received") if a["type"] == kind), None)

    return await eventually(found, 30, f"a {kind} at Fedify")  # type: ignore[no-any-return]


async def test_fedify_follows_a_session_gets_its_notes_and_replies(tmp_path: Path, tools: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with https_server(tmp_path, ca) as (url, services, s), fedify_peer(tools, ca_file) as peer:
        host = url.removeprefix("https://")
        followed = await control(peer, "follow", {"handle": f"@keynote@{host}"})
        actor = f"{url}/ap/sessions/{s.session_id}"
        assert followed == {"actor": actor, "name": "Keynote", "preferredUsername": "keynote"}
        accept = await arrived(peer, "Accept")
        assert accept["actor"] == actor

        invite = await services.accounts.invite_for_token(s.token)
        assert invite is not None
        ada = Author.from_invite(invite)

        async def capture(message: dict[str, Any]) -> int:
            ack = await services.notes.handle(s.session_id, ada, {"client_id": str(uuid.uuid4()), **message})
            return ack.item_id

        item_id = await capture({"type": "note.create", "body": "Hello, fediverse #interop"})
        create = await arrived(peer, "Create")
        assert create["object"] == f"{url}/ap/notes/{item_id}"
        assert "Hello, fediverse" in create["content"]
        await capture({"type": "note.update", "item_id": item_id, "body": "Hello again, fediverse"})
        update = await arrived(peer, "Update")
        assert "Hello again" in update["content"]

        # Fedify replies to the note: the reply waits in the moderation queue.
        await control(
            peer, "reply", {"actor": actor, "to": create["object"], "content": "<p>Hi from Fedify</p>"}
        )
        queue = await services.comments.moderation_queue()
        assert [(c.author, c.body) for c in queue.pending] == [
            (f"@peer@{peer.removeprefix('http://')}", "Hi from Fedify")
        ]

        await capture({"type": "note.delete", "item_id": item_id})
        delete = await arrived(peer, "Delete")
        assert delete["object"] == f"{url}/ap/notes/{item_id}"


async def test_joyents_http_signature_verifies_our_signatures(tools: Path) -> None:
    public, private = new_key_pair()
    body = json.dumps({"type": "Create"}).encode()
    url = "https://remote.example/users/alice/inbox?x=1"
    headers = sign("POST", url, private, "https://liveblog.example/ap/sessions/s#main-key", body)
    script = """
const httpSignature = require("http-signature");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const request = { method: "POST", url: input.path, httpVersion: "1.1", headers: input.headers };
const parsed = httpSignature.parseRequest(request, { clockSkew: 300 });
const ok = httpSignature.verifySignature(parsed, input.key);
console.log(JSON.stringify({ ok, keyId: parsed.keyId, headers: parsed.params.headers }));
"""
    check = {"path": "/users/alice/inbox?x=1", "headers": headers, "key": public}
    result = subprocess.run(
        ["node", "-e", script], cwd=tools, input=json.dumps(check), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict == {
        "ok": True,
        "keyId": "https://liveblog.example/ap/sessions/s#main-key",
        "headers": ["(request-target)", "host", "date", "digest"],
    }
    # The same request with its body's digest changed does not verify.
    tampered = {**check, "headers": {**headers, "digest": "SHA-256=AAAA"}}
    result = subprocess.run(
        ["node", "-e", script],
        cwd=tools,
        input=json.dumps(tampered),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(result.stdout)["ok"] is False

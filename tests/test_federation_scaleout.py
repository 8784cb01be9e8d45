"""Several processes (docs/federation.md, "Delivery"): every process answers inboxes, and one,
the holder of the `federation` lease in Redis, publishes and delivers. Two in-process app
instances over one PostgreSQL and one Redis; the follower's server on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import pytest
import uvicorn

from liveblog.capture.notes import Author
from liveblog.services import Services
from liveblog.web.app import create_app
from tests.conftest import eventually, free_port, make_settings, query, seed
from tests.fediverse_peer import running_peer
from tests.servers import RedisServer

pytestmark = pytest.mark.slow


async def test_one_process_of_two_delivers_what_either_was_told(
    tmp_path: Path, pg_url: str, redis_server: RedisServer
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        tmp_path,
        database={"url": pg_url},
        redis={"url": redis_server.url},
        server={"public_url": url},  # several processes: the address is set, not learnt
        federation={"allow_private_addresses": True},
    )
    settings = dataclasses.replace(settings, secret_key="scale-out-secret", secret_key_from_env=True)
    leader, other = Services.build(settings), Services.build(settings)
    await leader.open()  # first to start: it holds the lease, and publishes and delivers
    try:
        await other.open()
        try:
            assert leader.health()["components"]["federation.delivery"]["runs_here"]
            assert not other.health()["components"]["federation.delivery"]["runs_here"]
            assert leader.delivery is not None and other.delivery is not None
            leader.delivery.idle_seconds = 0.2  # it learns of the other's commits by looking
            s = await seed(leader)
            # Only the process that does not deliver serves HTTP: the follow, the note.
            server = uvicorn.Server(
                uvicorn.Config(create_app(settings, other), host="127.0.0.1", port=port, log_level="warning")
            )
            task = asyncio.create_task(server.serve())
            try:
                await eventually(lambda: server.started, 10, "the other process's server")
                async with running_peer() as peer:
                    alice = peer.add("alice")
                    follow = {
                        "id": f"{alice}/follows/1",
                        "type": "Follow",
                        "actor": alice,
                        "object": f"{url}/ap/sessions/{s.session_id}",
                    }
                    answer = await peer.post(f"{url}/ap/inbox", follow, as_="alice")
                    assert answer.status_code == 202, answer.text
                    accept = await peer.wait_for("Accept")
                    invite = await other.accounts.invite_for_token(s.token)
                    assert invite is not None
                    note = {
                        "client_id": str(uuid.uuid4()),
                        "type": "note.create",
                        "body": "Said on the other",
                    }
                    await other.notes.handle(s.session_id, Author.from_invite(invite), note)
                    create = await peer.wait_for("Create")
                    assert "Said on the other" in create.activity["object"]["content"]
                    assert accept.verified == create.verified == "ok"

                    async def all_kept() -> bool:
                        return await query(leader.db, "SELECT count(*) FROM federation_deliveries") == [(0,)]

                    await eventually(all_kept, 10, "the queue to empty")
                    # Made once, by the lease holder only.
                    assert [d.activity["type"] for d in peer.received] == ["Accept", "Create"]
                    assert (leader.delivery.delivered, other.delivery.delivered) == (2, 0)
                    assert (leader.delivery.published, other.delivery.published) == (1, 0)
            finally:
                server.should_exit = True
                async with asyncio.timeout(15):
                    await task
        finally:
            await other.close()
    finally:
        await leader.close()

"""The access layer (issue 7 section 3, issue 8 section 1): one door for note-takers, revocation
that closes what a credential opened, login sessions that end when they should."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from liveblog.access.sockets import CredentialSockets, login_key
from liveblog.cli import main
from liveblog.errors import Forbidden, Unauthorized
from liveblog.services import Services
from liveblog.storage.access import hash_token
from liveblog.streams.protocol import CloseCode
from tests.conftest import ORGANISER, LiveServer, Seed
from tests.wsclient import connect, recv, recv_type, send


async def close_code(ws: object, timeout: float = 10) -> int | None:
    async with asyncio.timeout(timeout):
        try:
            while True:
                await ws.recv()  # type: ignore[attr-defined]
        except ConnectionClosed:
            pass
    return ws.close_code  # type: ignore[attr-defined,no-any-return]


async def test_authorize_capture_is_the_one_door(services: Services, seeded: Seed) -> None:
    session = await services.programme.session(seeded.session_id)
    other = await services.programme.session(seeded.other_session_id)
    assert (await services.accounts.authorize_capture(seeded.token, session)).id == seeded.invite_id
    for token in (None, "", "made-up"):
        with pytest.raises(Unauthorized):
            await services.accounts.authorize_capture(token, session)
    with pytest.raises(Forbidden):
        await services.accounts.authorize_capture(seeded.token, other)
    await services.accounts.revoke_invite(seeded.invite_id)
    with pytest.raises(Unauthorized):
        await services.accounts.authorize_capture(seeded.token, session)


async def test_revoking_an_invite_closes_its_open_capture_socket_at_once(live: LiveServer, seeded: Seed) -> None:
    """Before: a note-taker connected when their invite was revoked kept posting."""
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}/capture"
    async with await connect(url, token=seeded.token) as ws, await connect(url, token=seeded.token2) as other:
        await recv_type(ws, "synced")
        await recv_type(other, "synced")
        await send(ws, {"type": "note.create", "client_id": "before", "body": "before the revocation"})
        assert (await recv_type(ws, "ack"))["client_id"] == "before"
        async with live.client(headers={"Authorization": f"Bearer {seeded.login_token}"}) as http:
            revoked = await http.delete(f"/api/v1/invites/{seeded.invite_id}")
        assert revoked.status_code == 200
        assert (await recv_type(ws, "error"))["code"] == "revoked"
        assert await close_code(ws) == CloseCode.REVOKED
        with pytest.raises(ConnectionClosed):
            await send(ws, {"type": "note.create", "client_id": "after", "body": "after the revocation"})
        # The other note-taker's invite was not revoked: still connected.
        await send(other, {"type": "ping"})
        assert (await recv_type(other, "pong"))["type"] == "pong"
    items = await live.services.programme.items(seeded.session_id, kind="note")
    assert [i.client_id for i in items] == ["before"]
    assert live.services.accounts.sockets.count(f"invite:{seeded.invite_id}") == 0
    async with await connect(url, token=seeded.token) as again:  # and it cannot come back
        assert (await recv(again))["code"] == "unauthorized"
        assert await close_code(again) == CloseCode.UNAUTHORIZED


async def test_logout_and_password_change_close_the_sockets_of_the_login(services: Services, seeded: Seed) -> None:
    accounts = services.accounts
    closed: list[str] = []
    second = await accounts.login(*ORGANISER)
    keep = await accounts.login(*ORGANISER)
    accounts.sockets.register(login_key(hash_token(seeded.login_token)), lambda why: closed.append("first"))
    accounts.sockets.register(login_key(hash_token(second)), lambda why: closed.append("second"))
    accounts.sockets.register(login_key(hash_token(keep)), lambda why: closed.append("kept"))
    await accounts.logout(seeded.login_token)
    assert closed == ["first"]
    assert await accounts.set_password(ORGANISER[0], "a new long password", keep_token=keep) == 1
    assert closed == ["first", "second"]
    assert await accounts.account_for_token(second) is None
    assert await accounts.account_for_token(keep) is not None


def test_a_socket_registered_after_its_credential_was_revoked_is_closed_at_once() -> None:
    registry = CredentialSockets()
    registry.revoke("invite:inv-1")
    closed: list[str] = []
    registry.register("invite:inv-1", closed.append)
    assert closed == ["revoked"]
    assert registry.count("invite:inv-1") == 0


def test_set_password_ends_every_login_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the old login cookie still worked after `liveblog set-password`."""
    db = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("LIVEBLOG_ORGANISER_PASSWORD", "a long password")
    assert main(["--db", str(db), "create-organiser", "alice"]) == 0

    async def run(step: str, token: str = "") -> str:
        from tests.conftest import make_settings

        services = Services.build(make_settings(tmp_path, database={"path": str(db)}))
        await services.open()
        try:
            if step == "login":
                return await services.accounts.login("alice", "a long password")
            account = await services.accounts.account_for_token(token)
            return account.username if account else ""
        finally:
            await services.close()

    token = asyncio.run(run("login"))
    assert asyncio.run(run("check", token)) == "alice"
    monkeypatch.setenv("LIVEBLOG_ORGANISER_PASSWORD", "another long password")
    assert main(["--db", str(db), "set-password", "alice"]) == 0
    assert asyncio.run(run("check", token)) == ""


async def test_the_login_cookie_lives_as_long_as_the_server_side_session(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as http:
        response = await http.post("/api/v1/login", json={"username": ORGANISER[0], "password": ORGANISER[1]})
    cookie = response.headers["set-cookie"].lower()
    assert "max-age=1209600" in cookie  # 14 days, like login_sessions.expires_at

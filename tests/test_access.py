"""The access layer (issue 7 section 3, issue 8 section 1): one door for note-takers, revocation
that closes what a credential opened, login sessions that end when they should."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from liveblog.access.sockets import CredentialSockets, login_key
from liveblog.cli import main
from liveblog.errors import Forbidden, Unauthorized
from liveblog.services import Services
from liveblog.storage.access import hash_token
from liveblog.streams.protocol import CloseCode
from tests.conftest import FAST_HASHER, ORGANISER, LiveServer, Seed
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


async def test_revoking_an_invite_closes_its_open_capture_socket_at_once(
    live: LiveServer, seeded: Seed
) -> None:
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


async def test_logout_and_password_change_close_the_sockets_of_the_login(
    services: Services, seeded: Seed
) -> None:
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


async def test_the_login_cookie_lives_as_long_as_the_server_side_session(
    live: LiveServer, seeded: Seed
) -> None:
    async with live.client() as http:
        response = await http.post("/api/v1/login", json={"username": ORGANISER[0], "password": ORGANISER[1]})
    cookie = response.headers["set-cookie"].lower()
    assert "max-age=1209600" in cookie  # 14 days, like login_sessions.expires_at


# -- CSRF in depth ---------------------------------------------------------------------------


async def test_a_cross_site_request_without_origin_is_refused_by_its_referer(
    live: LiveServer, seeded: Seed
) -> None:
    """Before: no Origin (or only a foreign Referer) was accepted."""
    cookies = {"lb_login": seeded.login_token}
    async with live.client(cookies=cookies) as http:
        response = await http.post(
            f"/api/v1/events/{seeded.event_id}/invites",
            json={"name": "Mallory"},
            headers={"Referer": "https://evil.example/page"},
        )
    assert response.status_code == 403 and response.json()["error"]["code"] == "bad_origin"
    assert sorted(i.name for i in await live.services.accounts.invites(seeded.event_id)) == ["Ada", "Grace"]


async def test_an_https_origin_is_not_the_http_origin_of_the_same_host_and_port(
    live: LiveServer, seeded: Seed
) -> None:
    """Before: only host:port were compared."""
    https_origin = live.url.replace("http://", "https://")
    async with live.client(headers={"Authorization": f"Bearer {seeded.token}"}) as http:
        response = await http.post(
            f"/api/v1/sessions/{seeded.session_id}/capture",
            json={"client_id": "x", "body": "from a page served elsewhere"},
            headers={"Origin": https_origin},
        )
        assert response.status_code == 403 and response.json()["error"]["code"] == "bad_origin"
        same = await http.post(
            f"/api/v1/sessions/{seeded.session_id}/capture",
            json={"client_id": "y", "body": "from our own page"},
            headers={"Origin": live.url},
        )
        assert same.status_code == 201


async def test_a_cookie_request_with_neither_origin_nor_token_is_refused(
    live: LiveServer, seeded: Seed
) -> None:
    """Before: a request with no Origin and no Referer, carrying the login cookie, was accepted."""
    from tests.conftest import organiser_csrf

    async with live.client(cookies={"lb_login": seeded.login_token}) as http:
        url = f"/api/v1/sessions/{seeded.session_id}"
        refused = await http.patch(url, json={"title": "Hijacked"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "bad_csrf"
        wrong = await http.patch(url, json={"title": "Hijacked"}, headers=organiser_csrf("another"))
        assert wrong.status_code == 403
        allowed = await http.patch(url, json={"title": "Renamed"}, headers=organiser_csrf(seeded.login_token))
        assert allowed.status_code == 200
    # A bearer-authenticated script needs no token: no page can add that header.
    async with live.client(headers={"Authorization": f"Bearer {seeded.login_token}"}) as http:
        assert (await http.patch(url, json={"title": "By script"})).status_code == 200
    assert (await live.services.programme.session(seeded.session_id)).title == "By script"


async def test_every_organiser_form_carries_the_csrf_token_and_a_form_without_it_is_refused(
    live: LiveServer, seeded: Seed
) -> None:
    import re

    from tests.conftest import page_csrf

    async with live.client(cookies={"lb_login": seeded.login_token}, follow_redirects=False) as http:
        for path in (
            f"/organise/events/{seeded.event_id}",
            f"/organise/sessions/{seeded.session_id}",
            "/organise/events/new",
        ):
            page = await http.get(path)
            token = page_csrf(page.text)
            forms = re.findall(r'<form method="post".*?</form>', page.text, re.S)
            assert forms, path
            for form in forms:
                assert f'<input type="hidden" name="csrf_token" value="{token}">' in form, (path, form[:120])
        state = {"form": "state", "state": "ended"}
        url = f"/organise/sessions/{seeded.session_id}"
        refused = await http.post(url, data=state)
        assert refused.status_code == 403
        assert (await live.services.programme.session(seeded.session_id)).state == "live"
        done = await http.post(url, data={**state, "csrf_token": token})
        assert done.status_code == 303
    assert (await live.services.programme.session(seeded.session_id)).state == "ended"


async def test_hsts_over_https_only(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as http:
        # uvicorn believes X-Forwarded-Proto from 127.0.0.1, as it would from nginx on the host.
        over_https = await http.get("/", headers={"X-Forwarded-Proto": "https"})
        assert over_https.headers["strict-transport-security"] == "max-age=31536000"
        assert "strict-transport-security" not in (await http.get("/")).headers


async def test_invite_tokens_never_reach_the_access_log(tmp_path: Path) -> None:
    """Before: uvicorn logged GET /n/<token>/sessions/... with the token in it."""
    import subprocess
    import sys

    import httpx

    from tests.conftest import free_port, listening, seed_database

    db = tmp_path / "log.sqlite3"
    seeded = await seed_database(tmp_path, path=str(db))
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liveblog",
            "--db",
            str(db),
            "serve",
            "--port",
            str(port),
            "--log-level",
            "info",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await listening(proc, base)
        async with httpx.AsyncClient(base_url=base) as http:
            landing = await http.get(f"/n/{seeded.token}")
            assert landing.status_code == 303
            page = await http.get(f"/n/{seeded.token}/sessions/{seeded.session_id}")
            assert page.status_code == 200
            await http.get(f"/n/{seeded.token}/sessions/{seeded.session_id}/moderate?x=1")
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0].decode()
    assert f"/n/[invite]/sessions/{seeded.session_id}" in output  # the request is logged...
    assert seeded.token not in output  # ...without its token


async def test_a_planted_login_cookie_lends_no_csrf_token_to_the_readers_login(
    live: LiveServer, seeded: Seed
) -> None:
    """Before: the CSRF token was an HMAC keyed by the cookie's own value, and a planted
    `lb_login` cookie took precedence over `lb_reader`: a page that planted one (a sibling
    subdomain can) knew the token, offline, and posted as the logged-in reader."""
    import hashlib
    import hmac

    from tests.conftest import page_csrf

    session_page = f"/sessions/{seeded.session_id}"
    account = {"password": "a long password"}
    async with live.client(follow_redirects=False) as victim:
        assert (
            await victim.post("/account/register", data={"username": "victim", **account})
        ).status_code == 303
        victims_login = str(victim.cookies["lb_reader"])
    async with live.client(follow_redirects=False) as attacker:
        assert (
            await attacker.post("/account/register", data={"username": "mallory", **account})
        ).status_code == 303
        attackers_login = str(attacker.cookies["lb_reader"])
        attackers_token = page_csrf((await attacker.get(session_page)).text)  # a token the server gave out
    offline = hmac.new(b"planted", b"liveblog.csrf.v1", hashlib.sha256).hexdigest()[:40]
    for planted, token in ((attackers_login, attackers_token), ("planted", offline)):
        async with live.client(
            cookies={"lb_reader": victims_login, "lb_login": planted}, follow_redirects=False
        ) as c:
            r = await c.post(
                f"/sessions/{seeded.session_id}/comments",
                data={"body": "posted as the victim", "csrf_token": token},
            )
            assert r.status_code == 403 and "out of date" in r.text, (planted, r.status_code)
    async with live.client(cookies={"lb_reader": victims_login}, follow_redirects=False) as c:
        token = page_csrf((await c.get(session_page)).text)
        r = await c.post(
            f"/sessions/{seeded.session_id}/comments", data={"body": "my own comment", "csrf_token": token}
        )
        assert r.status_code == 303
    async with live.client() as anon:
        page = (await anon.get(session_page)).text
        assert "my own comment" in page and "posted as the victim" not in page


# -- the login throttle ------------------------------------------------------------------------


async def test_a_guesser_at_the_same_address_cannot_lock_the_organiser_out(
    live: LiveServer, seeded: Seed
) -> None:
    """Before: ten bad tries per username and address blocked the right password for 15 minutes,
    so anyone in the same conference hall could keep the organiser out."""
    async with live.client() as organiser:  # the organiser's browser, which logged in before
        first = await organiser.post(
            "/api/v1/login", json={"username": ORGANISER[0], "password": ORGANISER[1]}
        )
        assert first.status_code == 200 and "lb_device" in organiser.cookies
    async with live.client() as attacker:  # same address (127.0.0.1), no device cookie
        codes = [
            (
                await attacker.post(
                    "/api/v1/login", json={"username": ORGANISER[0], "password": f"guess {i}"}
                )
            ).status_code
            for i in range(20)
        ]
        assert codes[:5] == [401] * 5 and set(codes[5:]) <= {401, 429} and 429 in codes
    organiser.cookies.delete("lb_login")
    async with live.client(cookies={"lb_device": first.cookies["lb_device"]}) as organiser:
        again = await organiser.post(
            "/api/v1/login", json={"username": ORGANISER[0], "password": ORGANISER[1]}
        )
        assert again.status_code == 200, again.text


def test_the_throttle_backs_off_and_never_locks_for_long() -> None:
    from liveblog.access.throttle import (
        ACCOUNT_FREE,
        ADDRESS_FREE,
        DEVICE_FAILURES,
        MAX_BACKOFF,
        KnownDevices,
        LoginThrottle,
    )
    from liveblog.errors import RateLimited

    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])

    def attempt(user: str = "org", address: str = "10.0.0.1", device: str | None = None) -> bool:
        try:
            throttle.check(user, address, device)
        except RateLimited:
            return False
        throttle.failed(user, address, device)
        return True

    assert all(attempt() for _ in range(ACCOUNT_FREE))
    assert attempt() is False  # now each try waits after the last failure: 1 s, then 2 s, ...
    now[0] += 1.01
    assert attempt() is True
    now[0] += 1.01
    assert attempt() is False
    now[0] += 1.0
    assert attempt() is True
    for _ in range(20):  # a persistent guesser
        now[0] += MAX_BACKOFF + 0.01
        assert attempt() is True
    assert attempt() is False
    now[0] += MAX_BACKOFF + 0.01  # never more than MAX_BACKOFF
    throttle.check("org", "10.0.0.1")
    attempt()
    # Another account from another address is not affected.
    throttle.check("other", "10.0.0.2")
    # One address spraying many accounts backs off too.
    for i in range(ADDRESS_FREE + 1):
        attempt(f"user{i}", "10.0.0.9")
    with pytest.raises(RateLimited):
        throttle.check("fresh-user", "10.0.0.9")
    # A known device skips the back-off until it has made DEVICE_FAILURES mistakes itself.
    devices = KnownDevices("secret")
    device = devices.device_of(devices.issue("org"), "org")
    assert device is not None and devices.device_of(devices.issue("org"), "someone-else") is None
    assert devices.device_of("forged|token", "org") is None
    assert attempt(device=device) is True  # while "org" is in its back-off
    for _ in range(DEVICE_FAILURES - 1):
        assert attempt(device=device) is True
    assert throttle.trusted(device) is False  # from now on it waits like anyone
    assert attempt(device=device) is False


# -- the endpoints added since: speaker links and answers, the fediverse page ---------------------


async def test_speaker_links_answer_moderation_and_the_fediverse_page_refuse_all_but_organisers(
    live: LiveServer, seeded: Seed
) -> None:
    """Each state-changing endpoint added since issue 19 (making and revoking speaker links,
    hiding an answer, and the Fediverse page's switch, handles, blocks and follower removal)
    refuses a visitor, a reader, a note-taker (their invite as a bearer token) and a speaker
    (their link's token as one), and an organiser's request without its CSRF token or from
    another site; nothing changes. The organiser's own request,
    the positive control, does change each."""
    from liveblog.capture.votes.common import Voter
    from tests.conftest import csrf_header, organiser_csrf

    svc = live.services
    fed = svc.federation
    assert fed is not None
    sid, ev = seeded.session_id, seeded.event_id
    # Before the event's first day (handles can still be changed): its sessions move first.
    await svc.programme.update_event(ev, {"ends_on": "2099-05-15"})
    for s in (sid, seeded.other_session_id):
        await svc.programme.update_session(
            s, {"starts_at": "2099-05-14T09:00", "ends_at": "2099-05-14T10:00"}
        )
    await svc.programme.update_event(ev, {"starts_on": "2099-05-14"})
    question, _ = await svc.audience.ask(sid, Voter("asker"), {"body": "Why?"})
    await svc.programme.set_state(sid, "ended")
    link, speaker_token = await svc.answers.make_link(sid, "Grace")
    await svc.answers.answer(link, question.id, "Because.")
    follower = "https://social.example/users/rosa"

    async def follow(tx: Any) -> None:
        row = {
            "follower": follower,
            "handle": "@rosa@social.example",
            "inbox": f"{follower}/inbox",
            "shared_inbox": "https://social.example/inbox",
            "follow_id": f"{follower}/follows/1",
        }
        await tx.add_follower("session", sid, row)

    await svc.db.write(follow)
    svc.accounts.hasher = FAST_HASHER
    reader, reader_cookie = await svc.readers.register("nosy", "a long password")

    async def state() -> tuple[object, ...]:
        answer = await svc.db.read(lambda r: r.get_answer(question.id))
        assert answer is not None
        return (
            len(await svc.answers.links(sid)),
            [x.revoked_at is None for x in await svc.answers.links(sid)],
            answer.state,
            await svc.db.read(lambda r: r.federation_on(ev)),
            await svc.db.read(lambda r: r.handle_of("session", sid)),
            await fed.blocks(),
            await svc.db.read(lambda r: r.count_followers("session", sid)),
        )

    posts = [
        (f"/organise/sessions/{sid}", {"form": "speaker_link", "name": "Mallory"}),
        (f"/organise/sessions/{sid}", {"form": "speaker_revoke", "link_id": link.id}),
        (f"/answers/{question.id}/moderate", {"action": "hide"}),
        (f"/organise/events/{ev}/fediverse", {"action": "off"}),
        (
            f"/organise/events/{ev}/fediverse",
            {"action": "handle", "kind": "session", "id": sid, "handle": "x"},
        ),
        (
            f"/organise/events/{ev}/fediverse",
            {"action": "remove", "kind": "session", "id": sid, "follower": follower},
        ),
        # (last: a block of the follower's server would end its follow)
        (f"/organise/events/{ev}/fediverse", {"action": "block", "target": "social.example"}),
    ]
    before = await state()
    callers: list[tuple[str, dict[str, str], dict[str, str]]] = [
        ("a visitor", {}, {}),
        ("a reader", {"lb_reader": reader_cookie}, csrf_header({"lb_reader": reader_cookie})),
        ("a note-taker", {}, {"Authorization": f"Bearer {seeded.token}"}),
        ("a speaker", {}, {"Authorization": f"Bearer {speaker_token}"}),
        ("an organiser without the token", {"lb_login": seeded.login_token}, {}),
        (
            "an organiser from another site",
            {"lb_login": seeded.login_token},
            {**organiser_csrf(seeded.login_token), "Origin": "https://evil.example"},
        ),
    ]
    for who, cookies, headers in callers:
        async with live.client(cookies=cookies, headers=headers, follow_redirects=False) as c:
            for path, form in posts:
                r = await c.post(path, data=form)
                assert r.status_code in (303, 401, 403), (who, path, r.status_code, r.text[:200])
                if r.status_code == 303:  # to the login page, not back to the page acted on
                    assert r.headers["location"].startswith("/login"), (who, path, r.headers["location"])
        assert await state() == before, f"{who} changed something"
    assert reader.role == "reader"
    # The positive control: the organiser, with the token, changes each.
    async with live.client(
        cookies={"lb_login": seeded.login_token},
        headers=organiser_csrf(seeded.login_token),
        follow_redirects=False,
    ) as c:
        for path, form in posts:
            r = await c.post(path, data=form)
            assert r.status_code in (200, 303), (path, r.status_code, r.text[:300])
    after = await state()
    assert [a != b for a, b in zip(after, before, strict=True)] == [True] * 7, (before, after)

"""Hostile input against a real server: every route answers with a documented 4xx or close code.

One corpus (deep JSON, lone surrogates in each string field, integers past 64 bits, wrong types,
invalid UTF-8, huge bodies) is sent to every input path: the JSON API with and without a login,
the organiser forms, both websockets, SSE positions and photo uploads. The server's own log is
captured: no 5xx, no traceback, no error logged, and the capture socket still acknowledges a good
note afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from liveblog.services import Services
from tests import wsclient
from tests.conftest import ORGANISER, LiveServer, Seed
from tests.test_docs import protocol_docs
from tests.test_media import png_of_size

# Status codes the API documents for refusals (protocol.md, protocol-votes.md).
DOCUMENTED_STATUS = {400, 401, 403, 404, 405, 409, 413, 429}
DEEP = 100_000  # nesting that used to raise RecursionError (1,000 was already enough on capture)
SURROGATE = "\ud800"
HUGE = 2**70
WRONG_TYPES: list[Any] = [[], {}, 1.5, True, -1, "", "x", [SURROGATE], {SURROGATE: 1}]


def documented_codes() -> set[str]:
    """Every code in a documentation table row: | `code` | ..."""
    return {
        code
        for row in re.findall(r"^\|.*$", protocol_docs(), re.M)
        for code in re.findall(r"`([a-z_]+)`", row)
    }


def documented_close_codes() -> set[int]:
    return {int(c) for c in re.findall(r"^\| (\d{4}) \|", protocol_docs(), re.M)}


class LogCapture(logging.Handler):
    """Every record the server logs at any level its loggers let through."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def problems(self) -> list[str]:
        return [
            f"{r.name} {r.levelname}: {r.getMessage()}" + (" (with traceback)" if r.exc_info else "")
            for r in self.records
            if r.exc_info or r.levelno >= logging.ERROR
        ]


@contextlib.contextmanager
def server_log() -> Iterator[LogCapture]:
    """Attached after uvicorn configured its loggers (it replaces their handlers at start)."""
    handler = LogCapture()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def json_text(value: Any) -> str:
    # ensure_ascii (the default) writes a lone surrogate as the escape \ud800, as an attacker would.
    return json.dumps(value)


def variants(good: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """The corpus for one JSON body: whole-body attacks, then each field made hostile in turn."""
    yield "deep array", b"[" * DEEP + b"]" * DEEP
    yield "deep object", b'{"a":' * 5000 + b"1" + b"}" * 5000
    yield (
        "deep in a field",
        json_text({**good, "x": 1}).replace('"x": 1', '"x": ' + "[" * 5000 + "]" * 5000).encode(),
    )
    yield "not an object", b"[1, 2]"
    yield "null", b"null"
    yield "a lone surrogate", b'"\\ud800"'
    yield "a surrogate key", json_text({**good, SURROGATE: 1}).encode()
    yield "invalid utf-8", b'{"body": "\xff\xfe"}'
    yield "truncated", b'{"body": '
    yield "infinity", b'{"body": Infinity}'
    yield "huge float", json_text(good)[:-1].encode() + b', "n": 1e999}'
    yield "huge int digits", b'{"n": ' + b"9" * 5000 + b"}"
    for key in good:
        for name, value in [
            ("surrogate", SURROGATE),
            ("surrogate inside", "ok" + SURROGATE + "ok"),
            ("huge int", HUGE),
            ("huge negative", -HUGE),
        ]:
            yield f"{key}: {name}", json_text({**good, key: value}).encode()
        for value in WRONG_TYPES:
            yield f"{key}: {value!r}", json_text({**good, key: value}).encode()


def check_response(response: httpx.Response, what: str, codes: set[str]) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert response.status_code in DOCUMENTED_STATUS, (
            f"{what}: undocumented status {response.status_code}"
        )
        if response.headers.get("content-type", "").startswith("application/json"):
            code = response.json()["error"]["code"]
            assert code in codes, f"{what}: undocumented error code {code!r}"


async def make_poll(http: httpx.AsyncClient, session_id: str, login: str, kind: str = "single") -> int:
    response = await http.post(
        f"/api/v1/sessions/{session_id}/polls",
        json={"question": "Tabs or spaces?", "kind": kind, "options": ["Tabs", "Spaces"], "open": True},
        headers={"authorization": f"Bearer {login}"},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def make_question(http: httpx.AsyncClient, session_id: str) -> int:
    response = await http.post(f"/api/v1/sessions/{session_id}/questions", json={"body": "Why?"})
    assert response.status_code == 201, response.text
    return int(response.json()["question"]["id"])


async def test_the_json_api_answers_every_hostile_body_with_a_documented_4xx(
    live: LiveServer, seeded: Seed
) -> None:
    codes = documented_codes()
    organiser = {"authorization": f"Bearer {seeded.login_token}"}
    invite = {"authorization": f"Bearer {seeded.token}"}
    s, e = seeded.session_id, seeded.event_id
    async with live.client() as http:
        poll = await make_poll(http, s, seeded.login_token)
        others = {
            kind: await make_poll(http, s, seeded.login_token, kind)
            for kind in ("multiple", "rating", "text")
        }
        question = await make_question(http, s)
        routes: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
            ("POST", "/api/v1/login", {}, {"username": "org", "password": "wrong"}),
            (
                "POST",
                "/api/v1/events",
                organiser,
                {"title": "T", "starts_on": "2026-05-14", "ends_on": "2026-05-15", "hashtags": ["#t"]},
            ),
            ("PATCH", f"/api/v1/events/{e}", organiser, {"title": "T", "venue": "V"}),
            (
                "POST",
                f"/api/v1/events/{e}/sessions",
                organiser,
                {
                    "title": "S",
                    "starts_at": "2026-05-14T09:00",
                    "ends_at": "2026-05-14T10:00",
                    "speakers": ["A"],
                },
            ),
            ("PATCH", f"/api/v1/sessions/{s}", organiser, {"title": "S", "question_moderation": False}),
            ("POST", f"/api/v1/events/{e}/invites", organiser, {"name": "N", "session_id": s}),
            (
                "POST",
                f"/api/v1/sessions/{s}/capture",
                invite,
                {
                    "type": "note.create",
                    "client_id": "c-1",
                    "body": "b",
                    "key_point": False,
                    "typed_at": "2026-05-14T09:00:00Z",
                },
            ),
            (
                "POST",
                f"/api/v1/sessions/{s}/capture",
                invite,
                {
                    "type": "note.update",
                    "client_id": "u-1",
                    "item_id": 1,
                    "target_client_id": "c-1",
                    "body": "b",
                },
            ),
            (
                "POST",
                f"/api/v1/sessions/{s}/capture",
                organiser,
                {"type": "note.delete", "client_id": "d-1", "item_id": 1},
            ),
            (
                "POST",
                f"/api/v1/sessions/{s}/polls",
                organiser,
                {
                    "question": "Q",
                    "kind": "single",
                    "options": ["a", "b"],
                    "open": True,
                    "duration_seconds": 60,
                    "client_id": "p-1",
                },
            ),
            ("POST", f"/api/v1/polls/{poll}/state", organiser, {"state": "open", "duration_seconds": 60}),
            (
                "POST",
                f"/api/v1/questions/{question}/moderation",
                organiser,
                {"action": "answer", "answer_item_id": 1},
            ),
            ("POST", f"/api/v1/polls/{poll}/votes", {}, {"choice": "a"}),
            ("POST", f"/api/v1/polls/{others['multiple']}/votes", {}, {"choice": ["a", "b"]}),
            ("POST", f"/api/v1/polls/{others['rating']}/votes", {}, {"choice": "4"}),
            ("POST", f"/api/v1/polls/{others['text']}/votes", {}, {"choice": "tabs"}),
            (
                "POST",
                f"/api/v1/sessions/{s}/questions",
                {},
                {"body": "Why?", "name": "N", "client_id": "q-1"},
            ),
        ]
        with server_log() as log:
            for method, path, headers, good in routes:
                for name, body in variants(good):
                    http.cookies.clear()  # a fresh participant each time: the flood limit is per participant
                    response = await http.request(
                        method, path, content=body, headers={**headers, "content-type": "application/json"}
                    )
                    check_response(response, f"{method} {path} [{name}]", codes)
                # A body over the route's limit, with and without a declared length.
                huge = b'{"body": "' + b"x" * (3 * 1024 * 1024) + b'"}'
                response = await http.request(method, path, content=huge, headers=headers)
                assert response.status_code in (401, 403, 413), (
                    f"{method} {path} [huge]: {response.status_code}"
                )

                async def chunks() -> Any:
                    for _ in range(48):
                        yield b"x" * 65536

                response = await http.request(method, path, content=chunks(), headers=headers)
                check_response(response, f"{method} {path} [huge, chunked]", codes)
            assert log.problems() == []


async def test_ids_in_paths_past_64_bits_are_not_found(live: LiveServer, seeded: Seed) -> None:
    codes = documented_codes()
    organiser = {"authorization": f"Bearer {seeded.login_token}"}
    huge = str(HUGE)
    async with live.client() as http:
        with server_log() as log:
            for method, path, body in [
                ("POST", f"/api/v1/polls/{huge}/votes", {"choice": "a"}),
                ("POST", f"/api/v1/polls/{huge}/state", {"state": "open"}),
                ("POST", f"/api/v1/questions/{huge}/upvotes", {}),
                ("POST", f"/api/v1/questions/{huge}/moderation", {"action": "pin"}),
                ("GET", f"/api/v1/sessions/{huge}", None),
                ("GET", "/api/v1/sessions/%ED%A0%80/items", None),
                ("GET", f"/media/{huge}", None),
                ("GET", "/media/%ED%A0%80", None),
                ("DELETE", f"/api/v1/invites/{huge}", None),
            ]:
                response = await http.request(method, path, json=body, headers=organiser)
                check_response(response, f"{method} {path}", codes)
                assert response.status_code in (400, 404), f"{method} {path}: {response.status_code}"
            assert log.problems() == []


async def test_hostile_credentials_in_headers_and_cookies_are_refused(live: LiveServer, seeded: Seed) -> None:
    codes = documented_codes()
    s = seeded.session_id
    junk = ["\xff" * 5000, "\u00e9\u00e8", "x" * 100_000, "a.b.c", "p_" + "0" * 40 + ".sig", ""]
    async with live.client() as http:
        question = await make_question(http, s)
        with server_log() as log:
            for value in junk:
                raw = value.encode("latin-1") or b"-"  # h11 refuses to send a trailing space
                for headers, cookies in [
                    ({"authorization": b"Bearer " + raw}, {}),
                    ({"liveblog-participant": raw}, {}),
                    ({}, {"lb_participant": value.encode("latin-1").decode("ascii", "ignore") or "x"}),
                    ({}, {"lb_login": value.encode("latin-1").decode("ascii", "ignore") or "x"}),
                ]:
                    http.cookies.clear()
                    for name, cookie in cookies.items():
                        http.cookies.set(name, cookie)
                    for method, path, body in [
                        ("POST", f"/api/v1/sessions/{s}/capture", {"client_id": "h", "body": "b"}),
                        ("POST", f"/api/v1/sessions/{s}/questions", {"body": "Why?"}),
                        ("POST", f"/api/v1/questions/{question}/upvotes", {}),
                        ("GET", f"/api/v1/sessions/{s}/moderation", None),
                        ("GET", f"/api/v1/sessions/{s}/audience", None),
                        ("POST", "/api/v1/events", {"title": "T"}),
                    ]:
                        response = await http.request(method, path, json=body, headers=headers)
                        check_response(
                            response, f"{method} {path} {str(headers)[:40]} {str(cookies)[:40]}", codes
                        )
                # The capture socket with a junk token (as a subprotocol, where only token characters fit).
                token = "".join(c for c in value if c.isascii() and c.isalnum())[:4000] or "x"
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    async with await wsclient.connect(
                        f"{live.ws_url}/ws/v1/sessions/{s}/capture", token=token
                    ) as ws:
                        await wsclient.recv_until(ws, lambda m: False)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
            assert log.problems() == []


async def test_forms_answer_hostile_fields_without_a_500(live: LiveServer, seeded: Seed) -> None:
    s, e = seeded.session_id, seeded.event_id
    async with live.client() as http:
        login = await http.post("/login", data={"username": ORGANISER[0], "password": ORGANISER[1]})
        assert login.status_code == 303
        forms = [
            ("/login", {"username": "org", "password": "x"}),
            (
                "/organise/events/new",
                {"title": "T", "starts_on": "2026-05-14", "ends_on": "2026-05-15", "hashtags": "#a"},
            ),
            (
                f"/organise/events/{e}",
                {"form": "event", "title": "T", "starts_on": "2026-05-14", "ends_on": "2026-05-15"},
            ),
            (f"/organise/events/{e}", {"form": "invite", "name": "N", "session_id": s}),
            (f"/organise/events/{e}", {"form": "revoke", "invite_id": "x"}),
            (
                f"/organise/sessions/{s}",
                {
                    "form": "session",
                    "title": "S",
                    "starts_at": "2026-05-14T09:00",
                    "ends_at": "2026-05-14T10:00",
                },
            ),
            (f"/organise/sessions/{s}", {"form": "state", "state": "live"}),
            (f"/organise/sessions/{s}", {"form": "remove_note", "item_id": "1"}),
        ]
        with server_log() as log:
            for path, good in forms:
                for key in good:
                    for value in ["%ED%A0%80", "%FF%FE", str(HUGE), "\u00b2", "x" * 100_000, ""]:
                        # urlencoded, percent-escapes as sent (the value is already escaped or plain)
                        encoded = "&".join(f"{k}={value if k == key else v}" for k, v in good.items())
                        response = await http.post(
                            path,
                            content=encoded,
                            headers={"content-type": "application/x-www-form-urlencoded"},
                        )
                        assert response.status_code < 500, (
                            f"{path} {key}={value[:20]}: {response.status_code}"
                        )
                    # multipart with a field that is not UTF-8
                    boundary = "xyz"
                    parts = b"".join(
                        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
                        + (b"\xff\xfe\xed\xa0\x80" if k == key else v.encode())
                        + b"\r\n"
                        for k, v in good.items()
                    )
                    response = await http.post(
                        path,
                        content=parts + f"--{boundary}--\r\n".encode(),
                        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
                    )
                    assert response.status_code < 500, f"{path} multipart {key}: {response.status_code}"
                response = await http.post(
                    path,
                    content=b"--b\r\nbroken",
                    headers={"content-type": "multipart/form-data; boundary=b"},
                )
                assert response.status_code < 500, f"{path} broken multipart: {response.status_code}"
            assert log.problems() == []


async def test_sse_positions_that_are_hostile_are_refused_or_resumed(live: LiveServer, seeded: Seed) -> None:
    codes = documented_codes()
    path = f"/api/v1/sessions/{seeded.session_id}/stream"
    async with live.client() as http:
        with server_log() as log:
            for params, headers in [
                ({"since": str(HUGE)}, {}),
                ({"since": "9" * 5000}, {}),
                ({"since": "\u00b2"}, {}),
                ({"since": "1", "epoch": "%ED%A0%80"}, {}),
                ({"since": "1", "epoch": "x" * 5000}, {}),
                ({}, {"last-event-id": f"abc:{HUGE}"}),
                ({}, {"last-event-id": "abc:\u00b2".encode()}),
                ({}, {"last-event-id": b"\xff\xfe:1"}),
                ({}, {"last-event-id": ("\u00e9" * 100 + ":1").encode("latin-1")}),
            ]:
                async with asyncio.timeout(10):
                    async with http.stream("GET", path, params=params, headers=headers) as response:
                        if response.status_code == 200:
                            # Accepted: the stream must say reload (a position it cannot resume).
                            text = ""
                            async for chunk in response.aiter_text():
                                text += chunk
                                if "event: reload" in text or "event: synced" in text:
                                    break
                            assert "event: reload" in text, f"{params} {headers}: {text[:200]}"
                        else:
                            await response.aread()
                            check_response(response, f"SSE {str(params)[:60]} {headers}", codes)
            assert log.problems() == []


async def test_uploads_answer_hostile_files_with_a_documented_4xx(live: LiveServer, seeded: Seed) -> None:
    codes = documented_codes()
    url = f"/api/v1/sessions/{seeded.session_id}/media"
    invite = {"authorization": f"Bearer {seeded.token}"}
    bomb = png_of_size(50_000, 50_000, rows=1)
    gif = b"GIF89a" + b"\xff" * 100

    def multipart(body: bytes, name: str = "file", boundary: str = "b0und") -> tuple[bytes, dict[str, str]]:
        part = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="p.png"\r\n\r\n'.encode()
        return part + body + f"\r\n--{boundary}--\r\n".encode(), {
            "content-type": f"multipart/form-data; boundary={boundary}"
        }

    async def endless() -> Any:
        for _ in range(12 * 16):
            yield b"\x89PNG" + b"\x00" * 65532

    cases: list[tuple[str, Any, dict[str, str]]] = [
        ("empty", b"", {}),
        ("not an image", b"<svg onload=alert(1)>", {"content-type": "image/png"}),
        ("truncated gif", gif, {"content-type": "image/gif"}),
        ("bomb", bomb, {"content-type": "image/png"}),
        ("bomb in a form", *multipart(bomb)),
        ("wrong form field", *multipart(b"x", name="photo")),
        (
            "surrogate field name",
            *multipart(b"x", name="\udcff".encode("utf-8", "surrogatepass").decode("latin-1")),
        ),
        ("broken form", b"--b0und\r\nbroken", {"content-type": "multipart/form-data; boundary=b0und"}),
        ("form without boundary", b"x", {"content-type": "multipart/form-data"}),
        ("huge declared", b"x" * (11 * 1024 * 1024), {"content-type": "image/png"}),
        ("huge chunked", endless(), {"content-type": "image/png"}),
    ]
    async with live.client() as http:
        with server_log() as log:
            for name, body, headers in cases:
                response = await http.post(url, content=body, headers={**invite, **headers})
                check_response(response, f"upload [{name}]", codes)
                assert response.status_code >= 400, name
            anonymous = await http.post(url, content=bomb, headers={"content-type": "image/png"})
            assert anonymous.status_code == 401
            assert log.problems() == []


async def send_invalid_utf8(ws: Any) -> None:
    """A text frame whose payload is not UTF-8 (the client library sends bytes as text unchecked)."""
    await ws.send(b'{"type": "\xff\xfe"}', text=True)


async def expect_reply(
    ws: Any, what: str, codes: set[str], kinds: tuple[str, ...] = ("error", "pong")
) -> dict[str, Any]:
    try:
        reply = await wsclient.recv_until(ws, lambda m: m.get("type") in (*kinds, "ack"))
    except websockets.ConnectionClosed as closed:
        raise AssertionError(f"{what}: the socket closed ({closed.rcvd})") from None
    last = reply[-1]
    if last["type"] == "error":
        assert last["code"] in codes, f"{what}: undocumented code {last['code']!r}"
    return last


async def test_the_viewer_socket_answers_hostile_frames_and_stays_open(
    live: LiveServer, seeded: Seed
) -> None:
    codes = documented_codes()
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}"
    with server_log() as log:
        async with await wsclient.connect(url) as ws:
            await wsclient.recv_type(ws, "synced")
            for name, body in variants({"type": "ping"}):
                try:
                    await ws.send(body.decode("utf-8"))
                except UnicodeDecodeError:
                    continue  # the invalid UTF-8 variant: sent as a raw frame below
                reply = await expect_reply(ws, f"viewer [{name}]", codes)
                assert reply["type"] in ("error", "pong"), name
            await ws.send(b"\x00\x01")
            assert (await expect_reply(ws, "binary", codes))["code"] == "unsupported_binary"
            await ws.send(b"\xff" * 100)
            assert (await expect_reply(ws, "binary", codes))["code"] == "unsupported_binary"
            await wsclient.send(ws, {"type": "ping"})
            assert (await expect_reply(ws, "ping", codes))["type"] == "pong"
        # Invalid UTF-8 is a protocol error (RFC 6455): the server closes with 1007 and logs no error.
        async with await wsclient.connect(url) as ws:
            await wsclient.recv_type(ws, "synced")
            await send_invalid_utf8(ws)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await wsclient.recv_until(ws, lambda m: False)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        # A frame over limits.frame_bytes closes the socket with 1009 (the server library's limit).
        async with await wsclient.connect(url, max_size=None) as ws:
            await wsclient.recv_type(ws, "synced")
            await ws.send("[" * (1024 * 1024 + 1))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await wsclient.recv_until(ws, lambda m: False)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        for query in [f"since={HUGE}", "since=1&epoch=%ED%A0%80", "since=%C2%B2", "epoch=" + "x" * 5000]:
            async with await wsclient.connect(f"{url}?{query}") as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await wsclient.recv_until(ws, lambda m: False)
                assert closed.value.rcvd is not None and closed.value.rcvd.code in documented_close_codes(), (
                    query
                )
        assert log.problems() == []


async def test_the_capture_socket_answers_hostile_frames_and_still_acks_a_good_note(
    live: LiveServer, seeded: Seed, services: Services
) -> None:
    codes = documented_codes()
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}/capture"
    goods = [
        {
            "type": "note.create",
            "client_id": "c-1",
            "body": "b",
            "key_point": False,
            "typed_at": "2026-05-14T09:00:00Z",
        },
        {"type": "note.update", "client_id": "u-1", "item_id": 1, "target_client_id": "c-1", "body": "b"},
        {"type": "note.delete", "client_id": "d-1", "target_client_id": "c-1"},
    ]
    with server_log() as log:
        async with await wsclient.connect(url, token=seeded.token) as ws:
            await wsclient.recv_type(ws, "synced")
            n = 0
            for good in goods:
                for name, body in variants(good):
                    n += 1
                    # A unique client id each time, unless the client id is the field under attack.
                    text = (
                        body.decode("utf-8", "surrogateescape").replace('"c-1"', f'"c-{n}"', 1)
                        if good["type"] == "note.create"
                        else body.decode("utf-8", "surrogateescape")
                    )
                    try:
                        text.encode()
                    except UnicodeEncodeError:
                        continue  # the invalid UTF-8 variant: sent as a raw frame below
                    await ws.send(text)
                    reply = await expect_reply(ws, f"capture [{name}]", codes)
                    if reply["type"] == "error":
                        assert reply["code"] != "internal", f"capture [{name}]: {reply}"
            await wsclient.send(ws, {"type": "note.create", "client_id": "good-after", "body": "still here"})
            ack = await expect_reply(ws, "a good note afterwards", codes, ("ack",))
            assert ack["type"] == "ack" and ack["client_id"] == "good-after"
        async with await wsclient.connect(url, token=seeded.token) as ws:
            await wsclient.recv_type(ws, "synced")
            await send_invalid_utf8(ws)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await wsclient.recv_until(ws, lambda m: False)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        assert log.problems() == []


# -- the defects one by one ------------------------------------------------------------------------


async def test_a_lone_surrogate_in_a_client_id_is_refused_and_the_socket_keeps_acking(
    live: LiveServer, seeded: Seed
) -> None:
    # Before: no reply, and the acker died encoding the error frame, so nothing was acked again.
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}/capture"
    async with await wsclient.connect(url, token=seeded.token) as ws:
        await wsclient.recv_type(ws, "synced")
        await ws.send('{"type": "note.create", "client_id": "a\\ud800", "body": "hello"}')
        error = await wsclient.recv_type(ws, "error")
        assert (error["code"], error["field"]) == ("invalid_field", "client_id")
        await wsclient.send(ws, {"type": "note.create", "client_id": "after", "body": "still acked"})
        assert (await wsclient.recv_type(ws, "ack"))["client_id"] == "after"


async def test_a_lone_surrogate_in_a_note_body_is_a_field_error_not_internal(
    live: LiveServer, seeded: Seed
) -> None:
    # Before: "internal", which tells the client to resend something that can never succeed.
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}/capture"
    async with await wsclient.connect(url, token=seeded.token) as ws:
        await wsclient.recv_type(ws, "synced")
        await ws.send('{"type": "note.create", "client_id": "s-1", "body": "caf\\udce9"}')
        error = await wsclient.recv_type(ws, "error")
        assert (error["code"], error["field"]) == ("invalid_field", "body")
    async with live.client() as http:
        response = await http.post(
            f"/api/v1/sessions/{seeded.session_id}/capture",
            content=b'{"client_id": "s-2", "body": "caf\\udce9"}',
            headers={"authorization": f"Bearer {seeded.token}"},
        )
        assert response.status_code == 400 and response.json()["error"]["field"] == "body"


async def test_a_deep_array_on_the_viewer_socket_is_answered_and_the_socket_stays_open(
    live: LiveServer, seeded: Seed
) -> None:
    # Before: RecursionError killed the handler and the connection dropped with no close code.
    async with await wsclient.connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
        await wsclient.recv_type(ws, "synced")
        await ws.send("[" * DEEP + "]" * DEEP)
        assert (await wsclient.recv_type(ws, "error"))["code"] == "invalid_json"
        await wsclient.send(ws, {"type": "ping"})
        await wsclient.recv_type(ws, "pong")


async def test_invalid_utf8_frames_are_counted_not_logged_as_errors(live: LiveServer, seeded: Seed) -> None:
    # Before: each one was an ERROR with a full traceback, so anyone could fill the log.
    async with live.client() as http:
        before = (await http.get("/api/v1/metrics")).json()["rejected_input"].get("invalid_utf8", 0)
        with server_log() as log:
            for _ in range(3):
                async with await wsclient.connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
                    await wsclient.recv_type(ws, "synced")
                    await send_invalid_utf8(ws)
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await wsclient.recv_until(ws, lambda m: False)
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
            assert log.problems() == []
        after = (await http.get("/api/v1/metrics")).json()["rejected_input"]["invalid_utf8"]
        assert after == before + 3


def test_a_frame_never_fails_to_encode() -> None:
    from liveblog.streams.protocol import Frame, ws_close_frame

    assert Frame.of({"type": "error", "client_id": "a" + SURROGATE}).ws_bytes.endswith(b'"client_id":"a?"}')
    close = ws_close_frame(4400, "a" + "\u00e9" * 100)  # 201 bytes: cut mid-character before
    assert len(close) - 2 <= 125 and close[4:].decode("utf-8")


async def test_a_huge_form_is_refused_with_413_before_it_fills_memory(live: LiveServer, seeded: Seed) -> None:
    # Before: Starlette's form parser bounds each field to 1 MB but keeps up to 1,000 of them
    # (a gigabyte) in memory, from anyone (/login).
    field = b"x" * 900_000

    async def endless() -> Any:
        for n in range(14):
            yield b"f%d=%s&" % (n, field)

    async with live.client() as http:
        with server_log() as log:
            for content in (endless(), b"&".join(b"f%d=%s" % (n, field) for n in range(14))):
                response = await http.post(
                    "/login", content=content, headers={"content-type": "application/x-www-form-urlencoded"}
                )
                assert response.status_code == 413 and "text/html" in response.headers["content-type"]
            api = await http.post("/api/v1/login", content=b"x" * (11 * 1024 * 1024))
            assert api.status_code == 413 and api.json()["error"]["code"] == "too_large"
            assert log.problems() == []


async def test_every_route_answers_hostile_path_and_query_values_without_a_500(
    live: LiveServer, seeded: Seed
) -> None:
    from starlette.routing import Route

    from liveblog.web import answers, api, archive, audience, comments, feeds, long_pages, pages, programme
    from liveblog.web import federation as fediverse

    codes = documented_codes()
    values = ["%00", "%ED%A0%80", "%FF%FE", "9" * 25, "x" * 3000, "..%2F..%2Fetc", "%C2%B2", "-1", "a%20b"]
    query = "?since=%ED%A0%80&epoch=%00&next=%ED%A0%80&day=2026-99-99&page=" + "9" * 30
    auths = [
        {},
        {"authorization": f"Bearer {seeded.login_token}"},
        {"authorization": f"Bearer {seeded.token}"},
    ]
    # Every module's routes: those added since issue 19 (speaker answers, long pages, the
    # fediverse) and those the walk had left out (comments, feeds, archive, programme).
    added = (
        *answers.routes,
        *long_pages.routes,
        *fediverse.routes,
        *comments.routes,
        *feeds.routes,
        *archive.routes,
        *programme.routes,
    )
    # (the feeds' status stream streams for as long as it is read: test_feeds_panel reads it)
    added = tuple(r for r in added if not getattr(r, "path", "").endswith("/status/stream"))
    routes = [r for r in (*pages.routes, *api.routes, *audience.routes, *added) if isinstance(r, Route)]
    assert len(routes) > 30
    async with live.client() as http:
        with server_log() as log:
            for route in routes:
                if not route.param_convertors:
                    continue
                real = {
                    "session_id": seeded.session_id,
                    "event_id": seeded.event_id,
                    "token": seeded.token,
                    "invite_id": seeded.invite_id,
                }
                for value in [*values, None]:  # None: real ids, with the hostile query alone
                    path = route.path
                    for name in route.param_convertors:
                        path = re.sub(r"\{" + name + r"(:[a-z]+)?\}", value or real.get(name, "1"), path)
                    for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                        for headers in auths:
                            async with asyncio.timeout(10):
                                response = await http.request(method, path + query, headers=headers, json={})
                            check_response(response, f"{method} {route.path} {(value or '')[:20]}", codes)
            assert log.problems() == []

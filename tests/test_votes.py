"""Polls and votes over a real server: one vote per participant under concurrency, re-votes,
signed participant ids, closed polls, coalesced tallies, resume, and every bad input's answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from liveblog.archive.exports import export_json
from liveblog.capture.imports import import_json
from liveblog.capture.votes import Moderator, canonical_choice, compute_tally, poll_fields
from liveblog.errors import BadRequest, Conflict
from liveblog.services import Services
from liveblog.settings import Settings
from tests.conftest import (
    BACKENDS,
    LiveServer,
    Seed,
    csrf_header,
    eventually,
    make_settings,
    query,
    settings_for,
)
from tests.wsclient import connect, recv_type, recv_until

HEADER = "Liveblog-Participant"


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    # A short interval keeps the tests quick; a low burst limit shows flagging never blocks.
    return settings_for(
        request, tmp_path, backend, votes={"tally_interval_ms": 100, "ip_burst_per_minute": 50}
    )


# -- helpers (also used by test_questions.py) --------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_participant(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/v1/participants")
    assert response.status_code == 201, response.text
    client.cookies.clear()
    return str(response.json()["token"])


async def make_poll(
    client: httpx.AsyncClient,
    seed: Seed,
    *,
    kind: str = "single",
    options: list[str] | None = None,
    open: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"question": "Tabs or spaces?", "kind": kind, "open": open, **extra}
    if kind in ("single", "multiple"):
        body["options"] = options or ["Tabs", "Spaces", "Both"]
    response = await client.post(
        f"/api/v1/sessions/{seed.session_id}/polls", json=body, headers=bearer(seed.token)
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def vote(client: httpx.AsyncClient, poll_id: int, token: str, choice: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/polls/{poll_id}/votes", json={"choice": choice}, headers={HEADER: token}
    )


async def stored_votes(live: LiveServer, poll_id: int) -> int:
    return await live.services.db.read(lambda r: r.count_votes(poll_id))


async def head(live: LiveServer, seed: Seed) -> int:
    session = await live.services.programme.session(seed.session_id)
    return session.last_seq


@contextlib.asynccontextmanager
async def imported(live: LiveServer, event_id: str, tmp_path: Path) -> AsyncIterator[Services]:
    """Services on a fresh database holding the event imported from its JSON export."""
    doc = await export_json(live.services.db, event_id)
    (tmp_path / "fresh").mkdir()
    fresh = Services.build(make_settings(tmp_path / "fresh"))
    await fresh.open()
    try:
        await import_json(fresh.db, json.loads(json.dumps(doc)))
        yield fresh
    finally:
        await fresh.close()


def error_of(response: httpx.Response) -> dict[str, Any]:
    return response.json()["error"]  # type: ignore[no-any-return]


async def wait_for_tally(ws: Any, poll_id: int, predicate: Any, timeout: float = 10) -> list[dict[str, Any]]:
    """Stream messages up to the first tally of this poll that satisfies predicate."""
    return await recv_until(
        ws,
        lambda m: (
            m.get("type") == "change"
            and m.get("op") == "poll.tally"
            and m["item_id"] == poll_id
            and predicate(m)
        ),
        timeout,
    )


# -- pure rules --------------------------------------------------------------------------------


def test_choices_are_checked_against_the_poll() -> None:
    single = poll_fields({"question": "Q", "options": ["x", "y"]})
    assert canonical_choice(single, "b") == '"b"'
    with pytest.raises(BadRequest) as err:
        canonical_choice(single, "z")
    assert err.value.code == "unknown_option"
    multiple = poll_fields({"question": "Q", "kind": "multiple", "options": ["x", "y", "z"]})
    assert canonical_choice(multiple, ["c", "a", "c"]) == '["a", "c"]'
    rating = poll_fields({"question": "Q", "kind": "rating"})
    assert canonical_choice(rating, 4) == '"4"'
    with pytest.raises(BadRequest):
        canonical_choice(rating, 6)


def test_tallies() -> None:
    multiple = poll_fields({"question": "Q", "kind": "multiple", "options": ["x", "y", "z"]})
    assert compute_tally(multiple, [('["a", "c"]', 2), ('["b"]', 1)]) == {
        "tally": {"a": 2, "b": 1, "c": 2},
        "voters": 3,
    }
    rating = poll_fields({"question": "Q", "kind": "rating"})
    assert compute_tally(rating, [('"5"', 1), ('"2"', 1)])["average"] == 3.5
    text = poll_fields({"question": "Q", "kind": "text"})
    out = compute_tally(text, [('"Fast and fun"', 3), ('"fun, fun FUN"', 1)])
    assert out["tally"] == {"fun": 4, "fast": 3} and out["voters"] == 4


# -- over the wire -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_200_participants_voting_concurrently_make_exactly_200_votes(
    live: LiveServer, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Fresh" is 10 s after minting; minting 200 ids one after another on a loaded machine can
    # take longer than that, and then too few votes count as fresh to flag. Here every id is fresh.
    monkeypatch.setattr("liveblog.web.audience.FRESH_SECONDS", 3600.0)
    async with live.client() as client:
        poll = await make_poll(client, seeded)
        tokens = [await new_participant(client) for _ in range(200)]
        async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
            await recv_type(ws, "synced")
            # The viewer reads all along, as a browser does: a socket left unread while the votes
            # go (tally changes arrive meanwhile) stops answering pings, and the server rightly
            # closes it as stalled (4408) when voting takes longer than streams.stall_seconds.
            watching = asyncio.create_task(
                wait_for_tally(ws, poll["id"], lambda m: m["voters"] == 200, timeout=90)
            )
            options = ["a", "b", "c"]
            started = time.monotonic()
            try:
                # One connection per voter, as 200 phones have: a kept-alive connection handed to
                # a queued request can meet the server's keep-alive timeout closing it (the test's
                # client and server share one event loop, so a loaded loop stretches that gap).
                limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
                async with live.client(limits=limits) as voters:
                    responses = await asyncio.gather(
                        *(vote(voters, poll["id"], t, options[i % 3]) for i, t in enumerate(tokens))
                    )
                assert [r.status_code for r in responses] == [201] * 200
                seen = await watching
            finally:
                watching.cancel()
            elapsed = time.monotonic() - started
        final = seen[-1]
        assert final["tally"] == {"a": 67, "b": 67, "c": 66}
        assert sum(final["tally"].values()) == 200
        assert await stored_votes(live, poll["id"]) == 200
        # Coalesced: at most one tally change per poll per interval (100 ms here), however long
        # the votes took; far fewer than the votes when they come together.
        tallies = [m for m in seen if m.get("op") == "poll.tally"]
        assert 1 <= len(tallies) <= elapsed / 0.1 + 2, (len(tallies), elapsed)
        # 200 actions from one IP went over the burst limit of 50: flagged, yet nobody was blocked.
        # (The ids were minted a moment before voting, so they are flagged as fresh ids too.)
        moderation = (
            await client.get(f"/api/v1/sessions/{seeded.session_id}/moderation", headers=bearer(seeded.token))
        ).json()
        flags = moderation["flags"]
        # Once per IP per minute: a run that straddles a minute boundary is flagged in both.
        assert {f["kind"] for f in flags} == {"fresh_ids", "ip_burst"}
        assert len({(f["kind"], f["minute"]) for f in flags}) == len(flags) <= 4
        assert {f["ip"] for f in moderation["flags"]} == {"127.0.0.1"}


async def test_voting_again_changes_the_vote_rather_than_adding_one(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as client:
        poll = await make_poll(client, seeded)
        token = await new_participant(client)
        async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
            await recv_type(ws, "synced")
            first = await vote(client, poll["id"], token, "a")
            assert first.status_code == 201 and first.json()["status"] == "created"
            await wait_for_tally(ws, poll["id"], lambda m: m["tally"]["a"] == 1)
            second = await vote(client, poll["id"], token, "b")
            assert second.status_code == 200 and second.json() == {
                "poll_id": poll["id"],
                "choice": "b",
                "status": "changed",
            }
            seen = await wait_for_tally(ws, poll["id"], lambda m: m["tally"]["b"] == 1)
            assert seen[-1]["tally"] == {"a": 0, "b": 1, "c": 0} and seen[-1]["voters"] == 1
            same = await vote(client, poll["id"], token, "b")
            assert same.status_code == 200 and same.json()["status"] == "unchanged"
        assert await stored_votes(live, poll["id"]) == 1
        state = (
            await client.get(f"/api/v1/sessions/{seeded.session_id}/audience", headers={HEADER: token})
        ).json()
        assert state["you"]["votes"] == {str(poll["id"]): "b"}


async def test_a_browser_without_a_participant_gets_a_signed_cookie(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as client:
        poll = await make_poll(client, seeded)
        first = await client.post(f"/api/v1/polls/{poll['id']}/votes", json={"choice": "a"})
        assert first.status_code == 201
        assert "lb_participant" in client.cookies
        # A client that keeps the cookie signs its requests with the CSRF token it was given.
        csrf = {"X-CSRF-Token": first.json()["csrf_token"]}
        again = await client.post(f"/api/v1/polls/{poll['id']}/votes", json={"choice": "c"}, headers=csrf)
        assert again.json()["status"] == "changed"  # the same participant, by its cookie
        assert await stored_votes(live, poll["id"]) == 1


async def test_organisers_vote_as_themselves(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as client:
        poll = await make_poll(client, seeded)
        response = await client.post(
            f"/api/v1/polls/{poll['id']}/votes", json={"choice": "a"}, headers=bearer(seeded.login_token)
        )
        assert response.status_code == 201
        rows = await query(live.services.db, "SELECT participant FROM votes")
        assert rows[0][0].startswith("account:")


@pytest.mark.parametrize(
    "forged",
    [
        "p_AAAAAAAAAAAAAAAAAAAAAA",  # unsigned
        "p_AAAAAAAAAAAAAAAAAAAAAA.c2lnbmF0dXJl",  # a made-up signature
        "account:1",  # claiming to be an organiser
        "x",
    ],
)
async def test_forged_or_unsigned_participant_ids_are_refused(
    live: LiveServer, seeded: Seed, forged: str
) -> None:
    async with live.client() as client:
        poll = await make_poll(client, seeded)
        genuine = await new_participant(client)
        before = await head(live, seeded)
        by_header = await vote(client, poll["id"], forged, "a")
        client.cookies.set("lb_participant", forged)
        by_cookie = await client.post(
            f"/api/v1/polls/{poll['id']}/votes",
            json={"choice": "a"},
            headers=csrf_header({"lb_participant": forged}),
        )
        client.cookies.clear()
        # A real id with its signature moved onto another id is forged too.
        tampered = "p_BBBBBBBBBBBBBBBBBBBBBB." + genuine.split(".", 1)[1]
        by_tampering = await vote(client, poll["id"], tampered, "a")
    for response in (by_header, by_cookie, by_tampering):
        assert response.status_code == 403, response.text
        assert error_of(response)["code"] == "bad_participant"
    assert await stored_votes(live, poll["id"]) == 0
    assert await head(live, seeded) == before


async def test_a_closed_poll_refuses_votes_with_a_clear_error(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as client:
        poll = await make_poll(client, seeded)
        token = await new_participant(client)
        assert (await vote(client, poll["id"], token, "a")).status_code == 201
        closed = await client.post(
            f"/api/v1/polls/{poll['id']}/state", json={"state": "closed"}, headers=bearer(seeded.token)
        )
        assert closed.status_code == 200
        assert closed.json()["data"]["state"] == "closed"
        assert closed.json()["data"]["tally"]["a"] == 1  # the final tally is in the closing change
        before = await head(live, seeded)
        response = await vote(client, poll["id"], token, "b")
        assert response.status_code == 409
        assert error_of(response)["code"] == "poll_closed"
        assert "closed" in error_of(response)["message"]
        draft = await make_poll(client, seeded, open=False)
        response = await vote(client, draft["id"], token, "a")
        assert response.status_code == 409 and error_of(response)["code"] == "poll_closed"
        assert await head(live, seeded) == before + 1  # only the draft poll was added
        assert await stored_votes(live, poll["id"]) == 1


async def test_a_poll_closes_itself_after_its_duration(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as client:
        async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
            await recv_type(ws, "synced")
            poll = await make_poll(client, seeded, duration_seconds=1)
            assert poll["data"]["closes_at"]
            token = await new_participant(client)
            assert (await vote(client, poll["id"], token, "c")).status_code == 201
            seen = await recv_until(
                ws,
                lambda m: (
                    m.get("op") == "item.updated"
                    and m["item"]["id"] == poll["id"]
                    and m["item"]["data"]["state"] == "closed"
                ),
                timeout=5,
            )
            assert seen[-1]["item"]["data"]["tally"]["c"] == 1
        response = await vote(client, poll["id"], token, "a")
        assert error_of(response)["code"] == "poll_closed"


async def test_a_flood_from_one_participant_is_refused_and_changes_nothing(
    live: LiveServer, seeded: Seed
) -> None:
    async with live.client() as client:
        poll = await make_poll(client, seeded)
        token = await new_participant(client)
        statuses = []
        # The guard's clock stands still: all 12 votes fall inside one window however slow the
        # machine is (the test used to skip itself when it was slow, so it might never run).
        live.services.audience.flood.clock = lambda: 1000.0
        for i in range(12):
            statuses.append((await vote(client, poll["id"], token, "abc"[i % 3])).status_code)
        assert statuses == [201] + [200] * 9 + [429, 429]
        response = await vote(client, poll["id"], token, "b")
        assert response.status_code == 429
        assert error_of(response)["code"] == "rate_limited"
        first_refused = statuses.index(429)
        rows = await query(live.services.db, "SELECT choice FROM votes")
        # The stored vote is the last one accepted, not any refused one.
        assert [r[0] for r in rows] == [f'"{"abc"[(first_refused - 1) % 3]}"']


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_reconnecting_viewer_catches_up_on_polls_tallies_and_questions(
    live: LiveServer, seeded: Seed
) -> None:
    url = f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}"
    async with live.client() as client:
        async with await connect(url) as ws:
            synced = await recv_type(ws, "synced")
        since = synced["seq"]
        # While the viewer is away: a poll, votes, a question and upvotes.
        poll = await make_poll(client, seeded)
        tokens = [await new_participant(client) for _ in range(5)]
        for t in tokens:
            assert (await vote(client, poll["id"], t, "b")).status_code == 201
        asked = await client.post(
            f"/api/v1/sessions/{seeded.session_id}/questions",
            json={"body": "What about mobile?"},
            headers={HEADER: tokens[0]},
        )
        question_id = asked.json()["question"]["id"]
        for t in tokens[:3]:
            assert (
                await client.post(f"/api/v1/questions/{question_id}/upvotes", headers={HEADER: t})
            ).status_code == 201

        async def settled() -> bool:
            state = await live.services.audience.snapshot(seeded.session_id, None)
            return state["polls"][0]["data"]["voters"] == 5 and state["questions"][0]["data"]["votes"] == 3

        await eventually(settled, 5, "the tallies to be written")
        now = await head(live, seeded)
        async with await connect(f"{url}?since={since}") as ws:
            replay = await recv_until(ws, lambda m: m.get("type") == "synced")
    changes = [m for m in replay if m.get("type") == "change"]
    assert [m["seq"] for m in changes] == list(range(since + 1, now + 1))
    tallies = [m for m in changes if m["op"] == "poll.tally"]
    assert tallies[-1]["tally"] == {"a": 0, "b": 5, "c": 0} and tallies[-1]["voters"] == 5
    created = [m["item"] for m in changes if m["op"] == "item.created"]
    assert [i["kind"] for i in created] == ["poll", "question"]
    assert created[1]["body"] == "What about mobile?"
    assert [m for m in changes if m["op"] == "question.votes"][-1]["votes"] == 3


async def test_bad_votes_get_their_documented_error_and_change_nothing(
    live: LiveServer, seeded: Seed
) -> None:
    async with live.client() as client:
        poll = await make_poll(client, seeded)
        multi = await make_poll(client, seeded, kind="multiple", options=["x", "y"])
        text = await make_poll(client, seeded, kind="text")
        token = await new_participant(client)
        before = await head(live, seeded)
        cases: list[tuple[httpx.Response, int, str]] = [
            (await vote(client, 999999, token, "a"), 404, "unknown_poll"),
            (await vote(client, poll["id"], token, "z"), 400, "unknown_option"),
            (await vote(client, poll["id"], token, None), 400, "missing_field"),
            (await vote(client, poll["id"], token, 3), 400, "invalid_field"),
            (await vote(client, multi["id"], token, []), 400, "invalid_field"),
            (await vote(client, multi["id"], token, ["a", "q"]), 400, "unknown_option"),
            (await vote(client, text["id"], token, "   "), 400, "empty"),
            (await vote(client, text["id"], token, "x" * 101), 413, "too_large"),
            (
                await client.post(
                    f"/api/v1/polls/{poll['id']}/votes", content=b"{nope", headers={HEADER: token}
                ),
                400,
                "invalid_json",
            ),
            (
                await client.post(f"/api/v1/polls/{poll['id']}/votes", json=["a"], headers={HEADER: token}),
                400,
                "invalid_json",
            ),
            (
                await client.post(
                    f"/api/v1/polls/{poll['id']}/votes",
                    json={"choice": "a"},
                    headers={HEADER: token, "Origin": "https://evil.example"},
                ),
                403,
                "bad_origin",
            ),
        ]
        for response, status, code in cases:
            assert (response.status_code, error_of(response)["code"]) == (status, code), response.text
        assert await head(live, seeded) == before
        count = await query(live.services.db, "SELECT count(*) FROM votes")
        assert count[0][0] == 0


async def test_bad_poll_management_gets_its_documented_error(live: LiveServer, seeded: Seed) -> None:
    url = f"/api/v1/sessions/{seeded.session_id}/polls"
    async with live.client() as client:
        before = await head(live, seeded)
        cases = [
            (await client.post(url, json={"question": "Q", "options": ["a", "b"]}), 401, "unauthorized"),
            (
                await client.post(
                    url, json={"question": "", "options": ["a", "b"]}, headers=bearer(seeded.token)
                ),
                400,
                "empty",
            ),
            (
                await client.post(
                    url, json={"question": "Q", "options": ["a"]}, headers=bearer(seeded.token)
                ),
                400,
                "invalid_field",
            ),
            (
                await client.post(url, json={"question": "Q", "kind": "poll"}, headers=bearer(seeded.token)),
                400,
                "invalid_field",
            ),
            (
                await client.post(
                    f"/api/v1/sessions/{seeded.other_session_id}/polls",
                    json={"question": "Q", "kind": "rating"},
                    headers=bearer(seeded.token),
                ),
                403,
                "forbidden",
            ),
            (
                await client.post(
                    "/api/v1/polls/424242/state", json={"state": "open"}, headers=bearer(seeded.token)
                ),
                404,
                "unknown_poll",
            ),
        ]
        for response, status, code in cases:
            assert (response.status_code, error_of(response)["code"]) == (status, code), response.text
        poll = await make_poll(client, seeded, open=False)
        bad_state = await client.post(
            f"/api/v1/polls/{poll['id']}/state", json={"state": "maybe"}, headers=bearer(seeded.token)
        )
        assert (bad_state.status_code, error_of(bad_state)["code"]) == (400, "invalid_field")
        viewer = await client.post(f"/api/v1/polls/{poll['id']}/state", json={"state": "open"})
        assert viewer.status_code == 401
        assert await head(live, seeded) == before + 1
        # An organiser may moderate any session; opening works.
        opened = await client.post(
            f"/api/v1/polls/{poll['id']}/state", json={"state": "open"}, headers=bearer(seeded.login_token)
        )
        assert opened.json()["data"]["state"] == "open"


async def test_the_big_screen_page_renders(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as client:
        page = await client.get(f"/sessions/{seeded.session_id}/screen")
        assert page.status_code == 200
        assert "/static/js/bigscreen.js" in page.text
        assert "<script>" not in page.text  # CSP: no inline scripts
        missing = await client.get("/sessions/nope/screen")
        assert missing.status_code == 404
        moderation = await client.get(f"/n/{seeded.token}/sessions/{seeded.session_id}/moderate")
        assert moderation.status_code == 200 and "/static/js/moderation.js" in moderation.text
        assert (await client.get(f"/n/not-a-token/sessions/{seeded.session_id}/moderate")).status_code == 401
        assert (await client.get(f"/organise/sessions/{seeded.session_id}/moderate")).status_code == 401
        client.cookies.set("lb_login", seeded.login_token)
        assert (await client.get(f"/organise/sessions/{seeded.session_id}/moderate")).status_code == 200


async def test_the_big_screen_shows_a_way_in_for_the_room(live: LiveServer, seeded: Seed) -> None:
    """The big screen carries a QR code and a short address; the short address takes a phone to the
    session's page with the room code already filled in, so nobody types it."""
    async with live.client() as client:
        page = await client.get(f"/sessions/{seeded.session_id}/screen")
        code = live.services.audience.rooms.code_for(seeded.session_id)
        short = f"{live.url}/j/{code}"
        assert "<svg" in page.text and 'aria-label="QR code to join' in page.text
        assert short.split("://", 1)[1] in page.text
        joined = await client.get(f"/j/{code.lower()}")
        assert joined.status_code in (302, 303, 307)
        assert joined.headers["location"] == f"/sessions/{seeded.session_id}?code={code}"
        wrong = await client.get("/j/ZZZZZZ")
        assert wrong.status_code == 404 and "room code" in wrong.text.lower()
    # Before it starts, a session of today's event is found too; one of an event months away is not
    # (its programme is never read for a public short address).
    from datetime import date, timedelta

    svc = live.services
    today, later = date.today(), date.today() + timedelta(days=120)
    found = []
    for day in (today, later):
        event = await svc.programme.create_event(
            {"title": f"Day {day}", "starts_on": day.isoformat(), "ends_on": day.isoformat()}
        )
        session = await svc.programme.create_session(
            event.id,
            {
                "title": "Opening",
                "starts_at": f"{day.isoformat()}T23:00",
                "ends_at": f"{day.isoformat()}T23:30",
            },
        )
        async with live.client() as client:
            found.append((await client.get(f"/j/{svc.audience.rooms.code_for(session.id)}")).status_code)
    assert found == [303, 404]


async def test_flagged_votes_can_be_discounted_from_the_result(
    live: LiveServer, seeded: Seed, tmp_path: Path
) -> None:
    """Votes cast while their address is over a burst limit are flagged; a moderator leaves them
    out of the result (and counts them again), each a ledger entry, each one change on the stream
    (seqs contiguous); the export carries the counted result and the ledger, import restores them."""
    svc = live.services
    async with live.client() as client:
        poll = await make_poll(client, seeded)
        # Fresh ids: over votes.fresh_ids_per_minute (20) from one address, later votes are flagged.
        tokens = [await new_participant(client) for _ in range(30)]
        async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
            synced = await recv_type(ws, "synced")
            for i, t in enumerate(tokens):
                assert (await vote(client, poll["id"], t, "a" if i < 20 else "b")).status_code == 201
            flagged = await svc.db.read(lambda r: r.count_flagged_votes(poll["id"]))
            assert 0 < flagged <= 10  # (a minute boundary mid-run restarts the count)
            seen = await wait_for_tally(
                ws, poll["id"], lambda m: m["voters"] == 30 and m["flagged"] == flagged
            )
            assert seen[-1]["discounted"] == 0
            url = f"/api/v1/polls/{poll['id']}/discount"
            refused = await client.post(url, json={"discount": "yes"}, headers=bearer(seeded.token))
            assert refused.status_code == 400 and error_of(refused)["field"] == "discount"
            assert (await client.post(url, json={"discount": True})).status_code == 401
            done = await client.post(
                url, json={"discount": True, "reason": "a script"}, headers=bearer(seeded.token)
            )
            assert done.status_code == 200, done.text
            data = done.json()["data"]
            assert (
                data["voters"] == 30 - flagged and data["discounted"] == flagged and data["discount_flagged"]
            )
            assert data["tally"] == {"a": 20 - max(0, flagged - 10), "b": 10 - min(10, flagged), "c": 0}
            again = await client.post(url, json={"discount": True}, headers=bearer(seeded.token))
            assert again.json()["version"] == done.json()["version"]  # already discounted: no change
            restored = await client.post(url, json={"discount": False}, headers=bearer(seeded.token))
            assert restored.json()["data"]["voters"] == 30 and restored.json()["data"]["discounted"] == 0
            await client.post(url, json={"discount": True}, headers=bearer(seeded.token))
            now = await head(live, seeded)
            changes = await recv_until(ws, lambda m: m.get("seq") == now, 10)
        changes = [m for m in seen + changes if m.get("type") == "change"]
        assert [m["seq"] for m in changes] == list(range(synced["seq"] + 1, now + 1))
        updates = [
            m["item"]["data"] for m in changes if m["op"] == "item.updated" and m["item"]["id"] == poll["id"]
        ]
        assert [(d["voters"], d["discounted"]) for d in updates[-3:]] == [
            (30 - flagged, flagged),
            (30, 0),
            (30 - flagged, flagged),
        ]
    log = await svc.db.read(lambda r: r.moderation_log(seeded.event_id, seeded.session_id))
    assert [(e.action, e.target_kind, e.target_id, e.reason) for e in reversed(log)] == [
        ("discount", "poll", str(poll["id"]), "a script"),
        ("count", "poll", str(poll["id"]), ""),
        ("discount", "poll", str(poll["id"]), ""),
    ]
    assert log[0].actor == "Ada"
    # The export carries the counted result and the ledger; an import restores both.
    async with imported(live, seeded.event_id, tmp_path) as fresh:
        item = await fresh.db.read(lambda r: r.get_item(poll["id"]))
        assert item is not None and item.data["discounted"] == flagged and item.data["voters"] == 30 - flagged
        assert [e.action for e in await fresh.db.read(lambda r: r.moderation_log(seeded.event_id))][:3] == [
            "discount",
            "count",
            "discount",
        ]
        # Its votes are not exported (who voted): its result cannot be counted again there.
        with pytest.raises(Conflict) as refused_there:
            await fresh.audience.discount_flagged(poll["id"], Moderator("Ada", "x"), {"discount": False})
        assert refused_there.value.code == "votes_not_here"

"""Who may take part in polls and Q&A (anyone, people with the room code, logged-in accounts), and
burst flags for moderators that never block a real room (issue 8 section 1, anonymous voting)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import LiveServer, Seed, organiser_csrf

PARTICIPANT = "Liveblog-Participant"
ROOM = "Liveblog-Room-Code"


def invite(seed: Seed) -> dict[str, str]:
    return {"Authorization": f"Bearer {seed.token}"}


async def mint(http: httpx.AsyncClient) -> str:
    response = await http.post("/api/v1/participants")
    assert response.status_code == 201, response.text
    http.cookies.clear()  # a script keeps no cookies: it sends the token in the header
    return str(response.json()["token"])


async def make_poll(http: httpx.AsyncClient, seed: Seed, audience: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"question": "Tabs or spaces?", "options": ["Tabs", "Spaces"], "open": True}
    if audience is not None:
        body["audience"] = audience
    response = await http.post(f"/api/v1/sessions/{seed.session_id}/polls", json=body, headers=invite(seed))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def moderation(http: httpx.AsyncClient, seed: Seed) -> dict[str, Any]:
    response = await http.get(f"/api/v1/sessions/{seed.session_id}/moderation", headers=invite(seed))
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def test_eighty_upvotes_from_freshly_minted_ids_are_flagged_but_not_blocked(
    live: LiveServer, seeded: Seed
) -> None:
    """Before: 80 upvotes with fresh ids from one address in seconds were all accepted and nothing
    was flagged (the only flag started at 600 a minute)."""
    async with live.client() as http:
        asker = await mint(http)
        asked = await http.post(
            f"/api/v1/sessions/{seeded.session_id}/questions",
            json={"body": "Why?"},
            headers={PARTICIPANT: asker},
        )
        question = asked.json()["question"]["id"]
        statuses = []
        for _ in range(80):
            token = await mint(http)
            upvote = await http.post(f"/api/v1/questions/{question}/upvotes", headers={PARTICIPANT: token})
            statuses.append(upvote.status_code)
        assert statuses == [201] * 80  # never blocked: a room shares one address
        flags = (await moderation(http, seeded))["flags"]
    assert [f["kind"] for f in flags] == ["fresh_ids"]
    assert flags[0]["limit"] == 20


async def test_a_room_of_300_on_one_address_all_vote_when_a_poll_opens(
    live: LiveServer, seeded: Seed
) -> None:
    async with live.client() as http:
        tokens = [await mint(http) for _ in range(300)]  # everyone opened the page earlier
        poll = await make_poll(http, seeded)

        async def vote(token: str, choice: str) -> int:
            response = await http.post(
                f"/api/v1/polls/{poll['id']}/votes", json={"choice": choice}, headers={PARTICIPANT: token}
            )
            return response.status_code

        codes = await asyncio.gather(*(vote(t, "ab"[i % 2]) for i, t in enumerate(tokens)))
    assert codes == [201] * 300
    assert await live.services.db.read(lambda r: r.count_votes(poll["id"])) == 300


async def test_a_poll_for_people_in_the_room_needs_the_room_code(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as http:
        poll = await make_poll(http, seeded, audience="room_code")
        assert poll["data"]["audience"] == "room_code"
        code = (await moderation(http, seeded))["room_code"]
        assert len(code) == 6
        screen = await http.get(f"/sessions/{seeded.session_id}/screen")
        assert code in screen.text  # shown on the big screen in the room
        http.cookies.clear()  # the page set a browser-session cookie; this script keeps none
        url = f"/api/v1/polls/{poll['id']}/votes"
        token = await mint(http)
        for headers in ({}, {ROOM: "WRONG1"}):
            refused = await http.post(url, json={"choice": "a"}, headers={PARTICIPANT: token, **headers})
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "room_code_required"
        typed = code.lower()[:3] + " " + code.lower()[3:]  # as typed on a phone
        ok = await http.post(url, json={"choice": "a"}, headers={PARTICIPANT: token, ROOM: typed})
        assert ok.status_code == 201, ok.text
        organiser = await http.post(
            url, json={"choice": "b"}, headers={"Authorization": f"Bearer {seeded.login_token}"}
        )
        assert organiser.status_code == 201  # a logged-in account needs no code
    assert await live.services.db.read(lambda r: r.count_votes(poll["id"])) == 2


async def test_a_poll_for_accounts_refuses_anonymous_participants(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as http:
        poll = await make_poll(http, seeded, audience="accounts")
        url = f"/api/v1/polls/{poll['id']}/votes"
        anonymous = await http.post(url, json={"choice": "a"}, headers={PARTICIPANT: await mint(http)})
        assert anonymous.status_code == 403 and anonymous.json()["error"]["code"] == "account_required"
        account = await http.post(
            url, json={"choice": "a"}, headers={"Authorization": f"Bearer {seeded.login_token}"}
        )
        assert account.status_code == 201
        bad = await http.post(
            f"/api/v1/sessions/{seeded.session_id}/polls",
            json={"question": "?", "options": ["a", "b"], "audience": "everyone"},
            headers=invite(seeded),
        )
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "audience"


async def test_questions_for_people_in_the_room_set_on_the_organiser_page(
    live: LiveServer, seeded: Seed
) -> None:
    async with live.client(
        cookies={"lb_login": seeded.login_token}, headers=organiser_csrf(seeded.login_token)
    ) as org:
        page = await org.get(f"/organise/sessions/{seeded.session_id}")
        code = live.services.audience.rooms.code_for(seeded.session_id)
        assert code in page.text
        form = {
            "form": "session",
            "title": "Keynote",
            "starts_at": "2026-05-14T09:00",
            "ends_at": "2026-05-14T10:00",
            "questions_audience": "room_code",
        }
        saved = await org.post(f"/organise/sessions/{seeded.session_id}", data=form)
        assert saved.status_code == 303, saved.text
    assert (await live.services.programme.session(seeded.session_id)).questions_audience == "room_code"
    async with live.client() as http:
        token = await mint(http)
        url = f"/api/v1/sessions/{seeded.session_id}/questions"
        refused = await http.post(url, json={"body": "From outside?"}, headers={PARTICIPANT: token})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "room_code_required"
        asked = await http.post(url, json={"body": "From the room"}, headers={PARTICIPANT: token, ROOM: code})
        assert asked.status_code == 201
        question = asked.json()["question"]["id"]
        other = await mint(http)
        upvote = f"/api/v1/questions/{question}/upvotes"
        assert (await http.post(upvote, headers={PARTICIPANT: other})).status_code == 403
        assert (await http.post(upvote, headers={PARTICIPANT: other, ROOM: code})).status_code == 201
        state = await http.get(f"/api/v1/sessions/{seeded.session_id}/audience", headers={PARTICIPANT: other})
        assert state.json()["questions_audience"] == "room_code"


async def test_logged_in_readers_vote_in_account_polls_and_questions_once_each(
    live: LiveServer, seeded: Seed
) -> None:
    """Before: a reader logged in (lb_reader) got 403 account_required; only organisers could
    vote in a poll or ask in a Q&A for logged-in accounts (issue 17)."""
    from tests.test_comments import register

    async with live.client() as http:
        poll = await make_poll(http, seeded, audience="accounts")
    form = {
        "form": "session",
        "title": "Keynote",
        "starts_at": "2026-05-14T09:00",
        "ends_at": "2026-05-14T10:00",
        "questions_audience": "accounts",
    }
    async with live.client(
        cookies={"lb_login": seeded.login_token}, headers=organiser_csrf(seeded.login_token)
    ) as org:
        assert (await org.post(f"/organise/sessions/{seeded.session_id}", data=form)).status_code == 303
    async with live.client(follow_redirects=False) as sam, live.client(follow_redirects=False) as ada:
        await register(sam, "sam.reader")
        await register(ada, "ada.reader")
        url = f"/api/v1/polls/{poll['id']}/votes"
        voted = await sam.post(url, json={"choice": "a"})
        assert voted.status_code == 201, voted.text
        again = await sam.post(url, json={"choice": "b"})  # changes the vote, never a second one
        assert again.status_code == 200 and again.json()["status"] == "changed", again.text
        assert (await ada.post(url, json={"choice": "b"})).status_code == 201
        asked = await sam.post(
            f"/api/v1/sessions/{seeded.session_id}/questions", json={"body": "Why accounts?"}
        )
        assert asked.status_code == 201, asked.text
        question = asked.json()["question"]["id"]
        upvote = f"/api/v1/questions/{question}/upvotes"
        assert (await ada.post(upvote)).status_code == 201
        twice = await ada.post(upvote)
        assert twice.status_code == 200 and twice.json()["status"] == "unchanged"
    assert await live.services.db.read(lambda r: r.count_votes(poll["id"])) == 2

"""Q&A over a real server: asking, upvotes once per participant, held questions and moderation
(approve, hide, answer with a note, pin), and every bad input's documented answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from liveblog.settings import Settings
from tests.conftest import LiveServer, Seed, query, settings_for
from tests.test_votes import HEADER, bearer, error_of, head, imported, new_participant
from tests.wsclient import connect, recv_type, recv_until


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    return settings_for(
        request, tmp_path, backend, votes={"tally_interval_ms": 100}, limits={"question_chars": 140}
    )


async def ask(client: httpx.AsyncClient, seed: Seed, token: str, **body: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/sessions/{seed.session_id}/questions", json=body, headers={HEADER: token}
    )


async def upvote(client: httpx.AsyncClient, question_id: int, token: str) -> httpx.Response:
    return await client.post(f"/api/v1/questions/{question_id}/upvotes", headers={HEADER: token})


async def moderate(client: httpx.AsyncClient, seed: Seed, question_id: int, **body: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/questions/{question_id}/moderation", json=body, headers=bearer(seed.token)
    )


async def test_upvotes_are_counted_once_per_participant(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as client:
        asker = await new_participant(client)
        async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
            await recv_type(ws, "synced")
            response = await ask(client, seeded, asker, body="Will the slides be online?", name="Lin")
            assert response.status_code == 201
            question = response.json()["question"]
            assert question["data"] == {"state": "visible", "pinned": False, "votes": 0, "name": "Lin"}
            assert question["author"] == "Lin" and question["html"] == "<p>Will the slides be online?</p>"
            created = await recv_until(ws, lambda m: m.get("op") == "item.created")
            assert created[-1]["item"]["body"] == "Will the slides be online?"
            voters = [await new_participant(client) for _ in range(3)]
            statuses = [(await upvote(client, question["id"], t)).status_code for t in voters]
            statuses += [(await upvote(client, question["id"], t)).status_code for t in voters]
            assert statuses == [201, 201, 201, 200, 200, 200]
            seen = await recv_until(ws, lambda m: m.get("op") == "question.votes" and m["votes"] == 3)
            assert seen[-1]["item_id"] == question["id"]
        assert await live.services.db.read(lambda r: r.count_upvotes(question["id"])) == 3
        state = (
            await client.get(f"/api/v1/sessions/{seeded.session_id}/audience", headers={HEADER: voters[0]})
        ).json()
        assert state["you"]["upvotes"] == [question["id"]]
        assert state["questions"][0]["data"]["votes"] == 3


async def test_asking_again_with_the_same_client_id_creates_nothing(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as client:
        token = await new_participant(client)
        first = await ask(client, seeded, token, body="Why?", client_id="q-1")
        before = await head(live, seeded)
        again = await ask(client, seeded, token, body="Why?", client_id="q-1")
        assert first.status_code == 201 and again.status_code == 200
        assert again.json()["duplicate"] is True
        assert again.json()["question"]["id"] == first.json()["question"]["id"]
        assert await head(live, seeded) == before
        # Another participant's id space is separate: the same client id is a new question.
        other = await ask(client, seeded, await new_participant(client), body="Why?", client_id="q-1")
        assert other.status_code == 201


async def test_held_questions_wait_for_approval_then_moderators_answer_and_pin(
    live: LiveServer, seeded: Seed
) -> None:
    async with live.client() as client:
        patched = await client.patch(
            f"/api/v1/sessions/{seeded.session_id}",
            json={"question_moderation": True},
            headers=bearer(seeded.login_token),
        )
        assert patched.status_code == 200
        token = await new_participant(client)
        async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
            await recv_type(ws, "synced")
            response = await ask(client, seeded, token, body="Is this recorded?", name="Sam")
            assert response.json()["state"] == "pending"
            qid = response.json()["question"]["id"]
            # The stream carries the item (its seq counts) but not its text until approved.
            created = (await recv_until(ws, lambda m: m.get("op") == "item.created"))[-1]["item"]
            assert created["body"] == "" and created["author"] == "" and created["data"]["state"] == "pending"
            public = (
                await client.get(f"/api/v1/sessions/{seeded.session_id}/audience", headers={HEADER: token})
            ).json()
            assert public["questions"] == []
            assert public["you"]["questions"] == [{"id": qid, "state": "pending"}]
            refused = await upvote(client, qid, await new_participant(client))
            assert (refused.status_code, error_of(refused)["code"]) == (409, "question_not_visible")
            mod = (
                await client.get(
                    f"/api/v1/sessions/{seeded.session_id}/moderation", headers=bearer(seeded.token)
                )
            ).json()
            assert [(q["id"], q["body"], q["name"]) for q in mod["questions"]] == [
                (qid, "Is this recorded?", "Sam")
            ]

            approved = await moderate(client, seeded, qid, action="approve")
            assert approved.json()["body"] == "Is this recorded?" and approved.json()["author"] == "Sam"
            updated = (await recv_until(ws, lambda m: m.get("op") == "item.updated"))[-1]["item"]
            assert updated["data"]["state"] == "visible" and updated["body"] == "Is this recorded?"

            other = (await ask(client, seeded, token, body="And the Q&A?")).json()["question"]["id"]
            await moderate(client, seeded, other, action="approve")
            assert (await moderate(client, seeded, qid, action="pin")).json()["data"]["pinned"] is True
            pinned_other = await moderate(client, seeded, other, action="pin")
            assert pinned_other.json()["data"]["pinned"] is True
            state = (await client.get(f"/api/v1/sessions/{seeded.session_id}/audience")).json()
            assert {q["id"]: q["data"]["pinned"] for q in state["questions"]} == {qid: False, other: True}

            note = await client.post(
                f"/api/v1/sessions/{seeded.session_id}/capture",
                json={"client_id": "answer-1", "body": "Yes, the video goes online tomorrow."},
                headers=bearer(seeded.token),
            )
            answered = await moderate(
                client, seeded, qid, action="answer", answer_item_id=note.json()["item_id"]
            )
            assert answered.json()["data"]["state"] == "answered"
            assert answered.json()["data"]["answer_item_id"] == note.json()["item_id"]

            hidden = await moderate(client, seeded, other, action="hide")
            assert hidden.json()["body"] == "" and hidden.json()["data"] == {
                "state": "hidden",
                "pinned": False,
                "votes": 0,
            }
            state = (await client.get(f"/api/v1/sessions/{seeded.session_id}/audience")).json()
            assert [q["id"] for q in state["questions"]] == [qid]


async def test_bad_questions_get_their_documented_error_and_change_nothing(
    live: LiveServer, seeded: Seed
) -> None:
    async with live.client() as client:
        token = await new_participant(client)
        qid = (await ask(client, seeded, token, body="Fine question")).json()["question"]["id"]
        before = await head(live, seeded)
        cases: list[tuple[httpx.Response, int, str]] = [
            (await ask(client, seeded, token, body=""), 400, "empty"),
            (await ask(client, seeded, token, body="   "), 400, "empty"),
            (await ask(client, seeded, token), 400, "missing_field"),
            (await ask(client, seeded, token, body=42), 400, "invalid_field"),
            (await ask(client, seeded, token, body="x" * 141), 413, "too_large"),
            (await ask(client, seeded, token, body="ok", name="n" * 61), 413, "too_large"),
            (await ask(client, seeded, token, body="ok", client_id="bad id!"), 400, "invalid_field"),
            (await ask(client, seeded, "p_forged.nope", body="ok"), 403, "bad_participant"),
            (
                await client.post(
                    "/api/v1/sessions/no-such/questions", json={"body": "ok"}, headers={HEADER: token}
                ),
                404,
                "unknown_session",
            ),
            (await upvote(client, 987654, token), 404, "unknown_question"),
            (
                await client.post(f"/api/v1/questions/{qid}/moderation", json={"action": "hide"}),
                401,
                "unauthorized",
            ),
            (await moderate(client, seeded, qid, action="delete"), 400, "invalid_field"),
            (await moderate(client, seeded, qid, action="answer", answer_item_id=qid), 404, "unknown_item"),
            (await moderate(client, seeded, 987654, action="hide"), 404, "unknown_question"),
        ]
        for response, status, code in cases:
            assert (response.status_code, error_of(response)["code"]) == (status, code), response.text
        assert await head(live, seeded) == before
        await live.services.programme.set_state(seeded.session_id, "ended")
        ended = await ask(client, seeded, token, body="Too late?")
        assert (ended.status_code, error_of(ended)["code"]) == (409, "session_ended")
        rows = await query(live.services.db, "SELECT count(*) FROM questions")
        assert rows[0][0] == 1


async def test_a_duplicate_question_merges_into_another(
    live: LiveServer, seeded: Seed, tmp_path: Path
) -> None:
    """The upvotes combine (one who upvoted both counts once), the duplicate leaves the public
    lists and the kept one says it absorbed it; one transaction, contiguous seqs, a ledger entry,
    "1 merged" in the public counts; the export carries it and import restores it."""
    svc = live.services
    async with live.client() as client:
        tokens = [await new_participant(client) for _ in range(4)]
        kept = (await ask(client, seeded, tokens[0], body="Will the slides be online?")).json()["question"][
            "id"
        ]
        dup = (await ask(client, seeded, tokens[1], body="Where can I find the slides?")).json()["question"][
            "id"
        ]
        other = (await ask(client, seeded, tokens[2], body="What about mobile?")).json()["question"]["id"]
        for t in tokens[:3]:
            assert (await upvote(client, kept, t)).status_code == 201
        for t in tokens[1:]:
            assert (await upvote(client, dup, t)).status_code == 201  # tokens 1 and 2 upvoted both
        await svc.audience.coalescer.flush_now()  # the counts' changes are in before the stream opens
        async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as ws:
            synced = await recv_type(ws, "synced")
            for body, field in (
                ({"action": "merge"}, "into"),
                ({"action": "merge", "into": dup}, "into"),
                ({"action": "merge", "into": 99999}, "into"),
            ):
                refused = await moderate(client, seeded, dup, **body)
                assert refused.status_code in (400, 404) and error_of(refused)["field"] == field, refused.text
            assert await head(live, seeded) == synced["seq"]  # refusals change nothing
            merged = await moderate(client, seeded, dup, action="merge", into=kept, reason="same question")
            assert merged.status_code == 200, merged.text
            assert merged.json()["id"] == kept and merged.json()["data"]["merged"] == [dup]
            assert merged.json()["data"]["votes"] == 4  # tokens 0-3: 1 and 2 counted once
            again = await moderate(client, seeded, dup, action="merge", into=other)
            assert again.status_code == 409 and error_of(again)["code"] == "already_merged"
            now = await head(live, seeded)
            changes = await recv_until(ws, lambda m: m.get("seq") == now, 10)
        changes = [m for m in changes if m.get("type") == "change"]
        assert [m["seq"] for m in changes] == list(range(synced["seq"] + 1, now + 1))
        by_id = {m["item"]["id"]: m["item"] for m in changes if m["op"] == "item.updated"}
        assert (
            by_id[dup]["data"]["state"] == "merged"
            and by_id[dup]["body"] == ""
            and by_id[dup]["author"] == ""
        )
        assert by_id[kept]["data"]["merged"] == [dup]
        refused_upvote = await upvote(client, dup, tokens[0])
        assert refused_upvote.status_code == 409  # the duplicate takes no more upvotes
        snapshot = (await client.get(f"/api/v1/sessions/{seeded.session_id}/audience")).json()
        assert sorted(q["id"] for q in snapshot["questions"]) == sorted([kept, other])
    log = await svc.db.read(lambda r: r.moderation_log(seeded.event_id, seeded.session_id))
    assert [(e.action, e.target_kind, e.target_id, e.reason, e.actor) for e in log] == [
        ("merge", "question", str(dup), "same question", "Ada")
    ]
    await svc.programme.set_state(seeded.session_id, "ended")
    await svc.archive.archive_due()
    kp = await svc.archive.knowledge(seeded.session_id)
    assert [(q.item.id, q.votes) for q in kp.questions] == [(kept, 4), (other, 0)]
    async with live.client() as client:
        page = (await client.get(f"/archive/sessions/{seeded.session_id}")).text
    assert "Merged with a duplicate" in page and "Where can I find the slides?" not in page
    assert "1 question merged" in page
    async with imported(live, seeded.event_id, tmp_path) as fresh:
        item = await fresh.db.read(lambda r: r.get_item(kept))
        assert item is not None and item.data["merged"] == [dup]
        counts = await fresh.db.read(lambda r: r.moderation_counts(seeded.session_id))
        assert counts == {("question", "merge"): 1}

"""Events and sessions as fediverse accounts (docs/federation.md): discovery (WebFinger, NodeInfo,
actors, handles, alternate links), through a real server on loopback."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from liveblog.services import Services
from tests.conftest import LiveServer, Seed, organiser_csrf, query, seed

AP = {"accept": "application/activity+json"}


@pytest.fixture
async def seeded_live(live: LiveServer) -> tuple[LiveServer, Seed]:
    return live, await seed(live.services)


def host(live: LiveServer) -> str:
    return live.url.removeprefix("http://")


async def finger(client: httpx.AsyncClient, resource: str) -> httpx.Response:
    return await client.get("/.well-known/webfinger", params={"resource": resource})


async def test_webfinger_finds_a_session_by_its_handle_and_the_actor_describes_it(
    seeded_live: tuple[LiveServer, Seed],
) -> None:
    live, s = seeded_live
    async with live.client() as client:
        found = await finger(client, f"acct:keynote@{host(live)}")
        assert found.status_code == 200, found.text
        assert found.headers["content-type"].startswith("application/jrd+json")
        jrd = found.json()
        assert jrd["subject"] == f"acct:keynote@{host(live)}"
        self_link = next(link for link in jrd["links"] if link["rel"] == "self")
        assert self_link["type"] == "application/activity+json"
        assert self_link["href"] == f"{live.url}/ap/sessions/{s.session_id}"

        actor = await client.get(self_link["href"], headers=AP)
        assert actor.status_code == 200
        assert actor.headers["content-type"].startswith("application/activity+json")
        doc = actor.json()
        assert doc["id"] == self_link["href"]
        assert doc["preferredUsername"] == "keynote"
        assert doc["name"] == "Keynote"
        assert "Test Summit" in doc["summary"] and "Hall" in doc["summary"]
        assert doc["url"] == f"{live.url}/sessions/{s.session_id}"
        for box in ("inbox", "outbox", "followers"):
            assert doc[box] == f"{doc['id']}/{box}"
        assert doc["endpoints"]["sharedInbox"] == f"{live.url}/ap/inbox"
        assert doc["icon"]["mediaType"] == "image/png"
        icon = await client.get(doc["icon"]["url"])
        assert icon.status_code == 200 and icon.content.startswith(b"\x89PNG")
        key = doc["publicKey"]
        assert key == {"id": f"{doc['id']}#main-key", "owner": doc["id"], "publicKeyPem": key["publicKeyPem"]}
        assert serialization.load_pem_public_key(key["publicKeyPem"].encode()).key_size == 2048

        # The event is an account too, with its own key id and the instance's key.
        event_doc = (await client.get(f"/ap/events/{s.event_id}", headers=AP)).json()
        assert event_doc["preferredUsername"] == "test-summit"
        assert event_doc["publicKey"]["id"] == f"{event_doc['id']}#main-key"
        assert event_doc["publicKey"]["publicKeyPem"] == key["publicKeyPem"]
        by_event = (await finger(client, f"acct:test-summit@{host(live)}")).json()
        assert by_event["links"][0]["href"] == event_doc["id"]

        # Collections answer; followers say how many, not who.
        followers = (await client.get(doc["followers"], headers=AP)).json()
        assert followers["type"] == "OrderedCollection" and followers["totalItems"] == 0
        outbox = (await client.get(doc["outbox"], headers=AP)).json()
        assert outbox["type"] == "OrderedCollection"


async def test_the_actor_url_answers_a_browser_with_the_page(seeded_live: tuple[LiveServer, Seed]) -> None:
    live, s = seeded_live
    async with live.client() as client:
        page = await client.get(f"/ap/sessions/{s.session_id}", headers={"accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"] == f"{live.url}/sessions/{s.session_id}"
        assert "accept" in page.headers["vary"].lower()
        ld = await client.get(
            f"/ap/sessions/{s.session_id}",
            headers={"accept": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'},
        )
        assert ld.status_code == 200 and ld.json()["type"] == "Service"


async def test_pages_link_to_their_actors(seeded_live: tuple[LiveServer, Seed]) -> None:
    live, s = seeded_live
    async with live.client() as client:
        session_page = (await client.get(f"/sessions/{s.session_id}")).text
        event_page = (await client.get(f"/events/{s.event_id}")).text
    link = re.compile(r'<link rel="alternate" type="application/activity\+json" href="([^"]+)">')
    assert link.findall(session_page) == [f"{live.url}/ap/sessions/{s.session_id}"]
    assert link.findall(event_page) == [f"{live.url}/ap/events/{s.event_id}"]


async def test_webfinger_refuses_what_it_does_not_know(seeded_live: tuple[LiveServer, Seed]) -> None:
    live, s = seeded_live
    async with live.client() as client:
        assert (await finger(client, f"acct:nobody@{host(live)}")).status_code == 404
        assert (await finger(client, "acct:keynote@elsewhere.example")).status_code == 404
        assert (await finger(client, "acct:Bad%Name@" + host(live))).status_code == 404
        missing = await client.get("/.well-known/webfinger")
        assert missing.status_code == 400 and missing.json()["error"]["field"] == "resource"
        # The actor's own URL is a resource too.
        by_url = await finger(client, f"{live.url}/ap/sessions/{s.session_id}")
        assert by_url.json()["subject"] == f"acct:keynote@{host(live)}"
        # The full id names the session as well, and the answer gives its handle.
        by_id = await finger(client, f"acct:{s.session_id}@{host(live)}")
        assert by_id.json()["subject"] == f"acct:keynote@{host(live)}"


async def test_nodeinfo(seeded_live: tuple[LiveServer, Seed]) -> None:
    live, _ = seeded_live
    async with live.client() as client:
        links = (await client.get("/.well-known/nodeinfo")).json()["links"]
        assert links[0]["rel"] == "http://nodeinfo.diaspora.software/ns/schema/2.1"
        doc = (await client.get(links[0]["href"].removeprefix(live.url))).json()
    assert doc["version"] == "2.1"
    assert doc["software"]["name"] == "liveblog"
    assert doc["protocols"] == ["activitypub"]
    assert doc["openRegistrations"] is False
    assert doc["usage"]["users"]["total"] == 3  # the event and its two sessions


async def test_a_later_session_with_the_same_title_never_takes_the_handle(
    seeded_live: tuple[LiveServer, Seed],
) -> None:
    live, s = seeded_live
    later = await live.services.programme.create_session(
        s.event_id, {"title": "Keynote", "starts_at": "2026-05-15T09:00", "ends_at": "2026-05-15T10:00"}
    )
    async with live.client() as client:
        first = (await finger(client, f"acct:keynote@{host(live)}")).json()
        second = (await client.get(f"/ap/sessions/{later.id}", headers=AP)).json()
    assert first["links"][0]["href"].endswith(f"/ap/sessions/{s.session_id}")
    assert second["preferredUsername"] == later.id


async def future_event(services: Services) -> tuple[str, str]:
    event = await services.programme.create_event(
        {"title": "Retention Days", "starts_on": "2099-03-01", "ends_on": "2099-03-02"}
    )
    session = await services.programme.create_session(
        event.id,
        {"title": "Keynote: retention", "starts_at": "2099-03-01T09:00", "ends_at": "2099-03-01T10:00"},
    )
    return event.id, session.id


async def organise(
    live: LiveServer, s: Seed, event_id: str, form: dict[str, str]
) -> tuple[httpx.Response, dict[str, Any]]:
    async with live.client(cookies={"lb_login": s.login_token}) as client:
        answer = await client.post(
            f"/organise/events/{event_id}/fediverse", data=form, headers=organiser_csrf(s.login_token)
        )
        state = await client.get(f"/organise/events/{event_id}/fediverse")
    return answer, {"page": state.text}


async def test_organisers_choose_a_handle_before_the_event(seeded_live: tuple[LiveServer, Seed]) -> None:
    live, s = seeded_live
    event_id, session_id = await future_event(live.services)
    async with live.client() as client:
        derived = await finger(client, f"acct:keynote-retention@{host(live)}")
        assert derived.status_code == 200
    answer, state = await organise(
        live, s, event_id, {"action": "handle", "kind": "session", "id": session_id, "handle": "@Retention"}
    )
    assert answer.status_code == 303, answer.text
    assert f"@retention@{host(live)}" in state["page"]
    async with live.client() as client:
        chosen = (await finger(client, f"acct:retention@{host(live)}")).json()
        assert chosen["links"][0]["href"].endswith(f"/ap/sessions/{session_id}")
        actor = (await client.get(f"/ap/sessions/{session_id}", headers=AP)).json()
        assert actor["preferredUsername"] == "retention"

    # Taken by another account, malformed, or after the event has started: refused, saying why.
    taken, _ = await organise(
        live, s, event_id, {"action": "handle", "kind": "event", "id": event_id, "handle": "retention"}
    )
    assert taken.status_code == 409 and "taken" in taken.text
    bad, _ = await organise(
        live, s, event_id, {"action": "handle", "kind": "event", "id": event_id, "handle": "no spaces"}
    )
    assert bad.status_code == 400 and "lower-case" in bad.text
    started, _ = await organise(
        live, s, s.event_id, {"action": "handle", "kind": "session", "id": s.session_id, "handle": "opening"}
    )
    assert started.status_code == 409 and "before the event" in started.text


async def test_organisers_switch_federation_off_per_event(seeded_live: tuple[LiveServer, Seed]) -> None:
    live, s = seeded_live
    answer, state = await organise(live, s, s.event_id, {"action": "off"})
    assert answer.status_code == 303 and "cannot be found" in state["page"]
    assert re.findall(r"<title>(.*?)</title>", state["page"], re.S) == ["Fediverse: Test Summit"]
    assert state["page"].count('id="blocks-heading"') == 1
    async with live.client() as client:
        assert (await finger(client, f"acct:keynote@{host(live)}")).status_code == 404
        assert (await client.get(f"/ap/sessions/{s.session_id}", headers=AP)).status_code == 404
        assert (await client.get(f"/ap/events/{s.event_id}", headers=AP)).status_code == 404
    await organise(live, s, s.event_id, {"action": "on"})
    async with live.client() as client:
        assert (await finger(client, f"acct:keynote@{host(live)}")).status_code == 200


async def test_the_private_key_stays_in_its_table(seeded_live: tuple[LiveServer, Seed]) -> None:
    live, s = seeded_live
    rows = await query(live.services.db, "SELECT private_pem FROM federation_keys")
    assert len(rows) == 1 and "PRIVATE KEY" in rows[0][0]
    async with live.client(cookies={"lb_login": s.login_token}) as client:
        export = await client.get(f"/organise/sessions/{s.session_id}/export.json")
        actor = await client.get(f"/ap/sessions/{s.session_id}", headers=AP)
    assert export.status_code == 200 and "PRIVATE KEY" not in export.text
    assert "PRIVATE KEY" not in actor.text

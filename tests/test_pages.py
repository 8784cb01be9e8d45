"""Server-rendered pages over HTTP against a real server: every page renders, organiser forms work
and say what is wrong next to the field, notes render inert, and the security headers are there."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from tests.conftest import ORGANISER, LiveServer, Seed, organiser_csrf, page_csrf


async def post_note(live: LiveServer, seeded: Seed, body: str, **extra: Any) -> dict[str, Any]:
    async with live.client(headers={"authorization": f"Bearer {seeded.token}"}) as c:
        message = {"client_id": str(uuid.uuid4()), "body": body, **extra}
        r = await c.post(f"/api/v1/sessions/{seeded.session_id}/capture", json=message)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


def organiser_client(live: LiveServer, seeded: Seed) -> httpx.AsyncClient:
    return live.client(
        cookies={"lb_login": seeded.login_token},
        headers=organiser_csrf(seeded.login_token),
        follow_redirects=False,
    )


async def test_public_pages_render_with_the_seeded_data(live: LiveServer, seeded: Seed) -> None:
    await post_note(live, seeded, "The **first** note", key_point=True)
    async with live.client() as c:
        home = await c.get("/")
        assert home.status_code == 200
        assert "Test Summit" in home.text and "Live now" in home.text and "Keynote" in home.text

        event = await c.get(f"/events/{seeded.event_id}")
        assert event.status_code == 200
        assert f'href="/sessions/{seeded.session_id}"' in event.text and "Workshop" in event.text
        assert "Hall" in event.text and "Room 2" in event.text  # rooms are the grid's columns
        assert "Thursday 14 May 2026" in event.text

        viewer = await c.get(f"/sessions/{seeded.session_id}")
        assert viewer.status_code == 200
        html = viewer.text
        assert "<strong>first</strong>" in html  # readable without JavaScript
        assert 'id="key-points"' in html and "The first note" in html
        assert re.search(r'data-seq="\d+"', html) and "data-epoch=" in html
        assert f"/embed/sessions/{seeded.session_id}" in html  # the copy-paste snippet
        assert 'aria-live="polite"' in html and "<main" in html

        embed = await c.get(f"/embed/sessions/{seeded.session_id}")
        assert embed.status_code == 200 and "<strong>first</strong>" in embed.text
        assert "frame-ancestors *" in embed.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in viewer.headers["content-security-policy"]

        login = await c.get("/login")
        assert login.status_code == 200 and 'name="password"' in login.text


async def test_missing_things_get_a_helpful_error_page(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as c:
        for path in ("/sessions/nope", "/events/nope", "/embed/sessions/nope"):
            r = await c.get(path)
            assert r.status_code == 404, path
            assert "Not found" in r.text and 'href="/"' in r.text
        r = await c.get("/n/not-a-token")
        assert r.status_code == 401 and "revoked" in r.text


async def test_notes_with_scripts_render_inert_on_the_viewer_page(live: LiveServer, seeded: Seed) -> None:
    await post_note(live, seeded, "<script>alert(1)</script> and [click](javascript:alert(2))")
    await post_note(live, seeded, '<img src=x onerror="alert(3)"> ![x](https://evil.example/t.gif)')
    async with live.client() as c:
        html = (await c.get(f"/sessions/{seeded.session_id}")).text
    items = html[html.index('id="items"') :]
    assert "<script>alert" not in items
    assert "&lt;script&gt;" in items  # shown as text
    assert not re.search(r'href="\s*javascript:', items, re.IGNORECASE)  # the link is plain text, not a link
    assert "onerror" not in re.sub(r"&lt;img[^<]*", "", items)  # only inside escaped text
    assert all(src.startswith("/media/") for src in re.findall(r"<img[^>]*src=\"([^\"]*)\"", items))
    assert "<img src=x" not in items  # the raw tag is text, its onerror never an attribute
    # The page itself loads only our own scripts.
    # (Besides schema.org JSON-LD: a data block no browser runs, with every '<' escaped inside.)
    scripts = [t for t in re.findall(r"<script[^>]*>", html) if t != '<script type="application/ld+json">']
    assert '<script type="module" src="/static/js/viewer.js">' in scripts
    assert all(
        re.fullmatch(r'<script type="module" src="/static/js/[a-z_]+\.js">', tag) for tag in scripts
    ), scripts
    for data in re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S):
        assert "<" not in data


async def test_security_headers_and_foreign_origin(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as c:
        r = await c.get("/")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        r = await c.post(
            "/login",
            data={"username": ORGANISER[0], "password": ORGANISER[1]},
            headers={"origin": "https://evil.example"},
        )
        assert r.status_code == 403
        assert "lb_login" not in r.cookies


async def test_login_and_logout_revokes_the_token(live: LiveServer, seeded: Seed) -> None:
    async with live.client(follow_redirects=False) as c:
        bad = await c.post("/login", data={"username": ORGANISER[0], "password": "wrong"})
        assert bad.status_code == 401 and 'role="alert"' in bad.text and 'aria-invalid="true"' in bad.text

        r = await c.get("/organise")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")

        form = await c.get("/login?next=/organise")
        r = await c.post(
            "/login?next=/organise",
            data={"username": ORGANISER[0], "password": ORGANISER[1], "csrf_token": page_csrf(form.text)},
        )
        assert r.status_code == 303 and r.headers["location"] == "/organise"
        token = r.cookies["lb_login"]
        page = await c.get("/organise")  # the client keeps the cookie
        assert page.status_code == 200 and "Test Summit" in page.text and "Log out" in page.text

        r = await c.post("/logout", data={"csrf_token": page_csrf(page.text)})
        assert r.status_code == 303
    assert await live.services.accounts.account_for_token(token) is None
    async with live.client(follow_redirects=False, cookies={"lb_login": token}) as c:
        assert (await c.get("/organise")).status_code == 303


async def test_open_redirect_after_login_is_refused(live: LiveServer, seeded: Seed) -> None:
    async with live.client(follow_redirects=False) as c:
        r = await c.post(
            "/login?next=//evil.example", data={"username": ORGANISER[0], "password": ORGANISER[1]}
        )
        assert r.headers["location"] == "/organise"


def field_error(html: str, field_id: str) -> str:
    """The error message shown next to the input with this id (and the input points at it)."""
    m = re.search(
        rf'<input id="{field_id}"[^>]*aria-describedby="[^"]*{field_id}-error"[^>]*aria-invalid="true"', html
    )
    assert m, f"{field_id} is not marked invalid"
    m = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', html)
    assert m, f"no error next to {field_id}"
    return m.group(1)


async def test_organiser_creates_an_event_and_sees_field_errors(live: LiveServer, seeded: Seed) -> None:
    async with organiser_client(live, seeded) as c:
        assert (await c.get("/organise/events/new")).status_code == 200
        r = await c.post(
            "/organise/events/new",
            data={"title": "Data Day", "starts_on": "2026-06-02", "ends_on": "2026-06-01"},
        )
        assert r.status_code == 400
        assert "end before it starts" in field_error(r.text, "ends_on")
        assert 'value="Data Day"' in r.text  # what was typed is kept

        r = await c.post(
            "/organise/events/new", data={"title": "", "starts_on": "2026-06-02", "ends_on": "2026-06-02"}
        )
        assert r.status_code == 400 and "Title" in field_error(r.text, "title")

        r = await c.post(
            "/organise/events/new",
            data={
                "title": "Data Day",
                "starts_on": "2026-06-02",
                "ends_on": "2026-06-03",
                "venue": "Pier 4",
                "hashtags": "#dataday",
            },
        )
        assert r.status_code == 303
        event_path = r.headers["location"]
        page = await c.get(event_path)
        assert page.status_code == 200 and "Data Day" in page.text and "No sessions yet" in page.text

        r = await c.post(
            event_path,
            data={
                "form": "event",
                "title": "Data Day 2026",
                "starts_on": "2026-06-02",
                "ends_on": "2026-06-03",
                "hashtags": "#not-a-tag!",  # words without # would be search terms
            },
        )
        assert r.status_code == 400 and "hashtag" in field_error(r.text, "hashtags")
        r = await c.post(
            event_path,
            data={
                "form": "event",
                "title": "Data Day 2026",
                "starts_on": "2026-06-02",
                "ends_on": "2026-06-03",
                "language": "fr",
            },
        )
        assert r.status_code == 303
        page = await c.get(event_path)
        assert "Data Day 2026" in page.text
        assert (
            '<option value="fr" selected>French</option>' in page.text
        )  # search stems in French from now on


async def test_organiser_adds_sessions_invites_and_revokes(live: LiveServer, seeded: Seed) -> None:
    path = f"/organise/events/{seeded.event_id}"
    async with organiser_client(live, seeded) as c:
        r = await c.post(
            path,
            data={
                "form": "session",
                "title": "Panel",
                "starts_at": "2026-05-14T14:00",
                "ends_at": "nonsense",
            },
        )
        assert r.status_code == 400
        assert "date and time" in field_error(r.text, "s-ends_at")
        assert 'value="Panel"' in r.text

        r = await c.post(
            path,
            data={
                "form": "session",
                "title": "Panel",
                "starts_at": "2026-05-14T14:00",
                "ends_at": "2026-05-14T15:00",
                "room": "Hall",
                "speakers": "Ann, Bo",
            },
        )
        assert r.status_code == 303
        page = (await c.get(path)).text
        assert "Panel" in page

        r = await c.post(path, data={"form": "invite", "name": "  "})
        assert r.status_code == 400 and "name" in field_error(r.text, "i-name")

        r = await c.post(
            path, data={"form": "invite", "name": "Linus", "session_id": seeded.other_session_id}
        )
        assert r.status_code == 200
        url = re.search(r'<input id="invite-url" class="code" readonly value="([^"]+)"', r.text)
        assert url and "/n/" in url.group(1)
        assert "<svg" in r.text and 'aria-label="QR code of the invite link"' in r.text
        token = url.group(1).rsplit("/n/", 1)[1]
        invite = await live.services.accounts.invite_for_token(token)
        assert invite is not None and invite.name == "Linus" and invite.session_id == seeded.other_session_id
        landing = await c.get(f"/n/{token}")
        assert (
            landing.status_code == 303
            and landing.headers["location"] == f"/n/{token}/sessions/{seeded.other_session_id}"
        )

        r = await c.post(path, data={"form": "revoke", "invite_id": invite.id})
        assert r.status_code == 303
        assert await live.services.accounts.invite_for_token(token) is None
        assert (await c.get(f"/n/{token}")).status_code == 401


async def test_organiser_starts_and_ends_a_session_and_sees_who_is_connected(
    live: LiveServer, seeded: Seed
) -> None:
    path = f"/organise/sessions/{seeded.other_session_id}"
    async with organiser_client(live, seeded) as c:
        page = await c.get(path)
        assert page.status_code == 200 and "Start: go live" in page.text
        assert 'id="stat-viewers">0<' in page.text
        assert (await c.post(path, data={"form": "state", "state": "live"})).status_code == 303
        assert (await live.services.programme.session(seeded.other_session_id)).state == "live"
        page = await c.get(path)
        assert "End the session" in page.text
        assert (await c.post(path, data={"form": "state", "state": "ended"})).status_code == 303
        assert (await live.services.programme.session(seeded.other_session_id)).state == "ended"
        r = await c.post(path, data={"form": "state", "state": "scheduled"})
        assert r.status_code == 409 and 'role="alert"' in r.text

        r = await c.post(path, data={"form": "invite", "name": "Mo"})
        assert r.status_code == 200 and 'id="invite-url"' in r.text

        r = await c.post(
            path,
            data={
                "form": "session",
                "title": "Workshop B",
                "starts_at": "2026-05-14T11:00",
                "ends_at": "2026-05-14T10:00",
            },
        )
        assert r.status_code == 400 and "end before it starts" in field_error(r.text, "s-ends_at")


async def test_organiser_pages_need_a_login(live: LiveServer, seeded: Seed) -> None:
    async with live.client(follow_redirects=False) as c:
        for path in (
            "/organise",
            "/organise/events/new",
            f"/organise/events/{seeded.event_id}",
            f"/organise/sessions/{seeded.session_id}",
        ):
            r = await c.get(path)
            assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}", path
        c.cookies.clear()  # no cookie at all, so no CSRF token is due: the login check answers
        r = await c.post(f"/organise/sessions/{seeded.session_id}", data={"form": "state", "state": "ended"})
        assert r.status_code == 303
    assert (await live.services.programme.session(seeded.session_id)).state == "live"


async def test_polls_and_questions_stay_out_of_the_stream_of_notes(live: LiveServer, seeded: Seed) -> None:
    from liveblog.capture.votes import Moderator, Voter

    audience = live.services.audience
    await audience.create_poll(
        seeded.session_id,
        Moderator("Ada", seeded.invite_id),
        {"question": "Lunch?", "options": ["Yes", "No"], "open": True},
    )
    await audience.ask(
        seeded.session_id, Voter("p-1"), {"client_id": "q1", "body": "Will the slides be shared?"}
    )
    await post_note(live, seeded, "Just a note")
    async with live.client() as c:
        for path in (f"/sessions/{seeded.session_id}", f"/embed/sessions/{seeded.session_id}"):
            html = (await c.get(path)).text
            assert 'data-kind="note"' in html
            assert 'data-kind="poll"' not in html and 'data-kind="question"' not in html


async def test_organisers_remove_any_note_and_viewers_see_it_go(live: LiveServer, seeded: Seed) -> None:
    from tests.wsclient import connect, recv_type

    ada = await post_note(live, seeded, "A note that should not be here")
    async with await connect(f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}") as viewer:
        await recv_type(viewer, "synced")
        async with organiser_client(live, seeded) as c:
            page = await c.get(f"/organise/sessions/{seeded.session_id}")
            assert "A note that should not be here" in page.text and 'value="remove_note"' in page.text
            removed = await c.post(
                f"/organise/sessions/{seeded.session_id}",
                data={"form": "remove_note", "item_id": str(ada["item_id"])},
            )
            assert removed.status_code == 303
        change = await recv_type(viewer, "change")
    assert change["op"] == "item.deleted" and change["item"]["id"] == ada["item_id"]
    # Grace (a note-taker) cannot remove Ada's note; an organiser can, even after the session ended.
    second = await post_note(live, seeded, "Ada's second note")
    third = await post_note(live, seeded, "Ada's third note")
    async with live.client(headers={"authorization": f"Bearer {seeded.token2}"}) as grace:
        refused = await grace.post(
            f"/api/v1/sessions/{seeded.session_id}/capture",
            json={"type": "note.delete", "client_id": "g-del", "item_id": second["item_id"]},
        )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_your_note"
    await live.services.programme.set_state(seeded.session_id, "ended")
    async with organiser_client(live, seeded) as c:
        done = await c.post(
            f"/api/v1/sessions/{seeded.session_id}/capture",
            json={"type": "note.delete", "client_id": "mod-1", "item_id": third["item_id"]},
        )
    assert done.status_code == 201
    remaining = await live.services.db.read(lambda r: r.list_items(seeded.session_id))
    assert [i.body for i in remaining] == ["Ada's second note"]

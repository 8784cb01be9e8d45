"""What people see on the server-rendered pages (issue 8 §4), over HTTP against a real server:
links to the polls-and-questions page and the big screen, a favicon from our own origin, the
invite form emptied after use, overlapping sessions flagged, ended sessions that stop offering
live things (their live URL shows the knowledge page), "edited" marks and photo alt text."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from liveblog.services import Services
from tests.conftest import LiveServer, Seed, make_settings, organiser_csrf, run_server, seed


async def capture(live: LiveServer, token: str, session_id: str, message: dict[str, Any]) -> dict[str, Any]:
    async with live.client(headers={"authorization": f"Bearer {token}"}) as c:
        r = await c.post(
            f"/api/v1/sessions/{session_id}/capture", json={"client_id": str(uuid.uuid4()), **message}
        )
        assert r.status_code in (200, 201), r.text
        return r.json()  # type: ignore[no-any-return]


def organiser_client(live: LiveServer, seeded: Seed) -> httpx.AsyncClient:
    return live.client(
        cookies={"lb_login": seeded.login_token},
        headers=organiser_csrf(seeded.login_token),
        follow_redirects=False,
    )


def hrefs(html: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', html))


async def test_organisers_and_note_takers_find_the_polls_page_and_the_big_screen(
    live: LiveServer, seeded: Seed
) -> None:
    sid = seeded.session_id
    async with organiser_client(live, seeded) as c:
        page = await c.get(f"/organise/sessions/{sid}")
        assert page.status_code == 200
        assert {f"/organise/sessions/{sid}/moderate", f"/sessions/{sid}/screen"} <= hrefs(page.text)
        event = await c.get(f"/organise/events/{seeded.event_id}")
        assert f"/organise/sessions/{sid}/moderate" in hrefs(event.text)
    async with live.client() as c:
        page = await c.get(f"/n/{seeded.token}/sessions/{sid}")
        assert page.status_code == 200
        assert {f"/n/{seeded.token}/sessions/{sid}/moderate", f"/sessions/{sid}/screen"} <= hrefs(page.text)
        # and back from the polls page to the notes
        moderate = await c.get(f"/n/{seeded.token}/sessions/{sid}/moderate")
        assert f"/n/{seeded.token}/sessions/{sid}" in hrefs(moderate.text)


async def test_a_favicon_from_our_own_origin_on_every_page(live: LiveServer, seeded: Seed) -> None:
    async with live.client() as c:
        for path in (
            "/",
            f"/sessions/{seeded.session_id}",
            f"/embed/sessions/{seeded.session_id}",
            f"/sessions/{seeded.session_id}/screen",
            f"/n/{seeded.token}/sessions/{seeded.session_id}",
        ):
            html = (await c.get(path)).text
            assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html, path
        icon = await c.get("/static/favicon.svg")
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in icon.text
        # Browsers ask for /favicon.ico whatever the page says: no 404 in every log.
        r = await c.get("/favicon.ico", follow_redirects=False)
        assert r.status_code in (301, 308) and r.headers["location"] == "/static/favicon.svg"


async def test_the_invite_form_is_empty_after_an_invite_is_made(live: LiveServer, seeded: Seed) -> None:
    async with organiser_client(live, seeded) as c:
        for path in (f"/organise/events/{seeded.event_id}", f"/organise/sessions/{seeded.session_id}"):
            r = await c.post(
                path, data={"form": "invite", "name": "Robin Example", "session_id": seeded.session_id}
            )
            assert r.status_code == 200 and 'id="invite-url"' in r.text
            name_input = re.search(r'<input id="i-name"[^>]*>', r.text)
            assert name_input is not None and 'value=""' in name_input.group(0), name_input


async def test_overlapping_sessions_in_one_room_are_flagged(live: LiveServer, seeded: Seed) -> None:
    path = f"/organise/events/{seeded.event_id}"
    async with organiser_client(live, seeded) as c:
        page = (await c.get(path)).text
        assert "overlap" not in page.lower()
        # The seeded Keynote is in the Hall 09:00-10:00; this one starts before it ends.
        r = await c.post(
            path,
            data={
                "form": "session",
                "title": "Clashing talk",
                "starts_at": "2026-05-14T09:30",
                "ends_at": "2026-05-14T10:30",
                "room": "Hall",
            },
        )
        assert r.status_code == 303
        # Back to back in the same room, or at the same time in another room, is fine.
        for title, starts, ends, room in (
            ("Next one", "2026-05-14T10:30", "2026-05-14T11:00", "Hall"),
            ("Elsewhere", "2026-05-14T09:00", "2026-05-14T10:00", "Room 2"),
        ):
            r = await c.post(
                path,
                data={"form": "session", "title": title, "starts_at": starts, "ends_at": ends, "room": room},
            )
            assert r.status_code == 303
        page = (await c.get(path)).text
    warning = re.search(r'<div class="panel notice warning" id="overlaps".*?</div>', page, re.S)
    assert warning is not None, "no overlap warning"
    text = re.sub(r"<[^>]+>", "", warning.group(0))
    assert "Hall" in text and "Keynote" in text and "Clashing talk" in text
    assert "Next one" not in text and "Elsewhere" not in text


async def test_an_ended_session_page_stops_offering_live_things(live: LiveServer, seeded: Seed) -> None:
    await capture(live, seeded.token, seeded.session_id, {"body": "Last words"})
    async with live.client() as c:
        live_page = (await c.get(f"/sessions/{seeded.session_id}")).text
        assert 'id="ask-form"' in live_page and "No poll yet" in live_page
        await live.services.programme.set_state(seeded.session_id, "ended")
        ended = (await c.get(f"/sessions/{seeded.session_id}")).text
    # Its live URL now shows the knowledge page: the record, with nothing live left on it.
    assert "Last words" in ended and 'id="notes-heading"' in ended
    words = re.sub(r"<[^>]+>", " ", ended)  # what is shown, not what attributes hold
    assert "No poll yet" not in words and "No polls." in words and "Ended" in words
    assert 'id="ask-form"' not in ended and "/static/js/audience.js" not in ended
    assert "/static/js/viewer.js" not in ended


async def test_viewers_see_which_notes_were_edited(live: LiveServer, seeded: Seed) -> None:
    first = await capture(live, seeded.token, seeded.session_id, {"body": "Budget is 2m"})
    other = await capture(live, seeded.token, seeded.session_id, {"body": "Never touched"})
    await capture(
        live,
        seeded.token,
        seeded.session_id,
        {"type": "note.update", "item_id": first["item_id"], "body": "Budget is 3m"},
    )
    async with live.client() as c:
        html = (await c.get(f"/sessions/{seeded.session_id}")).text
    cards = {
        m.group(1): m.group(0) for m in re.finditer(r'<article [^>]*id="item-(\d+)".*?</article>', html, re.S)
    }
    edited, untouched = cards[str(first["item_id"])], cards[str(other["item_id"])]
    assert "Budget is 3m" in edited and 'class="edited"' in edited
    assert 'class="edited"' not in untouched


def cards_in(html: str) -> dict[str, str]:
    return {
        m.group(1): m.group(0) for m in re.finditer(r'<article [^>]*id="item-(\d+)".*?</article>', html, re.S)
    }


async def test_a_social_post_renamed_by_us_is_not_marked_edited_live_or_archived(
    live: LiveServer, seeded: Seed
) -> None:
    # A Bluesky post first shows its author's DID; once the AppView answers, the item is updated
    # with the handle and name (feeds/service.py). That is our doing, not an edit of the post.
    async def post_then_rename(tx: Any) -> int:
        item, _ = await tx.insert_item(
            session_id=seeded.session_id,
            kind="social",
            client_id="social:bluesky:at://did:plc:x/1",
            author="did:plc:x",
            author_ref=None,
            body="Hello #test",
            html="<p>did:plc:x: Hello</p>",
            key_point=False,
            data={"network": "bluesky"},
            typed_at="2026-05-14T09:30:00.000Z",
        )
        await tx.update_item(item.id, {"author": "Ana Lima", "html": "<p>Ana Lima: Hello</p>"})
        return int(item.id)

    post = await live.services.db.write(post_then_rename)
    note = await capture(live, seeded.token, seeded.session_id, {"body": "Budget is 2m"})
    await capture(
        live,
        seeded.token,
        seeded.session_id,
        {"type": "note.update", "item_id": note["item_id"], "body": "Budget is 3m"},
    )
    async with live.client() as c:
        cards = cards_in((await c.get(f"/sessions/{seeded.session_id}")).text)
        assert "Ana Lima" in cards[str(post)] and 'class="edited"' not in cards[str(post)]
        assert 'class="edited"' in cards[str(note["item_id"])]  # a note-taker's edit still is
        await live.services.programme.set_state(seeded.session_id, "ended")
        cards = cards_in((await c.get(f"/sessions/{seeded.session_id}")).text)  # the knowledge page
        assert "Ana Lima" in cards[str(post)]
        assert "badge-edited" not in cards[str(post)] and "Earlier versions" not in cards[str(post)]
        assert "badge-edited" in cards[str(note["item_id"])]


async def test_item_times_are_shown_in_the_venues_time_zone_like_the_programme(tmp_path: Path) -> None:
    # The programme is in the venue's wall-clock time (archive.timezone); a note's time is stored
    # in UTC. Pages show both in the venue's time, so a note from a 09:00 session reads 09:30.
    settings = make_settings(tmp_path, archive={"timezone": "Europe/Paris"})
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)  # Keynote, 2026-05-14 09:00-10:00 at the venue
        async with run_server(settings, services) as live:
            note = await capture(
                live, s.token, s.session_id, {"body": "Half way", "typed_at": "2026-05-14T07:30:00Z"}
            )
            async with live.client() as c:
                for page in ("live", "knowledge"):
                    if page == "knowledge":
                        await services.programme.set_state(s.session_id, "ended")
                    card = cards_in((await c.get(f"/sessions/{s.session_id}")).text)[str(note["item_id"])]
                    assert '<time datetime="2026-05-14T07:30:00.000Z">09:30</time>' in card, (page, card)
    finally:
        await services.close()


async def test_photos_get_real_alt_text(live: LiveServer, seeded: Seed) -> None:
    out = io.BytesIO()
    Image.new("RGB", (20, 10), (10, 120, 200)).save(out, "PNG")
    async with live.client(headers={"authorization": f"Bearer {seeded.token}"}) as c:
        r = await c.post(
            f"/api/v1/sessions/{seeded.session_id}/media",
            content=out.getvalue(),
            headers={"content-type": "image/png"},
        )
        assert r.status_code == 201, r.text
        upload = r.json()
    # What the upload offers to insert leaves the description to the note-taker.
    assert upload["markdown"] == f"![]({upload['url']})"
    described = await capture(
        live, seeded.token, seeded.session_id, {"body": f"![Queue at the registration desk]({upload['url']})"}
    )
    bare = await capture(
        live,
        seeded.token,
        seeded.session_id,
        {"body": f"The **new** rota on the wall\n\n{upload['markdown']}"},
    )
    legacy = await capture(
        live, seeded.token, seeded.session_id, {"body": f"Slide two ![photo]({upload['url']})"}
    )
    items = {i.id: i for i in await live.services.db.read(lambda r: r.list_items(seeded.session_id))}
    assert 'alt="Queue at the registration desk"' in items[described["item_id"]].html
    assert 'alt="The new rota on the wall"' in items[bare["item_id"]].html
    assert 'alt="Slide two"' in items[legacy["item_id"]].html

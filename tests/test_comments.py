"""Comment threads and reader accounts over a real server: commenting needs a login, a
cross-site post is refused, a cookie replayed after logout or a password change is refused, a
banned account cannot comment, a comment with script renders inert; threads, edits, moderation,
pre-moderation, locks, the spam guard, reset links, and comments arriving live on the stream."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from liveblog.archive.comments import Limiter
from liveblog.errors import RateLimited
from tests.conftest import FAST_HASHER, LiveServer, Seed, organiser_csrf, page_csrf
from tests.wsclient import connect, recv_until

PASSWORD = "a long password"


def reader_client(live: LiveServer) -> httpx.AsyncClient:
    return live.client(follow_redirects=False)


def as_reader(c: httpx.AsyncClient, token: str) -> None:
    """What the reader's pages give their forms: the CSRF token of this login."""
    c.headers.update(organiser_csrf(token))


async def register(c: httpx.AsyncClient, name: str) -> str:
    r = await c.post("/account/register", data={"username": name, "password": PASSWORD})
    assert r.status_code == 303, r.text
    token = str(c.cookies["lb_reader"])
    as_reader(c, token)
    return token


async def login(c: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    c.headers.pop("X-CSRF-Token", None)  # a previous login's token
    form = await c.get("/account/login")  # as a browser does: the form carries its CSRF token
    r = await c.post(
        "/account/login", data={"username": name, "password": password, "csrf_token": page_csrf(form.text)}
    )
    if r.status_code == 303:
        as_reader(c, str(c.cookies["lb_reader"]))
    return r


async def comment(c: httpx.AsyncClient, session_id: str, body: str, **extra: Any) -> httpx.Response:
    return await c.post(f"/sessions/{session_id}/comments", data={"body": body, **extra})


def comment_id(r: httpx.Response) -> int:
    match = re.search(r"#comment-(\d+)$", r.headers["location"])
    assert match, r.headers.get("location")
    return int(match.group(1))


@pytest.fixture(autouse=True)
def fast_hashing(live: LiveServer) -> None:
    live.services.accounts.hasher = FAST_HASHER


async def test_commenting_requires_login_and_a_same_origin_form(live: LiveServer, seeded: Seed) -> None:
    async with reader_client(live) as anon:
        r = await comment(anon, seeded.session_id, "hello")
        assert r.status_code == 401
        page = await anon.get(f"/sessions/{seeded.session_id}")
        assert "Log in</a> or <a" in page.text and 'id="comment-body"' not in page.text
    async with reader_client(live) as c:
        await register(c, "rosa")
        r = await comment(
            c,
            seeded.session_id,
            "from elsewhere",
        )
        assert r.status_code == 303
        r = await c.post(
            f"/sessions/{seeded.session_id}/comments",
            data={"body": "posted from evil"},
            headers={"origin": "https://evil.example"},
        )
        assert r.status_code == 403 and "cross-site requests are not allowed" in r.text
        page = await c.get(f"/sessions/{seeded.session_id}")
        assert "from elsewhere" in page.text and "posted from evil" not in page.text


async def test_a_session_cookie_replayed_after_logout_or_password_change_is_refused(
    live: LiveServer, seeded: Seed
) -> None:
    async with reader_client(live) as c:
        old = await register(c, "ada")
        r = await c.post("/account/logout")
        assert r.status_code == 303
    async with reader_client(live) as replay:
        replay.cookies.set("lb_reader", old)
        as_reader(replay, old)  # a replayed cookie with its matching CSRF token: refused all the same
        assert (await comment(replay, seeded.session_id, "after logout")).status_code == 401
    async with reader_client(live) as c:
        r = await login(c, "ada")
        assert r.status_code == 303
        first = str(c.cookies["lb_reader"])
        async with reader_client(live) as other_device:
            r = await login(other_device, "ada")
            second = str(other_device.cookies["lb_reader"])
        r = await c.post("/account", data={"current": PASSWORD, "password": "a new long password"})
        assert r.status_code == 200 and "Password changed" in r.text
        fresh = str(c.cookies["lb_reader"])
        assert fresh not in (first, second)
        as_reader(c, fresh)
        assert (await comment(c, seeded.session_id, "with the new cookie")).status_code == 303
    for stale in (first, second):
        async with reader_client(live) as replay:
            replay.cookies.set("lb_reader", stale)
            as_reader(replay, stale)
            assert (await comment(replay, seeded.session_id, "replayed")).status_code == 401


async def test_a_banned_account_cannot_comment_and_loses_its_sessions(live: LiveServer, seeded: Seed) -> None:
    async with reader_client(live) as troll:
        await register(troll, "troll")
        cid = comment_id(await comment(troll, seeded.session_id, "first!"))
        account = await live.services.readers.account(troll.cookies["lb_reader"])
        assert account is not None
        async with live.client(
            cookies={"lb_login": seeded.login_token},
            headers=organiser_csrf(seeded.login_token),
            follow_redirects=False,
        ) as org:
            page = await org.get(f"/sessions/{seeded.session_id}")
            assert f"/organise/readers/{account.id}/ban" in page.text
            r = await org.post(f"/organise/readers/{account.id}/ban")
            assert r.status_code == 303
            r = await org.post(f"/comments/{cid}/moderate", data={"action": "hide"})
            assert r.status_code == 303
        assert (await comment(troll, seeded.session_id, "again")).status_code == 401  # the session ended
        troll.cookies.clear()
        r = await login(troll, "troll")
        assert r.status_code == 403 and "banned" in r.text
    async with reader_client(live) as anon:
        assert "first!" not in (await anon.get(f"/sessions/{seeded.session_id}")).text


async def test_comments_with_script_render_inert(live: LiveServer, seeded: Seed) -> None:
    async with reader_client(live) as c:
        await register(c, "mallory")
        body = '<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror="alert(3)"> **bold**'
        assert (await comment(c, seeded.session_id, body)).status_code == 303
        html = (await c.get(f"/sessions/{seeded.session_id}")).text
    thread = html[html.index('id="comments"') :]
    assert "<strong>bold</strong>" in thread
    assert "<script>alert" not in thread and "&lt;script&gt;" in thread
    assert not re.search(r'href="\s*javascript:', thread, re.IGNORECASE)
    assert "<img src=x" not in thread


async def test_threads_edits_deletes_and_replies(live: LiveServer, seeded: Seed) -> None:
    async with reader_client(live) as a, reader_client(live) as b:
        await register(a, "alice")
        await register(b, "bob")
        root = comment_id(await comment(a, seeded.session_id, "What about roots?"))
        reply = comment_id(await comment(b, seeded.session_id, "Roots come later", parent_id=str(root)))
        # Only the author edits or deletes.
        assert (await b.post(f"/comments/{root}/edit", data={"body": "hijack"})).status_code == 403
        assert (
            await a.post(f"/comments/{root}/edit", data={"body": "What about root hairs?"})
        ).status_code == 303
        html = (await a.get(f"/sessions/{seeded.session_id}")).text
        root_li = html[html.index(f'id="comment-{root}"') :]
        assert "root hairs" in root_li and "Edited" in root_li
        # The reply sits in the root's list of replies.
        assert re.search(rf'<ol class="replies">\s*<li class="comment" id="comment-{reply}"', root_li)
        assert (await a.post(f"/comments/{root}/delete")).status_code == 303
        html = (await b.get(f"/sessions/{seeded.session_id}")).text
        # The deleted comment keeps its place for the reply under it, without its text.
        assert "This comment was removed." in html and "root hairs" not in html and "Roots come later" in html
        # Replying to a comment of another session is refused.
        r = await comment(b, seeded.other_session_id, "elsewhere", parent_id=str(reply))
        assert r.status_code == 404


async def test_premoderation_and_locked_threads(live: LiveServer, seeded: Seed) -> None:
    async with (
        live.client(
            cookies={"lb_login": seeded.login_token},
            headers=organiser_csrf(seeded.login_token),
            follow_redirects=False,
        ) as org,
        reader_client(live) as r1,
        reader_client(live) as anon,
    ):
        await register(r1, "reader1")
        assert (
            await org.post(f"/events/{seeded.event_id}/comments/premoderation", data={"on": "1"})
        ).status_code == 303
        cid = comment_id(await comment(r1, seeded.session_id, "needs a look"))
        assert "needs a look" not in (await anon.get(f"/sessions/{seeded.session_id}")).text
        own = (await r1.get(f"/sessions/{seeded.session_id}")).text
        assert "needs a look" in own and "Awaiting moderation" in own  # the author sees it waiting
        mod = (await org.get(f"/sessions/{seeded.session_id}")).text
        assert "1 comment awaiting moderation" in mod
        assert (await org.post(f"/comments/{cid}/moderate", data={"action": "approve"})).status_code == 303
        assert "needs a look" in (await anon.get(f"/sessions/{seeded.session_id}")).text
        assert (
            await org.post(f"/sessions/{seeded.session_id}/comments/lock", data={"locked": "1"})
        ).status_code == 303
        r = await comment(r1, seeded.session_id, "too late")
        assert r.status_code == 409
        assert "This thread is locked" in (await r1.get(f"/sessions/{seeded.session_id}")).text


async def test_the_organisers_queue_lists_waiting_comments_of_every_session(
    live: LiveServer, seeded: Seed
) -> None:
    async with (
        live.client(
            cookies={"lb_login": seeded.login_token},
            headers=organiser_csrf(seeded.login_token),
            follow_redirects=False,
        ) as org,
        reader_client(live) as r1,
        reader_client(live) as anon,
    ):
        assert (await anon.get("/organise/comments")).status_code in (303, 401)  # organisers only
        empty = (await org.get("/organise/comments")).text
        assert "Nothing waits for approval" in empty
        await register(r1, "queued")
        assert (
            await org.post(f"/events/{seeded.event_id}/comments/premoderation", data={"on": "1"})
        ).status_code == 303
        first = comment_id(await comment(r1, seeded.session_id, "first <script>alert(1)</script> thought"))
        second = comment_id(await comment(r1, seeded.other_session_id, "second thought"))
        home = (await org.get("/organise")).text
        assert 'href="/organise/comments"' in home and '<span class="badge">2</span>' in home
        queue = (await org.get("/organise/comments")).text
        assert queue.index("second thought") < queue.index("first ")  # newest first
        assert "<script>alert" not in queue  # rendered with the notes' policy
        assert f'href="/sessions/{seeded.other_session_id}#comment-{second}"' in queue
        r = await org.post(f"/comments/{first}/moderate?next=/organise/comments", data={"action": "approve"})
        assert r.status_code == 303 and r.headers["location"] == "/organise/comments"
        r = await org.post(f"/comments/{second}/moderate?next=/organise/comments", data={"action": "hide"})
        assert r.headers["location"] == "/organise/comments"
        queue = (await org.get("/organise/comments")).text
        pending, hidden = queue.split('id="hidden-heading"')
        assert "Nothing waits for approval" in pending and "second thought" in hidden
        assert "first " in (await anon.get(f"/sessions/{seeded.session_id}")).text
        # An off-site `next` is ignored: the redirect stays on this site.
        r = await org.post(f"/comments/{second}/moderate?next=//evil.example/", data={"action": "show"})
        assert r.headers["location"] == f"/sessions/{seeded.other_session_id}#comment-{second}"


async def test_spam_guard(live: LiveServer, seeded: Seed) -> None:
    async with reader_client(live) as c:
        await register(c, "newbie")
        r = await comment(c, seeded.session_id, "buy now", website="http://spam.example")
        assert r.status_code == 400 and "automated" in r.text
        r = await comment(c, seeded.session_id, "see https://a.example and https://b.example")
        assert r.status_code == 400 and "link" in r.text
        # The refused text is back in the form, the reason beside it: the page, not a bare error.
        form = r.text[r.text.index('id="comment-form"') :]
        assert re.search(r'<p class="form-error" role="alert" id="comment-error">[^<]*link', form)
        assert ">see https://a.example and https://b.example</textarea>" in form
        assert 'id="comments-heading"' in r.text and "That did not work" not in r.text
        first = comment_id(await comment(c, seeded.session_id, "one link https://a.example is fine"))
        r = await comment(
            c, seeded.session_id, "a reply with https://a.example and https://b.example", parent_id=str(first)
        )
        assert r.status_code == 400
        assert '<details class="reply" open>' in r.text
        reply_form = r.text[r.text.index(f'id="reply-{first}-error"') :]
        assert ">a reply with https://a.example and https://b.example</textarea>" in reply_form
        assert "</textarea></textarea>" not in r.text and r.text.count("https://b.example</textarea>") == 1
        codes = [(await comment(c, seeded.session_id, f"message {n}")).status_code for n in range(6)]
        assert 429 in codes


def test_limiter_windows() -> None:
    limiter = Limiter(((2, 60.0),))
    limiter.check("k", now=0)
    limiter.check("k", now=1)
    with pytest.raises(RateLimited):
        limiter.check("k", now=2)
    limiter.check("k", now=62)  # the window moved on


async def test_organiser_reset_link_works_once(live: LiveServer, seeded: Seed) -> None:
    async with reader_client(live) as c:
        old = await register(c, "forgetful")
        assert (await comment(c, seeded.session_id, "I took part")).status_code == 303
    async with live.client(
        cookies={"lb_login": seeded.login_token},
        headers=organiser_csrf(seeded.login_token),
        follow_redirects=False,
    ) as org:
        r = await org.post("/organise/readers", data={"username": "forgetful"})
        assert r.status_code == 200
        link = re.search(r"(/account/reset/[^<\s]+)", r.text)
        assert link
    async with reader_client(live) as c:
        path = link.group(1)
        form = await c.get(path)
        assert "forgetful" in form.text
        token = page_csrf(form.text)
        r = await c.post(path, data={"password": "brand new password", "csrf_token": token})
        assert r.status_code == 200 and "Your password is set" in r.text
        r = await c.post(path, data={"password": "second try password", "csrf_token": token})
        assert r.status_code == 401
        r = await login(c, "forgetful", "brand new password")
        assert r.status_code == 303
    async with reader_client(live) as replay:
        replay.cookies.set("lb_reader", old)
        as_reader(replay, old)
        assert (await comment(replay, seeded.session_id, "old cookie")).status_code == 401


async def reset_link_page(live: LiveServer, seeded: Seed, username: str) -> httpx.Response:
    async with live.client(
        cookies={"lb_login": seeded.login_token},
        headers=organiser_csrf(seeded.login_token),
        follow_redirects=False,
    ) as org:
        return await org.post("/organise/readers", data={"username": username})


async def test_an_organiser_cannot_take_over_another_organisers_account(
    live: LiveServer, seeded: Seed
) -> None:
    """Before: a reset link for another organiser's username was made, and it worked."""
    await live.services.accounts.create_organiser("victim", "the victim's long password")
    r = await reset_link_page(live, seeded, "victim")
    assert r.status_code == 403 and "/account/reset/" not in r.text
    assert "only for reader accounts" in r.text
    assert (await reset_link_page(live, seeded, "org")).status_code == 403  # nor one's own: change it instead
    # A link that exists for an organiser all the same (made before this rule) sets nothing.
    victim = await live.services.db.read(lambda r: r.account_for_login("victim"))
    assert victim is not None
    token = await live.services.db.write(lambda tx: tx.insert_password_reset(victim[0].id, 48))
    async with reader_client(live) as c:
        form = await c.get(f"/account/reset/{token}")
        assert form.status_code == 401 and "victim" not in form.text
        r = await c.post(
            f"/account/reset/{token}", data={"password": "taken over!!", "csrf_token": page_csrf(form.text)}
        )
        assert r.status_code == 401
    async with live.client() as http:
        assert (
            await http.post("/api/v1/login", json={"username": "victim", "password": "taken over!!"})
        ).status_code == 401
        good = await http.post(
            "/api/v1/login", json={"username": "victim", "password": "the victim's long password"}
        )
        assert good.status_code == 200


async def test_a_reset_link_is_only_for_a_reader_who_took_part_in_an_event(
    live: LiveServer, seeded: Seed
) -> None:
    async with reader_client(live) as c:
        await register(c, "stranger")
    r = await reset_link_page(live, seeded, "stranger")
    assert r.status_code == 403 and "/account/reset/" not in r.text and "taken part" in r.text
    async with reader_client(live) as c:
        await login(c, "stranger")
        assert (await comment(c, seeded.session_id, "now I took part")).status_code == 303
    r = await reset_link_page(live, seeded, "stranger")
    assert r.status_code == 200 and "/account/reset/" in r.text


async def test_a_new_account_cannot_slip_links_past_the_limit(live: LiveServer, seeded: Seed) -> None:
    """Before: bare domains and e-mail addresses became links but were not counted, and an edit
    was not checked at all."""
    async with reader_client(live) as c:
        await register(c, "spammer")
        for body in (
            "visit spam-one.example.com and spam-two.example.com",
            "write to sales@spam-one.com or mailto:more@spam-two.com",
            "[cheap](https://a.example) and www.b.com",
            "spam-one.example.com and https://b.example",
        ):
            r = await comment(c, seeded.session_id, body)
            assert r.status_code == 400 and "link" in r.text, body
        assert (await comment(c, seeded.session_id, "just spam-one.example.com")).status_code == 303
        r = await comment(c, seeded.session_id, "nothing here yet")
        assert r.status_code == 303
        r = await c.post(
            f"/comments/{comment_id(r)}/edit",
            data={"body": "now spam-one.example.com and spam-two.example.com"},
        )
        assert r.status_code == 400 and "link" in r.text
    async with reader_client(live) as anon:
        page = (await anon.get(f"/sessions/{seeded.session_id}")).text
        assert "spam-two" not in page and "nothing here yet" in page


async def test_a_reader_login_is_never_an_organiser(live: LiveServer, seeded: Seed) -> None:
    async with reader_client(live) as c:
        token = await register(c, "sneaky")
    async with live.client(
        cookies={"lb_login": token}, headers=organiser_csrf(token), follow_redirects=False
    ) as c:
        assert (await c.get("/organise")).status_code == 303  # to the log-in page
        assert (await c.post("/organise/readers", data={"username": "org"})).status_code == 401


async def test_new_comments_arrive_live_on_the_stream(live: LiveServer, seeded: Seed) -> None:
    await live.services.programme.set_state(seeded.session_id, "ended")
    head = await live.services.db.read(lambda r: r.stream_head(seeded.session_id))
    assert head is not None
    epoch, seq = head
    async with await connect(
        f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}?since={seq}&epoch={epoch}"
    ) as ws:
        async with reader_client(live) as c:
            await register(c, "livewire")
            r = await comment(c, seeded.session_id, "after the talk")
            assert r.status_code == 303, r.text
        seen: list[dict[str, Any]] = []

        def record(m: dict[str, Any]) -> bool:
            seen.append(m)
            return m.get("op") == "comment.created"

        try:
            msg = (await recv_until(ws, record))[-1]
        except TimeoutError:
            raise AssertionError(f"no comment.created; got {seen}") from None
        assert msg["seq"] == seq + 1 and "after the talk" in msg["comment"]["html"]
        assert "ip" not in msg["comment"] and msg["comment"]["author"] == "livewire"

"""CPU-heavy work stays off the event loop that serves live viewers (issue 7 §2).

These tests check *where* the work runs, not how long it takes (speed lives in bench/).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from liveblog.capture import notes
from liveblog.services import Services
from liveblog.streams.protocol import Frame
from tests.conftest import LiveServer, Seed


async def test_a_long_note_is_rendered_in_a_worker_thread_a_short_one_inline(
    services: Services, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real = notes.render_markdown

    def recording(body: str) -> str:
        threads.append(threading.get_ident())
        return real(body)

    monkeypatch.setattr(notes, "render_markdown", recording)
    author = notes.Author(name="Ada", ref="inv-ada")
    loop_thread = threading.get_ident()
    await services.notes.handle(
        seeded.session_id, author, {"type": "note.create", "client_id": "short", "body": "hi"}
    )
    long_body = "A paragraph with **bold** words and a link https://example.org.\n\n" * 900
    await services.notes.handle(
        seeded.session_id, author, {"type": "note.create", "client_id": "long", "body": long_body}
    )
    assert threads[0] == loop_thread
    assert threads[1] != loop_thread
    stored = await services.programme.items(seeded.session_id)
    assert stored[-1].html.count("<strong>bold</strong>") == 900


async def test_a_big_knowledge_page_is_rendered_off_the_event_loop(
    live: LiveServer, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from liveblog.web import render

    author = notes.Author(name="Ada", ref="inv-ada")
    for i in range(render.THREAD_RENDER_ITEMS + 5):
        await live.services.notes.handle(
            seeded.session_id, author, {"type": "note.create", "client_id": f"n{i}", "body": f"note {i}"}
        )
    # A live page shows only its newest notes (web/paging.py); a knowledge page renders its cards
    # cold, all of them when they are few enough (RENDER_ALL_CARDS), so it is the big render.
    await live.services.programme.set_state(seeded.session_id, "ended")
    threads: list[int] = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            def run() -> Any:
                threads.append(threading.get_ident())
                return fn(*args, **kwargs)

            return super().submit(run)

    recording = Recording(max_workers=1)
    monkeypatch.setattr(render, "_RENDERER", recording)
    try:
        async with live.client() as http:
            response = await http.get(f"/archive/sessions/{seeded.session_id}")
    finally:
        recording.shutdown()
    assert response.status_code == 200 and "note 0" in response.text
    assert threads and threads[0] != threading.get_ident()


def test_an_sse_frame_is_encoded_once_for_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = Frame('{"type":"change","seq":7,"op":"item.created"}', 7)
    first = frame.sse_bytes("ep1")
    assert first == b'id: ep1:7\nevent: change\ndata: {"type":"change","seq":7,"op":"item.created"}\n\n'

    def no_parsing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("parsed the frame again")

    monkeypatch.setattr("liveblog.streams.protocol.json.loads", no_parsing)
    assert frame.sse_bytes("ep1") is first  # the same bytes object for the next client
    assert (
        Frame.of({"type": "heartbeat", "seq": 3}).sse_bytes("e")
        == b'event: heartbeat\ndata: {"type":"heartbeat","seq":3}\n\n'
    )


async def test_concurrent_loads_of_one_page_render_its_cards_once_and_a_new_note_renders_again(
    live: LiveServer, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from liveblog.web import pages
    from tests.wsclient import connect, recv_type

    author = notes.Author(name="Ada", ref="inv-ada")
    await live.services.notes.handle(
        seeded.session_id, author, {"type": "note.create", "client_id": "a", "body": "first"}
    )
    builds: list[str] = []
    real = pages._build_view

    async def counting(request: Any, session_id: str) -> Any:
        builds.append(session_id)
        return await real(request, session_id)

    monkeypatch.setattr(pages, "_build_view", counting)
    async with await connect(
        f"{live.ws_url}/ws/v1/sessions/{seeded.session_id}"
    ) as viewer:  # the channel is live
        await recv_type(viewer, "synced")
        async with live.client() as http:
            seen = await asyncio.gather(*(http.get(f"/sessions/{seeded.session_id}") for _ in range(20)))
            assert {r.status_code for r in seen} == {200}
            assert all("first" in r.text for r in seen)
            assert len(builds) == 1
            await live.services.notes.handle(
                seeded.session_id, author, {"type": "note.create", "client_id": "b", "body": "second note"}
            )
            await recv_type(viewer, "change")
            fresh = await http.get(f"/sessions/{seeded.session_id}")
            assert "second note" in fresh.text and len(builds) == 2
        # Each visitor still gets a page of their own: its CSRF token is theirs, not the first's.
        async with live.client() as one, live.client() as two:
            first, second = (
                await one.get(f"/sessions/{seeded.session_id}"),
                await two.get(f"/sessions/{seeded.session_id}"),
            )
            assert len(builds) == 2
            assert first.cookies.get("lb_csrf") != second.cookies.get("lb_csrf")
            assert token_in(first.text) != token_in(second.text)


def token_in(html: str) -> str:
    import re

    found = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert found is not None, "no CSRF token in the page"
    return found.group(1)

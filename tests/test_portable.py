"""The portable delivery path (any ASGI server): Starlette's TestClient, in-process, no uvicorn."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from liveblog.services import Services
from liveblog.web.app import create_app
from liveblog.web.outlets import QueueOutlet
from tests.conftest import make_settings, seed


def test_queue_outlet_serves_viewers_and_note_takers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path)
    services = Services.build(settings)

    async def prepare() -> tuple[str, str]:
        await services.open()
        try:
            s = await seed(services)
            return s.session_id, s.token
        finally:
            await services.close()

    session_id, token = asyncio.run(prepare())
    caplog.set_level(logging.WARNING, logger="liveblog.web.app")
    with TestClient(create_app(settings)) as client:
        app_services = client.app.state.services  # type: ignore[attr-defined]
        with client.websocket_connect(
            f"/ws/v1/sessions/{session_id}?since=0", subprotocols=["liveblog.v1"]
        ) as viewer:
            assert viewer.receive_json()["type"] == "hello"
            replay = [viewer.receive_json() for _ in range(2)]
            assert [m["type"] for m in replay] == ["change", "synced"]  # the session going live
            (outlet,) = app_services.hub.channels[session_id].live
            assert isinstance(outlet, QueueOutlet)
            with client.websocket_connect(
                f"/ws/v1/sessions/{session_id}/capture",
                subprotocols=["liveblog.v1", "liveblog.token." + token],
            ) as note_taker:
                assert note_taker.receive_json()["type"] == "hello"
                note_taker.send_json({"type": "note.create", "client_id": "p1", "body": "portable"})
                messages = [note_taker.receive_json() for _ in range(4)]
                assert {m["type"] for m in messages} >= {"ack", "change"}
            seen = []
            while len([m for m in seen if m["type"] == "change"]) < 1:
                seen.append(viewer.receive_json())
            assert next(m for m in seen if m["type"] == "change")["item"]["body"] == "portable"
    # Said loudly, once: this server does not offer the fast path.
    portable = [r for r in caplog.records if "viewer websockets: PORTABLE queue path" in r.getMessage()]
    assert len(portable) == 1 and portable[0].levelno == logging.WARNING

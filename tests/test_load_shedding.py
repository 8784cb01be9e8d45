"""Load shedding (docs/protocol.md, "Load shedding"): a process holding streams.max_viewers viewer
sockets accepts the next one and closes it with 1013 and a retry hint in the reason; the slot is
free again when a viewer leaves. The page's client honouring the hint is in
tests/browser/test_pages.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from liveblog.errors import ConfigError
from liveblog.settings import settings_from_dict
from liveblog.streams.protocol import CloseCode
from tests.conftest import eventually, seeded_server
from tests.wsclient import connect, recv, recv_type


async def test_a_full_process_sheds_the_next_viewer_with_1013_and_a_retry_hint(tmp_path: Path) -> None:
    async with seeded_server(tmp_path, streams={"max_viewers": 2, "retry_after_seconds": 7}) as (live, s):
        hub = live.services.hub
        url = f"{live.ws_url}/ws/v1/sessions/{s.session_id}"
        first, second = await connect(url), await connect(url)
        for viewer in (first, second):
            await recv_type(viewer, "synced")
        shed = await connect(url)
        with pytest.raises(ConnectionClosed):
            await recv(shed)
        assert shed.close_code == CloseCode.TRY_AGAIN_LATER == 1013
        assert shed.close_reason == "overloaded: retry after 7 s"
        assert hub.shed == 1
        # The two it kept are served as before.
        await first.send('{"type":"ping"}')
        assert (await recv(first))["type"] == "pong"
        # A viewer leaves: its slot is free for the next one.
        await first.close()
        await eventually(lambda: hub.viewer_sockets == 1)
        third = await connect(url)
        assert (await recv_type(third, "synced"))["type"] == "synced"
        await second.close()
        await third.close()
        await eventually(lambda: hub.viewer_sockets == 0)


def test_shedding_settings_are_checked() -> None:
    env = {"LIVEBLOG_SECRET_KEY": "k"}
    with pytest.raises(ConfigError, match="streams.max_viewers"):
        settings_from_dict({"streams": {"max_viewers": -1}}, env=env)
    with pytest.raises(ConfigError, match="streams.retry_after_seconds"):
        settings_from_dict({"streams": {"retry_after_seconds": 0}}, env=env)

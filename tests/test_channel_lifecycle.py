"""Memory follows the sessions being watched, not the sessions ever served (issue 8 section 2):
500 sessions served one after another over real websockets; their channels, rings and per-poll
state are freed when the session ends or sits idle."""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path

from liveblog.capture.notes import Author
from liveblog.services import Services
from tests.conftest import make_settings, run_server, seed
from tests.wsclient import connect, recv_type

SESSIONS = 500


async def test_memory_does_not_grow_with_sessions_ever_served(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database={"synchronous": "NORMAL"})  # 1,500 writes: keep it quick
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        hub = services.hub
        author = Author("Ada", "bench")
        async with run_server(settings, services) as live:

            async def serve(i: int) -> None:
                session = await services.programme.create_session(
                    s.event_id,
                    # Titles repeat the warm-up's words: the search index's stemmer keeps a bounded
                    # cache of the words it has seen (storage/searchtext.stem, 50,000 words), and a
                    # new word per session filled it by ~110 KB within the measurement.
                    {
                        "title": f"Talk {i % 50}",
                        "starts_at": "2026-05-14T13:00",
                        "ends_at": "2026-05-14T14:00",
                    },
                )
                await services.programme.set_state(session.id, "live")
                async with await connect(f"{live.ws_url}/ws/v1/sessions/{session.id}") as viewer:
                    await recv_type(viewer, "synced")
                    note = {"type": "note.create", "client_id": f"n{i}", "body": "x" * 2000}
                    await services.notes.handle(session.id, author, note)
                    await recv_type(viewer, "change")
                    if i % 2:  # half end while watched: freed as the last viewer leaves
                        await services.programme.set_state(session.id, "ended")
                        await recv_type(viewer, "change")
                # The other half go idle: freed once idle for hub.idle_seconds.
                if i % 2 == 0:
                    assert session.id in hub.channels
                    hub.sweep(now=time.monotonic() + hub.idle_seconds)

            def used() -> int:
                gc.collect()
                services.audience.housekeeping()
                return tracemalloc.get_traced_memory()[0]

            for i in range(50):  # warm-up: caches, statements, first-time allocations
                await serve(i)
            tracemalloc.start()
            try:
                base = used()
                for i in range(50, SESSIONS):
                    await serve(i)
                grown = used() - base
            finally:
                tracemalloc.stop()
            # 450 more sessions, each with a 2 KB note in its ring: kept, they would be > 1 MB.
            assert grown < 256 * 1024, f"{grown} bytes more after {SESSIONS - 50} more sessions"
            # Only the sessions still watched keep a channel: here, the seeded one at most.
            assert len(hub.channels) <= 1, sorted(hub.channels)
            assert hub.freed >= SESSIONS
    finally:
        await services.close()

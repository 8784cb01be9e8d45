"""The PostgreSQL write path alone: notes through the real capture service (NoteCapture.handle,
the same op a capture socket queues) into a PostgresStore, with many in flight so batches fill,
no websockets or HTTP. Reports durable notes/s, this process's CPU per note, and what does not
depend on how busy the machine is: the statements (round trips) the writer sends per note.

    .venv/bin/python -m bench.pgwrite                 # 5,000 notes, 512 in flight
    .venv/bin/python -m bench.pgwrite --notes 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

from liveblog.capture.notes import Author
from liveblog.services import Services
from liveblog.settings import settings_from_dict
from tests.servers import PostgresServer


def backend_cpu(pid: int) -> float:
    """CPU seconds of one PostgreSQL backend process (the writer connection's), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(url: str, notes: int, in_flight: int) -> dict[str, float]:
    settings = settings_from_dict({"database": {"url": url}}, env={"LIVEBLOG_SECRET_KEY": "bench"})
    services = Services.build(settings)
    await services.open()
    try:
        event = await services.programme.create_event(
            {"title": "Bench", "starts_on": "2026-05-14", "ends_on": "2026-05-15"}
        )
        session = await services.programme.create_session(
            event.id, {"title": "Keynote", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00"}
        )
        await services.programme.set_state(session.id, "live")
        invite, _ = await services.accounts.invite(event.id, session.id, "Ada")
        author = Author.from_invite(invite)
        store: Any = services.db
        writer = await store._connection()  # the writer connection: count what it is sent
        statements = 0

        def count(record: Any) -> None:
            nonlocal statements
            statements += 1

        backend = await writer.fetchval("SELECT pg_backend_pid()")
        writer.add_query_logger(count)
        body = "A pipelined note from the capture benchmark. " * 7  # ~300 bytes, as bench/live.py
        queue = iter(range(notes))

        async def taker() -> None:
            for _ in queue:
                await services.notes.handle(
                    session.id, author, {"type": "note.create", "client_id": str(uuid.uuid4()), "body": body}
                )

        commits0, cpu0, t0, pg0 = store.commits, time.process_time(), time.monotonic(), backend_cpu(backend)
        await asyncio.gather(*(taker() for _ in range(in_flight)))
        elapsed, cpu, pg_cpu = time.monotonic() - t0, time.process_time() - cpu0, backend_cpu(backend) - pg0
        writer.remove_query_logger(count)
        return {
            "notes/s": notes / elapsed,
            "client CPU µs/note": cpu * 1e6 / notes,
            "PG writer CPU µs/note": pg_cpu * 1e6 / notes,
            "statements/note": statements / notes,
            "notes/commit": notes / max(1, store.commits - commits0),
        }
    finally:
        await services.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pgwrite", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--notes", type=int, default=5000)
    p.add_argument("--in-flight", type=int, default=512)
    args = p.parse_args(argv)
    pg = PostgresServer().start()
    try:
        url = asyncio.run(pg.new_database())
        result = asyncio.run(run(url, args.notes, args.in_flight))
    finally:
        pg.remove()
    for name, value in result.items():
        print(f"{name:>20}: {value:,.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

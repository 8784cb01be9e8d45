"""The baseline: a bare `websockets` (asyncio server) broadcast server that stores nothing.

It speaks just enough of Liveblog's protocol for the same load generator to drive it:
- `/ws/v1/sessions/<id>` (viewer): a `hello` frame, then every change;
- `/ws/v1/sessions/<id>/capture` (note-taker): each `note.create` becomes a change frame of the
  same shape and size as Liveblog's (body, html, timestamps...), sent with
  `websockets.broadcast()` to every connection of the session (viewers and note-takers, as
  Liveblog does), then an `ack`. Nothing is validated, rendered or written to disk.

Settings match production Liveblog where they matter: no permessage-deflate (compression=None),
same default asyncio event loop. Run: python -m bench.baseline_server --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from datetime import UTC, datetime

import websockets
from websockets.asyncio.server import ServerConnection, serve

CONNECTIONS: set[ServerConnection] = set()
SEQ = 0
ITEM_ID = 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def change_frame(message: dict[str, object], author: str) -> tuple[str, dict[str, object]]:
    global SEQ, ITEM_ID
    SEQ += 1
    ITEM_ID += 1
    body = str(message.get("body", ""))
    now = _now()
    item = {
        "id": ITEM_ID,
        "kind": "note",
        "client_id": message.get("client_id"),
        "author": author,
        "body": body,
        "html": f"<p>{body}</p>\n",
        "key_point": bool(message.get("key_point", False)),
        "data": {},
        "typed_at": message.get("typed_at") or now,
        "received_at": now,
        "updated_at": now,
        "deleted": False,
        "version": 1,
        "seq": SEQ,
    }
    change = {"type": "change", "seq": SEQ, "op": "item.created", "item": item}
    ack = {
        "type": "ack",
        "client_id": message.get("client_id"),
        "item_id": ITEM_ID,
        "seq": SEQ,
        "duplicate": False,
    }
    return json.dumps(change, separators=(",", ":"), ensure_ascii=False), ack


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else ""
    capture = path.split("?")[0].endswith("/capture")
    hello = {"type": "hello", "protocol": 1, "seq": SEQ, "role": "note-taker" if capture else "viewer"}
    await ws.send(json.dumps(hello, separators=(",", ":")))
    CONNECTIONS.add(ws)
    try:
        if not capture:
            await ws.wait_closed()
            return
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") != "note.create":
                continue
            text, ack = change_frame(message, "Bench note-taker")
            websockets.broadcast(CONNECTIONS, text)
            await ws.send(json.dumps(ack, separators=(",", ":")))
    finally:
        CONNECTIONS.discard(ws)


def _subprotocol(ws: ServerConnection, offered: object) -> str | None:
    return "liveblog.v1" if isinstance(offered, list | tuple) and "liveblog.v1" in offered else None


async def main(port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=1 << 20,
        select_subprotocol=_subprotocol,
        backlog=2048,
    ):
        await stop


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    asyncio.run(main(args.port))

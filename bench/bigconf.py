"""A big real programme's pages: how heavy they are to open with 38C3's 1,007 talks imported.

    .venv/bin/python -m bench.bigconf             # phone and desktop, 3 loads each
    .venv/bin/python -m bench.bigconf --runs 5

A real `liveblog serve` (bench/servers.py) on an SQLite file whose event holds 38C3's published
schedule (tests/data/programme/38c3-schedule.xml.gz, its four days moved so the second is
today, as in tests/browser/test_bigconf_browser.py), one talk ended with 50 notes (its knowledge
page), an organiser and an event-wide note-taker invite. Debian's Chromium (Playwright,
executable_path=/usr/bin/chromium) opens each page in a fresh context (no cache) --runs times
at phone and desktop width. Printed per page: the HTML's bytes, the server's time to the first
byte (TTFB, Navigation Timing), first contentful paint (Paint Timing) and the DOM's elements,
as medians.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.pageload import paint_timing, percentile
from bench.servers import Seeded, liveblog_server
from tests.browser.test_bigconf_browser import the_38c3_running_now

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
NOTES = 50


async def _prepare(db_path: str, session_id: str, out: dict[str, str]) -> None:
    from liveblog.capture.notes import Author
    from liveblog.services import Services
    from liveblog.settings import settings_from_dict

    settings = settings_from_dict(
        {"database": {"path": db_path}, "archive": {"timezone": "Europe/Berlin"}},
        env={"LIVEBLOG_SECRET_KEY": "bench"},
    )
    svc = Services.build(settings)
    await svc.open()
    try:
        event_id = (await svc.programme.session(session_id)).event_id
        await svc.imports.apply(event_id, the_38c3_running_now())
        talk = next(s for s in await svc.programme.sessions(event_id) if s.title == "38C3: Opening Ceremony")
        await svc.programme.set_state(talk.id, "live")
        invite, token = await svc.accounts.invite(event_id, talk.id, "Bench")
        for n in range(NOTES):
            await svc.notes.handle(
                talk.id,
                Author.from_invite(invite),
                {"type": "note.create", "client_id": f"bench-{n}", "body": f"Note {n} on the opening."},
            )
        await svc.programme.set_state(talk.id, "ended")
        _, everywhere = await svc.accounts.invite(event_id, None, "Anyone")
        await svc.accounts.create_organiser("bench", "correct horse battery staple")
        out |= {
            "event": event_id,
            "talk": talk.id,
            "token": everywhere,
            "login": await svc.accounts.login("bench", "correct horse battery staple"),
        }
    finally:
        await svc.close()


def measure(runs: int) -> str:
    made: dict[str, str] = {}

    def prepare(seeded: Seeded) -> None:
        asyncio.run(_prepare(seeded.db_path, seeded.session_id, made))

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, liveblog_server(Path(tmp), prepare=prepare) as server:
        base = f"http://127.0.0.1:{server.port}"
        ev, talk, token = made["event"], made["talk"], made["token"]
        pages = {
            "programme (today)": f"/events/{ev}",
            "programme, a room": f"/events/{ev}?room=Saal+1",
            "programme, found by words": f"/events/{ev}?q=opening+ceremony",
            "organiser's event (today)": f"/organise/events/{ev}",
            "organiser's moderation log": f"/organise/events/{ev}/moderation",
            "note-taker's choice (today)": f"/n/{token}",
            "event's archive (today)": f"/events/{ev}/archive",
            "search": f"/search?q=security&event={ev}",
            "knowledge page of one talk": f"/sessions/{talk}",
        }
        httpx.get(f"{base}/sessions/{talk}", timeout=120)  # archived on its first view
        rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            try:
                for _ in range(runs):
                    for width, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
                        for name, path in pages.items():
                            context = browser.new_context(viewport=viewport)
                            context.add_cookies([{"name": "lb_login", "value": made["login"], "url": base}])
                            page = context.new_page()
                            timing = paint_timing(page, base + path)
                            rows.setdefault((name, width), []).append(timing)
                            context.close()
            finally:
                browser.close()
    lines = [
        f"38C3 imported (1,007 talks, 4 days, 72 rooms); Chromium, fresh context per load; median of {runs}",
        "",
        "| page | width | HTML (bytes) | TTFB ms | FCP ms | elements | height px |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (name, width), got in rows.items():
        med = {k: percentile([r[k] for r in got], 50) for k in ("ttfb", "fcp", "bytes", "nodes", "height")}
        lines.append(
            f"| {name} | {width} | {med['bytes']:,.0f} | {med['ttfb']:.0f} | {med['fcp']:.0f} |"
            f" {med['nodes']:,.0f} | {med['height']:,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    print(measure(parser.parse_args().runs))


if __name__ == "__main__":
    main()

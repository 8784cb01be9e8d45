"""A long session's pages stay light (issue 17 item 7), on a real server over a real SQLite file:
the first HTML of the live and the knowledge page of a session of 2,000 notes and 5,000 social
posts fits its budget in bytes (times are the benchmark's: bench/pageload.py), the older-cards
endpoint pages by position, and bad cursors are refused by name. What a reader sees (scrolling,
pages without JavaScript, live notes meanwhile) is in tests/browser/test_long_sessions.py."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from bench.pageload import fill_sessions
from liveblog.services import Services
from tests.conftest import make_settings, run_server, seed

FIRST_HTML_BUDGET = 150_000  # bytes (issue 17 item 7)


async def test_the_first_html_of_a_long_session_stays_within_its_budget(tmp_path: Path) -> None:
    # Its own SQLite file (whatever backend the suite runs on): the items are written straight in.
    settings = make_settings(tmp_path, database={"path": str(tmp_path / "long.sqlite3")})
    services = Services.build(settings)
    await services.open()
    try:
        s = await seed(services)
        await services.programme.set_state(s.other_session_id, "live")
    finally:
        await services.close()
    fill_sessions(settings.database.path, [s.session_id, s.other_session_id], 2000, 5000)
    services = Services.build(settings)
    await services.open()
    try:
        await services.programme.set_state(s.other_session_id, "ended")
        async with (
            run_server(settings, services) as live,
            httpx.AsyncClient(base_url=live.url, timeout=60) as http,
        ):
            page = await http.get(f"/sessions/{s.session_id}")
            assert page.status_code == 200
            assert len(page.content) <= FIRST_HTML_BUDGET, f"live page: {len(page.content):,} bytes"
            # (the card <template> the script clones for live items holds one more, of item 0)
            assert len(re.findall(r'<article class="item [^"]*" id="item-[1-9]', page.text)) == 50
            assert 'rel="next"' in page.text and "Older notes" in page.text

            knowledge = await http.get(f"/sessions/{s.other_session_id}")
            assert knowledge.status_code == 200
            assert "knowledge" in knowledge.text
            assert len(knowledge.content) <= FIRST_HTML_BUDGET, (
                f"knowledge page: {len(knowledge.content):,} bytes"
            )
            assert len(re.findall(r'<article class="arch-item ', knowledge.text)) == 100  # 50 notes, 50 posts

            # The rest of the notes, a page at a time after the last one shown, each once.
            more = re.search(r'data-url="([^"]+section=notes)" data-after="(\d+)"', knowledge.text)
            assert more is not None
            url, after = more.group(1).replace("&amp;", "&"), more.group(2)
            seen = re.findall(r'<article class="arch-item arch-note[^"]*" id="item-(\d+)"', knowledge.text)
            while after is not None:
                page = (await http.get(f"{url}&after={after}")).json()
                seen += re.findall(r'id="item-(\d+)"', page["html"])
                after = page["after"]
            assert len(seen) == len(set(seen)) == 2000
            assert [int(i) for i in seen] == sorted(int(i) for i in seen)  # written in order: ids rise
            # The permalink of the last note: the numbered page that holds it.
            found = await http.get(f"/archive/sessions/{s.other_session_id}/items/{seen[-1]}")
            assert found.status_code == 303
            assert (
                found.headers["location"] == f"/archive/sessions/{s.other_session_id}/page/40#item-{seen[-1]}"
            )
            bad = await http.get(f"{url}&after=first")
            assert bad.status_code == 400 and "after must be an item id" in bad.text
    finally:
        await services.close()

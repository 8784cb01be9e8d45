"""Every page type, rendered with realistic content, is valid HTML by the W3C's Nu Html Checker
(vnu.jar from npm's `vnu-jar`, run with Java), and every page's JSON-LD passes a schema.org
structured-data check. scripts/test installs both (`npm ci` in tests/tools, Java from apt). All
pages go through each checker in one run: one JVM start, one Node start."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from liveblog.capture.notes import Author
from liveblog.capture.votes.common import Voter
from liveblog.services import Services
from liveblog.storage import Tx
from liveblog.web.app import make_templates
from liveblog.web.paging import KNOWLEDGE_PAGE
from liveblog.web.static_site import export_site
from tests.archive_fixtures import fill_session, note, organiser_account
from tests.conftest import LiveServer, Seed
from tests.test_exports import a_full_event

TOOLS = Path(__file__).parent / "tools"
VNU = TOOLS / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "0000050001e226059b0000000049454e44ae426082"
)


async def fediverse_guests(svc: Services, ended_id: str) -> None:
    """A reply from the fediverse on the ended session (a comment with its author's avatar), a
    follower of the session and a blocked server (on the organisers' Fediverse page)."""
    actor = "https://social.example/users/rosa"

    async def op(tx: Tx) -> None:
        account_id = await tx.remote_author(actor, "@rosa@social.example")
        comment, _ = await tx.insert_comment(
            session_id=ended_id,
            parent_id=None,
            account_id=account_id,
            author="@rosa@social.example",
            body="Agreed, see the paper",
            html='<p>Agreed, see <a href="https://x.example" rel="nofollow noopener noreferrer ugc">the paper</a></p>',
            state="visible",
            ip="",
        )
        await tx.add_reply(f"{actor}/statuses/1", comment.id, actor)
        follower = {
            "follower": actor,
            "handle": "@rosa@social.example",
            "inbox": f"{actor}/inbox",
            "shared_inbox": "https://social.example/inbox",
            "follow_id": f"{actor}/follows/1",
        }
        await tx.add_follower("session", ended_id, follower)
        await tx.block("spam.example", "domain")

    await svc.db.write(op)


async def a_long_session(svc: Services, seeded: Seed) -> tuple[str, list[int]]:
    """An ended session with more notes than a knowledge page shows (its numbered page 2 and
    its next cards); its id and its notes' ids."""
    session = await svc.programme.create_session(
        seeded.event_id, {"title": "Marathon", "starts_at": "2026-05-14T14:00", "ends_at": "2026-05-14T18:00"}
    )
    await svc.programme.set_state(session.id, "live")
    organiser = Author.organiser(await organiser_account(svc))
    ids = [
        await note(svc, session.id, organiser, f"Step {n}: *water* moves up")
        for n in range(KNOWLEDGE_PAGE + 3)
    ]
    await svc.programme.set_state(session.id, "ended")
    await svc.archive.archive_session(session.id)
    return session.id, ids


def fragment_page(fragment: str) -> bytes:
    """A fragment the page's script inserts (older cards, a knowledge page's next cards) as the
    document it ends up in, for the checker."""
    head = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fragment</title></head>'
    return f"{head}<body><main>{fragment}</main></body></html>".encode()


async def render_every_page(live: LiveServer, seeded: Seed, out: Path) -> dict[str, Path]:
    """A full event (notes, a photo, key points, a post, a poll, a question, comments, tags, an
    archived session, a live one) and every page type over it, as each kind of visitor sees it,
    the static site's pages included: a name for each page, and its HTML on disk."""
    svc = live.services
    live_id, ended_id = seeded.other_session_id, seeded.session_id
    media_id = await svc.db.write(lambda tx: tx.insert_media(ended_id, "image/png", PNG, None))
    invite = await svc.accounts.invite_for_token(seeded.token)
    assert invite is not None
    ada = Author.from_invite(invite)
    await note(
        svc, ended_id, ada, f"The board: ![whiteboard](/media/{media_id}) and https://youtu.be/dQw4w9WgXcQ"
    )
    # A recording (a video file: <video> with its chapters' <track>) on the knowledge page.
    await svc.programme.update_session(
        ended_id, {"recording_url": "https://media.example.org/keynote.mp4", "recording_offset": 30}
    )
    cactus, _ = await svc.audience.ask(
        ended_id, Voter("p_cactusasker0000001"), {"body": "Do cacti photosynthesise at night?"}
    )
    await a_full_event(live, seeded)  # archives the ended session; comments from a reader
    # A question answered after the talk, through a speaker link (docs/archive.md).
    link, speaker_token = await svc.answers.make_link(ended_id, "Dr Rosa Fern")
    await svc.answers.answer(link, cactus.id, "Yes: *CAM plants* open their stomata at night.")
    await svc.programme.set_state(live_id, "live")
    await fill_session(svc, seeded, live_id)
    await note(
        svc,
        live_id,
        ada,
        "Zoë’s table:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> quoted & `code`",
        key_point=True,
    )
    await fediverse_guests(svc, ended_id)
    long_id, long_notes = await a_long_session(svc, seeded)
    future = await svc.programme.create_event(
        {"title": "Next Summit", "starts_on": "2099-05-14", "ends_on": "2099-05-15"}
    )  # its Fediverse page still lets handles be changed
    _, reset_token = await svc.readers.reset_link("commenter")
    _, event_token = await svc.accounts.invite(seeded.event_id, None, "Grace Hopper")  # the whole event

    pages: dict[str, Path] = {}
    out.mkdir(parents=True, exist_ok=True)

    async def fetch(client: object, name: str, path: str, status: int = 200) -> None:
        response = await client.get(path)  # type: ignore[attr-defined]
        assert response.status_code == status, (name, path, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), (name, path)
        pages[name] = out / f"{name}.html"
        pages[name].write_bytes(response.content)

    ev = seeded.event_id
    public = {
        "home": "/",
        "event": f"/events/{ev}",
        "event-around": f"/events/{ev}/around",
        "event-archive": f"/events/{ev}/archive",
        "live-session": f"/sessions/{live_id}",
        "big-screen": f"/sessions/{live_id}/screen",
        "embed": f"/embed/sessions/{live_id}",
        "stream-page": f"/sessions/{live_id}/page/1",  # a numbered page of the stream (no JavaScript)
        "ended-session": f"/sessions/{ended_id}",
        "knowledge": f"/archive/sessions/{ended_id}",
        "tags": "/tags",
        "tag": "/tags/botany",
        "search": "/search?q=" + quote("light green"),
        "search-in-tag": "/search?tag=botany&q=" + quote("chlorophyll"),
        "search-empty": "/search",
        "login": "/login",
        "reader-login": "/account/login",
        "register": "/account/register",
        "reset": f"/account/reset/{quote(reset_token)}",
        "notetaker-event": f"/n/{event_token}",
        "notetaker": f"/n/{event_token}/sessions/{live_id}",
        "notetaker-ended": f"/n/{seeded.token}/sessions/{ended_id}",
        "notetaker-summary": f"/n/{seeded.token}/sessions/{ended_id}/summary",
        "notetaker-moderate": f"/n/{event_token}/sessions/{live_id}/moderate",
        "notetaker-social": f"/n/{event_token}/sessions/{live_id}/social",
        "notetaker-event-social": f"/n/{event_token}/events/{ev}/social",
        "speaker": f"/a/{speaker_token}",
    }
    async with live.client() as c:
        for name, path in public.items():
            await fetch(c, name, path)
        await fetch(c, "not-found", "/sessions/no-such-session", 404)
        await fetch(c, "knowledge-page-2", f"/archive/sessions/{long_id}/page/2")
        live_items = await svc.programme.items(live_id)
        for name, path in (
            ("fragment-older-cards", f"/sessions/{live_id}/older?before={live_items[-1].id}"),
            (
                "fragment-knowledge-cards",
                f"/archive/sessions/{long_id}/cards?section=notes&after={long_notes[KNOWLEDGE_PAGE - 1]}",
            ),
        ):
            r = await c.get(path)
            assert r.status_code == 200 and r.json()["html"].strip(), (name, r.status_code)
            pages[name] = out / f"{name}.html"
            pages[name].write_bytes(fragment_page(r.json()["html"]))
    async with live.client() as c:
        c.cookies.set("lb_login", seeded.login_token)
        organiser = {
            "organise": "/organise",
            "organise-new-event": "/organise/events/new",
            "organise-event": f"/organise/events/{ev}",
            "organise-session": f"/organise/sessions/{live_id}",
            "organise-session-ended": f"/organise/sessions/{ended_id}",  # speaker links and answers
            "organise-moderate": f"/organise/sessions/{live_id}/moderate",
            "organise-social": f"/organise/sessions/{live_id}/social",
            "organise-event-social": f"/organise/events/{ev}/social",
            "organise-feeds": f"/organise/events/{ev}/feeds",
            "organise-fediverse": f"/organise/events/{ev}/fediverse",  # a follower, a block
            "organise-fediverse-before": f"/organise/events/{future.id}/fediverse",  # handles' form
            "organise-comments": "/organise/comments",
            "organise-readers": "/organise/readers",
            "replay": f"/archive/sessions/{ended_id}/replay",
            "event-archive-as-organiser": f"/events/{ev}/archive",  # with its charts (inline SVG)
            "knowledge-as-organiser": f"/archive/sessions/{ended_id}",
            "live-session-as-organiser": f"/sessions/{live_id}",
        }
        for name, path in organiser.items():
            await fetch(c, name, path)
    async with live.client() as c:
        r = await c.post("/account/login", data={"username": "commenter", "password": "a long password"})
        assert r.status_code in (200, 303), r.status_code
        await fetch(c, "account", "/account")
        await fetch(c, "knowledge-as-reader", f"/archive/sessions/{ended_id}")

    site = out / "static-site"
    await export_site(svc, make_templates().env, ev, site, live.url)
    for file in sorted(site.rglob("*.html")):
        pages["static-" + str(file.relative_to(site)).replace("/", "-")] = file
    return pages


# Checker canaries: one page each checker must fault, in the same run as the real pages, so a
# checker that silently checks nothing (or is not there) fails the test.
BAD_HTML = '<!doctype html><html lang="en"><title>t</title><p><span id="a"></span><span id="a"></span>'
BAD_LD = {"@context": "https://schema.org", "@type": "Article", "author": {"@type": "Person", "nam": "x"}}
_LD = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.S)


def start_vnu(files: list[Path]) -> subprocess.Popen[str]:
    """The Nu Html Checker on every file in one JVM; its JSON report goes to standard error."""
    return subprocess.Popen(
        ["java", "-jar", str(VNU), "--errors-only", "--format", "json", *map(str, files)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def vnu_errors(run: subprocess.Popen[str], root: Path) -> dict[str, list[str]]:
    """The checker's errors (not its warnings), by page file relative to `root`."""
    _, report = run.communicate(timeout=180)
    errors: dict[str, list[str]] = {}
    for m in json.loads(report)["messages"]:
        if m["type"] in ("error", "non-document-error"):
            where = m.get("url", "").rsplit(str(root) + "/", 1)[-1]
            errors.setdefault(where, []).append(
                f"line {m.get('lastLine', '?')}: {m['message']} [{m.get('extract', '').strip()[:120]}]"
            )
    return errors


def start_schema_check(
    blocks: list[tuple[str, object]], work: Path
) -> tuple[subprocess.Popen[str], list[str]]:
    """Every JSON-LD block as a TypeScript constant typed with schema-dts (schema.org's vocabulary as
    types: an unknown type or property, or a value of the wrong kind, is a type error), checked by
    tsc in one run. Returns the run and, for each line of the file, the page it came from."""
    lines = ['import type { Thing, WithContext } from "schema-dts";']
    owner = ["-"]
    for n, (page, data) in enumerate(blocks):
        text = f"export const ld{n}: WithContext<Thing> = {json.dumps(data, ensure_ascii=False, indent=1)};"
        lines += text.splitlines()
        owner += [page] * len(text.splitlines())
    (work / "jsonld.ts").write_text("\n".join(lines) + "\n")
    (work / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "target": "es2022",
                    "module": "nodenext",
                    "moduleResolution": "nodenext",
                    "types": [],
                },
                "files": ["jsonld.ts"],
            }
        )
    )
    (work / "node_modules").symlink_to(TOOLS / "node_modules")
    run = subprocess.Popen(
        [str(TOOLS / "node_modules" / ".bin" / "tsc"), "-p", str(work / "tsconfig.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=work,
    )
    return run, ["-", *owner]  # tsc counts lines from 1


def schema_errors(run: subprocess.Popen[str], owner: list[str]) -> dict[str, list[str]]:
    output, _ = run.communicate(timeout=180)
    errors: dict[str, list[str]] = {}
    for line in output.splitlines():
        found = re.match(r"jsonld\.ts\((\d+),\d+\): (error .*)", line)
        if found:
            errors.setdefault(owner[int(found[1])], []).append(found[2][:300])
        elif line.strip() and not line.startswith(" "):
            errors.setdefault("tsc", []).append(line)
    return errors


def structured_data_failures(files: list[Path], root: Path) -> dict[str, list[str]]:
    """structured-data-testing-tool (offline: it is given the HTML, never a URL) with its Google
    preset, which also requires what Google's rich results need (an article's headline, author,
    dates, image, publisher and logo)."""
    run = subprocess.run(
        ["node", str(TOOLS / "structured-data.js"), "Google", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode in (0, 1), run.stderr  # 1: some test failed, as listed in the report
    report = json.loads(run.stdout)
    return {str(Path(f).relative_to(root)): r["failed"] for f, r in report.items() if r["failed"]}


async def test_every_page_type_is_valid_html_with_valid_schema_org_json_ld(
    live: LiveServer, seeded: Seed, tmp_path: Path
) -> None:
    root = tmp_path / "pages"
    for tool in ("java", "node"):
        assert shutil.which(tool), f"{tool} is missing: scripts/test installs it with apt"
    assert VNU.is_file(), "vnu.jar is missing: scripts/test installs it (npm ci in tests/tools)"
    pages = await render_every_page(live, seeded, root)
    assert len(pages) > 40
    canary_html = root / "canary.html"
    canary_html.write_text(BAD_HTML)
    html_run = start_vnu([*pages.values(), canary_html])

    blocks: list[tuple[str, object]] = []
    with_ld: list[Path] = []
    for name, file in pages.items():
        found = _LD.findall(file.read_text())
        blocks += [(name, json.loads(text)) for text in found]
        if found:
            with_ld.append(file)
    types = {name: data["@type"] for name, data in blocks}  # type: ignore[index]
    assert types["live-session"] == "LiveBlogPosting" and types["knowledge"] == "Article"
    assert types[f"static-sessions-{seeded.session_id}.html"] == "Article"
    work = tmp_path / "ts"
    work.mkdir()
    schema_run, owner = start_schema_check([*blocks, ("canary", BAD_LD)], work)
    canary_ld = root / "canary-ld.html"
    canary_ld.write_text(
        f'<script type="application/ld+json">{json.dumps(BAD_LD | {"headline": None})}</script>'
    )

    sdtt = structured_data_failures([*with_ld, canary_ld], root)
    assert set(sdtt) == {"canary-ld.html"}, sdtt
    schema = schema_errors(schema_run, owner)
    assert set(schema) == {"canary"} and "nam" in schema["canary"][0], schema
    html = vnu_errors(html_run, root)
    assert set(html) == {"canary.html"} and "Duplicate ID" in html["canary.html"][0], "\n".join(
        f"{page}: {e}" for page, errors in html.items() for e in errors
    )

"""`liveblog import` treats the file as untrusted input (issue 19): every field is checked and a
bad one refused naming its path, with no traceback and nothing written; every HTML field is
rendered again from its text; ids cannot make export-site write outside its folder. The hostile
corpus is generated here from one small valid export; every case goes through the real CLI."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from liveblog.services import Services
from liveblog.text import render_markdown
from tests.cli_process import run_liveblog
from tests.conftest import BACKENDS, FAST_HASHER

# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "0000050001e226059b0000000049454e44ae426082"
)
T = "2026-05-14T09:30:00.000Z"
EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def _item(id: int, kind: str, body: str, data: dict[str, Any], seq: int) -> dict[str, Any]:
    return {
        "id": id,
        "session_id": "keynote-abc123",
        "kind": kind,
        "client_id": f"c-{id}",
        "author": "Ada",
        "body": body,
        "html": f"<p>{body}</p>",
        "key_point": False,
        "data": data,
        "typed_at": T,
        "received_at": T,
        "sort_at": T,
        "updated_at": T,
        "deleted": False,
        "version": 1,
        "seq": seq,
    }


def valid_export() -> dict[str, Any]:
    """One session with a note (edited once), a social post, a poll, a question answered after
    the talk, a comment and a fediverse reply to it, a summary, a tag and a photo: every field an
    export has."""
    items = [
        _item(
            1, "note", "Plants **eat light** ![](/media/0123456789abcdef)", {"media": ["0123456789abcdef"]}, 1
        ),
        _item(
            2,
            "social",
            "Loving this talk",
            {
                "network": "mastodon",
                "post_id": "9",
                "handle": "rosa@example.social",
                "url": "https://example.social/@rosa/9",
                "state": "approved",
            },
            2,
        ),
        _item(
            3,
            "poll",
            "Favourite pigment?",
            {
                "question": "Favourite pigment?",
                "state": "closed",
                "options": [{"id": "a", "label": "Green"}],
                "tally": {"a": 2},
            },
            3,
        ),
        _item(4, "question", "Why green?", {"state": "visible", "votes": 1}, 4),
    ]
    changes = [
        {
            "seq": i["seq"],
            "op": "item.created",
            "item_id": i["id"],
            "created_at": T,
            "payload": {"type": "change", "seq": i["seq"], "op": "item.created", "item": copy.deepcopy(i)},
        }
        for i in items
    ]
    comment = {
        "id": 1,
        "parent_id": None,
        "created_at": T,
        "deleted": False,
        "state": "visible",
        "author": "reader1",
        "author_id": 7,
        "html": "<p>Great</p>",
        "edited": False,
        "updated_at": T,
    }
    changes.append(
        {
            "seq": 5,
            "op": "comment.created",
            "item_id": None,
            "created_at": T,
            "payload": {"type": "change", "seq": 5, "op": "comment.created", "comment": comment},
        }
    )
    return {
        "format": "liveblog-archive",
        "version": 1,
        "exported_at": T,
        "event": {
            "id": "summit-abc123",
            "title": "Summit",
            "starts_on": "2026-05-14",
            "ends_on": "2026-05-14",
            "venue": "",
            "description": "",
            "hashtags": ["#summit"],
            "created_at": T,
            "updated_at": T,
            "language": "en",
        },
        "comment_premoderation": False,
        # The fediverse: switched off by the organisers, a handle they chose for the keynote.
        "federation": {
            "enabled": False,
            "handles": [{"kind": "session", "id": "keynote-abc123", "handle": "plants"}],
        },
        "sessions": [
            {
                "session": {
                    "id": "keynote-abc123",
                    "event_id": "summit-abc123",
                    "title": "Keynote",
                    "starts_at": "2026-05-14T09:00",
                    "ends_at": "2026-05-14T10:00",
                    "room": "Hall",
                    "speakers": ["Ada"],
                    "hashtags": ["#botany"],
                    "description": "",
                    "state": "ended",
                    "question_moderation": False,
                    "stream_epoch": "9cf205adc49162bb",
                    "last_seq": 5,
                    "ended_at": T,
                    "created_at": T,
                    "updated_at": T,
                },
                "archive": {
                    "summary": "Plants *eat* light",
                    "summary_html": "<p>Plants <em>eat</em> light</p>",
                    "summary_by": "org",
                    "archived_at": T,
                    "updated_at": T,
                    "tags_synced_at": T,
                },
                "tags": [
                    ["botany", "hashtag"],
                    ["café", "organiser"],
                    ["c++", "organiser"],
                    ["node.js", "organiser"],
                ],
                "items": items,
                "item_history": [
                    {
                        "item_id": 1,
                        "version": 1,
                        "body": "Plants eat",
                        "html": "<p>Plants eat</p>",
                        "written_at": T,
                        "replaced_at": T,
                    }
                ],
                "changes": changes,
                "comments": [
                    {
                        "id": 1,
                        "parent_id": None,
                        "author": "reader1",
                        "body": "Great",
                        "html": "<p>Great</p>",
                        "state": "visible",
                        "deleted": False,
                        "created_at": T,
                        "updated_at": T,
                        "edited": False,
                    },
                    {  # a reply from the fediverse, kept as a comment
                        "id": 2,
                        "parent_id": 1,
                        "author": "@rosa@example.social",
                        "body": "Agreed! source",
                        "html": '<p>Agreed! <a href="https://x.example" rel="nofollow noopener noreferrer ugc">source</a></p>',
                        "state": "visible",
                        "deleted": False,
                        "created_at": T,
                        "updated_at": T,
                        "edited": False,
                    },
                ],
                "thread_locked": False,
                "answers": [
                    {
                        "question_id": 4,
                        "author": "Ada",
                        "body": "Because of **chlorophyll**",
                        "html": "<p>Because of <strong>chlorophyll</strong></p>",
                        "state": "visible",
                        "answered_at": T,
                        "updated_at": T,
                    }
                ],
                "media": [
                    {
                        "id": "0123456789abcdef",
                        "content_type": "image/png",
                        "sha256": hashlib.sha256(PNG).hexdigest(),
                        "created_at": T,
                        "data_base64": base64.b64encode(PNG).decode(),
                    }
                ],
            }
        ],
    }


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`liveblog --db data/live.sqlite3 ARGS` as a process (forked: tests/cli_process.py)."""
    return run_liveblog(["--db", str(tmp_path / "data" / "live.sqlite3"), *args], tmp_path, timeout=120)


def import_file(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "export.json"
    path.write_text(text, encoding="utf-8")
    return run_cli(tmp_path, "import", str(path))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to one field of the valid export, by a dotted path (numbers index lists)."""

    def change(doc: dict[str, Any]) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
        target: Any = doc
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return change


S = "sessions.0"
# (case, change to the valid export, what the refusal must say)
REFUSED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("session id ../", _set(f"{S}.session.id", "../../escaped"), "sessions[0].session.id: must match"),
    ("event id ../", _set("event.id", "../escaped"), "event.id: must match"),
    ("media id ../", _set(f"{S}.media.0.id", "../../escaped"), "sessions[0].media[0].id: must match"),
    ("tag ../", _set(f"{S}.tags.0.0", "../../escaped"), "sessions[0].tags[0][0]: must match"),
    ("tag /", _set(f"{S}.tags.0.0", "a/b"), "sessions[0].tags[0][0]: must match"),
    ("tag ..", _set(f"{S}.tags.0.0", ".."), "sessions[0].tags[0][0]: must match"),
    (
        "tag upper case",
        _set(f"{S}.tags.0.0", "Botany"),
        "sessions[0].tags[0][0]: must be a tag in its normal form",
    ),
    ("item in another session", _set(f"{S}.items.0.session_id", "../x"), "sessions[0].items[0].session_id"),
    ("seq 2**70", _set(f"{S}.changes.0.seq", 2**70), "sessions[0].changes[0].seq: must be from 1 to"),
    (
        "last_seq 2**70",
        _set(f"{S}.session.last_seq", 2**70),
        "sessions[0].session.last_seq: must be from 0 to",
    ),
    ("item id -1", _set(f"{S}.items.0.id", -1), "sessions[0].items[0].id: must be from 1 to"),
    ("huge int in data", _set(f"{S}.items.2.data.tally.a", 2**64), "sessions[0].items[2].data.tally.a"),
    ("version true", _set("version", True), "version: True is not supported"),
    ("version 1.0", _set("version", 1.0), "version: 1.0 is not supported"),
    ("version '1'", _set("version", "1"), "version: '1' is not supported"),
    ("version 2", _set("version", 2), "version: 2 is not supported"),
    ("title not a string", _set(f"{S}.session.title", 5), "sessions[0].session.title: must be a string"),
    (
        "deleted not a bool",
        _set(f"{S}.items.0.deleted", 1),
        "sessions[0].items[0].deleted: must be true or false",
    ),
    ("sessions not a list", _set("sessions", {}), "sessions: must be a list"),
    ("items missing", lambda d: d["sessions"][0].pop("items"), "sessions[0].items: is missing"),
    (
        "over-long title",
        _set(f"{S}.session.title", "x" * 201),
        "sessions[0].session.title: must be at most 200",
    ),
    (
        "over-long body",
        _set(f"{S}.items.0.body", "x" * 1_000_001),
        "sessions[0].items[0].body: must be at most",
    ),
    (
        "NUL in text",
        _set(f"{S}.comments.0.body", "a\x00b"),
        "sessions[0].comments[0].body: must be text without NUL",
    ),
    ("bad state", _set(f"{S}.session.state", "exploded"), "sessions[0].session.state: must be one of"),
    (
        "bad time",
        _set(f"{S}.items.0.typed_at", "yesterday"),
        "sessions[0].items[0].typed_at: must be an ISO 8601",
    ),
    ("duplicate item id", _set(f"{S}.items.1.id", 1), "sessions[0].items[1].id: 1 appears twice"),
    ("dangling parent", _set(f"{S}.comments.0.parent_id", 99), "sessions[0].comments[0].parent_id"),
    ("gap in changes", _set(f"{S}.changes.1.seq", 7), "sessions[0].changes[1].seq: must be 2"),
    ("payload disagrees", _set(f"{S}.changes.0.payload.seq", 3), "sessions[0].changes[0].payload"),
    (
        "photo not base64",
        _set(f"{S}.media.0.data_base64", "%%%"),
        "sessions[0].media[0].data_base64: must be base64",
    ),
    ("photo sha256", _set(f"{S}.media.0.sha256", "0" * 64), "sessions[0].media[0].sha256: does not match"),
    (
        "answer to a poll",
        _set(f"{S}.answers.0.question_id", 3),
        "sessions[0].answers[0].question_id: is not a question of this session",
    ),
    (
        "answer to another session's question",
        _set(f"{S}.answers.0.question_id", 99),
        "sessions[0].answers[0].question_id: is not a question of this session",
    ),
    (
        "question answered twice",
        lambda d: d["sessions"][0]["answers"].append(copy.deepcopy(d["sessions"][0]["answers"][0])),
        "sessions[0].answers[1].question_id: is answered twice",
    ),
    ("answer state", _set(f"{S}.answers.0.state", "shown"), "sessions[0].answers[0].state: must be one of"),
    (
        "over-long answer",
        _set(f"{S}.answers.0.body", "x" * 10_001),
        "sessions[0].answers[0].body: must be at most",
    ),
    ("answer without author", _set(f"{S}.answers.0.author", ""), "sessions[0].answers[0].author"),
    ("answer time", _set(f"{S}.answers.0.answered_at", "later"), "sessions[0].answers[0].answered_at"),
    ("shown answer without text", _set(f"{S}.answers.0.body", " "), "sessions[0].answers[0].body"),
    ("answer id 2**70", _set(f"{S}.answers.0.question_id", 2**70), "sessions[0].answers[0].question_id"),
    (
        "over-long fediverse author",
        _set(f"{S}.comments.1.author", "@" + "x" * 250 + "@example.social"),
        "sessions[0].comments[1].author: must be at most",
    ),
    (
        "NUL in a fediverse author",
        _set(f"{S}.comments.1.author", "@ro\x00sa@example.social"),
        "sessions[0].comments[1].author: must be text without NUL",
    ),
    ("federation on 'yes'", _set("federation.enabled", "yes"), "federation.enabled: must be true or false"),
    (
        "handle ../",
        _set("federation.handles.0.handle", "../x"),
        "federation.handles[0].handle: must match",
    ),
    ("handle upper case", _set("federation.handles.0.handle", "Plants"), "federation.handles[0].handle"),
    (
        "handle kind",
        _set("federation.handles.0.kind", "person"),
        "federation.handles[0].kind: must be one of",
    ),
    (
        "handle of another event's session",
        _set("federation.handles.0.id", "elsewhere-abc123"),
        "federation.handles[0].id: must be the event's id or one of its sessions'",
    ),
    (
        "handle of another event",
        lambda d: d["federation"]["handles"].append({"kind": "event", "id": "other-abc123", "handle": "x"}),
        "federation.handles[1].id: must be the event's id or one of its sessions'",
    ),
    (
        "handle twice",
        lambda d: d["federation"]["handles"].append(
            {"kind": "event", "id": "summit-abc123", "handle": "plants"}
        ),
        "federation.handles[1].handle: 'plants' appears twice",
    ),
    (
        "two handles for one account",
        lambda d: d["federation"]["handles"].append(
            {"kind": "session", "id": "keynote-abc123", "handle": "x"}
        ),
        "federation.handles[1].id: has a handle already",
    ),
    (
        "other html in payload",
        _set(f"{S}.changes.0.payload.summary_html", EVIL),
        "changes[0].payload.summary_html",
    ),
]


@pytest.mark.parametrize("case,change,message", REFUSED, ids=[c[0] for c in REFUSED])
def test_a_bad_field_is_refused_by_name_and_nothing_is_written(
    tmp_path: Path, case: str, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    doc = valid_export()
    change(doc)
    done = import_file(tmp_path, json.dumps(doc))
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert message in done.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", "export.json"]  # not even a database


@pytest.mark.parametrize(
    "case,text,message",
    [
        (
            "nested 200,000 deep",
            '{"format": "liveblog-archive", "x": ' + "[" * 200_000 + "]" * 200_000 + "}",
            "nested deeper than 32 levels",
        ),
        ("NaN", json.dumps(valid_export()).replace('"votes": 1', '"votes": NaN'), "NaN is not a JSON number"),
        (
            "Infinity",
            json.dumps(valid_export()).replace('"votes": 1', '"votes": -Infinity'),
            "-Infinity is not a JSON",
        ),
        (
            "1e999",
            json.dumps(valid_export()).replace('"votes": 1', '"votes": 1e999'),
            "votes: must be a finite number",
        ),
        (
            "a 5,000-digit number",
            json.dumps(valid_export()).replace('"votes": 1', '"votes": ' + "9" * 5000),
            "not JSON",
        ),
        (
            "lone surrogate",
            json.dumps(valid_export()).replace("Why green?", "Why \\ud800?"),
            "lone surrogates",
        ),
        ("not an object", "[1, 2]", "an export is a JSON object"),
    ],
)
def test_unparseable_files_are_refused_without_a_traceback(
    tmp_path: Path, case: str, text: str, message: str
) -> None:
    done = import_file(tmp_path, text)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert message in done.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", "export.json"]


def test_the_valid_export_imports(tmp_path: Path) -> None:
    done = import_file(tmp_path, json.dumps(valid_export()))
    assert done.returncode == 0, done.stderr
    assert "event summit-abc123 (1 session) imported" in done.stderr


class _Live(HTMLParser):
    """What in a piece of HTML would run in a browser with no CSP: inline script elements (other
    than JSON-LD data blocks; the site's own scripts are files beside it), on* attributes,
    javascript: links, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        inline = tag == "script" and not a.get("src") and a.get("type") != "application/ld+json"
        if inline or tag in ("iframe", "object", "embed"):
            self.found.append(f"<{tag}>")
        self.found += [
            f"{tag} {k}"
            for k, v in attrs
            if k.startswith("on") or (v or "").strip().lower().startswith("javascript:")
        ]


def live_parts(html_text: str) -> list[str]:
    parser = _Live()
    parser.feed(html_text)
    return parser.found


def html_fields(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k.endswith("html") and isinstance(v, str):
                yield f"{path}.{k}", v
            yield from html_fields(v, f"{path}.{k}")
    elif isinstance(value, list):
        for n, v in enumerate(value):
            yield from html_fields(v, f"{path}[{n}]")


def hostile_html_export() -> dict[str, Any]:
    """The valid export with script and onerror in every HTML field, and as text in every body."""
    doc = valid_export()
    b = doc["sessions"][0]
    for _, holder in [(p, h) for p, h in _html_holders(doc)]:
        holder["html" if "html" in holder else "summary_html"] = EVIL + '<a href="javascript:alert(3)">x</a>'
    b["items"][0]["body"] = b["changes"][0]["payload"]["item"]["body"] = "Note " + EVIL
    b["comments"][0]["body"] = "Comment " + EVIL
    b["answers"][0]["body"] = "Answer " + EVIL
    b["archive"]["summary"] = "Summary " + EVIL
    b["item_history"][0]["body"] = "Before " + EVIL
    # A social post's stored HTML is read for its photos and avatar only: hostile ones stay inert.
    b["items"][1]["html"] = (
        '<div class="social-post"><img class="social-image" src="javascript:alert(4)" '
        'alt="x" onerror="alert(5)"><img class="social-avatar" src="/media/../../x"></div>'
    )
    return doc


def _html_holders(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    b = doc["sessions"][0]
    yield "summary", b["archive"]
    for n, i in enumerate(b["items"]):
        yield f"items[{n}]", i
    yield "item_history[0]", b["item_history"][0]
    yield "comments[0]", b["comments"][0]
    yield "comments[1]", b["comments"][1]
    yield "answers[0]", b["answers"][0]
    for n, ch in enumerate(b["changes"]):
        yield f"changes[{n}]", ch["payload"].get("item") or ch["payload"]["comment"]


def test_every_html_field_is_rendered_again_from_its_text(tmp_path: Path) -> None:
    doc = hostile_html_export()
    assert all(live_parts(h) for _, h in html_fields(doc))  # every HTML field of the file is hostile
    done = import_file(tmp_path, json.dumps(doc))
    assert done.returncode == 0, done.stderr
    # What is stored (read back through the CLI's own export) is the live renderers' output.
    done = run_cli(tmp_path, "export", "summit-abc123", str(tmp_path / "again.json"))
    assert done.returncode == 0, done.stderr
    again = json.loads((tmp_path / "again.json").read_text())
    assert [(p, live_parts(h)) for p, h in html_fields(again) if live_parts(h)] == []
    b = again["sessions"][0]
    assert b["items"][0]["html"] == render_markdown(b["items"][0]["body"])  # the script is text
    assert "&lt;script&gt;" in b["items"][0]["html"] and "&lt;script&gt;" in b["comments"][0]["html"]
    assert b["archive"]["summary_html"] == render_markdown("Summary " + EVIL)
    assert b["item_history"][0]["html"] == render_markdown("Before " + EVIL)
    assert b["answers"][0]["html"] == render_markdown("Answer " + EVIL)
    assert (
        b["items"][2]["html"] == "<p>Favourite pigment?</p>" and b["items"][3]["html"] == "<p>Why green?</p>"
    )
    assert "Loving this talk" in b["items"][1]["html"] and "/media/../" not in b["items"][1]["html"]
    assert b["changes"][0]["payload"]["item"]["html"] == b["items"][0]["html"]
    assert b["changes"][4]["payload"]["comment"]["html"] == b["comments"][0]["html"]
    # The static site, opened from disk with no CSP, has nothing that runs.
    site = tmp_path / "site"
    done = run_cli(tmp_path, "export-site", "summit-abc123", str(site))
    assert done.returncode == 0, done.stderr
    pages = list(site.rglob("*.html"))
    assert (
        len(pages) >= 3
        and [(p.name, live_parts(p.read_text())) for p in pages if live_parts(p.read_text())] == []
    )
    assert {p.name for p in tmp_path.iterdir()} == {"data", "export.json", "again.json", "site"}


def test_a_round_trip_keeps_a_social_posts_photos(tmp_path: Path) -> None:
    """A post's photos and avatar are facts read from its stored HTML, rendered again by the feeds'
    own renderer: an export of a real post imports as the same HTML."""
    from liveblog.capture.feeds.render import render_post
    from liveblog.models import SocialPost

    doc = valid_export()
    item = doc["sessions"][0]["items"][1]
    post = SocialPost(
        network="mastodon",
        post_id="9",
        author_handle="rosa@example.social",
        author_name="Ada",
        text=item["body"],
        url=item["data"]["url"],
        posted_at=T,
        media=(
            {
                "type": "image",
                "local": "/media/0123456789abcdef",
                "alt": "A leaf",
                "width": 640,
                "height": 480,
            },
            {"type": "video", "url": "https://example.social/v.mp4", "alt": "Clip"},
            # marked sensitive by its author: behind a <details>, and still there after the trip
            {"type": "image", "local": "/media/fedcba9876543210", "alt": "A wound", "sensitive": True},
        ),
        avatar_local="/media/0123456789abcdef",
        relation={"reply_to": "8"},
    )
    item["html"] = doc["sessions"][0]["changes"][1]["payload"]["item"]["html"] = render_post(post)
    assert import_file(tmp_path, json.dumps(doc)).returncode == 0
    done = run_cli(tmp_path, "export", "summit-abc123", "-")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sessions"][0]["items"][1]["html"] == render_post(post)


def test_an_earlier_comment_version_in_the_stream_keeps_only_its_words(tmp_path: Path) -> None:
    """A change's comment carries HTML but not its Markdown: the current version is rendered from
    the comment's body; an earlier one (an edit came later) becomes its words, as escaped text."""
    doc = valid_export()
    old = doc["sessions"][0]["changes"][4]["payload"]["comment"]
    old.update(
        updated_at="2026-05-14T09:00:00.000Z", html='<p>Old <em>words</em> <img src=x onerror="alert(1)"></p>'
    )
    assert import_file(tmp_path, json.dumps(doc)).returncode == 0
    done = run_cli(tmp_path, "export", "summit-abc123", "-")
    assert done.returncode == 0, done.stderr
    assert (
        json.loads(done.stdout)["sessions"][0]["changes"][4]["payload"]["comment"]["html"]
        == "<p>Old words</p>"
    )


def test_the_fediverse_switch_and_chosen_handles_round_trip(tmp_path: Path) -> None:
    """An event its organisers kept off the fediverse stays off once imported, and the handles
    they chose are kept: its accounts are found by the same names."""
    done = import_file(tmp_path, json.dumps(valid_export()))
    assert done.returncode == 0, done.stderr
    done = run_cli(tmp_path, "export", "summit-abc123", "-")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["federation"] == valid_export()["federation"]


async def test_a_handle_taken_on_this_instance_is_refused_and_nothing_is_written(services: Services) -> None:
    """A chosen handle that already names another account here would take it over: the import
    is refused naming the field, and nothing of it is written."""
    from liveblog.capture.imports import import_json
    from liveblog.errors import BadRequest
    from tests.conftest import seed

    here = await seed(services)
    assert await services.db.write(lambda tx: tx.set_handle("session", here.session_id, "plants"))
    with pytest.raises(BadRequest, match=r"federation\.handles\[0\]\.handle: @plants names another account"):
        await import_json(services.db, valid_export())
    assert await services.db.read(lambda r: r.get_event("summit-abc123")) is None
    assert await services.db.read(lambda r: r.actor_by_handle("plants")) == ("session", here.session_id)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_restored_session_takes_new_notes_and_comments_after_its_own(services: Services) -> None:
    """The export's ids are kept; what is written after the import gets the next ones. On
    PostgreSQL an identity column does not move past ids given explicitly, so the next note of
    the restored live session (or a post the feeds routed to it) collided with item 1."""
    from liveblog.capture.imports import import_json
    from liveblog.capture.notes import Author

    doc = valid_export()
    doc["sessions"][0]["session"].update(state="live", ended_at=None)
    event_id, _ = await import_json(services.db, doc)
    session_id = doc["sessions"][0]["session"]["id"]
    author = Author(name="Ada", ref="account:1")
    ack = await services.notes.handle(
        session_id, author, {"type": "note.create", "client_id": "after-import", "body": "Back again"}
    )
    assert ack.item_id > max(i["id"] for i in doc["sessions"][0]["items"])
    services.accounts.hasher = FAST_HASHER
    reader, _ = await services.readers.register("reader2", "a long enough password")
    comment = await services.comments.post(session_id, reader, "Welcome back")
    assert comment.id > max(c["id"] for c in doc["sessions"][0]["comments"])
    assert event_id == doc["event"]["id"]

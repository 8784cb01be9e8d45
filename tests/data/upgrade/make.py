"""Make the upgrade fixtures (README.md here says when and how): a SQLite file and a PostgreSQL
dump at schema version N, written by the release whose code is on PYTHONPATH.

    python tests/data/upgrade/make.py 10 OUT_DIR [POSTGRES_URL]

It applies that release's own migrations 1..N (all of them through its `migrate` when N is the
release's last), then inserts the same representative rows on both backends: an event, sessions
(one ended and archived), notes (one edited, one deleted), a poll with votes, questions with
upvotes, media, accounts, comments (one hidden), social posts and their routes, feed settings,
cards and, from version 15, moderation-ledger rows. SQL only, no Liveblog service: the rows are
what that release's schema and triggers make of them (search index, item history).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

T = "2026-05-14T09:00:00Z"


def j(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def rows(version: int) -> list[tuple[str, dict[str, Any]]]:
    """(table, row) in insert order. Identity columns are left to the database (ids 1, 2, …)."""
    out: list[tuple[str, dict[str, Any]]] = []

    def add(table: str, **row: Any) -> None:
        out.append((table, row))

    add(
        "events",
        id="ev1",
        title="Upgrade Conf",
        starts_on="2026-05-14",
        ends_on="2026-05-15",
        venue="Hall A",
        description="Where old data meets new code",
        hashtags=j(["upconf"]),
        language="en",
        created_at=T,
        updated_at=T,
        **({"show_viewers": 0, "public_reasons": 1} if version >= 15 else {}),
    )
    session = dict(
        event_id="ev1",
        room="Room 1",
        speakers=j(["Ada Lovelace", "Grace Hopper"]),
        hashtags=j(["wombats"]),
        stream_epoch="epoch1",
        created_at=T,
        updated_at=T,
    )
    extra = {
        "cancelled": 0,
        "tags": j(["track-a"]),
        "source_uid": "uid-1",
        "recording_url": "https://v.example/1",
    }
    add(
        "sessions",
        id="s1",
        title="Migrating Wombats",
        description="How wombats move house",
        starts_at="2026-05-14T09:00:00Z",
        ends_at="2026-05-14T10:00:00Z",
        state="ended",
        ended_at="2026-05-14T10:00:00Z",
        last_seq=11,
        question_moderation=1,
        questions_audience="anyone",
        **session,
        **(extra | {"recording_offset": 30} if version >= 15 else {}),
    )
    add(
        "sessions",
        id="s2",
        title="Live Séance",
        description="Diacritics still findable",
        starts_at="2026-05-14T11:00:00Z",
        ends_at="2026-05-14T12:00:00Z",
        state="live",
        last_seq=2,
        **session,
    )
    add(
        "sessions",
        id="ev1-feed",
        kind="event_feed",
        title="Around the event",
        starts_at="2026-05-14T00:00:00Z",
        ends_at="2026-05-15T23:59:59Z",
        last_seq=0,
        **session,
    )

    def item(
        n: int, seq: int, kind: str, body: str, *, sid: str = "s1", deleted: int = 0, **more: Any
    ) -> None:
        at = f"2026-05-14T09:{n:02d}:00Z"
        add(
            "items",
            session_id=sid,
            kind=kind,
            client_id=f"c{n}",
            author="Ada",
            body=body,
            html=f"<p>{body}</p>",
            typed_at=at,
            received_at=at,
            sort_at=at,
            updated_at=at,
            deleted=deleted,
            seq=seq,
            **more,
        )

    # An item's seq is the seq of its latest change (the edit of note 1, the deletion of note 2).
    item(1, 7, "note", "Wombats dig burrows", key_point=1)
    item(2, 8, "note", "A secret that was deleted")
    item(3, 3, "poll", "Best burrow?", data=j({"state": "open", "options": ["deep", "wide"]}))
    item(4, 4, "question", "Do wombats migrate?", data=j({"state": "visible"}), author_ref="p-ask")
    item(5, 5, "question", "A question never shown", data=j({"state": "pending"}), author_ref="p-ask")
    item(6, 6, "social", "A toot about wombats", data=j({"state": "approved", "network": "mastodon"}))
    item(7, 1, "note", "Séance notes", sid="s2")
    # The edit of note 1 is kept as item history by that release's trigger; note 2 is deleted.
    out.append(("UPDATE", {"sql": "UPDATE items SET body = 'Wombats dig long burrows', version = 2,"
                           " updated_at = '2026-05-14T09:30:00Z' WHERE client_id = 'c1'"}))  # fmt: skip
    out.append(("UPDATE", {"sql": "UPDATE items SET deleted = 1, version = 2, updated_at = '2026-05-14T09:31:00Z'"
                           " WHERE client_id = 'c2'"}))  # fmt: skip

    def change(sid: str, seq: int, op: str, item_id: int | None, payload: dict[str, Any]) -> None:
        add(
            "changes",
            session_id=sid,
            seq=seq,
            op=op,
            item_id=item_id,
            payload=j({"type": "change", "seq": seq, "op": op} | payload),
            created_at=T,
        )

    # That release redacts removed text at the source (migration 11 redacted what came before):
    # at 10 the log still holds the deleted note's and the hidden comment's earlier changes.
    redacted = version >= 11
    change("s1", 1, "item.created", 1, {"item": {"id": 1, "body": "Wombats dig burrows"}})
    if redacted:
        change("s1", 2, "item.redacted", 2, {"item_id": 2})
    else:
        change("s1", 2, "item.created", 2, {"item": {"id": 2, "body": "A secret that was deleted"}})
    change("s1", 3, "item.created", 3, {"item": {"id": 3, "body": "Best burrow?"}})
    change("s1", 4, "item.created", 4, {"item": {"id": 4, "body": "Do wombats migrate?"}})
    change("s1", 5, "item.created", 5, {"item": {"id": 5, "state": "pending"}})
    change("s1", 6, "item.created", 6, {"item": {"id": 6, "body": "A toot about wombats"}})
    change("s1", 7, "item.updated", 1, {"item": {"id": 1, "body": "Wombats dig long burrows"}})
    change("s1", 8, "item.deleted", 2, {"item": {"id": 2, "deleted": True}})
    if redacted:
        change("s1", 9, "comment.redacted", None, {"comment_id": 2})
    else:
        change("s1", 9, "comment.created", None, {"comment": {"id": 2, "html": "<p>A rude comment</p>"}})
    change("s1", 10, "comment.created", None, {"comment": {"id": 1, "html": "<p>Lovely talk</p>"}})
    change("s1", 11, "comment.updated", None, {"comment": {"id": 2, "state": "hidden"}})
    change("s2", 1, "item.created", 7, {"item": {"id": 7, "body": "Séance notes"}})
    change("s2", 2, "session.updated", None, {"session": {"id": "s2"}})
    add(
        "client_ops",
        session_id="s1",
        client_id="c1",
        fingerprint="f1",
        response=j({"ok": True}),
        created_at=T,
    )

    add("accounts", username="Organiser", password_hash="$argon2id$v=19$m=65536,t=3,p=4$x$y", created_at=T)
    add("accounts", username="reader", password_hash="$argon2id$x", role="reader", created_at=T)
    add("accounts", username="troll", password_hash="$argon2id$x", role="reader", banned_at=T, created_at=T)
    add("login_sessions", token_hash="tok1", account_id=1, created_at=T, expires_at="2027-01-01T00:00:00Z")
    add("password_resets", token_hash="reset1", account_id=2, created_at=T, expires_at="2026-05-15T00:00:00Z")
    add("invites", id="inv1", token_hash="invtok", event_id="ev1", session_id="s1", name="Ada", created_at=T)
    add(
        "media",
        id="m1",
        session_id="s1",
        content_type="image/png",
        bytes=b"\x89PNG\r\n\x1a\n\x00\x01\xff",
        size=11,
        sha256="ab" * 32,
        uploaded_by="Ada",
        created_at=T,
    )
    for who, choice in (("p1", "deep"), ("p2", "deep"), ("p3", "wide")):
        add("votes", poll_id=3, participant=who, choice=choice, ip="127.0.0.1", created_at=T, updated_at=T)
    for who in ("p1", "p2"):
        add("upvotes", question_id=4, participant=who, created_at=T)
    add(
        "questions",
        item_id=4,
        session_id="s1",
        participant="p-ask",
        name="Bea",
        body="Do wombats migrate?",
        created_at=T,
    )
    add(
        "questions",
        item_id=5,
        session_id="s1",
        participant="p-ask",
        body="A question never shown",
        created_at=T,
    )

    add(
        "social_posts",
        network="mastodon",
        post_id="109",
        author_handle="@ada@example.social",
        author_name="Ada",
        body="A toot about wombats",
        url="https://example.social/@ada/109",
        posted_at=T,
        data=j({"media": []}),
        collected_at=T,
    )
    add(
        "social_posts",
        network="bluesky",
        post_id="at://x/1",
        author_handle="spam.bsky",
        posted_at=T,
        collected_at=T,
    )
    add(
        "social_routes", post_row=1, event_id="ev1", session_id="s1", state="approved", item_id=6, routed_at=T
    )
    add(
        "social_routes",
        post_row=2,
        event_id="ev1",
        session_id="",
        state="rejected",
        routed_at=T,
        decided_by="org",
    )
    add("feed_rules", event_id="ev1", kind="block_word", value="spam", created_at=T)
    add("feed_policies", event_id="ev1", session_id="", moderate=1, updated_at=T)
    add("feed_cursors", source="mastodon:upconf", value="109", updated_at=T)
    add("feed_reads", event_id="ev1", session_id="", network="x", reads=12, updated_at=T)

    add("archives", session_id="s1", summary="Wombats summarised", summary_html="<p>Wombats summarised</p>",
        archived_at=T, updated_at=T, tags_synced_at=T)  # fmt: skip
    add("session_tags", session_id="s1", tag="wombats", source="hashtag")
    add("session_tags", session_id="s1", tag="zoology", source="organiser")
    comment = dict(session_id="s1", author="reader", ip="127.0.0.1", created_at=T, updated_at=T)
    add("comments", account_id=2, body="Lovely talk", html="<p>Lovely talk</p>", **comment)
    add(
        "comments",
        account_id=3,
        body="A rude comment",
        html="<p>A rude comment</p>",
        state="hidden",
        **comment,
    )
    add("comment_threads", session_id="s1", locked=1)
    add("event_comment_settings", event_id="ev1", premoderate=1)
    add("item_cards", item_id=1, card_key="k1", item_version=2, html="<li>card</li>", words=4, rendered_at=T)
    add("card_sections", session_id="s1", card_key="k1", stream_epoch="epoch1", last_seq=11, notes_html="<ol></ol>",
        posts_html="<ol></ol>", notes=1, posts=1, words=4)  # fmt: skip
    if version >= 15:
        for action, kind, target, reason in (
            ("delete", "item", "2", "off topic"),
            ("hide", "comment", "2", "rude"),
        ):
            add("moderation_log", event_id="ev1", session_id="s1", at=T, actor="Organiser", action=action,
                target_kind=kind, target_id=target, reason=reason)  # fmt: skip
    return out


def statements(version: int) -> list[tuple[str, tuple[Any, ...]]]:
    out = []
    for table, row in rows(version):
        if table == "UPDATE":
            out.append((row["sql"], ()))
        else:
            out.append(
                (
                    f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                    tuple(row.values()),
                )
            )
    return out


def make_sqlite(version: int, path: Path) -> None:
    from liveblog.storage.db import migrate
    from liveblog.storage.schema import MIGRATIONS
    from liveblog.storage.searchtext import register

    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    if version == len(MIGRATIONS):
        migrate(conn, str(path))  # the release's own upgrade, as a server starting on it runs it
    else:
        register(conn)
        for number, script in enumerate(MIGRATIONS[:version], start=1):
            conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.execute("BEGIN")
    for sql, args in statements(version):
        conn.execute(sql, args)
    conn.execute("COMMIT")
    conn.execute("VACUUM")
    conn.close()


async def make_postgres(version: int, url: str, path: Path) -> None:
    import asyncpg

    from liveblog.storage.postgres.schema import MIGRATIONS
    from liveblog.storage.postgres.store import migrate
    from liveblog.storage.sql import dollar_placeholders

    conn = await asyncpg.connect(url)
    try:
        if version == len(MIGRATIONS):
            await migrate(conn, url)
        else:
            await conn.execute("CREATE TABLE liveblog_schema (version INTEGER NOT NULL)")
            await conn.execute("INSERT INTO liveblog_schema (version) VALUES (0)")
            for number, script in enumerate(MIGRATIONS[:version], start=1):
                async with conn.transaction():
                    await conn.execute(script)
                    await conn.execute("UPDATE liveblog_schema SET version = $1", number)
        async with conn.transaction():
            for sql, args in statements(version):
                await conn.execute(dollar_placeholders(sql), *args)
    finally:
        await conn.close()
    dump = subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges", "--no-comments", "--dbname", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path.write_text(dump, encoding="utf-8")


def main() -> None:
    version, out = int(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    make_sqlite(version, out / f"v{version}.sqlite3")
    if len(sys.argv) > 3:
        asyncio.run(make_postgres(version, sys.argv[3], out / f"v{version}.sql"))


if __name__ == "__main__":
    main()

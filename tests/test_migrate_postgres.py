"""`liveblog migrate-to-postgres` copies a used SQLite database into real PostgreSQL: the same
streams, items, votes, accounts and media come back through the PostgreSQL store, new writes
continue the sequences, and a second run into the same database is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from liveblog.capture.notes import Author
from liveblog.capture.votes import Moderator, Voter
from liveblog.cli import main
from liveblog.services import Services
from liveblog.storage import Unit
from tests.conftest import FAST_HASHER, ORGANISER, make_settings, seed

pytestmark = pytest.mark.slow


async def test_migrate_to_postgres_copies_everything_and_checks_counts(
    tmp_path: Path, pg_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "old.sqlite3"
    old = Services.build(make_settings(tmp_path, database={"path": str(db)}))
    await old.open()
    try:
        seeded = await seed(old)
        author = Author(name="Ada", ref=seeded.invite_id)
        for i in range(30):
            await old.notes.handle(
                seeded.session_id, author, {"type": "note.create", "client_id": f"n{i}", "body": f"note {i}"}
            )
        poll = await old.audience.create_poll(
            seeded.session_id,
            Moderator("Ada", seeded.invite_id),
            {"question": "Tea?", "options": ["yes", "no"], "open": True},
        )
        for p in range(5):
            await old.audience.vote(poll.id, Voter(f"p{p}"), {"choice": "a"})
        media_id = await old.db.write(
            lambda tx: tx.insert_media(seeded.session_id, "image/png", b"\x89PNG-bytes", "Ada")
        )
        asked, _ = await old.audience.ask(seeded.session_id, Voter("asker"), {"body": "Off topic?"})
        await old.audience.moderate_question(
            asked.id, Moderator("Ada", seeded.invite_id), {"action": "hide", "reason": "off topic"}
        )
        before_ledger = await old.db.read(lambda r: r.moderation_log(seeded.event_id))
        await old.audience.stop()  # the last tallies into the stream before the copy
        before_items = await old.db.read(lambda r: r.list_items(seeded.session_id, include_deleted=True))
        before_head = await old.db.read(lambda r: r.stream_head(seeded.session_id))
        assert before_head is not None
        before_changes = await old.db.read(lambda r: r.changes_between(seeded.session_id, 0, before_head[1]))
    finally:
        await old.close()

    code = await asyncio.to_thread(main, ["--db", str(db), "migrate-to-postgres", "--to", pg_url])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert "100%" in err and "counts match" in out
    assert "items" in out

    new = Services.build(make_settings(tmp_path, database={"url": pg_url}))
    new.accounts.hasher = FAST_HASHER
    await new.open()
    try:
        assert (
            await new.db.read(lambda r: r.list_items(seeded.session_id, include_deleted=True)) == before_items
        )
        assert await new.db.read(lambda r: r.stream_head(seeded.session_id)) == before_head
        assert (
            await new.db.read(lambda r: r.changes_between(seeded.session_id, 0, before_head[1]))
            == before_changes
        )
        assert await new.db.read(lambda r: r.count_votes(poll.id)) == 5
        assert (
            await new.db.read(lambda r: r.moderation_log(seeded.event_id)) == before_ledger
        )  # the ledger came along
        assert await new.db.read(lambda r: r.get_media(media_id)) == ("image/png", b"\x89PNG-bytes")
        assert await new.accounts.login(*ORGANISER)  # the password hash came along
        assert (await new.accounts.invite_for_token(seeded.token)) is not None  # and the invite tokens
        # PostgreSQL's search index was filled by its triggers as the rows were copied.
        assert (await new.archive.search(new.archive.query("note", kind="note"))).total == 30
        assert [h.ref for h in (await new.archive.search(new.archive.query("tea"))).hits] == [str(poll.id)]
        assert [
            h.ref for h in (await new.archive.search(new.archive.query("keynote", kind="session"))).hits
        ] == [seeded.session_id]
        # New writes continue: the next seq after the copied head, a fresh item id, a new account id.
        ack = await new.notes.handle(
            seeded.session_id,
            Author(name="Ada", ref=seeded.invite_id),
            {"type": "note.create", "client_id": "after", "body": "on PostgreSQL"},
        )
        assert ack.seq == before_head[1] + 1
        assert ack.item_id > max(i.id for i in before_items)
        await new.audience.moderate_question(
            asked.id, Moderator("Ada", seeded.invite_id), {"action": "approve"}
        )
        assert (await new.db.read(lambda r: r.moderation_log(seeded.event_id)))[0].id == before_ledger[
            0
        ].id + 1

        async def second_account(tx: Unit) -> int:
            return (await tx.insert_account("second", "x")).id

        assert await new.db.write(second_account) > 1
    finally:
        await new.close()

    # Copying again into a database that holds data is refused; nothing changes.
    assert await asyncio.to_thread(main, ["--db", str(db), "migrate-to-postgres", "--to", pg_url]) == 1
    assert "not empty" in capfd.readouterr().err

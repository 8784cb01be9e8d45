"""Proceedings: the EPUB passes epubcheck, the PDF reads back with pdftotext, both are the same
bytes when built twice, the command shows progress, and the archive page offers the download
once the background build kept it ("being prepared" before)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import termios
import uuid
import xml.etree.ElementTree as ET
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from liveblog.archive.charts import bar_chart
from liveblog.archive.proceedings import CHART_FONT, epub_bytes, gather, pdf_bytes, pdf_html
from liveblog.capture.notes import Author
from liveblog.capture.votes.common import Voter
from liveblog.errors import NotFound
from liveblog.services import Services
from liveblog.storage import Tx
from tests.archive_fixtures import fill_session
from tests.conftest import LiveServer, Seed, db_arg, eventually

BUILT = datetime(2026, 5, 20, 12, 0, tzinfo=timezone.utc)
EPUBCHECK_JAR = Path("/usr/share/java/epubcheck.jar")


def photo_bytes() -> bytes:
    """A 1600x1200 photo, downscaled in the book."""
    img = Image.new("RGB", (1600, 1200), (40, 120, 60))
    for x in range(0, 1600, 50):
        for y in range(0, 1200, 50):
            img.putpixel((x, y), (250, 250, 0))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


async def archived_event(svc: Services, seeded: Seed) -> None:
    """Two archived sessions: notes, a photo, a poll, an answered question, tags, a summary."""
    await fill_session(svc, seeded)
    await svc.audience.coalescer.flush_now()  # the poll's last tallies: a change to the archive too
    media_id = await svc.db.write(
        lambda tx: tx.insert_media(seeded.session_id, "image/jpeg", photo_bytes(), None)
    )
    invite = await svc.accounts.invite_for_token(seeded.token)
    assert invite is not None
    await svc.notes.handle(
        seeded.session_id,
        Author.from_invite(invite),
        {
            "type": "note.create",
            "client_id": str(uuid.uuid4()),
            "body": f"The greenhouse <b>&amp;</b> its leaves:\n\n![A leaf in the greenhouse](/media/{media_id})",
        },
    )
    await svc.programme.update_session(
        seeded.session_id, {"hashtags": ["#Botany"], "speakers": ["Dr Rosa Fern"]}
    )
    cactus, _ = await svc.audience.ask(
        seeded.session_id, Voter("p_cactusasker0000001"), {"body": "Do cacti photosynthesise at night?"}
    )
    await svc.programme.set_state(seeded.session_id, "ended")
    link, _ = await svc.answers.make_link(seeded.session_id, "Dr Rosa Fern")
    await svc.answers.answer(link, cactus.id, "Yes: *CAM plants* open their stomata at night.")
    await svc.archive.archive_session(seeded.session_id)
    await svc.archive.set_summary(seeded.session_id, "Plants **eat light**", "org")
    await svc.archive.set_organiser_tags(seeded.session_id, "photosynthesis")
    await svc.programme.set_state(seeded.other_session_id, "live")
    await svc.programme.set_state(seeded.other_session_id, "ended")
    await svc.archive.archive_session(seeded.other_session_id)


def epubcheck(path: Path) -> subprocess.CompletedProcess[str]:
    # Debian's /usr/bin/epubcheck is the jar itself (run through binfmt, absent in containers).
    if not EPUBCHECK_JAR.is_file() or shutil.which("java") is None:
        pytest.fail("epubcheck is missing: scripts/test installs Debian's epubcheck")
    # The quick JIT tier and the serial collector: a third of the default's time for one short run.
    command = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", str(EPUBCHECK_JAR), str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


async def test_the_epub_passes_epubcheck_and_is_reproducible(
    services: Services, seeded: Seed, tmp_path: Path
) -> None:
    await archived_event(services, seeded)
    book = await gather(services.archive, seeded.event_id)
    first = await asyncio.to_thread(epub_bytes, book, BUILT)
    again = await asyncio.to_thread(epub_bytes, await gather(services.archive, seeded.event_id), BUILT)
    assert first == again
    path = tmp_path / "book.epub"
    path.write_bytes(first)
    result = await asyncio.to_thread(epubcheck, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors or warnings detected" in result.stdout, result.stdout + result.stderr
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert names[0] == "mimetype" and z.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
        texts = {n: z.read(n).decode() for n in names if n.endswith((".xhtml", ".opf"))}
        photos = [n for n in names if n.startswith("OEBPS/images/")]
        assert len(photos) == 1
        with Image.open(io.BytesIO(z.read(photos[0]))) as img:
            assert max(img.size) == 1000  # downscaled from 1600
    everything = "\n".join(texts.values())
    assert 'alt="A leaf in the greenhouse"' in everything
    assert "Keynote" in everything and "Workshop" in everything
    assert "Favourite pigment?" in everything and "<svg" in everything
    assert "Why are leaves green, not black?" in everything and "xanthophyll cycle" in everything
    assert "Answered after the talk by Dr Rosa Fern" in everything and "<em>CAM plants</em>" in everything
    assert "#photosynthesis" in texts["OEBPS/tags.xhtml"] and "Ada" in texts["OEBPS/credits.xhtml"]
    assert "All rights reserved unless the organisers state otherwise" in texts["OEBPS/credits.xhtml"]
    assert "[photo: diagram]" in everything  # the fixture's photo that is not in the database
    # Another build date changes the date only.
    later = epub_bytes(book, datetime(2027, 1, 1, tzinfo=timezone.utc))
    with zipfile.ZipFile(io.BytesIO(later)) as z:
        changed = [
            n for n in z.namelist() if n.endswith((".xhtml", ".opf")) and z.read(n).decode() != texts[n]
        ]
    assert changed == ["OEBPS/content.opf"]


async def test_the_pdf_has_its_text_pages_and_bookmarks(
    services: Services, seeded: Seed, tmp_path: Path
) -> None:
    await archived_event(services, seeded)
    book = await gather(services.archive, seeded.event_id)
    pdf = await asyncio.to_thread(pdf_bytes, book, BUILT)
    assert pdf == await asyncio.to_thread(pdf_bytes, await gather(services.archive, seeded.event_id), BUILT)
    # The charts' font is swapped for the PDF's own (charts.py must still name the one replaced).
    assert CHART_FONT in str(bar_chart([("a", 1)], title="t")) and CHART_FONT not in pdf_html(book, BUILT)
    path = tmp_path / "book.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    flat = " ".join(text.split())
    for expected in (
        "Test Summit",
        "Keynote",
        "Workshop",
        "Chlorophyll absorbs red and blue light",
        "Favourite pigment?",
        "Why are leaves green, not black?",
        "green light is reflected by the xanthophyll cycle",
        "Do cacti photosynthesise at night?",
        "CAM plants open their stomata at night",
        "Tag index",
        "Credits",
    ):
        assert expected in flat, expected
    info = subprocess.run(
        ["pdfinfo", str(path)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    assert int(fields["Pages"]) > 1
    assert fields["Tagged"].strip() == "yes"
    # Bookmarks: the parts (h1) with the sessions (h2) under their day.
    xml = subprocess.run(
        ["pdftohtml", "-xml", "-i", "-stdout", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    outline = re.sub(r'<item page="\d+">', "", xml[xml.index("<outline>") :]).split()
    assert " ".join(outline).startswith(
        "<outline> Test Summit</item> At a glance</item> Thursday 14 May 2026</item> <outline> Keynote</item>"
        " Workshop</item> </outline> Tag index</item> Credits</item> </outline>"
    ), outline


async def run_command(svc: Services, *args: str, stderr: int | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liveblog.cli",
        "--db",
        db_arg(svc.settings),
        "proceedings",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr if stderr is not None else asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, (err or b"").decode()


async def test_the_command_writes_each_format_with_progress_on_a_terminal(
    services: Services, seeded: Seed, tmp_path: Path
) -> None:
    await archived_event(services, seeded)
    # Not a terminal: no progress bar, one closing line.
    code, err = await run_command(services, seeded.event_id, "--format", "epub", str(tmp_path / "a.epub"))
    assert code == 0, err
    assert "\r" not in err and "2 sessions and 1 photo written to" in err
    assert zipfile.ZipFile(tmp_path / "a.epub").read("mimetype") == b"application/epub+zip"
    # On a terminal: tqdm's bar, redrawn in place.
    leader, follower = os.openpty()
    fcntl.ioctl(
        follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0)
    )  # a pty starts 0 columns wide
    try:
        code, _ = await run_command(
            services, seeded.event_id, "--format", "pdf", str(tmp_path / "a.pdf"), stderr=follower
        )
        os.close(follower)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once everything written was read
            while chunk := os.read(leader, 65536):
                shown += chunk
    finally:
        os.close(leader)
    assert code == 0, shown.decode(errors="replace")
    assert b"\r" in shown and b"2/2" in shown and b"laying out the PDF" in shown
    assert (tmp_path / "a.pdf").read_bytes().startswith(b"%PDF-")
    # Bad input: a clear error naming the problem, nothing written.
    code, err = await run_command(services, "no-such-event", "--format", "epub", str(tmp_path / "b.epub"))
    assert code == 1 and "no event 'no-such-event'" in err and not (tmp_path / "b.epub").exists()
    code, err = await run_command(services, seeded.event_id, "--format", "mobi", str(tmp_path / "b.mobi"))
    assert code == 2 and "invalid choice: 'mobi'" in err
    empty = await services.programme.create_event(
        {"title": "Not yet", "starts_on": "2026-06-01", "ends_on": "2026-06-01"}
    )
    with pytest.raises(NotFound, match="has no archived session yet"):
        await gather(services.archive, empty.id)


async def test_a_failed_build_is_reported_and_tried_again_when_the_archive_changes(
    live: LiveServer, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from liveblog.archive import proceedings

    svc = live.services
    keeper = svc.proceedings
    assert keeper is not None
    await archived_event(svc, seeded)

    async def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(proceedings, "gather", broken)
    async with live.client() as http:
        assert "being prepared" in (await http.get(f"/events/{seeded.event_id}/archive")).text
        await eventually(lambda: seeded.event_id in keeper.failed, 30, "the failed build")
        assert "could not be built" in (await http.get(f"/events/{seeded.event_id}/archive")).text
        health = (await http.get("/healthz")).json()
        assert health["components"]["proceedings"]["last_error"] == "OSError: disk full"
        assert not keeper.pending  # the same version is not tried again on every view
        monkeypatch.undo()
        await svc.archive.set_organiser_tags(seeded.session_id, "photosynthesis, light")
        assert "being prepared" in (await http.get(f"/events/{seeded.event_id}/archive")).text
        await eventually(lambda: keeper.built >= 1, 90, "the build after the change")
        assert "proceedings.pdf" in (await http.get(f"/events/{seeded.event_id}/archive")).text


async def test_the_archive_page_offers_the_books_once_built_in_the_background(
    live: LiveServer, seeded: Seed
) -> None:
    svc = live.services
    keeper = svc.proceedings
    assert keeper is not None
    await archived_event(svc, seeded)
    async with live.client() as http:
        page = await http.get(f"/events/{seeded.event_id}/archive")
        assert "being prepared" in page.text and "proceedings.epub" not in page.text
        early = await http.get(f"/events/{seeded.event_id}/proceedings.epub")
        assert early.status_code == 503 and "being prepared" in early.text
        await eventually(lambda: keeper.built >= 1, 90, "the background build")
        page = await http.get(f"/events/{seeded.event_id}/archive")
        assert (
            f'href="/events/{seeded.event_id}/proceedings.epub"' in page.text
            and "being prepared" not in page.text
        )
        epub = await http.get(f"/events/{seeded.event_id}/proceedings.epub")
        pdf = await http.get(f"/events/{seeded.event_id}/proceedings.pdf")
        assert epub.status_code == 200 and epub.headers["content-type"] == "application/epub+zip"
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert (await http.get(f"/events/{seeded.event_id}/proceedings.mobi")).status_code == 404
        kept = sorted(p.name for p in keeper.directory.iterdir())
        assert len(kept) == 2
        # The archive changes: the books are built again, and the old ones go.
        await svc.archive.set_summary(seeded.session_id, "Plants **drink light**", "org")
        page = await http.get(f"/events/{seeded.event_id}/archive")
        assert "being prepared" in page.text
        await eventually(lambda: keeper.built >= 2, 90, "the rebuild")
        epub = await http.get(f"/events/{seeded.event_id}/proceedings.epub")
        with zipfile.ZipFile(io.BytesIO(epub.content)) as z:
            assert "drink light" in z.read("OEBPS/s001.xhtml").decode()
        now = sorted(p.name for p in keeper.directory.iterdir())
        assert len(now) == 2 and not set(now) & set(kept)


async def test_the_book_carries_the_version_after_its_pages_synced_their_tags(
    services: Services, seeded: Seed
) -> None:
    from liveblog.archive.proceedings import proceedings_version

    await archived_event(services, seeded)
    # Hashtags changed after archiving: the pages show them at once (read as the programme has
    # them), and the background job stores them, which moves the version on.
    await services.programme.update_session(seeded.session_id, {"hashtags": ["#Botany", "#Leaves"]})
    assert "leaves" in (await gather(services.archive, seeded.event_id)).tags
    await services.archive.settle()
    book = await gather(services.archive, seeded.event_id)
    assert "leaves" in book.tags
    assert book.version == proceedings_version(await services.archive.event_archive(seeded.event_id))


async def test_rows_stored_before_the_input_rule_still_make_a_well_formed_epub(
    services: Services, seeded: Seed
) -> None:
    """As for the Atom feeds (test_conformance_feeds): a summary stored with characters XML cannot
    carry, by an older version or below every input rule, leaves every XML file of the EPUB parseable."""
    await archived_event(services, seeded)

    async def op(tx: Tx) -> None:  # the storage layer below every input rule
        await tx.set_summary(
            seeded.session_id, "Old\x01\x0b\ufffe summary", "<p>Old\x01\x0b\ufffe summary</p>", "org"
        )

    await services.db.write(op)
    book = await gather(services.archive, seeded.event_id)
    with zipfile.ZipFile(io.BytesIO(await asyncio.to_thread(epub_bytes, book, BUILT))) as z:
        documents = {n: z.read(n) for n in z.namelist() if n.endswith((".xhtml", ".opf", ".xml"))}
    for name, data in documents.items():
        try:
            ET.fromstring(data)  # raises on a character XML 1.0 forbids
        except ET.ParseError as exc:
            raise AssertionError(f"{name} is not well-formed XML: {exc}") from None
    assert any(b"Old summary" in data for data in documents.values())

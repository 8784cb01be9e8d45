"""The proceedings benchmark (issue 21): a 40-session event with photos, written through the real
services (notes, photos cleaned as uploads are, polls, answered questions, tags), then built as
EPUB and as PDF. Targets: each format built in < 60 s, the EPUB < 20 MB.

    .venv/bin/python -m bench.proceedings                  # 40 sessions, 2 photos each (~1-2 min)
    .venv/bin/python -m bench.proceedings --photos 4       # heavier
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import tempfile
import time
import uuid
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SESSIONS = 40
NOTES_PER_SESSION = 30
ROOMS = ("Main hall", "Room A", "Room B", "Room C", "Room D")
WORDS = (
    "workforce planning retention budget apprenticeship pipeline digital skills hybrid office wellbeing "
    "recruitment graduate mentoring leadership data analytics procurement cloud security policy pension "
    "funding regional devolution housing transport climate resilience audit governance ethics inclusion"
).split()


def camera_photo(rng: random.Random, width: int = 3000, height: int = 2000) -> bytes:
    """A phone-camera-sized JPEG with more detail than most photos: many sharp-edged shapes and
    grain at a third of the size, which survives the book's downscaling (fine noise would be
    smoothed away, flat colour would make every photo tiny): ~160 KB each in the book."""
    from PIL import Image, ImageDraw, ImageFilter

    def colour() -> tuple[int, int, int]:
        return rng.randrange(256), rng.randrange(256), rng.randrange(256)

    img = Image.new("RGB", (width, height), colour())
    draw = ImageDraw.Draw(img)
    for _ in range(300):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(20, 300)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour())
    img = img.filter(ImageFilter.GaussianBlur(2))
    grain = Image.merge("RGB", [Image.effect_noise((width // 3, height // 3), 60) for _ in range(3)])
    img = Image.blend(img, grain.resize((width, height), Image.Resampling.BICUBIC), 0.35)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=88)
    return out.getvalue()


async def make_event(db_path: Path, photos_per_session: int) -> tuple[Any, str, dict[str, float]]:
    from liveblog.services import Services
    from liveblog.settings import settings_from_dict

    settings = settings_from_dict({"database": {"path": str(db_path)}}, env={"LIVEBLOG_SECRET_KEY": "bench"})
    svc = Services.build(settings)
    await svc.open()
    try:
        return await _fill(svc, photos_per_session)
    except BaseException:
        await svc.close()
        raise


async def _fill(svc: Any, photos_per_session: int) -> tuple[Any, str, dict[str, float]]:
    from liveblog.capture.media import clean_image
    from liveblog.capture.notes import Author
    from liveblog.capture.votes import Moderator, Voter

    rng = random.Random(21)
    started = time.perf_counter()
    event = await svc.programme.create_event(
        {
            "title": "Public Service Summit",
            "starts_on": "2026-05-14",
            "ends_on": "2026-05-15",
            "venue": "Congress Centre, Leeds",
        }
    )
    photos = [clean_image(camera_photo(rng))[1] for _ in range(4)]
    photo_bytes = sum(len(p) for p in photos) / len(photos)
    for n in range(SESSIONS):
        day = "2026-05-14" if n < SESSIONS // 2 else "2026-05-15"
        hour = 9 + (n % (SESSIONS // 2)) // len(ROOMS)
        session = await svc.programme.create_session(
            event.id,
            {
                "title": f"Session {n + 1}: {' '.join(rng.sample(WORDS, 3))}",
                "starts_at": f"{day}T{hour:02d}:00",
                "ends_at": f"{day}T{hour:02d}:45",
                "room": ROOMS[n % len(ROOMS)],
                "speakers": [f"Speaker {n + 1}"],
                "hashtags": [
                    f"#{t}" for t in rng.sample(["policy", "digital", "skills", "climate", "data"], 2)
                ],
            },
        )
        await svc.programme.set_state(session.id, "live")
        invite, _ = await svc.accounts.invite(event.id, session.id, f"Note-taker {n % 7 + 1}")
        author = Author.from_invite(invite)
        mod = Moderator("Organiser", invite.id)

        async def note(
            body: str, key_point: bool = False, sid: str = session.id, who: Author = author
        ) -> int:
            ack = await svc.notes.handle(
                sid,
                who,
                {"type": "note.create", "client_id": str(uuid.uuid4()), "body": body, "key_point": key_point},
            )
            return ack.item_id

        for k in range(NOTES_PER_SESSION):
            await note(
                " ".join(rng.choices(WORDS, k=rng.randint(15, 60)))
                + (" **bold** point" if k % 5 == 0 else ""),
                key_point=k % 10 == 0,
            )
        for k in range(photos_per_session):
            data = photos[(n + k) % len(photos)]
            media_id = await svc.db.write(
                lambda tx, d=data, s=session.id: tx.insert_media(s, "image/jpeg", d, None)
            )
            await note(f"On the screen:\n\n![Slide {k + 1} of session {n + 1}](/media/{media_id})")
        poll = await svc.audience.create_poll(
            session.id,
            mod,
            {
                "question": f"How useful was session {n + 1}?",
                "kind": "single",
                "options": ["Very", "Somewhat", "Not really"],
                "open": True,
            },
        )
        for v in range(30):
            await svc.audience.vote(poll.id, Voter(f"s{n}-v{v}"), {"choice": rng.choice("abc")})
        await svc.audience.set_poll_state(poll.id, mod, {"state": "closed"})
        question, _ = await svc.audience.ask(
            session.id, Voter(f"asker-{n}"), {"body": "What happens next year?"}
        )
        answer = await note("Answer: " + " ".join(rng.choices(WORDS, k=20)))
        await svc.audience.moderate_question(question.id, mod, {"action": "answer", "answer_item_id": answer})
        await svc.programme.set_state(session.id, "ended")
    await svc.audience.coalescer.flush_now()
    await svc.archive.archive_due()
    return svc, event.id, {"setup_s": time.perf_counter() - started, "stored_photo_kb": photo_bytes / 1024}


async def run(photos_per_session: int) -> None:
    from liveblog.archive.proceedings import epub_bytes, gather, pdf_bytes

    with tempfile.TemporaryDirectory() as tmp:
        svc, event_id, info = await make_event(Path(tmp) / "bench.sqlite3", photos_per_session)
        try:
            built = datetime.now(timezone.utc)
            t0 = time.perf_counter()
            book = await gather(svc.archive, event_id)
            t_gather = time.perf_counter() - t0
            t0 = time.perf_counter()
            epub = epub_bytes(book, built)
            t_epub = time.perf_counter() - t0
            t0 = time.perf_counter()
            pdf = pdf_bytes(book, built)
            t_pdf = time.perf_counter() - t0
        finally:
            await svc.close()
        with zipfile.ZipFile(io.BytesIO(epub)) as z:
            images = [i.file_size for i in z.infolist() if i.filename.startswith("OEBPS/images/")]
        rows = [
            ("sessions / photos in the book", f"{len(book.pages)} / {len(book.photos)}"),
            ("event written through the services", f"{info['setup_s']:.1f} s"),
            ("stored photo (as uploads are cleaned), mean", f"{info['stored_photo_kb']:.0f} KB"),
            ("photo in the book (downscaled), mean", f"{sum(images) / max(len(images), 1) / 1024:.0f} KB"),
            ("read the archive + downscale photos (gather)", f"{t_gather:.1f} s"),
            ("EPUB: written", f"{t_epub:.1f} s (gather + EPUB {t_gather + t_epub:.1f} s, target < 60 s)"),
            ("EPUB: size", f"{len(epub) / 1e6:.1f} MB (target < 20 MB)"),
            (
                "PDF: laid out (WeasyPrint)",
                f"{t_pdf:.1f} s (gather + PDF {t_gather + t_pdf:.1f} s, target < 60 s)",
            ),
            ("PDF: size", f"{len(pdf) / 1e6:.1f} MB"),
        ]
        print("| measure | value |\n| --- | --- |")
        for name, value in rows:
            print(f"| {name} | {value} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--photos", type=int, default=2, help="photos per session (default 2)")
    args = p.parse_args()
    asyncio.run(run(args.photos))


if __name__ == "__main__":
    main()

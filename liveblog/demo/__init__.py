"""A demo event so a first look shows everything: a programme for a public-sector workforce
conference, a live session with a note-taker who keeps posting, an open poll, audience
questions and a photo, and a finished session with its closed poll, answered questions and a
recap. All content is invented; the photos are charts drawn here with Pillow."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFont

from liveblog.capture.media import clean_image
from liveblog.capture.notes import Author
from liveblog.capture.votes import Moderator, Voter
from liveblog.errors import LiveblogError
from liveblog.models import Event, Invite
from liveblog.services import Services

log = logging.getLogger(__name__)

DEMO_EVENT_TITLE = "Public Service Workforce Forum 2026"
DEMO_ORGANISER = ("organiser", "liveblog-demo")
DEMO_NOTE_TAKER = "Demo note-taker"
HASHTAG = "#pswf26"

_LIVE_TITLE = "Growing our own: apprenticeships, secondments and career changers"
_SESSIONS = [
    # (key, minutes from now to start, length, title, room, speakers, state)
    (
        "ended",
        -180,
        50,
        "Opening: who will deliver public services in 2030?",
        "Main hall",
        ["Dr Funmi Adeyemi"],
        "ended",
    ),
    (
        "live",
        -25,
        60,
        _LIVE_TITLE,
        "Main hall",
        ["Sunita Rao", "Declan Murphy"],
        "live",
    ),
    ("", -25, 60, "Wellbeing data that managers actually use", "Room 2", ["Ines Ferreira"], "scheduled"),
    (
        "",
        45,
        45,
        "Panel: recruiting when the private sector pays more",
        "Main hall",
        ["Amara Osei", "Rhys Powell", "Lena Vogt"],
        "scheduled",
    ),
    ("", 45, 45, "Clinic: job adverts people can actually read", "Room 2", ["Tom Achterberg"], "scheduled"),
    ("", 105, 30, "Closing: three things to try on Monday", "Main hall", ["Dr Funmi Adeyemi"], "scheduled"),
]

_DESCRIPTIONS = {
    "ended": "This year's workforce survey, where the gaps are, and what employers can do about them.",
    "live": "Two councils on filling hard-to-fill roles by training people rather than poaching them.",
}

# The finished opening session. "{photo}" is replaced by the drawn chart.
ENDED_NOTES = [
    (
        "Funmi opens with this year's workforce survey: **one in five** staff expect to leave within two years, "
        "most of them under 35",
        False,
    ),
    (
        "The gaps are widest in the jobs residents notice first: care workers, planners, environmental health",
        True,
    ),
    ("Pay matters, but the reason leavers give most is that they could not see a next step", True),
    ("{photo}\n\nThe slide that got the room talking: a third of planners are over 55", False),
    (
        "Three things she asks every employer to do:\n- publish a career path for each frontline role\n"
        "- fund secondments with neighbouring councils and health partners\n"
        "- ask leavers why they go, and act on the answers",
        False,
    ),
    (
        "From the floor: small district councils cannot run an academy of their own. "
        "Funmi: share one across the county and split the cost",
        False,
    ),
    (
        "**Recap:** the workforce gap is about progression as much as pay. Start with career paths for frontline "
        "roles, share training with your neighbours, and treat exit interviews as data. The survey results and "
        "slides go on the event page.",
        True,
    ),
]
ENDED_PHOTO_ALT = "Bar chart: share of staff aged 55 and over by service area; planning is highest at 33%"
ENDED_POLL = {
    "question": "What would most help you stay in your job?",
    "options": ["A clear next step", "Better pay", "Flexible hours", "Less paperwork"],
}
ENDED_VOTES = ["a"] * 9 + ["b"] * 7 + ["c"] * 5 + ["d"] * 3
ENDED_QUESTIONS = [
    # (asker's name or "", question, upvotes, answered)
    ("Priya", "Will the survey results be published by region?", 6, True),
    ("", "How do we pay for secondments when budgets are being cut?", 4, True),
    ("", "Did the survey include agency and bank staff?", 2, False),
]

# The live session, in the order the note-taker types them. The first few are there from the
# start; the demo note-taker posts the rest, one at a time, and stops at the end of the list.
LIVE_NOTES = [
    (
        "Sunita opens: apprenticeships are not only for school leavers. Four in ten of hers started after 30",
        False,
    ),
    (
        "Their apprenticeship levy went unspent for three years. What changed: one person whose whole job is "
        "matching apprenticeships to hard-to-fill roles",
        True,
    ),
    ("{photo}\n\nRetention by cohort: most apprentices are still with the council two years on", False),
    (
        "Declan on secondments: six months in a neighbouring council's housing team taught him more than "
        "any course he has been sent on",
        False,
    ),
    (
        "Why secondments stall:\n- managers fear losing their best person\n- nobody owns the paperwork\n"
        "- the *home* team has no cover",
        False,
    ),
    ("What they tried: a two-page agreement template and a cover pool funded by both employers", False),
    (
        "Career changers: a former shop manager now runs their contact centre. The skills transfer; "
        "the job adverts hide that behind jargon",
        True,
    ),
    (
        "Tip from Sunita: rewrite one job advert this month without a single acronym, and see who applies",
        False,
    ),
    ("First cohort: 18 apprentices started, 16 are still there two years later", False),
    (
        "Declan: mentors matter more than the syllabus. Every apprentice gets a named mentor outside their "
        "line management",
        False,
    ),
    ("Pay during the apprenticeship: the real living wage from day one, not the apprentice minimum", False),
    (
        'Sunita: "If we only hire people who have done the job somewhere else, we just move the shortage '
        'around"',
        True,
    ),
    ("Their returner scheme brought eight retired planners back part time, mostly to mentor", False),
    ("Mentoring needs time in the mentor's objectives, or it slips behind everything else", False),
    ("The hospital trust and the council now advertise some roles jointly, with a year in each", False),
    (
        "What did not work: a glossy recruitment video nobody watched. Current apprentices talking to their "
        "friends did far better",
        False,
    ),
    (
        "Sunita: measure retention at two years, not completion. Completion tells you about the course, "
        "retention about the job",
        True,
    ),
    ("Digital skills: a six-week course with the local college, open to any member of staff", False),
    ("Toolkit with the agreement template and sample adverts: https://example.org/growing-our-own", False),
    (
        "Declan's last slide:\n1. pick one hard-to-fill role\n2. design a way in that needs no experience\n"
        "3. give every starter a mentor\n4. check in at two years",
        True,
    ),
    ("Q&A now: the most upvoted question is about paying for secondment cover", False),
    ("Answer: three councils share a cover pool, paid for from the vacancy savings each one makes", False),
    (
        "Closing thought: growing your own is slow, but it is the one route that does not depend on someone "
        "else's budget",
        True,
    ),
    ("That is the end of the session. Slides will be added to the event page", False),
]
LIVE_STARTS_WITH = 4  # notes already posted when the demo starts
LIVE_PHOTO_ALT = "Bar chart: apprentices still employed after two years, by cohort, 2021 to 2024"
LIVE_POLL = {
    "question": "Which way in would your organisation try first?",
    "options": ["Apprenticeships", "Secondments", "Returners", "Career changers"],
}
LIVE_VOTES = ["a"] * 6 + ["b"] * 4 + ["c"] * 2 + ["d"] * 5
LIVE_QUESTIONS = [
    ("", "How do you pay for cover while someone is on secondment?", 5, False),
    ("Mark", "Do apprentices get a permanent contract at the end?", 2, False),
    ("", "Has anyone done this with the voluntary sector?", 0, False),
]


# -- the photos: charts drawn with Pillow --------------------------------------------------------


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def draw_chart(title: str, bars: list[tuple[str, float]], unit: str = "%") -> bytes:
    """A slide with a bar chart, as a PNG: what a note-taker photographs from the projector."""
    width, height = 960, 540
    image = Image.new("RGB", (width, height), (250, 250, 247))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 86), fill=(29, 78, 216))
    draw.text((40, 26), title, fill=(255, 255, 255), font=_font(34))
    top, bottom, left = 130, 440, 70
    biggest = max(v for _, v in bars) or 1
    step = (width - 2 * left) / len(bars)
    for i, (label, value) in enumerate(bars):
        x0 = left + i * step + step * 0.18
        x1 = left + (i + 1) * step - step * 0.18
        y0 = bottom - (bottom - top) * value / biggest
        draw.rectangle((x0, y0, x1, bottom), fill=(200, 30, 30) if value == biggest else (75, 85, 99))
        draw.text((x0, y0 - 36), f"{value:g}{unit}", fill=(17, 24, 39), font=_font(26))
        draw.text((x0, bottom + 14), label, fill=(17, 24, 39), font=_font(22))
    draw.line((left - 10, bottom, width - left + 10, bottom), fill=(17, 24, 39), width=3)
    draw.text(
        (40, height - 38),
        f"Public Service Workforce Forum 2026 · {HASHTAG}",
        fill=(75, 85, 99),
        font=_font(18),
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def _store_photo(services: Services, session_id: str, invite: Invite, png: bytes) -> str:
    content_type, cleaned = await asyncio.to_thread(clean_image, png)  # the same path as an upload
    return await services.db.write(lambda tx: tx.insert_media(session_id, content_type, cleaned, invite.id))


# -- loading -------------------------------------------------------------------------------------


async def _post(
    services: Services,
    session_id: str,
    author: Author,
    body: str,
    key_point: bool,
    typed_at: datetime | None = None,
) -> None:
    message: dict[str, Any] = {
        "type": "note.create",
        "client_id": str(uuid.uuid4()),
        "body": body,
        "key_point": key_point,
    }
    if typed_at is not None:  # as an offline note-taker's notes carry the time they were typed
        message["typed_at"] = typed_at.isoformat()
    await services.notes.handle(session_id, author, message)


async def _audience(
    services: Services,
    session_id: str,
    poll: dict[str, Any],
    votes: list[str],
    questions: list[tuple[str, str, int, bool]],
    close: bool,
) -> None:
    """A poll with its votes and some questions with their upvotes, from invented participants (each
    session its own, as a restart that starts afresh within a second stays under the flood limit)."""
    host = Moderator("Demo organiser", "demo")
    item = await services.audience.create_poll(session_id, host, {**poll, "open": True})
    for n, choice in enumerate(votes):
        await services.audience.vote(item.id, Voter(f"demo-voter-{session_id}-{n}"), {"choice": choice})
    if close:
        await services.audience.set_poll_state(item.id, host, {"state": "closed"})
    for n, (name, body, upvotes, answered) in enumerate(questions):
        question, _ = await services.audience.ask(
            session_id, Voter(f"demo-asker-{session_id}-{n}"), {"body": body, "name": name or None}
        )
        for v in range(upvotes):
            await services.audience.upvote(question.id, Voter(f"demo-voter-{session_id}-{v}"))
        if answered:
            await services.audience.moderate_question(question.id, host, {"action": "answer"})


async def load_demo(services: Services) -> dict[str, str]:
    """Create the demo event if it is not there yet. Returns ids and the demo invite link path."""
    venue = ZoneInfo(services.settings.archive.timezone)
    existing = [e for e in await services.programme.events() if e.title == DEMO_EVENT_TITLE]
    if existing and not await _carries_on(services, existing[0], venue):
        await _retire(services, existing[0])
        existing = []
    if existing:
        event = existing[0]
        sessions = await services.programme.sessions(event.id)
        live_now = next(s for s in sessions if s.state == "live" and s.title == _LIVE_TITLE)
        finished = next((s for s in sessions if s.state == "ended"), sessions[0])
        # Tokens are stored hashed, so each start makes a fresh link; the old ones go.
        for old in await services.accounts.invites(event.id):
            if old.name == DEMO_NOTE_TAKER and old.active:
                await services.accounts.revoke_invite(old.id)
        invite, token = await services.accounts.invite(event.id, None, DEMO_NOTE_TAKER)
        return {
            "event": event.id,
            "live_session": live_now.id,
            "ended_session": finished.id,
            "invite_url": f"/n/{token}",
            "invite_id": invite.id,
        }

    # A programme reads naturally on the quarter hour; the live session still spans "now".
    # Programme times are the venue's wall-clock times (archive.timezone), whatever the server's zone.
    now = datetime.now(venue).replace(tzinfo=None, second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 15)
    # The event's days hold every session (near midnight the programme spans two days).
    first = min(now + timedelta(minutes=start) for _, start, *_ in _SESSIONS)
    last = max(now + timedelta(minutes=start + length) for _, start, length, *_ in _SESSIONS)
    event = await services.programme.create_event(
        {
            "title": DEMO_EVENT_TITLE,
            "starts_on": first.date().isoformat(),
            "ends_on": last.date().isoformat(),
            "venue": "Northgate Civic Centre",
            "description": "A day for people who lead, train and recruit the public-sector workforce: "
            "what is working, what is not, and what to try next.",
            "hashtags": [HASHTAG],
        }
    )
    ids: dict[str, str] = {"event": event.id}
    spans: dict[str, tuple[datetime, int]] = {}
    for key, start, length, title, room, speakers, state in _SESSIONS:
        begins = now + timedelta(minutes=start)
        spans[key] = (begins, length)
        session = await services.programme.create_session(
            event.id,
            {
                "title": title,
                "starts_at": begins.isoformat(timespec="minutes"),
                "ends_at": (begins + timedelta(minutes=length)).isoformat(timespec="minutes"),
                "room": room,
                "speakers": speakers,
                "hashtags": [HASHTAG],
                "description": _DESCRIPTIONS.get(key, ""),
            },
        )
        if key:
            ids[f"{key}_session"] = session.id
        if state != "scheduled":
            await services.programme.set_state(session.id, "live")
    invite, token = await services.accounts.invite(event.id, None, DEMO_NOTE_TAKER)
    ids["invite_url"] = f"/n/{token}"
    ids["invite_id"] = invite.id
    author = Author.from_invite(invite)

    ended = ids["ended_session"]
    photo = await _store_photo(
        services,
        ended,
        invite,
        draw_chart(
            "Staff aged 55 and over, by service",
            [("Planning", 33), ("Social care", 27), ("Highways", 24), ("Libraries", 21), ("Finance", 14)],
        ),
    )
    # The finished session's notes carry the times they were typed, spread over its slot, so its
    # knowledge page reads like a session that happened (not one noted after it ended).
    begins, length = spans["ended"]
    step = timedelta(minutes=length) / (len(ENDED_NOTES) + 1)
    for n, (body, key_point) in enumerate(ENDED_NOTES, start=1):
        await _post(
            services,
            ended,
            author,
            body.replace("{photo}", f"![{ENDED_PHOTO_ALT}](/media/{photo})"),
            key_point,
            typed_at=(begins + step * n).replace(tzinfo=venue),
        )
    await _audience(services, ended, ENDED_POLL, ENDED_VOTES, ENDED_QUESTIONS, close=True)
    await services.programme.set_state(ended, "ended")

    live = ids["live_session"]
    photo = await _store_photo(
        services,
        live,
        invite,
        draw_chart(
            "Apprentices still with us after two years",
            [("2021", 78), ("2022", 84), ("2023", 89), ("2024", 91)],
        ),
    )
    for body, key_point in LIVE_NOTES[:LIVE_STARTS_WITH]:
        await _post(services, live, author, _live_body(body, photo), key_point)
    await _audience(services, live, LIVE_POLL, LIVE_VOTES, LIVE_QUESTIONS, close=False)
    try:
        await services.accounts.create_organiser(*DEMO_ORGANISER)
    except LiveblogError:
        pass  # already there
    await services.audience.coalescer.flush_now()  # the demo's tallies show at once, not a tick later
    return ids


async def _carries_on(services: Services, event: Event, venue: ZoneInfo) -> bool:
    """Whether a restarted demo can carry on with the demo event it finds: today is one of its
    days (started in the small hours, its programme began the day before), its live session is
    still live, and the demo note-taker has notes left to post there."""
    if not event.starts_on <= datetime.now(venue).date().isoformat() <= event.ends_on:
        return False
    live = [
        s for s in await services.programme.sessions(event.id) if s.state == "live" and s.title == _LIVE_TITLE
    ]
    if not live:
        return False
    posted = {i.body for i in await services.programme.items(live[0].id, kind="note")}
    return any(text not in posted for text, _ in LIVE_NOTES[LIVE_STARTS_WITH:])


async def _retire(services: Services, event: Event) -> None:
    """A spent demo event (another day's, ended, or with every note posted) steps aside so that the
    demo starts afresh: it keeps its pages as an earlier run, without the hashtag (the new run's
    posts are not routed to it), and its live sessions end."""
    await services.programme.update_event(
        event.id, {"title": f"{DEMO_EVENT_TITLE} (earlier run, {event.starts_on})", "hashtags": []}
    )
    for session in await services.programme.sessions(event.id):
        if session.state == "live":
            await services.programme.set_state(session.id, "ended")
    log.info("demo: the earlier run's event %s is spent; starting afresh", event.id)


def _live_body(body: str, photo: str) -> str:
    return body.replace("{photo}", f"![{LIVE_PHOTO_ALT}](/media/{photo})")


async def demo_note_taker(services: Services, session_id: str, invite: Invite, every: float = 8.0) -> None:
    """Keep posting to the live demo session so a first look shows the live part working.

    It carries on from the notes the session already has (after a restart too) and stops when
    the session's notes are all posted or the session has ended: it never repeats itself.
    """
    author = Author(name=f"{DEMO_NOTE_TAKER} (robot)", ref=invite.id)
    posted = {i.body for i in await services.db.read(lambda r: r.list_items(session_id, kind="note"))}
    for text, key in LIVE_NOTES[LIVE_STARTS_WITH:]:
        if text in posted:
            continue
        await asyncio.sleep(every)
        try:
            await _post(services, session_id, author, text, key)
        except LiveblogError as exc:  # the session was ended from the organiser page: stop
            log.info("demo note-taker stops: %s", exc.message)
            return
    log.info("demo note-taker has posted all its notes")

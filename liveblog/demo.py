"""A demo event so a first look shows something: a programme, a live session with a note-taker
who keeps posting, and a finished session with its notes. All content is invented."""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from datetime import datetime, timedelta

from liveblog.capture.notes import Author
from liveblog.errors import LiveblogError
from liveblog.models import Invite
from liveblog.services import Services

log = logging.getLogger(__name__)

DEMO_EVENT_TITLE = "Neighbourhood Services Summit 2026"
DEMO_ORGANISER = ("organiser", "liveblog-demo")

_SESSIONS = [
    # (minutes from now to start, length, title, room, speakers, state)
    (-150, 45, "Opening: what residents told us this year", "Main hall", ["Priya Natarajan"], "ended"),
    (-20, 60, "Sharing what works between councils", "Main hall", ["Tom Okafor", "Helen Brandt"], "live"),
    (-20, 60, "Digital inclusion at the library desk", "Room 2", ["Aisha Karim"], "scheduled"),
    (50, 45, "After the pilot: scaling what worked", "Main hall", ["Panel"], "scheduled"),
    (50, 45, "Open data clinic", "Room 2", ["Marek Novak"], "scheduled"),
    (110, 30, "Closing: commitments for next year", "Main hall", ["Priya Natarajan"], "scheduled"),
]

_ENDED_NOTES = [
    ("Priya opens with the survey: **4,100 residents** answered, twice last year's number", False),
    ("Top three asks:\n- bins collected when promised\n- one phone number that actually answers\n  - and a call-back when it doesn't\n- clear news about roadworks", True),
    ("Residents rate *being kept informed* above speed of fixing things", True),
    ("Question from the floor: how do we reach people who never fill in surveys? Answer: go where they already are: libraries, school gates, the GP surgery", False),
]

LIVE_NOTES = [
    ("Tom: most good practice dies in the council it was invented in", False),
    ("Why it doesn't travel:\n- no time to write it up\n- nobody knows who to ask\n- *we're different here*", False),
    ("Helen's network: 40 councils, one shared notebook of what worked **and what didn't**", True),
    ("Writing up failures is what makes people trust the successes", True),
    ("Tip: a 10-minute call with the team that did it beats a 30-page case study", False),
    ("Someone asks about procurement: Helen says share the specification, not just the story", False),
    ("Three things to try next week:\n1. find one peer council\n2. swap one problem each\n3. write down what you learnt, even if it's small", True),
    ("Photo of the room: full house, people standing at the back", False),
    ("Tom: communities of practice need a host: someone who keeps the conversation going between meetings", False),
    ("Slides will be shared after the session; the notes stay here", False),
]


async def load_demo(services: Services) -> dict[str, str]:
    """Create the demo event if it is not there yet. Returns ids and the demo invite link path."""
    existing = [e for e in await services.programme.events() if e.title == DEMO_EVENT_TITLE]
    if existing:
        event = existing[0]
        sessions = await services.programme.sessions(event.id)
        live = next((s for s in sessions if s.state == "live"), sessions[0])
        # Tokens are stored hashed, so each start makes a fresh link; the old ones go.
        for old in await services.accounts.invites(event.id):
            if old.name == "Demo note-taker" and old.active:
                await services.accounts.revoke_invite(old.id)
        invite, token = await services.accounts.invite(event.id, None, "Demo note-taker")
        return {"event": event.id, "live_session": live.id, "invite_url": f"/n/{token}", "invite_id": invite.id}

    # A programme reads naturally on the quarter hour; the live session still spans "now".
    now = datetime.now().replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 15)
    event = await services.programme.create_event(
        {
            "title": DEMO_EVENT_TITLE,
            "starts_on": now.date().isoformat(),
            "ends_on": now.date().isoformat(),
            "venue": "Riverside Conference Centre",
            "description": "A day for people who run local services to swap what worked, and what didn't.",
            "hashtags": ["#nbhdsummit"],
        }
    )
    ids: dict[str, str] = {"event": event.id}
    for start, length, title, room, speakers, state in _SESSIONS:
        begins = now + timedelta(minutes=start)
        session = await services.programme.create_session(
            event.id,
            {
                "title": title,
                "starts_at": begins.isoformat(timespec="minutes"),
                "ends_at": (begins + timedelta(minutes=length)).isoformat(timespec="minutes"),
                "room": room,
                "speakers": speakers,
                "hashtags": ["#nbhdsummit"],
            },
        )
        if state == "live":
            ids["live_session"] = session.id
        if state == "ended":
            ids["ended_session"] = session.id
        if state != "scheduled":
            await services.programme.set_state(session.id, "live")
    invite, token = await services.accounts.invite(event.id, None, "Demo note-taker")
    ids["invite_url"] = f"/n/{token}"
    ids["invite_id"] = invite.id
    author = Author.from_invite(invite)
    for body, key in _ENDED_NOTES:
        await services.notes.handle(
            ids["ended_session"], author, {"type": "note.create", "client_id": str(uuid.uuid4()), "body": body, "key_point": key}
        )
    await services.programme.set_state(ids["ended_session"], "ended")
    for body, key in LIVE_NOTES[:2]:
        await services.notes.handle(
            ids["live_session"], author, {"type": "note.create", "client_id": str(uuid.uuid4()), "body": body, "key_point": key}
        )
    try:
        await services.accounts.create_organiser(*DEMO_ORGANISER)
    except LiveblogError:
        pass  # already there
    return ids


async def demo_note_taker(services: Services, session_id: str, invite: Invite, every: float = 8.0) -> None:
    """Keep posting to the live demo session so a first look shows the live part working."""
    author = Author(name="Demo note-taker (robot)", ref=invite.id)
    for body, key in itertools.cycle(LIVE_NOTES[2:]):
        await asyncio.sleep(every)
        try:
            await services.notes.handle(
                session_id, author, {"type": "note.create", "client_id": str(uuid.uuid4()), "body": body, "key_point": key}
            )
        except LiveblogError as exc:  # the session was ended from the organiser page: stop
            log.info("demo note-taker stops: %s", exc.message)
            return

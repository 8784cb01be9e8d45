"""Importing a programme file into an event: a plan of what would be created, changed, moved and
cancelled (the preview, written nowhere), and the same plan applied in one transaction.

Sessions an import makes remember their entry's guid/UID (`sessions.source_uid`), so importing
a changed file again updates and moves them, cancels those gone from the file (if they have not
started) and restores those that came back, never adding a second copy. docs/programme.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from liveblog.capture.imports import import_json
from liveblog.capture.programme import DAY_ENDS_NEXT_MORNING, check_within_event, session_fields
from liveblog.capture.schedule import Entry, Schedule, ScheduleError, parse_schedule
from liveblog.errors import BadRequest, NotFound
from liveblog.models import Event, Session
from liveblog.storage import Store, Tx

# What an import sets on a session it made, compared to find what changed; and what it sets
# only when the file gives it (an entry's None leaves the session's own, e.g. typed in by hand).
FIELDS = ("title", "starts_at", "ends_at", "room", "speakers", "description", "tags")
WHEN_GIVEN = ("hashtags", "recording_url")


def managed(entry: Entry) -> tuple[str, ...]:
    """The session fields this entry sets."""
    return FIELDS + tuple(f for f in WHEN_GIVEN if getattr(entry, f) is not None)


@dataclass
class Update:
    session: Session
    entry: Entry
    changed: list[str]  # of managed(entry), plus "restored" when a cancelled session came back

    @property
    def moved(self) -> bool:
        return any(f in self.changed for f in ("starts_at", "ends_at", "room"))


@dataclass
class ImportPlan:
    event: Event
    schedule: Schedule
    creates: list[Entry] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    cancels: list[Session] = field(default_factory=list)
    kept: list[Session] = field(default_factory=list)  # gone from the file but started: left as they are
    unchanged: int = 0
    days: tuple[str, str] | None = None  # the event's new days, when the file's reach past them

    @property
    def empty(self) -> bool:
        return not (self.creates or self.updates or self.cancels or self.days)

    def to_wire(self) -> dict[str, Any]:
        """The plan for the JSON API (docs/programme.md)."""
        return {
            "summary": self.summary(),
            "format": self.schedule.format,
            "create": [
                {"uid": e.uid, "title": e.title, "starts_at": e.starts_at, "room": e.room}
                for e in self.creates
            ],
            "change": [
                {"uid": u.entry.uid, "session_id": u.session.id, "title": u.entry.title, "changed": u.changed}
                for u in self.updates
            ],
            "cancel": [{"uid": s.source_uid, "session_id": s.id, "title": s.title} for s in self.cancels],
            "kept": [
                {"uid": s.source_uid, "session_id": s.id, "title": s.title, "state": s.state}
                for s in self.kept
            ],
            "unchanged": self.unchanged,
            "days": list(self.days) if self.days else None,
            "notes": list(self.schedule.notes),
        }

    def summary(self) -> str:
        parts = [
            f"{len(self.creates)} to create",
            f"{len(self.updates)} to change ({sum(u.moved for u in self.updates)} moved)",
            f"{len(self.cancels)} to cancel",
            f"{self.unchanged} unchanged",
        ]
        if self.kept:
            parts.append(f"{len(self.kept)} gone from the file but already started (left as they are)")
        text = ", ".join(parts)
        if self.days:
            text += f"; the event's days become {self.days[0]} to {self.days[1]}"
        return text


def _when(starts_at: str, ends_at: str, room: str) -> str:
    return f"{starts_at[:10]} {starts_at[11:16]}-{ends_at[11:16]}{' ' + room if room else ''}"


def plan_lines(plan: ImportPlan) -> list[str]:
    """The plan as text, one line per session: + created, ~ changed, x cancelled, ! kept."""
    lines = [f"+ {_when(e.starts_at, e.ends_at, e.room)}: {e.title}" for e in plan.creates]
    lines += [
        f"~ {_when(u.entry.starts_at, u.entry.ends_at, u.entry.room)}: {u.entry.title} ({', '.join(u.changed)})"
        for u in plan.updates
    ]
    lines += [
        f"x {_when(s.starts_at, s.ends_at, s.room)}: {s.title} (gone from the file: cancelled)"
        for s in plan.cancels
    ]
    lines += [
        f"! {_when(s.starts_at, s.ends_at, s.room)}: {s.title} (gone from the file, already {s.state}: kept)"
        for s in plan.kept
    ]
    lines += [f"note: {n}" for n in plan.schedule.notes]
    return lines


def entry_fields(entry: Entry) -> dict[str, Any]:
    """An entry as session fields, checked by the same rules as a session typed in."""
    data = {
        "title": entry.title,
        "starts_at": entry.starts_at,
        "ends_at": entry.ends_at,
        "room": entry.room,
        "speakers": list(entry.speakers),
        "description": entry.description,
        "tags": list(entry.tags),
    }
    if entry.hashtags is not None:
        data["hashtags"] = list(entry.hashtags)
    if entry.recording_url is not None:
        data["recording_url"] = entry.recording_url
    try:
        fields = session_fields(data, partial=False)
    except BadRequest as exc:
        raise ScheduleError(f"{entry.title!r} ({entry.uid}): {exc.message}", field=exc.field) from None
    fields.setdefault("room", "")
    fields.setdefault("description", "")
    fields.setdefault("speakers", ())
    fields.setdefault("tags", ())
    return fields


def _days_needed(event: Event, schedule: Schedule) -> tuple[str, str] | None:
    first = min(event.starts_on, schedule.first_day)
    # A session ending before 06:00 belongs to the day before (docs/programme.md).
    last_end = max(
        (datetime.fromisoformat(e.ends_at) - DAY_ENDS_NEXT_MORNING).date().isoformat()
        for e in schedule.entries
    )
    last = max(event.ends_on, schedule.last_day, last_end)
    return None if (first, last) == (event.starts_on, event.ends_on) else (first, last)


def make_plan(event: Event, schedule: Schedule, existing: dict[str, Session]) -> ImportPlan:
    plan = ImportPlan(event=event, schedule=schedule, days=_days_needed(event, schedule))
    days = plan.days or (event.starts_on, event.ends_on)
    bounds = dataclasses.replace(event, starts_on=days[0], ends_on=days[1])
    for entry in schedule.entries:
        fields = entry_fields(entry)
        try:
            check_within_event(bounds, fields["starts_at"], fields["ends_at"])
        except BadRequest as exc:
            raise ScheduleError(f"{entry.title!r} ({entry.uid}): {exc.message}", field=exc.field) from None
        session = existing.get(entry.uid)
        if session is None:
            plan.creates.append(entry)
            continue
        changed = [f for f in managed(entry) if _comparable(getattr(session, f)) != _comparable(fields[f])]
        if session.cancelled:
            changed.append("restored")
        if changed:
            plan.updates.append(Update(session, entry, changed))
        else:
            plan.unchanged += 1
    listed = {e.uid for e in schedule.entries}
    for uid, session in sorted(existing.items()):
        if uid in listed or session.cancelled:
            continue
        (plan.cancels if session.state == "scheduled" else plan.kept).append(session)
    return plan


def _comparable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


class ProgrammeImport:
    def __init__(self, db: Store, venue_zone: str, *, on_change: Callable[[], None] | None = None) -> None:
        self.db = db
        self.venue_zone = venue_zone
        self.on_change = on_change  # after an import that changed something: as Programme.on_change

    async def read(self, data: bytes, filename: str = "") -> Schedule:
        # Parsing a 2 MB schedule takes a second of CPU: off the event loop.
        return await asyncio.to_thread(parse_schedule, data, self.venue_zone, filename)

    async def preview(self, event_id: str, data: bytes, filename: str = "") -> ImportPlan:
        """What importing the file would do; nothing is written."""
        schedule = await self.read(data, filename)

        async def read(r: Tx) -> ImportPlan:
            return make_plan(await _event(r, event_id), schedule, await r.sessions_by_source(event_id))

        return await self.db.read(read)

    async def apply(self, event_id: str, data: bytes, filename: str = "") -> ImportPlan:
        """Import the file: the plan is made again inside the write, so it matches what is stored."""
        schedule = await self.read(data, filename)

        async def op(tx: Tx) -> ImportPlan:
            plan = make_plan(await _event(tx, event_id), schedule, await tx.sessions_by_source(event_id))
            if plan.days:
                await tx.update_event(event_id, {"starts_on": plan.days[0], "ends_on": plan.days[1]})
            for entry in plan.creates:
                await tx.insert_session(event_id, {**entry_fields(entry), "source_uid": entry.uid})
            for update in plan.updates:
                fields = {k: v for k, v in entry_fields(update.entry).items() if k in update.changed}
                if "restored" in update.changed:
                    fields["cancelled"] = False
                await tx.update_session(update.session.id, fields)
            for session in plan.cancels:
                await tx.update_session(session.id, {"cancelled": True})
            return plan

        plan = await self.db.write(op)
        if self.on_change is not None and not plan.empty:
            self.on_change()
        return plan

    async def restore(self, doc: Any) -> tuple[str, int]:
        """Restore an event from its JSON export (`liveblog import`, capture/imports.py): its
        hashtags and sessions are new here, so the feeds hear of it as of a created event. Returns
        the event's id and how many sessions it has."""
        restored = await import_json(self.db, doc)
        if self.on_change is not None:
            self.on_change()
        return restored


async def _event(conn: Tx, event_id: str) -> Event:
    event = await conn.get_event(event_id)
    if event is None:
        raise NotFound(f"no event {event_id!r}")
    return event

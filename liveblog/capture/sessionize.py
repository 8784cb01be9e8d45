"""Sessionize programmes: its public API's "All Data" JSON (`/api/v2/{id}/view/All`: `sessions`,
`speakers`, `rooms`, `categories`, `questions`) and its "Sessions" list and "GridSmart" shapes (a
list of groups, or of days with rooms, each holding `sessions`). One session per Sessionize
session, keyed by its id; `startsAt`/`endsAt` are the venue's wall clock (Sessionize writes them
without an offset). Service sessions (registration, breaks, lunch) and sessions not scheduled yet
are left out, and the preview says so. docs/programme.md describes the mapping.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from liveblog.capture.programme import recording_url
from liveblog.capture.schedule import (
    Entry,
    Schedule,
    ScheduleError,
    clean_text,
    describe,
    make_entry,
    moment,
)
from liveblog.errors import BadRequest

# Sessionize's own categories describe a session's form, not its subject: not tags.
FORM_CATEGORIES = frozenset({"session format", "level", "language"})


def is_sessionize(data: Any) -> bool:
    """All Data (an object with `sessions` and no frab `schedule`), or the list shapes."""
    if isinstance(data, dict):
        return "schedule" not in data and isinstance(data.get("sessions"), list)
    return isinstance(data, list) and all(
        isinstance(g, dict) and ("sessions" in g or "rooms" in g) for g in data
    )


def parse_sessionize(data: Any, zone: ZoneInfo) -> Schedule:
    rooms: dict[str, str] = {}
    speakers: dict[str, str] = {}
    items: dict[str, str] = {}
    form_items: set[str] = set()  # items of FORM_CATEGORIES: known, but no tags
    if isinstance(data, dict):
        sessions = data["sessions"]
        for n, room in enumerate(_objects(data, "rooms")):
            rooms[_key(room.get("id"), f"rooms[{n}].id")] = clean_text(
                room.get("name"), f"rooms[{n}].name", limit=200
            )
        for n, speaker in enumerate(_objects(data, "speakers")):
            name = speaker.get("fullName") or " ".join(
                str(speaker.get(k) or "") for k in ("firstName", "lastName")
            )
            speakers[_key(speaker.get("id"), f"speakers[{n}].id")] = clean_text(
                name, f"speakers[{n}].fullName", limit=100
            )
        for n, category in enumerate(_objects(data, "categories")):
            form = str(category.get("title") or "").strip().lower() in FORM_CATEGORIES
            for m, item in enumerate(category.get("items") or []):
                where = f"categories[{n}].items[{m}]"
                if not isinstance(item, dict):
                    raise ScheduleError(f"{where} must be an object", field=where)
                key = _key(item.get("id"), f"{where}.id")
                if form:
                    form_items.add(key)
                else:
                    items[key] = clean_text(item.get("name"), f"{where}.name", limit=100)
    else:
        sessions = _listed_sessions(data)
    notes: list[str] = []
    entries: list[Entry] = []
    seen: dict[str, Any] = {}
    for n, session in enumerate(sessions):
        where = f"sessions[{n}]"
        if not isinstance(session, dict):
            raise ScheduleError(f"{where} must be an object", field=where)
        uid = _key(session.get("id"), f"{where}.id")
        if uid in seen and seen[uid] == session:
            continue  # the list shapes repeat a plenum session in every room
        seen[uid] = session
        title = clean_text(session.get("title"), f"{where}.title")
        label = f"{where} ({title!r})" if title else where
        if session.get("isServiceSession") is True:
            notes.append(f"{title!r}: a service session (a break, registration or a meal), left out")
            continue
        status = session.get("status")
        if isinstance(status, str) and status not in ("Accepted", ""):
            notes.append(f"{title!r}: its status is {status!r}, not Accepted; left out")
            continue
        if session.get("startsAt") is None:
            notes.append(f"{title!r}: not scheduled yet (no startsAt), left out")
            continue
        start = moment(session.get("startsAt"), f"{label}.startsAt", field=f"{where}.startsAt")
        if session.get("endsAt") is None:
            raise ScheduleError(f"{label} has a startsAt but no endsAt", field=f"{where}.endsAt")
        end = moment(session.get("endsAt"), f"{label}.endsAt", field=f"{where}.endsAt")
        if (start.tzinfo is None) != (end.tzinfo is None):
            raise ScheduleError(
                f"{label}: startsAt and endsAt must both have an offset or both have none",
                field=f"{where}.endsAt",
            )
        entries.append(
            make_entry(
                uid,
                title,
                start,
                end - start,
                zone,
                where,
                room=_room(session, rooms, label, where),
                speakers=_speakers(session, speakers, label, where),
                description=describe(
                    "", clean_text(session.get("description"), f"{where}.description"), title, notes
                ),
                tags=_tags(session, items, form_items, label, where),
                recording_url=_recording(session, label, where),
                notes=notes,
            )
        )
    return Schedule("sessionize", "", entries, notes)


def _recording(session: dict[str, Any], label: str, where: str) -> str | None:
    """recordingUrl, when the file has one (checked as a session's recording_url)."""
    url = session.get("recordingUrl")
    if url is None or url == "":
        return None
    try:
        return recording_url(url)
    except BadRequest as exc:
        raise ScheduleError(f"{label}.recordingUrl: {exc.message}", field=f"{where}.recordingUrl") from None


def _objects(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    values = data.get(name) or []
    if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        raise ScheduleError(f"{name} must be a list of objects", field=name)
    return values


def _key(value: Any, where: str) -> str:
    """Sessionize's ids: numbers (rooms, categories, talks) or UUIDs (speakers, service sessions)."""
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise ScheduleError(f"{where} must be an id (a number or text), not {value!r}", field=where)
    return str(value).strip()


def _listed_sessions(groups: list[Any]) -> list[Any]:
    """The "Sessions" list (groups with `sessions`) or "GridSmart" (days with `rooms`, each with
    `sessions`; the room named by the room)."""
    sessions: list[Any] = []
    for g, group in enumerate(groups):
        if "rooms" in group:
            for r, room in enumerate(group.get("rooms") or []):
                if not isinstance(room, dict) or not isinstance(room.get("sessions"), list):
                    raise ScheduleError(
                        f"[{g}].rooms[{r}].sessions must be a list", field=f"[{g}].rooms[{r}]"
                    )
                sessions.extend(
                    {"room": room.get("name"), **s} if isinstance(s, dict) else s for s in room["sessions"]
                )
        elif isinstance(group.get("sessions"), list):
            sessions.extend(group["sessions"])
        else:
            raise ScheduleError(f"[{g}].sessions must be a list", field=f"[{g}].sessions")
    return sessions


def _room(session: dict[str, Any], rooms: dict[str, str], label: str, where: str) -> str:
    if session.get("room"):  # the list shapes name the room
        return clean_text(session["room"], f"{where}.room", limit=200)
    room_id = session.get("roomId")
    if room_id is None:
        return ""
    key = _key(room_id, f"{where}.roomId")
    if key not in rooms:
        raise ScheduleError(
            f"{label}.roomId {room_id!r} is not one of the file's rooms", field=f"{where}.roomId"
        )
    return rooms[key]


def _speakers(session: dict[str, Any], speakers: dict[str, str], label: str, where: str) -> tuple[str, ...]:
    listed = session.get("speakers") or []
    if not isinstance(listed, list):
        raise ScheduleError(f"{label}.speakers must be a list", field=f"{where}.speakers")
    names = []
    for speaker in listed:
        if isinstance(speaker, dict):  # the list shapes: {"id": ..., "name": ...}
            names.append(clean_text(speaker.get("name"), f"{where}.speakers", limit=100))
            continue
        key = _key(speaker, f"{where}.speakers")
        if key not in speakers:
            raise ScheduleError(
                f"{label}.speakers names {speaker!r}, who is not one of the file's speakers",
                field=f"{where}.speakers",
            )
        names.append(speakers[key])
    return tuple(dict.fromkeys(n for n in names if n))[:20]


def _tags(
    session: dict[str, Any], items: dict[str, str], form_items: set[str], label: str, where: str
) -> tuple[str, ...]:
    tags: list[str] = []
    for item in session.get("categoryItems") or []:  # All Data: ids into the file's categories
        key = _key(item, f"{where}.categoryItems")
        if key in items:
            tags.append(items[key])
        elif key not in form_items:
            raise ScheduleError(
                f"{label}.categoryItems names {item!r}, which is not in the file's categories",
                field=f"{where}.categoryItems",
            )
    for category in session.get("categories") or []:  # the list shapes: named inline
        if not isinstance(category, dict):
            raise ScheduleError(f"{label}.categories must be a list of objects", field=f"{where}.categories")
        if str(category.get("name") or "").strip().lower() in FORM_CATEGORIES:
            continue
        tags.extend(
            clean_text(i.get("name"), f"{where}.categories", limit=100)
            for i in category.get("categoryItems") or []
            if isinstance(i, dict)
        )
    return tuple(dict.fromkeys(t for t in tags if t))[:20]

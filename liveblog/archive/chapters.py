"""A session's recording and its key moments as video chapters: key points, polls as they opened
and questions as they were answered, placed in the recording by the session's start within it.

The recording is a link an organiser attaches (YouTube, Vimeo, PeerTube or a video file) with the
offset of the session's scheduled start in it. Chapters come out as WebVTT (for the page's
<track> and to download) and as the "00:12:34 Title" lines that YouTube and PeerTube descriptions
turn into chapters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from liveblog.archive.service import KnowledgePage
from liveblog.models import Item, Session
from liveblog.text import find_embeds

VIDEO_FILE = re.compile(r"\.(mp4|webm|ogv|m4v|mov)$", re.IGNORECASE)
PEERTUBE_PATH = re.compile(r"^/(?:w|videos/watch)/([A-Za-z0-9-]{6,64})/?$")
CHAPTER_TITLE_CHARS = 100


@dataclass(frozen=True)
class Recording:
    """What the page needs to show a recording: `player` (click-to-load, privacy-friendly) for
    YouTube and Vimeo, `file` for a video file played in the page, and links at a moment."""

    url: str
    offset: int  # seconds into the recording where the session's scheduled start is
    provider: str  # YouTube, Vimeo, PeerTube, Video file, Video
    player: str = ""
    file: bool = False

    def at(self, seconds: int) -> str:
        """The recording's URL opened at `seconds` (each provider's own way of saying it)."""
        seconds = max(0, int(seconds))
        if self.provider == "YouTube":
            return _with_query(self.url, f"t={seconds}s")
        if self.provider == "PeerTube":
            return _with_query(self.url, f"start={seconds}s")
        return f"{self.url.split('#', 1)[0]}#t={seconds}"  # Vimeo and media fragments (video files)

    def player_at(self, seconds: int, api: bool = False) -> str:
        """The click-to-load player's URL, starting at `seconds`: YouTube's `start=`, Vimeo's `#t=`
        (Vimeo has no `start` parameter: its player would start at 0), and Vimeo's `dnt=1` (do not
        track: no cookies, no session stats). With `api`, a player that
        answers the postMessage protocol static/js/replay.js speaks: YouTube's needs
        `enablejsapi=1`; Vimeo's always answers, and `api=1` would switch it to its old
        (Froogaloop) event names, playProgress and seek instead of timeupdate and seeked."""
        seconds = max(0, int(seconds))
        if self.provider == "Vimeo":
            # dnt=1: Vimeo's "do not track" (no cookies, no session stats), as WordPress asks for.
            return f"{_with_query(self.player, 'dnt=1')}#t={seconds}s"
        return _with_query(self.player, f"start={seconds}{'&enablejsapi=1' if api else ''}")


def _with_query(url: str, param: str) -> str:
    base, _, fragment = url.partition("#")
    joined = f"{base}{'&' if '?' in base else '?'}{param}"
    return f"{joined}#{fragment}" if fragment else joined


def recording_of(session: Session) -> Recording | None:
    if not session.recording_url:
        return None
    url, offset = session.recording_url, session.recording_offset
    embeds = [e for e in find_embeds(url) if e["player"]]
    if embeds:
        return Recording(url, offset, embeds[0]["provider"], player=embeds[0]["player"])
    parts = urlsplit(url)
    if VIDEO_FILE.search(parts.path):
        return Recording(url, offset, "Video file", file=True)
    if PEERTUBE_PATH.match(parts.path):
        return Recording(url, offset, "PeerTube")
    return Recording(url, offset, "Video")


@dataclass(frozen=True)
class Chapter:
    start: int  # seconds into the recording
    title: str


def _utc(moment: str, zone: ZoneInfo) -> datetime | None:
    """A stored time as an aware UTC datetime: items' times are UTC ('...Z'); the programme's are
    the venue's wall-clock time."""
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def start_utc(session: Session, zone: ZoneInfo) -> str:
    """The session's scheduled start as UTC ISO 8601 ("" if unreadable): the replay page maps
    its stream's times to the recording's with it and the recording's offset."""
    start = _utc(session.starts_at, zone)
    return start.isoformat() if start is not None else ""


def _title(prefix: str, text: str) -> str:
    line = " ".join(text.split())
    line = re.sub(r"[*_`#>\[\]]", "", line).strip()  # Markdown marks mean nothing in a chapter list
    title = f"{prefix}{line}"
    return title if len(title) <= CHAPTER_TITLE_CHARS else title[: CHAPTER_TITLE_CHARS - 1].rstrip() + "…"


def chapters(
    session: Session,
    key_points: list[Item],
    polls: list[Item],
    answered: list[tuple[Item, Item | None]],
    zone: ZoneInfo,
    answered_later: Sequence[Item] = (),
) -> list[Chapter]:
    """The key moments, in the recording's time: key points when typed, polls when opened,
    questions when answered (by their answer note's time, or when marked answered), and questions
    answered after the talk when asked. The list starts at 0:00 (as YouTube requires), and
    moments before the recording are left out."""
    start = _utc(session.starts_at, zone)
    recording = recording_of(session)
    if start is None or recording is None:
        return []
    moments: list[tuple[str, str]] = []  # (when, stored time text; title)
    for item in key_points:
        moments.append((item.typed_at, _title("", item.body)))
    for poll in polls:
        moments.append((str(poll.data.get("opened_at") or poll.typed_at), _title("Poll: ", poll.body)))
    for question, answer in answered:
        when = answer.typed_at if answer is not None else question.updated_at
        moments.append((when, _title("Q: ", question.body)))
    for question in answered_later:
        moments.append((question.typed_at, _title("Q: ", question.body)))
    out: dict[int, str] = {}
    for moment, title in sorted(moments):
        at = _utc(moment, zone)
        if at is None or not title:
            continue
        second = recording.offset + int((at - start).total_seconds())
        if second < 0:
            continue
        while second in out:  # two moments in one second: both kept, a second apart
            second += 1
        out[second] = title
    if 0 not in out:
        out[0] = "Start" if recording.offset == 0 else "Before the session"
        if recording.offset > 0 and recording.offset not in out:
            out[recording.offset] = "The session starts"
    return [Chapter(s, t) for s, t in sorted(out.items())]


def clock(seconds: int, *, millis: bool = False) -> str:
    h, rest = divmod(max(0, seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.000" if millis else f"{h:02d}:{m:02d}:{s:02d}"


def chapters_vtt(found: list[Chapter], session: Session, zone: ZoneInfo) -> str:
    """WebVTT chapters: each runs until the next; the last until the session's scheduled end."""
    start, end = _utc(session.starts_at, zone), _utc(session.ends_at, zone)
    length = int((end - start).total_seconds()) if start and end else 0
    last = session.recording_offset + max(length, 0)
    lines = ["WEBVTT", ""]
    for n, chapter in enumerate(found, start=1):
        until = found[n].start if n < len(found) else max(last, chapter.start + 1)
        lines += [
            str(n),
            f"{clock(chapter.start, millis=True)} --> {clock(until, millis=True)}",
            chapter.title.replace("-->", "->"),
            "",
        ]
    return "\n".join(lines)


def chapters_text(found: list[Chapter]) -> str:
    """'00:12:34 Title' lines, as YouTube and PeerTube descriptions take them."""
    return "".join(f"{clock(c.start)} {c.title}\n" for c in found)


def page_chapters(view: KnowledgePage, zone: ZoneInfo) -> list[Chapter]:
    """The chapters of a knowledge page's session (its view for the server, its page for exports)."""
    return chapters(
        view.session,
        list(view.key_points),
        [p.item for p in view.polls],
        [(q.item, q.answer) for q in view.questions if q.answered],
        zone,
        [q.item for q in view.questions if q.later is not None and not q.answered],
    )

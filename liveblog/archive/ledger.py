"""The moderation ledger as readers and organisers see it (docs/archive.md, "The moderation
ledger"): the public counts a knowledge page shows, and the organisers' log of an event."""

from __future__ import annotations

from dataclasses import dataclass

from liveblog.errors import NotFound
from liveblog.models import Event, ModerationEntry, Session
from liveblog.storage import Store, Unit
from liveblog.text import plural

# What the public counts say of each kind of target, in this order: (action, words) for every
# action that took a target out of view. Approving or showing again is not counted; pins and
# answers are not removals.
PUBLIC_COUNTS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("question", "question", "questions", (("hide", "hidden"), ("merge", "merged"))),
    ("comment", "comment", "comments", (("hide", "hidden"), ("delete", "removed"))),
    ("post", "post", "posts", (("reject", "not shown"), ("remove", "not shown"))),
    ("note", "note", "notes", (("delete", "removed by the organisers"),)),
    ("poll", "poll", "polls", (("discount", "with flagged votes discounted"),)),
)


# The actions the public counts count, of any target.
COUNTED = tuple(sorted({action for *_, actions in PUBLIC_COUNTS for action, _ in actions}))


def public_summary(counts: dict[tuple[str, str], int]) -> str:
    """'3 questions hidden, 1 merged · 12 posts not shown': each kind of target with what was
    done to how many (its noun once, on the first count), "" when nothing was moderated."""
    parts: list[str] = []
    for kind, one, many, actions in PUBLIC_COUNTS:
        by_words: dict[str, int] = {}
        for action, words in actions:
            if counts.get((kind, action)):
                by_words[words] = by_words.get(words, 0) + counts[(kind, action)]
        phrases = [
            f"{plural(n, one, many)} {words}" if i == 0 else f"{n} {words}"
            for i, (words, n) in enumerate(by_words.items())
        ]
        if phrases:
            parts.append(", ".join(phrases))
    return " · ".join(parts)


def public_reasons(reasons: list[tuple[str, int]]) -> str:
    """'advertising (2), off topic': the reasons given, for an event that shows them."""
    return ", ".join(f"{reason} ({n})" if n > 1 else reason for reason, n in reasons)


@dataclass(frozen=True)
class LedgerView:
    """An event's moderation ledger, or one session's, for the organisers' page."""

    event: Event
    sessions: list[Session]
    session: Session | None  # the session it is filtered to, if any
    entries: list[ModerationEntry]


async def read_ledger(db: Store, event_id: str, session_id: str | None) -> LedgerView:
    async def read(r: Unit) -> LedgerView:
        event = await r.get_event(event_id)
        if event is None:
            raise NotFound("There is no such event.", code="unknown_event")
        sessions = await r.list_sessions(event_id)
        chosen = next((s for s in sessions if s.id == session_id), None)
        if session_id is not None and chosen is None:
            raise NotFound("There is no such session in this event.", code="unknown_session", field="session")
        return LedgerView(event, sessions, chosen, await r.moderation_log(event_id, session_id))

    return await db.read(read, pool="pages")

"""SQL for the public moderation ledger: one row per moderation action, written by the action's
own op (so in its transaction), read per event or session, counted for knowledge pages, and
carried by exports. Written once for both backends, against the query layer (sql.py)."""

from __future__ import annotations

from typing import Any

from liveblog.models import ModerationEntry, utcnow
from liveblog.storage.base import OpsBase

COLUMNS = "id, event_id, session_id, at, actor, action, target_kind, target_id, reason"
# A session's entries that say where each target stands: the last action taken on it (a question
# hidden then shown again stands shown), pins, unpins and answers aside (they remove nothing).
STANDING = (
    "FROM moderation_log m WHERE session_id = ?"
    " AND id = (SELECT max(l.id) FROM moderation_log l WHERE l.session_id = m.session_id"
    " AND l.target_kind = m.target_kind AND l.target_id = m.target_id"
    " AND l.action NOT IN ('pin', 'unpin', 'answer'))"
)

# Writing an entry: the event and session columns come first, from where each op knows them; the
# rest (ENTRY's placeholders) in _entry's order.
INSERT = (
    "INSERT INTO moderation_log (event_id, session_id, at, actor, action, target_kind, target_id, reason)"
)
ENTRY = "?, ?, ?, ?, ?, ?"


def _entry(actor: str, action: str, target_kind: str, target_id: int | str, reason: str) -> tuple[str, ...]:
    return (utcnow(), actor, action, target_kind, str(target_id), reason)


def entry_of(row: Any) -> ModerationEntry:
    return ModerationEntry(
        id=int(row["id"]),
        event_id=row["event_id"],
        session_id=row["session_id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        target_kind=row["target_kind"],
        target_id=str(row["target_id"]),
        reason=row["reason"],
    )


class ModerationOps(OpsBase):
    async def record_moderation(
        self,
        *,
        session_id: str,
        actor: str,
        action: str,
        target_kind: str,
        target_id: int | str,
        reason: str = "",
    ) -> None:
        """Log one action on a session's item or comment; the event is the session's own."""
        await self.db.execute(
            f"{INSERT} SELECT event_id, id, {ENTRY} FROM sessions WHERE id = ?",
            (*_entry(actor, action, target_kind, target_id, reason), session_id),
        )

    async def record_event_moderation(
        self,
        *,
        event_id: str,
        actor: str,
        action: str,
        target_kind: str,
        target_id: int | str,
        reason: str = "",
    ) -> None:
        """Log one action of an event that is no one session's (banning a reader)."""
        await self.db.execute(
            f"{INSERT} VALUES (?, NULL, {ENTRY})",
            (event_id, *_entry(actor, action, target_kind, target_id, reason)),
        )

    async def moderation_log(self, event_id: str, session_id: str | None = None) -> list[ModerationEntry]:
        """An event's ledger (or one session's), newest first."""
        if session_id is None:
            rows = await self.db.fetch_all(
                f"SELECT {COLUMNS} FROM moderation_log WHERE event_id = ? ORDER BY id DESC", (event_id,)
            )
        else:
            rows = await self.db.fetch_all(
                f"SELECT {COLUMNS} FROM moderation_log WHERE event_id = ? AND session_id = ? ORDER BY id DESC",
                (event_id, session_id),
            )
        return [entry_of(r) for r in rows]

    async def moderation_counts(self, session_id: str) -> dict[tuple[str, str], int]:
        """How many of a session's targets each action was last taken on, by (target_kind,
        action): a question hidden then shown again counts as shown, not hidden."""
        rows = await self.db.fetch_all(
            f"SELECT target_kind, action, count(*) {STANDING} GROUP BY target_kind, action", (session_id,)
        )
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}

    async def moderation_reasons(self, session_id: str, actions: tuple[str, ...]) -> list[tuple[str, int]]:
        """The reasons given for the session's targets that stand with one of `actions`, each
        with how many, most frequent first."""
        test, args = self.db.dialect.one_of("action", actions)
        rows = await self.db.fetch_all(
            f"SELECT reason, count(*) {STANDING} AND reason <> '' AND {test} GROUP BY reason ORDER BY count(*) DESC,"
            " reason",
            (session_id, *args),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def import_moderation_rows(self, entries: list[dict[str, Any]]) -> None:
        """Restore ledger rows from an export (already validated, capture/imports.py)."""
        for e in entries:
            await self.db.execute(
                "INSERT INTO moderation_log (event_id, session_id, at, actor, action, target_kind, target_id,"
                " reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    e["event_id"],
                    e["session_id"],
                    e["at"],
                    e["actor"],
                    e["action"],
                    e["target_kind"],
                    e["target_id"],
                    e["reason"],
                ),
            )

"""Replay: a session played back as it happened, built from its stored stream (the changes
viewers received, in sequence order, at the moment each was committed), so it is exact.

`schedule` turns the changes into steps at millisecond offsets from the first; `state_at` is
what a replay shows at an offset (the browser's static/js/replay.js applies the same steps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

SPEEDS = (1, 4, 16)


@dataclass(frozen=True)
class Step:
    at_ms: int  # since the first change
    seq: int
    op: str
    payload: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.at_ms, "seq": self.seq, "op": self.op, "payload": self.payload}


def _moment(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# Changes that are no part of what the session said: a note's likes and boosts on the fediverse,
# and the comment thread (kept going on the knowledge page for days), come at any time after
# the session; a replay shows none of them, and as steps they would stretch its timeline.
NOT_REPLAYED = frozenset(
    {"note.reactions", "comment.created", "comment.updated", "comment.deleted", "comment.redacted"}
)


def schedule(changes: list[dict[str, Any]]) -> list[Step]:
    """Steps in sequence order; each at its change's commit time relative to the first. Commit
    times follow sequence numbers (one writer), so offsets never go back; a clock step backwards
    on the server is clamped rather than replayed out of order."""
    steps: list[Step] = []
    ordered = sorted((c for c in changes if c["op"] not in NOT_REPLAYED), key=lambda c: c["seq"])
    if not ordered:
        return steps
    start = _moment(ordered[0]["created_at"])
    last = 0
    for c in ordered:
        at = max(last, round((_moment(c["created_at"]) - start) * 1000))
        last = at
        steps.append(Step(at, c["seq"], c["op"], c["payload"]))
    return steps


def apply(state: dict[int, dict[str, Any]], step: Step) -> None:
    """One step on a replay's items (id -> the item's wire form, kinds note/social/poll/question)."""
    p = step.payload
    if step.op in ("item.created", "item.updated") and isinstance(p.get("item"), dict):
        item = p["item"]
        if item.get("deleted"):
            state.pop(item["id"], None)
        else:
            state[item["id"]] = dict(item)
    elif step.op in ("item.deleted", "item.redacted"):
        item_id = p.get("item_id") or (p.get("item") or {}).get("id")
        if isinstance(item_id, int):
            state.pop(item_id, None)
    elif "item_id" in p and p["item_id"] in state:
        # Compact changes (poll.tally, question.votes, ...): fields merged into the item's data.
        fields = {k: v for k, v in p.items() if k not in ("type", "seq", "op", "item_id", "version")}
        item = state[p["item_id"]]
        item["data"] = {**item.get("data", {}), **fields}


def state_at(steps: list[Step], at_ms: int) -> list[dict[str, Any]]:
    """The items a replay shows at `at_ms`, in the order they first appeared."""
    state: dict[int, dict[str, Any]] = {}
    for step in steps:
        if step.at_ms > at_ms:
            break
        apply(state, step)
    return list(state.values())


def duration(steps: list[Step]) -> int:
    return steps[-1].at_ms if steps else 0

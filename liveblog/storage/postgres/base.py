"""What every PostgreSQL query mixin works on: an asyncpg connection inside a transaction (or a
read-only snapshot), and in a write the changes it made and its after-commit callbacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from liveblog.models import Change


class PgUnitBase:
    __slots__ = ("conn", "changes", "after_commit")

    def __init__(self, conn: Any) -> None:
        self.conn = conn  # an asyncpg.Connection (or pool proxy) with a transaction open
        self.changes: list[Change] = []
        self.after_commit: list[Callable[[], None]] = []

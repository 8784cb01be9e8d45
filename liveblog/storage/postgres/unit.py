"""The PostgreSQL unit of work: every typed storage operation (interface.Unit) on one asyncpg
connection. One mixin per domain, like storage/unit.py on SQLite."""

from __future__ import annotations

from liveblog.storage.access import AccessOps
from liveblog.storage.cards import CardOps
from liveblog.storage.comments import CommentOps
from liveblog.storage.exports import ExportOps
from liveblog.storage.federation import FederationOps, ReplyOps
from liveblog.storage.feeds import FeedOps
from liveblog.storage.moderation import ModerationOps
from liveblog.storage.postgres.archive import PgArchiveOps
from liveblog.storage.postgres.repo import PgStreamOps
from liveblog.storage.programme import ProgrammeOps
from liveblog.storage.votes import VoteOps

# Every domain but the stream (postgres/repo.py) is written once, against the query layer
# (sql.py); the archive adds PostgreSQL's own search (postgres/archive.py).


class PgUnit(
    PgStreamOps,
    VoteOps,
    AccessOps,
    CommentOps,
    CardOps,
    ExportOps,
    FeedOps,
    ProgrammeOps,
    PgArchiveOps,
    ModerationOps,
    FederationOps,
    ReplyOps,
):
    """One read snapshot or one write op's share of a group-commit transaction."""

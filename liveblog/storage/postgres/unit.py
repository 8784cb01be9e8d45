"""The PostgreSQL unit of work: every typed storage operation (interface.Unit) on one asyncpg
connection. One mixin per domain, like storage/unit.py on SQLite."""

from __future__ import annotations

from liveblog.storage.access import AccessOps
from liveblog.storage.cards import CardOps
from liveblog.storage.comments import CommentOps
from liveblog.storage.exports import ExportOps
from liveblog.storage.feeds import FeedOps
from liveblog.storage.postgres.archive import PgArchiveOps
from liveblog.storage.postgres.base import PgUnitBase
from liveblog.storage.postgres.portable import portable
from liveblog.storage.postgres.repo import PgStreamOps
from liveblog.storage.votes import VoteOps

# VoteOps, AccessOps and CommentOps are written once, against the query layer (sql.py). The
# other portable SQL (storage/feeds.py keeps to it) still runs here through the shim.
PgFeedOps: type = portable(FeedOps, own=PgUnitBase)
PgCardOps: type = portable(CardOps, own=PgUnitBase)
PgExportOps: type = portable(ExportOps, own=PgUnitBase)


class PgUnit(PgStreamOps, VoteOps, AccessOps, CommentOps, PgFeedOps, PgExportOps, PgArchiveOps, PgCardOps):
    """One read snapshot or one write op's share of a group-commit transaction."""

"""The unit of work: every typed storage operation (interface.Unit), written once.

Each domain's SQL is a mixin (repo.py: programme and the stream; votes.py: audience votes;
access.py: accounts, invites, media; archive.py: knowledge pages, tags, search; cards.py:
knowledge-page cards; comments.py: comment threads and reader accounts; exports.py: export and
import rows; programme.py: deleting sessions, imported sessions; moderation.py: the moderation
ledger; feeds.py: social posts and routes; federation.py: the fediverse's keys, handles, followers
and deliveries; answers.py: speaker links and answers after the talk), all against the query
layer (sql.py). `Operations` combines them; SQLite's unit is it as it is, PostgreSQL's (postgres/unit.py) adds its own
search and its benchmarked hot paths. A new domain adds its mixin here and its operations to
interface.py.
"""

from __future__ import annotations

from liveblog.storage.access import AccessOps
from liveblog.storage.answers import AnswerOps
from liveblog.storage.archive import ArchiveOps
from liveblog.storage.cards import CardOps
from liveblog.storage.comments import CommentOps
from liveblog.storage.exports import ExportOps
from liveblog.storage.federation import FederationOps, ReplyOps
from liveblog.storage.feeds import FeedOps
from liveblog.storage.moderation import ModerationOps
from liveblog.storage.programme import ProgrammeOps
from liveblog.storage.repo import StreamOps
from liveblog.storage.votes import VoteOps


class Operations(
    StreamOps,
    VoteOps,
    AccessOps,
    FeedOps,
    ArchiveOps,
    CardOps,
    CommentOps,
    ExportOps,
    ProgrammeOps,
    ModerationOps,
    FederationOps,
    ReplyOps,
    AnswerOps,
):
    """One read snapshot or one write op's share of a group-commit transaction."""


class SqliteUnit(Operations):
    """The SQLite unit: a reader's snapshot (AiosqliteSql) or the writer thread's (SqliteSql)."""

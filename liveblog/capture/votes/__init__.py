"""Audience votes: polls, votes, questions and upvotes, and the coalescer that turns a burst of
votes into a few tally changes in the stream.

Polls and questions are stream items (kinds "poll" and "question"). A vote or an upvote is
committed and answered at once, but it does not become a stream change by itself: it marks its
poll (or question) dirty, and one coalescer task writes the current tally as a single
`poll.tally` (or `question.votes`) change at most once per `votes.tally_interval_ms` per poll.
Tallies are state, not history: 1,000 votes in a second are a handful of changes, the last one
exact. The same task closes polls whose `closes_at` has passed.
"""

from liveblog.capture.votes.common import (
    MAX_OPTIONS,
    MAX_POLL_SECONDS,
    POLL_KINDS,
    POLL_STATES,
    PUBLIC_QUESTION_STATES,
    QUESTION_ACTIONS,
    QUESTION_STATES,
    Moderator,
    PollClosed,
    QuestionNotVisible,
    UnknownOption,
    UnknownPoll,
    UnknownQuestion,
    Voter,
)
from liveblog.capture.votes.limits import FLOOD_ACTIONS, FLOOD_WINDOW, FloodGuard, IpBursts
from liveblog.capture.votes.polls import canonical_choice, compute_tally, poll_fields, words
from liveblog.capture.votes.service import Audience
from liveblog.capture.votes.tallies import TallyCoalescer

__all__ = [
    "FLOOD_ACTIONS",
    "FLOOD_WINDOW",
    "MAX_OPTIONS",
    "MAX_POLL_SECONDS",
    "POLL_KINDS",
    "POLL_STATES",
    "PUBLIC_QUESTION_STATES",
    "QUESTION_ACTIONS",
    "QUESTION_STATES",
    "Audience",
    "FloodGuard",
    "IpBursts",
    "Moderator",
    "PollClosed",
    "QuestionNotVisible",
    "TallyCoalescer",
    "UnknownOption",
    "UnknownPoll",
    "UnknownQuestion",
    "Voter",
    "canonical_choice",
    "compute_tally",
    "poll_fields",
    "words",
]

"""Comment threads: readers with an account comment on a session (before it starts, while live,
and on its knowledge page), reply in threads, edit and delete their own comments. Organisers
hide, delete, lock threads and pre-moderate per event. Every change is a change in the session's
stream, so open pages get new comments live and can resume like any stream.

Spam guard: a honeypot field, rate limits per account and per address, and a link limit for
accounts younger than a day."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from liveblog.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited
from liveblog.models import Account, Comment, Event, Session
from liveblog.storage import Store, Tx, Unit
from liveblog.text import count_links, render_markdown, xml_chars

COMMENT_CHARS = 5000
# Comments per account: 5 a minute is fast typing in a heated thread; 30 an hour is a lot of
# conversation. Per address (a venue's wifi is one address for a whole room): 30 a minute.
ACCOUNT_LIMITS = ((5, 60.0), (30, 3600.0))
ADDRESS_LIMITS = ((30, 60.0),)
# Accounts younger than this may post at most NEW_ACCOUNT_LINKS links per comment.
NEW_ACCOUNT_AGE = timedelta(days=1)
NEW_ACCOUNT_LINKS = 1
MODERATION_ACTIONS = ("hide", "show", "approve", "delete")
# Comments of each state listed in the organisers' queue at most (newest first).
QUEUE_LIMIT = 200


class Limiter:
    """Sliding-window counts per key, in memory, bounded."""

    def __init__(self, limits: tuple[tuple[int, float], ...]) -> None:
        self.limits = limits
        self._seen: dict[str, deque[float]] = {}

    def check(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        stamps = self._seen.setdefault(key, deque())
        longest = max(w for _, w in self.limits)
        while stamps and now - stamps[0] > longest:
            stamps.popleft()
        for count, window in self.limits:
            if sum(1 for t in stamps if now - t <= window) >= count:
                raise RateLimited("you are commenting too fast; wait a moment", code="rate_limited")
        stamps.append(now)
        if len(self._seen) > 10_000:
            for stale in list(self._seen)[:1000]:
                del self._seen[stale]


@dataclass
class ThreadNode:
    comment: Comment
    replies: list[ThreadNode] = field(default_factory=list)


@dataclass
class Thread:
    session_id: str
    roots: list[ThreadNode]
    count: int  # public comments
    locked: bool
    premoderated: bool
    pending: list[Comment]  # for moderators


def _limit_links(account: Account, html: str) -> str:
    """The spam guard's link limit for accounts younger than NEW_ACCOUNT_AGE, on a comment's
    rendered HTML: counted from what the renderer made links of, so text that becomes a link
    (a bare domain, an e-mail address) cannot slip past a count of the source text."""
    if account.role == "organiser" or not account.created_at:
        return html
    created = datetime.fromisoformat(account.created_at.replace("Z", "+00:00"))
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    if datetime.now(UTC) - created < NEW_ACCOUNT_AGE and count_links(html) > NEW_ACCOUNT_LINKS:
        raise BadRequest(
            f"new accounts may post at most {NEW_ACCOUNT_LINKS} link per comment for their first day"
            " (web addresses and e-mail addresses become links)",
            code="too_many_links",
            field="body",
        )
    return html


@dataclass
class ModerationQueue:
    """What waits for an organiser across every event: pending comments (pre-moderation) and
    hidden ones (to show again or delete), with their sessions and events for context."""

    pending: list[Comment]
    hidden: list[Comment]
    sessions: dict[str, Session]
    events: dict[str, Event]


class Comments:
    def __init__(self, db: Store) -> None:
        self.db = db
        self.by_account = Limiter(ACCOUNT_LIMITS)
        self.by_address = Limiter(ADDRESS_LIMITS)

    async def thread(
        self, session_id: str, *, moderator: bool = False, viewer: Account | None = None
    ) -> Thread:
        async def read(r: Unit) -> Thread:
            session = await r.get_session(session_id)
            if session is None:
                raise NotFound("There is no such session.", code="unknown_session")
            comments = await r.list_comments(session_id)
            locked = await r.thread_locked(session_id)
            premoderated = await r.event_premoderation(session.event_id)
            return build_thread(
                session_id, comments, locked, premoderated, moderator=moderator, viewer=viewer
            )

        return await self.db.read(read, pool="pages")

    async def avatars(self, session_id: str) -> dict[int, str]:
        """The copied avatars of the fediverse repliers shown in a session's thread: account id
        -> media id (one without an avatar is left out: our fediverse icon stands in)."""
        return await self.db.read(lambda r: r.shown_avatars(session_id), pool="pages")

    async def pending_count(self, limit: int = QUEUE_LIMIT) -> int:
        """How many comments await approval (up to `limit`), for a badge: no sessions read."""
        return len(await self.db.read(lambda r: r.comments_in_state("pending", limit), pool="pages"))

    async def moderation_queue(self, limit: int = QUEUE_LIMIT) -> ModerationQueue:
        async def read(r: Unit) -> ModerationQueue:
            pending = await r.comments_in_state("pending", limit)
            hidden = await r.comments_in_state("hidden", limit)
            sessions: dict[str, Session] = {}
            events: dict[str, Event] = {}
            for session_id in {c.session_id for c in pending + hidden}:
                session = await r.get_session(session_id)
                if session is None:
                    continue
                sessions[session_id] = session
                if (
                    session.event_id not in events
                    and (event := await r.get_event(session.event_id)) is not None
                ):
                    events[session.event_id] = event
            return ModerationQueue(pending, hidden, sessions, events)

        return await self.db.read(read, pool="pages")

    @staticmethod
    def _body(text: str) -> str:
        body = xml_chars(text).replace("\r\n", "\n").strip()
        if not body:
            raise BadRequest("a comment must not be empty", code="empty", field="body")
        if len(body) > COMMENT_CHARS:
            raise BadRequest(
                f"a comment is at most {COMMENT_CHARS} characters", code="too_long", field="body"
            )
        return body

    async def post(
        self,
        session_id: str,
        account: Account,
        text: str,
        *,
        parent_id: int | None = None,
        address: str = "",
        honeypot: str = "",
    ) -> Comment:
        if honeypot.strip():
            # Only a bot fills a field that people never see.
            raise BadRequest("this comment looks automated and was not posted", code="spam_suspected")
        body = self._body(text)
        html = _limit_links(account, render_markdown(body))
        self.by_account.check(f"a:{account.id}")
        if address:
            self.by_address.check(f"ip:{address}")

        async def op(tx: Tx) -> Comment:
            if await tx.account_banned(account.id):
                raise Forbidden("this account has been banned", code="account_banned")
            session = await tx.get_session(session_id)
            if session is None:
                raise NotFound("There is no such session.", code="unknown_session")
            if await tx.thread_locked(session_id):
                raise Conflict("this comment thread is locked", code="thread_locked")
            if parent_id is not None:
                parent = await tx.get_comment(parent_id)
                if parent is None or parent.session_id != session_id or not parent.public:
                    raise NotFound(
                        "There is no such comment to reply to.", code="unknown_comment", field="parent_id"
                    )
            premoderated = account.role != "organiser" and await tx.event_premoderation(session.event_id)
            comment, _ = await tx.insert_comment(
                session_id=session_id,
                parent_id=parent_id,
                account_id=account.id,
                author=account.username,
                body=body,
                html=html,
                state="pending" if premoderated else "visible",
                ip=address,
            )
            return comment

        return await self.db.write(op)

    async def _own(self, tx: Tx, comment_id: int, account: Account) -> Comment:
        comment = await tx.get_comment(comment_id)
        if comment is None or comment.deleted:
            raise NotFound("There is no such comment.", code="unknown_comment")
        if comment.account_id != account.id:
            raise Forbidden("you can only change your own comments", code="not_your_comment")
        if await tx.account_banned(account.id):
            raise Forbidden("this account has been banned", code="account_banned")
        return comment

    async def edit(self, comment_id: int, account: Account, text: str) -> Comment:
        body = self._body(text)
        html = _limit_links(account, render_markdown(body))

        async def op(tx: Tx) -> Comment:
            comment = await self._own(tx, comment_id, account)
            if await tx.thread_locked(comment.session_id):
                raise Conflict("this comment thread is locked", code="thread_locked")
            updated, _ = await tx.update_comment(comment_id, {"body": body, "html": html, "edited": True})
            return updated

        return await self.db.write(op)

    async def delete(self, comment_id: int, account: Account) -> Comment:
        async def op(tx: Tx) -> Comment:
            await self._own(tx, comment_id, account)
            updated, _ = await tx.update_comment(
                comment_id, {"deleted": True, "body": "", "html": ""}, op="comment.deleted"
            )
            return updated

        return await self.db.write(op)

    async def moderate(self, comment_id: int, action: str, by: str = "", reason: str = "") -> Comment:
        """hide | show | approve | delete a comment, logged in the moderation ledger by `by`."""
        if action not in MODERATION_ACTIONS:
            raise BadRequest(
                f"action must be one of {', '.join(MODERATION_ACTIONS)}", code="invalid_field", field="action"
            )

        async def op(tx: Tx) -> Comment:
            comment = await tx.get_comment(comment_id)
            if comment is None:
                raise NotFound("There is no such comment.", code="unknown_comment")
            if action == "delete":
                fields: dict[str, object] = {"deleted": True, "body": "", "html": ""}
                name = "comment.deleted"
            else:
                fields = {"state": "hidden" if action == "hide" else "visible"}
                name = "comment.updated"
            updated, _ = await tx.update_comment(comment_id, fields, op=name)
            await tx.record_moderation(
                session_id=comment.session_id,
                actor=by,
                action=action,
                target_kind="comment",
                target_id=comment_id,
                reason=reason,
            )
            return updated

        return await self.db.write(op)

    async def comment_session(self, comment_id: int) -> str:
        comment = await self.db.read(lambda r: r.get_comment(comment_id), pool="pages")
        if comment is None:
            raise NotFound("There is no such comment.", code="unknown_comment")
        return comment.session_id

    async def lock(self, session_id: str, locked: bool) -> None:
        async def op(tx: Tx) -> None:
            if await tx.get_session(session_id) is None:
                raise NotFound("There is no such session.", code="unknown_session")
            await tx.set_thread_locked(session_id, locked)

        await self.db.write(op)

    async def set_premoderation(self, event_id: str, on: bool) -> None:
        async def op(tx: Tx) -> None:
            if await tx.get_event(event_id) is None:
                raise NotFound(f"no event {event_id!r}")
            await tx.set_event_premoderation(event_id, on)

        await self.db.write(op)

    async def premoderated(self, event_id: str) -> bool:
        return await self.db.read(lambda r: r.event_premoderation(event_id), pool="pages")


def build_thread(
    session_id: str,
    comments: list[Comment],
    locked: bool,
    premoderated: bool,
    *,
    moderator: bool = False,
    viewer: Account | None = None,
) -> Thread:
    """Replies under their parents. Readers see public comments (and their own pending ones);
    a removed comment with public replies stays as a placeholder so the replies keep their place."""

    def shown(c: Comment) -> bool:
        if c.public:
            return True
        if c.deleted:
            return False
        return moderator or (viewer is not None and c.account_id == viewer.id and c.state == "pending")

    nodes = {c.id: ThreadNode(c) for c in comments}
    roots: list[ThreadNode] = []
    for c in comments:
        node = nodes[c.id]
        parent = nodes.get(c.parent_id) if c.parent_id is not None else None
        (parent.replies if parent else roots).append(node)

    def prune(items: list[ThreadNode]) -> list[ThreadNode]:
        out = []
        for n in items:
            n.replies = prune(n.replies)
            if shown(n.comment) or n.replies:
                out.append(n)
        return out

    return Thread(
        session_id=session_id,
        roots=prune(roots),
        count=sum(1 for c in comments if c.public),
        locked=locked,
        premoderated=premoderated,
        pending=[c for c in comments if c.state == "pending" and not c.deleted] if moderator else [],
    )

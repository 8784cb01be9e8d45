"""Feed moderation: moderators approve, reject and remove collected posts in a stream (a
session's, or the event's own feed), and set the event's rules and each session's policy. Every
decision is in the moderation ledger, in the same transaction."""

from __future__ import annotations

import functools

from liveblog.capture.feeds.routing import (
    DELETED_FIELDS,
    author_keys,
    publish,
    queue_changed,
    route_session,
    stream_of,
)
from liveblog.errors import BadRequest, Conflict, NotFound
from liveblog.models import Session, SocialRoute
from liveblog.settings import Settings
from liveblog.storage import Store, Tx
from liveblog.streams.hub import StreamHub

RULE_KINDS = ("allow_author", "block_author", "block_word")


class FeedModeration:
    def __init__(self, db: Store, hub: StreamHub, settings: Settings) -> None:
        self.db = db
        self.hub = hub
        self.settings = settings

    async def event_feed(self, event_id: str) -> Session:
        """The event's own feed stream, created if no post has yet (a page that shows it needs a
        stream to follow from the start)."""

        async def op(tx: Tx) -> Session:
            return await tx.ensure_event_feed(event_id)

        found = await self.db.read(lambda r: r.get_event_feed(event_id), pool="pages")
        return found if found is not None else await self.db.write(op)

    async def routed_post(self, post_row: int, event_id: str, session_id: str) -> SocialRoute | None:
        """One collected post as routed to a session (for quoting it into a note)."""
        return await self.db.read(lambda r: r.get_social_route(post_row, event_id, session_id), pool="pages")

    async def queue(self, stream: Session) -> list[SocialRoute]:
        """Posts waiting in a session's (or the event's own feed's) queue."""
        return await self.db.read(
            lambda r: r.list_social_routes(
                event_id=stream.event_id, session_id=route_session(stream), state="pending"
            ),
            pool="pages",
        )

    async def recent(self, stream: Session, limit: int = 100) -> list[SocialRoute]:
        """The newest `limit` posts decided in a stream (approved, rejected, removed), oldest first."""
        return await self.db.read(
            lambda r: r.recent_social_routes(stream.event_id, route_session(stream), limit), pool="pages"
        )

    async def moderate(
        self, session_id: str, post_row: int, action: str, by: str, reason: str = ""
    ) -> SocialRoute:
        """approve | reject | remove one post in one stream: a session's, or the event's own feed
        (its stream id, models.event_feed_id)."""
        if action not in ("approve", "reject", "remove"):
            raise BadRequest("action must be approve, reject or remove", code="invalid_field", field="action")

        async def op(tx: Tx) -> SocialRoute:
            stream = await tx.get_stream_session(session_id)
            if stream is None:
                raise NotFound(f"no session {session_id!r}", code="unknown_session")
            routed = route_session(stream)
            route = await tx.get_social_route(post_row, stream.event_id, routed)
            if route is None:
                raise NotFound("no such post in this session", code="unknown_post", field="post_row")
            if action == "approve":
                if route.state == "approved":
                    return route
                if route.state == "removed" or route.item_id is not None:
                    raise Conflict("that post was removed; it cannot come back", code="post_removed")
                item = await publish(tx, post_row, route.post, stream.id)
                await tx.set_social_route(
                    post_row, route.event_id, routed, state="approved", item_id=item.id, decided_by=by
                )
            elif route.item_id is not None and route.state == "approved":
                await tx.update_item(route.item_id, DELETED_FIELDS, op="item.deleted")
                await tx.set_social_route(
                    post_row, route.event_id, routed, state="removed", item_id=route.item_id, decided_by=by
                )
            elif route.state == "pending":
                await tx.set_social_route(
                    post_row, route.event_id, routed, state="rejected", item_id=None, decided_by=by
                )
            found = await tx.get_social_route(post_row, route.event_id, routed)
            assert found is not None
            if found.state != route.state:  # the ledger logs what changed, not a repeated click
                await tx.record_moderation(
                    session_id=stream.id,
                    actor=await _actor_name(tx, stream.event_id, by),
                    action=action,
                    target_kind="post",
                    target_id=post_row,
                    reason=reason,
                )
            return found

        route = await self.db.write(op)
        queue_changed(self.hub, session_id)
        return route

    async def remove_item(self, item_id: int, by: str) -> SocialRoute:
        route = await self.db.read(lambda r: r.social_route_for_item(item_id), pool="pages")
        if route is None:
            raise NotFound("that item is not a collected post", code="unknown_post", field="item_id")
        return await self.moderate(stream_of(route.event_id, route.session_id), route.post_row, "remove", by)

    async def add_rule(self, event_id: str, kind: str, value: str, by: str) -> int:
        """Add an event rule and apply it to what waits: allow_author approves the author's
        waiting posts, block_author and block_word reject matching waiting posts. Returns how
        many waiting posts it decided."""
        if kind not in RULE_KINDS:
            raise BadRequest(
                f"kind must be one of {', '.join(RULE_KINDS)}", code="invalid_field", field="kind"
            )
        value = value.strip().lower()
        if not value or len(value) > 200:
            raise BadRequest("value must be 1 to 200 characters", code="invalid_field", field="value")
        if kind != "block_word" and ":" not in value:
            raise BadRequest(
                "an account is network:handle, e.g. mastodon:ana@example.social",
                code="invalid_field",
                field="value",
            )

        async def op(tx: Tx) -> list[str]:
            if await tx.get_event(event_id) is None:
                raise NotFound(f"no event {event_id!r}", code="unknown_event")
            await tx.add_feed_rule(event_id, kind, value, by)
            actor = await _actor_name(tx, event_id, by)
            touched = []
            for route in await tx.list_social_routes(event_id=event_id, state="pending", limit=None):
                post = route.post
                hit = value in author_keys(post) if kind != "block_word" else value in post.text.lower()
                if not hit:
                    continue
                stream_id = stream_of(event_id, route.session_id)
                if kind == "allow_author":
                    if not route.session_id:
                        await tx.ensure_event_feed(event_id)
                    item = await publish(tx, route.post_row, post, stream_id)
                    await tx.set_social_route(
                        route.post_row,
                        event_id,
                        route.session_id,
                        state="approved",
                        item_id=item.id,
                        decided_by=by,
                    )
                else:
                    await tx.set_social_route(
                        route.post_row,
                        event_id,
                        route.session_id,
                        state="rejected",
                        item_id=None,
                        decided_by=by,
                    )
                # In the moderation ledger as the rule's author's decision, the rule as its reason.
                # The stream's session exists, or else (the event's feed, not made yet) the
                # event's own entry.
                record = (
                    functools.partial(tx.record_moderation, session_id=stream_id)
                    if route.session_id or kind == "allow_author"
                    else functools.partial(tx.record_event_moderation, event_id=event_id)
                )
                await record(
                    actor=actor,
                    action="approve" if kind == "allow_author" else "reject",
                    target_kind="post",
                    target_id=route.post_row,
                    reason=f"rule: {kind} {value}",
                )
                touched.append(stream_id)
            return touched

        touched = await self.db.write(op)
        for stream_id in set(touched):
            queue_changed(self.hub, stream_id)
        return len(touched)

    async def remove_rule(self, event_id: str, kind: str, value: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.remove_feed_rule(event_id, kind, value.strip().lower())

        await self.db.write(op)

    async def rules(self, event_id: str) -> list[tuple[str, str]]:
        return await self.db.read(lambda r: r.feed_rules(event_id), pool="pages")

    async def set_policy(self, event_id: str, session_id: str, moderate: bool) -> None:
        async def op(tx: Tx) -> None:
            if await tx.get_event(event_id) is None:
                raise NotFound(f"no event {event_id!r}", code="unknown_event")
            await tx.set_feed_policy(event_id, session_id, moderate)

        await self.db.write(op)

    async def moderates(self, event_id: str, session_id: str) -> bool:
        policies = await self.db.read(lambda r: r.feed_policies(event_id), pool="pages")
        return policies.get(session_id, policies.get("", self.settings.feeds.moderate_by_default))


async def _actor_name(tx: Tx, event_id: str, ref: str) -> str:
    """The name the moderation ledger shows for a moderator's ref ("account:<id>" or an invite id)."""
    if ref.startswith("account:") and ref[8:].isdigit():
        account = await tx.get_account(int(ref[8:]))
        return account.username if account is not None else ref
    return next((i.name for i in await tx.list_invites(event_id) if i.id == ref), ref)

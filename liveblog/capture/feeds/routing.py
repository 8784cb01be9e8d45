"""Where a collected post goes, and how it enters a stream: the routing rule, the state a routed
post starts in (the event's rules and the session's policy), and publishing an approved post as
an item. Shared by ingest (service.py) and moderation (moderation.py).

Routing rule (docs/feeds.md): a post carrying a session's own hashtag goes to that session; a
post that matches only the event's hashtags or search terms goes to every live session of the
event at that moment, or, when none is live, to the event's own feed. A route to the event's
feed has session id '' in `social_routes`; its approved posts go into the event's feed stream
(a hidden sessions row of kind 'event_feed', `models.event_feed_id`), moderated, sequenced and
served exactly like a session's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from liveblog.capture import hashtags
from liveblog.capture.feeds.base import EventTarget, hashtags_in
from liveblog.capture.feeds.render import render_post
from liveblog.models import Item, Session, SocialPost, event_feed_id
from liveblog.storage import Tx
from liveblog.streams.hub import StreamHub

# A post made this long before its session was seen going live still belongs to it: networks'
# clocks differ from ours, RSS dates have whole seconds, and people post as the talk begins.
LIVE_GRACE = timedelta(seconds=60)
DELETED_FIELDS = {"deleted": True, "body": "", "html": "", "data": {}}


def _posted(post: SocialPost) -> datetime | None:
    try:
        moment = datetime.fromisoformat(post.posted_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _made_by(made: datetime, moment: datetime) -> bool:
    """Made at or before `moment` for certain. A time in whole seconds (RSS dates, X's created_at)
    may stand for any instant of its second, so it counts as the end of that second: a post from
    the second in which a session ended is not taken as the session's."""
    return (made + timedelta(seconds=1) if made.microsecond == 0 else made) <= moment


def stream_of(event_id: str, session_id: str) -> str:
    """The stream a route's approved post goes to: the session's, or the event's own feed."""
    return session_id or event_feed_id(event_id)


def route_session(stream: Session) -> str:
    """The inverse: a stream's session id as routes store it ('' for the event's own feed)."""
    return "" if stream.is_event_feed else stream.id


def author_key(post: SocialPost) -> str:
    return f"{post.network}:{post.author_handle.lower()}"


def author_keys(post: SocialPost) -> set[str]:
    """Every name an author rule may give this post's author: network:handle, and for Bluesky
    also network:DID (a post shows the DID until its author is resolved, and a moderator may
    have blocked or allowed that)."""
    keys = {author_key(post)}
    if post.network == "bluesky" and post.post_id.startswith("at://did:"):
        keys.add(f"bluesky:{post.post_id.split('/')[2].lower()}")
    return keys


def decide(post: SocialPost, rules: list[tuple[str, str]], moderate: bool) -> str:
    """The state a newly routed post starts in, from the event's rules and the session's policy."""
    keys = author_keys(post)
    text = post.text.lower()
    if any(kind == "block_author" and value in keys for kind, value in rules):
        return "rejected"
    if any(kind == "block_word" and value in text for kind, value in rules):
        return "rejected"
    if any(kind == "allow_author" and value in keys for kind, value in rules):
        return "approved"
    return "pending" if moderate else "approved"


def route_post(post: SocialPost, targets: list[EventTarget], event_id: str | None) -> list[tuple[str, str]]:
    """Where a post goes (the routing rule, docs/feeds.md): (event id, session id) pairs, session
    id '' for the event's own feed; `event_id` when a network searched for that event's query."""

    # Tags compare as the post's network compares them (Mastodon folds accents too).
    def keys(tags: Iterable[str]) -> set[str]:
        return {hashtags.key_for(post.network, t) for t in tags}

    tags = keys(post.hashtags) | keys(hashtags_in(post.text))
    routes: list[tuple[str, str]] = []
    for target in targets:
        if event_id is not None and target.event_id != event_id:
            continue
        own = [s.session_id for s in target.sessions if keys(s.own_tags) & tags]
        if own:
            routes += [(target.event_id, s) for s in own]
            continue
        matches = (
            event_id is not None  # the network searched for this event's query: it matched
            or bool(keys(target.tags) & tags)
            or any(hashtags.term_in(term, post.text) for term in target.terms)
        )
        if matches:
            # The sessions live when the post was made: one made in a break (or before a
            # session went live) goes to the event's own feed, even if collected later.
            made = _posted(post)
            live = [
                s.session_id
                for s in target.sessions
                if s.live and (made is None or s.live_since is None or made >= s.live_since - LIVE_GRACE)
            ]
            # Made while a session now ended was live, collected after its end: still its post.
            live += [
                e.session_id
                for e in target.ended
                if made is not None and e.live_since - LIVE_GRACE <= made and _made_by(made, e.ended_at)
            ]
            routes += [(target.event_id, s) for s in live] or [(target.event_id, "")]
    return routes


def queue_changed(hub: StreamHub, stream_id: str) -> None:
    """Tell a stream's moderators its queue changed: an unsequenced `feed.queue` message that
    carries no post content (a post nobody approved must not reach viewers)."""
    hub.send_unsequenced(stream_id, {"type": "feed.queue", "session_id": stream_id})


async def publish(tx: Tx, post_row: int, post: SocialPost, session_id: str) -> Item:
    item, _ = await tx.insert_item(
        session_id=session_id,
        kind="social",
        client_id=f"social:{post.network}:{post.post_id}"[:200],
        author=post.author_name or post.author_handle,
        author_ref=None,
        body=post.text,
        html=render_post(post),
        key_point=False,
        data=item_data(post, post_row),
        typed_at=post.posted_at,
    )
    return item


def item_data(post: SocialPost, post_row: int) -> dict[str, Any]:
    return {
        "network": post.network,
        "post_id": post.post_id,
        "post_row": post_row,
        "handle": post.author_handle,
        "url": post.url,
        "posted_at": post.posted_at,
    }

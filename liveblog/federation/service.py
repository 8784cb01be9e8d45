"""The fediverse side of Liveblog (docs/federation.md): actors and discovery answered from
storage, incoming activities verified and acted on, our activities signed and delivered.

Keys: one RSA key pair for the instance, kept in the database (storage/federation.py), and one
key id per actor (`<actor>#main-key`), each actor document carrying the same public key. A
remote server checks that the key id is the actor's and belongs to it, which holds; one key
means one key generation (not one per session created) and one private key to keep.

Remote documents (actors, keys) are fetched through capture/outbound.py's client: private and
loopback addresses refused unless `federation.allow_private_addresses`, time and size capped,
at most FETCHES_PER_HOST at once per remote host. Fetches are signed with the instance actor's
key, for servers in authorized-fetch mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import date
from html import escape
from typing import Any
from urllib.parse import urlsplit

from liveblog import __version__
from liveblog.archive.comments import COMMENT_CHARS, Limiter
from liveblog.capture.feeds.media import MediaFetcher
from liveblog.capture.outbound import OutboundClient, OutboundError
from liveblog.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited, TooLarge, Unauthorized
from liveblog.federation import documents as ap
from liveblog.federation.sideloop import SideLoop
from liveblog.federation.signatures import (
    SignatureError,
    check,
    check_message,
    new_key_pair,
    parse,
    parse_message_signature,
    sign,
)
from liveblog.lifecycle import Supervisor
from liveblog.models import Comment, Event, Session
from liveblog.settings import Settings
from liveblog.storage import Store, Unit
from liveblog.text import sanitise, xml_chars

log = logging.getLogger(__name__)

FETCHES_PER_HOST = 2  # a remote server sees at most this many of our fetches at once
# Webmentions accepted and waiting for their source to be read: past this many, 429 (a sender
# tries again later). Anyone may send one, and each costs a fetch (capped in size and time).
MAX_PENDING_MENTIONS = 100
OUTBOX_PAGE = 20  # activities per outbox page, as Mastodon's
# Incoming activities per remote server and minute: a busy instance with many followers replying
# to a keynote stays well under it; past it, 429 (senders retry later).
INBOX_PER_MINUTE = 600
ACCEPT_HEADER = (
    'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
)


class HostSlots:
    """At most `size` of our fetches at once per remote host. A host is forgotten once none of
    its fetches runs or waits: anyone can name hosts (a key id, a Webmention's source)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._hosts: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, host: str) -> AsyncIterator[None]:
        slot, users = self._hosts.setdefault(host, (asyncio.Semaphore(self.size), [0]))
        users[0] += 1
        try:
            async with slot:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._hosts[host]

    def busy(self) -> list[str]:
        """The hosts with fetches under way or waiting."""
        return sorted(self._hosts)


class Federation:
    name = "federation"

    def __init__(self, db: Store, settings: Settings) -> None:
        self.db = db
        self.settings = settings.federation
        self.public_url = settings.server.public_url.rstrip("/")
        self.keys: tuple[str, str] | None = None  # (public PEM, private PEM)
        self.client: OutboundClient | None = None
        self.host_slots = HostSlots(FETCHES_PER_HOST)  # our fetches under way, per remote host
        # Our address as remote servers know it: server.public_url, else the first request's
        # (publishing runs in the background, where there is no request to ask).
        self.known_base = self.public_url
        self.queued: Callable[[], None] = lambda: None  # wakes the deliverer (delivery.py)
        self.base_learnt: Callable[[], None] = lambda: None  # wakes the publisher (delivery.py)
        self.switched_at = -1.0  # when an event's federation was last switched here (monotonic)
        self.media: MediaFetcher | None = None  # repliers' avatars
        self.pages: OutboundClient | None = None  # Webmentions' sources
        self._mentions: set[asyncio.Task[None]] = set()
        self._side: SideLoop | None = None  # deliveries' HTTP, beside the server's loop
        self._poster: OutboundClient | None = None  # lives on the side loop
        # Activities accepted per remote server: a burst of replies is fine, a flood is not.
        self.per_host = Limiter(((INBOX_PER_MINUTE, 60.0),))

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self, supervisor: Supervisor) -> None:
        self.keys = await self.db.read(lambda r: r.instance_key())
        if self.keys is None:
            public, private = await asyncio.to_thread(new_key_pair)  # ~50 ms of CPU: off the loop

            async def keep(tx: Unit) -> tuple[str, str]:
                return await tx.put_instance_key(public, private)

            self.keys = await self.db.write(keep)  # another process may have made one first: its
        self.client = self._outbound()
        self.pages = OutboundClient(
            "webmention",
            allow_private=self.settings.allow_private_addresses,
            timeout=self.settings.request_timeout_seconds,
            max_bytes=self.settings.max_document_bytes,
            headers={"accept": "text/html", "user-agent": f"Liveblog/{__version__} (webmention)"},
        )
        self.media = MediaFetcher(
            max_bytes=self.settings.max_document_bytes * 5,
            timeout=self.settings.request_timeout_seconds,
            allow_private=self.settings.allow_private_addresses,
        )

    def _outbound(self) -> OutboundClient:
        return OutboundClient(
            "federation",
            allow_private=self.settings.allow_private_addresses,
            timeout=self.settings.request_timeout_seconds,
            max_bytes=self.settings.max_document_bytes,
            headers={"accept": ACCEPT_HEADER, "user-agent": f"Liveblog/{__version__}"},
        )

    async def close(self) -> None:
        if self._side is not None:
            if self._poster is not None:
                await self._side.run(self._poster.aclose())
            self._side.stop()
            self._side = None
        for task in list(self._mentions):
            task.cancel()
        await asyncio.gather(*self._mentions, return_exceptions=True)
        if self.pages is not None:
            await self.pages.aclose()
        if self.media is not None:
            await self.media.close()
        if self.client is not None:
            await self.client.aclose()

    def health(self) -> dict[str, Any]:
        return {"ok": True, "base": self.known_base}

    def base(self, request_base: str) -> str:
        """Our address as remote servers know it: server.public_url, else the request's."""
        base = self.public_url or request_base.rstrip("/")
        if not self.known_base:
            self.known_base = base
            self.base_learnt()
        return base

    @property
    def public_pem(self) -> str:
        assert self.keys is not None, "the federation component is not open"
        return self.keys[0]

    # -- documents -------------------------------------------------------------------------------

    async def actor(self, base: str, kind: str, actor_id: str) -> dict[str, Any]:
        """An event's or session's actor document; NotFound when there is none or its event
        switched federation off."""

        async def fn(r: Unit) -> dict[str, Any]:
            if kind == "event":
                event = await r.get_event(actor_id)
                if event is None or not await r.federation_on(event.id):
                    raise NotFound(f"no account {actor_id!r}")
                return ap.event_actor(base, event, await r.handle_of("event", event.id), self.public_pem)
            session = await r.get_session(actor_id)
            if session is None or session.is_event_feed or session.cancelled:
                raise NotFound(f"no account {actor_id!r}")
            event = await r.get_event(session.event_id)
            if event is None or not await r.federation_on(event.id):
                raise NotFound(f"no account {actor_id!r}")
            handle = await r.handle_of("session", session.id)
            return ap.session_actor(base, session, event, handle, self.public_pem)

        return await self.db.read(fn, pool="pages")

    async def webfinger(self, base: str, resource: str) -> dict[str, Any]:
        """The WebFinger answer for `acct:NAME@HOST` (or an actor's URL)."""
        host = ap.host_of(base)
        target: tuple[str, str] | None
        if resource.startswith("acct:"):
            name, _, asked_host = resource[5:].lstrip("@").rpartition("@")
            name = name.lower()
            if asked_host.lower() != host:
                raise NotFound(f"{asked_host[:100]!r} is not this server ({host})")
            if not ap.NAME.match(name):
                raise NotFound("no such account")
            if name == ap.INSTANCE_HANDLE:
                url = ap.instance_url(base)
                return ap.webfinger(name, host, url, f"{base}/")
            target = await self.db.read(lambda r: r.actor_by_handle(name), pool="pages")
        elif resource.startswith(("http://", "https://")):
            target = ap.local_actor(base, resource)
        else:
            raise BadRequest("resource must be acct:NAME@HOST or an actor's URL", field="resource")
        if target is None:
            raise NotFound("no such account")
        kind, actor_id = target
        doc = await self.actor(base, kind, actor_id)  # NotFound when switched off
        return ap.webfinger(doc["preferredUsername"], host, doc["id"], doc["url"])

    async def nodeinfo(self) -> dict[str, Any]:
        actors = await self.db.read(lambda r: r.count_actors(), pool="pages")
        return ap.nodeinfo(__version__, actors)

    async def followers_collection(self, base: str, kind: str, actor_id: str) -> dict[str, Any]:
        await self.actor(base, kind, actor_id)  # NotFound as the actor
        total = await self.db.read(lambda r: r.count_followers(kind, actor_id), pool="pages")
        # Who follows is not published, as Mastodon lets its users choose: only how many.
        return ap.collection(f"{ap.actor_url(base, kind, actor_id)}/followers", total)

    async def outbox(
        self, base: str, kind: str, actor_id: str, page: bool, before: int | None
    ) -> dict[str, Any]:
        """The outbox: an OrderedCollection of what the actor published (Creates), newest
        first, in pages of OUTBOX_PAGE."""
        await self.actor(base, kind, actor_id)  # NotFound as the actor
        url = f"{ap.actor_url(base, kind, actor_id)}/outbox"
        if not page:
            total = await self.db.read(lambda r: r.count_outbox(kind, actor_id), pool="pages")
            doc = ap.collection(url, total)
            doc["first"] = f"{url}?page=true"
            return doc
        rows = await self.db.read(lambda r: r.outbox(kind, actor_id, before, OUTBOX_PAGE), pool="pages")
        items = [json.loads(body) for _, body in rows]
        for item in items:
            item.pop("@context", None)
        after = f"{url}?page=true&before={rows[-1][0]}" if len(rows) == OUTBOX_PAGE else None
        here = f"{url}?page=true" + (f"&before={before}" if before is not None else "")
        return ap.outbox_page(here, items, after)

    async def note(self, base: str, item_id: int) -> dict[str, Any] | None:
        """A published note as it is now (None: gone, a Tombstone's place); NotFound if never published."""

        async def fn(r: Unit) -> dict[str, Any] | None:
            state = await r.published_note(item_id)
            if state is None:
                raise NotFound("no such note")
            item = await r.get_item(item_id)
            if state[1] or item is None or item.deleted:
                return None
            session = await r.get_session(item.session_id)
            if session is None or not await r.federation_on(session.event_id):
                return None
            media = [src.rsplit("/", 1)[-1] for src, _ in ap.images_of(item.html)]
            doc = ap.note(
                base,
                item_id=item.id,
                session_id=item.session_id,
                body=item.body,
                html=item.html,
                key_point=item.key_point,
                published=item.typed_at,
                updated=item.updated_at if item.version > 1 else None,
                media_types=await r.media_types(media),
            )
            counts = (await r.reaction_counts(item.session_id)).get(item.id, {})
            doc["likes"] = {"type": "Collection", "totalItems": counts.get("Like", 0)}
            doc["shares"] = {"type": "Collection", "totalItems": counts.get("Announce", 0)}
            return {"@context": ap.NOTE_CONTEXT, **doc}

        return await self.db.read(fn, pool="pages")

    # -- fetching --------------------------------------------------------------------------------

    async def fetch(self, base: str, url: str) -> dict[str, Any]:
        """A remote ActivityPub document, fetched with a signed GET; OutboundError if it cannot
        be had or is not a JSON object."""
        assert self.client is not None and self.keys is not None
        private, signer = self.keys[1], ap.key_id(ap.instance_url(base))
        host = urlsplit(url).netloc.lower()
        async with self.host_slots(host):
            response = await self.client.get(url, headers=lambda u: sign("GET", u, private, signer))
        if response.status_code != 200:
            raise OutboundError(f"{url[:200]} answered {response.status_code}")
        try:
            doc = json.loads(response.content)
        except ValueError:
            raise OutboundError(f"{url[:200]} did not answer JSON") from None
        if not isinstance(doc, dict):
            raise OutboundError(f"{url[:200]} did not answer a JSON object")
        return doc

    async def remote_key(self, base: str, key_id: str) -> tuple[str, str]:
        """(owner, public PEM) of a remote key, fetched from its id and kept: the document there
        is the key's actor (Mastodon), or the key itself naming its owner, whose actor must name
        it back. The key and its owner must be on one host."""
        doc = await self.fetch(base, key_id)
        key = _key_in(doc, key_id)
        if key is not None:
            owner = ap.id_of(doc)
        elif doc.get("id") == key_id and isinstance(doc.get("owner"), str):
            owner = str(doc["owner"])
            key = _key_in(await self.fetch(base, owner), key_id)
        if key is None or not isinstance(key.get("publicKeyPem"), str):
            raise OutboundError(f"no public key {key_id[:200]} there")
        if ap.id_of(key.get("owner")) not in ("", owner):
            raise OutboundError("the key names another owner")
        if urlsplit(owner).netloc.lower() != urlsplit(key_id).netloc.lower():
            raise OutboundError("the key and its owner are on different hosts")
        pem = str(key["publicKeyPem"])

        async def keep(tx: Unit) -> None:
            await tx.put_remote_key(key_id, owner, pem)

        await self.db.write(keep)
        return owner, pem

    # -- receiving -------------------------------------------------------------------------------

    async def verified_sender(
        self, base: str, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> str:
        """The actor whose key signed this request (Unauthorized when none did). A cached key
        that fails is fetched again once: the actor may have a new one."""
        header = headers.get("signature")
        if not header:
            raise Unauthorized("a signed request is required (HTTP Signatures)", code="unsigned")
        try:
            if "signature-input" in headers:  # RFC 9421
                message = parse_message_signature(headers["signature-input"], header)
                key_id = message.key_id

                def verify(pem: str) -> None:
                    check_message(method, base + target, headers, body, message, pem)

            else:  # draft-cavage, as Mastodon signs
                params = parse(header)
                key_id = params["keyId"]

                def verify(pem: str) -> None:
                    check(method, target, headers, body, params, pem)

            cached = await self.db.read(lambda r: r.remote_key(key_id))
            if cached is not None:
                try:
                    verify(cached[1])
                    return cached[0]
                except SignatureError:
                    pass  # perhaps a new key: fetch it again
            owner, pem = await self.remote_key(base, key_id)
            verify(pem)
            return owner
        except SignatureError as exc:
            raise Unauthorized(f"bad signature: {exc}", code="bad_signature") from None
        except OutboundError as exc:
            raise Unauthorized(f"the signing key cannot be had: {exc}", code="bad_signature") from None

    async def receive(
        self,
        base: str,
        inbox_of: tuple[str, str] | None,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> str:
        """Verify and act on one incoming activity; what was done, for the log. `inbox_of` is
        the actor whose own inbox it came to (None: the shared inbox)."""
        if len(body) > self.settings.max_document_bytes:
            raise TooLarge("that activity is too large")
        try:
            activity = json.loads(body)
        except ValueError:
            raise BadRequest("the body is not JSON") from None
        if not isinstance(activity, dict) or not isinstance(activity.get("type"), str):
            raise BadRequest("the body is not an activity")
        actor = ap.id_of(activity.get("actor"))
        kind = activity["type"]
        self.per_host.check(urlsplit(actor).netloc.lower() or "?")  # RateLimited: 429
        if kind == "Delete" and ap.id_of(activity.get("object")) == actor:
            # An account deleted elsewhere, announced to every server it knew. Its key went with
            # it: unless we kept the key, it cannot be checked, and is ignored (as Mastodon does).
            try:
                sender = await self.verified_sender(base, method, target, headers, body)
            except Unauthorized:
                return "Delete of an account we cannot check ignored"
            if sender != actor:
                raise Forbidden("the signing key does not belong to the activity's actor", code="wrong_actor")
            gone, replies = await self.db.write(lambda tx: _forget_account(tx, actor))
            return f"account {actor} deleted: {gone} follows ended, {replies} replies deleted"
        sender = await self.verified_sender(base, method, target, headers, body)
        if sender != actor:
            raise Forbidden("the signing key does not belong to the activity's actor", code="wrong_actor")
        if kind not in ("Undo", "Delete") and await self.db.read(
            lambda r: r.blocked(actor, urlsplit(actor).netloc.lower())
        ):
            return f"{kind} from a blocked account ignored"
        if kind == "Follow":
            return await self._follow(base, inbox_of, activity)
        if kind == "Undo":
            return await self._undo(base, activity)
        if kind == "Create":
            return await self._reply(base, activity)
        if kind == "Update":
            return await self._edit_reply(activity)
        if kind == "Delete":
            return await self._delete_reply(activity)
        if kind in ("Like", "Announce"):
            return await self._react(base, activity)
        return f"{kind} ignored"

    async def _follow(self, base: str, inbox_of: tuple[str, str] | None, follow: dict[str, Any]) -> str:
        followed = ap.id_of(follow.get("object"))
        local = ap.local_actor(base, followed)
        if local is None or (inbox_of is not None and local != inbox_of):
            raise NotFound("that Follow is for no account of ours")
        await self.actor(base, *local)  # NotFound when it does not exist or is switched off
        follower = ap.id_of(follow.get("actor"))
        follow_id = ap.id_of(follow)
        if not follow_id:
            raise BadRequest("the Follow has no id")
        try:
            remote = await self.fetch(base, follower)
        except OutboundError as exc:
            raise BadRequest(f"the follower's account cannot be read: {exc}") from None
        inbox = remote.get("inbox")
        if not isinstance(inbox, str) or not inbox.startswith(("https://", "http://")):
            raise BadRequest("the follower's account has no inbox")
        endpoints = remote.get("endpoints")
        shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
        handle = _handle(follower, remote)
        row = {
            "follower": follower,
            "handle": handle[:300],
            "inbox": inbox,
            "shared_inbox": shared if isinstance(shared, str) and shared.startswith("http") else inbox,
            "follow_id": follow_id,
        }

        accept = ap.accept(base, followed, follow)

        async def store(tx: Unit) -> None:
            await tx.start_cursors(local[0], local[1])  # before the first follower: from now on
            await tx.add_follower(local[0], local[1], row)
            await tx.host_alive(urlsplit(inbox).netloc.lower())  # a server given up on is back
            await tx.publish_activity(
                accept["id"], local[0], local[1], "Accept", None, _json(accept), [inbox]
            )

        await self.db.write(store)
        self.queued()
        return f"{follower} follows {followed}"

    async def _undo(self, base: str, undo: dict[str, Any]) -> str:
        inner = undo.get("object")
        actor = ap.id_of(undo.get("actor"))
        if isinstance(inner, dict) and inner.get("type") == "Follow":
            if ap.id_of(inner.get("actor")) != actor:
                raise Forbidden("an Undo may only undo its actor's own Follow", code="wrong_actor")
            local = ap.local_actor(base, ap.id_of(inner.get("object")))
            if local is None:
                return "Undo of a Follow of no account of ours ignored"
            removed = await self.db.write(lambda tx: tx.remove_follower(local[0], local[1], actor))
            return f"{actor} unfollowed" if removed else "Undo of an unknown Follow ignored"
        inner_id = ap.id_of(inner)

        async def unreact(tx: Unit) -> bool:
            item_id = await tx.remove_reaction(inner_id, actor)
            if item_id is not None:
                await _show_reactions(tx, item_id)
            return item_id is not None

        if isinstance(inner, dict) and inner.get("type") in ("Like", "Announce"):
            gone = await self.db.write(unreact)
            return f"{inner['type']} undone" if gone else "Undo of an unknown reaction ignored"
        ended = await self.db.write(lambda tx: tx.unfollow(actor, inner_id))
        if not ended:  # an Undo naming a like or boost by its id only
            ended = await self.db.write(unreact)
        return f"{actor} undid {inner_id}" if ended else "Undo ignored"

    # -- replies, reactions ------------------------------------------------------------------------

    async def _reply(self, base: str, create: dict[str, Any]) -> str:
        """A Note in reply to one of our notes (or to a reply kept as a comment) becomes a comment
        on that session, under the event's comment policy, written as @user@instance."""
        actor = ap.id_of(create.get("actor"))
        note = create.get("object")
        if not isinstance(note, dict) or note.get("type") != "Note":
            return "Create of something other than a Note ignored"
        object_id = ap.id_of(note)
        in_reply_to = ap.id_of(note.get("inReplyTo"))
        item_id = ap.local_note(base, in_reply_to)
        if item_id is None and not in_reply_to:
            return "a Note that replies to nothing of ours ignored"
        if urlsplit(object_id).netloc.lower() != urlsplit(actor).netloc.lower():
            raise Forbidden("a Note must be on its author's server", code="wrong_actor")
        if ap.id_of(note.get("attributedTo")) not in ("", actor):
            raise Forbidden("the Note is attributed to someone else", code="wrong_actor")
        html, text, body = _content(note)
        if not text:
            return "an empty reply ignored"
        if len(text) > COMMENT_CHARS:
            raise BadRequest(f"a reply is at most {COMMENT_CHARS} characters", code="too_long")
        try:
            author = await self.fetch(base, actor)
        except OutboundError as exc:
            raise BadRequest(f"the author's account cannot be read: {exc}") from None
        handle = _handle(actor, author)
        # The author's avatar, fetched before the comment is written: a page shows a comment live
        # as its change arrives, with the avatar as it is then (not our stand-in, kept an hour).
        avatar = await self._avatar_to_copy(actor, author, item_id, in_reply_to)

        async def op(tx: Unit) -> str:
            if await tx.reply_of(object_id) is not None:
                return "a reply already kept ignored"
            parent_id = None
            if item_id is not None:
                state = await tx.published_note(item_id)
                item = await tx.get_item(item_id)
                if state is None or state[1] or item is None:
                    return "a reply to a note we did not publish ignored"
                session_id = item.session_id
            else:
                known = await tx.reply_of(in_reply_to)
                parent = None if known is None else await tx.get_comment(known[0])
                if parent is None or not parent.public:
                    return "a Note that replies to nothing of ours ignored"
                session_id, parent_id = parent.session_id, parent.id
            session = await tx.get_session(session_id)
            if session is None or not await tx.federation_on(session.event_id):
                return "a reply to a session not federated ignored"
            account_id = await tx.remote_author(actor, handle)
            if await tx.account_banned(account_id) or await tx.thread_locked(session_id):
                return "a reply from a banned author or to a locked thread ignored"
            premoderated = await tx.event_premoderation(session.event_id)
            if avatar is not None and not await tx.author_avatar(actor):
                await tx.set_author_avatar(actor, await tx.insert_media(session_id, *avatar, None))
            comment, _ = await tx.insert_comment(
                session_id=session_id,
                parent_id=parent_id,
                account_id=account_id,
                author=handle,
                body=body,
                html=html,
                state="pending" if premoderated else "visible",
                ip="",
            )
            await tx.add_reply(object_id, comment.id, actor)
            return f"reply from {handle} kept as comment {comment.id}"

        return await self.db.write(op)

    async def avatar_of(self, account_id: int) -> str:
        """The media id of the avatar of a replier's account ('' when none)."""
        return await self.db.read(lambda r: r.avatar_of_account(account_id), pool="pages")

    async def _avatar_to_copy(
        self, actor: str, author: dict[str, Any], item_id: int | None, in_reply_to: str
    ) -> tuple[str, bytes] | None:
        """The author's avatar (content type, cleaned bytes) to copy to our media with their
        reply, fetched under capture/outbound.py's rules; None when copied already, when there
        is none, or when the reply answers nothing of ours (it will be ignored)."""
        icon = author.get("icon")
        url = ap.id_of(icon.get("url")) if isinstance(icon, dict) else ""
        if not url or self.media is None:
            return None

        async def wanted(r: Unit) -> bool:
            if await r.author_avatar(actor):
                return False
            return item_id is not None or await r.reply_of(in_reply_to) is not None

        if not await self.db.read(wanted):
            return None
        return await self.media.fetch(url)

    async def _edit_reply(self, update: dict[str, Any]) -> str:
        actor = ap.id_of(update.get("actor"))
        note = update.get("object")
        if not isinstance(note, dict) or note.get("type") != "Note":
            return "Update of something other than a Note ignored"
        html, text, body = _content(note)
        if not text or len(text) > COMMENT_CHARS:
            raise BadRequest(f"a reply is 1 to {COMMENT_CHARS} characters", code="too_long")
        object_id = ap.id_of(note)

        async def op(tx: Unit) -> str:
            comment = await _authors_reply(tx, object_id, actor)
            if comment is None:
                return "Update of no reply of its author's ignored"
            await tx.update_comment(comment.id, {"body": body, "html": html, "edited": True})
            return f"reply {comment.id} edited"

        return await self.db.write(op)

    async def _delete_reply(self, delete: dict[str, Any]) -> str:
        actor = ap.id_of(delete.get("actor"))
        object_id = ap.id_of(delete.get("object"))

        async def op(tx: Unit) -> str:
            comment = await _authors_reply(tx, object_id, actor)
            if comment is None:
                return "Delete of no reply of its author's ignored"
            await tx.update_comment(
                comment.id, {"deleted": True, "body": "", "html": ""}, op="comment.deleted"
            )
            return f"reply {comment.id} deleted by its author"

        return await self.db.write(op)

    async def _react(self, base: str, activity: dict[str, Any]) -> str:
        item_id = ap.local_note(base, ap.id_of(activity.get("object")))
        if item_id is None:
            return f"{activity['type']} of something not ours ignored"
        actor = ap.id_of(activity.get("actor"))
        kind = str(activity["type"])

        async def op(tx: Unit) -> bool:
            state = await tx.published_note(item_id)
            if state is None or state[1]:
                return False
            if not await tx.add_reaction(ap.id_of(activity), actor, kind, item_id):
                return False
            await _show_reactions(tx, item_id)
            return True

        return f"{kind} counted" if await self.db.write(op) else f"{kind} ignored"

    # -- Webmention (W3C) --------------------------------------------------------------------------

    def webmention(self, base: str, source: str, target: str) -> None:
        """Accept a Webmention of one of our session or knowledge pages: checked now (400 when
        it cannot be one), its source fetched and read in the background."""
        source, target = source.strip(), target.strip().split("#", 1)[0]
        if not source.startswith(("https://", "http://")) or len(source) > 2000:
            raise BadRequest("source must be an http(s) URL", field="source")
        session_id = ap.local_page(base, target)
        if session_id is None:
            raise BadRequest("target is not a session or knowledge page of this site", field="target")
        if source.split("#", 1)[0] == target:
            raise BadRequest("source and target are the same page", field="source")
        if len(self._mentions) >= MAX_PENDING_MENTIONS:
            raise RateLimited("too many Webmentions are waiting to be read: try again later")
        task = asyncio.create_task(self._take_mention(source, target, session_id))
        self._mentions.add(task)
        task.add_done_callback(self._mentions.discard)

    async def _take_mention(self, source: str, target: str, session_id: str) -> None:
        """A Webmention's source, fetched (capture/outbound.py's rules): while it links to the
        target, a pending comment on the session (moderated, always); once it no longer does,
        that comment is deleted, as the W3C recommendation says."""
        assert self.pages is not None
        host = urlsplit(source).netloc.lower()
        try:
            async with self.host_slots(host):  # a flood naming one site reads it a few pages at a time
                page = await self.pages.get(source)
            html = page.content.decode(page.encoding or "utf-8", "replace") if page.status_code == 200 else ""
            html = xml_chars(html)  # its title becomes a comment's text
        except OutboundError as exc:
            log.info("webmention source %s not read: %s", source[:200], exc)
            return
        title, links = ap.page_links(html, source)
        mentions = target in links or target.replace("/archive/sessions/", "/sessions/") in links
        comment_html = sanitise(
            f'<p>Mentioned in <a href="{escape(source)}">{escape(title or source)}</a></p>'
        )
        text = ap.markdown_text(comment_html)  # its body: the link kept (docs/federation.md)

        async def op(tx: Unit) -> str:
            known = await tx.reply_of(source)
            if known is not None:
                comment = await tx.get_comment(known[0])
                if comment is None or comment.deleted:
                    return "known"
                if not mentions:
                    await tx.update_comment(
                        comment.id, {"deleted": True, "body": "", "html": ""}, op="comment.deleted"
                    )
                    return "withdrawn"
                await tx.update_comment(comment.id, {"body": text, "html": comment_html, "edited": True})
                return "updated"
            session = await tx.get_session(session_id)
            if not mentions or session is None or await tx.blocked(source, host):
                return "ignored"
            account_id = await tx.remote_author(f"webmention:{host}", host)
            if await tx.account_banned(account_id) or await tx.thread_locked(session_id):
                return "ignored"
            comment, _ = await tx.insert_comment(
                session_id=session_id,
                parent_id=None,
                account_id=account_id,
                author=host,
                body=text,
                html=comment_html,
                state="pending",
                ip="",
            )
            await tx.add_reply(source, comment.id, f"webmention:{host}")
            return "kept"

        log.info("webmention from %s: %s", source[:200], await self.db.write(op))

    # -- blocks --------------------------------------------------------------------------------

    async def block(self, target: str) -> tuple[str, str]:
        """Block an account (its URL) or a whole domain; (kind, target)."""
        target = target.strip()
        if target.startswith(("https://", "http://")):
            kind = "account"
            if not urlsplit(target).netloc:
                raise BadRequest("that is not an account's address", field="target")
        else:
            kind, target = "domain", target.lower().removeprefix("@").strip("/")
            if not ap.DOMAIN.match(target):
                raise BadRequest(
                    "give an account's URL (https://…) or a domain (example.social)", field="target"
                )
        await self.db.write(lambda tx: tx.block(target, kind))
        return kind, target

    async def unblock(self, target: str) -> None:
        await self.db.write(lambda tx: tx.unblock(target))

    async def blocks(self) -> list[tuple[str, str]]:
        return await self.db.read(lambda r: r.list_blocks(), pool="pages")

    # -- organisers ------------------------------------------------------------------------------

    async def organiser_view(self, event: Event, sessions: list[Session]) -> dict[str, Any]:
        """An event's switch, and its accounts with their handles and followers."""

        async def fn(r: Unit) -> dict[str, Any]:
            accounts = [("event", event.id, event.title)] + [("session", s.id, s.title) for s in sessions]
            return {
                "on": await r.federation_on(event.id),
                "accounts": [
                    {
                        "kind": kind,
                        "id": actor_id,
                        "title": title,
                        "handle": await r.handle_of(kind, actor_id),
                        "followers": await r.list_followers(kind, actor_id),
                        "reactions": await _totals(r, kind, actor_id),
                    }
                    for kind, actor_id, title in accounts
                ],
            }

        return await self.db.read(fn, pool="pages")

    async def switch(self, event_id: str, on: bool) -> None:
        await self.db.write(lambda tx: tx.set_federation(event_id, on))
        # Deliveries this process read before the switch are looked up again before they are
        # sent (delivery.py): none leaves once the organisers see "off".
        self.switched_at = time.monotonic()
        if on:
            self.queued()  # held deliveries are due now

    async def rename(self, event: Event, kind: str, actor_id: str, handle: str) -> str:
        """Give one of the event's accounts a handle of the organiser's choice (before the event
        starts: once people follow, it stays put); the handle."""
        await self._owned(event.id, kind, actor_id)
        if date.today().isoformat() >= event.starts_on:
            raise Conflict("handles can be changed only before the event starts", field="handle")
        handle = handle.strip().lower().lstrip("@")
        if not ap.HANDLE.match(handle):
            raise BadRequest(
                "a handle is 1 to 64 lower-case letters, digits, hyphens or underscores", field="handle"
            )
        if not await self.db.write(lambda tx: tx.set_handle(kind, actor_id, handle)):
            raise Conflict(f"@{handle} is taken already", field="handle")
        return handle

    async def _owned(self, event_id: str, kind: str, actor_id: str) -> None:
        async def owned(r: Unit) -> bool:
            if kind == "event":
                return actor_id == event_id
            session = await r.get_session(actor_id)
            return session is not None and session.event_id == event_id

        if kind not in ("event", "session") or not await self.db.read(owned):
            raise NotFound("no such account in this event")

    async def remove_follower(
        self, base: str, event_id: str, kind: str, actor_id: str, follower: str
    ) -> None:
        """An organiser removes a follower: the follow ends here, and a Reject of it tells their
        server to drop it too."""
        await self._owned(event_id, kind, actor_id)
        actor = ap.actor_url(base, kind, actor_id)

        async def remove(tx: Unit) -> bool:
            row = await tx.remove_follower(kind, actor_id, follower)
            if row is None:
                return False
            reject = ap.reject(base, actor, follower, row["follow_id"])
            await tx.publish_activity(
                reject["id"], kind, actor_id, "Reject", None, _json(reject), [row["inbox"]]
            )
            return True

        if not await self.db.write(remove):
            raise NotFound("that account does not follow")
        self.queued()

    # -- sending ---------------------------------------------------------------------------------

    async def post_body(self, inbox: str, signer: str, body: bytes) -> int:
        """POST one activity, signed with key id `signer`: the remote server's status code
        (OutboundError when there is none). Queued deliveries call this (delivery.py)."""
        assert self.keys is not None
        if self._side is None:
            self._side = SideLoop("liveblog-federation")
        return await self._side.run(self._post(inbox, signer, body))

    async def _post(self, inbox: str, signer: str, body: bytes) -> int:
        """On the side loop (sideloop.py): sign and POST."""
        assert self.keys is not None
        if self._poster is None:
            self._poster = self._outbound()
        headers = sign("POST", inbox, self.keys[1], signer, body)
        headers["content-type"] = ap.ACTIVITY_JSON
        response = await self._poster.post(inbox, body, headers)
        return response.status_code


async def _forget_account(tx: Unit, actor: str) -> tuple[int, int]:
    """A remote account deleted on its server: its follows end, its replies are deleted as if it
    had deleted each (their text redacted from the stream), the copy of its avatar goes.
    (follows ended, replies deleted)."""
    ended = await tx.forget_remote_actor(actor)
    deleted = 0
    for comment_id in await tx.replies_by(actor):
        comment = await tx.get_comment(comment_id)
        if comment is not None and not comment.deleted:
            await tx.update_comment(
                comment_id, {"deleted": True, "body": "", "html": ""}, op="comment.deleted"
            )
            deleted += 1
    await tx.forget_author_avatar(actor)
    return ended, deleted


async def _authors_reply(tx: Unit, object_id: str, actor: str) -> Comment | None:
    """The comment a remote Note became, if `actor` wrote it and it is not deleted."""
    known = await tx.reply_of(object_id)
    if known is None or known[1] != actor:
        return None
    comment = await tx.get_comment(known[0])
    return None if comment is None or comment.deleted else comment


async def _show_reactions(tx: Unit, item_id: int) -> None:
    """A note's likes and boosts as they now are, a change of its session's stream in the same
    transaction (docs/protocol.md, `note.reactions`): its pages show them, updated live."""
    item = await tx.get_item(item_id)
    if item is None or item.deleted:
        return
    counts = await tx.reactions_of(item_id)
    fields = {
        "item_id": item_id,
        "kind": item.kind,
        "likes": counts.get("Like", 0),
        "boosts": counts.get("Announce", 0),
    }
    await tx.append_change(item.session_id, "note.reactions", item_id, lambda seq: fields)


async def _totals(r: Unit, kind: str, actor_id: str) -> dict[str, int]:
    """A session's likes and boosts, all its notes together (an event has none of its own)."""
    totals = {"Like": 0, "Announce": 0}
    if kind == "session":
        for counts in (await r.reaction_counts(actor_id)).values():
            for name, n in counts.items():
                totals[name] = totals.get(name, 0) + n
    return totals


def _handle(actor: str, doc: dict[str, Any]) -> str:
    """@name@host of a remote account (its URL when it has no name), without the characters XML
    cannot carry: it is shown as a comment's author and in the organisers' list of followers."""
    name = doc.get("preferredUsername")
    name = xml_chars(name) if isinstance(name, str) else ""
    return f"@{name}@{urlsplit(actor).netloc}" if name else actor


def _content(note: dict[str, Any]) -> tuple[str, str, str]:
    """A remote Note's HTML, sanitised as comments are, its words (what its length is counted
    in), and its body: the same as Markdown, links kept (the HTML is rendered again from it on
    import). Input like any other, it loses the characters XML cannot carry."""
    html = sanitise(xml_chars(str(note.get("content") or "")))
    return html, ap.plain_text(html), ap.markdown_text(html)


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _key_in(doc: dict[str, Any], key_id: str) -> dict[str, Any] | None:
    keys = doc.get("publicKey")
    for key in keys if isinstance(keys, list) else [keys]:
        if isinstance(key, dict) and key.get("id") == key_id:
            return key
    return None

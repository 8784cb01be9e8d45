"""SQL for the fediverse (docs/federation.md): the instance's key pair, actors' handles, the
per-event switch, followers, and remote keys. Written once for both backends (sql.py).

The private key is read by `instance_key` only, for signing; no export or page reads it."""

from __future__ import annotations

import re
from typing import Any

from liveblog.models import utcnow
from liveblog.storage.base import OpsBase
from liveblog.storage.redaction import withdraw_federated
from liveblog.storage.sql import Sql

# An id made by repo.new_id: a slug of the title, then six hex digits. The slug is the handle.
SLUGGED_ID = re.compile(r"^(?P<slug>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)-[0-9a-f]{6}$")
FOLLOWER_COLUMNS = "actor_kind, actor_id, follower, handle, inbox, shared_inbox, follow_id, created_at"


def slug_of(actor_id: str) -> str | None:
    match = SLUGGED_ID.match(actor_id)
    return match.group("slug") if match else None


def _like_prefix(text: str) -> str:
    """A LIKE pattern for ids starting `text-` (its wildcards escaped with backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "-%"


class FederationOps(OpsBase):
    # -- the instance's key pair ----------------------------------------------------------------

    async def instance_key(self) -> tuple[str, str] | None:
        """(public PEM, private PEM) of the instance's key, or None before it is made."""
        row = await self.db.fetch_one(
            "SELECT public_pem, private_pem FROM federation_keys WHERE id = 'instance'"
        )
        return None if row is None else (str(row[0]), str(row[1]))

    async def put_instance_key(self, public_pem: str, private_pem: str) -> tuple[str, str]:
        """Keep the key pair unless one exists already; the one kept either way."""
        await self.db.execute(
            "INSERT INTO federation_keys (id, public_pem, private_pem, created_at) VALUES ('instance', ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            (public_pem, private_pem, utcnow()),
        )
        kept = await self.instance_key()
        assert kept is not None
        return kept

    # -- handles --------------------------------------------------------------------------------

    async def actor_exists(self, kind: str, actor_id: str) -> bool:
        if kind == "event":
            return bool(await self.db.fetch_value("SELECT 1 FROM events WHERE id = ?", (actor_id,)))
        return bool(
            await self.db.fetch_value(
                "SELECT 1 FROM sessions WHERE id = ? AND kind = 'session' AND cancelled = 0", (actor_id,)
            )
        )

    async def actor_by_handle(self, handle: str) -> tuple[str, str] | None:
        """(kind, id) of the event or session `handle` names: a handle an organiser chose, else
        an id itself, else a slug: the oldest event or session whose id is that slug plus its
        suffix (so a later one with the same title never takes it over)."""
        row = await self.db.fetch_one(
            "SELECT actor_kind, actor_id FROM federation_handles WHERE handle = ?", (handle,)
        )
        if row is not None:
            return str(row[0]), str(row[1])
        for kind in ("session", "event"):
            if await self.actor_exists(kind, handle):
                return kind, handle
        pattern = _like_prefix(handle)
        rows = await self.db.fetch_all(
            "SELECT 'session', id, created_at FROM sessions WHERE kind = 'session' AND cancelled = 0"
            " AND id LIKE ? ESCAPE '\\'"
            " UNION ALL SELECT 'event', id, created_at FROM events WHERE id LIKE ? ESCAPE '\\'",
            (pattern, pattern),
        )
        claims = sorted((str(r[2]), str(r[1]), str(r[0])) for r in rows if slug_of(str(r[1])) == handle)
        return (claims[0][2], claims[0][1]) if claims else None

    async def handle_of(self, kind: str, actor_id: str) -> str:
        """The handle of an event or session: the one chosen for it, else its id's slug when that
        names it (actor_by_handle), else its id."""
        chosen = await self.db.fetch_value(
            "SELECT handle FROM federation_handles WHERE actor_kind = ? AND actor_id = ?", (kind, actor_id)
        )
        if chosen is not None:
            return str(chosen)
        slug = slug_of(actor_id)
        if slug is not None and await self.actor_by_handle(slug) == (kind, actor_id):
            return slug
        return actor_id

    async def set_handle(self, kind: str, actor_id: str, handle: str) -> bool:
        """Give an actor the handle; False when it names another actor already."""
        holder = await self.actor_by_handle(handle)
        if holder is not None and holder != (kind, actor_id):
            return False
        await self.db.execute(
            "DELETE FROM federation_handles WHERE actor_kind = ? AND actor_id = ?", (kind, actor_id)
        )
        await self.db.execute(
            "INSERT INTO federation_handles (handle, actor_kind, actor_id) VALUES (?, ?, ?)",
            (handle, kind, actor_id),
        )
        return True

    async def chosen_handles(self, event_id: str) -> list[dict[str, str]]:
        """The handles organisers chose for an event and its sessions (its export's)."""
        rows = await self.db.fetch_all(
            "SELECT actor_kind, actor_id, handle FROM federation_handles"
            " WHERE (actor_kind = 'event' AND actor_id = ?)"
            " OR (actor_kind = 'session' AND actor_id IN (SELECT id FROM sessions WHERE event_id = ?))"
            " ORDER BY actor_kind, actor_id",
            (event_id, event_id),
        )
        return [{"kind": str(r[0]), "id": str(r[1]), "handle": str(r[2])} for r in rows]

    # -- the per-event switch ------------------------------------------------------------------

    async def federation_on(self, event_id: str) -> bool:
        return not await self.db.fetch_value("SELECT 1 FROM federation_off WHERE event_id = ?", (event_id,))

    async def set_federation(self, event_id: str, on: bool) -> None:
        """Switch an event's federation. Off holds its accounts' queued deliveries (nothing more
        leaves, due_deliveries); on again sends them, their retries and give-up clock afresh."""
        if on:
            if await self.db.execute("DELETE FROM federation_off WHERE event_id = ?", (event_id,)):
                now = utcnow()
                await self.db.execute(
                    "UPDATE federation_deliveries SET attempts = 0, first_at = ?, next_at = ?"
                    f" WHERE activity IN (SELECT a.id FROM federation_activities a WHERE {_EVENTS_ACTIVITY})",
                    (now, now, event_id, event_id),
                )
        else:
            await self.db.execute(
                "INSERT INTO federation_off (event_id, at) VALUES (?, ?) ON CONFLICT (event_id) DO NOTHING",
                (event_id, utcnow()),
            )

    # -- followers -------------------------------------------------------------------------------

    async def add_follower(self, kind: str, actor_id: str, follower: dict[str, str]) -> None:
        """Store (or refresh) one follower: follower, handle, inbox, shared_inbox, follow_id."""
        await self.db.execute(
            f"INSERT INTO federation_followers ({FOLLOWER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (actor_kind, actor_id, follower) DO UPDATE SET handle = excluded.handle,"
            " inbox = excluded.inbox, shared_inbox = excluded.shared_inbox, follow_id = excluded.follow_id",
            (
                kind,
                actor_id,
                follower["follower"],
                follower["handle"],
                follower["inbox"],
                follower["shared_inbox"],
                follower["follow_id"],
                utcnow(),
            ),
        )

    async def remove_follower(self, kind: str, actor_id: str, follower: str) -> dict[str, Any] | None:
        """Remove one follower; the row it had (None when it followed not)."""
        row = await self.db.fetch_one(
            f"SELECT {FOLLOWER_COLUMNS} FROM federation_followers WHERE actor_kind = ? AND actor_id = ?"
            " AND follower = ?",
            (kind, actor_id, follower),
        )
        if row is None:
            return None
        await self.db.execute(
            "DELETE FROM federation_followers WHERE actor_kind = ? AND actor_id = ? AND follower = ?",
            (kind, actor_id, follower),
        )
        return dict(zip(FOLLOWER_COLUMNS.split(", "), row, strict=True))

    async def unfollow(self, follower: str, follow_id: str) -> int:
        """Undo one Follow, known by its id; how many follows it ended."""
        return await self.db.execute(
            "DELETE FROM federation_followers WHERE follower = ? AND follow_id = ?", (follower, follow_id)
        )

    async def forget_remote_actor(self, follower: str) -> int:
        """A remote account that was deleted: every follow of it ends."""
        await self.db.execute("DELETE FROM federation_remote_keys WHERE owner = ?", (follower,))
        return await self.db.execute("DELETE FROM federation_followers WHERE follower = ?", (follower,))

    async def count_actors(self) -> int:
        """Events and sessions federated (NodeInfo's users)."""
        return int(
            await self.db.fetch_value(
                "SELECT (SELECT count(*) FROM events WHERE id NOT IN (SELECT event_id FROM federation_off))"
                " + (SELECT count(*) FROM sessions WHERE kind = 'session' AND cancelled = 0"
                " AND event_id NOT IN (SELECT event_id FROM federation_off))"
            )
        )

    async def list_followers(self, kind: str, actor_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch_all(
            f"SELECT {FOLLOWER_COLUMNS} FROM federation_followers WHERE actor_kind = ? AND actor_id = ?"
            " ORDER BY created_at, follower",
            (kind, actor_id),
        )
        return [dict(zip(FOLLOWER_COLUMNS.split(", "), r, strict=True)) for r in rows]

    async def count_followers(self, kind: str, actor_id: str) -> int:
        return int(
            await self.db.fetch_value(
                "SELECT count(*) FROM federation_followers WHERE actor_kind = ? AND actor_id = ?",
                (kind, actor_id),
            )
        )

    async def event_followers(self, event_id: str) -> list[dict[str, Any]]:
        """Every follower of an event and of its sessions."""
        rows = await self.db.fetch_all(
            f"SELECT {FOLLOWER_COLUMNS} FROM federation_followers WHERE (actor_kind = 'event' AND actor_id = ?)"
            " OR (actor_kind = 'session' AND actor_id IN (SELECT id FROM sessions WHERE event_id = ?))"
            " ORDER BY actor_kind, actor_id, created_at",
            (event_id, event_id),
        )
        return [dict(zip(FOLLOWER_COLUMNS.split(", "), r, strict=True)) for r in rows]

    # -- remote keys -----------------------------------------------------------------------------

    async def remote_key(self, key_id: str) -> tuple[str, str] | None:
        """(owner, public PEM) of a cached remote key."""
        row = await self.db.fetch_one(
            "SELECT owner, public_pem FROM federation_remote_keys WHERE key_id = ?", (key_id,)
        )
        return None if row is None else (str(row[0]), str(row[1]))

    async def put_remote_key(self, key_id: str, owner: str, public_pem: str) -> None:
        await self.db.execute(
            "INSERT INTO federation_remote_keys (key_id, owner, public_pem, fetched_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key_id) DO UPDATE SET owner = excluded.owner, public_pem = excluded.public_pem,"
            " fetched_at = excluded.fetched_at",
            (key_id, owner, public_pem, utcnow()),
        )

    # -- publishing ----------------------------------------------------------------------------

    async def start_cursors(self, kind: str, actor_id: str) -> None:
        """A first follower: publishing starts from where the followed sessions' streams are now
        (nothing said before is sent). An event's follow starts its sessions' too."""
        where = "id = ?" if kind == "session" else "event_id = ?"
        await self.db.execute(
            f"INSERT INTO federation_cursors (session_id, seq) SELECT id, last_seq FROM sessions WHERE {where}"
            " AND kind = 'session' ON CONFLICT (session_id) DO NOTHING",
            (actor_id,),
        )

    async def sessions_to_publish(self, limit: int = 100) -> list[tuple[str, str, int, int]]:
        """(session id, event id, published up to, stream head) of sessions with changes not yet
        published: followed sessions, and sessions of followed events (an event followed after
        the session was made publishes from its start), in events with federation on."""
        rows = await self.db.fetch_all(
            "SELECT s.id, s.event_id, coalesce(c.seq, 0), s.last_seq FROM sessions s"
            " LEFT JOIN federation_cursors c ON c.session_id = s.id"
            " WHERE s.kind = 'session' AND s.last_seq > coalesce(c.seq, 0)"
            " AND s.event_id NOT IN (SELECT event_id FROM federation_off)"
            " AND (c.session_id IS NOT NULL OR s.event_id IN"
            " (SELECT actor_id FROM federation_followers WHERE actor_kind = 'event'))"
            " ORDER BY s.id LIMIT ?",
            (limit,),
        )
        return [(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]

    async def change_refs(self, session_id: str, after: int, limit: int) -> list[tuple[int, str, int | None]]:
        """(seq, op, item id) of a session's changes after `after`, oldest first."""
        rows = await self.db.fetch_all(
            "SELECT seq, op, item_id FROM changes WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (session_id, after, limit),
        )
        return [(int(r[0]), str(r[1]), None if r[2] is None else int(r[2])) for r in rows]

    async def set_cursor(self, session_id: str, seq: int) -> None:
        await self.db.execute(
            "INSERT INTO federation_cursors (session_id, seq) VALUES (?, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq",
            (session_id, seq),
        )

    async def published_note(self, item_id: int) -> tuple[int, bool] | None:
        """(version, deleted) of what was published of a note; None if nothing was."""
        row = await self.db.fetch_one(
            "SELECT version, deleted FROM federation_notes WHERE item_id = ?", (item_id,)
        )
        return None if row is None else (int(row[0]), bool(row[1]))

    async def set_published_note(self, item_id: int, session_id: str, version: int, deleted: bool) -> None:
        await self.db.execute(
            "INSERT INTO federation_notes (item_id, session_id, version, deleted) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (item_id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted",
            (item_id, session_id, version, int(deleted)),
        )

    async def withdraw_note(self, item_id: int) -> None:
        """A note no longer public: its earlier activities lose their text and are not delivered
        (done already by the removal itself, storage/redaction.py; again here for rows written
        before that)."""
        await withdraw_federated(self.db, item_id)

    async def publish_activity(
        self,
        activity_id: str,
        actor_kind: str,
        actor_id: str,
        activity_type: str,
        item_id: int | None,
        body: str,
        inboxes: list[str],
    ) -> int:
        """Keep an activity and queue one delivery per inbox (dead hosts skipped); how many were
        queued. An activity id kept already is not queued again (a repeat is harmless)."""
        now = utcnow()
        row_id = await self.db.fetch_value(
            "INSERT INTO federation_activities (activity_id, actor_kind, actor_id, type, item_id, body, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (activity_id) DO NOTHING RETURNING id",
            (activity_id, actor_kind, actor_id, activity_type, item_id, body, now),
        )
        if row_id is None:
            return 0
        return await self.queue_deliveries(int(row_id), inboxes, now)

    async def queue_deliveries(self, activity: int, inboxes: list[str], now: str) -> int:
        dead = {str(r[0]) for r in await self.db.fetch_all("SELECT host FROM federation_dead_hosts")}
        queued = 0
        for inbox in dict.fromkeys(inboxes):
            host = _host(inbox)
            if host in dead:
                continue
            queued += await self.db.execute(
                "INSERT INTO federation_deliveries (activity, inbox, host, first_at, next_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (activity, inbox) DO NOTHING",
                (activity, inbox, host, now, now),
            )
        return queued

    async def shared_inboxes(self, kind: str, actor_id: str) -> list[str]:
        """Where an actor's followers are reached: one inbox per server that shares one."""
        rows = await self.db.fetch_all(
            "SELECT DISTINCT shared_inbox FROM federation_followers WHERE actor_kind = ? AND actor_id = ?"
            " ORDER BY shared_inbox",
            (kind, actor_id),
        )
        return [str(r[0]) for r in rows]

    async def due_deliveries(self, now: str, limit: int) -> list[dict[str, Any]]:
        """Deliveries whose time has come, oldest first, with their activity and signer; those
        of events with federation off are held (left queued)."""
        rows = await self.db.fetch_all(
            "SELECT d.id, d.inbox, d.host, d.attempts, d.first_at, a.actor_kind, a.actor_id, a.body"
            " FROM federation_deliveries d JOIN federation_activities a ON a.id = d.activity"
            f" WHERE d.next_at <= ? AND a.withdrawn = 0 AND NOT {_HELD} ORDER BY d.next_at, d.id LIMIT ?",
            (now, limit),
        )
        names = ("id", "inbox", "host", "attempts", "first_at", "actor_kind", "actor_id", "body")
        return [dict(zip(names, r, strict=True)) for r in rows]

    async def delivery_pending(self, job_id: int) -> str:
        """Whether a delivery is still to be made: "send"; "held" while its event's federation
        is off; "gone" once withdrawn with its note or done."""
        row = await self.db.fetch_one(
            f"SELECT a.withdrawn, {_HELD} FROM federation_deliveries d"
            " JOIN federation_activities a ON a.id = d.activity WHERE d.id = ?",
            (job_id,),
        )
        if row is None or row[0]:
            return "gone"
        return "held" if row[1] else "send"

    async def next_delivery_at(self) -> str | None:
        value = await self.db.fetch_value("SELECT min(next_at) FROM federation_deliveries")
        return None if value is None else str(value)

    async def delivered(self, job_id: int) -> None:
        await self.db.execute("DELETE FROM federation_deliveries WHERE id = ?", (job_id,))

    async def retry_delivery(self, job_id: int, next_at: str, error: str) -> None:
        await self.db.execute(
            "UPDATE federation_deliveries SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?",
            (next_at, error[:500], job_id),
        )

    async def mark_host_dead(self, host: str) -> int:
        """Give up on a server: no more deliveries to it (its queued ones are dropped) until it
        is heard from again; how many were dropped."""
        await self.db.execute(
            "INSERT INTO federation_dead_hosts (host, since) VALUES (?, ?) ON CONFLICT (host) DO NOTHING",
            (host, utcnow()),
        )
        return await self.db.execute("DELETE FROM federation_deliveries WHERE host = ?", (host,))

    async def host_alive(self, host: str) -> None:
        await self.db.execute("DELETE FROM federation_dead_hosts WHERE host = ?", (host,))

    async def count_deliveries(self) -> int:
        return int(await self.db.fetch_value("SELECT count(*) FROM federation_deliveries"))

    async def outbox(self, kind: str, actor_id: str, before: int | None, limit: int) -> list[tuple[int, str]]:
        """(row id, body) of an actor's published activities, newest first, before row `before`."""
        rows = await self.db.fetch_all(
            "SELECT id, body FROM federation_activities WHERE actor_kind = ? AND actor_id = ? AND withdrawn = 0"
            " AND type IN ('Create', 'Announce') AND id < ? ORDER BY id DESC LIMIT ?",
            (kind, actor_id, before if before is not None else 2**62, limit),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    async def count_outbox(self, kind: str, actor_id: str) -> int:
        return int(
            await self.db.fetch_value(
                "SELECT count(*) FROM federation_activities WHERE actor_kind = ? AND actor_id = ? AND withdrawn = 0"
                " AND type IN ('Create', 'Announce')",
                (kind, actor_id),
            )
        )

    async def media_types(self, media_ids: list[str]) -> dict[str, str]:
        if not media_ids:
            return {}
        test, args = self.db.dialect.one_of("id", media_ids)
        rows = await self.db.fetch_all(f"SELECT id, content_type FROM media WHERE {test}", args)
        return {str(r[0]): str(r[1]) for r in rows}


# An activity `a` of an event's account or of one of its sessions' (the event's id twice).
_EVENTS_ACTIVITY = (
    "(a.actor_kind = 'event' AND a.actor_id = ?"
    " OR a.actor_kind = 'session' AND a.actor_id IN (SELECT id FROM sessions WHERE event_id = ?))"
)
# Whether activity `a` belongs to an event whose organisers switched federation off.
_HELD = (
    "(a.actor_kind = 'event' AND a.actor_id IN (SELECT event_id FROM federation_off)"
    " OR a.actor_kind = 'session' AND a.actor_id IN"
    " (SELECT s.id FROM sessions s JOIN federation_off o ON o.event_id = s.event_id))"
)


def _shown_in(fa: str) -> str:
    """Whether replier `fa` (a federation_authors row) has a comment shown in session ?
    (visible, not deleted): their avatar is one of the session's public outputs only then."""
    return (
        f"EXISTS (SELECT 1 FROM comments c WHERE c.account_id = {fa}.account_id AND c.session_id = ?"
        " AND c.state = 'visible' AND c.deleted = 0)"
    )


async def unshown_avatars(db: Sql, session_id: str) -> set[str]:
    """The avatars among a session's media (each copied with a first reply there) that nothing
    shown there shows any more: no replier with that avatar (the same picture is kept once per
    session) has a comment shown in the session, and no item's HTML links it. Left out of the
    session's exports; kept for the repliers' comments in other sessions."""
    rows = await db.fetch_all(
        "SELECT DISTINCT fa.avatar FROM federation_authors fa JOIN media m ON m.id = fa.avatar"
        " WHERE m.session_id = ? AND NOT EXISTS (SELECT 1 FROM federation_authors other"
        f" WHERE other.avatar = fa.avatar AND {_shown_in('other')})"
        " AND NOT EXISTS (SELECT 1 FROM items i WHERE i.session_id = ? AND i.deleted = 0"
        " AND i.html LIKE '%' || fa.avatar || '%')",
        (session_id, session_id, session_id),
    )
    return {str(r[0]) for r in rows}


def _host(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].lower()


class ReplyOps(OpsBase):
    """Replies, reactions and blocks (docs/federation.md, "What is accepted")."""

    async def remote_author(self, actor: str, handle: str) -> int:
        """The account a remote author's replies are written under, made on their first reply:
        role 'fediverse' and no usable password, so it never logs in."""
        found = await self.db.fetch_value(
            "SELECT account_id FROM federation_authors WHERE actor = ?", (actor,)
        )
        if found is not None:
            return int(found)
        name = handle[:200]
        taken = await self.db.fetch_value("SELECT count(*) FROM accounts WHERE username = ?", (name,))
        if taken:
            name = f"{name[:190]}~{int(taken) + 1}"  # the same handle at another URL (a moved server)
        account_id = await self.db.fetch_value(
            "INSERT INTO accounts (username, password_hash, role, created_at) VALUES (?, '!', 'fediverse', ?)"
            " RETURNING id",
            (name, utcnow()),
        )
        await self.db.execute(
            "INSERT INTO federation_authors (actor, account_id) VALUES (?, ?)", (actor, int(account_id))
        )
        return int(account_id)

    async def set_author_avatar(self, actor: str, media_id: str) -> None:
        await self.db.execute("UPDATE federation_authors SET avatar = ? WHERE actor = ?", (media_id, actor))

    async def author_avatar(self, actor: str) -> str:
        """The media id of a remote author's copied avatar ('' when none)."""
        value = await self.db.fetch_value("SELECT avatar FROM federation_authors WHERE actor = ?", (actor,))
        return "" if value is None else str(value)

    async def replies_by(self, actor: str) -> list[int]:
        """The comments a remote account's Notes became."""
        rows = await self.db.fetch_all(
            "SELECT comment_id FROM federation_replies WHERE actor = ? ORDER BY comment_id", (actor,)
        )
        return [int(r[0]) for r in rows]

    async def forget_author_avatar(self, actor: str) -> None:
        """A remote account deleted: the copy of its avatar goes (its account row stays, so the
        replies' places keep their author)."""
        media_id = await self.author_avatar(actor)
        if media_id:
            await self.db.execute("DELETE FROM media WHERE id = ?", (media_id,))
            await self.db.execute("UPDATE federation_authors SET avatar = '' WHERE actor = ?", (actor,))

    async def avatar_of_account(self, account_id: int) -> str:
        value = await self.db.fetch_value(
            "SELECT avatar FROM federation_authors WHERE account_id = ? AND avatar <> ''", (account_id,)
        )
        return "" if value is None else str(value)

    async def shown_avatars(self, session_id: str) -> dict[int, str]:
        """The avatars beside a session's shown comments: account id -> media id, for each
        fediverse replier with a copied avatar and a comment shown there."""
        rows = await self.db.fetch_all(
            f"SELECT fa.account_id, fa.avatar FROM federation_authors fa WHERE fa.avatar <> '' AND {_shown_in('fa')}",
            (session_id,),
        )
        return {int(r[0]): str(r[1]) for r in rows}

    async def reply_of(self, object_id: str) -> tuple[int, str] | None:
        """(comment id, author actor) of a remote Note kept as a comment."""
        row = await self.db.fetch_one(
            "SELECT comment_id, actor FROM federation_replies WHERE object_id = ?", (object_id,)
        )
        return None if row is None else (int(row[0]), str(row[1]))

    async def add_reply(self, object_id: str, comment_id: int, actor: str) -> None:
        await self.db.execute(
            "INSERT INTO federation_replies (object_id, comment_id, actor) VALUES (?, ?, ?)",
            (object_id, comment_id, actor),
        )

    async def add_reaction(self, activity_id: str, actor: str, kind: str, item_id: int) -> bool:
        """A like or boost; False when the same one (or the actor's same kind on the item) is known."""
        known = await self.db.fetch_value(
            "SELECT 1 FROM federation_reactions WHERE actor = ? AND type = ? AND item_id = ?",
            (actor, kind, item_id),
        )
        if known:
            return False
        return bool(
            await self.db.execute(
                "INSERT INTO federation_reactions (activity_id, actor, type, item_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (activity_id) DO NOTHING",
                (activity_id, actor, kind, item_id),
            )
        )

    async def remove_reaction(self, activity_id: str, actor: str) -> int | None:
        """Take a like or boost back; the id of the note it was of (None: no such reaction)."""
        item_id = await self.db.fetch_value(
            "DELETE FROM federation_reactions WHERE activity_id = ? AND actor = ? RETURNING item_id",
            (activity_id, actor),
        )
        return None if item_id is None else int(item_id)

    async def reactions_of(self, item_id: int) -> dict[str, int]:
        """{"Like": n, "Announce": m} of one note (kinds with none left out)."""
        rows = await self.db.fetch_all(
            "SELECT type, count(*) FROM federation_reactions WHERE item_id = ? GROUP BY type", (item_id,)
        )
        return {str(kind): int(n) for kind, n in rows}

    async def reaction_counts(self, session_id: str) -> dict[int, dict[str, int]]:
        """{item id: {"Like": n, "Announce": m}} for a session's notes (not deleted)."""
        rows = await self.db.fetch_all(
            "SELECT r.item_id, r.type, count(*) FROM federation_reactions r JOIN items i ON i.id = r.item_id"
            " WHERE i.session_id = ? AND i.deleted = 0 GROUP BY r.item_id, r.type",
            (session_id,),
        )
        counts: dict[int, dict[str, int]] = {}
        for item_id, kind, n in rows:
            counts.setdefault(int(item_id), {})[str(kind)] = int(n)
        return counts

    async def block(self, target: str, kind: str) -> None:
        """Block an account (its actor URL) or a domain: its follows end, its activities are ignored."""
        await self.db.execute(
            "INSERT INTO federation_blocks (target, kind, created_at) VALUES (?, ?, ?) ON CONFLICT (target) DO NOTHING",
            (target, kind, utcnow()),
        )
        if kind == "account":
            await self.db.execute("DELETE FROM federation_followers WHERE follower = ?", (target,))
        else:
            pattern = _like_domain(target)
            await self.db.execute(
                "DELETE FROM federation_followers WHERE follower LIKE ? ESCAPE '\\' OR follower LIKE ? ESCAPE '\\'",
                pattern,
            )

    async def unblock(self, target: str) -> None:
        await self.db.execute("DELETE FROM federation_blocks WHERE target = ?", (target,))

    async def blocked(self, actor: str, host: str) -> bool:
        return bool(
            await self.db.fetch_value(
                "SELECT 1 FROM federation_blocks WHERE (kind = 'account' AND target = ?) OR (kind = 'domain' AND target = ?)",
                (actor, host),
            )
        )

    async def list_blocks(self) -> list[tuple[str, str]]:
        rows = await self.db.fetch_all("SELECT target, kind FROM federation_blocks ORDER BY kind, target")
        return [(str(r[0]), str(r[1])) for r in rows]


def _like_domain(host: str) -> tuple[str, str]:
    """LIKE patterns for URLs on a host, by http and https."""
    escaped = host.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"https://{escaped}/%", f"http://{escaped}/%"

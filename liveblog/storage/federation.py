"""SQL for the fediverse (docs/federation.md): the instance's key pair, actors' handles, the
per-event switch, followers, and remote keys. Written once for both backends (sql.py).

The private key is read by `instance_key` only, for signing; no export or page reads it."""

from __future__ import annotations

import re
from typing import Any

from liveblog.models import utcnow
from liveblog.storage.base import OpsBase

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

    # -- the per-event switch ------------------------------------------------------------------

    async def federation_on(self, event_id: str) -> bool:
        return not await self.db.fetch_value("SELECT 1 FROM federation_off WHERE event_id = ?", (event_id,))

    async def set_federation(self, event_id: str, on: bool) -> None:
        if on:
            await self.db.execute("DELETE FROM federation_off WHERE event_id = ?", (event_id,))
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

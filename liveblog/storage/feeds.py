"""SQL for social feeds: collected posts (stored once per network and post id), their routes to
sessions with moderation state, per-event rules, moderation policies, source cursors and reads.

Written once for both backends, against the query layer (sql.py).
"""

from __future__ import annotations

import json
from typing import Any

from liveblog.models import SocialPost, SocialRoute, utcnow
from liveblog.storage.base import OpsBase
from liveblog.storage.repo import dumps

_ROUTE_COLUMNS = (
    "r.post_row, r.event_id, r.session_id, r.state, r.item_id, r.routed_at, p.data, p.deleted_upstream_at"
)


def _route(row: Any) -> SocialRoute:
    return SocialRoute(
        post_row=int(row[0]),
        event_id=row[1],
        session_id=row[2],
        state=row[3],
        item_id=row[4],
        routed_at=row[5],
        post=SocialPost.from_dict(json.loads(row[6])),
        deleted_upstream=row[7] is not None,
    )


def _route_filter(event_id: str | None, session_id: str | None, state: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause (with its leading space, or "") and arguments of a filter on routes `r`."""
    where, args = [], []
    for column, value in (("r.event_id", event_id), ("r.session_id", session_id), ("r.state", state)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    return (" WHERE " + " AND ".join(where) if where else ""), args


class FeedOps(OpsBase):
    # -- posts ---------------------------------------------------------------------------------

    async def insert_social_post(self, post: SocialPost) -> int | None:
        """Store a post once: its row id, or None when (network, post id) was stored before."""
        row = await self.db.fetch_one(
            "INSERT INTO social_posts (network, post_id, author_handle, author_name, body, url, posted_at, data,"
            " collected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (network, post_id) DO NOTHING RETURNING id",
            (
                post.network,
                post.post_id,
                post.author_handle,
                post.author_name,
                post.text,
                post.url,
                post.posted_at,
                dumps(post.to_dict()),
                utcnow(),
            ),
        )
        return int(row[0]) if row else None

    async def known_social_posts(self, network: str, post_ids: list[str]) -> set[str]:
        """Which of these post ids of a network are stored already."""
        found: set[str] = set()
        for start in range(0, len(post_ids), 500):  # stay under any backend's parameter limit
            chunk = post_ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.db.fetch_all(
                f"SELECT post_id FROM social_posts WHERE network = ? AND post_id IN ({marks})",
                (network, *chunk),
            )
            found.update(r[0] for r in rows)
        return found

    async def social_authors_with_prefix(self, network: str, prefix: str, limit: int) -> list[str]:
        # A range, not LIKE: it uses the (network, author_handle) index on both backends.
        rows = await self.db.fetch_all(
            "SELECT DISTINCT author_handle FROM social_posts WHERE network = ? AND author_handle >= ?"
            " AND author_handle < ? ORDER BY author_handle LIMIT ?",
            (network, prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1), limit),
        )
        return [str(r[0]) for r in rows]

    async def rename_social_author(
        self, network: str, old_handles: list[str], handle: str, name: str
    ) -> list[SocialRoute]:
        """Give the posts of a network whose author is named by one of `old_handles` (a Bluesky
        DID, or a handle seen before) the author's handle and display name; returns the routes
        of the renamed posts."""
        if not old_handles:
            return []
        marks = ", ".join("?" for _ in old_handles)
        posts = await self.db.fetch_all(
            f"SELECT id, data FROM social_posts WHERE network = ? AND author_handle IN ({marks})",
            (network, *old_handles),
        )
        rows = [(int(r[0]), r[1]) for r in posts]
        for row_id, data in rows:
            post = json.loads(data) | {"author_handle": handle, "author_name": name}
            await self.db.execute(
                "UPDATE social_posts SET author_handle = ?, author_name = ?, data = ? WHERE id = ?",
                (handle, name, dumps(post), row_id),
            )
        routes: list[SocialRoute] = []
        for start in range(0, len(rows), 500):  # stay under any backend's parameter limit
            chunk = [r[0] for r in rows[start : start + 500]]
            found = await self.db.fetch_all(
                f"SELECT {_ROUTE_COLUMNS} FROM social_routes r JOIN social_posts p ON p.id = r.post_row"
                f" WHERE r.post_row IN ({', '.join('?' for _ in chunk)}) ORDER BY r.post_row",
                tuple(chunk),
            )
            routes += [_route(r) for r in found]
        return routes

    async def set_social_avatar(self, post_row: int, avatar_url: str, avatar_local: str) -> None:
        row = await self.db.fetch_one("SELECT data FROM social_posts WHERE id = ?", (post_row,))
        if row is None:
            return
        post = json.loads(row[0]) | {"avatar_url": avatar_url, "avatar_local": avatar_local}
        await self.db.execute("UPDATE social_posts SET data = ? WHERE id = ?", (dumps(post), post_row))

    async def mark_social_deleted(self, network: str, post_id: str) -> list[SocialRoute]:
        """Note that the network deleted a post; returns its routes (to remove if so configured)."""
        await self.db.execute(
            "UPDATE social_posts SET deleted_upstream_at = ? WHERE network = ? AND post_id = ?"
            " AND deleted_upstream_at IS NULL",
            (utcnow(), network, post_id),
        )
        rows = await self.db.fetch_all(
            f"SELECT {_ROUTE_COLUMNS} FROM social_routes r JOIN social_posts p ON p.id = r.post_row"
            " WHERE p.network = ? AND p.post_id = ?",
            (network, post_id),
        )
        return [_route(r) for r in rows]

    # -- routes --------------------------------------------------------------------------------

    async def insert_social_route(self, post_row: int, event_id: str, session_id: str, state: str) -> bool:
        row = await self.db.fetch_one(
            "INSERT INTO social_routes (post_row, event_id, session_id, state, routed_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (post_row, event_id, session_id) DO NOTHING RETURNING 1",
            (post_row, event_id, session_id, state, utcnow()),
        )
        return row is not None

    async def set_social_route(
        self,
        post_row: int,
        event_id: str,
        session_id: str,
        *,
        state: str,
        item_id: int | None,
        decided_by: str,
    ) -> None:
        await self.db.execute(
            "UPDATE social_routes SET state = ?, item_id = ?, decided_at = ?, decided_by = ?"
            " WHERE post_row = ? AND event_id = ? AND session_id = ?",
            (state, item_id, utcnow(), decided_by, post_row, event_id, session_id),
        )

    async def get_social_route(self, post_row: int, event_id: str, session_id: str) -> SocialRoute | None:
        row = await self.db.fetch_one(
            f"SELECT {_ROUTE_COLUMNS} FROM social_routes r JOIN social_posts p ON p.id = r.post_row"
            " WHERE r.post_row = ? AND r.event_id = ? AND r.session_id = ?",
            (post_row, event_id, session_id),
        )
        return _route(row) if row else None

    async def social_route_for_item(self, item_id: int) -> SocialRoute | None:
        row = await self.db.fetch_one(
            f"SELECT {_ROUTE_COLUMNS} FROM social_routes r JOIN social_posts p ON p.id = r.post_row"
            " WHERE r.item_id = ?",
            (item_id,),
        )
        return _route(row) if row else None

    async def list_social_routes(
        self,
        *,
        event_id: str | None = None,
        session_id: str | None = None,
        state: str | None = None,
        limit: int | None = 500,
    ) -> list[SocialRoute]:
        """Routes, oldest first, filtered by event, session ('' = the event's own feed) and state;
        `limit` None for all of them."""
        where, args = _route_filter(event_id, session_id, state)
        sql = f"SELECT {_ROUTE_COLUMNS} FROM social_routes r JOIN social_posts p ON p.id = r.post_row{where}"
        sql += " ORDER BY p.posted_at, r.post_row"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_route(r) for r in await self.db.fetch_all(sql, args)]

    async def recent_social_routes(self, event_id: str, session_id: str, limit: int) -> list[SocialRoute]:
        """The newest `limit` routes of a stream that a moderator or a rule decided (not waiting),
        oldest first."""
        rows = await self.db.fetch_all(
            f"SELECT {_ROUTE_COLUMNS} FROM social_routes r JOIN social_posts p ON p.id = r.post_row"
            " WHERE r.event_id = ? AND r.session_id = ? AND r.state <> 'pending'"
            " ORDER BY p.posted_at DESC, r.post_row DESC LIMIT ?",
            (event_id, session_id, limit),
        )
        return [_route(r) for r in reversed(rows)]

    async def count_social_routes(
        self, event_id: str, *, session_id: str | None = None, state: str | None = None
    ) -> int:
        """How many routes of an event, by session ('' = the event's own feed) and state."""
        where, args = _route_filter(event_id, session_id, state)
        return int(await self.db.fetch_value(f"SELECT count(*) FROM social_routes r{where}", args))

    async def count_social_posts(self, event_id: str) -> dict[str, int]:
        """Posts collected for an event, per network."""
        rows = await self.db.fetch_all(
            "SELECT p.network, count(DISTINCT p.id) FROM social_posts p JOIN social_routes r ON r.post_row = p.id"
            " WHERE r.event_id = ? GROUP BY p.network",
            (event_id,),
        )
        return {r[0]: int(r[1]) for r in rows}

    # -- rules and policies --------------------------------------------------------------------

    async def feed_rules(self, event_id: str) -> list[tuple[str, str]]:
        """(kind, value) of every rule of an event: allow_author, block_author, block_word."""
        rows = await self.db.fetch_all(
            "SELECT kind, value FROM feed_rules WHERE event_id = ? ORDER BY kind, value", (event_id,)
        )
        return [(r[0], r[1]) for r in rows]

    async def add_feed_rule(self, event_id: str, kind: str, value: str, created_by: str) -> bool:
        row = await self.db.fetch_one(
            "INSERT INTO feed_rules (event_id, kind, value, created_by, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id, kind, value) DO NOTHING RETURNING 1",
            (event_id, kind, value, created_by, utcnow()),
        )
        return row is not None

    async def remove_feed_rule(self, event_id: str, kind: str, value: str) -> None:
        await self.db.execute(
            "DELETE FROM feed_rules WHERE event_id = ? AND kind = ? AND value = ?", (event_id, kind, value)
        )

    async def feed_policies(self, event_id: str) -> dict[str, bool]:
        """{session id or '' for the event default: whether posts wait for moderation}."""
        rows = await self.db.fetch_all(
            "SELECT session_id, moderate FROM feed_policies WHERE event_id = ?", (event_id,)
        )
        return {r[0]: bool(r[1]) for r in rows}

    async def set_feed_policy(self, event_id: str, session_id: str, moderate: bool) -> None:
        await self.db.execute(
            "INSERT INTO feed_policies (event_id, session_id, moderate, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (event_id, session_id) DO UPDATE SET moderate = excluded.moderate,"
            " updated_at = excluded.updated_at",
            (event_id, session_id, int(moderate), utcnow()),
        )

    # -- cursors and reads ---------------------------------------------------------------------

    async def get_feed_cursor(self, source: str) -> str | None:
        row = await self.db.fetch_one("SELECT value FROM feed_cursors WHERE source = ?", (source,))
        return str(row[0]) if row else None

    async def set_feed_cursor(self, source: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO feed_cursors (source, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (source) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (source, value, utcnow()),
        )

    async def add_feed_reads(self, event_id: str, session_id: str, network: str, reads: int) -> None:
        await self.db.execute(
            "INSERT INTO feed_reads (event_id, session_id, network, reads, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id, session_id, network) DO UPDATE SET reads = feed_reads.reads + excluded.reads,"
            " updated_at = excluded.updated_at",
            (event_id, session_id, network, reads, utcnow()),
        )

    async def feed_reads(self, network: str) -> dict[tuple[str, str], int]:
        """Reads billed so far for a network: {(event id, session id or ''): reads}."""
        rows = await self.db.fetch_all(
            "SELECT event_id, session_id, reads FROM feed_reads WHERE network = ?", (network,)
        )
        return {(r[0], r[1]): int(r[2]) for r in rows}

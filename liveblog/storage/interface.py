"""The storage interface: what every backend implements, in typed operations on dataclasses.

Code above storage (capture, programme, accounts, audience, archive, feeds) sees only these
protocols: it never sees a connection or SQL. A write is an *op*, `async def op(tx: Unit) -> T`,
passed to `Store.write`: it runs inside one transaction (its own SAVEPOINT within a group
commit), awaits only operations of its `tx`, and puts anything that touches in-memory state in
`tx.after_commit`, which runs once the transaction is durable. The SQLite backend happens to run
an op to its end in the writer thread without suspending; another backend (asyncpg) awaits for
real, so an op must not rely on running without interruption beyond its own transaction.

Operations that change a session's stream append `Change`s to `tx.changes`; the store publishes
them, in sequence order, after commit (`Store.on_commit`). Sequence numbers are taken from the
database (`next_seq`), never predicted, so they stay contiguous under concurrent writers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from liveblog.models import (
    Account,
    ArchiveRecord,
    CardSection,
    Change,
    Comment,
    Event,
    Invite,
    Item,
    ItemCard,
    ItemVersion,
    LaterAnswer,
    ModerationEntry,
    RenderedCard,
    SearchDocument,
    SearchQuery,
    SearchResult,
    Session,
    SocialPost,
    SocialRoute,
    SpeakerLink,
)

T = TypeVar("T")


class Unit(Protocol):
    """One read snapshot or one write transaction, with every storage operation."""

    changes: list[Change]
    after_commit: list[Callable[[], None]]

    # -- Programme and the stream ------------------------------------------------------------------
    async def insert_event(self, fields: dict[str, Any], *, event_id: str | None = None) -> Event: ...

    async def update_event(self, event_id: str, fields: dict[str, Any]) -> Event: ...

    async def get_event(self, event_id: str) -> Event | None: ...

    async def list_events(self) -> list[Event]: ...

    async def insert_session(
        self, event_id: str, fields: dict[str, Any], *, session_id: str | None = None
    ) -> Session: ...

    async def update_session(self, session_id: str, fields: dict[str, Any]) -> Session:
        """Update a session; every visible change is also a `session.updated` change in its stream."""
        ...

    async def get_session(self, session_id: str) -> Session | None:
        """A programme session (kind 'session'); an event's own feed is not found here."""
        ...

    async def get_stream_session(self, session_id: str) -> Session | None:
        """Any stream's row: a programme session or an event's own feed."""
        ...

    async def get_event_feed(self, event_id: str) -> Session | None:
        """The event's own feed stream (kind 'event_feed'), if its first post created it."""
        ...

    async def ensure_event_feed(self, event_id: str) -> Session:
        """The event's own feed stream, created on first use (idempotent); NotFound without the event."""
        ...

    async def list_sessions(self, event_id: str) -> list[Session]: ...

    async def list_live_sessions(self) -> list[Session]: ...

    async def next_seq(self, session_id: str) -> int:
        """Take the session's next sequence number from the database (never predicted): a row lock
        on PostgreSQL, the write lock on SQLite, keep concurrent writers contiguous."""
        ...

    async def append_change(self, session_id: str, op: str, item_id: int | None, build: Any) -> Change:
        """Give the session's next sequence number to a change and store it."""
        ...

    async def store_change(
        self, session_id: str, seq: int, op: str, item_id: int | None, fields: dict[str, Any]
    ) -> Change: ...

    async def changes_between(self, session_id: str, after: int, upto: int) -> list[str]:
        """The stored wire text of changes after..upto (inclusive), in order."""
        ...

    async def stream_head(self, session_id: str) -> tuple[str, int] | None: ...

    async def get_item(self, item_id: int) -> Item | None: ...

    async def get_item_ref(self, item_id: int) -> tuple[Item, str | None] | None:
        """An item with the reference of who wrote it (an invite id), for ownership checks."""
        ...

    async def find_item_by_client_id(self, session_id: str, client_id: str) -> Item | None: ...

    async def list_items(
        self,
        session_id: str,
        *,
        include_deleted: bool = False,
        kind: str | None = None,
        newest: int | None = None,
    ) -> list[Item]:
        """A stream's items, oldest first; `newest`: only that many of the newest."""
        ...

    async def count_items(self, session_id: str) -> int: ...

    async def count_session_holdings(self, session_id: str) -> int:
        """Items (deleted ones too), photos, comments and routed social posts of the session."""
        ...

    async def delete_session(self, session_id: str) -> None:
        """Delete a programme session with everything it holds; the caller checked it may."""
        ...

    async def mark_exported(self, session_id: str) -> int | None:
        """Note that an organiser took the session's export now: its stream position, or None."""
        ...

    async def sessions_by_source(self, event_id: str) -> dict[str, Session]:
        """The event's sessions made by a programme import, by their entry's guid/UID."""
        ...

    async def insert_item(
        self,
        *,
        session_id: str,
        kind: str,
        client_id: str,
        author: str,
        author_ref: str | None,
        body: str,
        html: str,
        key_point: bool,
        data: dict[str, Any],
        typed_at: str,
    ) -> tuple[Item, Change]: ...

    async def update_item(
        self, item_id: int, fields: dict[str, Any], *, op: str = "item.updated"
    ) -> tuple[Item, Change]: ...

    async def claim_client_op(
        self, session_id: str, client_id: str, fingerprint: str
    ) -> tuple[str, dict[str, Any]] | None:
        """Claim a client id for a message, in one statement (no check-then-act)."""
        ...

    async def complete_client_op(self, session_id: str, client_id: str, response: dict[str, Any]) -> None: ...

    # -- Audience votes and questions --------------------------------------------------------------
    async def vote_context(self, poll_id: int, participant: str) -> tuple[Any, ...] | None:
        """In one round trip (a vote's hot path): (kind, deleted, state, closes_at, session_id,"""
        ...

    async def put_vote(self, poll_id: int, participant: str, choice: str, ip: str, flagged: str = "") -> None:
        """Insert or replace a participant's vote (one statement: the hot path of a vote); a
        vote once flagged (a burst limit's kind) stays flagged."""
        ...

    async def vote_groups(self, poll_id: int, *, discount_flagged: bool = False) -> list[tuple[str, int]]:
        """(choice JSON, how many participants chose exactly that) for a poll, without the
        flagged votes when `discount_flagged`."""
        ...

    async def count_flagged_votes(self, poll_id: int) -> int: ...

    async def count_votes(self, poll_id: int) -> int: ...

    async def votes_of(self, session_id: str, participant: str) -> dict[int, Any]:
        """A participant's current choices in a session's polls: {poll_id: choice}."""
        ...

    async def insert_upvote(self, question_id: int, participant: str) -> bool:
        """True when this participant had not upvoted this question before."""
        ...

    async def merge_upvotes(self, from_id: int, into_id: int) -> None:
        """Give a question the upvotes of its duplicate (one per participant)."""
        ...

    async def count_upvotes(self, question_id: int) -> int: ...

    async def upvotes_of(self, session_id: str, participant: str) -> list[int]: ...

    async def insert_question(
        self, *, item_id: int, session_id: str, participant: str, name: str, body: str, ip: str
    ) -> None: ...

    async def get_question(self, item_id: int) -> dict[str, Any] | None: ...

    async def list_questions(self, session_id: str) -> dict[int, dict[str, Any]]: ...

    async def open_polls_with_deadline(self) -> list[tuple[int, str]]:
        """(poll id, closes_at) for every open poll that closes itself, across sessions."""
        ...

    async def pinned_questions(self, session_id: str) -> list[int]: ...

    async def set_item_data(
        self, item: Item, data: dict[str, Any], op: str, fields: dict[str, Any]
    ) -> Change:
        """Replace an item's data and append a compact `op` change ({item_id, version, **fields})."""
        ...

    # -- Accounts, invites and media ---------------------------------------------------------------
    async def insert_account(self, username: str, password_hash: str, role: str = "organiser") -> Account: ...

    async def set_password(self, username: str, password_hash: str) -> None: ...

    async def account_for_login(self, username: str) -> tuple[Account, str] | None: ...

    async def insert_login(self, account_id: int) -> str: ...

    async def revoke_login(self, token: str) -> None: ...

    async def revoke_account_logins(self, username: str, keep_token: str | None = None) -> list[str]:
        """End every login session of an account (but `keep_token`'s); returns the ended
        sessions' token hashes (never the tokens)."""
        ...

    async def account_for_login_token(self, token: str) -> Account | None: ...

    async def insert_invite(self, event_id: str, session_id: str | None, name: str) -> tuple[Invite, str]: ...

    async def revoke_invite(self, invite_id: str) -> Invite: ...

    async def invite_for_token(self, token: str) -> Invite | None: ...

    async def list_invites(self, event_id: str) -> list[Invite]: ...

    async def inactive_invites(self, invite_ids: list[str]) -> list[str]:
        """Those of these invites that are revoked (or no longer exist), for re-checking open sockets."""
        ...

    async def insert_media(
        self, session_id: str, content_type: str, data: bytes, uploaded_by: str | None
    ) -> str: ...

    async def get_media(self, media_id: str) -> tuple[str, bytes] | None: ...

    # -- The archive: knowledge pages, tags, history, search ---------------------------------------
    async def get_archive(self, session_id: str) -> ArchiveRecord | None: ...

    async def insert_archive(
        self, session_id: str, summary: str, summary_html: str, *, archived_at: str | None = None
    ) -> bool:
        """Mark a session archived with its first summary; False when it already was."""
        ...

    async def set_summary(self, session_id: str, summary: str, summary_html: str, by: str) -> None: ...

    async def unarchived_ended_sessions(self) -> list[str]: ...

    async def overdue_sessions(self, local_now: str) -> list[str]:
        """Sessions not ended whose scheduled end (venue wall-clock) is before local_now."""
        ...

    async def stale_tag_sessions(self) -> list[str]:
        """Archived sessions edited since their tags were derived from their hashtags."""
        ...

    async def set_session_tags(self, session_id: str, source: str, tags: list[str]) -> None:
        """Make the session's tags from source ('hashtag' or 'organiser') exactly these."""
        ...

    async def session_tags(self, session_id: str) -> list[tuple[str, str]]: ...

    async def sessions_with_tag(self, tag: str) -> list[Session]: ...

    async def related_sessions(self, session_id: str, limit: int) -> list[tuple[Session, int]]: ...

    async def top_tags(self, event_id: str | None, limit: int) -> list[tuple[str, int]]: ...

    async def upvote_counts(self, session_id: str) -> dict[int, int]:
        """Upvotes per question, counted from the stored upvotes (exact)."""
        ...

    async def item_history(self, session_id: str) -> dict[int, list[ItemVersion]]: ...

    async def list_item_cards(self, session_id: str, card_key: str) -> list[ItemCard]:
        """The session's items (not deleted) in page order, without their content, each with its
        stored card if one made under `card_key` from the item's current version is kept."""
        ...

    async def list_stream_page(self, session_id: str, before: int | None, limit: int) -> list[Item]:
        """Up to `limit` notes and posts placed before item `before` (all, for None), newest first."""
        ...

    async def count_stream_upto(self, session_id: str, item_id: int | None) -> int:
        """Notes and posts placed at or before item `item_id` (all, for None)."""
        ...

    async def list_stream_numbered(self, session_id: str, first: int, limit: int) -> list[Item]:
        """Notes and posts from the `first`-th from the oldest, oldest first (a numbered page)."""
        ...

    async def list_key_points(self, session_id: str) -> list[Item]:
        """The session's key points (not deleted), oldest first."""
        ...

    async def get_items(self, item_ids: list[int]) -> dict[int, Item]:
        """These items by id (deleted ones too; unknown ids left out)."""
        ...

    async def put_item_cards(self, card_key: str, cards: list[RenderedCard]) -> None:
        """Keep rendered cards (one per item; a card from an older item version never replaces
        a newer one)."""
        ...

    async def count_item_cards(self, session_id: str, card_key: str) -> int:
        """Cards kept under `card_key` for the session's items, current or not."""
        ...

    async def list_page_items(self, session_id: str) -> list[Item]:
        """Key points, polls and questions of the session (not deleted), in page order."""
        ...

    async def get_card_section(self, session_id: str, card_key: str) -> CardSection | None:
        """The session's assembled cards under `card_key`, if made at its current stream position."""
        ...

    async def put_card_section(self, section: CardSection) -> None:
        """Keep a session's assembled cards (never replacing one of a later stream position)."""
        ...

    async def session_counts(self, event_id: str) -> dict[str, dict[str, int]]: ...

    async def activity(self, event_id: str) -> list[tuple[str, int]]: ...

    async def poll_turnout(self, event_id: str) -> list[tuple[int, str, str, int]]: ...

    async def search(self, query: SearchQuery) -> SearchResult:
        """Ranked full-text matches (every term, folded and stemmed) with highlighted snippets.
        The index is kept in the same transaction as every write that changes what it indexes."""
        ...

    async def search_documents(self, event_id: str) -> list[SearchDocument]:
        """The index's rows of an event as written: (kind, ref, session_id, title, body, tags)."""
        ...

    # -- The moderation ledger (moderation.py) ---------------------------------------------------
    async def record_moderation(
        self,
        *,
        session_id: str,
        actor: str,
        action: str,
        target_kind: str,
        target_id: int | str,
        reason: str = "",
    ) -> None:
        """Log a moderation action on a session's item or comment, in the action's transaction."""
        ...

    async def record_event_moderation(
        self,
        *,
        event_id: str,
        actor: str,
        action: str,
        target_kind: str,
        target_id: int | str,
        reason: str = "",
    ) -> None: ...

    async def moderation_log(self, event_id: str, session_id: str | None = None) -> list[ModerationEntry]: ...

    async def moderation_counts(self, session_id: str) -> dict[tuple[str, str], int]: ...

    async def moderation_reasons(
        self, session_id: str, actions: tuple[str, ...]
    ) -> list[tuple[str, int]]: ...

    async def import_moderation_rows(self, entries: list[dict[str, Any]]) -> None: ...

    # -- Answers after the talk and speaker links (answers.py) -------------------------------------
    async def insert_speaker_link(self, session_id: str, name: str) -> tuple[SpeakerLink, str]: ...

    async def revoke_speaker_link(self, link_id: str) -> SpeakerLink: ...

    async def speaker_link_for_token(self, token: str) -> SpeakerLink | None: ...

    async def speaker_links(self, session_id: str) -> list[SpeakerLink]: ...

    async def put_answer(
        self, *, question_id: int, session_id: str, author: str, link_id: str, body: str, html: str
    ) -> LaterAnswer: ...

    async def set_answer_state(self, question_id: int, state: str) -> LaterAnswer: ...

    async def get_answer(self, question_id: int) -> LaterAnswer | None: ...

    async def session_answers(
        self, session_id: str, *, public_only: bool = True
    ) -> dict[int, LaterAnswer]: ...

    async def answers_to_asker(self, author_ref: str) -> list[tuple[LaterAnswer, str, str]]: ...

    async def import_answer_rows(self, session_id: str, answers: list[dict[str, Any]]) -> None: ...

    # -- Comment threads and reader accounts -------------------------------------------------------
    async def insert_comment(
        self,
        *,
        session_id: str,
        parent_id: int | None,
        account_id: int,
        author: str,
        body: str,
        html: str,
        state: str,
        ip: str,
    ) -> tuple[Comment, Change]:
        """Store a comment and append its `comment.created` change to the session's stream."""
        ...

    async def update_comment(
        self, comment_id: int, fields: dict[str, Any], op: str = "comment.updated"
    ) -> tuple[Comment, Change]: ...

    async def get_comment(self, comment_id: int) -> Comment | None: ...

    async def list_comments(self, session_id: str) -> list[Comment]: ...

    async def recent_comments(self, event_id: str | None, limit: int) -> list[Comment]: ...

    async def comment_counts(self, event_id: str) -> dict[str, int]: ...

    async def comments_in_state(self, state: str, limit: int) -> list[Comment]:
        """Comments of every event in one state (`pending`: awaiting approval, `hidden`), not
        deleted, newest first: the organisers' moderation queue."""
        ...

    async def thread_locked(self, session_id: str) -> bool: ...

    async def set_thread_locked(self, session_id: str, locked: bool) -> Change: ...

    async def event_premoderation(self, event_id: str) -> bool: ...

    async def set_event_premoderation(self, event_id: str, on: bool) -> None: ...

    async def account_banned(self, account_id: int) -> bool: ...

    async def ban_account(self, account_id: int) -> None:
        """Mark an account banned (end its logins with revoke_account_logins)."""
        ...

    async def account_events(self, account_id: int) -> list[str]:
        """The ids of the events the account took part in (commented in)."""
        ...

    async def password_hash_of(self, account_id: int) -> str | None: ...

    async def set_password_of(self, account_id: int, password_hash: str) -> None: ...

    async def insert_password_reset(self, account_id: int, valid_hours: int) -> str: ...

    async def peek_password_reset(self, token: str) -> int | None: ...

    async def use_password_reset(self, token: str) -> int | None:
        """Use a one-time reset link (once, atomically); the account id, or None."""
        ...

    async def get_account(self, account_id: int) -> Account | None: ...

    # -- Exports and imports -----------------------------------------------------------------------
    async def export_event_row(self, event_id: str) -> dict[str, Any] | None: ...

    async def public_changes(self, session_id: str) -> list[dict[str, Any]]:
        """The stream as stored, with changes of items no longer public reduced to `item.redacted`."""
        ...

    async def export_session_rows(self, session_id: str) -> dict[str, Any] | None:
        """Everything public about a session as rows (the JSON export's `sessions[]` entry)."""
        ...

    async def import_event_row(self, event: dict[str, Any], premoderate: bool) -> None: ...

    async def import_session_rows(self, bundle: dict[str, Any]) -> None:
        """Restore an exported session with its ids; an id in use is a Conflict."""

    async def continue_ids(self) -> None:
        """After rows were written with their own ids (an import): assigned ids come after them."""

    # -- Social feeds ------------------------------------------------------------------------------
    async def insert_social_post(self, post: SocialPost) -> int | None:
        """Store a post once: its row id, or None when (network, post id) was stored before."""
        ...

    async def known_social_posts(self, network: str, post_ids: list[str]) -> set[str]: ...

    async def mark_social_deleted(self, network: str, post_id: str) -> list[SocialRoute]: ...

    async def social_authors_with_prefix(self, network: str, prefix: str, limit: int) -> list[str]:
        """Distinct author handles of a network's stored posts that start with `prefix` (Bluesky
        authors still named by DID: "did:"), at most `limit`."""
        ...

    async def rename_social_author(
        self, network: str, old_handles: list[str], handle: str, name: str
    ) -> list[SocialRoute]:
        """Rename the author of a network's posts stored under any of `old_handles` (a Bluesky
        DID resolved later); the renamed posts' routes."""
        ...

    async def set_social_avatar(self, post_row: int, avatar_url: str, avatar_local: str) -> None:
        """A stored post's author picture: where it was, and our copy (a /media/ path)."""
        ...

    async def insert_social_route(
        self, post_row: int, event_id: str, session_id: str, state: str
    ) -> bool: ...

    async def set_social_route(
        self,
        post_row: int,
        event_id: str,
        session_id: str,
        *,
        state: str,
        item_id: int | None,
        decided_by: str,
    ) -> None: ...

    async def get_social_route(self, post_row: int, event_id: str, session_id: str) -> SocialRoute | None: ...

    async def social_route_for_item(self, item_id: int) -> SocialRoute | None: ...

    async def list_social_routes(
        self,
        *,
        event_id: str | None = None,
        session_id: str | None = None,
        state: str | None = None,
        limit: int | None = 500,
    ) -> list[SocialRoute]: ...

    async def recent_social_routes(self, event_id: str, session_id: str, limit: int) -> list[SocialRoute]: ...

    async def count_social_routes(
        self, event_id: str, *, session_id: str | None = None, state: str | None = None
    ) -> int: ...

    async def count_social_posts(self, event_id: str) -> dict[str, int]: ...

    async def feed_rules(self, event_id: str) -> list[tuple[str, str]]: ...

    async def add_feed_rule(self, event_id: str, kind: str, value: str, created_by: str) -> bool: ...

    async def remove_feed_rule(self, event_id: str, kind: str, value: str) -> None: ...

    async def feed_policies(self, event_id: str) -> dict[str, bool]: ...

    async def set_feed_policy(self, event_id: str, session_id: str, moderate: bool) -> None: ...

    async def get_feed_cursor(self, source: str) -> str | None: ...

    async def set_feed_cursor(self, source: str, value: str) -> None: ...

    async def add_feed_reads(self, event_id: str, session_id: str, network: str, reads: int) -> None: ...

    async def feed_reads(self, network: str) -> dict[tuple[str, str], int]: ...

    # -- The fediverse (storage/federation.py, docs/federation.md) -------------------------------

    async def instance_key(self) -> tuple[str, str] | None: ...

    async def put_instance_key(self, public_pem: str, private_pem: str) -> tuple[str, str]: ...

    async def actor_exists(self, kind: str, actor_id: str) -> bool: ...

    async def actor_by_handle(self, handle: str) -> tuple[str, str] | None: ...

    async def handle_of(self, kind: str, actor_id: str) -> str: ...

    async def set_handle(self, kind: str, actor_id: str, handle: str) -> bool: ...

    async def chosen_handles(self, event_id: str) -> list[dict[str, str]]: ...

    async def federation_on(self, event_id: str) -> bool: ...

    async def set_federation(self, event_id: str, on: bool) -> None: ...

    async def add_follower(self, kind: str, actor_id: str, follower: dict[str, str]) -> None: ...

    async def remove_follower(self, kind: str, actor_id: str, follower: str) -> dict[str, Any] | None: ...

    async def unfollow(self, follower: str, follow_id: str) -> int: ...

    async def forget_remote_actor(self, follower: str) -> int: ...

    async def count_actors(self) -> int: ...

    async def list_followers(self, kind: str, actor_id: str) -> list[dict[str, Any]]: ...

    async def count_followers(self, kind: str, actor_id: str) -> int: ...

    async def event_followers(self, event_id: str) -> list[dict[str, Any]]: ...

    async def remote_key(self, key_id: str) -> tuple[str, str] | None: ...

    async def put_remote_key(self, key_id: str, owner: str, public_pem: str) -> None: ...

    async def start_cursors(self, kind: str, actor_id: str) -> None: ...

    async def sessions_to_publish(self, limit: int = 100) -> list[tuple[str, str, int, int]]: ...

    async def change_refs(
        self, session_id: str, after: int, limit: int
    ) -> list[tuple[int, str, int | None]]: ...

    async def set_cursor(self, session_id: str, seq: int) -> None: ...

    async def published_note(self, item_id: int) -> tuple[int, bool] | None: ...

    async def set_published_note(
        self, item_id: int, session_id: str, version: int, deleted: bool
    ) -> None: ...

    async def withdraw_note(self, item_id: int) -> None: ...

    async def publish_activity(
        self,
        activity_id: str,
        actor_kind: str,
        actor_id: str,
        activity_type: str,
        item_id: int | None,
        body: str,
        inboxes: list[str],
    ) -> int: ...

    async def queue_deliveries(self, activity: int, inboxes: list[str], now: str) -> int: ...

    async def shared_inboxes(self, kind: str, actor_id: str) -> list[str]: ...

    async def due_deliveries(self, now: str, limit: int) -> list[dict[str, Any]]: ...
    async def delivery_pending(self, job_id: int) -> str: ...

    async def next_delivery_at(self) -> str | None: ...

    async def delivered(self, job_id: int) -> None: ...

    async def retry_delivery(self, job_id: int, next_at: str, error: str) -> None: ...

    async def mark_host_dead(self, host: str) -> int: ...

    async def host_alive(self, host: str) -> None: ...

    async def count_deliveries(self) -> int: ...

    async def outbox(
        self, kind: str, actor_id: str, before: int | None, limit: int
    ) -> list[tuple[int, str]]: ...

    async def count_outbox(self, kind: str, actor_id: str) -> int: ...

    async def media_types(self, media_ids: list[str]) -> dict[str, str]: ...

    async def remote_author(self, actor: str, handle: str) -> int: ...

    async def set_author_avatar(self, actor: str, media_id: str) -> None: ...

    async def author_avatar(self, actor: str) -> str: ...

    async def replies_by(self, actor: str) -> list[int]: ...

    async def forget_author_avatar(self, actor: str) -> None: ...

    async def avatar_of_account(self, account_id: int) -> str: ...

    async def shown_avatars(self, session_id: str) -> dict[int, str]: ...

    async def reply_of(self, object_id: str) -> tuple[int, str] | None: ...

    async def add_reply(self, object_id: str, comment_id: int, actor: str) -> None: ...

    async def add_reaction(self, activity_id: str, actor: str, kind: str, item_id: int) -> bool: ...

    async def remove_reaction(self, activity_id: str, actor: str) -> int | None: ...

    async def reactions_of(self, item_id: int) -> dict[str, int]: ...

    async def reaction_counts(self, session_id: str) -> dict[int, dict[str, int]]: ...

    async def block(self, target: str, kind: str) -> None: ...

    async def unblock(self, target: str) -> None: ...

    async def blocked(self, actor: str, host: str) -> bool: ...

    async def list_blocks(self) -> list[tuple[str, str]]: ...


Op = Callable[[Unit], Coroutine[Any, Any, T]]


class Store(Protocol):
    """A backend: opened and closed by the service lifecycle, one writer of ordered commits."""

    on_commit: Callable[[list[Change]], None]
    commits: int  # transactions committed
    writer_failures: int  # times the writer loop itself failed and was restarted
    last_writer_error: str | None

    @property
    def healthy(self) -> bool:
        """False once the writer has stopped for good (closed, or not running)."""
        ...

    @property
    def queue_depth(self) -> int:
        """Writes waiting for the writer (for /metrics)."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def schema_version(self) -> int: ...

    async def ping(self) -> bool:
        """True when the database is there to serve (for /healthz): PostgreSQL answers a trivial
        query within 2 s; SQLite's file is open and still at its path."""
        ...

    async def write(self, op: Op[T], *, timeout: float | None = None) -> T:
        """Run op in a write transaction; returns once it is durable and its changes published."""
        ...

    async def enqueue(self, op: Op[T], *, timeout: float | None = None) -> asyncio.Future[T]:
        """Queue op; its future is answered once it is durable and its changes published (or it
        failed). Suspends only for room in the queue; the caller bounds its wait for the future."""
        ...

    async def read(
        self, fn: Callable[[Unit], Awaitable[T]], *, timeout: float | None = None, pool: str = "live"
    ) -> T:
        """Run fn in one consistent read snapshot. pool "live" serves the stream (resumes,
        capture); pool "pages" serves page loads, archive and search, so neither queues behind
        the other."""
        ...

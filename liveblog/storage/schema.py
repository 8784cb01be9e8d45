"""Numbered migrations, tracked in PRAGMA user_version. Append only: never edit a released step."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: events, sessions, the stream (items + changes), idempotency keys, access, media.
    """
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        starts_on TEXT NOT NULL,
        ends_on TEXT NOT NULL,
        venue TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        hashtags TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL REFERENCES events(id),
        title TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        room TEXT NOT NULL DEFAULT '',
        speakers TEXT NOT NULL DEFAULT '[]',
        hashtags TEXT NOT NULL DEFAULT '[]',
        description TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'live', 'ended')),
        question_moderation INTEGER NOT NULL DEFAULT 0,
        stream_epoch TEXT NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0,
        ended_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX sessions_by_event ON sessions(event_id, starts_at);
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        kind TEXT NOT NULL,
        client_id TEXT NOT NULL,
        author TEXT NOT NULL DEFAULT '',
        author_ref TEXT,
        body TEXT NOT NULL DEFAULT '',
        html TEXT NOT NULL DEFAULT '',
        key_point INTEGER NOT NULL DEFAULT 0,
        data TEXT NOT NULL DEFAULT '{}',
        typed_at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        sort_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL DEFAULT 1,
        seq INTEGER NOT NULL,
        UNIQUE (session_id, client_id)
    );
    CREATE INDEX items_by_time ON items(session_id, sort_at, id);
    CREATE TABLE changes (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        op TEXT NOT NULL,
        item_id INTEGER,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE client_ops (
        session_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        response TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, client_id)
    ) WITHOUT ROWID;
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT 'organiser',
        created_at TEXT NOT NULL
    );
    CREATE TABLE login_sessions (
        token_hash TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked_at TEXT
    ) WITHOUT ROWID;
    CREATE TABLE invites (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        event_id TEXT NOT NULL REFERENCES events(id),
        session_id TEXT REFERENCES sessions(id),
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE media (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        content_type TEXT NOT NULL,
        bytes BLOB NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        uploaded_by TEXT,
        created_at TEXT NOT NULL
    );
    """,
    # 2: audience votes (issue 4). One row per participant per poll / per question upvote: the
    # primary keys are what make "one vote each" true even under concurrent or replayed requests.
    # `questions` keeps an asked question's private part (full text, who asked) while the public
    # item in the stream shows it only once it is visible.
    """
    CREATE TABLE votes (
        poll_id INTEGER NOT NULL REFERENCES items(id),
        participant TEXT NOT NULL,
        choice TEXT NOT NULL,
        ip TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (poll_id, participant)
    ) WITHOUT ROWID;
    CREATE TABLE upvotes (
        question_id INTEGER NOT NULL REFERENCES items(id),
        participant TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (question_id, participant)
    ) WITHOUT ROWID;
    CREATE TABLE questions (
        item_id INTEGER PRIMARY KEY REFERENCES items(id),
        session_id TEXT NOT NULL REFERENCES sessions(id),
        participant TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL,
        ip TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE INDEX questions_by_session ON questions(session_id, item_id);
    """,
    # 3: social feeds (issue 9). A collected post is stored once per (network, post id): our own
    # copy, kept after the network deletes it. Routes say which session (or '' for the event's
    # own feed) it belongs to and its moderation state; an approved route points at its stream
    # item. Rules (allowed authors, blocked accounts and words) are per event. Cursors are each
    # source's resume point (since_id, time_us); reads count what a paid API billed us for.
    """
    CREATE TABLE social_posts (
        id INTEGER PRIMARY KEY,
        network TEXT NOT NULL,
        post_id TEXT NOT NULL,
        author_handle TEXT NOT NULL DEFAULT '',
        author_name TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL DEFAULT '',
        url TEXT NOT NULL DEFAULT '',
        posted_at TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',
        collected_at TEXT NOT NULL,
        deleted_upstream_at TEXT,
        UNIQUE (network, post_id)
    );
    CREATE TABLE social_routes (
        post_row INTEGER NOT NULL REFERENCES social_posts(id),
        event_id TEXT NOT NULL REFERENCES events(id),
        session_id TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'removed')),
        item_id INTEGER,
        routed_at TEXT NOT NULL,
        decided_at TEXT,
        decided_by TEXT,
        PRIMARY KEY (post_row, event_id, session_id)
    );
    CREATE INDEX social_routes_by_session ON social_routes(session_id, state, post_row);
    CREATE INDEX social_routes_by_event ON social_routes(event_id, state);
    CREATE TABLE feed_rules (
        event_id TEXT NOT NULL REFERENCES events(id),
        kind TEXT NOT NULL CHECK (kind IN ('allow_author', 'block_author', 'block_word')),
        value TEXT NOT NULL,
        created_by TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        PRIMARY KEY (event_id, kind, value)
    );
    CREATE TABLE feed_policies (
        event_id TEXT NOT NULL REFERENCES events(id),
        session_id TEXT NOT NULL DEFAULT '',
        moderate INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (event_id, session_id)
    );
    CREATE TABLE feed_cursors (
        source TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE feed_reads (
        event_id TEXT NOT NULL,
        session_id TEXT NOT NULL DEFAULT '',
        network TEXT NOT NULL,
        reads INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (event_id, session_id, network)
    );
    """,
    # 4: who may ask and upvote questions in a session: anyone, room_code or accounts.
    """
    ALTER TABLE sessions ADD COLUMN questions_audience TEXT NOT NULL DEFAULT 'anyone';
    """,
]

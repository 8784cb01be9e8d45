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
    # 5: the archive (issue 10). `archives` marks a session whose stream became a knowledge page
    # and holds its summary; `session_tags` its normalised tags (from hashtags and organisers);
    # `item_history` every earlier version of an edited note or post (kept by a trigger, so no
    # writer can forget it). `search_index` is the full-text index, kept by triggers in the same
    # transaction as the write that changes what it indexes: a note is findable once acknowledged.
    # Its rowid encodes what a row indexes: items id*8, sessions rowid*8+1, summaries rowid*8+2,
    # comments id*8+3, so a trigger replaces a row in one step. Porter stemming (English) over
    # unicode61 with diacritics removed.
    """
    CREATE TABLE archives (
        session_id TEXT PRIMARY KEY REFERENCES sessions(id),
        summary TEXT NOT NULL DEFAULT '',
        summary_html TEXT NOT NULL DEFAULT '',
        summary_by TEXT NOT NULL DEFAULT '',
        archived_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        tags_synced_at TEXT NOT NULL
    );
    CREATE TABLE session_tags (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        tag TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('hashtag', 'organiser')),
        PRIMARY KEY (session_id, tag, source)
    ) WITHOUT ROWID;
    CREATE INDEX session_tags_by_tag ON session_tags(tag, session_id);
    CREATE TABLE item_history (
        item_id INTEGER NOT NULL REFERENCES items(id),
        version INTEGER NOT NULL,
        body TEXT NOT NULL,
        html TEXT NOT NULL,
        written_at TEXT NOT NULL,
        replaced_at TEXT NOT NULL,
        PRIMARY KEY (item_id, version)
    ) WITHOUT ROWID;
    CREATE TRIGGER item_history_keep AFTER UPDATE OF body ON items
    WHEN old.body <> new.body AND old.kind IN ('note', 'social')
    BEGIN
        INSERT OR IGNORE INTO item_history (item_id, version, body, html, written_at, replaced_at)
        VALUES (old.id, old.version, old.body, old.html, old.updated_at, new.updated_at);
    END;

    CREATE VIRTUAL TABLE search_index USING fts5(
        title, body, tags,
        kind UNINDEXED, ref UNINDEXED, session_id UNINDEXED, event_id UNINDEXED, at UNINDEXED,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER search_item_insert AFTER INSERT ON items
    WHEN new.deleted = 0 AND new.body <> ''
         AND NOT (new.kind = 'poll' AND json_extract(new.data, '$.state') = 'draft')
    BEGIN
        INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
        SELECT new.id * 8, '', new.body, '', new.kind, new.id, new.session_id, s.event_id, new.typed_at
        FROM sessions s WHERE s.id = new.session_id;
    END;
    CREATE TRIGGER search_item_update AFTER UPDATE OF body, deleted ON items
    BEGIN
        DELETE FROM search_index WHERE rowid = old.id * 8;
        INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
        SELECT new.id * 8, '', new.body, '', new.kind, new.id, new.session_id, s.event_id, new.typed_at
        FROM sessions s WHERE s.id = new.session_id AND new.deleted = 0 AND new.body <> ''
        AND NOT (new.kind = 'poll' AND json_extract(new.data, '$.state') = 'draft');
    END;
    -- A poll becomes findable when it opens (its question is public from then on).
    CREATE TRIGGER search_poll_opened AFTER UPDATE OF data ON items
    WHEN new.kind = 'poll' AND json_extract(old.data, '$.state') = 'draft'
         AND json_extract(new.data, '$.state') <> 'draft' AND new.deleted = 0
    BEGIN
        DELETE FROM search_index WHERE rowid = old.id * 8;
        INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
        SELECT new.id * 8, '', new.body, '', new.kind, new.id, new.session_id, s.event_id, new.typed_at
        FROM sessions s WHERE s.id = new.session_id;
    END;
    CREATE TRIGGER search_session_insert AFTER INSERT ON sessions
    BEGIN
        INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
        VALUES (new.rowid * 8 + 1, new.title,
                new.description || ' ' || replace(replace(replace(new.speakers, '["', ''), '"]', ''), '","', ', '),
                replace(replace(replace(replace(new.hashtags, '[', ''), ']', ''), '"', ''), ',', ' '),
                'session', new.id, new.id, new.event_id, new.starts_at);
    END;
    CREATE TRIGGER search_session_update AFTER UPDATE OF title, description, speakers, hashtags ON sessions
    BEGIN
        DELETE FROM search_index WHERE rowid = old.rowid * 8 + 1;
        INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
        VALUES (new.rowid * 8 + 1, new.title,
                new.description || ' ' || replace(replace(replace(new.speakers, '["', ''), '"]', ''), '","', ', '),
                replace(replace(replace(replace(new.hashtags, '[', ''), ']', ''), '"', ''), ',', ' ')
                || ' ' || coalesce((SELECT group_concat(tag, ' ') FROM session_tags WHERE session_id = new.id), ''),
                'session', new.id, new.id, new.event_id, new.starts_at);
    END;
    CREATE TRIGGER search_tag_insert AFTER INSERT ON session_tags
    BEGIN
        UPDATE search_index SET tags = coalesce((SELECT group_concat(DISTINCT tag) FROM session_tags
                                                 WHERE session_id = new.session_id), '')
        WHERE rowid = (SELECT rowid * 8 + 1 FROM sessions WHERE id = new.session_id);
    END;
    CREATE TRIGGER search_tag_delete AFTER DELETE ON session_tags
    BEGIN
        UPDATE search_index SET tags = coalesce((SELECT group_concat(DISTINCT tag) FROM session_tags
                                                 WHERE session_id = old.session_id), '')
        WHERE rowid = (SELECT rowid * 8 + 1 FROM sessions WHERE id = old.session_id);
    END;
    CREATE TRIGGER search_summary_insert AFTER INSERT ON archives
    WHEN new.summary <> ''
    BEGIN
        INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
        SELECT s.rowid * 8 + 2, s.title, new.summary, '', 'summary', s.id, s.id, s.event_id, new.updated_at
        FROM sessions s WHERE s.id = new.session_id;
    END;
    CREATE TRIGGER search_summary_update AFTER UPDATE OF summary ON archives
    BEGIN
        DELETE FROM search_index WHERE rowid = (SELECT rowid * 8 + 2 FROM sessions WHERE id = old.session_id);
        INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
        SELECT s.rowid * 8 + 2, s.title, new.summary, '', 'summary', s.id, s.id, s.event_id, new.updated_at
        FROM sessions s WHERE s.id = new.session_id AND new.summary <> '';
    END;
    INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
    SELECT i.id * 8, '', i.body, '', i.kind, i.id, i.session_id, s.event_id, i.typed_at
    FROM items i JOIN sessions s ON s.id = i.session_id WHERE i.deleted = 0 AND i.body <> ''
    AND NOT (i.kind = 'poll' AND json_extract(i.data, '$.state') = 'draft');
    INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
    SELECT rowid * 8 + 1, title,
           description || ' ' || replace(replace(replace(speakers, '["', ''), '"]', ''), '","', ', '),
           replace(replace(replace(replace(hashtags, '[', ''), ']', ''), '"', ''), ',', ' '),
           'session', id, id, event_id, starts_at
    FROM sessions;
    """,
    # 6: comment threads and reader accounts (issue 10). A comment belongs to a session's
    # thread (before, during or after it); its changes go through the session's stream like any
    # item. `accounts.banned_at` bans an account; `password_resets` holds one-time reset links
    # (hashed). Comments are indexed for search like items (rowid id*8+3).
    """
    ALTER TABLE accounts ADD COLUMN banned_at TEXT;
    CREATE TABLE password_resets (
        token_hash TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
    ) WITHOUT ROWID;
    CREATE TABLE comments (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        parent_id INTEGER REFERENCES comments(id),
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        author TEXT NOT NULL,
        body TEXT NOT NULL,
        html TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'visible' CHECK (state IN ('visible', 'pending', 'hidden')),
        deleted INTEGER NOT NULL DEFAULT 0,
        ip TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        edited INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX comments_by_session ON comments(session_id, id);
    CREATE TABLE comment_threads (
        session_id TEXT PRIMARY KEY REFERENCES sessions(id),
        locked INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE event_comment_settings (
        event_id TEXT PRIMARY KEY REFERENCES events(id),
        premoderate INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TRIGGER search_comment_insert AFTER INSERT ON comments
    WHEN new.state = 'visible' AND new.deleted = 0
    BEGIN
        INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
        SELECT new.id * 8 + 3, '', new.body, '', 'comment', new.id, new.session_id, s.event_id, new.created_at
        FROM sessions s WHERE s.id = new.session_id;
    END;
    CREATE TRIGGER search_comment_update AFTER UPDATE OF body, state, deleted ON comments
    BEGIN
        DELETE FROM search_index WHERE rowid = old.id * 8 + 3;
        INSERT INTO search_index (rowid, title, body, tags, kind, ref, session_id, event_id, at)
        SELECT new.id * 8 + 3, '', new.body, '', 'comment', new.id, new.session_id, s.event_id, new.created_at
        FROM sessions s WHERE s.id = new.session_id AND new.state = 'visible' AND new.deleted = 0;
    END;
    """,
    # 7: search in each event's language (issue 10). `events.language` (a code of
    # models.SEARCH_LANGUAGES; 'en' for events made before, as they were indexed) picks the
    # Snowball stemmer for everything indexed under the event. FTS5 cannot call a Python stemmer
    # as a tokenizer, so the index is split in two. `search_index` becomes a plain table of what
    # is indexed (the same rows and rowids, kept by steps 5 and 6's triggers unchanged), and its
    # own triggers keep `search_terms`, the FTS5 index of its words as stems, in the same
    # transaction: `liveblog_words(language, text)`, a function every writing connection
    # registers (storage/searchtext.py), folds and stems each word and marks it with the language
    # ("en_polici"), so that one query can ask for each language's stems. `facets` holds the event,
    # kind, session and day as words ("ev_<hex id>", "k_<hex kind>", "s_<hex id>", "d_20260514"),
    # so that filters are index lookups, not a read of every row that matches the words.
    """
    ALTER TABLE events ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
    CREATE TEMP TABLE search_rows AS
        SELECT rowid AS id, title, body, tags, kind, ref, session_id, event_id, at FROM search_index;
    DROP TABLE search_index;
    CREATE TABLE search_index (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        tags TEXT NOT NULL,
        kind TEXT NOT NULL,
        ref TEXT NOT NULL,
        session_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX search_index_by_event ON search_index(event_id);
    CREATE VIRTUAL TABLE search_terms USING fts5(
        title, body, tags, facets,
        tokenize = "unicode61 remove_diacritics 0 tokenchars '_'"
    );
    CREATE TRIGGER search_terms_insert AFTER INSERT ON search_index
    BEGIN
        INSERT INTO search_terms (rowid, title, body, tags, facets)
        SELECT new.id, liveblog_words(e.language, new.title), liveblog_words(e.language, new.body),
               liveblog_words(e.language, new.tags), 'ev_' || hex(new.event_id) || ' k_' || hex(new.kind)
               || ' s_' || hex(new.session_id) || ' d_' || replace(substr(new.at, 1, 10), '-', '')
        FROM events e WHERE e.id = new.event_id;
    END;
    CREATE TRIGGER search_terms_delete AFTER DELETE ON search_index
    BEGIN
        DELETE FROM search_terms WHERE rowid = old.id;
    END;
    CREATE TRIGGER search_terms_update AFTER UPDATE ON search_index
    BEGIN
        DELETE FROM search_terms WHERE rowid = old.id;
        INSERT INTO search_terms (rowid, title, body, tags, facets)
        SELECT new.id, liveblog_words(e.language, new.title), liveblog_words(e.language, new.body),
               liveblog_words(e.language, new.tags), 'ev_' || hex(new.event_id) || ' k_' || hex(new.kind)
               || ' s_' || hex(new.session_id) || ' d_' || replace(substr(new.at, 1, 10), '-', '')
        FROM events e WHERE e.id = new.event_id;
    END;
    -- A new language re-stems everything indexed under the event.
    CREATE TRIGGER search_terms_language AFTER UPDATE OF language ON events
    WHEN old.language <> new.language
    BEGIN
        DELETE FROM search_terms WHERE rowid IN (SELECT id FROM search_index WHERE event_id = new.id);
        INSERT INTO search_terms (rowid, title, body, tags, facets)
        SELECT id, liveblog_words(new.language, title), liveblog_words(new.language, body),
               liveblog_words(new.language, tags), 'ev_' || hex(event_id) || ' k_' || hex(kind)
               || ' s_' || hex(session_id) || ' d_' || replace(substr(at, 1, 10), '-', '')
        FROM search_index WHERE event_id = new.id;
    END;
    INSERT INTO search_index (id, title, body, tags, kind, ref, session_id, event_id, at)
        SELECT id, title, body, tags, kind, ref, session_id, event_id, at FROM search_rows ORDER BY id;
    DROP TABLE search_rows;
    """,
    # 8: knowledge-page cards (issue 10, storage/cards.py): each note's or post's HTML on its
    # knowledge page, kept with the item version and the card key (template version, ...) it was
    # rendered under, so an uncached page reads its cards instead of rendering 2,000 of them. A
    # card that no longer matches its item's version or the page's key is rendered again.
    # `card_sections`: a page's cards assembled, valid at one stream position of the session.
    # `items_shown`: what a page shows in full beside its cards (key points, polls, questions).
    """
    CREATE TABLE item_cards (
        item_id INTEGER PRIMARY KEY REFERENCES items(id),
        card_key TEXT NOT NULL,
        item_version INTEGER NOT NULL,
        html TEXT NOT NULL,
        words INTEGER NOT NULL,
        rendered_at TEXT NOT NULL
    );
    CREATE TABLE card_sections (
        session_id TEXT PRIMARY KEY REFERENCES sessions(id),
        card_key TEXT NOT NULL,
        stream_epoch TEXT NOT NULL,
        last_seq INTEGER NOT NULL,
        notes_html TEXT NOT NULL,
        posts_html TEXT NOT NULL,
        notes INTEGER NOT NULL,
        posts INTEGER NOT NULL,
        words INTEGER NOT NULL
    );
    CREATE INDEX items_shown ON items(session_id, sort_at, id)
        WHERE kind IN ('poll', 'question') OR (kind = 'note' AND key_point = 1);
    """,
    # 9: an event's own feed ("Around the event", docs/feeds.md): social posts that match the
    # event but no live session go to a hidden stream per event, a sessions row of kind
    # 'event_feed', so they get sequence numbers, resume, media, search and exports like any
    # stream. Every programme query asks for kind 'session'.
    """
    ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'session'
        CHECK (kind IN ('session', 'event_feed'));
    CREATE UNIQUE INDEX sessions_one_event_feed ON sessions(event_id) WHERE kind = 'event_feed';
    """,
    # 10: renaming a Bluesky author once their DID is resolved finds their posts by handle.
    """
    CREATE INDEX social_posts_by_author ON social_posts(network, author_handle);
    """,
    # 11: moderated-out text leaves the change log (storage/redaction.py does it at every removal
    # from now on): for items and comments already removed, every change but their latest becomes
    # `item.redacted` / `comment.redacted`, the form models.redaction gives, and removed
    # items' earlier versions and kept cards are deleted (pages' assembled cards are all
    # reassembled from the kept ones at their next view).
    """
    CREATE TEMP TABLE removed_items AS SELECT id, seq FROM items WHERE deleted = 1
        OR (kind = 'question' AND json_extract(data, '$.state') NOT IN ('visible', 'answered'))
        OR (kind = 'social' AND json_extract(data, '$.state') IN ('pending', 'rejected', 'hidden'))
        OR (kind = 'poll' AND json_extract(data, '$.state') = 'draft');
    UPDATE changes SET op = 'item.redacted',
        payload = json_object('type', 'change', 'seq', seq, 'op', 'item.redacted', 'item_id', item_id)
    WHERE op <> 'item.redacted' AND item_id IN (SELECT id FROM removed_items)
      AND seq < (SELECT r.seq FROM removed_items r WHERE r.id = changes.item_id);
    DELETE FROM item_history WHERE item_id IN (SELECT id FROM removed_items);
    DELETE FROM item_cards WHERE item_id IN (SELECT id FROM removed_items);
    DELETE FROM card_sections;
    DROP TABLE removed_items;
    UPDATE changes SET op = 'comment.redacted',
        payload = json_object('type', 'change', 'seq', seq, 'op', 'comment.redacted',
                              'comment_id', json_extract(payload, '$.comment.id'))
    WHERE op IN ('comment.created', 'comment.updated', 'comment.deleted')
      AND json_extract(payload, '$.comment.id') IN (SELECT id FROM comments WHERE state <> 'visible' OR deleted = 1)
      AND seq < (SELECT max(l.seq) FROM changes l WHERE l.session_id = changes.session_id
          AND l.op IN ('comment.created', 'comment.updated', 'comment.deleted')
          AND json_extract(l.payload, '$.comment.id') = json_extract(changes.payload, '$.comment.id'));
    """,
    # 12: the programme (issue 17, docs/programme.md): a cancelled session stays in the programme
    # marked as cancelled; `tags` are the programme's own (an imported schedule's track);
    # `source_uid` is the guid or UID of the imported schedule entry a session was made from, so
    # re-importing a changed schedule updates, moves and cancels it instead of adding another.
    # `exported_seq`: the stream position an organiser last downloaded the session's export at; a
    # session holding items may be deleted only when nothing changed since (docs/programme.md).
    """
    ALTER TABLE sessions ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sessions ADD COLUMN source_uid TEXT;
    ALTER TABLE sessions ADD COLUMN exported_seq INTEGER;
    CREATE UNIQUE INDEX sessions_by_source ON sessions(event_id, source_uid) WHERE source_uid IS NOT NULL;
    """,
    # 13: an event may keep how many people watch from its viewers (issue 17; docs/protocol.md).
    """
    ALTER TABLE events ADD COLUMN show_viewers INTEGER NOT NULL DEFAULT 1;
    """,
    # 14: a session's recording and where the session starts in it: its key moments become the
    # recording's chapters (archive/chapters.py).
    """
    ALTER TABLE sessions ADD COLUMN recording_url TEXT NOT NULL DEFAULT '';
    ALTER TABLE sessions ADD COLUMN recording_offset INTEGER NOT NULL DEFAULT 0;
    """,
    # 15: the public moderation ledger (issue 17, docs/archive.md): one row per moderation action,
    # written in the same transaction as the action; kept when the target is removed.
    # `public_reasons`: the event's knowledge pages also show the reasons given.
    """
    CREATE TABLE moderation_log (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        session_id TEXT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target_kind TEXT NOT NULL,
        target_id TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX moderation_log_by_event ON moderation_log(event_id, id);
    CREATE INDEX moderation_log_by_session ON moderation_log(session_id, id);
    ALTER TABLE events ADD COLUMN public_reasons INTEGER NOT NULL DEFAULT 0;
    """,
    # 17 (issue 20, docs/federation.md; numbered 17 by the plan, whatever its place here): the
    # fediverse. `federation_keys`: the instance's RSA key pair (one key for every actor, each
    # actor naming it with its own key id; the private half never leaves this table).
    # `federation_handles`: handles organisers chose (the others are derived from ids).
    # `federation_off`: events whose organisers switched federation off (on by default).
    # `federation_followers`: remote accounts following an event or session, with their inboxes.
    # `federation_remote_keys`: remote actors' public keys, cached by key id.
    # `federation_cursors`: how far each followed session's change log has been published.
    # `federation_notes`: what was published of each note (its version, whether deleted).
    # `federation_activities`: every activity published (the outboxes); `withdrawn` when the
    # note stopped being public (its text blanked). `federation_deliveries`: the durable queue,
    # one job per activity and shared inbox (AUTOINCREMENT: a job id is never reused, as the
    # deliverer knows jobs in flight by id). `federation_dead_hosts`: servers given up on.
    # `federation_authors`: remote repliers, each with an account (role 'fediverse', which never
    # logs in) so their replies are comments like any. `federation_replies`: which comment each
    # remote Note became. `federation_reactions`: likes and boosts of our notes.
    # `federation_blocks`: accounts (actor URL) and domains whose activities are ignored.
    """
    CREATE TABLE federation_keys (
        id TEXT PRIMARY KEY,
        public_pem TEXT NOT NULL,
        private_pem TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE federation_handles (
        handle TEXT PRIMARY KEY,
        actor_kind TEXT NOT NULL CHECK (actor_kind IN ('event', 'session')),
        actor_id TEXT NOT NULL,
        UNIQUE (actor_kind, actor_id)
    );
    CREATE TABLE federation_off (
        event_id TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    CREATE TABLE federation_followers (
        actor_kind TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        follower TEXT NOT NULL,
        handle TEXT NOT NULL,
        inbox TEXT NOT NULL,
        shared_inbox TEXT NOT NULL,
        follow_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (actor_kind, actor_id, follower)
    );
    CREATE INDEX federation_followers_by_follower ON federation_followers(follower);
    CREATE TABLE federation_remote_keys (
        key_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        public_pem TEXT NOT NULL,
        fetched_at TEXT NOT NULL
    );
    CREATE TABLE federation_cursors (
        session_id TEXT PRIMARY KEY,
        seq BIGINT NOT NULL
    );
    CREATE TABLE federation_notes (
        item_id BIGINT PRIMARY KEY,
        session_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE federation_activities (
        id INTEGER PRIMARY KEY,
        activity_id TEXT NOT NULL UNIQUE,
        actor_kind TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        type TEXT NOT NULL,
        item_id BIGINT,
        body TEXT NOT NULL,
        withdrawn INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE INDEX federation_activities_by_actor ON federation_activities(actor_kind, actor_id, id);
    CREATE INDEX federation_activities_by_item ON federation_activities(item_id) WHERE item_id IS NOT NULL;
    CREATE TABLE federation_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        activity BIGINT NOT NULL,
        inbox TEXT NOT NULL,
        host TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_at TEXT NOT NULL,
        next_at TEXT NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        UNIQUE (activity, inbox)
    );
    CREATE INDEX federation_deliveries_due ON federation_deliveries(next_at);
    CREATE TABLE federation_dead_hosts (
        host TEXT PRIMARY KEY,
        since TEXT NOT NULL
    );
    CREATE TABLE federation_authors (
        actor TEXT PRIMARY KEY,
        account_id BIGINT NOT NULL,
        avatar TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE federation_replies (
        object_id TEXT PRIMARY KEY,
        comment_id BIGINT NOT NULL,
        actor TEXT NOT NULL
    );
    CREATE TABLE federation_reactions (
        activity_id TEXT PRIMARY KEY,
        actor TEXT NOT NULL,
        type TEXT NOT NULL,
        item_id BIGINT NOT NULL
    );
    CREATE INDEX federation_reactions_by_item ON federation_reactions(item_id);
    CREATE TABLE federation_blocks (
        target TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('account', 'domain')),
        created_at TEXT NOT NULL
    );
    """,
]

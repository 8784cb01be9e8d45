"""Typed, frozen settings read from config.toml; secrets come from the environment only.

Unknown keys are errors that name the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from liveblog.errors import ConfigError
from liveblog.models import SEARCH_LANGUAGES


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_origins: tuple[str, ...] = ()
    public_url: str = ""
    # Strict-Transport-Security on responses served over https (0: none). A year, as browsers'
    # preload lists ask; the header is ignored over plain http, so it is sent only over https.
    hsts_seconds: int = 31536000
    log_format: str = "text"

    def __post_init__(self) -> None:
        if self.log_format not in ("text", "json"):
            raise ConfigError(f'server.log_format must be "text" or "json", not {self.log_format!r}')


@dataclass(frozen=True)
class DatabaseSettings:
    path: str = "liveblog.sqlite3"
    url: str = ""
    synchronous: str = "FULL"
    read_timeout_seconds: float = 10.0
    write_timeout_seconds: float = 30.0
    page_readers: int = 2

    def __post_init__(self) -> None:
        if self.read_timeout_seconds <= 0 or self.write_timeout_seconds <= 0:
            raise ConfigError("database.read_timeout_seconds and database.write_timeout_seconds must be > 0")
        if not 1 <= self.page_readers <= 32:
            raise ConfigError("database.page_readers must be 1 to 32")
        if self.url and not self.url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                f"database.url must be a postgresql:// URL (or empty for SQLite), not {self.url!r}"
            )
        if self.synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ConfigError(f"database.synchronous must be FULL, NORMAL or EXTRA, not {self.synchronous!r}")


@dataclass(frozen=True)
class LimitSettings:
    note_bytes: int = 65536
    frame_bytes: int = 1048576
    upload_bytes: int = 10485760
    question_chars: int = 500
    late_note_grace_minutes: int = 360


@dataclass(frozen=True)
class StreamSettings:
    heartbeat_seconds: float = 15.0
    replay_window: int = 5000
    ring_size: int = 1024
    viewer_buffer_bytes: int = 262144
    stall_seconds: float = 8.0
    # Viewer websockets one process holds before it sheds new ones (1013 with a retry hint): past
    # its memory or its file descriptors, a process would swap or fail every accept. 0: no limit.
    max_viewers: int = 20000
    retry_after_seconds: float = 10.0  # the hint a shed viewer gets: wait at least this, jittered
    # Fan-out writes a frame to many viewers' sockets with one system call (Linux's io_uring,
    # streams/uring.py) where the kernel allows it; false: one write per viewer.
    io_uring: bool = True

    def __post_init__(self) -> None:
        if self.max_viewers < 0:
            raise ConfigError(f"streams.max_viewers must be 0 (no limit) or more, not {self.max_viewers}")
        if not self.retry_after_seconds > 0:
            raise ConfigError(f"streams.retry_after_seconds must be above 0, not {self.retry_after_seconds}")


@dataclass(frozen=True)
class VoteSettings:
    tally_interval_ms: int = 250
    ip_burst_per_minute: int = 600
    fresh_ids_per_minute: int = 20


@dataclass(frozen=True)
class ArchiveSettings:
    # "organiser": a session becomes a knowledge page when an organiser ends it; "scheduled": also
    # once its scheduled end (plus grace_minutes) has passed, read in `timezone` (the venue's).
    end_rule: str = "organiser"
    grace_minutes: int = 30
    timezone: str = "UTC"
    check_seconds: float = 60.0  # how often ended and overdue sessions are looked for
    related_sessions: int = 5
    search_page_size: int = 20
    search_window: int = 500  # past this many matches, rank (and page through) only the newest this many
    language: str = "en"  # new events' language (search stemming); organisers change it per event

    def __post_init__(self) -> None:
        if self.end_rule not in ("organiser", "scheduled"):
            raise ConfigError(f"archive.end_rule must be 'organiser' or 'scheduled', not {self.end_rule!r}")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.timezone)
        except Exception:
            raise ConfigError(
                f"archive.timezone {self.timezone!r} is not a known time zone (e.g. Europe/Paris)"
            ) from None
        if self.check_seconds <= 0:
            raise ConfigError("archive.check_seconds must be > 0")
        if not 1 <= self.search_page_size <= 100:
            raise ConfigError("archive.search_page_size must be 1 to 100")
        if not 20 <= self.search_window <= 1_000_000:
            raise ConfigError("archive.search_window must be 20 to 1000000")
        if self.language not in SEARCH_LANGUAGES:
            raise ConfigError(
                f"archive.language must be one of {', '.join(SEARCH_LANGUAGES)}, not {self.language!r}"
            )


@dataclass(frozen=True)
class RedisSettings:
    url: str = ""
    resync_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"redis.url must be a redis:// URL (or empty for one process), not {self.url!r}"
            )
        if self.resync_seconds <= 0:
            raise ConfigError("redis.resync_seconds must be > 0")


@dataclass(frozen=True)
class FeedSettings:
    """[feeds]: what every social source shares (see docs/feeds.md)."""

    enabled: bool = True
    lead_minutes: int = 15
    trail_minutes: int = 30
    moderate_by_default: bool = True
    keep_deleted: bool = True
    fetch_media: bool = True
    media_bytes: int = 5242880
    media_timeout_seconds: float = 10.0
    request_timeout_seconds: float = 15.0
    max_post_chars: int = 5000
    backoff_max_seconds: float = 300.0
    # Fetch feeds, media and avatars from private, loopback and link-local addresses too. Off:
    # a post naming an internal URL must not make the server fetch it (docs/feeds.md). On only
    # for tests and the demo, whose fake networks run on loopback.
    allow_private_addresses: bool = False

    def __post_init__(self) -> None:
        if self.request_timeout_seconds <= 0 or self.media_timeout_seconds <= 0:
            raise ConfigError("feeds.request_timeout_seconds and feeds.media_timeout_seconds must be > 0")
        if self.max_post_chars < 280:
            raise ConfigError("feeds.max_post_chars must be at least 280")
        if self.lead_minutes < 0 or self.trail_minutes < 0:
            raise ConfigError("feeds.lead_minutes and feeds.trail_minutes must be >= 0")


@dataclass(frozen=True)
class XFeedSettings:
    """[feeds_x]: X/Twitter API v2 recent search through tweepy (token: LIVEBLOG_X_BEARER_TOKEN)."""

    enabled: bool = True
    api_base: str = "https://api.twitter.com"
    poll_seconds: float = 60.0
    max_results: int = 100
    session_read_cap: int = 2000
    event_read_cap: int = 10000
    cost_per_read_usd: float = 0.005

    def __post_init__(self) -> None:
        if not 10 <= self.max_results <= 100:
            raise ConfigError("feeds_x.max_results must be 10 to 100 (the API's own bounds)")
        if self.poll_seconds <= 0:
            raise ConfigError("feeds_x.poll_seconds must be > 0")


@dataclass(frozen=True)
class MastodonFeedSettings:
    """[feeds_mastodon]: hashtag timelines of these instances, read anonymously."""

    instances: tuple[str, ...] = ()
    poll_seconds: float = 30.0
    limit: int = 40

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 40:
            raise ConfigError("feeds_mastodon.limit must be 1 to 40 (the API's own bound)")
        if self.poll_seconds <= 0:
            raise ConfigError("feeds_mastodon.poll_seconds must be > 0")


@dataclass(frozen=True)
class BlueskyFeedSettings:
    """[feeds_bluesky]: Bluesky posts from a Jetstream websocket; empty url = off."""

    jetstream_url: str = ""
    rewind_seconds: float = 5.0
    cdn_base: str = "https://cdn.bsky.app"
    # Where authors' DIDs are resolved to handles and display names (app.bsky.actor.getProfiles,
    # no login needed); empty: posts name their authors by DID (or a handle Jetstream announced).
    appview_url: str = "https://public.api.bsky.app"


@dataclass(frozen=True)
class RssFeedSettings:
    """[feeds_rss]: RSS or Atom feeds whose entries carry the event's hashtags."""

    urls: tuple[str, ...] = ()
    poll_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.poll_seconds <= 0:
            raise ConfigError("feeds_rss.poll_seconds must be > 0")


@dataclass(frozen=True)
class FederationSettings:
    """[federation]: every public event and session as a fediverse account (docs/federation.md)."""

    enabled: bool = True
    request_timeout_seconds: float = 10.0
    # The largest remote document read (an actor, a key, an incoming activity): Mastodon's are a
    # few KiB; a megabyte leaves room and caps what a hostile server can make us hold.
    max_document_bytes: int = 1048576
    # Fetch actors and keys from, and deliver to, private and loopback addresses too: only for
    # tests and the demo, whose fediverse peers run on loopback (as feeds.allow_private_addresses).
    allow_private_addresses: bool = False

    def __post_init__(self) -> None:
        if self.request_timeout_seconds <= 0:
            raise ConfigError("federation.request_timeout_seconds must be > 0")
        if self.max_document_bytes < 4096:
            raise ConfigError("federation.max_document_bytes must be at least 4096")


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    streams: StreamSettings = field(default_factory=StreamSettings)
    votes: VoteSettings = field(default_factory=VoteSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    feeds: FeedSettings = field(default_factory=FeedSettings)
    feeds_x: XFeedSettings = field(default_factory=XFeedSettings)
    feeds_mastodon: MastodonFeedSettings = field(default_factory=MastodonFeedSettings)
    feeds_bluesky: BlueskyFeedSettings = field(default_factory=BlueskyFeedSettings)
    feeds_rss: RssFeedSettings = field(default_factory=RssFeedSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    # Secret used to sign participant ids and cookies. From LIVEBLOG_SECRET_KEY; when unset a
    # random one here, which Services.build replaces by the key kept in the data directory
    # (access/secret.py), so ids and room codes survive restarts with no configuration.
    secret_key: str = field(default="", repr=False)
    # True when the key came from LIVEBLOG_SECRET_KEY: several processes must share one.
    secret_key_from_env: bool = False
    # App bearer token for X API v2, from LIVEBLOG_X_BEARER_TOKEN; empty = the X source says so and waits.
    x_bearer_token: str = field(default="", repr=False)

    def replace(self, **sections: Any) -> Settings:
        """Return a copy with some fields of some sections replaced: replace(streams={"ring_size": 8})."""
        changes: dict[str, Any] = {}
        for name, value in sections.items():
            current = getattr(self, name)
            changes[name] = dataclasses.replace(current, **value) if isinstance(value, dict) else value
        return dataclasses.replace(self, **changes)


SECRETS = (
    "secret_key",
    "x_bearer_token",
    "secret_key_from_env",
)  # from the environment only, never from the file


def _coerce(section: str, key: str, annotation: str, value: Any) -> Any:
    where = f"{section}.{key}"
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        if value < 0:
            raise ConfigError(f"{where} must not be negative")
        return value
    if annotation == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        return float(value)
    if annotation == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}")
        return value
    if annotation.startswith("tuple"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        return tuple(value)
    raise ConfigError(f"{where}: unsupported type {annotation}")  # pragma: no cover


def settings_from_dict(data: dict[str, Any], env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    sections: dict[str, Any] = {}
    section_types = {f.name: f.type for f in dataclasses.fields(Settings) if f.name not in SECRETS}
    for name, value in data.items():
        if name not in section_types:
            raise ConfigError(f"unknown section [{name}] in configuration")
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table")
        cls = {
            "server": ServerSettings,
            "database": DatabaseSettings,
            "limits": LimitSettings,
            "streams": StreamSettings,
            "votes": VoteSettings,
            "archive": ArchiveSettings,
            "redis": RedisSettings,
            "feeds": FeedSettings,
            "feeds_x": XFeedSettings,
            "feeds_mastodon": MastodonFeedSettings,
            "feeds_bluesky": BlueskyFeedSettings,
            "feeds_rss": RssFeedSettings,
            "federation": FederationSettings,
        }[name]
        hints = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, raw in value.items():
            if key not in hints:
                raise ConfigError(f"unknown key {name}.{key} in configuration")
            kwargs[key] = _coerce(name, key, hints[key], raw)
        sections[name] = cls(**kwargs)
    secret = env.get("LIVEBLOG_SECRET_KEY") or secrets.token_urlsafe(32)
    if "LIVEBLOG_DATABASE" in env:
        db = sections.get("database", DatabaseSettings())
        sections["database"] = dataclasses.replace(db, path=env["LIVEBLOG_DATABASE"])
    if env.get("LIVEBLOG_DATABASE_URL"):  # a URL with a password belongs in the environment, not the file
        db = sections.get("database", DatabaseSettings())
        sections["database"] = dataclasses.replace(db, url=env["LIVEBLOG_DATABASE_URL"])
    if env.get("LIVEBLOG_REDIS_URL"):  # a URL with a password belongs in the environment
        sections["redis"] = dataclasses.replace(
            sections.get("redis", RedisSettings()), url=env["LIVEBLOG_REDIS_URL"]
        )
    return Settings(
        **sections,
        secret_key=secret,
        secret_key_from_env=bool(env.get("LIVEBLOG_SECRET_KEY")),
        x_bearer_token=env.get("LIVEBLOG_X_BEARER_TOKEN", "").strip(),
    )


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read settings from a TOML file (or defaults when path is None)."""
    if path is None:
        return settings_from_dict({}, env)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    return settings_from_dict(data, env)


# Kept for documentation tests: every (section, key) the settings know.
def all_keys() -> list[str]:
    keys: list[str] = []
    for f in dataclasses.fields(Settings):
        if f.name in SECRETS:
            continue
        cls = get_type_hints(Settings)[f.name]
        keys.extend(f"{f.name}.{sub.name}" for sub in dataclasses.fields(cls))
    return keys

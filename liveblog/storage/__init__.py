"""All SQL lives in this package. Everything above it deals in dataclasses from liveblog.models,
through the typed operations of interface.Unit (see interface.py). `make_store` picks the
backend from the settings: SQLite (db.py) by default, PostgreSQL (postgres/) for a database.url."""

from liveblog.settings import DatabaseSettings
from liveblog.storage.access import LOGIN_DAYS, hash_token
from liveblog.storage.db import Database
from liveblog.storage.interface import Op, Store, Unit

Tx = Unit  # an op's unit of work, as code above storage sees it

# Read connections of the "live" pool (resumes, stream heads, capture checks). Replays from
# storage may take all but one (services.REPLAY_READERS): a crowd of viewers resuming from
# before the ring (after a restart) used to fill both readers' queue, and a room of note-takers
# joining then waited seconds for their hello (bench.joins --viewers).
LIVE_READERS = 3


def make_store(settings: DatabaseSettings) -> Store:
    """The configured backend, not yet opened."""
    if settings.url:
        from liveblog.storage.postgres import PostgresStore

        return PostgresStore(
            settings.url,
            readers=LIVE_READERS,
            page_readers=settings.page_readers,
            read_timeout=settings.read_timeout_seconds,
            write_timeout=settings.write_timeout_seconds,
        )
    return Database(
        settings.path,
        synchronous=settings.synchronous,
        readers=LIVE_READERS,
        page_readers=settings.page_readers,
        read_timeout=settings.read_timeout_seconds,
        write_timeout=settings.write_timeout_seconds,
    )


__all__ = ["LIVE_READERS", "LOGIN_DAYS", "Database", "Op", "Store", "Tx", "Unit", "hash_token", "make_store"]

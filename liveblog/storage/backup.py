"""Online backup and restore of the SQLite store, with SQLite's backup API.

`backup` copies a consistent snapshot while the server runs (writers are not blocked for
long: the API copies pages in steps). `restore` replaces the database with a backup while the
server is stopped, and gives every session a new stream epoch: clients that resume with the
old epoch are told to reload (`reload`, close 4409) instead of resuming into a different history.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path

from liveblog.errors import BadRequest, NotFound

# Pages copied per step: small steps let the server's writer in between them.
PAGES_PER_STEP = 1024

Progress = Callable[[int, int], None]  # (pages remaining, total pages)


def _copy(src: sqlite3.Connection, dest: sqlite3.Connection, progress: Progress | None) -> None:
    def report(status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(remaining, total)

    src.backup(dest, pages=PAGES_PER_STEP, progress=report)


def backup(db_path: str, dest_path: str, progress: Progress | None = None) -> None:
    if not Path(db_path).exists():
        raise NotFound(f"there is no database at {db_path}")
    if Path(dest_path).exists():
        raise BadRequest(f"{dest_path} exists already; choose a new file for the backup")
    src = sqlite3.connect(db_path)
    dest = sqlite3.connect(dest_path)
    try:
        _copy(src, dest, progress)
        dest.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    finally:
        dest.close()
        src.close()


def restore(backup_path: str, db_path: str, progress: Progress | None = None) -> int:
    """Replace db_path's content with the backup; returns how many sessions got a new epoch."""
    if not Path(backup_path).exists():
        raise NotFound(f"there is no backup at {backup_path}")
    src = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
    try:
        if src.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BadRequest(f"{backup_path} is not a sound SQLite database")
        dest = sqlite3.connect(db_path, isolation_level=None)
        try:
            _copy(src, dest, progress)
            dest.execute("PRAGMA journal_mode = WAL")
            dest.execute("BEGIN IMMEDIATE")
            ids = [row[0] for row in dest.execute("SELECT id FROM sessions")]
            for session_id in ids:
                dest.execute(
                    "UPDATE sessions SET stream_epoch = ? WHERE id = ?", (secrets.token_hex(8), session_id)
                )
            dest.execute("COMMIT")
            return len(ids)
        finally:
            dest.close()
    finally:
        src.close()

"""The signing key (participant ids, room codes, device cookies) when LIVEBLOG_SECRET_KEY is unset:
made once, on first start, and kept in the data directory (beside the SQLite file, readable by
its owner only), so a room code printed on a slide and every voter's id survive a restart."""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import stat
from pathlib import Path

from liveblog.settings import Settings

KEY_FILE = "liveblog-secret.key"
log = logging.getLogger(__name__)


def key_path(settings: Settings) -> Path:
    """The data directory is the SQLite file's; with PostgreSQL (database.url) too, where
    database.path's directory is the working directory unless set (docs/deployment.md)."""
    return Path(settings.database.path).expanduser().absolute().parent / KEY_FILE


def kept_secret(settings: Settings) -> Settings:
    """Settings whose secret_key is the kept one. The environment's key always wins. A key that
    cannot be read or kept is logged as an error, and this run signs with a key of its own."""
    if settings.secret_key_from_env:
        return settings
    path = key_path(settings)
    try:
        key = _read_or_make(path)
    except OSError as exc:
        log.error(
            "cannot keep the signing key in %s (%s): participant ids and the room codes will change at "
            "every restart, so people could vote again. Make the directory writable, or set LIVEBLOG_SECRET_KEY.",
            path,
            exc,
        )
        return settings
    return dataclasses.replace(settings, secret_key=key)


def _read_or_make(path: Path) -> str:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(48)
    partial = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    # Written whole under another name, then linked in place: a crash leaves no half key, and of
    # two processes starting at once, the second finds the first's key instead of its own.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(partial, path)
        except FileExistsError:
            return _read(path)
    finally:
        partial.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    log.warning("made a new signing key and kept it in %s (LIVEBLOG_SECRET_KEY is unset)", path)
    return key


def _read(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "the signing key %s was readable by others (mode %o): made it the owner's only", path, mode
        )
        path.chmod(0o600)
    key = path.read_text().strip()
    if len(key) < 32:
        raise OSError(f"{path} holds no key (it is empty or too short): delete it to make a new one")
    return key

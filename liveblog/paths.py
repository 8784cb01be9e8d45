"""Where templates and static files are: beside the package in a wheel, at the repo top otherwise."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name}/ directory near {_PACKAGE}")


def default_config() -> Path | None:
    for candidate in (Path.cwd() / "config.toml", _PACKAGE.parent / "config.toml", _PACKAGE / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


class UnsafePath(ValueError):
    """A file name that would land outside the directory it is written into."""


def safe_join(root: Path, relative: str) -> Path:
    """`root / relative`, checked to stay inside `root` (as Werkzeug's and Django's safe_join):
    no absolute path, no `..` segment, no backslash or NUL, and, once resolved (symbolic links
    followed), still under the resolved root. Every file written from data goes through this."""
    parts = relative.split("/")
    if (
        not relative
        or relative.startswith("/")
        or "\\" in relative
        or "\x00" in relative
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise UnsafePath(f"{relative!r}: not a plain relative path")
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise UnsafePath(f"{relative!r}: leads outside {root}")
    return path

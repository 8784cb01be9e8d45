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

"""The architecture is kept by a test: imports point down only (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "liveblog"

# What each layer must never import (directly).
FORBIDDEN = {
    "storage": ("liveblog.streams", "liveblog.capture", "liveblog.archive", "liveblog.web", "starlette", "uvicorn"),
    "streams": ("liveblog.capture", "liveblog.archive", "liveblog.web", "starlette", "uvicorn"),
    "capture": ("liveblog.web", "liveblog.archive"),
    "archive": ("liveblog.web", "liveblog.capture"),
    # The access layer serves every transport, so it knows none of them.
    "access": ("liveblog.web", "liveblog.capture", "liveblog.archive", "liveblog.streams", "starlette", "uvicorn"),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_imports_point_down_only() -> None:
    problems = []
    for layer, forbidden in FORBIDDEN.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            for name in imports_of(path):
                if name.startswith(forbidden):
                    problems.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert problems == []


def test_sql_lives_in_storage_only() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "storage" in path.parts:
            continue
        text = path.read_text()
        if any(word in text for word in ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM")):
            offenders.append(str(path.relative_to(PACKAGE.parent)))
    assert offenders == []

"""The architecture is kept by a test: imports point down only (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "liveblog"

# What each layer must never import (directly).
FORBIDDEN = {
    "storage": (
        "liveblog.streams",
        "liveblog.capture",
        "liveblog.archive",
        "liveblog.web",
        "starlette",
        "uvicorn",
    ),
    "streams": ("liveblog.capture", "liveblog.archive", "liveblog.web", "starlette", "uvicorn"),
    "capture": ("liveblog.web", "liveblog.archive"),
    "archive": ("liveblog.web", "liveblog.capture"),
    # The access layer serves every transport, so it knows none of them.
    "access": (
        "liveblog.web",
        "liveblog.capture",
        "liveblog.archive",
        "liveblog.streams",
        "starlette",
        "uvicorn",
    ),
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


# Every module's place (docs/architecture.md): a module may import only from units ranked below
# its own, or from its own unit. Same-rank units (capture, archive, programme) never import each
# other. Units not listed are an error, so a new top-level module must be placed here.
RANKS = {
    "errors": 0,
    "models": 0,
    "paths": 0,
    "text": 0,
    "logs": 0,
    "metrics": 0,
    "settings": 1,
    "lifecycle": 1,
    "sharedstate": 1,
    "storage": 2,
    "streams": 3,
    "access": 4,
    "capture": 5,
    "archive": 5,
    # The fediverse uses capture's outbound fetches and is wired in by services.
    "federation": 5.5,
    "services": 6,
    "web": 7,
    "demo": 8,
    "demo_feeds": 9,
    "cli": 10,
    "__main__": 11,
    "__init__": 11,
}
# Above storage, only the package's interface (liveblog.storage) is imported, never a backend's
# modules; the CLI's backup commands are the SQLite backend's own tools.
BACKEND_MODULES_ALLOWED_IN = {"cli"}


def unit_of(name: str) -> str:
    return name.split(".")[1] if "." in name else name


def test_every_module_imports_only_downwards() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        unit = rel.parts[0].removesuffix(".py")
        assert unit in RANKS, f"{rel}: place this module's unit in RANKS"
        for name in imports_of(path):
            if not name.startswith("liveblog.") or name == "liveblog":
                continue
            target = unit_of(name)
            if target == unit:
                continue
            assert target in RANKS, f"{rel} imports {name}, whose unit is not in RANKS"
            if RANKS[target] >= RANKS[unit]:
                problems.append(f"{rel} ({unit}) imports {name} ({target})")
            if target == "storage" and name != "liveblog.storage" and unit not in BACKEND_MODULES_ALLOWED_IN:
                problems.append(f"{rel} imports the backend module {name}: use liveblog.storage's interface")
    assert problems == []


def test_the_web_layer_reads_only_through_services() -> None:
    offenders = []
    for path in (PACKAGE / "web").rglob("*.py"):
        text = path.read_text()
        if ".db.read(" in text or ".db.write(" in text or "liveblog.storage" in text:
            offenders.append(str(path.relative_to(PACKAGE.parent)))
    assert offenders == []

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
    # The demo's fake networks live in liveblog/demo/, out of the production capture path.
    "capture": ("liveblog.web", "liveblog.archive", "liveblog.demo"),
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


# The database drivers, and the storage modules of one backend only: above storage, code works
# through liveblog.storage's interface, so it runs on either backend unchanged.
DRIVER_PACKAGES = ("asyncpg", "aiosqlite", "sqlite3")
BACKEND_MODULES = ("liveblog.storage.postgres", "liveblog.storage.db", "liveblog.storage.syncconn")


def test_nothing_above_storage_imports_a_backend_package() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "storage":
            continue
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in DRIVER_PACKAGES:
                problems.append(f"{rel} imports the database driver {name}")
            elif (
                name.startswith(BACKEND_MODULES)
                and rel.parts[0].removesuffix(".py") not in BACKEND_MODULES_ALLOWED_IN
            ):
                problems.append(f"{rel} imports {name}, one backend's own module")
    assert problems == []


def function_level_imports(path: Path) -> list[str]:
    """`import` statements inside a function (or method) body, as "file:line name"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    found += [f"{path.name}:{inner.lineno} {a.name}" for a in inner.names]
                elif isinstance(inner, ast.ImportFrom):
                    found.append(f"{path.name}:{inner.lineno} {inner.module}")
    return sorted(set(found))


def test_the_web_layer_imports_at_module_level_only() -> None:
    """An import inside a function in web/ is how a cycle between page modules hides: shared
    helpers live in web/render.py, web/auth.py and web/threads.py instead, imported at the top."""
    found = [hit for path in sorted((PACKAGE / "web").rglob("*.py")) for hit in function_level_imports(path)]
    assert found == []


def test_archive_and_feeds_never_import_the_web_layer() -> None:
    """Knowledge pages and social feeds work without HTTP (export-site, the CLI, the pollers):
    neither package imports liveblog.web, not even by name at run time (importlib)."""
    problems = []
    for package in (PACKAGE / "archive", PACKAGE / "capture" / "feeds"):
        for path in package.rglob("*.py"):
            rel = path.relative_to(PACKAGE.parent)
            problems += [
                f"{rel} imports {name}" for name in imports_of(path) if name.startswith("liveblog.web")
            ]
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if node.value == "liveblog.web" or node.value.startswith("liveblog.web."):
                        problems.append(f"{rel}:{node.lineno} names the module {node.value}")
    assert problems == []


def test_each_web_module_assigns_its_routes_once() -> None:
    """A module's routes are one list, in matching order, not a list patched further down."""
    problems = []
    for path in (PACKAGE / "web").rglob("*.py"):
        assigned = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                targets = [node.func.value]  # routes.append(...), routes.extend(...)
            else:
                continue
            assigned += [node.lineno for t in targets if isinstance(t, ast.Name) and t.id == "routes"]
        if len(assigned) > 1:
            problems.append(f"{path.name} sets its routes on lines {assigned}")
    assert problems == []


# Who is asking is looked up where its answer is used: a bare `await current_organiser(request)`
# only primed the request's cache for a later render, a dependency nobody could see.
LOOKUPS = ("current_organiser", "current_reader")


def test_no_call_only_primes_the_request() -> None:
    problems = []
    for path in (PACKAGE / "web").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Await):
                call = node.value.value
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in LOOKUPS:
                    problems.append(f"{path.name}:{node.lineno} awaits {call.func.id}() and drops the answer")
    assert problems == []

"""The `liveblog` command: serve, create-organiser, set-password, demo, export, import, export-site."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from liveblog.errors import ConfigError, LiveblogError
from liveblog.lifecycle import Supervisor
from liveblog.paths import default_config
from liveblog.services import Services
from liveblog.settings import Settings, load_settings

# On SIGTERM uvicorn closes every websocket (1012), then waits this long for handlers to finish
# before the lifespan closes the database: well inside the few seconds orchestrators allow.
GRACEFUL_SECONDS = 3


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config or default_config()
    settings = load_settings(path)
    sections: dict[str, dict[str, object]] = {}
    if getattr(args, "db", None):
        sections["database"] = {"path": args.db}
    if getattr(args, "host", None):
        sections.setdefault("server", {})["host"] = args.host
    if getattr(args, "port", None) is not None:
        sections.setdefault("server", {})["port"] = args.port
    return settings.replace(**sections) if sections else settings


@contextlib.asynccontextmanager
async def _open(settings: Settings) -> AsyncIterator[Services]:
    services = Services.build(settings)
    await services.open()
    try:
        yield services
    finally:
        await services.close()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from liveblog.web.app import create_app
    from liveblog.web.serving import uvicorn_options, viewer_path_line

    settings = _settings(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    services = Services.build(settings)
    if args.demo:
        services.add(DemoComponent(services, settings, args.demo_every))
    app = create_app(settings, services, open_services=True)
    options = uvicorn_options(settings)
    logging.getLogger("liveblog").warning(viewer_path_line(options["ws"]))
    uvicorn.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        **options,
        loop=args.loop,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        log_level=args.log_level,
    )
    return 0


class DemoComponent:
    """The demo as a service component: loads the demo data once the store is open and runs the
    demo note-taker under the supervisor (restarted if it fails)."""

    name = "demo"

    def __init__(self, services: Services, settings: Settings, every: float) -> None:
        self.services = services
        self.settings = settings
        self.every = every

    async def open(self, supervisor: Supervisor) -> None:
        from liveblog.demo import demo_note_taker, load_demo

        services = self.services
        ids = await load_demo(services)
        base = f"http://{self.settings.server.host}:{self.settings.server.port}"
        print(
            f"\n  Liveblog demo is ready: {base}/\n"
            f"  Live session:       {base}/sessions/{ids['live_session']}\n"
            f"  Note-taker link:    {base}{ids['invite_url']}\n"
            f"  Organiser log in:   {base}/login  (organiser / liveblog-demo)\n",
            flush=True,
        )
        invites = await services.accounts.invites(ids["event"])
        invite = next(i for i in invites if i.id == ids["invite_id"])
        supervisor.spawn("demo.note_taker", lambda: demo_note_taker(services, ids["live_session"], invite, self.every))

    async def close(self) -> None:
        pass  # its task belongs to the supervisor, which stops it

    def health(self) -> dict[str, Any]:
        return {"ok": True}


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get("LIVEBLOG_ORGANISER_PASSWORD"):
        return os.environ["LIVEBLOG_ORGANISER_PASSWORD"]
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise LiveblogError("the passwords differ")
    return first


def cmd_create_organiser(args: argparse.Namespace) -> int:
    settings = _settings(args)
    password = _read_password(args)

    async def run() -> None:
        async with _open(settings) as services:
            await services.accounts.create_organiser(args.username, password)

    asyncio.run(run())
    print(f"organiser {args.username!r} created in {settings.database.path}")
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    settings = _settings(args)
    password = _read_password(args)

    async def run() -> None:
        async with _open(settings) as services:
            await services.accounts.set_password(args.username, password)

    asyncio.run(run())
    print(f"password changed for {args.username!r}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from liveblog.demo import load_demo

    settings = _settings(args)

    async def run() -> dict[str, str]:
        async with _open(settings) as services:
            return await load_demo(services)

    ids = asyncio.run(run())
    print(f"demo event {ids['event']} loaded into {settings.database.path}; note-taker link: {ids['invite_url']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from liveblog.archive.exports import export_json

    settings = _settings(args)

    async def run() -> dict[str, Any]:
        async with _open(settings) as services:
            return await export_json(services.db, args.event)

    doc = asyncio.run(run())
    text = json.dumps(doc, ensure_ascii=False, indent=1)
    if args.file == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(args.file).write_text(text + "\n", encoding="utf-8")
        print(f"event {args.event} ({len(doc['sessions'])} sessions) exported to {args.file}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    import json

    from liveblog.archive.exports import import_json

    settings = _settings(args)
    try:
        doc = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LiveblogError(f"cannot read {args.file}: {exc}") from None

    async def run() -> tuple[str, int]:
        async with _open(settings) as services:
            return await import_json(services.db, doc)

    event_id, count = asyncio.run(run())
    print(f"event {event_id} ({count} sessions) imported into {settings.database.path}", file=sys.stderr)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from liveblog.storage.backup import backup

    settings = _settings(args)
    backup(settings.database.path, args.dest, _progress("backing up"))
    print(f"backed up {settings.database.path} to {args.dest}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from liveblog.storage.backup import restore

    settings = _settings(args)
    if not args.yes:
        print(
            f"This replaces everything in {settings.database.path} with {args.source}.\n"
            "Stop the server first. Run again with --yes to go ahead.",
            file=sys.stderr,
        )
        return 2
    sessions = restore(args.source, settings.database.path, _progress("restoring"))
    print(f"restored {args.source} into {settings.database.path}; {sessions} session streams got a new epoch")
    return 0


def _progress(what: str) -> Callable[[int, int], None]:
    def show(remaining: int, total: int) -> None:
        if total and sys.stderr.isatty():
            print(f"\r{what}: {100 * (total - remaining) // total}%", end="", file=sys.stderr, flush=True)

    return show


def cmd_export_site(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from liveblog.web.app import make_templates
    from liveblog.web.static_site import export_site

    settings = _settings(args)
    bar = tqdm(unit="page", desc=f"exporting {args.event}", disable=None, file=sys.stderr)

    def progress(step: str, total: int) -> None:
        bar.total = total
        bar.set_postfix_str(step, refresh=False)
        bar.update(1)

    async def run() -> dict[str, int]:
        async with _open(settings) as services:
            return await export_site(services, make_templates().env, args.event, Path(args.dir),
                                     settings.server.public_url.rstrip("/"), progress)

    try:
        counts = asyncio.run(run())
    finally:
        bar.close()
    print(f"{counts['pages']} pages, {counts['photos']} photos and a search index of {counts['index_entries']}"
          f" entries written to {args.dir} (open {Path(args.dir) / 'index.html'})", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="liveblog", description="Live social reporting of events.")
    p.add_argument("--config", type=Path, help="configuration file (default: ./config.toml if present)")
    p.add_argument("--db", help="SQLite database file (overrides database.path)")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--demo", action="store_true", help="load the demo event and keep a demo note-taker posting")
    serve.add_argument("--demo-every", type=float, default=8.0, metavar="SECONDS", help="demo note-taker's pace")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--loop", choices=["auto", "asyncio", "uvloop"], default="auto", help="event loop (auto: uvloop if installed)"
    )
    serve.set_defaults(func=cmd_serve)
    for name, func, text in (
        ("create-organiser", cmd_create_organiser, "create an organiser account"),
        ("set-password", cmd_set_password, "change an organiser's password"),
    ):
        c = sub.add_parser(name, help=text)
        c.add_argument("username")
        c.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        c.set_defaults(func=func)
    demo = sub.add_parser("demo", help="load the demo event into the database and exit")
    demo.set_defaults(func=cmd_demo)
    export = sub.add_parser("export", help="write an event's archive as JSON (docs/archive.md)")
    export.add_argument("event", help="the event id")
    export.add_argument("file", help="where to write it ('-' for standard output)")
    export.set_defaults(func=cmd_export)
    site = sub.add_parser("export-site", help="write an event's archive as a static site (HTML, CSS, images)")
    site.add_argument("event", help="the event id")
    site.add_argument("dir", help="the folder to write (created if missing)")
    site.set_defaults(func=cmd_export_site)
    imp = sub.add_parser("import", help="restore an event from its JSON export (into a fresh instance)")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import)
    b = sub.add_parser("backup", help="copy the database to a new file while the server runs (SQLite backup API)")
    b.add_argument("dest")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="replace the database with a backup (server stopped); streams get new epochs")
    r.add_argument("source")
    r.add_argument("--yes", action="store_true", help="really replace the database")
    r.set_defaults(func=cmd_restore)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"liveblog: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except LiveblogError as exc:
        print(f"liveblog: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

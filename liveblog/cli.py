"""The `liveblog` command: serve, create-organiser, set-password, demo, backup, restore,
migrate-to-postgres, export, import, export-site, proceedings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from liveblog.access.accounts import Accounts
from liveblog.errors import ConfigError, LiveblogError
from liveblog.lifecycle import Listening, Supervisor
from liveblog.logs import configure as configure_logs
from liveblog.paths import default_config
from liveblog.services import Services
from liveblog.settings import Settings, load_settings
from liveblog.text import plural

# On SIGTERM uvicorn closes every websocket (1012), then waits this long for handlers to finish
# before the lifespan closes the database: well inside the few seconds orchestrators allow.
GRACEFUL_SECONDS = 3
STARTUP_FAILURE = 3  # uvicorn's exit status when the server could not start (its socket taken, ...)


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config or default_config()
    settings = load_settings(path)
    sections: dict[str, dict[str, object]] = {}
    if getattr(args, "db", None):
        sections["database"] = {"url": args.db} if _is_url(args.db) else {"path": args.db}
    if getattr(args, "host", None):
        sections.setdefault("server", {})["host"] = args.host
    if getattr(args, "port", None) is not None:
        sections.setdefault("server", {})["port"] = args.port
    return settings.replace(**sections) if sections else settings


def _is_url(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def _where(settings: Settings) -> str:
    """The database a command works on, as its messages name it (a URL without its password)."""
    if settings.database.url:
        from liveblog.storage.postgres.store import redact

        return redact(settings.database.url)
    return settings.database.path


def _existing(settings: Settings) -> Settings:
    """For commands that read what is there (export, backup): a missing SQLite file is an error
    naming it, not a fresh empty database that then has "no event"."""
    if not settings.database.url and not Path(settings.database.path).exists():
        raise LiveblogError(
            f"there is no SQLite database at {settings.database.path}"
            " (for PostgreSQL, set database.url or pass --db postgresql://...)"
        )
    return settings


def _sqlite_only(settings: Settings, what: str) -> None:
    if settings.database.url:
        raise ConfigError(
            f"{what} works on an SQLite file; database.url is set: on PostgreSQL use"
            ' pg_dump and pg_restore (docs/deployment.md, "PostgreSQL")'
        )


@contextlib.asynccontextmanager
async def _open(settings: Settings) -> AsyncIterator[Services]:
    services = Services.build(settings)
    await services.open()
    try:
        yield services
    finally:
        await services.close()


def cmd_serve(args: argparse.Namespace) -> int:
    from liveblog.web.app import create_app

    settings = _settings(args)
    configure_logs(settings.server.log_format)
    # JSON logs: uvicorn's loggers propagate to ours instead of using its own plain format.
    log_options: dict[str, Any] = {"log_config": None} if settings.server.log_format == "json" else {}
    if args.workers > 1:
        return _serve_workers(args, settings, log_options)
    tls: dict[str, Any] = {}
    ca_file = None
    if args.https:  # a local CA, for fediverse software on this machine (demo/https.py)
        from liveblog.access.secret import key_path
        from liveblog.demo.https import local_https

        # In the data directory, beside the SQLite file and the secret key (configuration.md).
        settings, files = local_https(settings, key_path(settings).parent)
        tls = {"ssl_keyfile": str(files.key_file), "ssl_certfile": str(files.cert_file)}
        ca_file = files.ca_file
    if args.demo:  # the demo's social feeds come from fake networks on loopback (demo/feeds.py)
        from liveblog.demo.feeds import DemoFeedsComponent, demo_feed_settings, free_port

        feeds_port = free_port()
        settings = demo_feed_settings(settings, feeds_port)
    services = Services.build(settings)
    if args.demo:
        services.add(DemoComponent(services, settings, args.demo_every, ca_file))
        from liveblog.demo import HASHTAG

        services.add(DemoFeedsComponent(services, feeds_port, max(args.demo_every / 2, 2.0), HASHTAG))
    app = create_app(settings, services, open_services=True, freeze_gc=True, warm_templates=True)
    return _run_uvicorn(args, settings, app, {**tls, **log_options}, services.listening)


def _run_uvicorn(
    args: argparse.Namespace,
    settings: Settings,
    app: Any,
    options: dict[str, Any],
    listening: Listening | None = None,
) -> int:
    """Serve `app` (an app, or with options' factory=True the name of a factory) until stopped,
    with the settings' server options and the command line's loop and log level. One process
    says when it listens (`listening`); with workers, the socket listens before they start."""
    import uvicorn

    from liveblog.web import serving

    server_options = serving.uvicorn_options(settings)
    logging.getLogger("liveblog").warning(serving.viewer_path_line(server_options["ws"]))
    config = {
        "host": settings.server.host,
        "port": settings.server.port,
        **server_options,
        "loop": args.loop,
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
        "log_level": args.log_level,
        **options,
    }
    if listening is None:
        uvicorn.run(app, **config)
        return 0
    return 0 if serving.serve(app, listening, **config) else STARTUP_FAILURE


def check_multiprocess(settings: Settings, what: str) -> None:
    """Several processes need shared storage, a shared fan-out and one shared secret key."""
    missing = []
    if not settings.database.url:
        missing.append("database.url (PostgreSQL: SQLite has one writer process)")
    if not settings.redis.url:
        missing.append("redis.url (live streams reach every process through Redis)")
    if not settings.secret_key_from_env:
        missing.append("LIVEBLOG_SECRET_KEY in the environment (every process must sign with the same key)")
    if missing:
        raise ConfigError(f"{what} needs " + "; ".join(missing))


def _serve_workers(args: argparse.Namespace, settings: Settings, log_options: dict[str, Any]) -> int:
    """N worker processes accepting on one socket, under uvicorn's process manager (a worker
    that dies is replaced). Each builds its own app from the same configuration."""
    if args.demo:
        raise ConfigError("--demo runs in one process: leave out --workers")
    if args.https:
        raise ConfigError("--https (a local CA, for trying things) runs in one process: leave out --workers")
    check_multiprocess(settings, f"--workers {args.workers}")
    config = args.config or default_config()
    if config:
        os.environ[CONFIG_ENV] = str(Path(config).resolve())
    if getattr(args, "db", None):
        os.environ["LIVEBLOG_DATABASE_URL" if _is_url(args.db) else "LIVEBLOG_DATABASE"] = args.db
    return _run_uvicorn(
        args,
        settings,
        "liveblog.cli:app_from_environment",
        {"factory": True, "workers": args.workers, **log_options},
    )


# Where `serve --workers` tells its worker processes the configuration file is.
CONFIG_ENV = "LIVEBLOG_CONFIG"


def app_from_environment() -> object:
    """The app factory each `serve --workers` process runs (uvicorn imports it by name)."""
    from liveblog.web.app import create_app

    settings = load_settings(os.environ.get(CONFIG_ENV) or None)
    configure_logs(settings.server.log_format)
    return create_app(
        settings, Services.build(settings), open_services=True, freeze_gc=True, warm_templates=True
    )


class DemoComponent:
    """The demo as a service component: loads the demo data once the store is open and runs the
    demo note-taker under the supervisor (restarted if it fails)."""

    name = "demo"

    def __init__(
        self, services: Services, settings: Settings, every: float, ca_file: Path | None = None
    ) -> None:
        self.services = services
        self.settings = settings
        self.every = every
        self.ca_file = ca_file  # served over https with this local CA (demo/https.py)

    async def open(self, supervisor: Supervisor) -> None:
        from liveblog.demo import demo_note_taker, load_demo

        services = self.services
        ids = await load_demo(services)
        base = self.settings.server.public_url.rstrip("/") or (
            f"http://{self.settings.server.host}:{self.settings.server.port}"
        )
        fediverse = ""
        if self.ca_file is not None and services.federation is not None:
            live = ids["live_session"]
            handle = await services.db.read(lambda r: r.handle_of("session", live))
            account = f"@{handle}@{base.split('://', 1)[1]}"
            fediverse = (
                f"  From the fediverse: {account}  (this run's CA: {self.ca_file})\n"
                f"  Follow it:          NODE_EXTRA_CA_CERTS={self.ca_file} scripts/fediverse-follow {account}\n"
            )
        print(
            f"\n  Liveblog demo is ready: {base}/\n"
            f"  Live session:       {base}/sessions/{ids['live_session']}\n"
            f"  Note-taker link:    {base}{ids['invite_url']}\n"
            f"  Organiser log in:   {base}/login  (organiser / liveblog-demo)\n" + fediverse,
            flush=True,
        )
        invites = await services.accounts.invites(ids["event"])
        invite = next(i for i in invites if i.id == ids["invite_id"])
        supervisor.spawn(
            "demo.note_taker", lambda: demo_note_taker(services, ids["live_session"], invite, self.every)
        )

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


def _on_account(args: argparse.Namespace, act: Callable[[Accounts, str, str], Awaitable[object]]) -> Settings:
    """create-organiser and set-password: read the password (before the database is opened, so a
    mistyped one opens nothing), then act on the named account with it."""
    settings = _settings(args)
    password = _read_password(args)

    async def run() -> None:
        async with _open(settings) as services:
            await act(services.accounts, args.username, password)

    asyncio.run(run())
    return settings


def cmd_create_organiser(args: argparse.Namespace) -> int:
    settings = _on_account(args, Accounts.create_organiser)
    print(f"organiser {args.username!r} created in {_where(settings)}")
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    _on_account(args, Accounts.set_password)
    print(f"password changed for {args.username!r}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from liveblog.demo import load_demo

    settings = _settings(args)

    async def run() -> dict[str, str]:
        async with _open(settings) as services:
            return await load_demo(services)

    ids = asyncio.run(run())
    print(f"demo event {ids['event']} loaded into {_where(settings)}; note-taker link: {ids['invite_url']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from liveblog.archive.exports import export_json

    settings = _existing(_settings(args))

    async def run() -> dict[str, Any]:
        async with _open(settings) as services:
            return await export_json(services.db, args.event)

    doc = asyncio.run(run())
    text = json.dumps(doc, ensure_ascii=False, indent=1)
    if args.file == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(args.file).write_text(text + "\n", encoding="utf-8")
        print(
            f"event {args.event} ({plural(len(doc['sessions']), 'session')}) exported to {args.file}",
            file=sys.stderr,
        )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from liveblog.capture.imports import check_export, parse_export

    settings = _settings(args)
    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        raise LiveblogError(f"cannot read {args.file}: {exc}") from None
    # Checked before the database is opened too: a refused file leaves no trace, not even a new file.
    doc = parse_export(raw)
    check_export(doc)

    async def run() -> tuple[str, int]:
        async with _open(settings) as services:
            return await services.imports.restore(doc)  # wakes the feeds, on the server too (Redis)

    event_id, count = asyncio.run(run())
    print(f"event {event_id} ({plural(count, 'session')}) imported into {_where(settings)}", file=sys.stderr)
    return 0


def cmd_import_programme(args: argparse.Namespace) -> int:
    """A programme file (frab/pretalx schedule.xml or .json, iCalendar .ics) into an event:
    prints the plan; writes it unless --dry-run (docs/programme.md)."""
    from liveblog.capture.importing import plan_lines

    settings = _existing(_settings(args))
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise LiveblogError(f"cannot read {args.file}: {exc.strerror}") from None

    async def run() -> list[str]:
        async with _open(settings) as services:
            if args.dry_run:
                plan = await services.imports.preview(args.event, data, args.file)
                return [*plan_lines(plan), f"{plan.summary()}", "dry run: nothing was written"]
            plan = await services.imports.apply(args.event, data, args.file)
            return [*plan_lines(plan), f"imported: {plan.summary()}"]

    for line in asyncio.run(run()):
        print(line)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from liveblog.storage.backup import backup

    settings = _settings(args)
    _sqlite_only(settings, "backup")
    backup(settings.database.path, args.dest, _progress("backing up"))
    print(f"backed up {settings.database.path} to {args.dest}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from liveblog.storage.backup import restore

    settings = _settings(args)
    _sqlite_only(settings, "restore")
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


def cmd_migrate_to_postgres(args: argparse.Namespace) -> int:
    from liveblog.storage.postgres.copy import copy_sqlite_to_postgres
    from liveblog.storage.postgres.store import redact

    settings = _settings(args)
    url = args.to or settings.database.url
    if not url:
        raise ConfigError("say where to copy to: --to postgresql://... (or set database.url)")
    source = settings.database.path
    if not Path(source).exists():
        raise LiveblogError(f"there is no SQLite database at {source}")
    copied = asyncio.run(copy_sqlite_to_postgres(source, url, _bar("copying")))
    print(file=sys.stderr)
    for entry in copied:
        print(f"  {entry.table:<16} {entry.rows:>10} rows (counts match)")
    print(f"copied {source} into {redact(url)}; set database.url to use it")
    return 0


def _bar(what: str, width: int = 30) -> Callable[[int, int], None]:
    """A progress bar on stderr: `copying [######........] 41% 12345/30000 rows`."""

    def show(done: int, total: int) -> None:
        filled = width * done // total if total else width
        pct = 100 * done // total if total else 100
        end = "\n" if done >= total and not sys.stderr.isatty() else ""
        if sys.stderr.isatty() or done >= total:
            print(
                f"\r{what} [{'#' * filled}{'.' * (width - filled)}] {pct}% {done}/{total} rows",
                end=end,
                file=sys.stderr,
                flush=True,
            )

    return show


def _progress(what: str) -> Callable[[int, int], None]:
    def show(remaining: int, total: int) -> None:
        if total and sys.stderr.isatty():
            print(f"\r{what}: {100 * (total - remaining) // total}%", end="", file=sys.stderr, flush=True)

    return show


def cmd_export_site(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from liveblog.web.app import make_templates
    from liveblog.web.static_site import export_site

    settings = _existing(_settings(args))
    bar = tqdm(unit="page", desc=f"exporting {args.event}", disable=None, file=sys.stderr)

    def progress(step: str, total: int) -> None:
        bar.total = total
        bar.set_postfix_str(step, refresh=False)
        bar.update(1)

    async def run() -> dict[str, int]:
        async with _open(settings) as services:
            return await export_site(
                services,
                make_templates(settings.archive.timezone).env,
                args.event,
                Path(args.dir),
                settings.server.public_url.rstrip("/"),
                progress,
            )

    try:
        counts = asyncio.run(run())
    finally:
        bar.close()
    print(
        f"{counts['pages']} pages, {counts['photos']} photos and a search index of {counts['index_entries']}"
        f" entries written to {args.dir} (open {Path(args.dir) / 'index.html'})",
        file=sys.stderr,
    )
    return 0


def cmd_proceedings(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from tqdm import tqdm

    from liveblog.archive.proceedings import gather, render

    settings = _existing(_settings(args))
    out = Path(args.out)
    if not out.parent.is_dir():
        raise LiveblogError(f"cannot write {out}: there is no folder {out.parent}")
    bar = tqdm(unit="session", desc=f"proceedings of {args.event}", disable=None, file=sys.stderr)

    def progress(step: str, total: int) -> None:
        bar.total = total
        bar.set_postfix_str(step[:40], refresh=False)
        bar.update(1)

    async def read() -> Any:
        async with _open(settings) as services:
            return await gather(
                services.archive, args.event, base_url=settings.server.public_url, progress=progress
            )

    try:
        book = asyncio.run(read())
        bar.set_postfix_str(f"laying out the {args.format.upper()}", refresh=True)
        data = render(book, args.format, datetime.now(timezone.utc))
    finally:
        bar.close()
    temp = out.with_name(out.name + ".part")
    temp.write_bytes(data)
    temp.replace(out)
    print(
        f"{plural(len(book.pages), 'session')} and {plural(len(book.photos), 'photo')} written to {out}"
        f" ({len(data) / 1e6:.1f} MB)",
        file=sys.stderr,
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="liveblog", description="Live social reporting of events.")
    p.add_argument("--config", type=Path, help="configuration file (default: ./config.toml if present)")
    p.add_argument(
        "--db",
        metavar="FILE|URL",
        help="SQLite database file, or a postgresql:// URL (overrides database.path or database.url)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--demo", action="store_true", help="load the demo event and keep a demo note-taker posting"
    )
    serve.add_argument(
        "--demo-every", type=float, default=8.0, metavar="SECONDS", help="demo note-taker's pace"
    )
    serve.add_argument(
        "--https",
        action="store_true",
        help="serve https with a certificate from a CA made for this run, written beside the database"
        " (for fediverse software on this machine: docs/federation.md, 'Try it with the demo')",
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes sharing the port (needs database.url, redis.url and LIVEBLOG_SECRET_KEY)",
    )
    serve.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop (auto: uvloop if installed)",
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
    book = sub.add_parser(
        "proceedings", help="write an event's archive as a book: EPUB 3 or PDF (docs/archive.md)"
    )
    book.add_argument("event", help="the event id")
    book.add_argument("--format", choices=["epub", "pdf"], required=True, help="EPUB 3 or (tagged) PDF")
    book.add_argument("out", help="the file to write")
    book.set_defaults(func=cmd_proceedings)
    imp = sub.add_parser("import", help="restore an event from its JSON export (into a fresh instance)")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import)
    prog = sub.add_parser(
        "import-programme",
        help="import a programme (frab/pretalx schedule.xml or .json, iCalendar .ics) into an event",
    )
    prog.add_argument("event", help="the event's id")
    prog.add_argument("file", help="schedule.xml, schedule.json or a .ics file")
    prog.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would be created, changed and cancelled; write nothing",
    )
    prog.set_defaults(func=cmd_import_programme)
    b = sub.add_parser(
        "backup", help="copy the database to a new file while the server runs (SQLite backup API)"
    )
    b.add_argument("dest")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser(
        "restore", help="replace the database with a backup (server stopped); streams get new epochs"
    )
    r.add_argument("source")
    r.add_argument("--yes", action="store_true", help="really replace the database")
    r.set_defaults(func=cmd_restore)
    m = sub.add_parser(
        "migrate-to-postgres", help="copy the SQLite database into an empty PostgreSQL database"
    )
    m.add_argument("--to", metavar="URL", help="postgresql://user@host/dbname (default: database.url)")
    m.set_defaults(func=cmd_migrate_to_postgres)
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

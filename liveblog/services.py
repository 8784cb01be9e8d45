"""The running parts of one Liveblog process, opened and closed in order by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from liveblog.accounts import Accounts
from liveblog.archive import Archive
from liveblog.capture.notes import NoteCapture
from liveblog.capture.votes import Audience
from liveblog.programme import Programme
from liveblog.settings import Settings
from liveblog.storage import Database
from liveblog.streams.hub import StreamHub


@dataclass
class Services:
    settings: Settings
    db: Database
    hub: StreamHub
    notes: NoteCapture
    programme: Programme
    accounts: Accounts
    audience: Audience
    archive: Archive
    extra: dict[str, Any] = field(default_factory=dict)
    _opened: bool = False

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database(
            settings.database.path,
            synchronous=settings.database.synchronous,
            page_readers=settings.database.page_readers,
            read_timeout=settings.database.read_timeout_seconds,
            write_timeout=settings.database.write_timeout_seconds,
        )

        async def load_head(session_id: str) -> tuple[str, int] | None:
            return await db.read(lambda r: r.stream_head(session_id))

        async def load_changes(session_id: str, after: int, upto: int) -> list[str]:
            return await db.read(lambda r: r.changes_between(session_id, after, upto))

        hub = StreamHub(
            load_head=load_head,
            load_changes=load_changes,
            ring_size=settings.streams.ring_size,
            replay_window=settings.streams.replay_window,
            heartbeat_seconds=settings.streams.heartbeat_seconds,
        )
        db.on_commit = hub.publish
        return cls(
            settings=settings,
            db=db,
            hub=hub,
            notes=NoteCapture(db, settings.limits),
            programme=Programme(db),
            accounts=Accounts(db),
            audience=Audience(db, hub, settings),
            archive=Archive(db, settings.archive),
        )

    async def open(self) -> None:
        await self.db.open()
        self.hub.start()
        await self.audience.start()
        await self.archive.start()
        self._opened = True

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        await self.archive.stop()
        await self.audience.stop()  # flushes pending tallies while the database is open
        await self.hub.stop()
        await self.db.close()

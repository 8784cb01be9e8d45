"""The feed service as one source sees it, for tests that drive a source's own code (over the
fake networks on loopback) without the whole service: it keeps what is ingested, the cursors and
the reads billed."""

from __future__ import annotations

from typing import Any

from liveblog.capture.feeds.base import IngestResult
from liveblog.models import SocialPost


class Collected:
    def __init__(self) -> None:
        self.posts: list[SocialPost] = []
        self.cursors: dict[str, str] = {}
        self.billed = 0

    async def ingest(
        self,
        network: str,
        posts: list[SocialPost],
        *,
        billed: int = 0,
        cursor: tuple[str, str] | None = None,
        **_: Any,
    ) -> IngestResult:
        self.posts.extend(posts)
        self.billed += billed
        if cursor:
            self.cursors[cursor[0]] = cursor[1]
        return IngestResult(new=len(posts))

    async def get_cursor(self, key: str) -> str | None:
        return self.cursors.get(key)

    async def set_cursor(self, key: str, value: str) -> None:
        self.cursors[key] = value

    async def reads_used(self, network: str) -> dict[tuple[str, str], int]:
        return {("e", ""): self.billed}

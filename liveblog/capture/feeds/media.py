"""Fetching a post's images and its author's avatar into our own store.

Viewers' browsers never contact a network (privacy, and `img-src 'self'`): we fetch each image
once through capture/outbound.py (no private or loopback address, redirects checked, a size
limit counted while streaming, a timeout), check its type by content (through Pillow),
re-encode it without metadata (capture/media.py's clean_image) and serve it from /media/.
Anything that fails or is refused is left as a link.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from liveblog.capture.media import clean_image
from liveblog.capture.outbound import Network, OutboundClient, OutboundError
from liveblog.errors import LiveblogError

log = logging.getLogger(__name__)

MAX_PARALLEL = 4  # images fetched at once: enough for a burst, polite to each CDN


class MediaFetcher:
    def __init__(
        self,
        max_bytes: int,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        allow_private: bool = False,
        network: Network | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.client = OutboundClient(
            "media",
            allow_private=allow_private,
            timeout=timeout,
            max_bytes=max_bytes,
            headers={"user-agent": "Liveblog media fetcher"},
            network=network,
            transport=transport,
        )
        self.timeout = timeout
        self._room = asyncio.Semaphore(MAX_PARALLEL)
        self.fetched = 0
        self.failed = 0

    async def close(self) -> None:
        await self.client.aclose()

    async def fetch(self, url: str) -> tuple[str, bytes] | None:
        """(content type, cleaned bytes), or None when the image cannot be had within the limits."""
        if not url.startswith(("https://", "http://")):
            return None
        async with self._room:
            try:
                data = await self._download(url)
            except OutboundError as exc:  # a refusal is logged (and counted) where it is made
                self.failed += 1
                log.info("media %s not fetched: %s", url[:200], exc)
                return None
        if data is None:
            self.failed += 1
            return None
        try:
            cleaned = await asyncio.to_thread(clean_image, data)
        except LiveblogError:
            self.failed += 1
            return None
        self.fetched += 1
        return cleaned

    async def _download(self, url: str) -> bytes | None:
        response = await self.client.get(url)
        if response.status_code != 200:
            return None
        if not response.headers.get("content-type", "").lower().startswith("image/"):
            return None
        return response.content

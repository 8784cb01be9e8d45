"""Fetching a post's images and its author's avatar into our own store.

Viewers' browsers never contact a network (privacy, and `img-src 'self'`): we fetch each image
once with httpx, under a size limit (counted while streaming, not trusted from headers), a type
check (by content, through Pillow) and a timeout, re-encode it without metadata
(capture/media.py's clean_image) and serve it from /media/. Anything that fails is left as a link.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from liveblog.capture.media import clean_image
from liveblog.errors import LiveblogError

log = logging.getLogger(__name__)

MAX_PARALLEL = 4  # images fetched at once: enough for a burst, polite to each CDN


class MediaFetcher:
    def __init__(self, max_bytes: int, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.max_bytes = max_bytes
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=True, max_redirects=3, transport=transport,
            headers={"user-agent": "Liveblog media fetcher"},
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
                async with asyncio.timeout(self.timeout * 2):  # the whole exchange, not just each read
                    data = await self._download(url)
            except (httpx.HTTPError, TimeoutError, ValueError) as exc:
                self.failed += 1
                log.info("media %s not fetched: %s", url[:200], type(exc).__name__)
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
        async with self.client.stream("GET", url) as response:
            if response.status_code != 200:
                return None
            if not response.headers.get("content-type", "").lower().startswith("image/"):
                return None
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                return None
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    return None
            return bytes(body)

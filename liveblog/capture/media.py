"""Photo uploads: checked by content (not by name), re-encoded without metadata, sized for wifi.

Phones put the place a photo was taken into its EXIF data; a live stream must not publish a
speaker's or note-taker's location, so every photo is re-encoded with Pillow: the orientation
is applied to the pixels, all metadata is dropped, and anything wider than MAX_SIDE is scaled
down so viewers on conference wifi load it quickly.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageOps, UnidentifiedImageError
from starlette.requests import Request

from liveblog.errors import BadRequest, TooLarge
from liveblog.storage import Store, Tx

MAX_SIDE = 2560  # long side in pixels: sharp on a projector, a few hundred KB as JPEG
MAX_PIXELS = 60_000_000  # refuse decompression bombs before decoding
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def clean_image(data: bytes) -> tuple[str, bytes]:
    """Return (content type, cleaned bytes) or raise BadRequest for anything that is not a photo."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format or ""
            if fmt not in FORMATS:
                raise BadRequest("photos must be JPEG, PNG, WebP or GIF", code="unsupported_media")
            if probe.width * probe.height > MAX_PIXELS:
                raise TooLarge("that image has too many pixels")
            if fmt == "GIF" and getattr(probe, "is_animated", False):
                # Animated GIFs are kept as sent (re-encoding would flatten them); GIF has no EXIF.
                return FORMATS[fmt], data
            image = ImageOps.exif_transpose(probe)
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            if fmt == "JPEG":
                image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
            elif fmt == "WEBP":
                image.save(out, "WEBP", quality=85)
            else:
                image.save(out, fmt)
            return FORMATS[fmt], out.getvalue()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise BadRequest("that file is not an image we can read", code="unsupported_media") from None


async def read_upload(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise TooLarge(f"photos are limited to {limit // (1024 * 1024)} MB")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_part_size=limit) as form:  # closes the temp files
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise BadRequest("send the photo in a form field named 'file'", code="missing_field", field="file")
            data = await upload.read(limit + 1)
    else:
        chunks = bytearray()
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > limit:
                break
        data = bytes(chunks)
    if len(data) > limit:
        raise TooLarge(f"photos are limited to {limit // (1024 * 1024)} MB")
    if not data:
        raise BadRequest("the upload is empty", code="empty")
    return data


async def store_upload(db: Store, session_id: str, uploaded_by: str, request: Request, limit: int) -> str:
    data = await read_upload(request, limit)
    content_type, cleaned = await asyncio.to_thread(clean_image, data)

    async def op(tx: Tx) -> str:
        return await tx.insert_media(session_id, content_type, cleaned, uploaded_by)

    return await db.write(op)

"""Photo uploads: checked by content (not by name), re-encoded without metadata, sized for wifi.

Phones put the place a photo was taken into its EXIF data; a live stream must not publish a
speaker's or note-taker's location, so every photo is re-encoded with Pillow from its pixels
alone: the orientation is applied to the pixels, all metadata (EXIF, XMP, ICC profiles, text
and comments, in every format, animated GIFs included) is dropped, and anything wider than
MAX_SIDE is scaled down so viewers on conference wifi load it quickly.

Decoding is bounded: an image is refused (413) by its declared size before any pixel is
decoded, JPEGs are decoded at a reduced scale, and at most DECODE_SLOTS photos are decoded at
once, so a few small files that expand to gigapixels cannot take the server's memory.
"""

from __future__ import annotations

import asyncio
import io
import weakref

from PIL import Image, ImageCms, ImageOps, ImageSequence, UnidentifiedImageError
from starlette.requests import Request

from liveblog.errors import BadRequest, RateLimited, TooLarge
from liveblog.storage import Store, Tx

MAX_SIDE = 2560  # long side in pixels: sharp on a projector, a few hundred KB as JPEG
# Pixels decoded at once for one photo: 4 bytes each, so at most ~64 MB. A phone photo is 12 MP,
# a 5K screenshot 14.7 MP. JPEGs are decoded at 1/2, 1/4 or 1/8 scale (still at least MAX_SIDE),
# so a 48 MP phone photo decodes as 12 MP and is accepted.
MAX_DECODE_PIXELS = 16_000_000
# Declared size (width x height) refused before decoding at all, whatever the format.
MAX_SOURCE_PIXELS = 100_000_000
# An animated GIF is decoded frame by frame, all frames held for re-encoding: pixels summed.
MAX_ANIMATION_PIXELS = 16_000_000
# Photos decoded at the same time (each in a worker thread). With the limits above this bounds
# decoding memory to ~2 x 64 MB. An upload that waits longer than DECODE_WAIT_SECONDS gets 429.
DECODE_SLOTS = 2
DECODE_WAIT_SECONDS = 30.0
FORMATS = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}

# Pillow's own bomb check (a warning past this, an error past twice this) backs ours up.
Image.MAX_IMAGE_PIXELS = MAX_SOURCE_PIXELS
# One semaphore per event loop (a server has one; tests run many). Waiters wait in the loop, not
# in a worker thread, so queued photos never hold the threads that render notes and pages.
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
_SRGB = ImageCms.createProfile("sRGB")


def decode_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(DECODE_SLOTS)
    return slots


async def decode_photo(data: bytes) -> tuple[str, bytes]:
    """clean_image in a worker thread, at most DECODE_SLOTS at once; 429 after waiting too long."""
    slots = decode_slots()
    try:
        async with asyncio.timeout(DECODE_WAIT_SECONDS):
            await slots.acquire()
    except TimeoutError:
        raise RateLimited("the server is busy with other photos: try again in a moment") from None
    try:
        return await asyncio.to_thread(clean_image, data)
    finally:
        slots.release()


def _in_srgb(image: Image.Image) -> Image.Image:
    """Colours converted to sRGB when the photo carries an ICC profile (phones shoot Display P3),
    so dropping the profile with the rest of the metadata does not wash the colours out."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=image.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a profile littlecms cannot read: keep the pixels as they are
    return converted if converted is not None else image


def _pixels_only(image: Image.Image) -> Image.Image:
    """The same pixels with no metadata at all: savers read EXIF, XMP, ICC profiles and comments
    from `info`, so only transparency (which is part of the picture) is kept."""
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    return image


def _save(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt in ("JPEG", "MPO"):
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=85)
    else:
        image.save(out, fmt)
    return out.getvalue()


def _animation(probe: Image.Image) -> bytes:
    """An animated GIF re-encoded frame by frame: the animation stays, its metadata goes."""
    frames_total = getattr(probe, "n_frames", 1)
    if probe.width * probe.height * frames_total > MAX_ANIMATION_PIXELS:
        raise TooLarge(
            f"that animation has too many frames or pixels (at most {MAX_ANIMATION_PIXELS:,} in all)"
        )
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(probe):
        durations.append(int(frame.info.get("duration", 100)))
        clean = _pixels_only(frame.copy())
        clean.thumbnail((MAX_SIDE, MAX_SIDE))
        frames.append(clean)
    out = io.BytesIO()
    loop = probe.info.get("loop")
    extra = {"loop": loop} if isinstance(loop, int) else {}
    frames[0].save(
        out, "GIF", save_all=True, append_images=frames[1:], duration=durations, disposal=2, **extra
    )
    return out.getvalue()


def clean_image(data: bytes) -> tuple[str, bytes]:
    """Return (content type, cleaned bytes); BadRequest for anything that is not a photo,
    TooLarge (413) for one that would decode to too many pixels."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format or ""
            if fmt not in FORMATS:
                raise BadRequest("photos must be JPEG, PNG, WebP or GIF", code="unsupported_media")
            if probe.width * probe.height > MAX_SOURCE_PIXELS:
                raise TooLarge("that image has too many pixels")
            if fmt == "GIF" and getattr(probe, "is_animated", False):
                return FORMATS[fmt], _animation(probe)
            if fmt in ("JPEG", "MPO"):
                # Decode at the smallest scale (1/2, 1/4, 1/8) still at least the size we keep.
                ratio = MAX_SIDE / max(probe.size)
                if ratio < 1:
                    probe.draft(
                        probe.mode, (max(1, int(probe.width * ratio)), max(1, int(probe.height * ratio)))
                    )
            if probe.width * probe.height > MAX_DECODE_PIXELS:
                raise TooLarge(f"that image has too many pixels (at most {MAX_DECODE_PIXELS:,})")
            image = ImageOps.exif_transpose(probe)
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            image = _in_srgb(image)
            return FORMATS[fmt], _save(_pixels_only(image), fmt)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge("that image has too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
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
                raise BadRequest(
                    "send the photo in a form field named 'file'", code="missing_field", field="file"
                )
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
    content_type, cleaned = await decode_photo(data)

    async def op(tx: Tx) -> str:
        return await tx.insert_media(session_id, content_type, cleaned, uploaded_by)

    return await db.write(op)

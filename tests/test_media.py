"""Photo uploads: every kind of metadata goes, animations stay animated, and images that would
decode to too many pixels (decompression bombs) are refused with 413 before they are decoded."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from liveblog.capture.media import MAX_DECODE_PIXELS, clean_image
from liveblog.errors import TooLarge
from tests.conftest import LiveServer, Seed

SECRET = "GPS 51.5N secret-comment"
XMP = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description>{SECRET}</rdf:Description></x:xmpmeta>'.encode()
# A real ICC profile is kilobytes; Pillow stores whatever bytes it is given.
ICC = b"\x00\x00\x02\x0cICC-profile-" + SECRET.encode()
METADATA_KEYS = {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "Comment", "Author"}


def exif() -> bytes:
    data = Image.Exif()
    data[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS latitude
    data[0x010F] = SECRET
    return data.tobytes()


def encoded(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", exif=exif(), comment=SECRET, xmp=XMP, icc_profile=ICC)
    elif fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", SECRET)
        text.add_itxt("XML:com.adobe.xmp", XMP.decode())
        image.save(out, "PNG", pnginfo=text, exif=exif(), icc_profile=ICC)
    elif fmt == "WEBP":
        image.save(out, "WEBP", exif=exif(), xmp=XMP, icc_profile=ICC)
    else:
        image.convert("P").save(out, "GIF", comment=SECRET)
    return out.getvalue()


def animated_gif(frames: int = 3, size: tuple[int, int] = (40, 30)) -> bytes:
    images = [Image.new("RGB", size, (n * 37 % 256, n % 256, 90)) for n in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=120, loop=0, comment=SECRET)
    return out.getvalue()


def assert_no_metadata(data: bytes) -> None:
    assert SECRET.encode() not in data and b"adobe:ns:meta" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert not (METADATA_KEYS & set(image.info)), image.info.keys()
        # A GIF's one application extension may be the loop count (NETSCAPE2.0), nothing else.
        assert image.info.get("extension", (b"NETSCAPE2.0",))[0] == b"NETSCAPE2.0"
        assert not image.getexif()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_every_kind_of_metadata_is_stripped(fmt: str) -> None:
    original = encoded(fmt)
    assert SECRET.encode() in original or fmt == "WEBP"  # (WebP may compress nothing; its EXIF is raw)
    content_type, cleaned = clean_image(original)
    assert content_type == f"image/{fmt.lower()}"
    assert_no_metadata(cleaned)


def test_an_animated_gif_is_re_encoded_still_animated_and_without_its_comment() -> None:
    # Before: an animated GIF was stored byte for byte, comment and all.
    original = animated_gif()
    assert SECRET.encode() in original
    content_type, cleaned = clean_image(original)
    assert content_type == "image/gif" and cleaned != original
    assert_no_metadata(cleaned)
    with Image.open(io.BytesIO(cleaned)) as image:
        assert image.n_frames == 3 and image.info.get("duration") == 120 and image.info.get("loop") == 0


def test_a_long_animation_is_refused_as_too_large() -> None:
    frames = MAX_DECODE_PIXELS // (400 * 400) + 1
    with pytest.raises(TooLarge):
        clean_image(animated_gif(frames, (400, 400)))


def png_of_size(width: int, height: int, rows: int | None = None) -> bytes:
    """A valid greyscale PNG of any size, built row by row so the test never holds its pixels.
    With `rows`, only that many rows of data follow: Pillow reads the size from the header."""
    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * width
    idat = (
        b"".join(compressor.compress(row) for _ in range(height if rows is None else rows))
        + compressor.flush()
    )

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack("!I", len(body)) + kind + body + struct.pack("!I", zlib.crc32(kind + body))

    header = struct.pack("!IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def test_decompression_bombs_and_huge_images_are_413(live: LiveServer, seeded: Seed) -> None:
    # Before: a 59-megapixel PNG under the byte limit was decoded (137 MB for a moment), and a
    # bomb past Pillow's own limit was a 400 unsupported_media.
    url = f"/api/v1/sessions/{seeded.session_id}/media"
    auth = {"Authorization": f"Bearer {seeded.token}"}
    big = png_of_size(7700, 7700)  # 59 MP of zeros: ~60 KB
    assert len(big) < 1024 * 1024
    bomb = png_of_size(50_000, 50_000, rows=1)  # 2.5 gigapixels declared
    async with live.client() as http:
        for what, data in [("59 MP", big), ("bomb", bomb)]:
            response = await http.post(url, content=data, headers={**auth, "Content-Type": "image/png"})
            assert response.status_code == 413, (what, response.text)
            assert response.json()["error"]["code"] == "too_large"
        ok = await http.post(
            url, content=png_of_size(640, 480), headers={**auth, "Content-Type": "image/png"}
        )
        assert ok.status_code == 201


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_accepted() -> None:
    # 6000 x 4000 = 24 MP, over the decode limit at full scale; JPEG decodes it at 1/2.
    out = io.BytesIO()
    Image.new("L", (6000, 4000), 128).save(out, "JPEG", quality=50)
    content_type, cleaned = clean_image(out.getvalue())
    with Image.open(io.BytesIO(cleaned)) as image:
        assert content_type == "image/jpeg" and image.size == (2560, 1707)


def test_a_photo_in_another_colour_space_is_converted_to_srgb_before_its_profile_goes() -> None:
    from PIL import ImageCms

    lab_like = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for profile in (srgb, lab_like, b"not a profile"):  # a profile littlecms cannot use is dropped too
        _, cleaned = clean_image(encoded_with_profile(profile))
        assert_no_metadata(cleaned)
    # An sRGB photo keeps its colours.
    with Image.open(io.BytesIO(clean_image(encoded_with_profile(srgb))[1])) as image:
        assert image.convert("RGB").getpixel((0, 0)) == (10, 200, 30)


def encoded_with_profile(profile: bytes) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(out, "PNG", icc_profile=profile)
    return out.getvalue()


async def test_at_most_two_photos_decode_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from liveblog.capture import media
    from liveblog.errors import RateLimited

    monkeypatch.setattr(media, "DECODE_WAIT_SECONDS", 0.01)
    slots = media.decode_slots()
    for _ in range(media.DECODE_SLOTS):
        await slots.acquire()
    try:
        assert media.DECODE_SLOTS == 2 and slots.locked()
        with pytest.raises(RateLimited):  # a third photo waits for a slot, then is told to retry
            await media.decode_photo(encoded("PNG"))
    finally:
        for _ in range(media.DECODE_SLOTS):
            slots.release()
    assert (await media.decode_photo(encoded("PNG")))[0] == "image/png"

"""Opening a media file with its decoder, and what is derived from it.

:func:`probe` opens a file of a sniffed type (:mod:`castroom.core.sniff`) with the
library that reads it — Pillow for images, PyAV (FFmpeg) for video, pypdfium2 for PDF —
so a file that only starts like a JPEG is refused, and reads what the media record
keeps (dimensions, duration, pages). It also makes the derivatives, in the same pass:
a thumbnail (at most ``THUMB_EDGE`` pixels) of an image, of a video's poster frame and
of a PDF's first page, and a video's poster frame (at most ``POSTER_EDGE``). Every
derivative is a fresh JPEG encoded from pixels only: no EXIF, GPS, XMP or ICC data of
the original survives into it.

Images larger than ``max_pixels`` are refused before they are decoded (a
decompression bomb: a small file that claims 10,000 x 10,000 pixels); Pillow's own
guard (``DecompressionBombWarning``/``Error``) is a second line, turned into the same
refusal. The heavy imports load on first use only (``castroom --help`` stays fast).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from .errors import CastroomError

if TYPE_CHECKING:
    from PIL.Image import Image

THUMB_EDGE = 320
POSTER_EDGE = 1280
THUMB_QUALITY = 80
POSTER_QUALITY = 85
_ORIENTATION = 0x0112  # the EXIF tag
#: Decode at most this many frames looking for the poster frame.
POSTER_FRAMES = 300

_PIL_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}


class Probed(msgspec.Struct, kw_only=True):
    """What a media file is (for its record) and what was derived from it (JPEG bytes)."""

    width: int | None = None
    height: int | None = None
    duration: float | None = None
    pages: int | None = None
    thumbnail: bytes | None = None
    poster: bytes | None = None


def probe(path: Path, mime: str, *, shown: str, max_pixels: int) -> Probed:
    """Open ``path`` (sniffed as ``mime``) with its decoder; one clear error naming the
    file (``shown``) if it is damaged, not what it starts like, or too large."""
    if mime in _PIL_FORMATS:
        return _probe_image(path, mime, shown, max_pixels)
    if mime.startswith("video/"):
        return _probe_video(path, shown, max_pixels)
    if mime == "application/pdf":
        return _probe_pdf(path, shown)
    raise CastroomError(f"{shown}: castroom cannot open {mime} files")


def _why(exc: BaseException, path: Path) -> str:
    """A decoder's reason, without the temporary file's path (people gave another)."""
    reason = getattr(exc, "strerror", None) or str(exc)
    return str(reason).replace(f"'{path}'", "").replace(str(path), "").strip(" :")


def _refuse_bomb(shown: str, width: int, height: int, limit: int, whose: str) -> None:
    if width * height > limit:
        raise CastroomError(
            f"{shown} claims {width:,} x {height:,} pixels, over {whose} limit of"
            f" {limit:,}: refused as a possible decompression bomb"
        )


def _probe_image(path: Path, mime: str, shown: str, max_pixels: int) -> Probed:
    from PIL import Image

    ours = "the media.max_pixels"
    try:
        with warnings.catch_warnings(record=True) as caught:
            # Pillow's own guard warns past MAX_IMAGE_PIXELS (and raises past twice that).
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with Image.open(path, formats=[_PIL_FORMATS[mime]]) as image:
                width, height = image.size
                _refuse_bomb(shown, width, height, max_pixels, ours)
                if any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught):
                    _refuse_bomb(shown, width, height, Image.MAX_IMAGE_PIXELS or 0, "Pillow's")
                if image.getexif().get(_ORIENTATION) in (5, 6, 7, 8):
                    width, height = height, width  # stored on its side: as shown
                thumb = _thumbnail_of(image, THUMB_EDGE)
    except Image.DecompressionBombError as exc:
        raise CastroomError(f"{shown}: refused as a possible decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        kind = _PIL_FORMATS[mime]
        why = _why(exc, path)
        raise CastroomError(f"{shown} starts like a {kind} image but is damaged ({why})") from None
    return Probed(width=width, height=height, thumbnail=thumb)


def _thumbnail_of(image: Image, edge: int) -> bytes:
    """A JPEG of at most ``edge`` pixels a side, upright, from the pixels alone."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    if image.format == "JPEG":
        # Decode at 1/2, 1/4 or 1/8 scale (never below ``edge``): several times faster.
        image.draft("RGB", (edge, edge))
    image.load()
    ImageOps.exif_transpose(image, in_place=True)  # ours to change: opened for this
    return _jpeg(image, edge, THUMB_QUALITY, PILImage, owned=True)


def _jpeg(image: Image, edge: int, quality: int, pil: Any, *, owned: bool = False) -> bytes:
    """Encode ``image`` as a metadata-free JPEG of at most ``edge`` pixels a side
    (``owned``: ``image`` may be shrunk in place)."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        flat = pil.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    elif image.mode != "RGB":
        image = image.convert("RGB")
    elif not owned:
        image = image.copy()
    image.thumbnail((edge, edge))
    out = io.BytesIO()
    # No exif=, icc_profile= or xmp=: the derivative carries pixels only.
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _probe_video(path: Path, shown: str, max_pixels: int) -> Probed:
    import av
    from PIL import Image as PILImage

    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise CastroomError(f"{shown} holds no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width and height:
                _refuse_bomb(shown, width, height, max_pixels, "the media.max_pixels")
            duration = _duration(container, stream)
            frame = _poster_frame(container, stream, duration)
    except av.FFmpegError as exc:
        why = _why(exc, path)
        raise CastroomError(f"{shown} starts like a video but cannot be read ({why})") from None
    if frame is None:
        raise CastroomError(f"{shown} starts like a video but has no frame that decodes")
    image = frame.to_image()
    return Probed(
        width=width or image.width,
        height=height or image.height,
        duration=duration,
        thumbnail=_jpeg(image, THUMB_EDGE, THUMB_QUALITY, PILImage),
        poster=_jpeg(image, POSTER_EDGE, POSTER_QUALITY, PILImage),
    )


def _duration(container: Any, stream: Any) -> float | None:
    import av

    if container.duration:
        return round(container.duration / av.time_base, 3)
    if stream.duration and stream.time_base:
        return round(float(stream.duration * stream.time_base), 3)
    return None


def _poster_frame(container: Any, stream: Any, duration: float | None) -> Any:
    """The first frame at a tenth of the video (at most 3 s in: past a fade from black),
    or the last one decoded before that."""
    target = min(3.0, duration / 10) if duration else 0.0
    found = None
    for count, frame in enumerate(container.decode(stream)):
        found = frame
        if frame.time is None or frame.time >= target or count >= POSTER_FRAMES:
            break
    return found


def _probe_pdf(path: Path, shown: str) -> Probed:
    import pypdfium2 as pdfium
    from PIL import Image as PILImage

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        why = _why(exc, path)
        raise CastroomError(f"{shown} starts like a PDF but cannot be read ({why})") from None
    try:
        pages = len(pdf)
        if pages < 1:
            raise CastroomError(f"{shown} is a PDF with no pages")
        page = pdf[0]
        page_width, page_height = page.get_size()
        scale = THUMB_EDGE / max(page_width, page_height, 1.0)
        image = page.render(scale=scale).to_pil()
        page.close()
        return Probed(pages=pages, thumbnail=_jpeg(image, THUMB_EDGE, THUMB_QUALITY, PILImage))
    finally:
        pdf.close()

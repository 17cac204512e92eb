"""Real media files made for tests: Pillow images (with EXIF and GPS), a short video
written with PyAV, a PDF made with pypdfium2, and hostile files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

GPS_IFD = 0x8825


def jpeg(path: Path, size: tuple[int, int] = (600, 800), *, quality: int = 90, seed: int = 0):
    """A JPEG with camera EXIF and a GPS position (what a phone writes), and some detail
    so it compresses like a photo."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, ((seed * 37) % 256, 120, 200))
    draw = ImageDraw.Draw(image)
    for i in range(0, size[0], 7):
        draw.line([(i, 0), (size[0] - i, size[1])], fill=((i * 13 + seed) % 256, i % 256, 90))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (53.0, 20.0, 30.0)
    gps[3] = "W"
    gps[4] = (6.0, 15.0, 10.0)
    image.save(path, format="JPEG", quality=quality, exif=exif)
    return path


def png(path: Path, size: tuple[int, int] = (300, 200), *, alpha: bool = True) -> Path:
    from PIL import Image

    image = Image.new("RGBA" if alpha else "RGB", size, (10, 200, 30, 128) if alpha else "red")
    image.save(path, format="PNG")
    return path


def pixel_bomb(path: Path, side: int = 10_000) -> Path:
    """A real, valid PNG of side x side pixels (a 1-bit image compresses to a few KB and
    would decode to 100 megapixels)."""
    from PIL import Image

    Image.new("1", (side, side)).save(path, format="PNG", optimize=False)
    return path


def video(
    path: Path, *, seconds: float = 2.0, size: tuple[int, int] = (160, 120), codec: str = "mpeg4"
) -> Path:
    """A short video: frames of changing colour, written with PyAV (MP4, MOV or WebM by
    the suffix)."""
    import av
    from PIL import Image

    fps = 10
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(int(seconds * fps)):
            image = Image.new("RGB", size, (index * 12 % 256, 80, 255 - index * 12 % 256))
            frame = av.VideoFrame.from_image(image)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def pdf(path: Path, pages: int = 2) -> Path:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument.new()
    for _ in range(pages):
        document.new_page(595, 842)
    document.save(str(path))
    document.close()
    return path


def zip_named_jpeg(path: Path) -> Path:
    """A ZIP archive named like a JPEG."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("payload.txt", "not a picture")
    return path


def truncated_jpeg(path: Path) -> Path:
    """A JPEG cut off half-way: it starts right but does not decode."""
    from PIL import Image

    whole = io.BytesIO()
    Image.new("RGB", (400, 400), "blue").save(whole, format="JPEG")
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 3])
    return path


def claimed_size(path: Path, size: int) -> Path:
    """A sparse file of ``size`` bytes that starts like a JPEG (no disk is used)."""
    from PIL import Image

    head = io.BytesIO()
    Image.new("RGB", (8, 8)).save(head, format="JPEG")
    with open(path, "wb") as out:
        out.write(head.getvalue())
        out.truncate(size)
    return path

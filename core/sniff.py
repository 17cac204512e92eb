"""A file's type from its first bytes, never from its name.

Only the types castroom accepts are named (``castroom.core.model.MIME_TYPES``); a few
common others are recognised so the refusal can say what the file is ("a ZIP archive,
not a JPEG"). Sniffing only picks the decoder: :mod:`castroom.core.derivatives` then
opens the file with it, so a file that starts right but is not what it claims is
refused there.
"""

from __future__ import annotations

from pathlib import Path

from .errors import CastroomError

#: How many leading bytes sniffing reads.
HEAD = 64

_IMAGES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
#: Recognised only to be named in a refusal.
_OTHERS = (
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x7fELF", "a program (ELF)"),
    (b"MZ", "a Windows program"),
    (b"BM", "a BMP image (save it as JPEG or PNG)"),
    (b"II*\x00", "a TIFF image (save it as JPEG or PNG)"),
    (b"MM\x00*", "a TIFF image (save it as JPEG or PNG)"),
    (b"<?xml", "an XML or SVG file"),
    (b"<svg", "an SVG file (save it as PNG)"),
    (b"ID3", "an MP3 audio file"),
)
#: ISO base media brands (the ``ftyp`` box) of QuickTime; every other brand is MP4.
_QUICKTIME_BRANDS = (b"qt  ",)


def sniff(head: bytes) -> str | None:
    """The accepted MIME type these leading bytes start, or None."""
    for magic, mime in _IMAGES:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] in _QUICKTIME_BRANDS else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head:
        return "video/webm"
    return None


def what_it_is(head: bytes) -> str:
    """For a refusal: what a file of an unaccepted type seems to be."""
    for magic, words in _OTHERS:
        if head.startswith(magic):
            return words
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "a Matroska video (save it as WebM or MP4)"
    if head[:4] == b"RIFF":
        return "a RIFF file (AVI or WAV)"
    if not head:
        return "empty"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "text"
    return "of a type castroom does not know"


def sniff_file(path: Path, *, shown: str | None = None) -> str:
    """The accepted MIME type of the file at ``path``; otherwise one clear error naming
    what it seems to be and what castroom accepts (``shown``: the name people gave)."""
    with open(path, "rb") as src:
        head = src.read(HEAD)
    mime = sniff(head)
    if mime is None:
        raise CastroomError(
            f"{shown or path.name} is {what_it_is(head)}, not a file castroom stores"
            " (JPEG, PNG, WebP or GIF images; PDF; MP4, MOV or WebM video)"
        )
    return mime

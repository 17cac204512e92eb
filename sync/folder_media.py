"""Media through a shared folder: the blobs the productions refer to, beside their
update files, in ``<share>/castroom/_media/<first 2 hex digits>/<other 62>`` (``_media``
can never be a production id, which starts with a letter or digit).

Each pass copies every referenced blob this workspace has and the folder lacks into the
folder (written to a dot-file, then renamed: a reader never sees half a blob), and takes
every referenced blob the folder has and this workspace lacks, checked against its hash,
its recorded size and its kind's limit before it is stored. A damaged or planted file
is a warning and is never stored; a symlink is never followed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec

from castroom.core import media
from castroom.core.blobs import CHUNK, BlobRefused
from castroom.core.errors import CastroomError
from castroom.core.workspace import Workspace

MEDIA_FOLDER = "_media"


class MediaCopied(msgspec.Struct, kw_only=True):
    """What one pass copied each way (files and bytes)."""

    copied_in: int = 0
    copied_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


def sync_media(
    workspace: Workspace,
    root: Path,
    real_folder: Callable[[Path], Path],
    write_atomic: Callable[[Path, str, Iterable[bytes]], None],
    warn: Callable[[str, tuple[str, int] | None], None],
) -> MediaCopied:
    """One pass of media between ``workspace`` and the share's ``root`` (the folder's
    own helpers passed in: never through a symlink, never half-written)."""
    moved = MediaCopied()
    needs = media.RefCache().needs(workspace, [pid for pid, _ in workspace.productions()])
    if not needs:
        return moved
    folder = real_folder(root / MEDIA_FOLDER)
    blobs = workspace.blobs
    for need in needs.values():
        shared = folder / need.hash[:2] / need.hash[2:]
        if blobs.has(need.hash):
            if not os.path.lexists(shared):
                directory = real_folder(folder / need.hash[:2])
                with blobs.open(need.hash) as src:
                    write_atomic(directory, need.hash[2:], iter(lambda: src.read(CHUNK), b""))
                moved.copied_out += 1
                moved.bytes_out += blobs.size(need.hash)
            continue
        if shared.is_symlink() or not shared.is_file():
            continue  # not there yet (or planted: never followed)
        try:
            with open(shared, "rb") as src:
                stored = blobs.put(
                    src,
                    expected=need.hash,
                    expected_size=need.size,
                    max_bytes=media.size_limit(workspace.config, need.what),
                )
        except BlobRefused as exc:
            stat = shared.stat()
            warn(f"{shared} not taken: {exc}", (str(shared), int(stat.st_mtime_ns)))
            continue
        except OSError as exc:
            raise CastroomError(f"cannot read {shared}: {exc.strerror or exc}") from None
        moved.copied_in += 1
        moved.bytes_in += stored.size
    return moved

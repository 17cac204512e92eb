"""The workspace's content-addressed blob store: media files named by their SHA-256.

A blob lives at ``<workspace>/media/<first 2 hex digits>/<other 62>``, mode 0600. It is
written to a temporary file in ``media/tmp/`` while its hash is computed, checked, then
renamed into place (atomic on one file system), so a reader never sees half a blob and a
refused or interrupted write leaves nothing under its name. Nothing is held whole in
memory: writes and reads go in chunks. Several processes may write the same blob at
once: both write the same bytes, and the second rename replaces the first with itself.

The interface for every channel that moves media (docs/media.md):

- :meth:`BlobStore.has`, :meth:`BlobStore.size`, :meth:`BlobStore.path` (to serve a file
  as it is, e.g. starlette's ``FileResponse``, which answers HTTP range requests),
- :meth:`BlobStore.open` and :meth:`BlobStore.read_range` to read,
- :meth:`BlobStore.put` (from a file object or an iterable of chunks) and
  :meth:`BlobStore.writer` (chunk by chunk, for an async receiver), both verifying an
  expected hash and size and storing nothing on a mismatch, a truncation or an
  oversized stream,
- :meth:`BlobStore.commit_all`: many writers finished with ``durable=False`` made
  durable by one file-system flush (Linux ``syncfs``; one fsync each elsewhere), then
  renamed: a batch of small blobs does not wait for one disk flush per file,
- :meth:`BlobStore.hashes` to iterate, :meth:`BlobStore.verify`, :meth:`BlobStore.delete`.

A blob's bytes always reach the disk before its name does, so a crash can lose a blob
that was arriving (it is fetched again) but never leave a name over missing bytes.

No SQL and no document here: which blobs are referenced is :mod:`castroom.core.media`'s.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec

from .errors import CastroomError, NotFound
from .model import SHA256_PATTERN

#: A blob's name: 64 lowercase hex digits (checked before any hash touches a path).
_HASH = re.compile(SHA256_PATTERN)
CHUNK = 1024 * 1024
#: Temporary files older than this are an interrupted write's leftovers (see sweep_tmp).
STALE_TMP_SECONDS = 24 * 3600


class BlobRefused(CastroomError):
    """A blob was not stored: its bytes do not match the hash or size it was sent
    with, or it is over the limit. Nothing was written."""


class StoredBlob(msgspec.Struct, kw_only=True, frozen=True):
    """What :meth:`BlobStore.put` (or a writer's ``commit``) stored."""

    hash: str
    size: int
    #: False when the store already had this blob (nothing was written).
    new: bool


def check_hash(value: object) -> str:
    """``value`` if it is a blob hash (64 lowercase hex digits), else one clear error."""
    if isinstance(value, str) and _HASH.match(value):
        return value
    raise CastroomError(f"{str(value)[:80]!r} is not a SHA-256 hash (64 hex digits)")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    import hashlib  # imported with media work, not by every command (OpenSSL loads)

    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class BlobWriter:
    """One blob being received, chunk by chunk: :meth:`write` each chunk, then
    :meth:`commit`. Leaving the ``with`` block without committing (an exception, a
    dropped connection) removes the temporary file and stores nothing.

    ``expected`` / ``expected_size``: what the sender said it is; ``max_bytes``: refuse
    (and stop) as soon as more than this arrives."""

    def __init__(
        self,
        store: BlobStore,
        *,
        expected: str | None = None,
        expected_size: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.store = store
        self.expected = check_hash(expected) if expected is not None else None
        self.expected_size = expected_size
        self.max_bytes = max_bytes
        if expected_size is not None and max_bytes is not None and expected_size > max_bytes:
            raise BlobRefused(f"{expected_size:,} bytes is over the limit of {max_bytes:,} bytes")
        self.size = 0
        import hashlib

        self._digest = hashlib.sha256()
        store.root.mkdir(mode=0o700, exist_ok=True)
        tmp = store.root / "tmp"
        tmp.mkdir(mode=0o700, exist_ok=True)
        self.tmp_path = tmp / f"{os.getpid()}-{os.urandom(8).hex()}"
        fd = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._done = False
        #: Whether the bytes are on the disk (fsynced, or flushed by a store-wide sync).
        self.durable = False

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            raise CastroomError("this blob was already committed or aborted")
        self.size += len(chunk)
        limit = self.max_bytes
        if limit is not None and self.size > limit:
            self.abort()
            raise BlobRefused(f"more than {limit:,} bytes: over the limit, not stored")
        if self.expected_size is not None and self.size > self.expected_size:
            self.abort()
            raise BlobRefused(f"more bytes than the {self.expected_size:,} announced: not stored")
        self._digest.update(chunk)
        self._file.write(chunk)

    @property
    def hash(self) -> str:
        """The SHA-256 of what was written so far."""
        return self._digest.hexdigest()

    def finish(self, *, durable: bool = True) -> str:
        """Flush what was written and check it against what was expected, leaving it in
        the temporary file (:attr:`tmp_path`, for a probe to read) until :meth:`commit`.
        Returns the hash; refuses (and aborts) a truncated or altered blob. With
        ``durable=False`` the fsync waits for :meth:`commit` or
        :meth:`BlobStore.commit_all` (one flush for a whole batch)."""
        if self._file is not None:
            self._file.flush()
            if durable:
                os.fsync(self._file.fileno())
                self.durable = True
            self._file.close()
            self._file = None
        elif self._done:
            raise CastroomError("this blob was already committed or aborted")
        actual = self.hash
        if self.expected_size is not None and self.size != self.expected_size:
            self.abort()
            raise BlobRefused(
                f"truncated: {self.size:,} of {self.expected_size:,} bytes arrived, not stored"
            )
        if self.expected is not None and actual != self.expected:
            self.abort()
            raise BlobRefused(
                f"the bytes do not match their hash (expected {self.expected[:12]}…,"
                f" got {actual[:12]}…): not stored"
            )
        return actual

    def commit(self) -> StoredBlob:
        """Verify, then move the blob into place atomically (or drop it, if the store
        already had it)."""
        actual = self.finish()
        self._done = True
        final = self.store.path(actual)
        if final.exists():
            self.tmp_path.unlink(missing_ok=True)
            return StoredBlob(hash=actual, size=self.size, new=False)
        if not self.durable:
            fsync_path(self.tmp_path)
            self.durable = True
        final.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(self.tmp_path, final)
        return StoredBlob(hash=actual, size=self.size, new=True)

    def abort(self) -> None:
        """Drop what was written (nothing is stored). Safe to call twice."""
        self._done = True
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self.abort()


class BlobStore:
    """The blobs of one workspace (``root``: its ``media`` folder, made on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, hash: str) -> Path:
        """Where the blob named ``hash`` is (or would be) stored."""
        hash = check_hash(hash)
        return self.root / hash[:2] / hash[2:]

    def has(self, hash: str) -> bool:
        return self.path(hash).is_file()

    def size(self, hash: str) -> int:
        """The blob's size in bytes; NotFound when the store lacks it."""
        try:
            return self.path(hash).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"no media blob {hash[:12]}… in this workspace") from None

    def open(self, hash: str) -> BinaryIO:
        """The blob, open for reading (binary); NotFound when the store lacks it."""
        try:
            return open(self.path(hash), "rb")
        except FileNotFoundError:
            raise NotFound(f"no media blob {hash[:12]}… in this workspace") from None

    def read_range(self, hash: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` up to (not including) ``end`` of the blob, in chunks of at most
        1 MiB (``end`` None: to the end). Out-of-range bounds are clipped."""
        with self.open(hash) as src:
            src.seek(max(0, start))
            left = None if end is None else max(0, end - max(0, start))
            while left is None or left > 0:
                chunk = src.read(CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def writer(
        self,
        *,
        expected: str | None = None,
        expected_size: int | None = None,
        max_bytes: int | None = None,
    ) -> BlobWriter:
        """A :class:`BlobWriter`, for bytes that arrive chunk by chunk."""
        return BlobWriter(self, expected=expected, expected_size=expected_size, max_bytes=max_bytes)

    def put(
        self,
        source: BinaryIO | Iterable[bytes],
        *,
        expected: str | None = None,
        expected_size: int | None = None,
        max_bytes: int | None = None,
    ) -> StoredBlob:
        """Store the bytes of ``source`` (a binary file object, or chunks), verified
        against ``expected``/``expected_size`` when given; BlobRefused stores nothing."""
        with self.writer(
            expected=expected, expected_size=expected_size, max_bytes=max_bytes
        ) as out:
            for chunk in _chunks(source):
                out.write(chunk)
            return out.commit()

    def commit_all(self, writers: list[BlobWriter]) -> list[StoredBlob]:
        """Commit writers finished with ``durable=False``: their bytes made durable
        together by one flush of the file system, then each renamed into place."""
        waiting = [w for w in writers if not w.durable and not w._done]
        if len(waiting) > 1 and _sync_file_system(self.root / "tmp"):
            for writer in waiting:
                writer.durable = True
        return [writer.commit() for writer in writers]

    def put_bytes(self, data: bytes) -> StoredBlob:
        """A small blob held in memory (a thumbnail)."""
        return self.put([data])

    def verify(self, hash: str) -> bool:
        """Whether the stored bytes still hash to their name (a disk can rot)."""
        return sha256_of(self.path(hash)) == hash if self.has(hash) else False

    def delete(self, hash: str) -> bool:
        """Remove a blob; False when it was not there."""
        try:
            self.path(hash).unlink()
        except FileNotFoundError:
            return False
        return True

    def hashes(self) -> Iterator[str]:
        """Every stored blob's hash (in no particular order)."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            for item in folder.iterdir():
                name = folder.name + item.name
                if _HASH.match(name) and item.is_file():
                    yield name

    def stat(self, hash: str) -> os.stat_result:
        return self.path(hash).stat()

    def sweep_tmp(self, older_than: float = STALE_TMP_SECONDS) -> int:
        """Remove temporary files an interrupted write left (older than ``older_than``
        seconds, so a write in progress in another process is never touched)."""
        tmp = self.root / "tmp"
        if not tmp.is_dir():
            return 0
        removed = 0
        cutoff = time.time() - older_than
        for item in tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if item.stat().st_mtime < cutoff:
                    item.unlink()
                    removed += 1
        return removed


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_file_system(folder: Path) -> bool:
    """Flush every written file of the file system holding ``folder`` to the disk
    (Linux ``syncfs(2)``); False where that call is missing or fails (then each
    file is fsynced on its own)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # only for media: not imported when castroom starts

    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        return bool(syncfs(fd) == 0)
    finally:
        os.close(fd)


def _chunks(source: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    read = getattr(source, "read", None)
    if read is None:
        yield from source  # type: ignore[misc]
        return
    while chunk := read(CHUNK):
        yield chunk

"""The content-addressed blob store: atomic, verified, streaming writes that store
nothing when refused; reads by range; iteration; private files."""

from __future__ import annotations

import hashlib
import itertools
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples

from castroom.core.blobs import CHUNK, BlobRefused, BlobStore
from castroom.core.errors import CastroomError, NotFound


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "media")


def files_under(root: Path) -> list[str]:
    """Every file under ``root`` (temporary ones too), relative."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_names_the_blob_by_its_sha256_in_a_private_file(store: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    stored = store.put([data[:1000], data[1000:]])
    assert stored.hash == sha(data) and stored.size == len(data) and stored.new
    path = store.path(stored.hash)
    assert path == store.root / stored.hash[:2] / stored.hash[2:]
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    assert store.has(stored.hash) and store.size(stored.hash) == len(data)
    assert files_under(store.root) == [f"{stored.hash[:2]}/{stored.hash[2:]}"]  # no temp left
    with open(path, "rb") as src:  # from a file object; already there: not rewritten
        again = store.put(src)
    assert again.hash == stored.hash and not again.new


def test_a_blob_that_does_not_match_its_hash_is_refused_and_nothing_stored(store) -> None:
    data = b"a reel, as sent"
    with pytest.raises(BlobRefused, match="do not match their hash"):
        store.put([data[:-1] + b"!"], expected=sha(data))
    with pytest.raises(BlobRefused, match="truncated: 14 of 15 bytes"):
        store.put([data[:-1]], expected=sha(data), expected_size=len(data))
    with pytest.raises(BlobRefused, match="more bytes than the 15 announced"):
        store.put([data, b"x"], expected_size=len(data))
    with pytest.raises(BlobRefused, match="over the limit"):
        store.put([data, data], max_bytes=20)
    with pytest.raises(BlobRefused, match="over the limit"):
        store.writer(expected_size=10**10, max_bytes=10**6)  # said up front: not even opened
    assert files_under(store.root) == []
    assert store.put([data], expected=sha(data), expected_size=len(data)).new


def test_a_writer_left_without_commit_stores_nothing(store: BlobStore) -> None:
    data = b"x" * 5000
    with store.writer(expected=sha(data)) as out:
        out.write(data[:100])  # the connection drops here
    with pytest.raises(RuntimeError), store.writer() as out:
        out.write(data)
        raise RuntimeError("receiver crashed")
    assert files_under(store.root) == []
    with store.writer(expected=sha(data)) as out:
        for i in range(0, len(data), 1000):
            out.write(data[i : i + 1000])
        assert out.finish() == sha(data) and out.tmp_path.exists()  # checked, not yet named
        assert not store.has(sha(data))
        stored = out.commit()
    assert stored.new and store.has(sha(data))


def test_read_range_streams_the_bytes_asked_for(store: BlobStore) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    digest = store.put([data]).hash
    assert b"".join(store.read_range(digest)) == data
    assert b"".join(store.read_range(digest, 10, 20)) == data[10:20]
    assert b"".join(store.read_range(digest, len(data) - 3)) == data[-3:]
    assert b"".join(store.read_range(digest, 5, 10**9)) == data[5:]
    assert b"".join(store.read_range(digest, 50, 40)) == b""
    assert max(len(c) for c in store.read_range(digest)) <= 1024 * 1024  # never whole
    with store.open(digest) as src:
        assert src.read(4) == data[:4]


def test_hashes_iterates_blobs_only_and_delete_removes(store: BlobStore) -> None:
    digests = {store.put([bytes([i]) * 10]).hash for i in range(5)}
    (store.root / "tmp" / "leftover").write_bytes(b"half")
    (store.root / "zz").mkdir()
    (store.root / "zz" / "not-a-blob").write_bytes(b"?")
    assert set(store.hashes()) == digests
    gone = sorted(digests)[0]
    assert store.delete(gone) and not store.delete(gone)
    assert set(store.hashes()) == digests - {gone}
    assert store.sweep_tmp(older_than=0) == 1


def test_a_blob_damaged_on_disk_fails_verify(store: BlobStore) -> None:
    digest = store.put([b"headshot bytes"]).hash
    assert store.verify(digest)
    store.path(digest).write_bytes(b"headshot bytez")
    assert not store.verify(digest)


def test_only_a_hash_becomes_a_path(store: BlobStore) -> None:
    for bad in ("../../etc/passwd", "A" * 64, "ab", "g" * 64, ""):
        with pytest.raises(CastroomError, match="not a SHA-256 hash"):
            store.path(bad)
    with pytest.raises(NotFound, match="no media blob"):
        store.size("0" * 64)
    with pytest.raises(NotFound):
        store.open("0" * 64)
    assert not store.has("0" * 64) and list(store.hashes()) == []


@settings(max_examples=examples(60))
@given(
    data=st.binary(min_size=0, max_size=4096),
    cuts=st.lists(st.integers(0, 4096), max_size=6),
    start=st.integers(-5, 4200),
    length=st.one_of(st.none(), st.integers(-5, 4200)),
    flip=st.one_of(st.none(), st.integers(0, 4095)),
)
def test_any_chunking_stores_the_same_blob_and_any_change_is_refused(
    tmp_path_factory, data, cuts, start, length, flip
) -> None:
    store = BlobStore(tmp_path_factory.mktemp("prop") / "media")
    points = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]
    altered = bytearray(data)
    if flip is not None and flip < len(data):
        altered[flip] ^= 0x01
        with pytest.raises(BlobRefused):
            store.put([bytes(altered)], expected=sha(data), expected_size=len(data))
        assert list(store.hashes()) == []
    stored = store.put(chunks, expected=sha(data), expected_size=len(data))
    assert stored.hash == sha(data) and store.size(stored.hash) == len(data)
    end = None if length is None else start + length
    got = b"".join(store.read_range(stored.hash, start, end))
    lo = max(0, start)
    assert got == (data[lo:] if end is None else data[lo : max(lo, end)])
    assert all(len(c) <= CHUNK for c in store.read_range(stored.hash))


def test_a_batch_of_writers_is_made_durable_together_then_named(store: BlobStore) -> None:
    blobs = [os.urandom(1000 + i) for i in range(4)]
    writers = []
    for data in blobs:
        out = store.writer(expected=sha(data), expected_size=len(data))
        out.write(data)
        out.finish(durable=False)  # checked, bytes not yet flushed, no name yet
        assert not out.durable and not store.has(sha(data))
        writers.append(out)
    stored = store.commit_all(writers)
    assert [s.hash for s in stored] == [sha(d) for d in blobs] and all(s.new for s in stored)
    assert all(w.durable for w in writers)
    assert files_under(store.root) == sorted(f"{h[:2]}/{h[2:]}" for h in map(sha, blobs))
    # A lone writer finished without its fsync still gets one before it is named.
    data = b"one more"
    with store.writer(expected=sha(data)) as out:
        out.write(data)
        out.finish(durable=False)
        assert out.commit().new and out.durable

"""Bundles: a whole workspace (or what one peer lacks) in one file, for offline crews.

A bundle is ``MAGIC | blake2b-256(body) | body`` where body is MessagePack. A state file
(``castroom bundle state``) records what a peer already has, so ``bundle create --for``
writes only the difference. Applying checks the magic, the checksum and that every
update decodes *before* merging anything: a corrupt or foreign file changes nothing.

A bundle also carries attached files (``--media``): ``thumbs`` (the default: every
thumbnail and poster the productions refer to, what a shortlist shows), ``all`` (the
originals too: held in memory while written and read, so big reels are better moved by
folder or HTTP sync) or ``none``. Each is checked against its hash before anything is
merged.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import msgspec

from . import media as media_refs
from . import model
from .document import production_in
from .errors import BadUpdate, CastroomError, UnsafeId
from .workspace import Workspace
from .yupdate import EMPTY_UPDATE

BUNDLE_MAGIC = b"CASTROOM-BUNDLE\n"
STATE_MAGIC = b"CASTROOM-STATE1\n"
FORMAT_VERSION = 1


class BundleEntry(msgspec.Struct, kw_only=True):
    id: str
    title: str
    update: bytes


class BundleBlob(msgspec.Struct, kw_only=True):
    hash: str
    #: A media kind, or ``derived`` (a thumbnail or poster): which size limit applies.
    what: str
    data: bytes


class Bundle(msgspec.Struct, kw_only=True):
    version: int
    created: float
    member: str
    device: str
    productions: list[BundleEntry]
    media: list[BundleBlob] = msgspec.field(default_factory=list)


class Applied(msgspec.Struct, kw_only=True):
    """What applying a bundle changed: entities per production, and files stored."""

    productions: dict[str, int]
    media: int = 0


#: What ``bundle create --media`` may carry.
MEDIA_MODES = ("none", "thumbs", "all")


def _seal(magic: bytes, body: bytes) -> bytes:
    return magic + hashlib.blake2b(body, digest_size=32).digest() + body


def _open(magic: bytes, data: bytes, what: str) -> bytes:
    if not data.startswith(magic):
        raise BadUpdate(f"not a castroom {what} file")
    digest, body = data[len(magic) : len(magic) + 32], data[len(magic) + 32 :]
    if hashlib.blake2b(body, digest_size=32).digest() != digest:
        raise BadUpdate(f"{what} file is corrupt (checksum mismatch)")
    return body


def read_state(path: Path) -> dict[str, bytes]:
    try:
        body = _open(STATE_MAGIC, Path(path).read_bytes(), "state")
        return msgspec.msgpack.decode(body, type=dict[str, bytes])
    except (OSError, msgspec.DecodeError) as exc:
        raise BadUpdate(f"cannot read state file {path}: {exc}") from None


def write_state(workspace: Workspace, path: Path) -> int:
    """Write this workspace's state vectors (what it has) for a peer's ``--for``."""
    state = {
        pid: workspace.production(pid).doc.state_vector() for pid, _ in workspace.productions()
    }
    _write_atomic(Path(path), _seal(STATE_MAGIC, msgspec.msgpack.encode(state)))
    return len(state)


def create(
    workspace: Workspace, path: Path, *, for_state: Path | None = None, media: str = "thumbs"
) -> Bundle:
    """Write every production (or only what the peer behind ``for_state`` lacks; a
    production it has all of is left out), with the attached files ``media`` says."""
    have = read_state(for_state) if for_state else {}
    entries = []
    for pid, title in workspace.productions():
        doc = workspace.production(pid).doc
        update = doc.encode_update(have.get(pid))
        if update != EMPTY_UPDATE:  # the peer has all of it: nothing to carry
            entries.append(BundleEntry(id=pid, title=title, update=update))
    bundle = Bundle(
        version=FORMAT_VERSION,
        created=time.time(),
        member=workspace.identity.member,
        device=workspace.identity.device_id,
        productions=entries,
        media=_blobs_for(workspace, media),
    )
    _write_atomic(Path(path), _seal(BUNDLE_MAGIC, msgspec.msgpack.encode(bundle)))
    return bundle


def read(path: Path) -> Bundle:
    """Read and check a bundle file (magic, checksum, format version)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadUpdate(f"cannot read bundle {path}: {exc.strerror}") from None
    body = _open(BUNDLE_MAGIC, data, "bundle")
    try:
        bundle = msgspec.msgpack.decode(body, type=Bundle)
    except msgspec.DecodeError as exc:
        raise BadUpdate(f"bundle {path} cannot be decoded: {exc}") from None
    if bundle.version != FORMAT_VERSION:
        raise BadUpdate(
            f"bundle format {bundle.version} is not supported (this is {FORMAT_VERSION})"
        )
    return bundle


def _rehearse(workspace: Workspace, entry: BundleEntry) -> None:
    """Merge ``entry`` into a scratch copy of what this workspace holds, so an update that
    does not decode, decodes but cannot be integrated, or belongs to another production,
    is refused before anything real changes."""
    held = None
    if entry.id in dict(workspace.productions()):
        held = workspace.production(entry.id).doc.encode_update()
    try:
        claimed = production_in(entry.update, held)
    except BadUpdate as exc:
        raise BadUpdate(f"bundle entry {entry.id} cannot be merged: {exc}") from None
    if claimed is not None and claimed != entry.id:
        raise BadUpdate(f"bundle entry {entry.id} holds another production ({claimed})")


def _blobs_for(workspace: Workspace, mode: str) -> list[BundleBlob]:
    if mode not in MEDIA_MODES:
        raise CastroomError(f"--media {mode!r}: expected one of {', '.join(MEDIA_MODES)}")
    if mode == "none":
        return []
    needs = media_refs.RefCache().needs(workspace, [pid for pid, _ in workspace.productions()])
    blobs = workspace.blobs
    return [
        BundleBlob(hash=n.hash, what=n.what, data=blobs.path(n.hash).read_bytes())
        for n in needs.values()
        if blobs.has(n.hash) and (mode == "all" or n.what == "derived")
    ]


def _check_blobs(workspace: Workspace, bundle: Bundle, path: Path) -> None:
    for blob in bundle.media:
        limit = media_refs.size_limit(workspace.config, blob.what)
        if hashlib.sha256(blob.data).hexdigest() != blob.hash or len(blob.data) > limit:
            raise BadUpdate(
                f"bundle {path}: the file {blob.hash[:12]}… is damaged or over its limit;"
                " nothing was merged"
            )


def apply(workspace: Workspace, path: Path) -> dict[str, int]:
    """Merge a bundle. Returns production id -> number of entities that changed."""
    return apply_bundle(workspace, path).productions


def apply_bundle(workspace: Workspace, path: Path) -> Applied:
    """Merge a bundle and store the files it carries.

    Every entry is checked (magic, checksum, decoding, and a rehearsal merge) and every
    file against its hash before any is merged: a corrupt, truncated or foreign file
    changes nothing.
    """
    bundle = read(path)
    _check_blobs(workspace, bundle, path)
    for entry in bundle.productions:
        try:
            model.folder_id(entry.id, "production id")
        except UnsafeId as exc:
            raise UnsafeId(f"bundle {path}: {exc}; nothing was merged") from None
        _rehearse(workspace, entry)
    moved = {}
    for entry in bundle.productions:
        _, changes = workspace.adopt(
            entry.id, entry.update, origin="bundle", device=bundle.device, member=bundle.member
        )
        moved[entry.id] = len(changes)
    stored = sum(
        workspace.blobs.put([b.data], expected=b.hash).new
        for b in bundle.media
        if not workspace.blobs.has(b.hash)
    )
    return Applied(productions=moved, media=stored)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` whole or not at all (a temporary file, then a rename); a path that
    cannot be written is one clear error, never a traceback."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CastroomError(f"cannot write {path}: {exc.strerror or exc}") from None

"""Media attached to talents and candidates: every rule about attachments, once.

The bytes live in the workspace's blob store (:mod:`castroom.core.blobs`), the record
(:class:`~castroom.core.model.MediaRef`) in the entity's ``media`` map in the document,
written through :mod:`castroom.core.edits` (plan, then apply). Front ends (the CLI, a
server, a sync client) call these functions and nothing else decides:

- :func:`attach`: sniff the type from the bytes, check it fits the kind (``--as``) and
  the kind's size limit, copy it into the store while hashing (never whole in memory),
  open it with its decoder and derive a thumbnail / poster frame, then apply the edit.
  A refusal at any step stores nothing: neither a blob nor a change to the document.
- :func:`detach`, :func:`attachments`, :func:`find`, :func:`export`.
- :func:`usage` and :func:`collect` (garbage: a blob no live entity in any production
  of the workspace references is kept ``grace_days``, then removed by ``castroom
  compact``).

Limits come from the workspace config's ``[media]`` table (:func:`media_config`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from . import edits, model
from .blobs import BlobStore, StoredBlob
from .derivatives import Probed, probe
from .errors import Ambiguous, CastroomError, NotFound
from .labels import label
from .model import MediaRef
from .resolve import Reader, resolve_id
from .sniff import sniff_file

if TYPE_CHECKING:
    from .document import CastDocument
    from .workspace import StoredProduction, Workspace

KB, MB, GB = 1000, 1000**2, 1000**3
#: Each kind's largest file, unless the config's ``[media.max_bytes]`` says otherwise.
DEFAULT_MAX_BYTES: dict[str, int] = {
    "headshot": 25 * MB,
    "resume": 20 * MB,
    "reel": 2 * GB,
    "selftape": 2 * GB,
    "other": 100 * MB,
}
#: Images with more pixels than this are refused before they are decoded.
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_GRACE_DAYS = 30.0
#: The most one server token may upload (PUT /media), unless ``[media] token_quota`` says
#: otherwise ("none": no quota).
DEFAULT_TOKEN_QUOTA = 20 * GB

IMAGES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
VIDEOS = frozenset({"video/mp4", "video/quicktime", "video/webm"})
PDF = "application/pdf"
#: The types each kind may be (``other``: any accepted type).
KIND_TYPES: dict[str, frozenset[str]] = {
    "headshot": IMAGES,
    "reel": VIDEOS,
    "selftape": VIDEOS,
    "resume": IMAGES | {PDF},
    "other": IMAGES | VIDEOS | {PDF},
}
#: kind key -> the entity kinds media can be attached to.
OWNERS: dict[str, type[model.Entity]] = {"talent": model.Talent, "candidate": model.Candidate}
#: The workspace kv key holding {hash: when it was first seen unreferenced}.
UNREFERENCED_KEY = "media-unreferenced"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b|bytes)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "bytes": 1, "kb": KB, "mb": MB, "gb": GB}
_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3})


class MediaConfig(msgspec.Struct, kw_only=True, frozen=True):
    """The ``[media]`` table of a workspace's config.toml."""

    max_bytes: dict[str, int]
    max_pixels: int = DEFAULT_MAX_PIXELS
    grace_days: float = DEFAULT_GRACE_DAYS
    #: Bytes one server token may store by uploading; None: no quota.
    token_quota: int | None = DEFAULT_TOKEN_QUOTA


def parse_size(value: object, where: str) -> int:
    """A size in bytes from a config value: a whole number, or text like "25 MB",
    "1.5 GB", "512 KiB"."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise CastroomError(f"config {where}: {value!r} is not a size like 25 MB or 2 GB")
    unit = (match.group(2) or "b").lower()
    return int(float(match.group(1)) * _UNITS[unit])


#: The settings a ``[media]`` table may hold: a misspelt one is an error, not ignored.
_MEDIA_KEYS = frozenset({"max_bytes", "max_pixels", "grace_days", "token_quota"})


def media_config(config: dict[str, Any]) -> MediaConfig:
    """The media limits of a workspace config (defaults for what it leaves out)."""
    table = config.get("media", {})
    if not isinstance(table, dict):
        raise CastroomError("config media: expected a table ([media])")
    unknown = sorted(set(table) - _MEDIA_KEYS)
    if unknown:
        known = ", ".join(sorted(_MEDIA_KEYS))
        raise CastroomError(f"config media.{unknown[0]}: not a media setting ({known})")
    limits = dict(DEFAULT_MAX_BYTES)
    given = table.get("max_bytes", {})
    if not isinstance(given, dict):
        raise CastroomError("config media.max_bytes: expected a table of kind = size")
    for kind, value in given.items():
        if kind not in DEFAULT_MAX_BYTES:
            known = ", ".join(model.MEDIA_KINDS)
            raise CastroomError(f"config media.max_bytes.{kind}: not a media kind ({known})")
        limits[kind] = parse_size(value, f"media.max_bytes.{kind}")
    pixels, grace = table.get("max_pixels", DEFAULT_MAX_PIXELS), table.get("grace_days")
    if not isinstance(pixels, int) or isinstance(pixels, bool) or pixels < 1:
        raise CastroomError(f"config media.max_pixels: {pixels!r} is not a whole number >= 1")
    if grace is None:
        grace = DEFAULT_GRACE_DAYS
    if not isinstance(grace, int | float) or isinstance(grace, bool) or grace < 0:
        raise CastroomError(f"config media.grace_days: {grace!r} is not a number of days >= 0")
    quota = table.get("token_quota", DEFAULT_TOKEN_QUOTA)
    if isinstance(quota, str) and quota.strip().lower() == "none":
        quota = None
    elif quota is not None:
        quota = parse_size(quota, "media.token_quota")
    return MediaConfig(
        max_bytes=limits, max_pixels=pixels, grace_days=float(grace), token_quota=quota
    )


def owner_kind(kind: str) -> type[model.Entity]:
    """The entity kind a KIND argument names, if media can be attached to it."""
    cls = model.kind_class(kind)
    if cls not in OWNERS.values():
        raise CastroomError(
            f"media is attached to a talent or a candidate, not a {cls.entity_kind}"
        )
    return cls


def default_kind(cls: type[model.Entity], mime: str) -> str:
    """What a file is for when ``--as`` is not given: by its type (and a candidate's
    video is a self-tape)."""
    if mime in IMAGES:
        return "headshot"
    if mime == PDF:
        return "resume"
    return "selftape" if cls is model.Candidate else "reel"


def check_kind(kind: str, mime: str, shown: str) -> None:
    if kind not in KIND_TYPES:
        raise CastroomError(f"--as {kind!r}: not one of {', '.join(model.MEDIA_KINDS)}")
    if mime not in KIND_TYPES[kind]:
        allowed = ", ".join(sorted(KIND_TYPES[kind]))
        raise CastroomError(f"{shown} is {mime}; a {kind} must be one of: {allowed}")


def size_words(size: int) -> str:
    for unit, scale in (("GB", GB), ("MB", MB), ("KB", KB)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


# -- attaching ------------------------------------------------------------------------------


class Attached(msgspec.Struct, kw_only=True, frozen=True):
    """What :func:`attach` did."""

    entity_kind: str
    entity_id: str
    label: str
    media: MediaRef
    #: The original was new to this workspace's store.
    stored: bool
    #: The same file was already attached as this kind: nothing changed.
    already: bool = False


def _shown_name(path: Path) -> str:
    name = re.sub(r"[\r\n\u2028\u2029]+", " ", path.name).strip() or "file"
    return name[:255]


def attach(
    production: StoredProduction,
    cls: type[model.Entity],
    ref: str,
    file: Path,
    *,
    as_kind: str | None = None,
    now: dt.datetime | None = None,
) -> Attached:
    """Attach ``file`` to the live talent or candidate ``ref`` names (an id, a prefix,
    a name; "TALENT for ROLE" for a candidate). All or nothing: a refusal stores no
    blob and changes nothing."""
    workspace, doc = production.workspace, production.doc
    config = media_config(workspace.config)
    owner_kind(cls.entity_kind)
    entity_id = resolve_id(doc, cls, ref)
    shown = _shown_name(file)
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise CastroomError(f"cannot read {file}: {exc.strerror or exc}") from None
    if not file.is_file():
        raise CastroomError(f"{file} is not a file")
    mime = sniff_file(file, shown=shown)
    kind = as_kind or default_kind(cls, mime)
    check_kind(kind, mime, shown)
    limit = config.max_bytes[kind]
    if size > limit:
        raise CastroomError(
            f"{shown} is {size_words(size)}, over the {kind} limit of {size_words(limit)}"
            f" (media.max_bytes.{kind} in the workspace config): not stored"
        )
    current = _stored_media(doc, cls, entity_id)
    with workspace.blobs.writer(max_bytes=limit) as out, open(file, "rb") as src:
        while chunk := src.read(1024 * 1024):
            out.write(chunk)
        digest = out.finish()
        name = label(doc, cls, doc.raw(cls, entity_id))
        old = _record(current.get(digest))
        if old is not None and old.kind == kind:
            out.abort()
            return Attached(
                entity_kind=cls.entity_kind,
                entity_id=entity_id,
                label=name,
                media=old,
                stored=False,
                already=True,
            )
        probed = _known_probe(workspace, doc, digest) or probe(
            out.tmp_path, mime, shown=shown, max_pixels=config.max_pixels
        )
        record = MediaRef(
            hash=digest,
            kind=kind,  # type: ignore[arg-type]
            name=shown,
            mime=mime,  # type: ignore[arg-type]
            bytes=out.size,
            width=probed.width,
            height=probed.height,
            duration=probed.duration,
            pages=probed.pages,
            thumbnail=_digest(probed.thumbnail),
            poster=_digest(probed.poster),
            added_by=workspace.identity.member,
            added_at=now or dt.datetime.now(dt.UTC).replace(microsecond=0),
        )
        media = {**current, digest: msgspec.to_builtins(record)}
        edit = edits.change(doc, cls, entity_id, {"media": media}, reason=f"attach {shown}")
        stored = out.commit()
    _apply_with_blobs(workspace.blobs, doc, edit, stored, probed)
    return Attached(
        entity_kind=cls.entity_kind,
        entity_id=entity_id,
        label=name,
        media=record,
        stored=stored.new,
    )


def _digest(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def _apply_with_blobs(
    blobs: BlobStore, doc: Any, edit: edits.Edit, stored: StoredBlob, probed: Probed
) -> None:
    """Store the derivatives, then apply the edit; if it is refused after all (another
    process changed the entity meanwhile), remove the blobs this attach added."""
    added = [stored] + [blobs.put_bytes(d) for d in (probed.thumbnail, probed.poster) if d]
    try:
        edits.apply(doc, edit)
    except BaseException:
        for blob in added:
            if blob.new:
                blobs.delete(blob.hash)
        raise


def _known_probe(workspace: Workspace, doc: Any, digest: str) -> Probed | None:
    """What an earlier attach of the same bytes found, when its derivatives are here:
    derivatives are made once per file, not once per entity it is attached to."""
    if not workspace.blobs.has(digest):  # new bytes: nothing was derived from them yet
        return None
    for _cls, _id, ref in _every_attachment(doc):
        if ref.hash != digest:
            continue
        derived = [h for h in (ref.thumbnail, ref.poster) if h is not None]
        if all(workspace.blobs.has(h) for h in derived):
            return Probed(
                width=ref.width,
                height=ref.height,
                duration=ref.duration,
                pages=ref.pages,
                thumbnail=_read_small(workspace.blobs, ref.thumbnail),
                poster=_read_small(workspace.blobs, ref.poster),
            )
    return None


def _read_small(blobs: BlobStore, digest: str | None) -> bytes | None:
    if digest is None:
        return None
    with blobs.open(digest) as src:
        return src.read()


def _stored_media(reader: Reader, cls: type[model.Entity], entity_id: str) -> dict[str, Any]:
    """The entity's ``media`` map as stored (plain data), so an edit keeps every record
    it does not mean to change, even one stored invalid."""
    media = (reader.raw(cls, entity_id) or {}).get("media")
    return dict(media) if isinstance(media, dict) else {}


def _record(value: Any) -> MediaRef | None:
    try:
        return msgspec.convert(value, MediaRef, strict=False)
    except (msgspec.ValidationError, TypeError, ValueError):
        return None


def _every_attachment(reader: Reader) -> Iterator[tuple[type[model.Entity], str, MediaRef]]:
    for cls in OWNERS.values():
        for entity in reader.all(cls):
            for ref in getattr(entity, "media", {}).values():
                yield cls, entity.id, ref


# -- reading and detaching ------------------------------------------------------------------


class Attachment(msgspec.Struct, kw_only=True, frozen=True):
    """One attachment of one entity, as listed."""

    entity_kind: str
    entity_id: str
    label: str
    media: MediaRef
    #: Whether this workspace has the original's bytes (a peer's may not have arrived).
    present: bool


def attachments(
    reader: Reader,
    blobs: BlobStore,
    cls: type[model.Entity] | None = None,
    entity_id: str | None = None,
) -> list[Attachment]:
    """Every live attachment (of one entity, when given), by entity then time added."""
    out = []
    for owner, owner_id, ref in _every_attachment(reader):
        if (cls is not None and owner is not cls) or (entity_id and owner_id != entity_id):
            continue
        out.append(
            Attachment(
                entity_kind=owner.entity_kind,
                entity_id=owner_id,
                label=label(reader, owner, reader.raw(owner, owner_id)),
                media=ref,
                present=blobs.has(ref.hash),
            )
        )
    return sorted(out, key=lambda a: (a.label.casefold(), a.entity_id, a.media.added_at))


def find(reader: Reader, blobs: BlobStore, ref: str) -> list[Attachment]:
    """The attachments of the one file ``ref`` names: a hash, a unique hash prefix (4+
    hex digits), or the name it was attached under."""
    every = attachments(reader, blobs)
    text = ref.strip().lower()
    by_hash = [a for a in every if a.media.hash == text]
    if not by_hash and len(text) >= 4 and re.fullmatch(r"[0-9a-f]+", text):
        by_hash = [a for a in every if a.media.hash.startswith(text)]
    found = by_hash or [a for a in every if a.media.name.casefold() == ref.strip().casefold()]
    hashes = sorted({a.media.hash for a in found})
    if not hashes:
        raise NotFound(f"no attached file matching {ref!r} (`castroom media list`)")
    if len(hashes) > 1:
        shown = ", ".join(h[:12] for h in hashes[:5])
        raise Ambiguous(f"{ref!r} matches {len(hashes)} files: {shown}; use more of the hash")
    return found


def detach(
    production: StoredProduction, cls: type[model.Entity], ref: str, which: str
) -> Attachment:
    """Remove one attachment from a live talent or candidate (``which``: a hash, hash
    prefix, the file's name, or its kind when it has one of that kind). The blob stays
    in the store until :func:`collect` finds nothing refers to it."""
    doc = production.doc
    owner_kind(cls.entity_kind)
    entity_id = resolve_id(doc, cls, ref)
    listed = attachments(doc, production.workspace.blobs, cls, entity_id)
    target = _pick(listed, which)
    media = _stored_media(doc, cls, entity_id)
    media.pop(target.media.hash, None)
    edit = edits.change(doc, cls, entity_id, {"media": media}, reason=f"detach {target.media.name}")
    edits.apply(doc, edit)
    return target


def _pick(listed: list[Attachment], which: str) -> Attachment:
    text = which.strip()
    if not listed:
        raise NotFound("nothing is attached to it")
    stages = (
        lambda a: a.media.hash == text.lower(),
        lambda a: len(text) >= 4 and a.media.hash.startswith(text.lower()),
        lambda a: a.media.name.casefold() == text.casefold(),
        lambda a: a.media.kind == text.lower(),
    )
    for matches in stages:
        found = [a for a in listed if matches(a)]
        if len(found) > 1:
            shown = ", ".join(f"{a.media.name} ({a.media.hash[:8]})" for a in found[:5])
            raise Ambiguous(f"{which!r} matches {len(found)} attachments: {shown}; use the hash")
        if found:
            return found[0]
    shown = ", ".join(f"{a.media.name} ({a.media.kind}, {a.media.hash[:8]})" for a in listed)
    raise NotFound(f"no attachment matching {which!r}; attached: {shown}")


def export(
    blobs: BlobStore,
    found: list[Attachment],
    dest: Path,
    *,
    part: str = "original",
    force: bool = False,
) -> Path:
    """Write the file (``part``: original, thumbnail or poster) to ``dest`` (a file, or a
    folder to write it into under its name), checked against its hash as it is copied."""
    ref = found[0].media
    digest = {"original": ref.hash, "thumbnail": ref.thumbnail, "poster": ref.poster}[part]
    if digest is None:
        raise NotFound(f"{ref.name} has no {part}")
    if not blobs.has(digest):
        raise NotFound(
            f"this workspace does not have the {part} of {ref.name} yet"
            " (`castroom sync` fetches it)"
        )
    if dest.is_dir():
        name = ref.name if part == "original" else f"{Path(ref.name).stem}.{part}.jpg"
        dest = dest / Path(name).name
    if dest.exists() and not force:
        raise CastroomError(f"{dest} exists (--force replaces it)")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    digester = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for chunk in blobs.read_range(digest):
                digester.update(chunk)
                out.write(chunk)
        if digester.hexdigest() != digest:
            raise CastroomError(f"the stored copy of {ref.name} is damaged (its hash differs)")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


# -- space: usage and garbage ---------------------------------------------------------------


def _live_media(
    workspace: Workspace,
) -> Iterator[tuple[str, CastDocument, type[model.Entity], str, dict[str, Any]]]:
    """(production title, its document, kind, entity id, stored fields) of every live
    talent and
    candidate with a media map, in every production of the workspace (a deleted
    production's too: it can be restored). Stored fields, not Structs, so an entity
    stored invalid keeps its media."""
    for production_id, title in workspace.productions():
        doc = workspace.production(production_id).doc
        for cls, entity_id, stored in _live_in(doc):
            yield title, doc, cls, entity_id, stored


def _live_in(doc: CastDocument) -> Iterator[tuple[type[model.Entity], str, dict[str, Any]]]:
    """(kind, id, stored fields) of one production's live entities with a media map."""
    for cls in OWNERS.values():
        for entity_id in doc.ids(cls):
            stored = doc.raw(cls, entity_id) or {}
            if not stored.get("deleted") and isinstance(stored.get("media"), dict):
                yield cls, entity_id, stored


class BlobNeed(msgspec.Struct, kw_only=True, frozen=True):
    """A blob one production refers to: what it is (a media kind, or ``derived`` for a
    thumbnail or poster) and, for an original, its size as recorded (what a receiver
    checks a transfer against)."""

    hash: str
    what: str
    size: int | None = None


def production_refs(doc: CastDocument) -> dict[str, BlobNeed]:
    """Every blob a live entity of one production refers to (sync/media_client.py)."""
    found: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for _cls, _id, stored in _live_in(doc):
        _note_refs(stored["media"], found)
        for key, record in stored["media"].items():
            size = record.get("bytes") if isinstance(record, dict) else None
            if isinstance(size, int) and not isinstance(size, bool):
                sizes[key] = size
    return {h: BlobNeed(hash=h, what=w, size=sizes.get(h)) for h, w in found.items()}


def referenced(workspace: Workspace) -> dict[str, str]:
    """hash -> what it is ("headshot", ..., or "derived") for every blob a live entity
    in any production of the workspace refers to (a deleted production's too: it can
    be restored). The same walk as :meth:`RefCache.needs`, over every production, as
    the documents are open now (no refresh from the store)."""
    every = [pid for pid, _title in workspace.productions()]
    needs = RefCache().needs(workspace, every, refresh=False)
    return {digest: need.what for digest, need in needs.items()}


def _note_refs(media: object, found: dict[str, str]) -> None:
    if not isinstance(media, dict):
        return
    for key, value in media.items():
        record = value if isinstance(value, dict) else {}
        kind = record.get("kind")
        if isinstance(key, str) and re.fullmatch(model.SHA256_PATTERN, key):
            found[key] = kind if isinstance(kind, str) else "other"
        for part in ("thumbnail", "poster"):
            derived = record.get(part)
            if isinstance(derived, str) and re.fullmatch(model.SHA256_PATTERN, derived):
                found.setdefault(derived, "derived")


def size_limit(config: dict[str, Any], what: str) -> int:
    """The largest a received blob may be: its kind's limit (a derived one: ``other``'s)."""
    limits = media_config(config).max_bytes
    return limits.get(what, limits["other"])


class QuotaExceeded(CastroomError):
    """An upload that would take a token past its media quota (nothing is stored)."""


_QUOTA_KEY = "media-uploaded:"


def uploaded(workspace: Workspace, token_id: str) -> int:
    """Bytes the server token ``token_id`` has stored by uploading (new blobs only)."""
    value = workspace.store.get_kv(_QUOTA_KEY + token_id)
    return int(value) if value and value.isdigit() else 0


def check_quota(quota: int | None, used: int, size: int) -> None:
    """Refuse (QuotaExceeded) an upload of ``size`` bytes by a token that has ``used``
    bytes of its quota (``[media] token_quota``; None: no quota) uploaded or arriving."""
    if quota is not None and used + size > quota:
        raise QuotaExceeded(
            f"this token's media quota of {size_words(quota)} would be exceeded"
            f" ({size_words(used)} uploaded, this file is {size_words(size)}): not stored;"
            " the server's media.token_quota sets it"
        )


def add_uploaded(workspace: Workspace, token_id: str, size: int) -> None:
    """Count a blob the token stored against its quota."""
    workspace.store.set_kv(_QUOTA_KEY + token_id, str(uploaded(workspace, token_id) + size))


class RefCache:
    """Each production's referenced blobs, kept until its document changes (a thousand
    headshots fetched one by one must not walk every entity a thousand times)."""

    def __init__(self) -> None:
        self._by_production: dict[str, tuple[bytes, dict[str, BlobNeed]]] = {}

    def needs(
        self, workspace: Workspace, pids: list[str], *, refresh: bool = True
    ) -> dict[str, BlobNeed]:
        """What the productions refer to (an original's kind wins over ``derived``);
        with ``refresh``, each production first reads what other processes committed
        (a CLI attach beside a server)."""
        found: dict[str, BlobNeed] = {}
        for pid in pids:
            production = workspace.production(pid)
            if refresh:
                production.refresh()
            state = production.doc.state_vector()
            cached = self._by_production.get(pid)
            if cached is None or cached[0] != state:
                cached = (state, production_refs(production.doc))
                self._by_production[pid] = cached
            for need in cached[1].values():
                if need.hash not in found or found[need.hash].what == "derived":
                    found[need.hash] = need
        return found


class KindUsage(msgspec.Struct, kw_only=True):
    files: int = 0
    bytes: int = 0


class EntityUsage(msgspec.Struct, kw_only=True):
    """The originals attached to one entity (as their records give their sizes)."""

    production: str
    entity_kind: str
    entity_id: str
    label: str
    files: int
    bytes: int


class MediaUsage(msgspec.Struct, kw_only=True):
    """What takes space in a workspace's blob store."""

    #: Originals by kind (headshot, ...), derivatives ("derived") and blobs nothing
    #: refers to ("unreferenced", collected by `castroom compact` after the grace days).
    kinds: dict[str, KindUsage]
    #: Referenced blobs this workspace does not have (a peer's, not fetched yet).
    missing: int
    total_bytes: int
    grace_days: float
    #: The entities whose attachments take the most (at most ``TOP_ENTITIES``).
    largest: list[EntityUsage] = []


TOP_ENTITIES = 10


def usage(workspace: Workspace) -> MediaUsage:
    refs = referenced(workspace)
    kinds: dict[str, KindUsage] = {}
    total = 0
    present = set()
    for digest in workspace.blobs.hashes():
        size = workspace.blobs.stat(digest).st_size
        what = kinds.setdefault(refs.get(digest, "unreferenced"), KindUsage())
        what.files += 1
        what.bytes += size
        total += size
        present.add(digest)
    return MediaUsage(
        kinds=kinds,
        missing=len(set(refs) - present),
        total_bytes=total,
        grace_days=media_config(workspace.config).grace_days,
        largest=_largest(workspace),
    )


def _largest(workspace: Workspace) -> list[EntityUsage]:
    found = []
    for title, doc, cls, entity_id, stored in _live_media(workspace):
        records = [r for r in stored["media"].values() if isinstance(r, dict)]
        sizes = [r.get("bytes") for r in records]
        size = sum(b for b in sizes if isinstance(b, int | float))
        if records:
            found.append(
                EntityUsage(
                    production=title,
                    entity_kind=cls.entity_kind,
                    entity_id=entity_id,
                    label=label(doc, cls, stored),
                    files=len(records),
                    bytes=int(size),
                )
            )
    return sorted(found, key=lambda e: (-e.bytes, e.label))[:TOP_ENTITIES]


class Collected(msgspec.Struct, kw_only=True):
    """What :func:`collect` removed, and what it keeps for now."""

    removed: int = 0
    removed_bytes: int = 0
    #: Unreferenced blobs still within their grace period.
    kept: int = 0
    kept_bytes: int = 0


def collect(workspace: Workspace, *, now: float | None = None) -> Collected:
    """Remove blobs no live entity has referred to for ``grace_days`` (counted from the
    first collection that found them unreferenced, and never sooner than that long
    after they were written: a blob that arrives before the document naming it is
    safe). A blob referred to again is forgotten as garbage."""
    now = time.time() if now is None else now
    grace = media_config(workspace.config).grace_days * 86400
    refs = referenced(workspace)
    since = _unreferenced_since(workspace)
    result = Collected()
    still: dict[str, float] = {}
    for digest in list(workspace.blobs.hashes()):
        if digest in refs:
            continue
        first = since.get(digest, now)
        stat = workspace.blobs.stat(digest)
        if now - first >= grace and now - stat.st_mtime >= grace:
            if workspace.blobs.delete(digest):
                result.removed += 1
                result.removed_bytes += stat.st_size
            continue
        still[digest] = first
        result.kept += 1
        result.kept_bytes += stat.st_size
    workspace.store.set_kv(UNREFERENCED_KEY, json.dumps(still))
    workspace.blobs.sweep_tmp()
    return result


def _unreferenced_since(workspace: Workspace) -> dict[str, float]:
    with contextlib.suppress(ValueError, TypeError):
        data = json.loads(workspace.store.get_kv(UNREFERENCED_KEY) or "{}")
        if isinstance(data, dict):
            return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}
    return {}

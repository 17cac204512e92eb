"""A production read from its stored read copy, without loading the CRDT.

Loading a 50,000-talent production into Yrs costs about 2 s of CPU before anything is
read, and turning its collections into JSON another 1.3 s (issue 14: ``check``,
``budget`` and ``list --json`` <= 1.5 s). So when a read-only command has opened a
production, the workspace keeps what its reads are made of, the JSON Yrs gives for the
production, ``meta`` and each collection (and each collection's keys, in Yrs's order),
tagged with the log position it holds (:meth:`castroom.core.storage.Store.position`).
The next command to read that production at that position reads :class:`ReadCopy`:
the same typed reads as the CRDT's (:class:`~castroom.core.reads.DocumentReads`:
validation, invalid entities, labels), over that same JSON, without importing pycrdt.
Any write to the log moves the position, and the copy is not used again until a
read-only command has opened the production anew, or a process holding the CRDT knows
what every row logged after the copy's position changed (its own: a commit, or a peer's
update it merged; another process's commit, or a peer's update another process merged
into a document that held the log right up to it: the log keeps what each changed, and
marks such a merge's row exact, see Store.exact_rows): that
process patches the copy (:func:`patch`, from
:meth:`castroom.core.workspace.StoredProduction.patch_read_copy`), a command on close,
a running server once the production has been quiet (castroom.sync.read_copies), so
the first ``check`` after a ``castroom set`` or a peer's edit reads a copy too. The
copy is stored in parts (:class:`Part`), so that a patch rewrites only the buckets of
the entities it changed.

A copy also records which collections the document that made it had read whole and
found valid (with their deleted ids), under a digest of the rules that judged them
(model.py and msgspec's version): a read of the copy under the same rules need not
decode such a collection to know it holds no invalid entity, nor which of its ids are
live (``castroom check`` on 50,000 talents decodes only the few thousand booked).

One difference, by construction: Yrs's JSON does not tell a Y.Map from a plain map
value, so a collection entry that a peer wrote as a plain map (not a map of fields)
reads here as an entity's fields; loaded from Yrs, :meth:`raw` gives None for it.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from . import collector, model
from .errors import CastroomError
from .model import COLLECTIONS, Entity, Production
from .reads import (
    SCHEMA_VERSION,
    Changes,
    DocumentReads,
    collection_decoder,
    collection_only,
    deduped,
    unstripped,
)

if TYPE_CHECKING:
    # A read copy stands where a production's document is read (StoredProduction.doc):
    # to the type checker it is one; at run time only the reads, every write refused.
    from .document import CastDocument
    from .storage import Store

    _Reads = CastDocument
else:
    _Reads = DocumentReads

E = TypeVar("E", bound=Entity)

#: Bumped whenever what a read copy holds changes: a copy of another format is not used
#: (3: stored uncompressed, see encode; 4: each collection in parts, see Part; 5: a small
#: collection stays one part, deflated, see SPLIT_PAST).
FORMAT = 5


class Layout(msgspec.Struct, kw_only=True, frozen=True):
    """A read copy's head: the production's and ``meta``'s fields as JSON, the names of
    the collections it holds, and the collections found all valid (each with its
    deleted ids) under ``rules``. Each collection's entities are in its parts."""

    production: str
    meta: str
    collections: list[str]
    rules: str = ""
    valid: dict[str, list[str]] = {}


class Part(msgspec.Struct, array_like=True, frozen=True):
    """Some entities of one collection: their ids, in Yrs's order, and their JSON (one
    object, id -> fields). A collection is stored whole, in the part named after it, as
    a new copy has it (splitting it would cost the first read after a write), or, once a
    patch has touched it, in BUCKETS parts named ``collection/N``, an entity in the one
    its id hashes to (see :func:`bucket`), so that a patch reads and writes only the
    buckets of the entities it changes (a few kilobytes, where the whole of 50,000
    talents is 8 MB: a server patches after each quiet second). A small collection
    (under SPLIT_PAST bytes) is never split: it is stored whole and deflated, and a
    patch rewrites all of it (see :func:`pack`)."""

    keys: list[str]
    json: str


#: Parts a collection is split into once patched.
BUCKETS = 64
#: A collection whose part encodes to fewer bytes than this is kept whole and deflated,
#: never split: 64 buckets of a few entities each cost a row and most of a page apiece
#: (bench_store: the copy of a 60 KB production took 63 KB of the file split, 17 KB
#: whole and deflated), and patching such a part whole costs less than 3 ms (inflate,
#: re-encode, deflate 128 KB of JSON), reading it under 0.4 ms. A larger one is stored
#: as it is (inflating the 8 MB of 50,000 talents would cost 65 ms of every read).
SPLIT_PAST = 128 * 1024
#: A patch serialises each changed entity again (70-130 us each at 50,000 talents),
#: a whole copy each collection in one Yrs call (1.2 s for all of those 50,000): past
#: this share of the entities changed (a production just built, a large first push),
#: the whole copy is the cheaper (bench: 20,000 of 50,000 talents patched in 1.39 s).
WHOLE_PAST = 0.25
_EMPTY = Part(keys=[], json="{}")


def bucket(collection: str, entity_id: str) -> str:
    """The part an entity of a split collection is stored in."""
    return f"{collection}/{zlib.crc32(entity_id.encode()) % BUCKETS}"


@functools.cache
def rules() -> str:
    """A digest of the rules that decide whether an entity is valid: the model's source
    and msgspec's version (a verdict under other rules is not used)."""
    digest = hashlib.sha256(msgspec.__version__.encode())
    digest.update(Path(model.__file__).read_bytes())
    return digest.hexdigest()[:32]


class ReadOnlyCopy(CastroomError):
    """Something tried to write to (or sync from) a read copy."""


#: CastDocument's methods that write or need the CRDT: a read copy refuses each.
WRITES = (
    "add",
    "apply_update",
    "delete",
    "edit_text",
    "encode_update",
    "entity_json",
    "fields_json",
    "holds",
    "init_production",
    "insert_item",
    "layout_json",
    "migrate",
    "move_item",
    "notify",
    "put",
    "put_many",
    "rebuild",
    "remove_item",
    "restore",
    "state_vector",
    "take_changes",
    "transaction",
    "update",
    "update_production",
    "waits_for_more",
)


def version(position: int) -> str:
    """The version a read copy at log ``position`` is stored under."""
    return f"{FORMAT}:{position}"


def position_of(stored: str) -> int | None:
    """The log position a read copy stored under ``stored`` holds (None: a copy of
    another format, or no version of ours)."""
    fmt, _, position = stored.partition(":")
    if fmt != str(FORMAT) or not position.isdigit():
        return None
    return int(position)


class Parts(msgspec.Struct, frozen=True):
    """What a patch stores: the new head, the parts written, and the parts deleted."""

    head: bytes
    put: dict[str, bytes]
    drop: list[str]


def encode(doc: CastDocument) -> tuple[bytes, dict[str, bytes]]:
    """A read copy of ``doc`` (its head, and each collection whole), uncompressed: zlib
    shrank it fourfold, but inflating it was the largest single cost of reading one
    (65 ms of a 50,000-talent ``check``, and deflating 130 ms of the first read after a
    write), against 15-20 ms to read the four times larger blob from SQLite (issue 14)."""
    production, meta, collections, keys = doc.layout_json()
    layout = Layout(
        production=production,
        meta=meta,
        collections=list(collections),
        rules=rules(),
        valid=doc.all_valid(),
    )
    parts = {name: pack(Part(keys=keys[name], json=text)) for name, text in collections.items()}
    return _PART.encode(layout), parts


def pack(part: Part) -> bytes:
    """A collection's whole part as stored: deflated when it encodes to fewer than
    SPLIT_PAST bytes (and deflating makes it smaller), else as it is; so a whole part
    is stored in SPLIT_PAST bytes or more exactly when it is one to split
    (:func:`to_split`). A bucket is never deflated (see SPLIT_PAST)."""
    return _packed(_PART.encode(part))


def _packed(data: bytes) -> bytes:
    """An encoded whole part as :func:`pack` stores it."""
    if len(data) >= SPLIT_PAST:
        return data
    packed = zlib.compress(data)
    return packed if len(packed) < len(data) else data


def unpack(data: bytes) -> Part:
    """A stored part: MessagePack (an array, first byte 0x92) or, deflated, a zlib
    stream (first byte 0x78); MsgspecError when it is neither."""
    if data[:1] == _ZLIB:
        try:
            data = zlib.decompress(data)
        except zlib.error as exc:
            raise msgspec.DecodeError(f"a read copy part does not inflate: {exc}") from None
    return _PARTS.decode(data)


def to_split(sizes: dict[str, int]) -> list[str]:
    """The collections a stored copy (the bytes each of its parts is stored in) holds
    whole and large enough to split before a patch (see :func:`pack`)."""
    return sorted(
        name for name, size in sizes.items() if name in COLLECTIONS and size >= SPLIT_PAST
    )


def is_current(store: Store, production: str) -> bool:
    """Whether the production's stored read copy holds its current log position (the
    next read-only command reads it)."""
    with store.read():
        stored = store.read_copy(production)
        return stored is not None and stored[0] == version(store.position(production))


def cheaper_whole(doc: CastDocument, changes: Changes) -> bool:
    """Whether a new copy of ``doc`` costs less than patching one with ``changes``."""
    changed = sum(1 for collection, _ in changes if collection in COLLECTIONS)
    if changed < 1000:
        return False
    held = sum(doc.held(cls) for cls in COLLECTIONS.values())
    return changed > WHOLE_PAST * held


def wanted(head: bytes, changes: Changes) -> list[str] | None:
    """The parts a patch for ``changes`` reads: each changed collection whole (if it is
    still stored so) and the buckets of its changed entities. None: no usable head."""
    try:
        layout = _HEAD.decode(head)
    except msgspec.MsgspecError:
        return None
    names: set[str] = set()
    for collection, entity_id in changes:
        if collection in COLLECTIONS and collection in layout.collections:
            names.update((collection, bucket(collection, entity_id)))
    return sorted(names)


def patch(
    head: bytes, parts: dict[str, bytes], doc: CastDocument, changes: Changes
) -> Parts | None:
    """The read copy ``head`` (of an earlier position of ``doc``; ``parts``: those
    :func:`wanted` names, as stored) brought up to ``doc``, where ``changes`` are every
    change since: only the entities changed are serialised again, where a new copy
    serialises the whole document (at 50,000 talents about 1 s of Yrs's JSON, on top of
    loading the CRDT). A collection still stored whole is split into buckets first (once).
    Each changed kind keeps its all-valid verdict only if every changed entity is valid.
    A new entity's key goes last in its part: Yrs's key order is arbitrary (it varies
    from run to run), and no read relies on it. None when ``head`` is no usable copy."""
    try:
        layout = _HEAD.decode(head)
        decoded = {name: unpack(data) for name, data in parts.items()}
    except msgspec.MsgspecError:
        return None
    if set(layout.collections) != set(COLLECTIONS):
        return None
    touched: dict[str, set[str]] = {}
    for collection, entity_id in changes:
        if collection in COLLECTIONS:
            touched.setdefault(collection, set()).add(entity_id)
    valid = dict(layout.valid) if layout.rules == rules() else {}
    put: dict[str, bytes] = {}
    drop: list[str] = []
    for name, ids in touched.items():
        done = _patch_collection(doc, name, ids, parts, decoded)
        if done is None:
            return None
        put.update(done[0])
        drop += done[1]
        if name in valid:
            deleted = _still_valid(doc, COLLECTIONS[name], set(valid.pop(name)), ids)
            if deleted is not None:
                valid[name] = sorted(deleted)
    production, meta = doc.fields_json()
    new_head = Layout(
        production=production,
        meta=meta,
        collections=layout.collections,
        rules=rules(),
        valid=valid,
    )
    return Parts(
        head=_PART.encode(new_head),
        put=put,
        drop=drop,
    )


def _patch_collection(
    doc: CastDocument, name: str, ids: set[str], stored: dict[str, bytes], decoded: dict[str, Part]
) -> tuple[dict[str, bytes], list[str]] | None:
    """The parts of collection ``name`` to store (as stored) once the entities ``ids``
    changed, and the parts to drop (None: an entity has no JSON). A small collection
    stored whole is patched whole (split only once it has grown past SPLIT_PAST); a
    large one is split first (once), then only the buckets of ``ids`` are patched. A
    bucket left empty is dropped."""
    cls = COLLECTIONS[name]
    whole = decoded.get(name)
    if whole is not None and len(stored[name]) < SPLIT_PAST:
        patched = _patched(doc, cls, whole, ids)
        if patched is None:
            return None
        data = _PART.encode(patched)
        if len(data) < SPLIT_PAST:
            return {name: _packed(data)}, []
        buckets, drop = _split(name, patched), [name]
    else:
        buckets, drop = (_split(name, whole), [name]) if whole is not None else ({}, [])
        for part_name in {bucket(name, i) for i in ids}:
            mine = {i for i in ids if bucket(name, i) == part_name}
            part = _patched(doc, cls, buckets.get(part_name, decoded.get(part_name, _EMPTY)), mine)
            if part is None:
                return None
            buckets[part_name] = part
    put = {part_name: _PART.encode(part) for part_name, part in buckets.items() if part.keys}
    return put, drop + [part_name for part_name, part in buckets.items() if not part.keys]


def split(parts: dict[str, bytes]) -> tuple[dict[str, bytes], list[str]] | None:
    """Each collection in ``parts`` (each stored whole and chosen by :func:`to_split`)
    as its buckets: the parts to store and the whole ones to drop, for the same head
    (the same copy, stored as a patch reads it). None when a part does not decode."""
    try:
        decoded = {name: unpack(data) for name, data in parts.items()}
    except msgspec.MsgspecError:
        return None
    put = {
        bucket_name: _PART.encode(part)
        for name, part in decoded.items()
        for bucket_name, part in _split(name, part).items()
    }
    return put, sorted(decoded)


def split_stored(store: Store, production: str) -> bool:
    """Split every collection the production's stored read copy holds whole and large
    (:func:`to_split`), in place
    (its version and head as they are, only if it is still that copy when the split is
    written): the first patch of a new copy, at 50,000 talents 0.3 s of CPU and 19 MB
    written, which a server has a worker process do, off its event loop
    (castroom.sync.read_copies). Returns whether it split something."""
    with store.read():  # the head and its parts of one copy
        stored = store.read_copy(production)
        names = to_split(store.read_copy_part_sizes(production)) if stored is not None else []
        parts = store.read_copy_parts(production, names) if names else {}
    if stored is None or not parts:
        return False
    done = split(parts)
    if done is None:
        return False
    put, drop = done
    return store.keep_read_copy(
        production, stored[0], stored[1], put, drop=drop, was=stored[0]
    )  # fmt: skip


def _split(collection: str, whole: Part) -> dict[str, Part]:
    """A collection stored whole, as its buckets (each entity's JSON found once)."""
    raws = _RAWS.decode(whole.json)
    grouped: dict[str, dict[str, msgspec.Raw]] = {}
    for key in whole.keys:
        if key in raws:
            grouped.setdefault(bucket(collection, key), {})[key] = raws[key]
    return {
        name: Part(keys=list(entries), json=msgspec.json.encode(entries).decode())
        for name, entries in grouped.items()
    }


def _patched(doc: CastDocument, cls: type[Entity], part: Part, ids: set[str]) -> Part | None:
    """A part with the entities ``ids`` as ``doc`` holds them."""
    raws = _RAWS.decode(part.json)
    known = set(raws)
    for entity_id in ids:
        if not doc.holds(cls, entity_id):
            raws.pop(entity_id, None)
            continue
        fields = doc.entity_json(cls, entity_id)
        if fields is None:
            return None
        raws[entity_id] = msgspec.Raw(fields)
    ordered = [key for key in part.keys if key in raws] + [k for k in raws if k not in known]
    return Part(keys=ordered, json=msgspec.json.encode(raws).decode())


def _still_valid(
    doc: CastDocument, cls: type[Entity], deleted: set[str], ids: set[str]
) -> set[str] | None:
    """A kind's deleted ids once ``ids`` changed, if every one of them is valid (or
    gone); None when one is not (the kind is then validated when read)."""
    for entity_id in ids:
        deleted.discard(entity_id)
        if not doc.holds(cls, entity_id):
            continue
        entity = doc.find(cls, entity_id, include_deleted=True)
        if entity is None:
            return None
        if entity.deleted:
            deleted.add(entity_id)
    return deleted


def decode(head: bytes, parts: dict[str, bytes]) -> ReadCopy | None:
    """The document a stored read copy holds; None when it cannot be used (unreadable,
    or of another schema version: opening the CRDT migrates or warns)."""
    try:
        layout = _HEAD.decode(head)
        copy = ReadCopy(layout, parts)
        usable = copy.schema_version == SCHEMA_VERSION and set(layout.collections) == set(
            COLLECTIONS
        )
    except (msgspec.MsgspecError, ValueError):
        return None
    return copy if usable else None


_HEAD = msgspec.msgpack.Decoder(Layout)
_PART = msgspec.msgpack.Encoder()
_PARTS = msgspec.msgpack.Decoder(Part)
#: The first byte of a zlib stream (deflate, 32 KB window) and never of a stored Part
#: (a MessagePack array of two: 0x92).
_ZLIB = b"\x78"

#: A collection's JSON as each entity's own JSON, undecoded.
_RAWS = msgspec.json.Decoder(dict[str, msgspec.Raw])


@functools.cache
def entity_decoder(cls: type[E]) -> msgspec.json.Decoder[E]:
    """A JSON decoder of one entity into a checked Struct (see collection_decoder)."""
    return msgspec.json.Decoder(cls, strict=False)


def _fresh(value: Any) -> Any:
    """A copy of plain data the caller may change (reads hand out their own dicts)."""
    return msgspec.json.decode(msgspec.json.encode(value))


class ReadCopy(_Reads):
    """A production's typed reads from a :class:`Layout`, not from Yrs. Read-only: a
    write, a transaction or anything that needs the CRDT is a ReadOnlyCopy error."""

    def __init__(self, layout: Layout, parts: dict[str, bytes]) -> None:
        DocumentReads.__init__(self)
        # What StoredProduction hooks onto a document: never called on a copy.
        self.on_commit = self.on_abort = None
        self.on_change = []
        self._layout = layout
        #: Each collection's stored parts, decoded when the collection is first read.
        self._parts: dict[str, list[bytes]] = {name: [] for name in layout.collections}
        self._split: set[str] = set()
        for name, data in parts.items():
            collection, split, _ = name.partition("/")
            if collection not in self._parts:
                raise ValueError(f"a part of no collection: {name}")
            self._parts[collection].append(data)
            if split:
                self._split.add(collection)
            elif len(self._parts[collection]) > 1:
                raise ValueError(f"collection {collection} stored whole and split")
        self._assembled: dict[str, tuple[list[str], str]] = {}
        production = msgspec.json.decode(layout.production)
        meta = msgspec.json.decode(layout.meta)
        self._production_plain: dict[str, Any] = production if isinstance(production, dict) else {}
        self._meta_plain: dict[str, Any] = meta if isinstance(meta, dict) else {}
        self._raws: dict[str, dict[str, msgspec.Raw]] = {}
        self._key_sets: dict[str, set[str]] = {}
        #: What all() and find() read (see _valid): nothing changes a copy, and checks
        #: ask for each kind often.
        self._by_id: dict[type[Entity], dict[str, Any]] = {}
        self._every: dict[tuple[type[Entity], bool], list[Any]] = {}

    # -- reads that are cheaper on a copy ----------------------------------------------

    def _valid(self, cls: type[E]) -> dict[str, E]:
        """Every valid entity of a kind (deleted ones too), by id in id order: nothing
        changes a copy, so each collection is decoded once, straight into Structs in one
        msgspec pass when all of it is valid (else entity by entity, as CastDocument)."""
        found = self._by_id.get(cls)
        if found is None:
            typed = self._decoded(cls)
            if typed is None:
                found = {e.id: e for e in super().all(cls, include_deleted=True)}
            elif cls.crdt_arrays:
                found = {key: deduped(cls, typed[key]) for key in sorted(typed)}
            else:
                found = {key: typed[key] for key in sorted(typed)}
            self._by_id[cls] = found
        return found  # type: ignore[return-value]

    def _decoded(self, cls: type[E]) -> dict[str, E] | None:
        """The whole collection as Structs, or None if any entity in it is invalid (or
        its key is not its id: the key is the identity)."""
        try:
            with collector.paused():
                typed: dict[str, E] = collection_decoder(cls).decode(self._collection_json(cls))
        except msgspec.MsgspecError:
            return None
        if [e.id for e in typed.values()] != list(typed) or unstripped(cls, typed.values()):
            return None
        return typed

    def all(self, cls: type[E], *, include_deleted: bool = False) -> list[E]:
        key = (cls, include_deleted)
        found = self._every.get(key)
        if found is None:
            valid = self._valid(cls).values()
            found = self._every[key] = (
                list(valid) if include_deleted else [e for e in valid if not e.deleted]
            )
        return list(found)

    def by_id(self, cls: type[E], *, include_deleted: bool = False) -> dict[str, E]:
        valid = self._valid(cls)
        if include_deleted or len(self.all(cls)) == len(valid):  # nothing deleted
            return dict(valid)
        return {e.id: e for e in self.all(cls)}

    def _known_valid(self, cls: type[Entity]) -> list[str] | None:
        """The deleted ids of a kind the copy says is all valid under these rules."""
        if self._layout.rules != rules():
            return None
        return self._layout.valid.get(cls.collection)

    def _valid_ids(self, cls: type[Entity]) -> Collection[str]:
        if cls not in self._by_id and self._known_valid(cls) is not None:
            return self._keys(cls)
        return self._valid(cls).keys()

    def live_ids(self, cls: type[Entity]) -> Collection[str]:
        deleted = self._known_valid(cls) if cls not in self._by_id else None
        if deleted is not None:  # no need to decode them to know
            return self._keys(cls).difference(deleted)
        return super().live_ids(cls)

    def find(self, cls: type[E], entity_id: str, *, include_deleted: bool = False) -> E | None:
        # A kind read whole is a dict lookup; else the entity alone is decoded (a budget
        # looks up the few thousand booked talents of 50,000).
        if cls is Production:
            return super().find(cls, entity_id, include_deleted=include_deleted)
        valid = self._by_id.get(cls)
        if valid is not None:
            entity = valid.get(entity_id)
        else:
            entity = self._cache.get((cls.collection, entity_id)) or self._decode_one(
                cls, entity_id
            )
            if entity is None:  # absent, or not decoded as it stands: as CastDocument reads
                return super().find(cls, entity_id, include_deleted=include_deleted)
        if entity is None or (entity.deleted and not include_deleted):
            return None
        return entity  # type: ignore[return-value]

    def _decode_one(self, cls: type[E], entity_id: str) -> E | None:
        """One entity straight from its JSON into a Struct (cached), or None when that
        does not give what :func:`castroom.core.model.validate` would: absent, invalid,
        its key not its id, or a name to strip."""
        raw = self._raw_json(cls).get(entity_id)
        if raw is None:
            return None
        try:
            entity = entity_decoder(cls).decode(raw)
        except msgspec.MsgspecError:
            return None
        if entity.id != entity_id or unstripped(cls, (entity,)):
            return None
        return self._remember(cls, entity)

    def _raw_json(self, cls: type[Entity]) -> dict[str, msgspec.Raw]:
        """Each entity's JSON, found once per kind (undecoded)."""
        raws = self._raws.get(cls.collection)
        if raws is None:
            raws = self._raws[cls.collection] = _RAWS.decode(self._collection_json(cls))
        return raws

    # -- what CastDocument reads, from the layout ---------------------------------------

    @property
    def production_id(self) -> str | None:
        value = self._production_plain.get("id")
        return str(value) if value is not None else None

    def _meta_get(self, key: str, default: Any = None) -> Any:
        return self._meta_plain.get(key, default)

    def _has_production(self) -> bool:
        return "id" in self._production_plain

    def _production_stored(self) -> bool:
        return bool(self._production_plain)

    def _production_data(self) -> dict[str, Any]:
        return _fresh(self._production_plain)

    def _collection(self, name: str) -> tuple[list[str], str]:
        """A collection's keys and JSON, put together from its parts once."""
        found = self._assembled.get(name)
        if found is None:
            parts = [unpack(data) for data in self._parts[name]]
            keys = [key for part in parts for key in part.keys]
            if name in self._split:  # one JSON object of every part's members
                inner = ",".join(part.json[1:-1] for part in parts if part.keys)
                text = "{" + inner + "}"
            else:
                text = parts[0].json if parts else "{}"
            found = self._assembled[name] = (keys, text)
        return found

    def _entity_ids(self, cls: type[Entity]) -> list[str]:
        collection_only(cls)  # as the CRDT binding does
        return list(self._collection(cls.collection)[0])

    def _contains(self, cls: type[Entity], entity_id: str) -> bool:
        collection_only(cls)
        return entity_id in self._keys(cls)

    def _keys(self, cls: type[Entity]) -> set[str]:
        keys = self._key_sets.get(cls.collection)
        if keys is None:
            keys = self._key_sets[cls.collection] = set(self._collection(cls.collection)[0])
        return keys

    def _collection_json(self, cls: type[Entity]) -> str:
        collection_only(cls)
        return self._collection(cls.collection)[1]

    def _stored(self, cls: type[Entity], entity_id: str) -> dict[str, Any] | None:
        # Each entity's JSON found once, decoded when asked for (labels ask for a few
        # thousand names): a fresh dict each time, as from Yrs.
        raw = self._raw_json(cls).get(entity_id)
        value = msgspec.json.decode(raw) if raw is not None else None
        return value if isinstance(value, dict) else None

    def to_data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"production": self._production_data()}
        for name in self._layout.collections:
            out[name] = msgspec.json.decode(self._collection(name)[1])
        return out

    # -- what needs the CRDT ----------------------------------------------------------------

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise ReadOnlyCopy("a production's read copy cannot be written or synced")

    def is_empty(self) -> bool:
        return False


# Every public method a CastDocument has beyond the reads (a test keeps the list whole).
for _name in WRITES:
    setattr(ReadCopy, _name, ReadCopy._refuse)

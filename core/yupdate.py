"""Yjs v1 bytes: the few things castroom reads from updates and state vectors itself.

Pure functions on bytes, every read bounds-checked: malformed input raises
:class:`BadUpdate` with one clear line, never an IndexError, and nothing is changed
anywhere. A check that needs Yrs (``check_update``) is in :mod:`castroom.core.crdt`, the
only module that imports pycrdt. The sync protocol (``castroom.sync.protocol``) re-raises
these as its ``ProtocolError``.

Formats (lib0 encoding, as Yjs and Yrs write them):

- varUint: 7 bits per byte, least significant first, high bit set on every byte but the
  last. Values wider than 53 bits (JavaScript's safe integers) are refused, as lib0 does.
- state vector: varUint count, then count pairs of varUint client id, varUint clock.
- update (v1): varUint number of clients, then per client varUint number of structs,
  varUint client id, varUint clock and the structs; then the delete set.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections.abc import Mapping

import msgspec

from .errors import BadUpdate, UpdateLimit

#: The empty Yjs update (no structs, no deletes): nothing to merge or relay.
EMPTY_UPDATE = b"\x00\x00"
#: The widest varUint accepted (bits): JavaScript numbers, as lib0.
MAX_VAR_UINT_BITS = 53


def one_line(exc: BaseException) -> str:
    """An exception as one line (Yrs panics carry multi-line messages)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a varUint at ``pos``; returns (value, next position). Raises BadUpdate when
    it runs past the end or is wider than 53 bits."""
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise BadUpdate("truncated (a varUint runs past the end)")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > MAX_VAR_UINT_BITS:
            raise BadUpdate("varUint too large")


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """A state vector as {client id: clock}; empty bytes mean the empty state. Raises
    BadUpdate if it is truncated or has trailing bytes."""
    out: dict[int, int] = {}
    if not state_vector:
        return out
    try:
        count, pos = read_var_uint(state_vector, 0)
        if count > len(state_vector):  # each pair takes at least two bytes
            raise BadUpdate(f"declares {count} clients in {len(state_vector)} bytes")
        numbers = _var_uints(state_vector, pos, 2 * count)
    except BadUpdate as exc:
        raise BadUpdate(f"malformed state vector ({exc})") from None
    pos = numbers.pop()
    if pos != len(state_vector):
        raise BadUpdate("malformed state vector (trailing bytes)")
    out.update(zip(numbers[::2], numbers[1::2], strict=True))
    return out


def _var_uints(data: bytes, pos: int, count: int) -> list[int]:
    """``count`` varUints from ``pos`` (read_var_uint, inlined: every merge decodes a
    state vector), then the position after them, as the last item."""
    values: list[int] = []
    end = len(data)
    for _ in range(count):
        value = shift = 0
        while True:
            if pos >= end:
                raise BadUpdate("truncated (a varUint runs past the end)")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > MAX_VAR_UINT_BITS:
                raise BadUpdate("varUint too large")
        values.append(value)
    values.append(pos)
    return values


def ahead(mine: bytes, theirs: bytes) -> bool:
    """Whether state vector ``mine`` holds any struct that ``theirs`` lacks."""
    other = decode_state_vector(theirs)
    return any(clock > other.get(client, 0) for client, clock in decode_state_vector(mine).items())


def update_is_empty(update: bytes) -> bool:
    """Whether an update carries no struct (it may still carry deletions)."""
    return read_var_uint(update, 0)[0] == 0


def guard_update(
    update: bytes, *, max_structs: int | None = None, held: Mapping[str, int] | None = None
) -> UpdateShape:
    """Walk ``update`` with our bounded parser before any Yrs call; raise BadUpdate
    naming the limit it breaks (see :func:`walk_update`)."""
    if not isinstance(update, bytes | bytearray) or len(update) < 2:
        raise BadUpdate("not a Yjs update (too short)")
    return walk_update(update, max_structs=max_structs, held=held)


# -- the bounded walk -------------------------------------------------------------------------
#
# Yrs trusts what it decodes: it recurses once per nested Any value (26,000 nested arrays
# in an 80 KB update overflow its stack: SIGSEGV), reserves memory for declared counts,
# reads strings as UTF-8 without checking, and wraps clocks at 2^32. So every update is
# first walked here, with no recursion and every count checked against the bytes left,
# and refused (BadUpdate naming the limit) unless it keeps within what castroom's schema
# needs (a live edit's update in C, core/_ywalk.c, the same walk; the rest in Python).
# The format is lib0 v1, as yjs src/utils/encoding.js (readClientsStructRefs),
# src/structs/Content*.js and lib0 decoding.js (readAny) read it, and as yrs update.rs /
# block.rs decode it where the two differ (noted below).

#: The deepest nesting accepted: of Y types in Y types (the schema needs 4: collection,
#: entity, field, and a field's own map), of Any arrays and maps in one value, and of
#: the JSON of a text embed or format.
MAX_NESTING = 32
#: The largest update accepted (bytes): the sync protocol's frame cap (a whole
#: production's first sync is one frame), and what a stored production folds into when
#: it opens. A 50,000-talent production (bench_large's) is 27 MB in its full state.
MAX_UPDATE_BYTES = 32 * 1024 * 1024
#: Structs (items, GC and skip ranges) in one update: four times a 50,000-talent
#: production (bench_large's: 998,000 structs in its full state; 5,000 talents: 100,000).
MAX_STRUCTS = 4_000_000
#: Structs in one incremental update from a peer (a live edit, an update frame, any step 2
#: after the first): a person's edit, even a 10,000-talent import (about 200,000 structs),
#: is well under it, so a million-entry update is refused from its header. A first
#: full-state exchange (the first step 2 of a connection, a pull, an HTTP push, a bundle,
#: a folder's files, a stored production) may hold MAX_STRUCTS. ``castroom serve`` takes
#: ``[server] max_incremental_structs``.
MAX_INCREMENTAL_STRUCTS = 500_000
#: Entries in one Any array or map, or values in one struct.
MAX_ENTRIES = 100_000
#: Any values in one update, nested ones included.
MAX_VALUES = 2_000_000
#: Clients (with structs or deletions) in one update.
MAX_CLIENTS = 100_000
#: Deleted ranges in one update.
MAX_DELETE_RANGES = 1_000_000
#: The longest key (map key, root type name, XML tag, subdocument guid), in bytes.
MAX_KEY_BYTES = 4096
#: The most a stored production may hold (snapshot plus log, bytes) before a peer's
#: update is refused (the benchmark's production is 2.5 MB).
MAX_PRODUCTION_BYTES = 256 * 1024 * 1024
#: Keys of one Y.Map (a collection's entities, an entity's fields, a field's own map).
#: Yrs keeps a map's entries in a hash table that rehashes every key, in one call holding
#: the GIL, when it grows past 7/8 full: at 114,688 keys and at each doubling after it
#: (57, 151 and 445 ms at 114,688, 229,376 and 458,752 keys on a loaded machine, where the
#: rest of a merge is fed to Yrs in slices of a few ms). At 100,000 the last rehash is at
#: 57,344 keys, and a collection still holds twice bench_large's 50,000 talents. Checked
#: where an update is merged (CastDocument.apply_update), with what the document holds;
#: what is stored already opens whatever its size.
MAX_MAP_KEYS = 100_000
#: Where a map's table grows (hashbrown: past 7/8 of 2^k buckets) from the size whose
#: rehash costs more than a slice (14,336 keys: about 2 ms) on: the struct that names the
#: key past one of these ends its slice, so no Yrs call rehashes two maps (ten maps of an
#: update crossing 57,344 keys in one slice held the GIL 120 ms alone, load 7).
REHASH_AT = frozenset(2**k * 7 // 8 + 1 for k in range(14, 18))
#: Clocks and lengths are u32 in Yrs (it wraps beyond): refused from here on.
CLOCK_LIMIT = 2**32
#: Structs per slice of a large update (see :func:`slices`): Yrs integrates one slice in
#: a few milliseconds, holding the GIL only that long.
SLICE_STRUCTS = 2048


def limits_signature() -> str:
    """The limits a walk checked against: a walk remembered under other limits (another
    castroom version) does not count."""
    limits = [MAX_NESTING, MAX_UPDATE_BYTES, MAX_STRUCTS, MAX_ENTRIES, MAX_VALUES]
    limits += [MAX_CLIENTS, MAX_DELETE_RANGES, MAX_KEY_BYTES, CLOCK_LIMIT]
    return ",".join(map(str, limits))


# Struct info byte (lib0 v1): the low 5 bits are the content (0 = GC, 10 = skip).
_HAS_ORIGIN, _HAS_RIGHT_ORIGIN, _HAS_PARENT_SUB = 0x80, 0x40, 0x20
_CONTENT = {
    1: "deleted",
    2: "json",
    3: "binary",
    4: "string",
    5: "embed",
    6: "format",
    7: "type",
    8: "any",
    9: "doc",
}
# Y type refs both Yjs and Yrs read alike. Not accepted: 5 (XML hook: Yjs reads a key
# after it, Yrs does not, so the bytes are ambiguous), 7 (Yrs weak links), 9 and 15
# (Yrs-only refs no Yjs peer writes).
_TYPE_REFS = {0: "array", 1: "map", 2: "text", 3: "xml element", 4: "xml fragment", 6: "xml text"}
# How an item names its parent, for the nesting check.
_ROOT, _PARENT, _ORIGIN, _NONE = 0, 1, 2, 3
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


class UpdateShape(msgspec.Struct, kw_only=True):
    """What an update holds, as the bounded walk counted it."""

    size: int
    #: Per client, the clock of its first struct, and the clock after its last one (for
    #: those starting at 0, what Yrs's get_state(update) says).
    starts: dict[int, int]
    clocks: dict[int, int]
    structs: int
    #: Items by content kind ("string", "any", "type", ...); GC and skip as "gc", "skip".
    contents: dict[str, int]
    #: Any values, nested ones included.
    values: int
    deleted_ranges: int
    #: The deepest nesting of Y types found (root collections' children are at 1).
    type_depth: int
    #: The deepest nesting of Any containers in one value.
    value_depth: int
    #: Runs of up to SLICE_STRUCTS structs of one client: (client, clock of the first,
    #: start and end offset of their bytes, how many), in the update's order; and the
    #: offset of the delete set. What :func:`slices` cuts the update into.
    runs: list[tuple[int, int, int, int, int]] = []
    delete_set_at: int = 0
    #: Per client, the other clients its structs refer to (parents and origins).
    needs: dict[int, set[int]] = {}
    #: Map keys this update names (items that give their parent and key: a key new to
    #: its map, or set concurrently), per root type; and the most given one nested map.
    root_keys: dict[str, int] = {}
    nested_keys: int = 0


class _Client:
    """One client's structs, for resolving the parents of nested types afterwards."""

    __slots__ = ("end", "how", "is_type", "levels", "ref_client", "ref_clock", "starts")

    def __init__(self, clock: int) -> None:
        self.starts = array("q")
        self.how = array("b")
        self.ref_client = array("q")
        self.ref_clock = array("q")
        self.is_type = array("b")
        self.levels = array("l")
        self.end = clock


class _Walk:
    """One pass over an update's bytes. Methods raise BadUpdate; positions never pass
    the end (every length is checked before it is skipped)."""

    def __init__(
        self,
        data: bytes,
        max_structs: int = MAX_STRUCTS,
        held: Mapping[str, int] | None = None,
    ) -> None:
        self.data = data
        self.max_structs = max_structs
        #: Keys the document's root maps hold already (by name), and those asked so far.
        self.held = {} if held is None else held
        self.root_held: dict[bytes, int] = {}
        self.cut = False  # end the slice after this struct (a map's table grows in it)
        #: Which cap max_structs is, in a refusal (a close reason holds 123 bytes).
        self.incremental = max_structs != MAX_STRUCTS
        self.struct_cap = (
            f"{'incremental-update ' if self.incremental else ''}limit {max_structs:,}"
        )
        self.pos = 0
        self.end = len(data)
        self.structs = 0
        self.values = 0
        self.value_depth = 0
        self.contents: dict[str, int] = {}
        self.clients: dict[int, _Client] = {}
        self.runs: list[tuple[int, int, int, int, int]] = []
        self.last_client = b""  # a whole varUint once one is read
        self.last_client_id = -1
        #: Keys named per map (see UpdateShape.root_keys): a root by its name, a nested
        #: map by its id.
        self.keys_of: dict[bytes | tuple[int, int], int] = {}

    def held_by(self, parent: bytes | tuple[int, int]) -> int:
        """Keys the document holds already in the map ``parent`` names: a root map's,
        asked of ``held`` once; a nested one (named by its struct's id) is not counted."""
        if not isinstance(parent, bytes):
            return 0
        found = self.root_held.get(parent)
        if found is None:
            found = self.root_held[parent] = self.held.get(parent.decode(), 0)
        return found

    def client_id(self) -> int:
        """A client id (a varUint of up to 8 bytes): almost always the one read last, so
        that one's bytes are tried first (one C call instead of a Python loop)."""
        if self.last_client and self.data.startswith(self.last_client, self.pos):
            self.pos += len(self.last_client)
            return self.last_client_id
        start = self.pos
        value = self.uint()
        self.last_client, self.last_client_id = self.data[start : self.pos], value
        return value

    def uint(self) -> int:
        """A varUint (read_var_uint, inlined: the walk spends its time here)."""
        data, pos, end = self.data, self.pos, self.end
        value = shift = 0
        while pos < end:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return value
            shift += 7
            if shift > MAX_VAR_UINT_BITS:
                raise BadUpdate("varUint too large")
        raise BadUpdate("truncated (a varUint runs past the end)")

    def count(self, what: str, limit: int, least: int = 1, *, cap: str = "") -> int:
        """A declared count: within ``limit`` (named ``cap``), and within the bytes left
        (each element takes at least ``least`` bytes), so nothing is reserved for a lie."""
        value = self.uint()
        if value > limit:
            raise UpdateLimit(f"{value:,} {what} ({cap or f'limit {limit:,}'})")
        if value * least > self.end - self.pos:
            raise BadUpdate(f"declares {value:,} {what} in {self.end - self.pos:,} bytes left")
        return value

    def clock(self, what: str) -> int:
        value = self.uint()
        if value >= CLOCK_LIMIT:
            raise BadUpdate(f"{what} {value:,} beyond 2^32")
        return value

    def byte(self) -> int:
        if self.pos >= self.end:
            raise BadUpdate("truncated (a struct runs past the end)")
        self.pos += 1
        return self.data[self.pos - 1]

    def skip(self, size: int) -> None:
        if size > self.end - self.pos:
            raise BadUpdate(f"truncated ({size:,} bytes declared, {self.end - self.pos:,} left)")
        self.pos += size

    def raw(self) -> bytes:
        size = self.uint()
        start = self.pos
        self.skip(size)
        return self.data[start : self.pos]

    def text(self, limit: int | None = None) -> bytes:
        raw = self.raw()
        if limit is not None and len(raw) > limit:
            raise UpdateLimit(f"a key of {len(raw):,} bytes (limit {limit:,})")
        if raw.isascii():  # most are: no decoding needed to know it is UTF-8
            return raw
        try:
            raw.decode("utf-8")  # Yrs reads strings unchecked: refuse bad UTF-8
        except UnicodeDecodeError:
            raise BadUpdate("a string that is not UTF-8") from None
        return raw

    def var_int(self) -> None:
        """lib0 varInt: sign and 6 bits, then 7 bits a byte; at most 53 bits."""
        byte = self.byte()
        shift = 6
        while byte & 0x80:
            byte = self.byte()
            shift += 7
            if shift > MAX_VAR_UINT_BITS + 7:
                raise BadUpdate("varInt too large")

    # -- values ------------------------------------------------------------------------

    def any_value(self) -> None:
        """One Any value, nested ones walked with an explicit stack."""
        remaining = [1]  # per open container: entries left (the value itself at the base)
        is_map = [False]
        while remaining:
            if not remaining[-1]:
                remaining.pop()
                is_map.pop()
                continue
            remaining[-1] -= 1
            if is_map[-1]:
                self.text(MAX_KEY_BYTES)
            self.values += 1
            if self.values > MAX_VALUES:
                raise UpdateLimit(f"more than {MAX_VALUES:,} values in one update")
            tag = self.byte()
            if tag in (127, 126, 121, 120):  # undefined, null, false, true
                continue
            if tag == 125:
                self.var_int()
            elif tag == 124:
                self.skip(4)
            elif tag in (123, 122):  # float64, bigint
                self.skip(8)
            elif tag in (119, 116):  # string, bytes
                if tag == 119:
                    self.text()
                else:
                    self.raw()
            elif tag in (118, 117):  # map, array
                entries = self.count("entries in one value", MAX_ENTRIES, 2 if tag == 118 else 1)
                remaining.append(entries)
                is_map.append(tag == 118)
                depth = len(remaining) - 1
                if depth > MAX_NESTING:
                    raise UpdateLimit(f"a value nested deeper than {MAX_NESTING} levels")
                self.value_depth = max(self.value_depth, depth)
            else:
                raise BadUpdate(f"unknown value type {tag}")

    def json_text(self) -> None:
        """A text embed's or format's JSON: UTF-8, nested no deeper than the limit (Yrs
        parses it with serde_json, whose own limit is 128)."""
        raw = self.raw()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadUpdate("a string that is not UTF-8") from None
        depth = deepest = 0
        for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", raw)):
            depth += 1 if bracket in b"[{" else -1
            deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            raise UpdateLimit(f"JSON nested deeper than {MAX_NESTING} levels")

    # -- structs -----------------------------------------------------------------------

    def content(self, ref: int) -> int:
        """An item's content; returns its length in clock ticks."""
        name = _CONTENT.get(ref)
        if name is None:
            raise BadUpdate(f"unknown content type {ref}")
        self.contents[name] = self.contents.get(name, 0) + 1
        if ref == 4:  # string: its length is counted in UTF-16 code units, as Yjs does
            raw = self.text()
            return len(raw) if raw.isascii() else len(raw.decode().encode("utf-16-le")) // 2
        if ref == 8:
            values = self.count("values in one struct", MAX_ENTRIES)
            for _ in range(values):
                self.any_value()
            return values
        if ref == 7:
            type_ref = self.byte()  # Yrs reads one byte; Yjs a varUint (the same < 128)
            if type_ref not in _TYPE_REFS:
                raise BadUpdate(f"unsupported Y type {type_ref}")
            if type_ref == 3:
                self.text(MAX_KEY_BYTES)  # the element's tag name
            return 1
        if ref == 1:
            return self.clock("a deleted length")
        if ref == 3:
            self.raw()
        elif ref == 5:
            self.json_text()
        elif ref == 6:
            self.text(MAX_KEY_BYTES)
            self.json_text()
        elif ref == 9:
            self.text(MAX_KEY_BYTES)  # guid
            self.any_value()  # options
        else:  # 2: legacy JSON content. Yrs reads one string more than Yjs writes
            raise BadUpdate("legacy JSON content (no Yjs since v13 writes it)")
        return 1

    def item(self, info: int, client: _Client) -> int:
        """One item after its info byte; records how it names its parent."""
        if info & 0x10:
            raise BadUpdate(f"unknown struct info {info:#x}")
        how, ref_client, ref_clock = _NONE, 0, 0
        if info & _HAS_ORIGIN:
            how, ref_client, ref_clock = _ORIGIN, self.client_id(), self.clock("an origin clock")
        if info & _HAS_RIGHT_ORIGIN:
            right = self.client_id(), self.clock("a right origin clock")
            if how == _NONE:
                how, (ref_client, ref_clock) = _ORIGIN, right
        if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
            parent_info = self.uint()
            parent: bytes | tuple[int, int]
            if parent_info == 1:
                how = _ROOT
                parent = self.text(MAX_KEY_BYTES)
            elif parent_info == 0:
                how, ref_client, ref_clock = _PARENT, self.client_id(), self.clock("a parent clock")
                parent = (ref_client, ref_clock)
            else:
                raise BadUpdate(f"unknown parent info {parent_info}")
            if info & _HAS_PARENT_SUB:
                self.text(MAX_KEY_BYTES)
                keys_of = self.keys_of  # a key for that map (an overwrite names no key)
                keys = keys_of[parent] = keys_of.get(parent, 0) + 1
                if keys + self.held_by(parent) in REHASH_AT:
                    self.cut = True
        ref = info & 0x1F
        length = self.content(ref)
        if length:  # Yrs drops empty items (pycrdt writes one for an empty XmlText)
            client.starts.append(client.end)
            client.how.append(how)
            client.ref_client.append(ref_client)
            client.ref_clock.append(ref_clock)
            client.is_type.append(1 if ref == 7 else 0)
            client.levels.append(0)
        return length

    def structs_of(self, client_id: int, client: _Client, count: int) -> None:
        run_at, run_clock, run_left = self.pos, client.end, SLICE_STRUCTS
        for _ in range(count):
            if not run_left:
                self.runs.append((client_id, run_clock, run_at, self.pos, SLICE_STRUCTS))
                run_at, run_clock, run_left = self.pos, client.end, SLICE_STRUCTS
            run_left -= 1
            self.structs += 1
            if self.structs > self.max_structs:
                kind = "incremental update" if self.incremental else "update"
                raise UpdateLimit(f"more than {self.max_structs:,} structs in one {kind}")
            info = self.byte()
            if info in (0, 10):  # GC, skip: a length only (Yrs matches the whole byte)
                kind = "gc" if info == 0 else "skip"
                self.contents[kind] = self.contents.get(kind, 0) + 1
                length = self.clock(f"a {kind} length")
                if length:
                    client.starts.append(client.end)
                    client.how.append(_NONE)
                    client.ref_client.append(0)
                    client.ref_clock.append(0)
                    client.is_type.append(0)
                    client.levels.append(0)
            else:
                length = self.item(info, client)
            client.end += length
            if client.end >= CLOCK_LIMIT:
                raise BadUpdate("a clock beyond 2^32")
            if self.cut:
                self.cut = False
                self.runs.append((client_id, run_clock, run_at, self.pos, SLICE_STRUCTS - run_left))
                run_at, run_clock, run_left = self.pos, client.end, SLICE_STRUCTS
        if run_left < SLICE_STRUCTS:
            self.runs.append((client_id, run_clock, run_at, self.pos, SLICE_STRUCTS - run_left))

    def needs(self) -> dict[int, set[int]]:
        """Per client, the other clients of this update its structs refer to."""
        out: dict[int, set[int]] = {}
        for client_id, client in self.clients.items():
            refs = {
                ref
                for ref, how in zip(client.ref_client, client.how, strict=True)
                if how != _NONE and how != _ROOT
            }
            refs.discard(client_id)
            out[client_id] = refs & self.clients.keys()
        return out

    def delete_set(self) -> int:
        ranges = 0
        for _ in range(self.count("clients in the delete set", MAX_CLIENTS, 2)):
            self.uint()
            count = self.count("deleted ranges", MAX_DELETE_RANGES, 2)
            ranges += count
            if ranges > MAX_DELETE_RANGES:
                raise UpdateLimit(f"more than {MAX_DELETE_RANGES:,} deleted ranges")
            for _ in range(count):
                start = self.clock("a deleted clock")
                if start + self.clock("a deleted length") >= CLOCK_LIMIT:
                    raise BadUpdate("a deleted range beyond 2^32")
        return ranges

    # -- nesting -------------------------------------------------------------------------

    def find(self, client_id: int, clock: int) -> tuple[_Client, int] | None:
        """The struct of this update holding (client, clock), if any."""
        client = self.clients.get(client_id)
        if client is None or not client.starts or not client.starts[0] <= clock < client.end:
            return None
        return client, bisect_right(client.starts, clock) - 1

    def level(self, client: _Client, index: int) -> int:
        """How deep a struct sits: 1 under a root type, one more per Y type above it.
        Follows parents and origins within this update, iteratively, remembering each
        struct's level; a parent outside the update counts as a root (the document's
        own depth is checked where it is merged)."""
        path: list[tuple[_Client, int, int]] = []  # (client, index, +levels to the next)
        seen: set[tuple[int, int]] = set()
        while True:
            level = client.levels[index]
            if level:
                break
            key = (id(client), index)
            if key in seen:
                raise BadUpdate("malformed update (structs that refer to each other in a cycle)")
            seen.add(key)
            how = client.how[index]
            found = self.find(client.ref_client[index], client.ref_clock[index])
            if how not in (_PARENT, _ORIGIN) or found is None:
                level = client.levels[index] = 1
                break
            if how == _PARENT and not found[0].is_type[found[1]]:
                level = client.levels[index] = 1  # not a type: Yrs refuses to integrate it
                break
            path.append((client, index, 1 if how == _PARENT else 0))
            client, index = found
        for step_client, step_index, step in reversed(path):
            level += step
            step_client.levels[step_index] = level
        return level

    def type_depth(self) -> int:
        deepest = 0
        for client in self.clients.values():
            for index, is_type in enumerate(client.is_type):
                if is_type:
                    deepest = max(deepest, self.level(client, index))
                    if deepest > MAX_NESTING:
                        raise UpdateLimit(f"Y types nested deeper than {MAX_NESTING} levels")
        return deepest


try:  # the walk of a small update, compiled (an optional extension: core/_ywalk.c)
    from . import _ywalk  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - exercised where the build had no compiler
    _ywalk = None
#: The compiled walk's interface spoken here (an extension built from an older
#: core/_ywalk.c, an editable install not rebuilt since, is not used); None: Python only.
_compiled_walk = getattr(_ywalk, "walk", None) if getattr(_ywalk, "VERSION", 0) == 1 else None


def _walked_in_c(update: bytes, cap: int, held: Mapping[str, int] | None) -> UpdateShape | None:
    """The compiled walk's shape of ``update``, or None where the Python walk decides
    (anything malformed or past a limit, more than one client's structs or one slice,
    embeds, formats, subdocuments). The limits are read here, at each call."""
    if _compiled_walk is None:
        return None
    limits = (
        MAX_UPDATE_BYTES, MAX_CLIENTS, MAX_ENTRIES, MAX_VALUES, MAX_DELETE_RANGES,
        MAX_KEY_BYTES, MAX_NESTING, SLICE_STRUCTS, CLOCK_LIMIT, MAX_VAR_UINT_BITS, REHASH_AT,
    )  # fmt: skip
    found = _compiled_walk(update, cap, held, limits)
    if found is None:
        return None
    starts, clocks, structs, contents, values, deleted, depth, value_depth = found[:8]
    runs, delete_set_at, root_keys, nested_keys = found[8:]
    return UpdateShape(
        size=len(update), starts=starts, clocks=clocks, structs=structs, contents=contents,
        values=values, deleted_ranges=deleted, type_depth=depth, value_depth=value_depth,
        runs=runs, delete_set_at=delete_set_at, root_keys=root_keys, nested_keys=nested_keys,
    )  # fmt: skip


def walk_update(
    update: bytes, *, max_structs: int | None = None, held: Mapping[str, int] | None = None
) -> UpdateShape:
    """Walk a Yjs v1 update without Yrs, bounded in time (linear), memory and stack;
    raise BadUpdate (one line) if it is malformed, or UpdateLimit naming the limit it
    breaks: ``MAX_UPDATE_BYTES``, ``MAX_NESTING``, ``max_structs`` (default
    ``MAX_STRUCTS``; ``MAX_INCREMENTAL_STRUCTS`` for a peer's incremental update: then a
    client declaring more is refused from its header, before any struct is read),
    ``MAX_ENTRIES``, ``MAX_VALUES``, ``MAX_CLIENTS``, ``MAX_DELETE_RANGES``,
    ``MAX_KEY_BYTES``. ``held``: the keys the document's root maps hold (by name), so the
    slices end where a map's table grows (``REHASH_AT``); asked only for the root maps
    the update names a key of (it may count them only then)."""
    if len(update) > MAX_UPDATE_BYTES:
        raise UpdateLimit(f"an update of {len(update):,} bytes (limit {MAX_UPDATE_BYTES:,})")
    cap = MAX_STRUCTS if max_structs is None else max_structs
    # A live edit (one client's structs, one slice) is walked in C, 30x faster; the rest,
    # and whatever C cannot vouch for, here, which refuses with the exact words.
    shape = _walked_in_c(update, cap, held)
    if shape is not None:
        return shape
    walk = _Walk(bytes(update), cap, held)
    try:
        for _ in range(walk.count("clients", MAX_CLIENTS, 3)):
            structs = walk.count("structs in one client", walk.max_structs, cap=walk.struct_cap)
            client_id = walk.uint()
            if client_id in walk.clients:
                raise BadUpdate(f"client {client_id} listed twice")
            client = walk.clients[client_id] = _Client(walk.clock("a clock"))
            walk.structs_of(client_id, client, structs)
        delete_set_at = walk.pos
        deleted = walk.delete_set()
        if walk.pos != walk.end:
            raise BadUpdate(f"{walk.end - walk.pos:,} bytes after the delete set")
    except UpdateLimit as exc:
        raise UpdateLimit(f"update beyond castroom's limits: {exc}") from None
    except BadUpdate as exc:
        raise BadUpdate(f"malformed update ({exc})") from None
    try:
        type_depth = walk.type_depth()
    except UpdateLimit as exc:
        raise UpdateLimit(f"update beyond castroom's limits: {exc}") from None
    return UpdateShape(
        size=len(update),
        starts={cid: c.starts[0] for cid, c in walk.clients.items() if c.starts},
        clocks={cid: c.end for cid, c in walk.clients.items() if c.starts},
        structs=walk.structs,
        contents=walk.contents,
        values=walk.values,
        deleted_ranges=deleted,
        type_depth=type_depth,
        value_depth=walk.value_depth,
        runs=walk.runs,
        delete_set_at=delete_set_at,
        needs=walk.needs() if len(walk.runs) > 1 else {},
        root_keys={p.decode(): n for p, n in walk.keys_of.items() if isinstance(p, bytes)},
        nested_keys=max((n for p, n in walk.keys_of.items() if isinstance(p, tuple)), default=0),
    )


def _var_uint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _client_order(shape: UpdateShape) -> list[int]:
    """The update's clients, each after those it refers to (a cycle keeps the update's
    order), so that no slice waits for one that comes later."""
    order: list[int] = []
    done: set[int] = set()
    for first in dict.fromkeys(run[0] for run in shape.runs):
        stack = [(first, iter(sorted(shape.needs.get(first, ()))))]
        seen = {first}
        while stack:
            client, pending = stack[-1]
            step = next((c for c in pending if c not in seen and c not in done), None)
            if step is None:
                stack.pop()
                if client not in done:
                    done.add(client)
                    order.append(client)
            else:
                seen.add(step)
                stack.append((step, iter(sorted(shape.needs.get(step, ())))))
    return order


def slices(update: bytes, shape: UpdateShape) -> list[bytes]:
    """``update`` (walked: ``shape``) as several updates that, applied in order, make the
    same document: runs of up to SLICE_STRUCTS structs of one client each (a client's
    structs in order, each client after those it refers to), then the delete set. So
    Yrs, which holds the GIL for as long as it integrates, never works on more than one
    slice at a time. An update of one run is returned whole."""
    if len(shape.runs) <= 1:
        return [update]
    by_client: dict[int, list[tuple[int, int, int, int, int]]] = {}
    for run in shape.runs:
        by_client.setdefault(run[0], []).append(run)
    out = []
    for client in _client_order(shape):
        for _, clock, start, end, count in by_client[client]:
            head = b"\x01" + _var_uint(count) + _var_uint(client) + _var_uint(clock)
            out.append(head + update[start:end] + b"\x00")  # no deletions
    out.append(b"\x00" + update[shape.delete_set_at :])  # no structs: the delete set
    return out

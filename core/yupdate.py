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

from .errors import BadUpdate

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
        for _ in range(count):
            client, pos = read_var_uint(state_vector, pos)
            out[client], pos = read_var_uint(state_vector, pos)
    except BadUpdate as exc:
        raise BadUpdate(f"malformed state vector ({exc})") from None
    if pos != len(state_vector):
        raise BadUpdate("malformed state vector (trailing bytes)")
    return out


def ahead(mine: bytes, theirs: bytes) -> bool:
    """Whether state vector ``mine`` holds any struct that ``theirs`` lacks."""
    other = decode_state_vector(theirs)
    return any(clock > other.get(client, 0) for client, clock in decode_state_vector(mine).items())


def update_is_empty(update: bytes) -> bool:
    """Whether an update carries no struct (it may still carry deletions)."""
    return read_var_uint(update, 0)[0] == 0


def guard_update(update: bytes) -> None:
    """The cheap checks every update gets before Yrs sees it (constant time).

    Yrs reserves memory for the declared numbers of clients and structs before reading
    them: a 5-byte update declaring 2^28 clients costs it seconds and half a gigabyte
    (found by tests/test_fuzz.py). Each client takes at least 3 bytes and each struct at
    least one, so such lies are refused up front."""
    if not isinstance(update, bytes | bytearray) or len(update) < 2:
        raise BadUpdate("not a Yjs update (too short)")
    try:
        clients, pos = read_var_uint(update, 0)
        if clients > len(update) // 3:
            raise BadUpdate(f"declares {clients} clients in {len(update)} bytes")
        if clients:
            structs, _ = read_var_uint(update, pos)
            if structs > len(update):
                raise BadUpdate(f"declares {structs} structs in {len(update)} bytes")
    except BadUpdate as exc:
        raise BadUpdate(f"malformed update ({exc})") from None

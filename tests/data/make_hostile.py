"""Make the hostile updates of issue 7 as regression files (run: python make_hostile.py).

Each is a Yjs v1 update written byte by byte (lib0 encoding), so the files are the same on
every run and need nothing but Python. The checked-in ones crashed castroom before its
bounded walk (castroom.core.yupdate.walk_update): Yrs recursed once per nesting level.
The large ones are made at test time by the functions below, not checked in.

- deep_any_50k.yupd: one talent field holding 50,000 nested Any arrays (100 KB): SIGSEGV
  in Yrs's decoder (its stack overflows from about 40,000 of these two-byte levels; the
  issue's pycrdt-made value did at 26,000), for any peer that merely decodes it.
- nested_maps_60k.yupd: a talent holding 60,000 nested Y.Maps (about 0.5 MB): merged and
  relayed before, then every read of the talents crashed (SIGSEGV) on every peer.
- nested_maps_2k.yupd: the same 2,000 deep: `list` raised RecursionError and `check` said
  "No findings."
"""

from __future__ import annotations

import sys
from pathlib import Path

CLIENT = 1
HERE = Path(__file__).parent


def var_uint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def var_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return var_uint(len(raw)) + raw


def update(structs: list[bytes], client: int = CLIENT) -> bytes:
    """One client's structs from clock 0, and an empty delete set."""
    return (
        var_uint(1)
        + var_uint(len(structs))
        + var_uint(client)
        + var_uint(0)
        + b"".join(structs)
        + b"\x00"
    )


def in_root(root: str, key: str, content: bytes) -> bytes:
    """An item at ``root[key]`` (parent named, parent sub set); ``content`` starts with
    its content ref."""
    return (
        bytes([content[0] | 0x20]) + var_uint(1) + var_string(root) + var_string(key) + content[1:]
    )


def in_item(parent_clock: int, key: str, content: bytes) -> bytes:
    """An item at ``key`` of the Y.Map made by struct ``parent_clock`` of CLIENT."""
    head = bytes([content[0] | 0x20]) + var_uint(0) + var_uint(CLIENT) + var_uint(parent_clock)
    return head + var_string(key) + content[1:]


Y_MAP = bytes([7, 1])  # content ref 7 (a Y type), type ref 1 (map)


def any_content(*values: bytes) -> bytes:
    return bytes([8]) + var_uint(len(values)) + b"".join(values)


def any_string(text: str) -> bytes:
    return bytes([119]) + var_string(text)


def talent(entity_id: str) -> list[bytes]:
    """A talent map with its id and name (clocks 0, 1, 2)."""
    return [
        in_root("talents", entity_id, Y_MAP),
        in_item(0, "id", any_content(any_string(entity_id))),
        in_item(0, "name", any_content(any_string("Poison"))),
    ]


def deep_any(depth: int) -> bytes:
    """A talent whose ``notes`` holds ``depth`` nested Any arrays around a null."""
    value = bytes([117, 1]) * depth + bytes([126])
    return update([*talent("DEEPANY"), in_item(0, "notes", any_content(value))])


def nested_maps(depth: int) -> bytes:
    """A talent holding ``depth`` nested Y.Maps under its key ``looks``."""
    structs = talent("NESTED")
    parent = 0
    for level in range(depth):
        structs.append(in_item(parent, "looks" if level == 0 else "n", Y_MAP))
        parent = len(structs) - 1
    return update(structs)


def many_entries(count: int) -> bytes:
    """``count`` talents in one update: 22 bytes each (a 1M one is 22 MB)."""
    return update(
        [in_root("talents", f"T{i:07d}", any_content(any_string("x"))) for i in range(count)]
    )


def nulls(count: int) -> bytes:
    """One talent field holding an Any array of ``count`` nulls (20M: 20 MB)."""
    value = bytes([117]) + var_uint(count) + bytes([126]) * count
    return update([*talent("NULLS"), in_item(0, "notes", any_content(value))])


FILES = {
    "deep_any_50k.yupd": lambda: deep_any(50_000),
    "nested_maps_60k.yupd": lambda: nested_maps(60_000),
    "nested_maps_2k.yupd": lambda: nested_maps(2_000),
}


def main() -> None:
    for name, make in FILES.items():
        data = make()
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data):,} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()

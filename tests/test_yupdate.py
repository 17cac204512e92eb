"""The bounded walk over Yjs v1 updates (castroom.core.yupdate.walk_update).

- Agreement: every update pycrdt makes from random documents (nested maps and arrays,
  Any values of every kind, text with formatting and embeds, XML types, subdocuments,
  deletions; each transaction's update, the whole state, merges and diffs) is accepted,
  and the walk's clocks per client are Yrs's own (get_state), which holds only if every
  struct and content length was read exactly.
- Limits: each documented limit refuses, in one line naming it, just past its value and
  accepts at it; malformed bytes Yrs would misread (bad UTF-8, clocks past 2^32, cycles,
  ambiguous type refs) are refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples
from pycrdt import (
    Array,
    Doc,
    Map,
    Text,
    XmlElement,
    XmlFragment,
    XmlText,
    get_state,
    get_update,
    merge_updates,
)

from castroom.core import yupdate
from castroom.core.errors import BadUpdate, UpdateLimit
from castroom.core.yupdate import decode_state_vector, walk_update

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_hostile as hostile

# -- agreement with Yrs on what pycrdt writes ---------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
keys = st.sampled_from(["a", "b", "name", "é", "😀", ""])
ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, 99), keys, values),
        st.tuples(st.just("map"), st.integers(0, 99), keys),
        st.tuples(st.just("array"), st.integers(0, 99), keys),
        st.tuples(st.just("text"), st.integers(0, 99), keys, st.text(max_size=12)),
        st.tuples(st.just("push"), st.integers(0, 99), st.lists(values, min_size=1, max_size=4)),
        st.tuples(st.just("pop"), st.integers(0, 99), st.integers(0, 5)),
        st.tuples(st.just("type"), st.integers(0, 99), st.sampled_from(["map", "array", "text"])),
        st.tuples(
            st.just("insert"),
            st.integers(0, 99),
            st.integers(0, 20),
            st.text(min_size=1, max_size=6),
        ),
        st.tuples(st.just("cut"), st.integers(0, 99), st.integers(0, 20), st.integers(1, 5)),
        st.tuples(
            st.just("format"), st.integers(0, 99), st.integers(0, 20), st.integers(1, 5), values
        ),
        st.tuples(st.just("embed"), st.integers(0, 99), st.integers(0, 20), values),
        st.tuples(st.just("xml"), st.text(max_size=5), st.text(max_size=6)),
        st.tuples(st.just("subdoc"), st.integers(0, 99), keys),
        st.tuples(st.just("unset"), st.integers(0, 99), keys),
        st.tuples(st.just("commit")),
    ),
    max_size=30,
)


class Builder:
    """Random edits of a pycrdt Doc; records every transaction's update."""

    def __init__(self) -> None:
        self.doc = Doc()
        self.updates: list[bytes] = []
        self.states: list[bytes] = []
        self.doc.observe(lambda event: self.updates.append(event.update))
        self.maps: list[Map] = [self.doc.get("talents", type=Map), self.doc.get("roles", type=Map)]
        self.arrays: list[Array] = [self.doc.get("list", type=Array)]
        self.texts: list[Text] = [self.doc.get("notes", type=Text)]
        self.xml = self.doc.get("xml", type=XmlFragment)

    def keep(self, value: Any) -> Any:
        for kind, box in ((Map, self.maps), (Array, self.arrays), (Text, self.texts)):
            if isinstance(value, kind):
                box.append(value)
        return value

    def run(self, steps: list[tuple]) -> None:
        for step in steps:
            self.states.append(self.doc.get_state())
            try:
                with self.doc.transaction():
                    self.do(step)
            except BaseException as exc:  # pycrdt's own index errors: not what is tested
                if not isinstance(exc, ValueError) and type(exc).__name__ != "PanicException":
                    raise

    def do(self, step: tuple) -> None:  # noqa: C901 - a test's random step dispatcher
        kind = step[0]
        if kind in ("set", "map", "array", "text", "subdoc", "unset"):
            target = self.maps[step[1] % len(self.maps)]
            key = step[2]
            if isinstance(target.get(key), Map | Array | Text):
                return  # pycrdt segfaults on a later write into a type replaced or deleted
            if kind == "set":
                target[key] = step[3]
            elif kind == "map":
                target[key] = self.keep(Map({"x": 1}))
            elif kind == "array":
                target[key] = self.keep(Array([1, "two"]))
            elif kind == "text":
                target[key] = self.keep(Text(step[3]))
            elif kind == "subdoc":
                target[key] = Doc()
            elif key in target:
                del target[key]
        elif kind in ("push", "pop", "type"):
            array = self.arrays[step[1] % len(self.arrays)]
            if kind == "push":
                array.extend(step[2])
            elif kind == "pop" and len(array):
                # (pycrdt segfaults on a later write into a type deleted from an array)
                if not isinstance(array[step[2] % len(array)], Map | Array | Text):
                    del array[step[2] % len(array)]
            elif kind == "type":
                array.append(self.keep({"map": Map, "array": Array, "text": Text}[step[2]]()))
        elif kind in ("insert", "cut", "format", "embed"):
            text = self.texts[step[1] % len(self.texts)]
            size = len(text)  # pycrdt counts UTF-8 bytes: with any non-ASCII, append only
            at = step[2] % (size + 1) if str(text).isascii() else size
            if at == size and kind in ("cut", "format"):
                return
            if kind == "insert":
                text.insert(at, step[3])
            elif kind == "cut" and size:
                del text[min(at, size - 1) : min(size, at + step[3])]
            elif kind == "format" and size:
                text.format(min(at, size - 1), min(size, at + step[3]), {"bold": step[4]})
            elif kind == "embed":
                text.insert_embed(at, {"v": step[3]})
        elif kind == "xml":
            self.xml.children.append(XmlElement("p", {"k": step[1]}, [XmlText(step[2])]))


def agrees(update: bytes) -> None:
    shape = walk_update(update)
    from_zero = {c: end for c, end in shape.clocks.items() if shape.starts[c] == 0}
    assert from_zero == decode_state_vector(get_state(update))
    assert shape.size == len(update)
    assert shape.type_depth <= yupdate.MAX_NESTING and shape.value_depth <= yupdate.MAX_NESTING


@settings(max_examples=examples(300))
@given(steps=ops)
def test_every_update_pycrdt_writes_is_accepted_and_read_as_yrs_reads_it(steps: list) -> None:
    built = Builder()
    built.run(steps)
    whole = built.doc.get_update()
    for update in [whole, *built.updates]:
        agrees(update)
    if built.updates:
        agrees(merge_updates(*built.updates))
    for state in built.states[:: max(1, len(built.states) // 4)]:
        agrees(get_update(whole, state))


def _content(doc: Doc) -> tuple[Any, ...]:
    return (
        decode_state_vector(doc.get_state()),
        json.loads(str(doc.get("talents", type=Map))),  # JSON: subdocuments by guid
        json.loads(str(doc.get("roles", type=Map))),
        json.loads(str(doc.get("list", type=Array))),
        str(doc.get("notes", type=Text)),
        str(doc.get("xml", type=XmlFragment)),
    )


@settings(max_examples=examples(60))
@given(rounds=st.lists(st.tuples(st.integers(0, 2), ops), min_size=1, max_size=6))
def test_slices_of_an_update_make_the_same_document(rounds: list[tuple[int, list]]) -> None:
    """Three peers edit and sync in turns (so structs refer to other clients' structs);
    the whole state and the merge of every update, cut into slices of 3 structs and
    applied in order, make the document the whole update makes."""
    peers = [Builder() for _ in range(3)]
    for who, steps in rounds:
        peers[who].run(steps)
        for other in peers:
            other.doc.apply_update(peers[who].doc.get_update(other.doc.get_state()))
    whole = peers[0].doc.get_update()
    for update in (whole, merge_updates(*[u for peer in peers for u in peer.updates])):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(yupdate, "SLICE_STRUCTS", 3)
            shape = walk_update(update)
        sliced = Doc()
        for piece in yupdate.slices(update, shape):
            sliced.apply_update(piece)
        reference = Doc()
        reference.apply_update(update)
        assert _content(sliced) == _content(reference)


def _grown_in(pieces: list[bytes], doc: Doc, roots: list[str]) -> list[int]:
    """Applies ``pieces`` in order to ``doc``; per piece, how many of the root maps
    ``roots`` grew past one of yupdate.REHASH_AT in it (as Yrs counts their keys)."""
    grown = []
    for piece in pieces:
        before = [len(doc.get(name, type=Map)) for name in roots]
        doc.apply_update(piece)
        after = [len(doc.get(name, type=Map)) for name in roots]
        grown.append(
            sum(
                1
                for low, high in zip(before, after, strict=True)
                for at in yupdate.REHASH_AT
                if low < at <= high
            )
        )
    return grown


def test_slices_end_where_a_map_s_table_grows() -> None:
    """Yrs rehashes a map's keys holding the GIL when its table grows: three maps whose
    keys alternate cross 14,337 keys within a few structs, yet in three slices; and a map
    the document holds 14,300 keys of already crosses it in its own slice too (``held``)."""
    roots = ["m0", "m1", "m2"]
    entries = [
        hostile.in_root(roots[i % 3], f"k{i}", hostile.any_content(hostile.any_string("x")))
        for i in range(3 * 14_400)
    ]
    update = hostile.update(entries)
    shape = walk_update(update)
    assert shape.root_keys == dict.fromkeys(roots, 14_400)
    grown = _grown_in(yupdate.slices(update, shape), Doc(), roots)
    assert sum(grown) == 3 and max(grown) == 1
    doc = Doc()
    doc.apply_update(hostile.update(entries[: 3 * 14_300]))
    rest = hostile.var_uint(1) + hostile.var_uint(300) + hostile.var_uint(hostile.CLIENT)
    rest += hostile.var_uint(3 * 14_300) + b"".join(entries[3 * 14_300 :]) + b"\x00"
    shape = walk_update(rest, held=dict.fromkeys(roots, 14_300))
    grown = _grown_in(yupdate.slices(rest, shape), doc, roots)
    assert sum(grown) == 3 and max(grown) == 1


def test_a_document_s_merge_ends_its_slices_where_its_maps_grow() -> None:
    """CastDocument walks with what its root maps hold, its own collections and any other
    root the update names: three roots of 14,300 keys each (one a collection) cross
    14,337 in one small update, yet in three slices."""
    from castroom.core.document import CastDocument

    roots = ["talents", "m1", "m2"]
    entries = [
        hostile.in_root(roots[i % 3], f"k{i}", hostile.any_content(hostile.any_string("x")))
        for i in range(3 * 14_400)
    ]
    doc = CastDocument()
    doc.apply_update(hostile.update(entries[: 3 * 14_300]))
    rest = hostile.var_uint(1) + hostile.var_uint(300) + hostile.var_uint(hostile.CLIENT)
    rest += hostile.var_uint(3 * 14_300) + b"".join(entries[3 * 14_300 :]) + b"\x00"
    before = doc.encode_update()
    doc.apply_update(rest)
    assert doc.merge_shape is not None
    replica = Doc()
    replica.apply_update(before)
    grown = _grown_in(yupdate.slices(rest, doc.merge_shape), replica, roots)
    assert sum(grown) == 3 and max(grown) == 1


def test_the_walk_asks_held_only_for_the_root_maps_an_update_names_a_key_of() -> None:
    """Counting a document's root maps is not free (a Yrs call each): the walk asks
    ``held`` for a root map only when a struct names a new key of it, once per map, so
    a live edit of an entity's fields asks for none."""
    from collections.abc import Iterator, Mapping

    class Asked(Mapping[str, int]):
        def __init__(self) -> None:
            self.names: list[str] = []

        def __getitem__(self, name: str) -> int:
            self.names.append(name)
            return 0

        def __iter__(self) -> Iterator[str]:
            raise AssertionError("iterated: every map counted")

        def __len__(self) -> int:
            raise AssertionError("sized: every map counted")

    doc = Doc()
    talents = doc.get("talents", type=Map)
    talents["T1"] = Map({"agent": "", "notes": Text("")})
    before = doc.get_state()
    talents["T1"]["agent"] = "Kay"
    talents["T1"]["notes"] += "|seen"
    held = Asked()
    walk_update(doc.get_update(before), held=held)
    assert held.names == []
    before = doc.get_state()
    talents["T2"] = Map({"name": "Bo"})
    talents["T3"] = Map({"name": "Cy"})
    walk_update(doc.get_update(before), held=held)
    assert held.names == ["talents"]


def test_the_walk_counts_what_an_update_holds() -> None:
    doc = Doc()
    talents = doc.get("talents", type=Map)
    talents["T1"] = Map({"name": "Ada", "notes": Text("héllo 😀"), "tags": [1, [2, {"k": [3]}]]})
    text = doc.get("notes", type=Text)
    text += "hello"
    text.format(0, 2, {"bold": True})
    del talents["T1"]["name"]
    shape = walk_update(doc.get_update())
    assert shape.contents["type"] == 2  # the talent's map and its notes
    assert shape.contents["format"] == 2  # a format range opens and closes
    assert shape.value_depth == 4 and shape.type_depth == 2  # [1, [2, {"k": [3]}]]
    assert shape.deleted_ranges == 1
    # Keys named per map: one talent in its collection, three fields in the talent's map
    # (text items name no key).
    assert shape.root_keys == {"talents": 1} and shape.nested_keys == 3


# -- limits and malformed bytes ---------------------------------------------------------------

Y_TEXT = bytes([7, 2])


def refused(update: bytes, needle: str, kind: type[BadUpdate] = BadUpdate) -> str:
    with pytest.raises(kind) as caught:
        walk_update(update)
    message = str(caught.value)
    assert needle in message and "\n" not in message, message
    return message


def test_nesting_limits_name_the_limit() -> None:
    deepest = yupdate.MAX_NESTING
    assert walk_update(hostile.deep_any(deepest)).value_depth == deepest
    message = refused(hostile.deep_any(deepest + 1), "nested deeper than 32 levels", UpdateLimit)
    assert message.startswith("update beyond castroom's limits: a value")
    assert walk_update(hostile.nested_maps(deepest - 1)).type_depth == deepest
    refused(hostile.nested_maps(deepest), "Y types nested deeper than 32 levels", UpdateLimit)

    def formatted(depth: int) -> bytes:
        json_text = "[" * depth + "1" + "]" * depth + '"[[[["'[:0]
        content = bytes([6]) + hostile.var_string("bold") + hostile.var_string(json_text)
        return hostile.update(
            [bytes([6]) + hostile.var_uint(1) + hostile.var_string("notes") + content[1:]]
        )

    walk_update(formatted(deepest))
    refused(formatted(deepest + 1), "JSON nested deeper than 32 levels", UpdateLimit)


def test_chains_across_clients_are_followed() -> None:
    """A chain of nested maps whose links alternate between two clients (each client's
    section read before the other's parents exist) is still measured whole."""
    depth = yupdate.MAX_NESTING + 4
    sections: dict[int, list[bytes]] = {1: [], 2: []}
    clocks = {1: 0, 2: 0}
    parent: tuple[int, int] | None = None
    for level in range(depth):
        client = 1 + level % 2
        if parent is None:
            struct = hostile.in_root("talents", "T", hostile.Y_MAP)
        else:
            head = bytes([7 | 0x20]) + hostile.var_uint(0)
            struct = head + hostile.var_uint(parent[0]) + hostile.var_uint(parent[1])
            struct += hostile.var_string("n") + bytes([1])
        sections[client].append(struct)
        parent = (client, clocks[client])
        clocks[client] += 1
    data = hostile.var_uint(2)
    for client in (2, 1):  # higher clients first, as Yjs writes them
        data += hostile.var_uint(len(sections[client])) + hostile.var_uint(client) + b"\x00"
        data += b"".join(sections[client])
    refused(data + b"\x00", "Y types nested deeper", UpdateLimit)


def test_count_and_size_limits_name_the_limit() -> None:
    walk_update(hostile.nulls(yupdate.MAX_ENTRIES))
    refused(
        hostile.nulls(yupdate.MAX_ENTRIES + 1), "entries in one value (limit 100,000)", UpdateLimit
    )
    structs = hostile.var_uint(1) + hostile.var_uint(yupdate.MAX_STRUCTS + 1) + b"\x01\x00"
    limit = f"structs in one client (limit {yupdate.MAX_STRUCTS:,})"
    refused(structs + b"\x00" * 64, limit, UpdateLimit)
    too_big = b"\x00" * (yupdate.MAX_UPDATE_BYTES + 1)
    refused(too_big, f"bytes (limit {yupdate.MAX_UPDATE_BYTES:,})", UpdateLimit)
    long_key = hostile.in_root("talents", "k" * (yupdate.MAX_KEY_BYTES + 1), hostile.Y_MAP)
    refused(hostile.update([long_key]), "a key of 4,097 bytes (limit 4,096)", UpdateLimit)
    lie = hostile.var_uint(1) + hostile.var_uint(5_000) + b"\x01\x00" + b"\x00" * 30
    refused(lie, "declares 5,000 structs in one client in 32 bytes left")


def test_an_incremental_update_has_a_smaller_struct_cap() -> None:
    """A peer's incremental update is walked with MAX_INCREMENTAL_STRUCTS, a full state
    with MAX_STRUCTS: the same bytes pass one and are refused by the other, and a header
    declaring a million structs is refused before any struct is read (the bytes after it
    are not even there); under the full cap that header is only a lie about the bytes."""
    assert yupdate.MAX_INCREMENTAL_STRUCTS < 1_000_000 < yupdate.MAX_STRUCTS
    many = hostile.many_entries(1_000)
    assert walk_update(many).structs == 1_000
    with pytest.raises(UpdateLimit, match=r"1,000 structs in one client \(incremental-update"):
        walk_update(many, max_structs=999)
    header = hostile.var_uint(1) + hostile.var_uint(1_000_000) + b"\x01\x00" + bytes(64)
    with pytest.raises(UpdateLimit) as caught:
        walk_update(header, max_structs=yupdate.MAX_INCREMENTAL_STRUCTS)
    assert str(caught.value) == (
        "update beyond castroom's limits: 1,000,000 structs in one client"
        " (incremental-update limit 500,000)"
    )
    refused(header, "declares 1,000,000 structs in one client in 66 bytes left")
    # Spread over clients, the running count is capped too.
    spread = hostile.var_uint(2)
    for client in (1, 2):
        structs = [hostile.in_root("talents", f"T{client}-{i}", hostile.Y_MAP) for i in range(600)]
        spread += hostile.update(structs, client=client)[1:-1]
    spread += b"\x00"
    assert walk_update(spread).structs == 1_200
    with pytest.raises(UpdateLimit, match="more than 1,000 structs in one incremental update"):
        walk_update(spread, max_structs=1_000)


@pytest.mark.slow
@pytest.mark.parametrize("count", [5_000, 50_000])
def test_a_large_productions_full_state_is_within_the_limits(count: int) -> None:
    """Its first sync, or a bundle of it, is one update: 50,000 talents with eight fields
    each are 550,000 structs (the limit was once 500,000, so such a production could not
    sync at all)."""
    doc = Doc()
    talents = doc.get("talents", type=Map)
    with doc.transaction():
        for i in range(count):
            talents[f"T{i:06d}"] = Map(
                {
                    "name": f"Talent {i}",
                    "agent": "Agency",
                    "union": "SAG-AFTRA",
                    "rate": 1000 + i,
                    "playing_age_min": 20,
                    "playing_age_max": 40,
                    "notes": Text("notes"),
                    "external_ids": Map({"site": str(i)}),
                }
            )
    shape = walk_update(doc.get_update())
    assert shape.structs >= count * 10


def in_root_raw(key: bytes, content: bytes) -> bytes:
    return (
        bytes([content[0] | 0x20])
        + b"\x01"
        + hostile.var_string("talents")
        + hostile.var_uint(len(key))
        + key
        + content[1:]
    )


@pytest.mark.parametrize(
    ("update", "needle"),
    [
        (hostile.update([in_root_raw(b"\xff\xfe", hostile.Y_MAP)]), "not UTF-8"),
        (hostile.update([in_root_raw(b"\xed\xa0\x80", hostile.Y_MAP)]), "not UTF-8"),  # a surrogate
        (hostile.update([hostile.in_root("talents", "T", bytes([7, 5]))]), "unsupported Y type 5"),
        (hostile.update([hostile.in_root("talents", "T", bytes([7, 7]))]), "unsupported Y type 7"),
        (
            hostile.update([hostile.in_root("talents", "T", bytes([7, 15]))]),
            "unsupported Y type 15",
        ),
        (
            hostile.update(
                [hostile.in_root("talents", "T", bytes([2, 1]) + hostile.var_string("1"))]
            ),
            "legacy JSON",
        ),
        (hostile.update([hostile.in_root("talents", "T", bytes([11]))]), "unknown content type 11"),
        (
            hostile.update([hostile.in_root("talents", "T", bytes([8, 1, 99]))]),
            "unknown value type 99",
        ),
        (hostile.update([bytes([0x10 | 4]) + b"\x01"]), "unknown struct info"),
        (
            hostile.update([hostile.in_root("talents", "T", Y_TEXT)]) + b"\x00",
            "bytes after the delete set",
        ),
        (hostile.update([b"\x00" + hostile.var_uint(2**32)]), "beyond 2^32"),
        (
            hostile.update(
                [
                    hostile.in_root("talents", "T", bytes([1]) + hostile.var_uint(2**32 - 1)),
                    b"\x00\x05",
                ]
            ),
            "beyond 2^32",
        ),
        # an item whose origin is itself
        (hostile.update([bytes([0x80 | 7]) + b"\x01\x00" + Y_TEXT[1:]]), "cycle"),
        (b"\x02\x01\x01\x00\x00\x01\x01\x01\x00\x00\x01" + b"\x00", "client 1 listed twice"),
        (
            hostile.update([hostile.in_root("talents", "T", bytes([8, 1, 117, 0x7F]))]),
            "declares 127 entries in one value",
        ),
    ],
)
def test_malformed_updates_are_refused_in_one_line(update: bytes, needle: str) -> None:
    refused(update, needle)


def test_hostile_files_are_what_the_script_makes() -> None:
    """The regression files in tests/data are the script's output (re-run it to change them)."""
    for name, make in hostile.FILES.items():
        assert (Path(__file__).parent / "data" / name).read_bytes() == make(), name

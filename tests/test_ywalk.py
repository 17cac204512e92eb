"""The compiled walk of small updates (core/_ywalk.c) against the Python walk.

The compiled walk answers a shape, or None and the Python walk decides. So what it may
never do is accept what the Python walk refuses, or answer another shape: checked on
every update pycrdt makes from random documents (test_yupdate's builder), each one cut
short, with bytes flipped, dropped and added, under the default limits and lowered
ones; and it must take the updates a live edit sends, or the server pays the Python
walk again without any test noticing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples
from pycrdt import Doc, Map, Text
from test_yupdate import Builder, ops

from castroom.core import yupdate
from castroom.core.errors import BadUpdate

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_hostile as hostile

COMPILED = yupdate._compiled_walk is not None
needs_compiled = pytest.mark.skipif(not COMPILED, reason="the compiled walk is not built here")


def python_walk(update: bytes, **kw: object) -> yupdate.UpdateShape | str:
    """The Python walk's shape, or its refusal's words."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yupdate, "_compiled_walk", None)
        try:
            return yupdate.walk_update(update, **kw)  # type: ignore[arg-type]
        except BadUpdate as exc:
            return str(exc)


def same_as_python(update: bytes, max_structs: int = yupdate.MAX_STRUCTS) -> bool:
    """Whether the compiled walk either leaves ``update`` to the Python walk or answers
    the Python walk's shape; True when it answered one."""
    found = yupdate._walked_in_c(update, max_structs, None)
    expected = python_walk(update, max_structs=max_structs)
    if found is not None:
        assert found == expected, update.hex()
    return found is not None


def test_the_compiled_walk_is_built_on_ci() -> None:
    """CI has a C compiler: a silent fall back to the Python walk would only show as a
    slower server."""
    if os.environ.get("CI"):
        assert COMPILED


def _mutations(update: bytes, seed: int) -> list[bytes]:
    """``update`` cut short at a few places, a byte changed, dropped or doubled."""
    out = [update[:cut] for cut in {1, len(update) // 2, len(update) - 1} if cut > 0]
    if len(update) > 2:
        at = 1 + seed % (len(update) - 2)
        for value in (0x00, 0x7F, 0x80, 0xFF, update[at] ^ (1 + seed % 255)):
            out.append(update[:at] + bytes([value]) + update[at + 1 :])
        out.append(update[:at] + update[at + 1 :])
        out.append(update[:at] + update[at : at + 1] + update[at:])
    return out


@needs_compiled
@settings(max_examples=examples(200))
@given(steps=ops, seed=st.integers(0, 2**16))
def test_the_compiled_walk_answers_as_the_python_walk(steps: list, seed: int) -> None:
    built = Builder()
    built.run(steps)
    for update in [built.doc.get_update(), *built.updates]:
        same_as_python(update)
        same_as_python(update, max_structs=3)
        for mutated in _mutations(update, seed):
            same_as_python(mutated)


@needs_compiled
@settings(max_examples=examples(60))
@given(steps=ops, limit=st.integers(0, 6))
def test_the_compiled_walk_keeps_to_lowered_limits(steps: list, limit: int) -> None:
    """The limits are read at each call: lowered, the two walks still agree."""
    built = Builder()
    built.run(steps)
    lowered = {
        "MAX_ENTRIES": limit,
        "MAX_VALUES": 2 * limit,
        "MAX_KEY_BYTES": limit,
        "MAX_NESTING": 1 + limit % 3,
        "MAX_DELETE_RANGES": limit,
        "SLICE_STRUCTS": 1 + limit,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in lowered.items():
            patch.setattr(yupdate, name, value)
        for update in [built.doc.get_update(), *built.updates]:
            same_as_python(update)


@needs_compiled
def test_strings_are_checked_and_counted_as_the_python_walk_does() -> None:
    """UTF-8 as Python's decoder takes it (no overlong forms, surrogates or code points
    past U+10FFFF), counted in UTF-16 units."""
    samples = [b"plain", "héllo 😀".encode(), "日本".encode(), b"\xc0\xaf", b"\xe0\x80\xaf"]
    samples += [b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf0\x9f\x98", b"\xff", b"\xc3"]
    for raw in samples:
        content = bytes([4]) + hostile.var_uint(len(raw)) + raw
        entry = bytes([4 | 0x20]) + hostile.var_uint(1) + hostile.var_string("notes")
        entry += hostile.var_string("k") + content[1:]
        assert same_as_python(hostile.update([entry])) == _utf8(raw), raw


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@needs_compiled
def test_a_live_edit_is_walked_in_c() -> None:
    """What a peer's edit sends, as the server's merge walks it: a new talent, a field
    set, a note appended, a field deleted; each one answered by the compiled walk."""
    doc = Doc()
    sent: list[bytes] = []
    doc.observe(lambda event: sent.append(event.update))
    talents = doc.get("talents", type=Map)
    talents["T1"] = Map({"agent": "", "notes": Text("")})
    talents["T1"]["agent"] = "Kay"
    talents["T1"]["notes"] += "|seen é"
    del talents["T1"]["agent"]
    held = {"talents": 12}
    for update in sent:
        shape = yupdate._walked_in_c(update, yupdate.MAX_INCREMENTAL_STRUCTS, held)
        assert shape is not None
        assert shape == python_walk(update, max_structs=yupdate.MAX_INCREMENTAL_STRUCTS, held=held)

"""One module owns pycrdt (core/crdt.py), and the private pycrdt attributes it relies on
behave as it expects with the pycrdt this environment has (pyproject pins the range)."""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import pytest

from castroom.core import crdt, model
from castroom.core.document import CastDocument

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for folder in ("core", "plugins", "sync") for p in (ROOT / folder).rglob("*.py")]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_crdt_module_imports_pycrdt() -> None:
    assert SOURCES, "no sources found"
    importers = sorted(str(p.relative_to(ROOT)) for p in SOURCES if "pycrdt" in _imports(p))
    assert importers == ["core/crdt.py"]


def test_nothing_outside_core_reaches_the_yjs_document() -> None:
    """``doc.ydoc`` is the binding's: plugins and sync go through the document's methods."""
    outside = [p for p in SOURCES if p.relative_to(ROOT).parts[0] != "core"]
    reaching = []
    for path in outside:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "ydoc":
                reaching.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert reaching == []


def test_pycrdt_version_is_one_the_private_attributes_were_checked_with() -> None:
    major, minor = (int(part) for part in importlib.metadata.version("pycrdt").split(".")[:2])
    assert (major, minor) >= (0, 12) and (major, minor) < (0, 15)


def test_the_fast_field_write_is_used_and_writes_what_the_public_path_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Map.integrated`` and ``Transaction._txn`` exist (the fast path is taken), and a
    document written through them holds exactly what the public ``__setitem__`` writes."""
    assert crdt._FAST_INSERT, "pycrdt no longer has Map.integrated / Transaction._txn"

    def written(fast: bool) -> dict[str, object]:
        monkeypatch.setattr(crdt, "_FAST_INSERT", fast)
        doc = CastDocument.create("Show")
        talent = doc.add(model.Talent, name="Ada Stone", rate=150000)
        doc.update(model.Talent, talent.id, {"name": "Ada Stone-Grey", "union": "SAG-AFTRA"})
        copy = CastDocument()
        copy.apply_update(doc.encode_update())
        fields = copy.raw(model.Talent, talent.id) or {}
        return {k: fields.get(k) for k in ("name", "union", "rate")}

    assert (
        written(True)
        == written(False)
        == {
            "name": "Ada Stone-Grey",
            "union": "SAG-AFTRA",
            "rate": 150000,
        }
    )


def test_raw_deep_observers_report_the_changed_fields_of_a_merged_update() -> None:
    """The merge path's change tracking reads Yrs's own events through ``integrated``:
    each names the entity (``path``) and the fields (``keys``) a peer changed."""
    doc = CastDocument.create("Show")
    talent = doc.add(model.Talent, name="Ada Stone")
    peer = CastDocument()
    peer.apply_update(doc.encode_update())
    before = doc.state_vector()
    peer.update(model.Talent, talent.id, {"name": "Ada S.", "agent": "Kim"})
    changes = doc.apply_update(peer.encode_update(before))
    assert changes[("talents", talent.id)] == {"name", "agent"}


def test_the_state_vector_kept_between_merges_is_always_the_documents() -> None:
    """state_vector() keeps the state a merge read until the next transaction of any kind
    (a merge, a local write, a write around the typed API, a stashed update's retry)."""
    from pycrdt import Doc, Map

    doc = CastDocument()
    peer, late = Doc(), Doc()
    talents = peer.get("talents", type=Map)

    def edit(source: Doc, write: object) -> bytes:
        before = source.get_state()
        write(source)  # type: ignore[operator]
        return source.get_update(before)

    first = edit(peer, lambda d: d.get("talents", type=Map).update({"a": Map({"x": 1})}))
    doc.apply_update(first)
    assert doc.state_vector() == doc.ydoc.get_state()
    for n in range(5):
        doc.apply_update(edit(peer, lambda d, n=n: talents["a"].__setitem__("x", n)))
        assert doc._state is not None  # kept: the next merge reads no state
        assert doc.state_vector() == doc.ydoc.get_state()
    # Out of order: the second waits for the first (stashed, retried after the first).
    late.apply_update(peer.get_update())
    one = edit(late, lambda d: d.get("talents", type=Map).update({"b": Map({"y": 1})}))
    two = edit(late, lambda d: d.get("talents", type=Map)["b"].__setitem__("y", 2))
    doc.apply_update(two)
    assert doc.state_vector() == doc.ydoc.get_state()
    doc.apply_update(one)
    assert doc.state_vector() == doc.ydoc.get_state()
    with doc.transaction():
        doc._meta_set("note", "local")
        assert doc.state_vector() == doc.ydoc.get_state()  # inside: read, not kept
        doc._meta_set("note", "again")
    assert doc.state_vector() == doc.ydoc.get_state()
    doc.ydoc.get("talents", type=Map)["c"] = 3  # around the typed API
    assert doc.state_vector() == doc.ydoc.get_state()

"""Run by tests/test_stale_types.py in a subprocess (a SIGSEGV must fail the test, not
kill pytest): a peer's update deletes or replaces an entity's map, one of its Y fields,
or a whole collection's content, then castroom writes to that entity through each of
its write paths. Yrs frees a deleted type's memory, and pycrdt writes through a handle
to it without checking (a later write into a freed type segfaults), so castroom must
look every type up afresh after a merge.

Prints one JSON line per case: the outcome ("written" or the error's one line), and
whether memory, the log and a reload agree (and, for a refusal, nothing changed)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycrdt import Array, Doc, Map, Text

from castroom.core import edits, model
from castroom.core.errors import CastroomError
from castroom.core.workspace import StoredProduction, Workspace


def _entity(peer: Doc, rid: str) -> Map:
    value = peer.get("roles", type=Map)[rid]
    assert isinstance(value, Map)
    return value


def _set_fields(value: Callable[[], Any]) -> Callable[[Doc, str], None]:
    def attack(peer: Doc, rid: str) -> None:
        entity = _entity(peer, rid)
        for field in ("notes", "backups", "external_ids"):
            entity[field] = value()

    return attack


def _del_fields(peer: Doc, rid: str) -> None:
    entity = _entity(peer, rid)
    for field in ("notes", "backups", "external_ids"):
        del entity[field]


def _clear_roles(peer: Doc, rid: str) -> None:
    roles = peer.get("roles", type=Map)
    for key in list(roles.keys()):
        del roles[key]


def _replace(value: Callable[[], Any]) -> Callable[[Doc, str], None]:
    def attack(peer: Doc, rid: str) -> None:
        peer.get("roles", type=Map)[rid] = value()

    return attack


#: What a hostile peer's update does to role R1 (its map, its Y fields, its collection).
ATTACKS: dict[str, Callable[[Doc, str], None]] = {
    "entity deleted": lambda peer, rid: peer.get("roles", type=Map).pop(rid),
    "entity replaced by a map": _replace(lambda: Map({"name": "Other"})),
    "entity replaced by a value": _replace(lambda: "junk"),
    "entity replaced by a subdocument": _replace(Doc),
    "entity replaced by an array": _replace(lambda: Array(["x"])),
    "Y fields deleted": _del_fields,
    "Y fields replaced by subdocuments": _set_fields(Doc),
    "Y fields replaced by values": _set_fields(lambda: "junk"),
    "Y fields replaced by other Y types": _set_fields(lambda: Map({"q": Text("t")})),
    "collection emptied": _clear_roles,
}


def _set_cmd(doc: Any, rid: str) -> None:  # what `castroom set` does: resolve, plan, apply
    entity_id = doc.resolve_id(model.Role, rid, include_deleted=True)
    edits.apply(doc, edits.change(doc, model.Role, entity_id, {"description": "after"}))


#: Each way castroom writes into an existing entity.
WRITES: dict[str, Callable[[Any, str], None]] = {
    "set (edits)": _set_cmd,
    "update plain field": lambda doc, rid: doc.update(model.Role, rid, {"status": "cast"}),
    "update crdt map": lambda doc, rid: doc.update(model.Role, rid, {"external_ids": {"y": "2"}}),
    "update crdt array": lambda doc, rid: doc.update(model.Role, rid, {"backups": ["T2"]}),
    "edit text": lambda doc, rid: doc.edit_text(model.Role, rid, "notes", 0, 0, "x"),
    "move item": lambda doc, rid: doc.move_item(model.Role, rid, "backups", 0, 1),
    "insert item": lambda doc, rid: doc.insert_item(model.Role, rid, "backups", 0, "T3"),
    "remove item": lambda doc, rid: doc.remove_item(model.Role, rid, "backups", 0),
    "delete": lambda doc, rid: doc.delete(model.Role, rid),
    "put": lambda doc, rid: doc.put(model.Role(id=rid, name="Maya", notes="again")),
}


def seed(path: Path, roles: tuple[str, ...] = ("R1",)) -> str:
    with Workspace.open(path, member="owner") as ws:
        production = ws.create_production("Harbour Lights")
        doc = production.doc
        for tid in ("T1", "T2", "T3"):
            doc.add(model.Talent, id=tid, name=f"Talent {tid}")
        for rid in roles:
            doc.add(model.Role, id=rid, name=f"Maya {rid}", backups=["T1", "T2"], notes="notes")
            doc.update(model.Role, rid, {"external_ids": {"x": "1"}})
        assert production.id
        return production.id


def _warm(doc: Any) -> None:
    """Every write path once, so each handle castroom caches is held when the peer's
    update arrives."""
    doc.update(model.Role, "R1", {"description": "warm"})
    doc.edit_text(model.Role, "R1", "notes", 0, 0, "w")
    doc.move_item(model.Role, "R1", "backups", 0, 1)
    doc.update(model.Role, "R1", {"external_ids": {"x": "2"}})


def _hostile_update(production: StoredProduction, attack: Callable[[Doc, str], None]) -> bytes:
    peer = Doc()
    peer.apply_update(production.doc.encode_update())
    before = peer.get_state()
    with peer.transaction():
        attack(peer, "R1")
    return peer.get_update(before)


def _rows(ws: Workspace) -> int:
    return int(ws.store.db.execute("SELECT COUNT(*) FROM updates").fetchone()[0])


def _snapshot(ws: Workspace, production: StoredProduction) -> tuple[str, int]:
    return json.dumps(production.doc.to_data(), sort_keys=True, default=str), _rows(ws)


def _reloaded(path: Path, pid: str) -> str:
    with Workspace.open(path, create=False) as ws:
        return json.dumps(ws.production(pid).doc.to_data(), sort_keys=True, default=str)


def run_case(path: Path, attack: str, write: str, by_other_process: bool) -> dict[str, Any]:
    pid = seed(path)
    with Workspace.open(path) as ws:
        production = ws.production(pid)
        _warm(production.doc)
        update = _hostile_update(production, ATTACKS[attack])
        if by_other_process:  # the server merged it; this process picks it up on its write
            with Workspace.open(path) as server:
                server.production(pid).apply_update(update, origin="sync", device="evil")
        else:
            production.apply_update(update, origin="sync", device="evil")
        if by_other_process:  # not merged here yet: what a fresh load holds
            before = (_reloaded(path, pid), _rows(ws))
        else:
            before = _snapshot(ws, production)
        try:
            WRITES[write](production.doc, "R1")
            outcome = "written"
        except CastroomError as exc:
            outcome = f"refused: {exc}"
        after = _snapshot(ws, production)
        # A second write after the first one (refused or not) must not crash either.
        with contextlib.suppress(CastroomError):
            WRITES[write](production.doc, "R1")
        third = _snapshot(ws, production)
    unchanged = outcome == "written" or before == after
    return {
        "attack": attack,
        "write": write,
        "other_process": by_other_process,
        "outcome": outcome,
        "refusal_changed_nothing": unchanged,
        "reload_agrees": _reloaded(path, pid) == third[0],
    }


def main(folder: str) -> None:
    root = Path(folder)
    n = 0
    for attack in ATTACKS:
        for write in WRITES:
            for other in (False, True):
                n += 1
                result = run_case(root / f"case{n}", attack, write, other)
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

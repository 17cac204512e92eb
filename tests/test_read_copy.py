"""Read copies (core/read_copy.py): a read-only command reads a production's stored
decoded copy instead of loading the CRDT, and answers exactly as from the CRDT; any
write makes the copy stale, and a copy that cannot be used is ignored."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from pycrdt import Doc, Map
from sync_helpers import drop_read_copies

from castroom.core import read_copy
from castroom.core.cli import build_cli
from castroom.core.document import CastDocument
from castroom.core.model import COLLECTIONS, Candidate, Role, Talent
from castroom.core.plugins import make_plugins
from castroom.core.read_copy import ReadCopy, ReadOnlyCopy
from castroom.core.sample import SampleSize, build_sample
from castroom.core.view import ProductionView
from castroom.core.workspace import Workspace

#: Read-only commands (the ones that read a copy) and one that reads the CRDT itself.
READS = [
    ("check", "--json"),
    ("check",),
    ("budget",),
    ("list", "talents", "--json"),
    ("list", "roles"),
    ("list", "candidates", "--where", "stage=booked"),
    ("invalid",),
    ("show", "role", "Maggie Doyle"),
]


def _sample_with_a_bad_peer(path: Path) -> str:
    """The sample series, with a peer's edit (raw pycrdt, merged like a sync) leaving a
    talent and a role invalid, so the copy must carry invalid entities too."""
    with Workspace.open(path, member="tester") as ws:
        production = ws.create_production("Tides")
        doc = production.doc
        build_sample(doc)
        peer = Doc()
        peer.apply_update(doc.encode_update())
        talent = doc.all(Talent)[0]
        role = doc.all(Role)[0]
        peer.get("talents", type=Map)[talent.id]["rate"] = -5
        peer.get("roles", type=Map)[role.id]["kind"] = "villain"
        production.apply_update(
            peer.get_update(doc.state_vector()), origin="sync", device="LAPTOP-7"
        )
        assert len(doc.invalid()) == 2
    drop_read_copies(path)  # the copy its maker kept: the first read is another's
    return str(production.id)


def _run(path: Path, *args: str) -> tuple[int, str]:
    plugins = make_plugins()
    result = CliRunner().invoke(build_cli(plugins), ["--workspace", str(path), *args], obj=plugins)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def _copies(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path / "castroom.db") as db:
        return db.execute("SELECT production, version FROM read_copies").fetchall()


def _reads_copy(path: Path) -> bool:
    with Workspace.open(path) as ws:
        return isinstance(ws.reading().doc, ReadCopy)


def test_read_commands_answer_the_same_from_the_copy(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    production_id = _sample_with_a_bad_peer(path)
    assert _copies(path) == []
    first = {args: _run(path, *args) for args in READS}  # from the CRDT
    assert [p for p, _ in _copies(path)] == [production_id]
    assert _reads_copy(path)
    again = {args: _run(path, *args) for args in READS}
    assert again == first
    assert first[("check", "--json")][0] == 1  # the invalid entities are errors
    assert "rate" in first[("invalid",)][1]


def test_a_production_made_here_is_read_from_its_copy_from_the_first_read(
    tmp_path: Path,
) -> None:
    # The process that creates a production keeps its copy then (it holds nothing yet)
    # and patches it with what it writes; every later writer patches it too: no read
    # of it is ever the cold one.
    path = tmp_path / "ws"
    assert _run(path, "init", "--production", "Tides")[0] == 0
    assert _run(path, "add", "talent", "name=Ada Stone", "agent=Nell Park")[0] == 0
    with Workspace.open(path) as ws:
        assert read_copy.is_current(ws.store, ws.resolve_production())
    assert _reads_copy(path)
    from_copy = {args: _run(path, *args) for args in READS}
    assert "Nell Park" in from_copy[("list", "talents", "--json")][1]
    drop_read_copies(path)
    assert {args: _run(path, *args) for args in READS} == from_copy  # as from the CRDT
    assert {args: _run(path, *args) for args in READS} == from_copy  # and a fresh copy


def _current(path: Path, production_id: str) -> bool:
    """Whether the stored read copy holds the log's position (no read made to know)."""
    with Workspace.open(path) as ws:
        return read_copy.is_current(ws.store, production_id)


@pytest.mark.parametrize("closes_first", ["the first writer", "the second writer"])
def test_two_writers_at_once_leave_a_copy_of_both(tmp_path: Path, closes_first: str) -> None:
    path = tmp_path / "ws"
    production_id = _sample_with_a_bad_peer(path)
    _run(path, "list", "talents", "--json")
    [(_, before)] = _copies(path)
    # Two processes write at once, the same field of one talent too: whichever closes
    # first merges the other's row and folds it in from the log (what each changed);
    # the other then finds the copy where the log is.
    one, other = Workspace.open(path), Workspace.open(path)
    try:
        talents = one.production().doc.all(Talent)
        ada, ben = talents[1].id, talents[2].id
        first, second = one.production(), other.production()
        first.doc.update(Talent, ada, {"agent": "Mira Vale"})
        second.doc.update(Talent, ada, {"agent": "Nell Park", "union": "Equity"})
        second.doc.delete(Talent, ben)
        first.doc.add(Talent, name="Ola Brand", rate=900)
        assert _copies(path) == [(production_id, before)]  # stale while both are open
        (one if closes_first == "the first writer" else other).close()
        assert _current(path, production_id)
    finally:
        one.close()
        other.close()
    assert _copies(path)[0][1] != before and _current(path, production_id)
    folded = _answers(path)
    shown = folded[("list", "talents", "--json")][1]
    assert isinstance(shown, list)
    assert {"Ola Brand", "Equity"} <= {t["name"] for t in shown} | {t["union"] for t in shown}
    assert ben not in {t["id"] for t in shown}
    drop_read_copies(path)
    assert _answers(path) == folded  # from the CRDT: the same answers
    assert _answers(path) == folded  # from a whole new copy: the same


def _parsed(text: str) -> object:
    """A command's JSON, parsed (Yrs's key order inside an entity varies from one load
    to the next), after any line said before it ("1 invalid talent hidden")."""
    lines = text.splitlines(keepends=True)
    while lines and not lines[0].startswith(("[", "{")):
        lines.pop(0)
    return json.loads("".join(lines))


def _answers(path: Path) -> dict[tuple[str, ...], tuple[int, object]]:
    """Each read-only command's exit code and output (but ``show``'s: it prints an
    invalid role's stored eras in Yrs's key order, which varies between loads)."""
    out: dict[tuple[str, ...], tuple[int, object]] = {}
    for args in READS:
        if args[0] == "show":
            continue
        code, text = _run(path, *args)
        out[args] = (code, _parsed(text) if "--json" in args else text)
    return out


def test_a_write_command_patches_the_copy_it_opened_at(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    production_id = _sample_with_a_bad_peer(path)
    _run(path, "check")
    [(_, before)] = _copies(path)
    talents = _parsed(_run(path, "list", "talents", "--json")[1])
    assert isinstance(talents, list)
    for args in (
        ("set", "talent", talents[1]["id"], "agent=Nell Park"),
        ("add", "talent", "name=Ola Brand", "rate=900"),
        ("delete", "talent", talents[2]["id"]),
    ):
        code, out = _run(path, *args)
        assert code == 0, out
        with Workspace.open(path) as ws:  # each write leaves a copy of where it wrote to
            position = ws.store.position(production_id)
        assert _copies(path) == [(production_id, read_copy.version(position))]
        assert _reads_copy(path)
    assert _copies(path)[0][1] != before
    patched = _answers(path)
    drop_read_copies(path)
    assert _answers(path) == patched  # from the CRDT: the same answers
    assert _answers(path) == patched  # from a whole new copy: the same
    shown = patched[("list", "talents", "--json")][1]
    assert {"Nell Park", "Ola Brand"} <= {t["agent"] or t["name"] for t in shown}  # type: ignore[union-attr]


def test_a_patched_copy_keeps_its_verdicts_only_where_they_still_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(read_copy, "SPLIT_PAST", 4096)  # the sample's talents: split
    doc = CastDocument.create("Tides")
    build_sample(doc)
    for cls in COLLECTIONS.values():
        doc.all(cls)  # read whole: each kind's verdict is recorded
    head, parts = read_copy.encode(doc)
    talent, role = doc.all(Talent)[0], doc.all(Role)[0]
    doc.delete(Talent, talent.id)
    peer = Doc()
    peer.apply_update(doc.encode_update())
    peer.get("roles", type=Map)[role.id]["kind"] = "villain"  # a peer leaves it invalid
    doc.apply_update(peer.get_update(doc.state_vector()))
    changes = {("talents", talent.id): {"deleted"}, ("roles", role.id): {"kind"}}
    head, parts = _patched(head, parts, doc, changes)
    assert "talents" not in parts and read_copy.bucket("talents", talent.id) in parts  # split
    copy = read_copy.decode(head, parts)
    assert copy is not None
    assert copy._known_valid(Talent) == [talent.id]  # still all valid: one more deleted
    assert copy._known_valid(Role) is None  # validated when read, and found invalid
    assert [e.id for e in copy.invalid()] == [e.id for e in doc.invalid()] == [role.id]
    assert copy.to_data() == doc.to_data()
    # A split collection is patched bucket by bucket: an entity added, one removed.
    added = doc.add(Talent, name="Ola Brand")
    gone = doc.all(Talent)[3]
    peer.apply_update(doc.encode_update(peer.get_state()))
    del peer.get("talents", type=Map)[gone.id]  # a peer's hard delete
    doc.apply_update(peer.get_update(doc.state_vector()))
    changes = {("talents", added.id): {"*"}, ("talents", gone.id): {"*"}}
    head, parts = _patched(head, parts, doc, changes)
    copy = read_copy.decode(head, parts)
    assert copy is not None and copy.to_data() == doc.to_data()
    assert set(copy.ids(Talent)) == set(doc.ids(Talent)) and gone.id not in copy.ids(Talent)
    assert read_copy.patch(b"not a read copy", {}, doc, changes) is None


#: A small production, as bench_store's: every collection far under SPLIT_PAST.
SMALL = SampleSize(talents=8, roles=10, scenes=6, shoot_days=4)


def _same_reads(copy: ReadCopy | None, doc: CastDocument) -> None:
    """The copy answers every typed read as the CRDT does."""
    assert copy is not None and copy.to_data() == doc.to_data()
    for cls in COLLECTIONS.values():
        assert copy.all(cls, include_deleted=True) == doc.all(cls, include_deleted=True)
        assert sorted(copy.ids(cls)) == sorted(doc.ids(cls))
        assert copy.held(cls) == doc.held(cls)
    assert [e.id for e in copy.invalid()] == [e.id for e in doc.invalid()]


def test_a_small_collection_is_patched_whole_and_deflated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = CastDocument.create("Small Hours")
    build_sample(doc, SMALL)
    head, parts = read_copy.encode(doc)
    # One part per collection, each deflated: 64 buckets of a few entities cost a row
    # and most of a page each (bench_store: a 60 KB production's copy took 63 KB).
    assert sorted(parts) == sorted(COLLECTIONS)
    raw = {
        name: len(msgspec.msgpack.encode(read_copy.unpack(data))) for name, data in parts.items()
    }
    assert all(len(parts[name]) < raw[name] for name in parts if raw[name] > 200)
    assert sum(map(len, parts.values())) < len(doc.encode_update()) / 3
    talent, gone = doc.all(Talent)[:2]
    doc.update(Talent, talent.id, {"agent": "Nell Park"})
    added = doc.add(Talent, name="Ola Brand")
    peer = Doc()
    peer.apply_update(doc.encode_update())
    del peer.get("talents", type=Map)[gone.id]  # a peer's hard delete
    doc.apply_update(peer.get_update(doc.state_vector()))
    changes = {("talents", i): {"*"} for i in (talent.id, added.id, gone.id)}
    head, parts = _patched(head, parts, doc, changes)
    assert sorted(parts) == sorted(COLLECTIONS)  # patched whole: nothing split
    assert parts["talents"][:1] == b"\x78"  # and deflated again
    _same_reads(read_copy.decode(head, parts), doc)
    # Grown past SPLIT_PAST, it is split from then on, bucket by bucket.
    monkeypatch.setattr(read_copy, "SPLIT_PAST", len(parts["talents"]) + 1)
    more = [doc.add(Talent, name=f"Talent {i}", notes="x" * 500) for i in range(20)]
    changes = {("talents", t.id): {"*"} for t in more}
    head, parts = _patched(head, parts, doc, changes)
    assert "talents" not in parts and read_copy.bucket("talents", more[0].id) in parts
    _same_reads(read_copy.decode(head, parts), doc)
    changes = {("talents", talent.id): {"agent"}}
    doc.update(Talent, talent.id, {"agent": "Pia Quay"})
    head, parts = _patched(head, parts, doc, changes)
    _same_reads(read_copy.decode(head, parts), doc)


def test_a_small_productions_copy_stays_small_in_the_store(tmp_path: Path) -> None:
    # bench_store's small production: its copy, kept from its creation and patched by
    # every later write, in one part per collection and a fraction of the document.
    path = tmp_path / "ws"
    with Workspace.open(path, create=True, member="casting") as ws:
        production = ws.create_production("Small Hours")
        with production.doc.transaction():
            build_sample(production.doc, SMALL)
        production_id = production.id
        assert production_id is not None
    for round_ in range(3):
        with Workspace.open(path) as ws:
            production = ws.production(production_id)
            for talent in production.doc.all(Talent):
                production.doc.update(Talent, talent.id, {"rate": 100_000 + round_})
            document = len(production.doc.encode_update())
    with Workspace.open(path) as ws:
        assert read_copy.is_current(ws.store, production_id)
        sizes = ws.store.read_copy_part_sizes(production_id)
        reader = ws.reading(production_id)
        assert isinstance(reader.doc, ReadCopy)
        copy_answers = reader.doc.to_data()
    assert sorted(sizes) == sorted(COLLECTIONS)
    assert sum(sizes.values()) < document / 3
    with Workspace.open(path) as ws:
        assert copy_answers == ws.production(production_id).doc.to_data()


def _patched(
    head: bytes,
    parts: dict[str, bytes],
    doc: CastDocument,
    changes: dict[tuple[str, str], set[str]],
) -> tuple[bytes, dict[str, bytes]]:
    """A copy patched as the store keeps it: the parts wanted read, put and dropped."""
    names = read_copy.wanted(head, changes)
    assert names is not None
    patched = read_copy.patch(head, {n: parts[n] for n in names if n in parts}, doc, changes)
    assert patched is not None
    kept = {n: data for n, data in parts.items() if n not in patched.drop}
    return patched.head, {**kept, **patched.put}


def test_a_copy_that_cannot_be_used_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    production_id = _sample_with_a_bad_peer(path)
    expected = _run(path, "check", "--json")
    [(_, version)] = _copies(path)
    with Workspace.open(path) as ws:
        parts = ws.store.read_copy_parts(production_id)
        ws.store.keep_read_copy(production_id, version, b"not a read copy", parts)
    assert not _reads_copy(path)
    assert _run(path, "check", "--json") == expected
    with Workspace.open(path) as ws:  # a copy of a newer schema: open the CRDT (it warns)
        layout = msgspec.msgpack.decode(
            ws.store.read_copy(production_id)[1],  # type: ignore[index]
            type=read_copy.Layout,
        )
        newer = msgspec.structs.replace(layout, meta='{"schema_version": 99}')
        parts = ws.store.read_copy_parts(production_id)
        assert read_copy.decode(msgspec.msgpack.encode(newer), parts) is None
        assert read_copy.decode(msgspec.msgpack.encode(layout), parts)
    assert _run(path, "check", "--json") == expected


def test_a_copy_cannot_be_written_and_writes_open_the_crdt(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    _sample_with_a_bad_peer(path)
    _run(path, "list", "talents")
    with Workspace.open(path) as ws:
        copy = ws.reading().doc
        assert isinstance(copy, ReadCopy)
        with pytest.raises(ReadOnlyCopy):
            copy.update(Talent, copy.all(Talent)[0].id, {"agent": "X"})
        with pytest.raises(ReadOnlyCopy):
            copy.state_vector()
        # The writable production is the CRDT, and reading afterwards uses it too.
        production = ws.production()
        assert not isinstance(production.doc, ReadCopy)
        assert ws.reading() is production
    talent = copy.all(Talent)[0]
    code, out = _run(path, "set", "talent", talent.id, "agent=Nell Park")
    assert code == 0, out
    _, shown = _run(path, "list", "talents", "--json", "--where", "agent=Nell Park")
    assert talent.id in shown


def test_a_copy_refuses_everything_a_cast_document_adds_to_the_reads() -> None:
    # A read copy is only the typed reads (no pycrdt): each public method CastDocument
    # has beyond them must be refused on a copy, not missing (an AttributeError).
    from castroom.core.reads import DocumentReads

    added = {
        name
        for name in dir(CastDocument)
        if not name.startswith("_")
        and callable(getattr(CastDocument, name))
        and not hasattr(DocumentReads, name)
    }
    # create() makes a new CastDocument; is_empty() answers on a copy (False).
    assert added - {"create", "is_empty"} == set(read_copy.WRITES)
    doc = CastDocument.create("Tides")
    copy = read_copy.decode(*read_copy.encode(doc))
    assert copy is not None and copy.production.title == "Tides" and not copy.is_empty()
    for name in read_copy.WRITES:
        with pytest.raises(ReadOnlyCopy):
            getattr(copy, name)()


def test_collection_json_follows_every_change() -> None:
    """The JSON a read copy stores is remembered per collection until any transaction:
    a local write, or a peer's update merged."""
    doc = CastDocument.create("Tides")
    doc.keep_json = True
    ada = doc.add(Talent, name="Ada Stone")
    assert [t.name for t in doc.all(Talent)] == ["Ada Stone"]
    doc.update(Talent, ada.id, {"name": "Ada Stone-Vale"})
    doc._cache.clear()  # read what the JSON says, not what the typed API remembered
    assert [t.name for t in doc.all(Talent)] == ["Ada Stone-Vale"]
    peer = Doc()
    peer.apply_update(doc.encode_update())
    peer.get("talents", type=Map)[ada.id]["agent"] = "Mira Vale"
    doc.apply_update(peer.get_update(doc.state_vector()), origin="sync")
    _, _, collections, keys = doc.layout_json()
    assert "Mira Vale" in collections["talents"] and keys["talents"] == [ada.id]
    with doc.transaction():  # read mid-write: not kept past the write
        doc.add(Candidate, talent_id=ada.id, role_id=doc.add(Role, name="Nora").id)
        assert len(doc.all(Candidate)) == 1
        doc.add(Candidate, talent_id=ada.id, role_id=doc.add(Role, name="Ida").id)
    doc._cache.clear()
    assert len(doc.all(Candidate)) == 2
    doc.layout_json()
    assert set(doc._json) == set(collections)
    served = CastDocument.create("Tides")  # not opened to be read (a server's): nothing kept
    served.add(Talent, name="Ada Stone")
    served.layout_json()
    assert served._json == {}


def _typed_reads(doc: CastDocument) -> dict[str, object]:
    """Everything the typed API answers about the tricky entities below, and about all."""
    out: dict[str, object] = {"invalid": doc.invalid()}
    for cls in (Talent, Role, Candidate):
        out[f"{cls.collection} live"] = doc.all(cls)
        out[f"{cls.collection} all"] = doc.all(cls, include_deleted=True)
        out[f"{cls.collection} by_id"] = list(doc.by_id(cls).items())
        out[f"{cls.collection} by_id all"] = list(doc.by_id(cls, include_deleted=True).items())
    for key in ("T-bad", "T-gone", "T-key", "T-ok", "T-none", "T-pad"):
        out[key] = (doc.find(Talent, key), doc.find(Talent, key, include_deleted=True))
    out["C-1"] = (doc.find(Candidate, "C-1"), doc.find(Candidate, "C-2"))
    return out


@pytest.mark.parametrize("first", ["find", "all"])
def test_a_copy_reads_typed_entities_as_the_crdt_does(first: str) -> None:
    """A read copy decodes a collection whole into Structs when all of it is valid, else
    entity by entity; looked up before or after it is read whole, every typed read
    answers as from the CRDT: invalid, deleted, keyed-under-another-id entities, a
    backup listed twice (two peers moving it), and a kind that is all valid."""
    doc = CastDocument.create("Tides")
    doc.put_many(
        [
            Talent(id="T-ok", name="Ada Stone", rate=1500),
            Talent(id="T-gone", name="Ida Marsh", deleted=True),
            Talent(id="T-bad", name="Nell Park"),
            Talent(id="T-key", name="Mira Vale"),
            Talent(id="T-pad", name="Kit Lane"),
            Role(id="R-nora", name="Nora", backups=["T-ok"]),
            Candidate(id="C-1", talent_id="T-ok", role_id="R-nora", stage="booked"),
        ]
    )
    peer = Doc()
    peer.apply_update(doc.encode_update())
    talents = peer.get("talents", type=Map)
    talents["T-bad"]["rate"] = -5  # invalid under the model
    talents["T-key"]["id"] = "T-other"  # the key is the identity
    talents["T-pad"]["name"] = "  Kit Lane "  # validate() strips a name
    peer.get("candidates", type=Map)["C-1"]["id"] = "C-2"  # in a kind otherwise valid
    peer.get("roles", type=Map)["R-nora"]["backups"].append("T-ok")  # listed twice
    doc.apply_update(peer.get_update(doc.state_vector()), origin="sync")
    copy = read_copy.decode(*read_copy.encode(doc))
    assert isinstance(copy, ReadCopy)
    if first == "find":  # looked up one by one before anything is read whole
        assert copy.find(Talent, "T-key") is not None and copy.find(Talent, "T-bad") is None
    expected = _typed_reads(doc)
    assert _typed_reads(copy) == expected
    assert [i.id for i in expected["invalid"]] == ["T-bad"]  # type: ignore[attr-defined]
    assert doc.get(Role, "R-nora").backups == ["T-ok"]
    assert copy.get(Role, "R-nora").backups == ["T-ok"]
    assert copy.get(Candidate, "C-1").id == "C-1"
    assert copy.get(Talent, "T-pad").name == doc.get(Talent, "T-pad").name == "Kit Lane"


@pytest.mark.parametrize("first", ["find", "all"])
def test_every_read_strips_a_name_a_peer_padded(first: str) -> None:
    """A name a peer wrote with spaces around it reads stripped, as validate() makes it,
    whether the entity is decoded alone or with its whole (otherwise valid) collection,
    from the CRDT or from a read copy."""
    doc = CastDocument.create("Tides")
    doc.put_many([Talent(id=f"T-{n:02d}", name=f"Talent {n}") for n in range(12)])
    peer = Doc()
    peer.apply_update(doc.encode_update())
    peer.get("talents", type=Map)["T-03"]["name"] = " Kit Lane  "
    doc.apply_update(peer.get_update(doc.state_vector()), origin="sync")
    copy = read_copy.decode(*read_copy.encode(doc))
    assert isinstance(copy, ReadCopy)
    for source in (doc, copy):
        if first == "find":
            assert source.get(Talent, "T-03").name == "Kit Lane"
        assert {t.id: t.name for t in source.all(Talent)}["T-03"] == "Kit Lane"
        assert source.get(Talent, "T-03").name == "Kit Lane"
        assert source.invalid() == []


def test_a_copy_knows_which_kinds_it_found_valid(tmp_path: Path) -> None:
    """A copy records the collections its maker read whole and found valid (with their
    deleted ids), under the rules that judged them: a check of the copy then reports the
    same findings without decoding the talents it only needs the ids of; under other
    rules, or for a collection not recorded, it decodes and judges again."""
    path = tmp_path / "ws"
    _sample_with_a_bad_peer(path)  # one talent and one role invalid
    with Workspace.open(path) as ws:  # a valid collection with a deleted entity
        production = ws.production()
        production.doc.delete(Candidate, production.doc.all(Candidate)[0].id)
    expected = _run(path, "check", "--json")  # from the CRDT: a copy is kept
    with Workspace.open(path) as ws:
        copy = ws.reading().doc
        assert isinstance(copy, ReadCopy)
        valid = copy._layout.valid
        assert "talents" not in valid and "roles" not in valid  # each holds an invalid one
        live = set(copy.live_ids(Candidate))  # known from the record, nothing decoded
        assert Candidate not in copy._by_id
        deleted = [c.id for c in copy.all(Candidate, include_deleted=True) if c.deleted]
        assert valid["candidates"] == deleted and len(deleted) == 1
        assert (
            live == {c.id for c in copy.all(Candidate)} == set(copy.ids(Candidate)) - {deleted[0]}
        )
        assert copy._layout.rules == read_copy.rules()
    assert _run(path, "check", "--json") == expected
    assert _run(path, "invalid") == _run(path, "invalid")

    # A copy whose every kind is valid: check decodes only the talents it looks up.
    clean = tmp_path / "clean"
    with Workspace.open(clean, member="tester") as ws:
        build_sample(ws.create_production("Tides").doc)
    expected = _run(clean, "check", "--json")
    with Workspace.open(clean) as ws:
        production = ws.reading()
        copy = production.doc
        assert isinstance(copy, ReadCopy) and set(copy._layout.valid) == set(COLLECTIONS)
        view = ProductionView(copy, origin_of=production.origin_of)
        found = make_plugins().check(view)
        assert Talent not in copy._by_id  # known valid: never decoded whole
        assert [f.code for f in found] == [f["code"] for f in json.loads(expected[1])["findings"]]
        judged_again = ReadCopy(
            msgspec.structs.replace(copy._layout, rules="other"),
            production.store.read_copy_parts(str(production.id)),
        )
        assert judged_again.invalid() == [] and Talent in judged_again._by_id
    assert _run(clean, "check", "--json") == expected

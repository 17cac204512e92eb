"""Bundles for offline crews: create, --for a state file, apply into an empty workspace,
and refusal (with nothing changed) of corrupt, foreign or truncated files."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from castroom.core import bundle as bundles
from castroom.core.errors import BadUpdate, CastroomError
from castroom.core.model import Member, Role, Talent
from castroom.core.workspace import Workspace


@pytest.fixture
def home(tmp_path: Path):
    ws = Workspace.open(tmp_path / "home", member="ana")
    production = ws.create_production("Tides", kind="series")
    production.doc.add(Talent, id="t1", name="Ada", rate=100)
    production.doc.add(Role, id="r1", name="Maya", backups=["t1"])
    yield ws
    ws.close()


def state_of(ws: Workspace) -> dict:
    return {pid: ws.production(pid).doc.to_data() for pid, _ in ws.productions()}


def test_create_and_apply_into_a_new_empty_workspace(home: Workspace, tmp_path: Path) -> None:
    made = bundles.create(home, tmp_path / "b.castroom")
    assert [e.title for e in made.productions] == ["Tides"]
    with Workspace.open(tmp_path / "newcomer", member="bo") as newcomer:
        moved = bundles.apply(newcomer, tmp_path / "b.castroom")
        assert list(moved) == [home.production().id] and moved[home.production().id] >= 2
        assert newcomer.productions() == home.productions()
        assert state_of(newcomer) == state_of(home)
        assert newcomer.production().history(limit=1)[0].origin == "bundle"
    with Workspace.open(tmp_path / "newcomer") as again:  # durable
        assert again.production().doc.get(Talent, "t1").name == "Ada"


def test_apply_twice_is_harmless(home: Workspace, tmp_path: Path) -> None:
    bundles.create(home, tmp_path / "b.castroom")
    with Workspace.open(tmp_path / "other") as other:
        bundles.apply(other, tmp_path / "b.castroom")
        before = state_of(other)
        moved = bundles.apply(other, tmp_path / "b.castroom")
        assert all(count == 0 for count in moved.values())
        assert state_of(other) == before


def test_a_production_the_peer_has_all_of_is_left_out(home: Workspace, tmp_path: Path):
    other = home.create_production("Harbour")
    bundles.create(home, tmp_path / "full.castroom")
    with Workspace.open(tmp_path / "peer") as peer:
        bundles.apply(peer, tmp_path / "full.castroom")
        bundles.write_state(peer, tmp_path / "peer.state")
    other.doc.add(Role, name="Ghost")
    delta = bundles.create(home, tmp_path / "d.castroom", for_state=tmp_path / "peer.state")
    assert [e.title for e in delta.productions] == ["Harbour"]  # not Tides: nothing new
    with Workspace.open(tmp_path / "peer") as peer:
        assert bundles.apply(peer, tmp_path / "d.castroom") == {other.id: 1}


def test_for_state_file_writes_only_what_the_peer_lacks(home: Workspace, tmp_path: Path):
    full = bundles.create(home, tmp_path / "full.castroom")
    with Workspace.open(tmp_path / "peer") as peer:
        bundles.apply(peer, tmp_path / "full.castroom")
        assert bundles.write_state(peer, tmp_path / "peer.state") == 1
    home.production().doc.update(Talent, "t1", {"rate": 250})
    home.production().doc.add(Talent, id="t2", name="Bo")
    delta = bundles.create(home, tmp_path / "delta.castroom", for_state=tmp_path / "peer.state")
    assert len(delta.productions[0].update) < len(full.productions[0].update)
    with Workspace.open(tmp_path / "peer") as peer:
        bundles.apply(peer, tmp_path / "delta.castroom")
        assert state_of(peer) == state_of(home)


def test_two_offline_members_converge_through_bundles(home: Workspace, tmp_path: Path):
    bundles.create(home, tmp_path / "start.castroom")
    with Workspace.open(tmp_path / "bo", member="bo") as bo:
        bundles.apply(bo, tmp_path / "start.castroom")
        home.production().doc.update(Talent, "t1", {"hair": "red"})
        bo.production().doc.update(Talent, "t1", {"eyes": "green"})
        bo.production().doc.add(Talent, id="t3", name="Cy")
        bundles.create(home, tmp_path / "from-ana.castroom")
        bundles.create(bo, tmp_path / "from-bo.castroom")
        bundles.apply(bo, tmp_path / "from-ana.castroom")
        bundles.apply(home, tmp_path / "from-bo.castroom")
        assert state_of(bo) == state_of(home)
        talent = bo.production().doc.get(Talent, "t1")
        assert (talent.hair, talent.eyes) == ("red", "green")


def refused(target: Workspace, path: Path, message: str) -> None:
    before = (
        target.productions(),
        state_of(target),
        target.store.db.execute("SELECT COUNT(*) FROM updates").fetchone()[0],
    )
    with pytest.raises(BadUpdate) as info:
        bundles.apply(target, path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    after = (
        target.productions(),
        state_of(target),
        target.store.db.execute("SELECT COUNT(*) FROM updates").fetchone()[0],
    )
    assert after == before


def test_corrupt_truncated_and_foreign_files_are_refused(home: Workspace, tmp_path: Path):
    good = tmp_path / "good.castroom"
    bundles.create(home, good)
    data = good.read_bytes()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    cases = {
        "corrupt.castroom": (bytes(flipped), "checksum"),
        "truncated.castroom": (data[: len(data) - 20], "checksum"),
        "tiny.castroom": (data[:10], "not a castroom bundle"),
        "empty.castroom": (b"", "not a castroom bundle"),
        "foreign.zip": (b"PK\x03\x04" + b"\x00" * 100, "not a castroom bundle"),
    }
    with Workspace.open(tmp_path / "target") as target:
        for name, (content, message) in cases.items():
            (tmp_path / name).write_bytes(content)
            refused(target, tmp_path / name, message)
        refused(home, tmp_path / "corrupt.castroom", "checksum")
        with pytest.raises(BadUpdate, match="cannot read bundle"):
            bundles.apply(target, tmp_path / "missing.castroom")
        assert target.productions() == []


def seal(tmp_path: Path, name: str, bundle: bundles.Bundle) -> Path:
    path = tmp_path / name
    path.write_bytes(bundles._seal(bundles.BUNDLE_MAGIC, msgspec.msgpack.encode(bundle)))
    return path


def test_well_sealed_bundles_with_bad_content_change_nothing(home: Workspace, tmp_path: Path):
    good = bundles.read(bundles.create(home, tmp_path / "g.castroom") and tmp_path / "g.castroom")
    entry = good.productions[0]
    with Workspace.open(tmp_path / "target") as target:
        # A second entry whose update is garbage: the first entry must not be merged either.
        bad = bundles.Bundle(
            version=1,
            created=0,
            member="x",
            device="y",
            productions=[
                entry,
                bundles.BundleEntry(id="P2", title="Bad", update=b"\x05garbage-bytes"),
            ],
        )
        refused(target, seal(tmp_path, "bad.castroom", bad), "P2")
        # An update that belongs to another production than its entry claims.
        liar = bundles.Bundle(
            version=1,
            created=0,
            member="x",
            device="y",
            productions=[
                bundles.BundleEntry(id="SOMEONE-ELSE", title="Tides", update=entry.update),
            ],
        )
        refused(target, seal(tmp_path, "liar.castroom", liar), "another production")
        future = bundles.Bundle(version=99, created=0, member="x", device="y", productions=[])
        refused(target, seal(tmp_path, "future.castroom", future), "not supported")
        path = tmp_path / "notmsgpack.castroom"
        path.write_bytes(bundles._seal(bundles.BUNDLE_MAGIC, b"\xc1\xc1\xc1"))
        refused(target, path, "cannot be decoded")


def test_bad_state_files_are_refused(home: Workspace, tmp_path: Path) -> None:
    (tmp_path / "x.state").write_bytes(b"garbage")
    with pytest.raises(BadUpdate, match="state"):
        bundles.create(home, tmp_path / "b.castroom", for_state=tmp_path / "x.state")
    assert not (tmp_path / "b.castroom").exists()
    bundles.create(home, tmp_path / "b.castroom")
    with pytest.raises(BadUpdate, match="state"):  # a bundle is not a state file
        bundles.read_state(tmp_path / "b.castroom")


def test_history_after_apply_names_the_member_who_made_the_changes(
    home: Workspace, tmp_path: Path
) -> None:
    bundles.create(home, tmp_path / "b.castroom")
    with Workspace.open(tmp_path / "bo-ws", member="bo") as bo:
        bundles.apply(bo, tmp_path / "b.castroom")
        [first] = bo.production().history(limit=1)
        assert (first.member, first.origin) == ("ana", "bundle")  # ana made them, not bo
        bundles.write_state(home, tmp_path / "home.state")
        bo.production().doc.update(Talent, "t1", {"rate": 300})
        bundles.create(bo, tmp_path / "back.castroom", for_state=tmp_path / "home.state")
    bundles.apply(home, tmp_path / "back.castroom")
    [latest] = home.production().history(limit=1, entity="t1")
    assert (latest.member, latest.origin, latest.changes) == (
        "bo",
        "bundle",
        [("talents", "t1", ["rate"])],
    )
    with Workspace.open(tmp_path / "home") as reopened:  # durable, as the CLI shows it
        assert reopened.production().history(limit=1, entity="t1")[0].member == "bo"


def test_sync_update_from_a_known_device_names_its_member(home: Workspace, tmp_path: Path):
    production = home.production()
    production.doc.add(Member, id="m-bo", name="Bo Lind", devices=["BO-LAPTOP"])
    with Workspace.open(tmp_path / "bo-ws", member="bo") as bo:
        theirs, _ = bo.adopt(production.id, production.doc.encode_update(), origin="sync")
        before = production.doc.state_vector()
        theirs.doc.update(Talent, "t1", {"rate": 400})
        update = theirs.doc.encode_update(before)
    production.apply_update(update, origin="sync", device="BO-LAPTOP")
    assert production.history(limit=1)[0].member == "Bo Lind"


def test_writing_into_a_missing_folder_is_one_clear_error(home: Workspace, tmp_path: Path):
    for write in (bundles.create, bundles.write_state):
        target = tmp_path / "no-such-folder" / "x.out"
        with pytest.raises(CastroomError, match=r"^cannot write .*x\.out: No such file"):
            write(home, target)
        assert not target.parent.exists()


@pytest.mark.parametrize("evil", ["../../x", "/tmp/abs", "..", "a/b"])
def test_a_production_id_that_is_a_path_is_refused(
    home: Workspace, tmp_path: Path, evil: str
) -> None:
    """The id names folders in a shared folder later: it must be a plain name."""
    from pycrdt import Doc, Map

    good = bundles.read(bundles.create(home, tmp_path / "g.castroom") and tmp_path / "g.castroom")
    doc = Doc()
    doc.apply_update(good.productions[0].update)
    doc.get("production", type=Map)["id"] = evil
    bundle = bundles.Bundle(
        version=1,
        created=0,
        member="x",
        device="y",
        productions=[bundles.BundleEntry(id=evil, title="Evil", update=doc.get_update())],
    )
    with Workspace.open(tmp_path / "target") as target:
        refused(target, seal(tmp_path, "evil.castroom", bundle), f"production id {evil!r} is not")

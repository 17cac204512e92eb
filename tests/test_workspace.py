"""Workspaces: config and identity, durable writes, several processes, open = snapshot +
tail, and compaction that keeps every peer able to sync."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from patience import PATIENCE
from pycrdt import Doc, Map

from castroom.core import model
from castroom.core.document import CastDocument
from castroom.core.errors import (
    Ambiguous,
    BadUpdate,
    CastroomError,
    NotFound,
    SkippedStoredUpdates,
    StorageError,
)
from castroom.core.model import Role, Talent
from castroom.core.workspace import ProductionDeleted, Workspace, default_path


def run_child(code: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_open_creates_config_identity_and_database(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws", member="rosa") as ws:
        assert ws.identity.member == "rosa" and len(ws.identity.device_id) == 26
        assert (tmp_path / "ws" / "castroom.db").exists()
        config = tomllib.loads((tmp_path / "ws" / "config.toml").read_text())
        assert config["identity"]["device_id"] == ws.identity.device_id
        device = ws.identity.device_id
    with Workspace.open(tmp_path / "ws") as again:  # the device id is stable
        assert again.identity.device_id == device and again.identity.member == "rosa"


def test_open_without_create_and_bad_config(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        Workspace.open(tmp_path / "none", create=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.toml").write_text("identity = [not toml")
    with pytest.raises(StorageError):
        Workspace.open(tmp_path / "bad")
    (tmp_path / "mode").mkdir()
    (tmp_path / "mode" / "config.toml").write_text(
        '[identity]\nmember = "a"\ndevice_id = "D1"\ndevice_name = "h"\n'
        '[storage]\nsynchronous = "SOMETIMES"\n'
    )
    with pytest.raises(CastroomError):
        Workspace.open(tmp_path / "mode")


def test_default_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("CASTROOM_WORKSPACE", str(tmp_path / "env-ws"))
    assert default_path() == tmp_path / "env-ws"
    monkeypatch.delenv("CASTROOM_WORKSPACE")
    assert "castroom" in str(default_path())


def test_every_write_is_durable_before_returning(workspace: Workspace, tmp_path: Path) -> None:
    production = workspace.create_production("Tides", kind="series")
    ada = production.doc.add(Talent, name="Ada", rate=100)
    production.doc.update(Talent, ada.id, {"rate": 200})
    # A separate connection (as another process would) sees it at once.
    with Workspace.open(tmp_path / "ws") as other:
        assert other.production().doc.get(Talent, ada.id).rate == 200
        assert other.production("Tides").id == production.id


def test_resolving_productions(workspace: Workspace) -> None:
    with pytest.raises(NotFound):
        workspace.production()
    first = workspace.create_production("Tides")
    second = workspace.create_production("Harbour")
    with pytest.raises(Ambiguous):
        workspace.production()
    assert workspace.production("tides").id == first.id
    # Ids made in one millisecond differ only at the end (monotonic ULIDs).
    prefix = next(first.id[:n] for n in range(4, 27) if not second.id.startswith(first.id[:n]))
    assert workspace.production(prefix).id == first.id
    with pytest.raises(NotFound):
        workspace.production("Nope")


def test_title_changes_reach_the_production_list(workspace: Workspace) -> None:
    production = workspace.create_production("Tides")
    production.doc.update_production({"title": "Tides of Time"})
    assert workspace.productions() == [(production.id, "Tides of Time")]


def test_history_records_who_changed_what(workspace: Workspace) -> None:
    production = workspace.create_production("Tides")
    ada = production.doc.add(Talent, name="Ada")
    production.doc.update(Talent, ada.id, {"rate": 5, "hair": "red"})
    entries = production.history()
    assert entries[0].changes == [("talents", ada.id, ["hair", "rate"])]
    assert entries[0].member == "tester" and entries[0].device == workspace.identity.device_id
    assert entries[1].changes == [("talents", ada.id, ["*"])]
    assert entries[-1].changes == [("production", production.id, ["*"])]


def test_two_processes_see_each_others_writes_without_restarting(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    with Workspace.open(path) as ws:
        production = ws.create_production("Tides")
        doc = production.doc
        ada = doc.add(Talent, name="Ada")
        # Another process (a CLI command) writes while we hold the production open.
        run_child(
            """
            import sys
            from castroom.core.workspace import Workspace
            from castroom.core.model import Talent
            with Workspace.open(sys.argv[1]) as ws:
                doc = ws.production().doc
                doc.update(Talent, sys.argv[2], {"rate": 4242})
                doc.add(Talent, id="from-child", name="Bo")
            """,
            str(path),
            ada.id,
        )
        assert doc.get(Talent, ada.id).rate == 4242  # no reopen needed
        assert doc.get(Talent, "from-child").name == "Bo"
        doc.update(Talent, ada.id, {"hair": "red"})
        out = run_child(
            """
            import sys
            from castroom.core.workspace import Workspace
            from castroom.core.model import Talent
            with Workspace.open(sys.argv[1]) as ws:
                t = ws.production().doc.get(Talent, sys.argv[2])
                print(t.hair, t.rate)
            """,
            str(path),
            ada.id,
        )
        assert out.split() == ["red", "4242"]


def test_open_is_snapshot_plus_tail(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    with Workspace.open(path) as ws:
        production = ws.create_production("Tides")
        for i in range(30):
            production.doc.add(Talent, id=f"t{i}", name=f"T{i}", rate=i)
        production.compact()
        production.doc.update(Talent, "t1", {"rate": 999})
        production.doc.add(Role, id="r1", name="Maya")
        assert production.id is not None
        blobs, _ = ws.store.load(production.id)
        assert len(blobs) == 3  # the snapshot, then the two later updates
    with Workspace.open(path) as ws:
        doc = ws.production().doc
        assert len(doc.all(Talent)) == 30 and doc.get(Talent, "t1").rate == 999
        assert doc.get(Role, "r1").name == "Maya"


def test_refresh_after_another_process_compacts(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    with Workspace.open(path) as ws:
        doc = ws.create_production("Tides").doc
        doc.add(Talent, id="t1", name="Ada")
        run_child(
            """
            import sys
            from castroom.core.workspace import Workspace
            from castroom.core.model import Talent
            with Workspace.open(sys.argv[1]) as ws:
                p = ws.production()
                p.doc.update(Talent, "t1", {"rate": 7})
                p.compact()
                p.doc.update(Talent, "t1", {"hair": "grey"})
            """,
            str(path),
        )
        talent = doc.get(Talent, "t1")
        assert (talent.rate, talent.hair) == (7, "grey")


def test_compaction_keeps_peers_able_to_sync_without_duplicates(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        production = ws.create_production("Tides")
        doc = production.doc
        role = doc.add(Role, id="r1", name="Maya", backups=["a", "b"])
        doc.add(Talent, id="t1", name="Ada", notes="first")
        # A peer syncs before compaction...
        peer = CastDocument()
        peer.apply_update(doc.encode_update())
        for i in range(50):
            doc.update(Talent, "t1", {"rate": i})
        doc.insert_item(Role, role.id, "backups", 2, "c")
        doc.edit_text(Talent, "t1", "notes", 5, 0, " draft")
        peer.insert_item(Role, role.id, "backups", 0, "p")
        peer.edit_text(Talent, "t1", "notes", 0, 0, "A ")
        production.compact()
    with Workspace.open(tmp_path / "ws") as ws:  # ... and syncs with the compacted store
        production = ws.production()
        doc = production.doc
        peer.apply_update(doc.encode_update(peer.state_vector()))
        production.apply_update(peer.encode_update(doc.state_vector()), origin="peer")
        for replica in (doc, peer):
            assert replica.get(Role, "r1").backups == ["p", "a", "b", "c"]
            assert replica.get(Talent, "t1").notes == "A first draft"
            assert replica.get(Talent, "t1").rate == 49
        assert doc.to_data() == peer.to_data()
        # Raw Yjs view: no entity or list item appears twice.
        raw = Doc()
        raw.apply_update(doc.encode_update())
        assert list(raw.get("roles", type=Map)["r1"]["backups"]) == ["p", "a", "b", "c"]
        production.compact()
        fresh = CastDocument()
        fresh.apply_update(production.doc.encode_update())
        assert fresh.to_data() == peer.to_data()


def test_apply_update_is_durable_and_bad_bytes_change_nothing(workspace: Workspace) -> None:
    production = workspace.create_production("Tides")
    assert production.id is not None
    peer = CastDocument()
    peer.apply_update(production.doc.encode_update())
    peer.add(Talent, id="t9", name="From peer")
    before = workspace.store.load(production.id)
    with pytest.raises(BadUpdate):
        production.apply_update(b"\x01\x02garbage", origin="peer")
    assert workspace.store.load(production.id) == before
    changes = production.apply_update(
        peer.encode_update(production.doc.state_vector()), origin="peer", device="PEER-DEVICE"
    )
    assert ("talents", "t9") in changes
    entry = production.history(limit=1)[0]
    assert entry.device == "PEER-DEVICE" and entry.origin == "peer"


def test_adopt_creates_a_production_from_a_peer(tmp_path: Path) -> None:
    source = CastDocument.create("Shared show", production_id="P-SHARED")
    source.add(Talent, id="t1", name="Ada")
    with Workspace.open(tmp_path / "new") as ws:
        production, changes = ws.adopt("P-SHARED", source.encode_update(), origin="bundle")
        assert ws.productions() == [("P-SHARED", "Shared show")]
        assert production.doc.get(Talent, "t1").name == "Ada" and changes
    with Workspace.open(tmp_path / "new") as ws:
        assert ws.production().doc.get(Talent, "t1").name == "Ada"


def test_invalid_entities_name_the_device_that_wrote_them(workspace: Workspace) -> None:
    production = workspace.create_production("Tides")
    production.doc.add(Talent, id="t1", name="Ada")
    peer = Doc()
    peer.apply_update(production.doc.encode_update())
    peer.get("talents", type=Map)["t1"]["rate"] = -3
    production.apply_update(
        peer.get_update(production.doc.state_vector()), origin="sync", device="LAPTOP-7"
    )
    [(item, device)] = production.invalid()
    assert (item.kind, item.id, item.field, device) == ("talent", "t1", "rate", "LAPTOP-7")


def test_a_write_that_fails_to_persist_is_not_kept(workspace: Workspace) -> None:
    production = workspace.create_production("Tides")
    doc = production.doc
    doc.add(Talent, id="t1", name="Ada")
    # A real SQLite refusal: the connection may read but not write.
    workspace.store.db.execute("PRAGMA query_only=ON")
    with pytest.raises(StorageError, match="not saved"):
        doc.update(Talent, "t1", {"rate": 5})
    workspace.store.db.execute("PRAGMA query_only=OFF")
    assert doc.get(Talent, "t1").rate is None  # the in-memory change was dropped
    doc.update(Talent, "t1", {"rate": 6})
    assert doc.get(Talent, "t1").rate == 6


def test_a_merged_update_that_fails_to_persist_is_not_kept(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws", member="ana") as ws:
        production = ws.create_production("Tides")
        production.doc.add(Talent, id="t1", name="Ada", rate=100)
        peer = CastDocument()
        peer.apply_update(production.doc.encode_update())
        peer.update(Talent, "t1", {"rate": 250})
        update = peer.encode_update(production.doc.state_vector())
        ws.store.db.execute("PRAGMA query_only=ON")  # a real SQLite write failure
        with pytest.raises(StorageError, match="not saved"):
            production.apply_update(update, origin="sync", device="PEER")
        ws.store.db.execute("PRAGMA query_only=OFF")
        # Memory is no further than the disk, so the same update is still wanted...
        assert production.doc.get(Talent, "t1").rate == 100
        assert production.doc.state_vector() != peer.state_vector()
        # ...and merging it again stores it.
        production.apply_update(update, origin="sync", device="PEER")
        assert production.doc.get(Talent, "t1").rate == 250
    with Workspace.open(tmp_path / "ws") as again:
        assert again.production().doc.get(Talent, "t1").rate == 250


def test_a_transaction_that_raises_leaves_nothing_behind(workspace: Workspace) -> None:
    production = workspace.create_production("Tides")
    doc = production.doc
    with pytest.raises(ZeroDivisionError), doc.transaction():
        doc.add(Talent, id="t1", name="Ada")
        doc.add(Talent, id="t2", name="Bo")
        1 / 0  # noqa: B018
    assert doc.find(Talent, "t1") is None and doc.all(Talent) == []
    assert production.doc is doc  # rebuilt in place
    doc.add(Talent, id="t3", name="Cy")
    assert [t.id for t in doc.all(Talent)] == ["t3"]


def test_maybe_compact_only_when_the_log_outgrows_the_snapshot(workspace, monkeypatch):
    import castroom.core.workspace as workspace_module

    production = workspace.create_production("Tides")
    assert production.maybe_compact() is False
    monkeypatch.setattr(workspace_module, "COMPACT_FLOOR", 10)
    for i in range(20):
        production.doc.add(model.Member, name=f"M{i}")
    assert production.maybe_compact() is True
    assert production.maybe_compact() is False


def test_closing_compacts_a_log_that_outgrew_its_snapshot(tmp_path: Path, monkeypatch) -> None:
    import castroom.core.workspace as workspace_module

    monkeypatch.setattr(workspace_module, "COMPACT_FLOOR", 2_000)
    with Workspace.open(tmp_path / "ws") as ws:
        production = ws.create_production("Tides")
        for i in range(60):
            production.doc.add(Talent, id=f"t{i}", name=f"T{i}", notes="x" * 50)
        production_id = production.id
        assert ws.store.log_bytes(production_id)[0] == 0  # no snapshot yet
    with Workspace.open(tmp_path / "ws") as ws:
        snapshot, tail = ws.store.log_bytes(production_id)
        assert snapshot > 0 and tail == 0
        assert len(ws.production().doc.all(Talent)) == 60
        assert len(ws.production().history(limit=100)) == 61


def test_opening_a_long_log_merges_it_first(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        doc = ws.create_production("Tides").doc
        for i in range(40):
            doc.add(Talent, id=f"t{i}", name=f"T{i}")
            doc.edit_text(Talent, f"t{i}", "notes", 0, 0, f"note {i}")
        expected = doc.to_data()
    with Workspace.open(tmp_path / "ws") as ws:
        production = ws.production()
        assert production.doc.to_data() == expected
        production.doc.update(Talent, "t3", {"rate": 3})  # and it keeps working
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.production().doc.get(Talent, "t3").rate == 3


def test_listeners_hear_only_merged_changes_that_reached_the_disk(tmp_path: Path) -> None:
    """A merged update the store refuses is dropped (see above): plugins must not have been
    told of it, just as a local write that fails to persist is never announced."""
    from castroom.core.hookspecs import hookimpl
    from castroom.core.plugins import make_plugins

    heard: list[tuple[str, dict]] = []

    class Listener:
        @hookimpl
        def castroom_changed(self, view, changes, origin):  # type: ignore[no-untyped-def]
            heard.append((origin, dict(changes)))

    with Workspace.open(tmp_path / "ws", member="ana") as ws:
        ws._plugins = make_plugins(builtins={}, entry_points=False, extra=[Listener()])
        production = ws.create_production("Tides")
        production.doc.add(Talent, id="t1", name="Ada", rate=100)
        peer = CastDocument()
        peer.apply_update(production.doc.encode_update())
        peer.update(Talent, "t1", {"rate": 250})
        update = peer.encode_update(production.doc.state_vector())
        heard.clear()
        ws.store.db.execute("PRAGMA query_only=ON")  # a real SQLite write failure
        with pytest.raises(StorageError, match="not saved"):
            production.apply_update(update, origin="sync", device="PEER")
        ws.store.db.execute("PRAGMA query_only=OFF")
        assert heard == []  # nothing durable happened, so nothing was announced
        production.apply_update(update, origin="sync", device="PEER")
        assert heard == [("sync", {("talents", "t1"): {"rate"}})]
        # A production adopted from a peer is announced once it is stored, too.
        heard.clear()
        other = CastDocument.create("Harbour")
        ws.store.db.execute("PRAGMA query_only=ON")
        with pytest.raises(StorageError):
            ws.adopt(other.production_id or "", other.encode_update(), origin="sync")
        ws.store.db.execute("PRAGMA query_only=OFF")
        assert heard == []


def test_local_writes_to_a_deleted_production_are_refused_and_dropped(
    workspace: Workspace,
) -> None:
    production = workspace.create_production("Tides")
    production.doc.update_production({"deleted": True})
    with pytest.raises(ProductionDeleted, match="production restore Tides"):
        production.doc.add(model.Role, name="Ghost")
    assert production.doc.all(model.Role) == []  # not even in memory
    reopened = Workspace.open(workspace.path)
    try:
        assert reopened.production(production.id).doc.all(model.Role) == []
    finally:
        reopened.close()
    production.doc.update_production({"deleted": False})  # a restore is allowed
    production.doc.add(model.Role, name="Ghost")
    assert [r.name for r in production.doc.all(model.Role)] == ["Ghost"]


def test_a_production_deleted_on_a_peer_is_deleted_here(workspace: Workspace, tmp_path) -> None:
    production = workspace.create_production("Tides")
    assert workspace.productions(include_deleted=False) == [(production.id, "Tides")]
    with Workspace.open(tmp_path / "peer", member="peer") as peer:
        assert production.id is not None
        peer.adopt(production.id, production.doc.encode_update(), origin="remote")
        assert not peer.is_deleted(production.id)
        production.doc.update_production({"deleted": True})
        assert workspace.is_deleted(production.id)
        assert workspace.productions(include_deleted=False) == []
        with pytest.raises(NotFound, match="deleted"):
            workspace.resolve_production()
        peer.adopt(production.id, production.doc.encode_update(), origin="remote")
        assert peer.is_deleted(production.id)
        assert peer.productions() == [(production.id, "Tides")]  # sync still sees it


def test_a_device_id_that_is_a_path_is_a_clear_error(tmp_path: Path) -> None:
    """The device id names this device's folder in a shared folder."""
    path = tmp_path / "ws"
    Workspace.open(path).close()
    config = path / "config.toml"
    text = config.read_text()
    device = tomllib.loads(text)["identity"]["device_id"]
    config.write_text(text.replace(device, "../../elsewhere"))
    with pytest.raises(StorageError, match=r"bad workspace config .*device_id"):
        Workspace.open(path, create=False)


def test_a_new_workspace_is_private_to_its_owner(tmp_path: Path) -> None:
    """The database holds everything the team wrote: no other user may read it."""
    path = tmp_path / "ws"
    with Workspace.open(path) as ws:
        ws.create_production("Harbour Lights")
        modes = {p.name: p.stat().st_mode & 0o777 for p in path.iterdir()}
    assert (path.stat().st_mode & 0o777) == 0o700
    assert modes["castroom.db"] == 0o600 and modes["config.toml"] == 0o600
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes  # -wal and -shm too


def _walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the updates the bounded walk reads from here on."""
    from castroom.core import yupdate

    sizes: list[int] = []
    real = yupdate.walk_update

    def counted(update: bytes, **limits: int | None) -> yupdate.UpdateShape:
        sizes.append(len(update))
        return real(update, **limits)

    monkeypatch.setattr(yupdate, "walk_update", counted)
    return sizes


def _compacted(tmp_path: Path) -> tuple[Path, bytes]:
    """A workspace whose production (30 talents) is all in its snapshot, and its state."""
    path = tmp_path / "ws"
    with Workspace.open(path, member="rosa") as ws:
        production = ws.create_production("Harbour Lights")
        for n in range(30):
            production.doc.add(Talent, name=f"Talent {n}")
        production.compact()
        return path, production.doc.encode_update()


def test_a_snapshot_is_walked_once_then_opens_without_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bounded walk of a big stored production costs more than loading it (issue
    14), so a snapshot found within the limits once is not walked again; the log after
    it still is, and so is a snapshot walked under other limits."""
    from castroom.core import yupdate

    path, snapshot = _compacted(tmp_path)
    walked = _walks(monkeypatch)

    def open_names() -> list[str]:
        with Workspace.open(path) as ws:
            return sorted(t.name for t in ws.production().doc.all(Talent))

    names = open_names()
    assert len(names) == 30 and len(walked) == 1  # the first open walks the snapshot
    size = walked[0]
    assert abs(size - len(snapshot)) < len(snapshot) // 2
    walked.clear()
    assert open_names() == names and walked == []  # then it is trusted as walked
    with Workspace.open(path) as ws:  # a write after it: only that update is walked
        ws.production().doc.add(Talent, name="Talent 30")
    walked.clear()
    assert len(open_names()) == 31 and walked and max(walked) < size
    monkeypatch.setattr(yupdate, "MAX_KEY_BYTES", 4000)  # other limits: walked again
    walked.clear()
    assert len(open_names()) == 31 and size in walked


def test_a_snapshot_beyond_the_limits_is_never_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from castroom.core import yupdate

    path, _ = _compacted(tmp_path)
    monkeypatch.setattr(yupdate, "MAX_STRUCTS", 20)
    for _ in range(2):  # each open finds it beyond the limits: left out, said so
        with Workspace.open(path) as ws:
            with pytest.warns(SkippedStoredUpdates, match="beyond castroom's limits"):
                production = ws.production()
            assert production.doc.all(Talent) == []
            assert ws.store.get_kv("snapshot-walked:" + str(production.id)) is None


def _peer_update(production, talent_id: str, fields: dict) -> bytes:  # type: ignore[no-untyped-def]
    peer = CastDocument()
    peer.apply_update(production.doc.encode_update())
    peer.update(Talent, talent_id, fields)
    return peer.encode_update(production.doc.state_vector())


def test_rows_of_other_productions_in_between_cost_no_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With several productions live, a production's next row is hardly ever its last
    plus one; when no other process committed since it last read the log, the rows in
    between are other productions' and it needs no query to say so (one per update)."""
    with Workspace.open(tmp_path / "ws", member="ana") as ws:
        one, two = ws.create_production("One"), ws.create_production("Two")
        for production in (one, two):
            production.doc.add(Talent, id="t1", name="Ada", rate=100)
        updates = [(p, _peer_update(p, "t1", {"rate": r})) for r in (200, 300) for p in (one, two)]

        def asked(*args: object) -> bool:
            raise AssertionError("logged_between asked with no other process's commit")

        monkeypatch.setattr(ws.store, "logged_between", asked)
        with ws.batch():
            for production, update in updates:
                production.apply_update(update, origin="sync", device="PEER")
        for production in (one, two):
            assert production.doc.get(Talent, "t1").rate in (200, 300)
            production.refresh()  # nothing of ours is merged again, nothing is missing
            assert production.seen == max(e.seq for e in production.history(limit=1))


def test_a_row_another_process_logged_in_between_is_merged_after_ours(tmp_path: Path) -> None:
    """Another process's row of this production, logged between our refresh and our
    append, is still merged by the next refresh (the shortcut above is not taken)."""
    path = tmp_path / "ws"
    with Workspace.open(path, member="ana") as ws:
        production = ws.create_production("Tides")
        production.doc.add(Talent, id="t1", name="Ada", rate=100)
        production.doc.add(Talent, id="t2", name="Bo", rate=100)
        update = _peer_update(production, "t1", {"rate": 250})
        started = production.begin_merge(update)
        merged = production.merge_document(update, started, origin="sync")
        finishing = production.begin_finish(merged, origin="sync", device="PEER")
        with Workspace.open(path, member="ben") as other:  # its own connection
            other.production(str(production.id)).doc.update(Talent, "t2", {"rate": 999})
        seq = production.append_merged(merged, finishing)
        production.end_finish(merged, finishing, seq)
        assert production.seen < seq  # the other's row is not merged yet
        assert production.doc.get(Talent, "t2").rate == 999  # read: refreshed
        assert production.doc.get(Talent, "t1").rate == 250
    with Workspace.open(path) as again:
        doc = again.production().doc
        assert (doc.get(Talent, "t1").rate, doc.get(Talent, "t2").rate) == (250, 999)


@pytest.mark.parametrize("notes", ["short", "x" * 6000], ids=["small", "large"])
def test_a_peer_update_is_stored_as_what_was_new_to_us(tmp_path: Path, notes: str) -> None:
    """A peer's update that re-sends structs we hold (its edit merged with one we had)
    is logged as its diff against our state, small (always diffed, by Yrs) or large
    (checked first, in Python); a large one that is all new is logged byte for byte."""
    from castroom.core.crdt import diff_update
    from castroom.core.workspace import DIFF_ALWAYS

    with Workspace.open(tmp_path / "ws", member="ana") as ws:
        production = ws.create_production("Tides")
        production.doc.add(Talent, id="t1", name="Ada", rate=100)
        peer = CastDocument()
        peer.apply_update(production.doc.encode_update())
        base = peer.state_vector()
        peer.update(Talent, "t1", {"notes": notes})
        first = peer.encode_update(base)
        large = len(first) > DIFF_ALWAYS
        assert large == (len(notes) > DIFF_ALWAYS)
        before = production.doc.state_vector()
        production.apply_update(first, origin="sync", device="PEER")
        stored = ws.store.load(str(production.id))[0][-1]
        assert stored == (first if large else diff_update(first, before))
        known = production.doc.state_vector()
        peer.update(Talent, "t1", {"rate": 250})
        again = peer.encode_update(base)  # the first edit again, with the new one
        production.apply_update(again, origin="sync", device="PEER")
        stored = ws.store.load(str(production.id))[0][-1]
        assert stored == diff_update(again, known)
        assert len(stored) < len(again) - len(notes)
        assert production.doc.get(Talent, "t1").rate == 250
    with Workspace.open(tmp_path / "ws") as reopened:
        talent = reopened.production().doc.get(Talent, "t1")
        assert (talent.notes, talent.rate) == (notes, 250)

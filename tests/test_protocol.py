"""The y-protocols framing and the per-connection sync state machine, on real workspaces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples
from pycrdt import Doc, Map

from castroom.core import model
from castroom.core.workspace import StoredProduction, Workspace
from castroom.sync import protocol as p


def _log_rows(production: StoredProduction) -> int:
    return len(production.history(limit=1_000_000))


def _pump(a: p.SyncSession, b: p.SyncSession, first: list[bytes]) -> None:
    """Deliver frames back and forth until both sides fall silent (bounded)."""
    to_b, to_a = list(first), []
    for _ in range(20):
        if not to_a and not to_b:
            return
        next_b: list[bytes] = []
        for frame in to_b:
            out = b.receive(frame)
            to_a.extend(out.replies)
        next_a: list[bytes] = []
        for frame in to_a:
            out = a.receive(frame)
            next_b.extend(out.replies)
        to_a, to_b = [], next_b + next_a
    raise AssertionError("sessions never fell silent")


@pytest.fixture
def pair(tmp_path: Path):
    a = Workspace.open(tmp_path / "a", member="ada")
    b = Workspace.open(tmp_path / "b", member="ben")
    yield a, b
    a.close()
    b.close()


def test_var_uint_round_trip_and_truncation() -> None:
    for value in (0, 1, 127, 128, 300, 2**32, 2**53 - 1):
        encoded = p.write_var_uint(value)
        assert p.read_var_uint(encoded, 0) == (value, len(encoded))
    with pytest.raises(p.ProtocolError, match="truncated"):
        p.read_var_uint(b"\x80\x80", 0)
    with pytest.raises(p.ProtocolError, match="too large"):
        p.read_var_uint(b"\xff" * 12, 0)


def test_decode_each_message_type() -> None:
    assert p.decode_message(p.step1_frame(b"\x00")) == p.Message(
        p.MessageType.SYNC, b"\x00", p.SyncType.STEP1
    )
    assert p.decode_message(p.step2_frame(b"\x00\x00")).sync_type is p.SyncType.STEP2
    assert p.decode_message(p.update_frame(b"\x00\x00")).sync_type is p.SyncType.UPDATE
    assert p.decode_message(p.awareness_frame(b"\x00")).type is p.MessageType.AWARENESS
    denied = p.decode_message(p.permission_denied_frame("read-only"))
    assert denied.type is p.MessageType.AUTH and denied.payload == b"read-only"
    assert p.decode_message(p.QUERY_AWARENESS_FRAME).type is p.MessageType.QUERY_AWARENESS


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"", "empty frame"),
        (b"\x07", "unknown message type"),
        (b"\x00\x05\x00", "unknown sync message type"),
        (b"\x00\x01\x05\x00", "truncated"),
        (b"\x00\x00\x01\x00\xff", "unexpected bytes"),
        (b"\x02\x01\x00", "unknown auth"),
    ],
)
def test_malformed_frames_are_refused(frame: bytes, error: str) -> None:
    with pytest.raises(p.ProtocolError, match=error):
        p.decode_message(frame)


def test_frame_size_limit() -> None:
    with pytest.raises(p.ProtocolError, match="exceeds"):
        p.decode_message(p.update_frame(b"\x00" * 100), max_size=50)


def test_awareness_round_trip_and_refusals() -> None:
    entries = [p.AwarenessEntry(7, 3, {"user": {"name": "Ada"}}), p.AwarenessEntry(9, 1, None)]
    assert p.decode_awareness(p.encode_awareness(entries)) == entries
    head = p.write_var_uint(1) + p.write_var_uint(1) + p.write_var_uint(0)
    with pytest.raises(p.ProtocolError, match="not JSON"):
        p.decode_awareness(head + p.write_var_string("{x"))
    with pytest.raises(p.ProtocolError, match="neither"):
        p.decode_awareness(head + p.write_var_string("[1]"))


def test_two_sessions_converge(pair) -> None:
    a, b = pair
    pa = a.create_production("Harbour Lights")
    pa.doc.add(model.Talent, name="Ada Stone")
    # B starts from nothing: adopt what A sends.
    pb, _ = b.adopt(pa.id, pa.doc.encode_update(), origin="sync", device=a.identity.device_id)
    pb.doc.add(model.Talent, name="Ben Ray")
    pa.doc.add(model.Role, name="Mara")
    client = p.SyncSession(pa, device=b.identity.device_id)
    server = p.SyncSession(pb, device=a.identity.device_id, answer_step1_with_step1=True)
    _pump(client, server, client.opening())
    assert pa.doc.to_data() == pb.doc.to_data()
    assert {t.name for t in pb.doc.all(model.Talent)} == {"Ada Stone", "Ben Ray"}
    entries = pb.history(limit=5)
    assert any(e.origin == "sync" and e.device == a.identity.device_id for e in entries)


def test_server_answers_step1_with_step2_then_step1(pair) -> None:
    a, _ = pair
    pa = a.create_production("P")
    out = p.SyncSession(pa, answer_step1_with_step1=True).receive(p.step1_frame(b"\x00"))
    kinds = [p.decode_message(f).sync_type for f in out.replies]
    assert kinds == [p.SyncType.STEP2, p.SyncType.STEP1]


def test_bad_update_refused_document_unchanged(pair) -> None:
    a, _ = pair
    pa = a.create_production("P")
    pa.doc.add(model.Talent, name="Ada Stone")
    before, rows = pa.doc.to_data(), _log_rows(pa)
    session = p.SyncSession(pa)
    for payload in (b"\x01\x02\x03", b"\xff" * 10, b"\x01"):
        with pytest.raises(p.ProtocolError):
            session.receive(p.update_frame(payload))
    with pytest.raises(p.ProtocolError):
        session.receive(p.step1_frame(b"\x05\x01"))  # state vector cut short
    assert pa.doc.to_data() == before
    assert _log_rows(pa) == rows


def test_read_only_peer_is_dropped_and_told_once(pair) -> None:
    a, b = pair
    pa = a.create_production("P")
    pb, _ = b.adopt(pa.id, pa.doc.encode_update(), origin="sync")
    pb.doc.add(model.Talent, name="Sneaky")
    update = pb.doc.encode_update(pa.doc.state_vector())
    session = p.SyncSession(pa, can_write=False)
    first = session.receive(p.update_frame(update))
    second = session.receive(p.step2_frame(update))
    assert first.dropped and first.update is None
    assert [p.decode_message(f).type for f in first.replies] == [p.MessageType.AUTH]
    assert second.dropped and not second.replies
    assert pa.doc.all(model.Talent) == []
    # A read-only peer may still read: step 1 is answered.
    assert session.receive(p.step1_frame(b"\x00")).replies


def test_read_only_peer_with_nothing_to_send_is_not_told_off(pair) -> None:
    """Every read-only peer answers the server's step 1 with a step 2; when it has nothing
    new that step 2 is the empty update, which is not a write attempt."""
    a, _ = pair
    pa = a.create_production("P")
    session = p.SyncSession(pa, can_write=False, answer_step1_with_step1=True)
    outcome = session.receive(p.step2_frame(p.EMPTY_UPDATE))
    assert outcome.synced and outcome.dropped is None and not outcome.replies
    assert not session.receive(p.update_frame(p.EMPTY_UPDATE)).replies
    assert not session.told_read_only


def test_invalid_entity_from_peer_merges_and_is_reported(pair) -> None:
    a, _ = pair
    pa = a.create_production("P")
    # A foreign Yjs peer writes a talent whose playing age is nonsense.
    peer = Doc()
    peer.apply_update(pa.doc.encode_update())
    talents = peer.get("talents", type=Map)
    talents["t1"] = Map({"id": "t1", "name": "Odd", "playing_age_min": "old", "deleted": False})
    update = peer.get_update(pa.doc.state_vector())
    out = p.SyncSession(pa, device="foreign-device").receive(p.update_frame(update))
    assert out.update == update and ("talents", "t1") in out.changes
    invalid = pa.invalid()
    assert [(i.id, i.field, device) for i, device in invalid] == [
        ("t1", "playing_age_min", "foreign-device")
    ]
    assert pa.doc.all(model.Talent) == []  # typed queries skip it rather than crash


def test_update_listeners_see_local_and_peer_updates(pair) -> None:
    a, b = pair
    pa = a.create_production("P")
    seen: list[str] = []
    pa.update_listeners.append(lambda update, origin, changes: seen.append(origin))
    pa.doc.add(model.Talent, name="Ada")
    pb, _ = b.adopt(pa.id, pa.doc.encode_update(), origin="sync")
    pb.doc.add(model.Talent, name="Ben")
    p.SyncSession(pa).receive(p.update_frame(pb.doc.encode_update(pa.doc.state_vector())))
    assert seen == ["local", "sync"]


def test_a_failing_listener_neither_hides_the_update_nor_undoes_it(pair, caplog) -> None:
    a, _ = pair
    pa = a.create_production("P")
    seen: list[str] = []

    def broken(update: bytes, origin: str, changes: object) -> None:
        raise RuntimeError("peer gone")

    pa.update_listeners.append(broken)
    pa.update_listeners.append(lambda update, origin, changes: seen.append(origin))
    pa.doc.add(model.Talent, name="Ada")
    assert seen == ["local"]  # the listener after the broken one still heard of it
    assert "peer gone" in caplog.text
    reopened = a.production(pa.id)
    reopened._reload()
    assert [t.name for t in reopened.doc.all(model.Talent)] == ["Ada"]  # still durable


def test_other_process_commits_reach_listeners(tmp_path: Path) -> None:
    one = Workspace.open(tmp_path / "ws", member="ada")
    two = Workspace.open(tmp_path / "ws", member="ada")
    try:
        p1 = one.create_production("P")
        p2 = two.production(p1.id)
        seen: list[tuple[str, bool]] = []
        p2.update_listeners.append(lambda u, origin, changes: seen.append((origin, bool(changes))))
        p1.doc.add(model.Talent, name="Ada")
        p2.refresh()
        assert seen == [("storage", True)]
    finally:
        one.close()
        two.close()


def test_random_frames_never_change_the_document(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws", member="f") as ws:
        production = ws.create_production("P")
        production.doc.add(model.Talent, name="Ada")
        before = json.dumps(production.doc.to_data(), sort_keys=True, default=str)
        rows = _log_rows(production)
        session = p.SyncSession(production, can_write=False)

        @settings(max_examples=examples(300))
        @given(
            data=st.binary(max_size=64),
            kind=st.sampled_from([b"", b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\x01"]),
        )
        def check(data: bytes, kind: bytes) -> None:
            try:
                session.receive(kind + data)
            except p.ProtocolError as exc:
                assert str(exc) and "\n" not in str(exc)

        check()
        assert json.dumps(production.doc.to_data(), sort_keys=True, default=str) == before
        assert _log_rows(production) == rows


def test_yjs_byte_readers_are_shared_and_bounds_checked() -> None:
    """One set of readers (castroom.core.yupdate) serves storage, sync and folders; the
    protocol's names raise its ProtocolError, the core's BadUpdate."""
    from castroom.core import crdt, yupdate
    from castroom.core.errors import BadUpdate

    assert yupdate.decode_state_vector(b"") == {}
    sv = b"\x02" + p.write_var_uint(7) + p.write_var_uint(300) + b"\x09\x01"
    assert yupdate.decode_state_vector(sv) == {7: 300, 9: 1}
    assert yupdate.ahead(sv, b"") and not yupdate.ahead(b"", sv)
    assert not yupdate.ahead(sv, sv) and yupdate.ahead(sv, b"\x01\x07\x05")
    for bad in (b"\x02\x07", sv + b"\x00", b"\xff" * 12):
        with pytest.raises(BadUpdate, match="malformed state vector"):
            yupdate.decode_state_vector(bad)
        with pytest.raises(p.ProtocolError, match="malformed state vector"):
            p.check_state_vector(bad)
    # The stricter of the former guards everywhere: too many clients for the size (the
    # protocol's), too many structs for the size (the document's).
    for update in (b"\x7f\x00\x00", b"\x01\xff\xff\x7f\x07\x00\x00"):
        with pytest.raises(p.ProtocolError, match=r"malformed update|castroom.s limits"):
            p.guard_update(update)
        with pytest.raises(BadUpdate, match=r"malformed update|castroom.s limits"):
            crdt.check_update(update)
    with pytest.raises(BadUpdate, match="too large"):
        yupdate.read_var_uint(b"\xff" * 9 + b"\x01", 0)  # 64 bits: over lib0's 53


_frame_prefixes = st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\x00\x03", b"\x01"])


@settings(max_examples=examples(300))
@given(
    prefix=_frame_prefixes,
    payload=st.binary(max_size=300) | st.sampled_from([bytes(127), bytes(128), bytes(16384)]),
    cut=st.integers(-3, 3),
    tail=st.binary(max_size=3),
)
def test_the_live_fast_path_decodes_as_the_general_one(
    prefix: bytes, payload: bytes, cut: int, tail: bytes
) -> None:
    """decode_message reads a live edit's sync frame without the general path's calls;
    for any frame, truncated or with bytes after it, it answers as the general path does
    (a bytearray takes the general path)."""
    frame = prefix + p.write_var_uint(len(payload)) + payload
    frame = (frame[:cut] if cut < 0 else frame) + (tail if cut > 0 else b"")

    def decoded(data: bytes | bytearray) -> tuple[str, object]:
        try:
            return "ok", p.decode_message(data)
        except p.ProtocolError as exc:
            return "refused", str(exc)

    assert decoded(frame) == decoded(bytearray(frame))

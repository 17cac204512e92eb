"""Fuzzing every door bytes come in by: sync frames (in-process session and a real
WebSocket), HTTP pull/push bodies (real server), and shared-folder files.

Hypothesis runs derandomised on CI (the ``ci`` profile, tests/hypothesis_profiles.py)
with a bounded deadline; over 10,000 cases in all, 20 times as many at random under
``make fuzz``. The oracle, for every case:

- nothing crashes: a refusal is a ProtocolError (or a 400 / close 1007 / a folder
  warning) whose message is one clear line;
- a refused input leaves the stored document exactly as it was (``encode_update``,
  ``to_data`` and the update log);
- an input that *is* a well-formed update from a writer merges (merging is never
  refused): the stored production ends up as an in-memory document merging the same
  bytes does, holding at least all that bare pycrdt makes of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples as scaled
from patience import PATIENCE
from pycrdt import Doc, Map, Text

from castroom.core import model
from castroom.core.document import CastDocument
from castroom.core.workspace import StoredProduction, Workspace
from castroom.sync import protocol
from castroom.sync.folder import FOLDER_NAME, FolderSync

pytestmark = pytest.mark.slow


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=scaled(examples),
        deadline=timedelta(seconds=5),
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


# -- a production to attack, and valid frames to mutate ---------------------------------------


def seed_production(path: Path) -> tuple[Workspace, StoredProduction]:
    ws = Workspace.open(path, member="fuzz")
    production = ws.create_production("Fuzzed", kind="film", budget_cap=1_000_000)
    doc = production.doc
    role = doc.add(model.Role, name="Lead", kind="lead", age_min=20, age_max=40)
    talents = [doc.add(model.Talent, name=f"Talent {i}", rate=1000 * i) for i in range(5)]
    doc.update(model.Role, role.id, {"backups": [t.id for t in talents[:3]]})
    doc.edit_text(model.Talent, talents[0].id, "notes", 0, 0, "long notes " * 10)
    return ws, production


def valid_seeds(production: StoredProduction) -> list[bytes]:
    """Well-formed frames of every kind: what mutations start from."""
    doc = production.doc
    peer = Doc()
    peer.apply_update(doc.encode_update())
    before = peer.get_state()
    talents = peer.get("talents", type=Map)
    talents["PEER1"] = Map({"id": "PEER1", "name": "From a peer", "notes": Text("hello")})
    small = peer.get_update(before)
    stranger = Doc()
    stranger.get("talents", type=Map)["X"] = Map({"id": "X", "name": "Stranger"})
    awareness = protocol.encode_awareness(
        [
            protocol.AwarenessEntry(7, 1, {"user": {"name": "fuzz"}}),
            protocol.AwarenessEntry(8, 2, None),
        ]
    )
    return [
        protocol.step1_frame(doc.state_vector()),
        protocol.step1_frame(b"\x00"),
        protocol.step1_frame(b""),
        protocol.step2_frame(small),
        protocol.update_frame(small),
        protocol.update_frame(stranger.get_update()),
        protocol.step2_frame(doc.encode_update()),
        protocol.awareness_frame(awareness),
        protocol.QUERY_AWARENESS_FRAME,
        protocol.permission_denied_frame("no"),
    ]


@st.composite
def mutated(draw: Any, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup", "grow"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(
                st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))])
            )
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[at:]
        elif op == "dup" and data:
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
        elif op == "grow":
            data += b"\xff" * draw(st.integers(1, 12))
    return bytes(data)


@st.composite
def structured(draw: Any) -> bytes:
    """Frames that get past the first bytes: a known outer type and sub type, then a
    length that may lie, then random bytes."""
    kind = draw(st.sampled_from([0, 0, 0, 1, 2, 3, draw(st.integers(0, 300))]))
    head = protocol.write_var_uint(kind)
    if kind == 0:
        head += protocol.write_var_uint(draw(st.sampled_from([0, 1, 2, draw(st.integers(0, 9))])))
    body = draw(st.binary(max_size=120))
    length = draw(st.one_of(st.just(len(body)), st.integers(0, 2**40)))
    return head + protocol.write_var_uint(length) + body


# -- the oracle --------------------------------------------------------------------------------


def log_size(ws: Workspace, production_id: str) -> int:
    row = ws.store.db.execute(
        "SELECT COUNT(*) FROM updates WHERE production = ?", (production_id,)
    ).fetchone()
    return int(row[0])


def assert_clear(message: str) -> None:
    assert message and "\n" not in message and len(message) < 500, repr(message)


class Oracle:
    """Snapshot a production before a case; check it after."""

    def __init__(self, ws: Workspace, production: StoredProduction) -> None:
        self.ws = ws
        self.production = production
        self.cases = 0
        self.refused = 0
        self.merged = 0
        # Copies fed every update the stored production accepted: an in-memory
        # CastDocument (the same merge rules, no storage, no transport) must end up equal,
        # and bare pycrdt must never hold anything castroom lacks.
        self.mirror = CastDocument()
        self.mirror.apply_update(production.doc.encode_update())
        self.raw = Doc()
        self.raw.apply_update(production.doc.encode_update())

    def snapshot(self) -> tuple[bytes, int, dict[str, Any] | None]:
        """(encode_update, log length, to_data). The encoded update changes with any change
        to the document; to_data (slow in pycrdt) is compared on every 50th case too."""
        self.production.refresh()
        doc = self.production.doc
        assert self.production.id is not None
        data = doc.to_data() if self.cases % 50 == 0 else None
        return doc.encode_update(), log_size(self.ws, self.production.id), data

    def unchanged(self, before: tuple[bytes, int, dict[str, Any] | None]) -> None:
        self.production.refresh()
        doc = self.production.doc
        assert doc.encode_update() == before[0]
        assert self.production.id is not None
        assert log_size(self.ws, self.production.id) == before[1]
        if before[2] is not None:
            assert doc.to_data() == before[2]

    def merged_as_pycrdt(self, update: bytes) -> None:
        """The stored production merged ``update``: the result is the in-memory merge of
        the same bytes, and covers all that pycrdt itself makes of them."""
        self.merged += 1
        self.mirror.apply_update(update)
        self.raw.apply_update(update)
        self.production.refresh()
        state = self.production.doc.state_vector()
        assert state == self.mirror.state_vector()
        have, raw = _clocks(state), _clocks(self.raw.get_state())
        assert all(have.get(client, 0) >= clock for client, clock in raw.items())
        if self.merged % 10 == 1:  # to_data is slow in pycrdt: every 10th merge, and at the end
            self.same_as_mirror()

    def same_as_mirror(self) -> None:
        assert self.production.doc.to_data() == self.mirror.to_data()


def _clocks(state_vector: bytes) -> dict[int, int]:
    count, pos = protocol.read_var_uint(state_vector, 0)
    out = {}
    for _ in range(count):
        client, pos = protocol.read_var_uint(state_vector, pos)
        out[client], pos = protocol.read_var_uint(state_vector, pos)
    return out


# -- in-process: the session every transport uses ------------------------------------------


def test_fuzz_sync_session_in_process(tmp_path: Path) -> None:
    ws, production = seed_production(tmp_path / "ws")
    oracle = Oracle(ws, production)
    seeds = valid_seeds(production)
    writer = protocol.SyncSession(production, can_write=True, device="fuzz")
    reader = protocol.SyncSession(production, can_write=False, device="fuzz-ro")

    def case(frame: bytes, session: protocol.SyncSession) -> None:
        before = oracle.snapshot()
        oracle.cases += 1
        try:
            outcome = session.receive(frame)
        except protocol.ProtocolError as exc:
            oracle.refused += 1
            assert_clear(str(exc))
            oracle.unchanged(before)
            return
        if outcome.update is not None:
            assert session.can_write
            oracle.merged_as_pycrdt(outcome.update)
        else:
            oracle.unchanged(before)
        for reply in outcome.replies:
            protocol.decode_message(reply)  # what we send back is always well-formed

    # Ten frames per example: the same cases at a tenth of hypothesis's own overhead.
    @fuzz_settings(400)
    @given(st.lists(st.tuples(st.binary(max_size=256), st.booleans()), min_size=10, max_size=10))
    def random_bytes(frames: list[tuple[bytes, bool]]) -> None:
        for frame, read_only in frames:
            case(frame, reader if read_only else writer)

    @fuzz_settings(300)
    @given(st.lists(st.tuples(structured(), st.booleans()), min_size=10, max_size=10))
    def structured_frames(frames: list[tuple[bytes, bool]]) -> None:
        for frame, read_only in frames:
            case(frame, reader if read_only else writer)

    @fuzz_settings(300)
    @given(st.lists(st.tuples(mutated(seeds), st.integers(0, 9)), min_size=10, max_size=10))
    def mutated_frames(frames: list[tuple[bytes, int]]) -> None:
        for frame, pick in frames:
            case(frame, reader if pick == 0 else writer)

    try:
        random_bytes()
        structured_frames()
        mutated_frames()
        assert oracle.cases == 10_000
        assert oracle.refused > 5_000  # mostly garbage...
        assert oracle.merged > 0  # ...but mutations that stay well-formed do merge
        oracle.same_as_mirror()
        print(f"in-process: {oracle.cases} cases, {oracle.refused} refused, {oracle.merged} merged")
        # The production still opens cleanly from its log, equal to the live copy.
        with Workspace.open(tmp_path / "ws") as again:
            assert again.production(production.id).doc.to_data() == production.doc.to_data()
    finally:
        ws.close()


# -- shared-folder files -------------------------------------------------------------------


def test_fuzz_folder_files(tmp_path: Path) -> None:
    ws, production = seed_production(tmp_path / "ws")
    assert production.id is not None
    folder = tmp_path / "shared"
    folder.mkdir()
    warnings: list[str] = []
    syncer = FolderSync(ws, folder, echo=warnings.append)
    syncer.run_once()
    rogue = folder / FOLDER_NAME / production.id / "ROGUE"
    rogue.mkdir()
    oracle = Oracle(ws, production)
    seeds = [production.doc.encode_update()]
    seeds += [protocol.decode_message(f).payload for f in valid_seeds(production)[3:6]]
    counter = [0]

    def case(data: bytes, honest_name: bool) -> None:
        counter[0] += 1
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        if not honest_name:  # a half-copied file: its name's hash does not match
            digest = hashlib.blake2b(data + b"!", digest_size=16).hexdigest()
        path = rogue / f"{counter[0]:08d}-{digest}.yupd"
        path.write_bytes(data)
        before = oracle.snapshot()
        warnings.clear()
        imported = syncer.result.imported_files
        oracle.cases += 1
        syncer.run_once()
        for line in warnings:
            assert_clear(line)
        if syncer.result.imported_files > imported:
            assert honest_name
            oracle.merged_as_pycrdt(data)
        else:
            oracle.refused += 1
            assert any(w.startswith("warning: ") for w in warnings) or data == b"\x00\x00"
            oracle.unchanged(before)
        path.unlink()

    @fuzz_settings(700)
    @given(st.binary(max_size=200), st.booleans())
    def random_files(data: bytes, honest: bool) -> None:
        case(data, honest)

    @fuzz_settings(800)
    @given(mutated(seeds))
    def mutated_files(data: bytes) -> None:
        case(data, True)

    try:
        random_files()
        mutated_files()
        assert oracle.cases == 1500
        assert oracle.refused > 500 and oracle.merged > 0
        oracle.same_as_mirror()
    finally:
        ws.close()


# -- a real server: WebSocket frames and HTTP bodies ---------------------------------------


def test_fuzz_real_server(tmp_path: Path) -> None:
    from sync_helpers import make_token
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from castroom.sync.server import ServerThread

    path = tmp_path / "server-ws"
    ws, production = seed_production(path)
    pid = production.id
    assert pid is not None
    token = make_token(path, "write")
    seeds = valid_seeds(production)
    oracle = Oracle(ws, production)
    auth = {"Authorization": f"Bearer {token}"}
    codes: dict[int, int] = {}

    with (
        ServerThread(path) as server,
        httpx.Client(base_url=server.url, timeout=PATIENCE) as http,
        contextlib.ExitStack() as stack,
    ):
        url = f"{server.ws_url}/{pid}"
        conn: list[Any] = []

        def socket() -> Any:
            if not conn:
                conn.append(
                    stack.enter_context(
                        connect(url, additional_headers=auth, open_timeout=PATIENCE)
                    )
                )
            return conn[0]

        def ws_case(frame: bytes) -> None:
            before = oracle.snapshot()
            oracle.cases += 1
            sock = socket()
            # A probe after the fuzzed frame: the server handles a connection's frames in
            # order and answers a step 1 with step 2 + its own step 1, so once the probe's
            # answer is back the fuzzed frame has been dealt with (or the socket closed).
            pending = 1 + _is_valid_step1(frame)
            _drain(sock)  # nothing left over from the case before
            try:
                sock.send(frame)
                sock.send(protocol.step1_frame(b"\x00"))
                while pending:
                    reply = protocol.decode_message(sock.recv(timeout=PATIENCE))
                    if reply.sync_type is protocol.SyncType.STEP1:
                        pending -= 1
            except ConnectionClosed:
                conn.clear()
                code = sock.close_code
                codes[code] = codes.get(code, 0) + 1
                assert code == 1007, (code, sock.close_reason)
                assert_clear(sock.close_reason)
                oracle.refused += 1
                oracle.unchanged(before)
                return
            message = protocol.decode_message(frame)  # the server kept it: it decodes
            if (
                message.type is protocol.MessageType.SYNC
                and message.sync_type in (1, 2)
                and message.payload != protocol.EMPTY_UPDATE
            ):
                oracle.merged_as_pycrdt(message.payload)
                return
            oracle.unchanged(before)

        def http_case(body: bytes, push: bool) -> None:
            before = oracle.snapshot()
            oracle.cases += 1
            response = http.post(
                f"/sync/{pid}/{'push' if push else 'pull'}", content=body, headers=auth
            )
            assert response.status_code in (200, 400), response.text
            if response.status_code == 400:
                oracle.refused += 1
                assert_clear(response.json()["error"])
                oracle.unchanged(before)
            elif push:
                oracle.merged_as_pycrdt(body)
            else:
                oracle.unchanged(before)

        @fuzz_settings(300)
        @given(st.one_of(mutated(seeds), structured(), st.binary(max_size=64)))
        def websocket_frames(frame: bytes) -> None:
            ws_case(frame)

        @fuzz_settings(300)
        @given(
            st.one_of(
                mutated([protocol.decode_message(s).payload for s in seeds[:7]]),
                st.binary(max_size=64),
            ),
            st.booleans(),
        )
        def http_bodies(body: bytes, push: bool) -> None:
            http_case(body, push)

        websocket_frames()
        http_bodies()
        # Still up, still serving the production to an honest peer.
        assert http.get("/health").json() == {"status": "ok"}
        pulled = http.post(f"/sync/{pid}/pull", content=b"", headers=auth)
        assert pulled.status_code == 200
        mirror = Doc()
        mirror.apply_update(pulled.content)
        # Compared through an encode/decode round trip on both sides: a mutated update
        # can leave an empty entity map in memory that Yrs does not encode again.
        local = Doc()
        local.apply_update(production.doc.encode_update())
        assert CastDocument(mirror).to_data() == CastDocument(local).to_data()
    ws.close()
    assert oracle.cases == 600
    assert codes.get(1007, 0) > 50, codes


def _drain(sock: Any) -> None:
    with contextlib.suppress(TimeoutError):
        while True:
            sock.recv(timeout=0)


def _is_valid_step1(frame: bytes) -> bool:
    try:
        message = protocol.decode_message(frame)
        if message.sync_type is not protocol.SyncType.STEP1:
            return False
        protocol.check_state_vector(message.payload)
        if message.payload:  # the server answers an empty state vector with everything
            Doc().get_update(message.payload)
    except BaseException:
        return False
    return True


def test_refusal_messages_are_readable() -> None:
    """A few refusals spelled out, as a person would read them."""
    cases = {
        b"": "empty frame",
        b"\x09": "unknown message type",
        b"\x00\x07\x00": "unknown sync message type",
        b"\x00\x01\x05ab": "truncated",
        b"\x00\x02\x02\x00\x00extra": "unexpected bytes",
    }
    for frame, needle in cases.items():
        with pytest.raises(protocol.ProtocolError, match=needle):
            protocol.decode_message(frame)
    json.dumps(list(cases.values()))

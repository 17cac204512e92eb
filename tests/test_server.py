"""The sync server on a real uvicorn on 127.0.0.1 (in a thread), real workspaces, real
WebSocket and HTTP clients."""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map
from sync_helpers import PATIENCE, make_cert, wait_until
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync import protocol as p
from castroom.sync.auth import TokenStore
from castroom.sync.server import MEMBER_HEADER, STATE_VECTOR_HEADER, ServerOptions, ServerThread

#: One client for the module: making an httpx client loads the CA bundle (~0.2 s), and
#: these plain-http tests need no TLS.
HTTP = httpx.Client(verify=False, timeout=PATIENCE)


@pytest.fixture(autouse=True, scope="module")
def _close_http() -> Iterator[None]:
    """Its pooled connection is closed with the module, not left to interpreter exit
    (where it was the suite's one "unclosed socket" warning)."""
    yield
    HTTP.close()


class Setup:
    """A seeded server workspace with one token of each kind."""

    def __init__(self, root: Path) -> None:
        self.path = root / "server"
        with Workspace.open(self.path, member="casting") as ws:
            self.pid = ws.create_production("Harbour Lights").id
            self.other = ws.create_production("Other Show").id
            ws.production(self.pid).doc.add(model.Talent, name="Ada Stone")
            tokens = TokenStore(ws.store)
            self.write = tokens.create("write", name="w")[1]
            self.read = tokens.create("read", name="r")[1]
            self.only_other = tokens.create("write", production=self.other, name="o")[1]
            info, self.revoked = tokens.create("write", name="gone")
            tokens.revoke(info.id)

    def snapshot(self) -> tuple[str, int]:
        with Workspace.open(self.path, create=False) as ws:
            production = ws.production(self.pid)
            rows = ws.store.db.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
            return json.dumps(production.doc.to_data(), sort_keys=True, default=str), rows


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """Shared by the module's tests (each checks what it changed, not absolute state)."""
    return Setup(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def server(setup: Setup) -> Iterator[ServerThread]:
    with ServerThread(setup.path) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ws_connect(server: ServerThread, pid: str, token: str | None, **kw: Any) -> ClientConnection:
    url = f"{server.ws_url}/{pid}" + (f"?token={token}" if token else "")
    return connect(url, proxy=None, open_timeout=PATIENCE, max_size=None, **kw)


def recv_frames(
    conn: ClientConnection,
    timeout: float = 0.5,
    until: Callable[[p.Message], bool] | None = None,
) -> list[p.Message]:
    """Frames received within ``timeout``, or up to the first one matching ``until``."""
    out = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(p.decode_message(conn.recv(timeout=left)))
        except TimeoutError:
            break
        if until is not None and until(out[-1]):
            break
    return out


def is_update(message: p.Message) -> bool:
    return message.sync_type is p.SyncType.UPDATE


def is_awareness(message: p.Message) -> bool:
    return message.type is p.MessageType.AWARENESS


def handshake(conn: ClientConnection, doc: Doc) -> list[p.Message]:
    """Our step 1, then the server's step 2 and its own step 1 (which ends the exchange)."""
    conn.send(p.step1_frame(doc.get_state()))
    frames = recv_frames(conn, PATIENCE, until=lambda m: m.sync_type is p.SyncType.STEP1)
    for message in frames:
        if message.sync_type in (p.SyncType.STEP2, p.SyncType.UPDATE):
            doc.apply_update(message.payload)
    return frames


# -- HTTP --------------------------------------------------------------------------------------


def test_health_needs_no_token_and_reveals_nothing(server: ServerThread) -> None:
    response = HTTP.get(f"{server.url}/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_productions_listed_by_token(server: ServerThread, setup: Setup) -> None:
    every = HTTP.get(f"{server.url}/productions", headers=bearer(setup.write)).json()
    assert {x["id"] for x in every["productions"]} >= {setup.pid, setup.other}
    one = HTTP.get(f"{server.url}/productions", headers=bearer(setup.only_other)).json()
    assert [x["id"] for x in one["productions"]] == [setup.other]
    assert (
        HTTP.get(f"{server.url}/productions", headers=bearer(setup.read)).json()["scope"] == "read"
    )


@pytest.mark.parametrize(
    ("who", "method", "status", "message"),
    [
        (None, "pull", 401, "token is required"),
        ("wrong", "pull", 401, "invalid, expired or revoked"),
        ("revoked", "pull", 401, "invalid, expired or revoked"),
        ("read", "push", 403, "read-only"),
        ("only_other", "pull", 403, "does not give access"),
        ("only_other", "push", 403, "does not give access"),
    ],
)
def test_http_refusals(
    server: ServerThread, setup: Setup, who: str | None, method: str, status: int, message: str
) -> None:
    before = setup.snapshot()
    token = {"wrong": "crt_000000000000_nope", None: None}.get(who, getattr(setup, who or "", None))
    headers = bearer(token) if token else {}
    peer = Doc()
    peer.get("talents", type=Map)["x"] = Map({"id": "x", "name": "Intruder"})
    body = b"" if method == "pull" else peer.get_update()
    response = HTTP.post(f"{server.url}/sync/{setup.pid}/{method}", headers=headers, content=body)
    assert response.status_code == status
    assert message in response.json()["error"]
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    assert setup.snapshot() == before


def test_token_in_query_parameter(server: ServerThread, setup: Setup) -> None:
    response = HTTP.post(f"{server.url}/sync/{setup.pid}/pull?token={setup.read}", content=b"")
    assert response.status_code == 200


def test_pull_then_push_round_trip(server: ServerThread, setup: Setup, tmp_path: Path) -> None:
    headers = bearer(setup.write)
    pulled = HTTP.post(f"{server.url}/sync/{setup.pid}/pull", headers=headers, content=b"")
    assert pulled.status_code == 200
    with Workspace.open(tmp_path / "laptop") as laptop:
        mine, _ = laptop.adopt(setup.pid, pulled.content, origin="sync")
        assert [t.name for t in mine.doc.all(model.Talent)] == ["Ada Stone"]
        mine.doc.add(model.Talent, name="Ben Ray")
        import base64

        server_sv = base64.b64decode(pulled.headers[STATE_VECTOR_HEADER])
        diff = mine.doc.encode_update(server_sv)
        pushed = HTTP.post(f"{server.url}/sync/{setup.pid}/push", headers=headers, content=diff)
        assert pushed.json() == {"changed": 1, "created": False}
        # Pulling with an up-to-date state vector brings back nothing new.
        again = HTTP.post(
            f"{server.url}/sync/{setup.pid}/pull", headers=headers, content=mine.doc.state_vector()
        )
        before = mine.doc.to_data()
        mine.apply_update(again.content, origin="sync")
        assert mine.doc.to_data() == before
    with Workspace.open(setup.path, create=False) as ws:
        names = {t.name for t in ws.production(setup.pid).doc.all(model.Talent)}
        assert names >= {"Ada Stone", "Ben Ray"}
        entry = ws.production(setup.pid).history(limit=1)[0]
        assert entry.origin == "sync"


def test_push_new_production_is_adopted_but_not_junk(
    server: ServerThread, setup: Setup, tmp_path: Path
) -> None:
    headers = bearer(setup.write)
    with Workspace.open(tmp_path / "laptop") as laptop:
        fresh = laptop.create_production("Brand New")
        update = fresh.doc.encode_update()
        junk = HTTP.post(f"{server.url}/sync/NOT-{fresh.id}/push", headers=headers, content=update)
        assert junk.status_code == 404
        made = HTTP.post(f"{server.url}/sync/{fresh.id}/push", headers=headers, content=update)
        assert made.json()["created"] is True
    listing = HTTP.get(f"{server.url}/productions", headers=headers).json()["productions"]
    assert {"id": fresh.id, "title": "Brand New"} in listing


def test_a_pushed_production_whose_id_is_not_a_plain_name_is_refused(
    server: ServerThread, setup: Setup
) -> None:
    peer = Doc()
    peer.get("production", type=Map).update({"id": "..", "title": "Evil", "kind": "film"})
    # httpx would normalise "/sync/../push" away: the dots go percent-encoded.
    answer = HTTP.post(
        f"{server.url}/sync/%2E%2E/push", headers=bearer(setup.write), content=peer.get_update()
    )
    assert answer.status_code == 400 and "production id '..' is not" in answer.json()["error"]
    listing = HTTP.get(f"{server.url}/productions", headers=bearer(setup.write)).json()
    assert ".." not in {p["id"] for p in listing["productions"]}


def test_unknown_production_404(server: ServerThread, setup: Setup) -> None:
    response = HTTP.post(f"{server.url}/sync/nope/pull", headers=bearer(setup.write), content=b"")
    assert response.status_code == 404 and "no production" in response.json()["error"]


def test_malformed_bodies_refused_document_unchanged(
    server: ServerThread, setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="castroom.sync.server")
    before = setup.snapshot()
    headers = bearer(setup.write)
    for body in (b"\x01\x02\x03", b"\xff" * 40, b"x", b"\x01\x01\x81"):
        response = HTTP.post(f"{server.url}/sync/{setup.pid}/push", headers=headers, content=body)
        assert response.status_code == 400 and "bad update" in response.json()["error"]
    # Each refusal is logged on the server, with the request and the reason.
    refused = [
        r.getMessage() for r in caplog.records if "refused: 400 bad update" in r.getMessage()
    ]
    assert len(refused) == 4 and all(f"/sync/{setup.pid}/push" in m for m in refused)
    bad_sv = HTTP.post(f"{server.url}/sync/{setup.pid}/pull", headers=headers, content=b"\x05\x01")
    assert bad_sv.status_code == 400 and "state vector" in bad_sv.json()["error"]
    assert setup.snapshot() == before


def test_body_size_limit(setup: Setup) -> None:
    with ServerThread(setup.path, options=ServerOptions(max_body=1000, max_message=1000)) as srv:
        before = setup.snapshot()
        response = HTTP.post(
            f"{srv.url}/sync/{setup.pid}/push", headers=bearer(setup.write), content=b"\x00" * 5000
        )
        assert response.status_code == 413 and "limit" in response.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
            for _ in range(10):
                yield b"\x00" * 500

        streamed = HTTP.post(
            f"{srv.url}/sync/{setup.pid}/push", headers=bearer(setup.write), content=chunks()
        )
        assert streamed.status_code == 413
        with ws_connect(srv, setup.pid, setup.write) as conn:
            conn.send(p.update_frame(b"\x00" * 5000))
            with pytest.raises(ConnectionClosed) as closed:
                recv_frames(conn, PATIENCE)
                conn.recv(timeout=PATIENCE)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert setup.snapshot() == before


# -- WebSocket ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("wrong", 401), ("revoked", 401), ("only_other", 403)],
)
def test_websocket_handshake_refusals(
    server: ServerThread, setup: Setup, who: str | None, status: int
) -> None:
    token = {"wrong": "crt_000000000000_nope", None: None}.get(who, getattr(setup, who or "", None))
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(server, setup.pid, token)
    assert refused.value.response.status_code == status
    assert b"error" in refused.value.response.body


def test_a_websocket_on_no_route_is_a_404_that_says_where_to_go(server: ServerThread) -> None:
    """Starlette's default for an unrouted socket closes the handshake: uvicorn said 403."""
    base = server.ws_url.removesuffix("/sync")
    for path in ("/nosuch", "/sync", "/socket/x/y"):
        with pytest.raises(InvalidStatus) as refused:
            connect(base + path, proxy=None, open_timeout=PATIENCE)
        response = refused.value.response
        assert response.status_code == 404
        said = json.loads(response.body)["error"]
        assert said.startswith(f"no WebSocket at {path}: ") and "/hocuspocus" in said, said


def test_server_thread_quiets_uvicorn_handshake_noise(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused handshake is logged once, by us: uvicorn's follow-up "returned without
    completing handshake" error is filtered, in ServerThread as in `castroom serve`."""
    from castroom.sync.server import QuietHandshakeNoise

    uvicorn_errors = logging.getLogger("uvicorn.error")
    for installed in [f for f in uvicorn_errors.filters if isinstance(f, QuietHandshakeNoise)]:
        uvicorn_errors.removeFilter(installed)  # as in a fresh process
    caplog.set_level(logging.WARNING, logger="castroom.sync.server")
    with ServerThread(setup.path) as srv:
        uvicorn_errors.addHandler(caplog.handler)
        try:
            with pytest.raises(InvalidStatus):
                ws_connect(srv, setup.pid, None)
            assert wait_until(
                lambda: any("refused WebSocket" in r.getMessage() for r in caplog.records)
            )
            time.sleep(0.2)  # uvicorn's error, when it comes, follows our refusal
        finally:
            uvicorn_errors.removeHandler(caplog.handler)
    assert not [r for r in caplog.records if "without completing handshake" in r.getMessage()]


def test_websocket_bearer_header(server: ServerThread, setup: Setup) -> None:
    with connect(
        f"{server.ws_url}/{setup.pid}",
        proxy=None,
        open_timeout=PATIENCE,
        additional_headers=bearer(setup.read),
    ) as conn:
        doc = Doc()
        handshake(conn, doc)
        assert "Ada Stone" in json.dumps(doc.get("talents", type=Map).to_py())


def test_server_answers_step1_with_step2_then_own_step1(server: ServerThread, setup: Setup) -> None:
    with ws_connect(server, setup.pid, setup.read) as conn:
        frames = handshake(conn, Doc())
    kinds = [m.sync_type for m in frames if m.type is p.MessageType.SYNC]
    assert kinds == [p.SyncType.STEP2, p.SyncType.STEP1]


def test_updates_relayed_between_peers_and_stored(server: ServerThread, setup: Setup) -> None:
    a_doc, b_doc, c_doc = Doc(), Doc(), Doc()
    with (
        ws_connect(server, setup.pid, setup.write) as a,
        ws_connect(server, setup.pid, setup.write) as b,
        ws_connect(server, setup.pid, setup.write) as c,
    ):
        for conn, doc in ((a, a_doc), (b, b_doc), (c, c_doc)):
            handshake(conn, doc)
        before = a_doc.get_state()
        a_doc.get("talents", type=Map)["t9"] = Map(
            {"id": "t9", "name": "Cy Live", "deleted": False}
        )
        a.send(p.update_frame(a_doc.get_update(before)))
        for conn, doc in ((b, b_doc), (c, c_doc)):
            got = [m for m in recv_frames(conn, PATIENCE, until=is_update) if is_update(m)]
            assert got, "no update relayed"
            for message in got:
                doc.apply_update(message.payload)
            assert doc.get("talents", type=Map)["t9"]["name"] == "Cy Live"
        # The sender does not get its own update echoed.
        assert not [m for m in recv_frames(a, 0.2) if is_update(m)]
    with Workspace.open(setup.path, create=False) as ws:
        production = ws.production(setup.pid)
        assert production.doc.get(model.Talent, "t9").name == "Cy Live"
        assert production.history(limit=1)[0].origin == "sync"


def test_awareness_relayed_and_cleared_on_leave(server: ServerThread, setup: Setup) -> None:
    present = p.awareness_frame(
        p.encode_awareness([p.AwarenessEntry(4242, 1, {"user": {"name": "Ada", "device": "lap"}})])
    )
    with ws_connect(server, setup.pid, setup.read) as watcher:
        handshake(watcher, Doc())
        with ws_connect(server, setup.pid, setup.read) as ada:
            handshake(ada, Doc())
            ada.send(present)
            seen = [
                m for m in recv_frames(watcher, PATIENCE, until=is_awareness) if is_awareness(m)
            ]
            assert p.decode_awareness(seen[0].payload)[0].state["user"]["name"] == "Ada"
            # A newcomer gets the current presence on arrival.
            with ws_connect(server, setup.pid, setup.read) as late:
                first = [
                    m for m in recv_frames(late, PATIENCE, until=is_awareness) if is_awareness(m)
                ]
                assert p.decode_awareness(first[0].payload)[0].client_id == 4242
        gone = [m for m in recv_frames(watcher, PATIENCE, until=is_awareness) if is_awareness(m)]
        entries = [e for m in gone for e in p.decode_awareness(m.payload)]
        assert any(e.client_id == 4242 and e.state is None for e in entries)


def test_a_peer_cannot_remove_or_change_another_peers_presence(
    server: ServerThread, setup: Setup
) -> None:
    """A stock y-websocket client leaving sends null states for every client it knew;
    only its own may go, or everyone else would read "no one else is connected"."""

    def frame(*entries: p.AwarenessEntry) -> bytes:
        return p.awareness_frame(p.encode_awareness(list(entries)))

    def bo_left(message: p.Message) -> bool:
        entries = p.decode_awareness(message.payload) if is_awareness(message) else []
        return any(e.client_id == 7 and e.state is None for e in entries)

    ada_state = {"user": {"name": "Ada"}}
    with ws_connect(server, setup.pid, setup.read) as watcher:
        handshake(watcher, Doc())
        with ws_connect(server, setup.pid, setup.read) as ada:
            handshake(ada, Doc())
            ada.send(frame(p.AwarenessEntry(4242, 1, ada_state)))
            recv_frames(watcher, PATIENCE, until=is_awareness)
            with ws_connect(server, setup.pid, setup.read) as bo:
                handshake(bo, Doc())
                # Ada's presence, on arrival, if the handshake did not already take it: a
                # drain with a short bound, not a wait for something sure to come.
                recv_frames(bo, 2, until=is_awareness)
                # Bo announces itself, then leaves claiming Ada (4242) left too.
                bo.send(frame(p.AwarenessEntry(7, 1, {"user": {"name": "Bo"}})))
                bo.send(frame(p.AwarenessEntry(7, 2, None), p.AwarenessEntry(4242, 2, None)))
                seen = [m for m in recv_frames(watcher, PATIENCE, until=bo_left) if is_awareness(m)]
                entries = [e for m in seen for e in p.decode_awareness(m.payload)]
                # Bo came and went (both frames, or one merging them if they arrived in
                # one turn); Ada was never said to leave.
                assert {e.client_id for e in entries} == {7}
                assert entries[-1].state is None
            # A newcomer still sees Ada present, and only Ada.
            with ws_connect(server, setup.pid, setup.read) as late:
                first = [
                    m for m in recv_frames(late, PATIENCE, until=is_awareness) if is_awareness(m)
                ]
                [entry] = p.decode_awareness(first[0].payload)
                assert (entry.client_id, entry.state) == (4242, ada_state)


def test_read_only_peer_dropped_and_told(
    server: ServerThread, setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="castroom.sync")
    before = setup.snapshot()
    with ws_connect(server, setup.pid, setup.read) as conn:
        doc = Doc()
        handshake(conn, doc)
        state = doc.get_state()
        doc.get("talents", type=Map)["zz"] = Map({"id": "zz", "name": "Sneaky"})
        conn.send(p.update_frame(doc.get_update(state)))
        told = [
            m
            for m in recv_frames(conn, PATIENCE, until=lambda m: m.type is p.MessageType.AUTH)
            if m.type is p.MessageType.AUTH
        ]
        assert told and b"read-only" in told[0].payload
    assert any("dropped a sync frame from read-only peer" in r.getMessage() for r in caplog.records)
    assert setup.snapshot() == before


def test_read_only_peer_empty_step2_is_not_denied(server: ServerThread, setup: Setup) -> None:
    """A read-only peer that is up to date answers the server's step 1 with an empty step 2
    (as every stock y-websocket client does): no permission-denied for that."""
    with ws_connect(server, setup.pid, setup.read) as conn:
        doc = Doc()
        handshake(conn, doc)
        conn.send(p.step2_frame(doc.get_update(doc.get_state())))  # the empty update
        assert doc.get_update(doc.get_state()) == p.EMPTY_UPDATE
        later = recv_frames(conn, 0.5)
        assert not [m for m in later if m.type is p.MessageType.AUTH]


@pytest.mark.parametrize(
    "frame",
    [b"\x00\x02\x05\x01\x02", b"\x09", b"\x00\x02\x03\xff\xff\xff", b"\x00\x00\x01"],
)
def test_malformed_frames_close_with_1007_document_unchanged(
    server: ServerThread, setup: Setup, frame: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="castroom.sync.server")
    before = setup.snapshot()
    with ws_connect(server, setup.pid, setup.write) as conn:
        conn.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(10):
                conn.recv(timeout=PATIENCE)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        assert "bad message" in closed.value.rcvd.reason
    # The refusal is logged on the server (peer, production, reason).
    logged = [r for r in caplog.records if r.getMessage().startswith("bad frame from")]
    assert logged and logged[0].levelno == logging.WARNING and setup.pid in logged[0].getMessage()
    assert setup.snapshot() == before
    # The server carries on serving.
    assert HTTP.get(f"{server.url}/health").status_code == 200


def test_text_frames_refused(server: ServerThread, setup: Setup) -> None:
    with ws_connect(server, setup.pid, setup.write) as conn:
        conn.send("hello")
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv(timeout=PATIENCE)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


@contextlib.contextmanager
def revoked_while_connected(setup: Setup, token_recheck: float) -> Iterator[tuple[Any, Doc]]:
    """A live peer (after its handshake) whose fresh token is revoked by another process."""
    with Workspace.open(setup.path, create=False) as ws:
        info, token = TokenStore(ws.store).create("write")
    with (
        ServerThread(setup.path, options=ServerOptions(token_recheck=token_recheck)) as srv,
        ws_connect(srv, setup.pid, token) as conn,
    ):
        doc = Doc()
        handshake(conn, doc)
        with Workspace.open(setup.path, create=False) as ws:
            TokenStore(ws.store).revoke(info.id)
        yield conn, doc


def test_revoking_a_token_cuts_off_live_peers(setup: Setup) -> None:
    with revoked_while_connected(setup, 0.1) as (conn, _):
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(20):
                conn.recv(timeout=PATIENCE)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_an_update_sent_just_after_a_revocation_is_not_merged(setup: Setup) -> None:
    """The periodic re-check is an hour away here: only the per-frame check can stop it."""
    with revoked_while_connected(setup, 3600) as (conn, doc):
        before = setup.snapshot()
        edit = Doc()
        edit.apply_update(doc.get_update())
        state = edit.get_state()
        edit.get("talents", type=Map)["late"] = Map({"name": "Too Late"})
        conn.send(p.update_frame(edit.get_update(state)))
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(20):
                conn.recv(timeout=PATIENCE)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert setup.snapshot() == before


def test_an_expired_token_is_refused(setup: Setup, server: ServerThread) -> None:
    with Workspace.open(setup.path, create=False) as ws:
        _, token = TokenStore(ws.store).create("read", expires_in=0.001)
    time.sleep(0.01)
    answer = HTTP.get(f"{server.url}/productions", headers=bearer(token))
    assert answer.status_code == 401 and "expired" in answer.json()["error"]


def test_cli_edit_in_another_process_reaches_live_peer(server: ServerThread, setup: Setup) -> None:
    with ws_connect(server, setup.pid, setup.read) as conn:
        doc = Doc()
        handshake(conn, doc)
        exe = Path(sys.executable).with_name("castroom")
        subprocess.run(
            [
                str(exe),
                "--workspace",
                str(setup.path),
                "-p",
                setup.pid,
                "add",
                "talent",
                "name=From CLI",
            ],
            check=True,
            capture_output=True,
            timeout=PATIENCE,
        )

        def arrived() -> bool:
            for message in recv_frames(conn, 0.2, until=is_update):
                if is_update(message):
                    doc.apply_update(message.payload)
            return "From CLI" in json.dumps(doc.get("talents", type=Map).to_py())

        assert wait_until(arrived)


def test_http_push_reaches_live_peer(server: ServerThread, setup: Setup) -> None:
    with ws_connect(server, setup.pid, setup.read) as conn:
        doc = Doc()
        handshake(conn, doc)
        state = doc.get_state()
        doc.get("talents", type=Map)["h1"] = Map({"id": "h1", "name": "Via HTTP", "deleted": False})
        update = doc.get_update(state)
        other = Doc()
        other.apply_update(doc.get_update())
        pushed = HTTP.post(
            f"{server.url}/sync/{setup.pid}/push", headers=bearer(setup.write), content=update
        )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json() == {"changed": 1, "created": False}
        relayed = [m for m in recv_frames(conn, PATIENCE, until=is_update) if is_update(m)]
        assert relayed


# -- TLS ---------------------------------------------------------------------------------------


def test_tls(setup: Setup, tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    with ServerThread(setup.path, tls_cert=cert, tls_key=key) as srv:
        assert srv.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(f"{srv.url}/health", verify=context, timeout=PATIENCE).json() == {
            "status": "ok"
        }
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{srv.url}/health", timeout=PATIENCE)  # not trusted by default
        with connect(
            f"{srv.ws_url}/{setup.pid}?token={setup.read}",
            ssl=context,
            proxy=None,
            open_timeout=PATIENCE,
        ) as conn:
            doc = Doc()
            handshake(conn, doc)
            assert "Ada Stone" in json.dumps(doc.get("talents", type=Map).to_py())


def test_connection_cut_mid_message_changes_nothing(
    server: ServerThread, setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    import struct

    caplog.set_level(logging.INFO, logger="castroom.sync.server")
    before = setup.snapshot()
    peer = Doc()
    peer.get("talents", type=Map)["cut"] = Map({"id": "cut", "name": "Half Sent", "deleted": False})
    frame = p.update_frame(peer.get_update())
    # WebSocket: a binary frame announced in full, half of it sent, then the socket dies.
    header = bytes([0x82, 0x80 | 126]) + struct.pack("!H", len(frame)) + b"\0\0\0\0"  # zero mask
    with ws_connect(server, setup.pid, setup.write) as conn:
        conn.socket.sendall(header + frame[: len(frame) // 2])
        conn.socket.shutdown(socket.SHUT_RDWR)
    # HTTP: a push whose body stops half-way.
    host, port = "127.0.0.1", server.port
    with socket.create_connection((host, port), timeout=PATIENCE) as raw:
        raw.sendall(
            f"POST /sync/{setup.pid}/push HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {setup.write}\r\nContent-Length: {len(frame)}\r\n\r\n".encode()
            + frame[: len(frame) // 2]
        )

    # Wait (bounded) until the server has dealt with both cut connections: the WebSocket
    # peer has left its room and the half-sent push was refused.
    def handled() -> bool:
        messages = [r.getMessage() for r in caplog.records]
        return any(m.endswith(f"left {setup.pid}") for m in messages) and any(
            "connection closed before the body was complete" in m for m in messages
        )

    assert wait_until(handled), [r.getMessage() for r in caplog.records]
    assert setup.snapshot() == before
    assert HTTP.get(f"{server.url}/health").status_code == 200
    with ws_connect(server, setup.pid, setup.read) as fine:
        assert handshake(fine, Doc())


def test_other_process_commit_picked_up_mid_frame_reaches_the_sender(setup: Setup) -> None:
    """A commit from another workspace connection that the server only notices while
    handling a peer's update frame (its merge refreshes first) must still reach that peer:
    only the peer's own update is not echoed back."""
    # The poller never runs here, so the frame's merge is what picks up the commit.
    with (
        ServerThread(setup.path, options=ServerOptions(poll_interval=3600)) as srv,
        ws_connect(srv, setup.pid, setup.write) as writer,
        ws_connect(srv, setup.pid, setup.read) as watcher,
    ):
        writer_doc, watcher_doc = Doc(), Doc()
        handshake(writer, writer_doc)
        handshake(watcher, watcher_doc)
        with Workspace.open(setup.path, create=False) as cli:  # as a CLI command would
            cli.production(setup.pid).doc.add(model.Talent, name="Committed Elsewhere")
        state = writer_doc.get_state()
        writer_doc.get("talents", type=Map)["mid1"] = Map(
            {"id": "mid1", "name": "Peer Edit", "deleted": False}
        )
        writer.send(p.update_frame(writer_doc.get_update(state)))

        def names(conn: ClientConnection, doc: Doc) -> set[str]:
            for message in recv_frames(conn, 0.2, until=is_update):
                if is_update(message):
                    doc.apply_update(message.payload)
            return {t["name"] for t in doc.get("talents", type=Map).to_py().values()}

        assert wait_until(lambda: "Committed Elsewhere" in names(writer, writer_doc))
        assert wait_until(
            lambda: {"Committed Elsewhere", "Peer Edit"} <= names(watcher, watcher_doc)
        )
        # Its own update still is not echoed back to the writer.
        assert not [m for m in recv_frames(writer, 0.3) if is_update(m)]


def server_talents(setup: Setup) -> set[str]:
    with Workspace.open(setup.path, create=False) as ws:
        return {t.name for t in ws.production(setup.pid).doc.all(model.Talent)}


def test_peers_name_their_member_for_the_history(server: ServerThread, setup: Setup) -> None:
    """X-Castroom-Member (percent-encoded) over HTTP, ?member= on a browser's WebSocket."""
    peer = Doc()
    pulled = HTTP.post(f"{server.url}/sync/{setup.pid}/pull", headers=bearer(setup.write))
    peer.apply_update(pulled.content)
    before = peer.get_state()
    peer.get("talents", type=Map)["by-http"] = Map({"name": "By Http"})
    headers = {**bearer(setup.write), MEMBER_HEADER: "Lu%C3%AD%20Ortiz"}
    pushed = HTTP.post(
        f"{server.url}/sync/{setup.pid}/push", headers=headers, content=peer.get_update(before)
    )
    assert pushed.status_code == 200
    url = f"{server.ws_url}/{setup.pid}?token={setup.write}&member=Ines%20Rey"
    with connect(url, proxy=None, open_timeout=PATIENCE, max_size=None) as conn:
        handshake(conn, peer)
        before = peer.get_state()
        peer.get("talents", type=Map)["by-ws"] = Map({"name": "By WebSocket"})
        conn.send(p.update_frame(peer.get_update(before)))
        assert wait_until(lambda: "By WebSocket" in server_talents(setup))
    with Workspace.open(setup.path, create=False) as ws:
        production = ws.production(setup.pid)
        members = {e: production.history(entity=e)[0].member for e in ("by-http", "by-ws")}
    assert members == {"by-http": "Luí Ortiz", "by-ws": "Ines Rey"}


def test_server_urls_bracket_ipv6_hosts() -> None:
    from castroom.sync.server import server_url

    assert server_url("127.0.0.1", 8765) == "http://127.0.0.1:8765"
    assert server_url("::1", 8765, tls=True) == "https://[::1]:8765"
    assert server_url("::1", 8765, websocket=True) == "ws://[::1]:8765"
    assert server_url("[::1]", 1, tls=True, websocket=True) == "wss://[::1]:1"


def test_server_thread_on_ipv6_loopback_has_a_usable_url(tmp_path: Path) -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with Workspace.open(tmp_path / "ws"):
        pass
    with ServerThread(tmp_path / "ws", host="::1") as server:
        assert server.url.startswith("http://[::1]:")
        assert server.ws_url.startswith("ws://[::1]:") and server.ws_url.endswith("/sync")
        assert httpx.get(f"{server.url}/health", timeout=PATIENCE).json() == {"status": "ok"}

"""`castroom serve` at ws://HOST:PORT/hocuspocus with stock `@hocuspocus/provider` peers
(npm 4.7.0, in Node), and the raw frames a provider sends, checked byte for byte."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from sync_helpers import (
    PATIENCE,
    NodePeer,
    make_token,
    needs_node_peers,
    wait_until,
)

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync import hocuspocus as hp
from castroom.sync import protocol
from castroom.sync.server import ServerThread


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Path, str, str, str]]:
    """Two productions, one talent in the first: (path, first id, second id, talent id)."""
    path = tmp_path / "server-ws"
    with Workspace.open(path, member="casting") as ws:
        first = ws.create_production("Harbour Lights")
        second = ws.create_production("Second Unit")
        talent = first.doc.add(model.Talent, name="Ada Quinn")
        assert first.id and second.id
        yield path, first.id, second.id, talent.id


def _hp_url(server: ServerThread) -> str:
    return server.ws_url.removesuffix("/sync") + "/hocuspocus"


async def _frames(
    url: str, sent: list[bytes], until: int, timeout: float = PATIENCE
) -> list[hp.Frame]:
    """Send raw frames on one socket; collect decoded answers until ``until`` arrived."""
    got: list[hp.Frame] = []
    async with websockets.connect(url, proxy=None, open_timeout=PATIENCE) as conn:
        for frame in sent:
            await conn.send(frame)
        async with asyncio.timeout(timeout):
            while len(got) < until:
                got.append(hp.decode(await conn.recv(), max_size=1 << 24))  # type: ignore[arg-type]
    return got


def test_one_socket_many_productions_each_authenticated(seeded) -> None:
    path, first, second, _ = seeded
    write = make_token(path, "write")
    limited = make_token(path, "read", production=second)
    sent = [
        hp.token(first, write),
        hp.token(second, limited),
        hp.token(first + "-nope", write),
        hp.token("x" + second, "wrong-token"),
        hp.PING,
    ]
    with ServerThread(path) as server:
        got = asyncio.run(_frames(_hp_url(server), sent, until=5))
    answers = {(f.name, f.auth, f.text) for f in got if f.type is hp.HPType.AUTH}
    assert (first, hp.AuthType.AUTHENTICATED, hp.SCOPE_WRITE) in answers
    assert (second, hp.AuthType.AUTHENTICATED, hp.SCOPE_READ) in answers
    denied = {f.name: f.text for f in got if f.auth is hp.AuthType.PERMISSION_DENIED}
    assert "no production" in denied[first + "-nope"]
    assert "x" + second in denied and "token" in denied["x" + second]
    assert any(f.type is hp.HPType.PONG for f in got)


def test_limited_token_is_refused_the_other_production(seeded) -> None:
    path, first, second, _ = seeded
    limited = make_token(path, "write", production=second)
    with ServerThread(path) as server:
        [answer] = asyncio.run(_frames(_hp_url(server), [hp.token(first, limited)], until=1))
    assert answer.auth is hp.AuthType.PERMISSION_DENIED
    assert answer.name == first


def test_live_peer_caps_hold_per_document_on_one_socket(seeded) -> None:
    """Each document a provider opens on one socket is a live peer, counted against its
    token's cap as a y-websocket socket is (ServerOptions.max_peers_per_token)."""
    from castroom.sync.server import ServerOptions

    path, first, second, _ = seeded
    write = make_token(path, "write")
    sent = [hp.token(first, write), hp.token(second, write)]
    with ServerThread(path, options=ServerOptions(max_peers_per_token=1)) as server:
        got = asyncio.run(_frames(_hp_url(server), sent, until=2))
    answers = {f.name: (f.auth, f.text) for f in got if f.type is hp.HPType.AUTH}
    assert answers[first] == (hp.AuthType.AUTHENTICATED, hp.SCOPE_WRITE)
    assert answers[second][0] is hp.AuthType.PERMISSION_DENIED
    assert "at most 1 live connections per token" in answers[second][1]


def test_sync_step_and_status_over_hocuspocus(seeded) -> None:
    """A provider's step 1 is answered with step 2 and the server's step 1 (addressed to the
    document), an update with a sync status; a read-only token's update is refused."""
    path, first, _, _ = seeded
    write, read = make_token(path, "write"), make_token(path, "read")
    from pycrdt import Doc, Map

    scratch = Doc()
    scratch["x"] = Map({"k": "v"})
    update = scratch.get_update()
    step1 = hp.wrap(first, protocol.step1_frame(b"\x00"))
    with ServerThread(path) as server:
        url = _hp_url(server)
        got = asyncio.run(
            _frames(
                url,
                [hp.token(first, write), step1, hp.wrap(first, protocol.update_frame(update))],
                until=4,
            )
        )
        kinds = [(f.type, protocol.decode_message(f.yjs).sync_type if f.yjs else None) for f in got]
        assert kinds[1:] == [
            (hp.HPType.SYNC, protocol.SyncType.STEP2),
            (hp.HPType.SYNC, protocol.SyncType.STEP1),
            (hp.HPType.SYNC_STATUS, None),
        ]
        assert got[3].applied is True
        scratch["x"]["k"] = "changed"
        again = scratch.get_update()
        got = asyncio.run(
            _frames(
                url, [hp.token(first, read), hp.wrap(first, protocol.update_frame(again))], until=2
            )
        )
        assert got[0].text == hp.SCOPE_READ
        assert (got[1].type, got[1].applied) == (hp.HPType.SYNC_STATUS, False)


def test_bad_frame_closes_the_socket_and_changes_nothing(seeded) -> None:
    path, first, _, _ = seeded
    write = make_token(path, "write")
    with Workspace.open(path) as ws:
        before = ws.production(first).doc.encode_update()
    with ServerThread(path) as server:

        async def run() -> int | None:
            async with websockets.connect(
                _hp_url(server), proxy=None, open_timeout=PATIENCE
            ) as conn:
                await conn.send(hp.token(first, write))
                await conn.recv()
                await conn.send(hp.wrap(first, protocol.update_frame(b"\x01\x02garbage")))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    async with asyncio.timeout(PATIENCE):
                        while True:
                            await conn.recv()
                return closed.value.rcvd.code if closed.value.rcvd else None

        assert asyncio.run(run()) == 1007
    with Workspace.open(path) as ws:
        assert ws.production(first).doc.encode_update() == before


@needs_node_peers
def test_hocuspocus_providers_edit_through_castroom(seeded) -> None:
    path, first, _, ada = seeded
    token = make_token(path, "write")
    read = make_token(path, "read")
    with ServerThread(path) as server:
        url = _hp_url(server)
        with (
            NodePeer(url, first, token=token, name="alice", protocol="hocuspocus") as alice,
            NodePeer(
                url, first, token=token, name="bob", protocol="hocuspocus", session_aware=True
            ) as bob,
            NodePeer(url, first, token=read, name="reader", protocol="hocuspocus") as reader,
            Workspace.open(path) as cli,
        ):
            for peer in (alice, bob, reader):
                peer.wait_synced()
            assert alice.wait_event("authenticated")["scope"] == hp.SCOPE_WRITE
            assert reader.wait_event("authenticated")["scope"] == hp.SCOPE_READ
            assert alice.dump()["talents"][ada]["name"] == "Ada Quinn"
            # A provider's edit reaches castroom (durably) and the other provider.
            taken = server.app_state.frames_taken_now
            alice.request("set", collection="talents", id=ada, field="union", value="Equity")
            production = cli.production(first)
            assert wait_until(lambda: production.doc.get(model.Talent, ada).union == "Equity")
            bob.request("wait", collection="talents", id=ada, field="union", value="Equity")
            assert wait_until(lambda: alice.request("unsynced")["number"] == 0)
            # A castroom edit reaches every provider, the reader too.
            production.doc.update(model.Talent, ada, {"name": "Ada Q. Quinn"})
            for peer in (alice, bob, reader):
                peer.request(
                    "wait", collection="talents", id=ada, field="name", value="Ada Q. Quinn"
                )
            # Presence crosses providers on one document.
            assert wait_until(
                lambda: (
                    {p["user"]["name"] for p in alice.request("peers")["peers"]}
                    == {"bob", "reader"}
                )
            )
            # The reader's edit is refused: it stays unsynced there and never lands here.
            reader.request("set", collection="talents", id=ada, field="union", value="SAG")
            assert wait_until(lambda: reader.request("unsynced")["number"] > 0)
            bob.request("set", collection="talents", id=ada, field="agent", value="Pat")
            assert wait_until(lambda: production.doc.get(model.Talent, ada).agent == "Pat")
            assert production.doc.get(model.Talent, ada).union == "Equity"
            # The writers' edits were taken as they arrived, not through the ASGI queue
            # (HocuspocusSocket.take_now): this fails if that fast path is never taken.
            assert server.app_state.frames_taken_now - taken >= 2


def test_revoked_token_closes_the_document(seeded) -> None:
    path, first, _, _ = seeded
    from castroom.sync.auth import TokenStore

    with Workspace.open(path) as ws:
        info, secret = TokenStore(ws.store).create("write", name="soon revoked")
    with ServerThread(path) as server:

        async def run() -> list[hp.Frame]:
            got: list[hp.Frame] = []
            async with websockets.connect(
                _hp_url(server), proxy=None, open_timeout=PATIENCE
            ) as conn:
                await conn.send(hp.token(first, secret))
                got.append(hp.decode(await conn.recv(), max_size=1 << 24))  # type: ignore[arg-type]
                with Workspace.open(path) as ws:
                    TokenStore(ws.store).revoke(info.id)
                # Sent after the revocation: never merged.
                await conn.send(hp.wrap(first, protocol.update_frame(_scratch_update())))
                async with asyncio.timeout(PATIENCE):
                    while not any(f.type is hp.HPType.CLOSE for f in got):
                        got.append(hp.decode(await conn.recv(), max_size=1 << 24))  # type: ignore[arg-type]
            return got

        with Workspace.open(path) as ws:
            before = ws.production(first).doc.encode_update()
        got = asyncio.run(run())
        with Workspace.open(path) as ws:
            assert ws.production(first).doc.encode_update() == before
    assert got[0].auth is hp.AuthType.AUTHENTICATED
    denied = [f for f in got if f.auth is hp.AuthType.PERMISSION_DENIED]
    assert denied and "revoked" in denied[0].text
    assert got[-1].name == first


def test_tls_hocuspocus_endpoint(seeded, tmp_path: Path) -> None:
    from sync_helpers import make_cert

    from castroom.sync.hocuspocus_client import sync_hocuspocus

    path, first, _, _ = seeded
    token = make_token(path, "write")
    cert, key = make_cert(tmp_path)
    with ServerThread(path, tls_cert=cert, tls_key=key) as server:
        url = server.ws_url.removesuffix("/sync") + "/hocuspocus"
        assert url.startswith("wss://")
        with Workspace.open(tmp_path / "other") as ws:
            [item] = sync_hocuspocus(ws, url, token=token, productions=[first], cacert=cert)
            assert item.served and ws.production(first).doc.production.title == "Harbour Lights"


def test_provider_on_the_y_websocket_endpoint_is_told_where_to_go(seeded) -> None:
    path, first, _, _ = seeded
    token = make_token(path, "write")
    with ServerThread(path) as server:

        async def run() -> str:
            url = f"{server.ws_url}/{first}?token={token}"
            async with websockets.connect(url, proxy=None, open_timeout=PATIENCE) as conn:
                await conn.send(hp.token(first, token, "4.7.0"))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    async with asyncio.timeout(PATIENCE):
                        while True:
                            await conn.recv()
                assert closed.value.rcvd is not None
                return closed.value.rcvd.reason

        assert "connect to /hocuspocus" in asyncio.run(run())


def _scratch_update() -> bytes:
    from pycrdt import Doc, Map

    scratch = Doc()
    scratch["talents"] = Map({"t-revoked": Map({"id": "t-revoked", "name": "Too Late"})})
    return scratch.get_update()

"""`castroom sync ws://... --protocol hocuspocus` against a stock `@hocuspocus/server` 4.7.0
(Node) and against `castroom serve`'s /hocuspocus: one socket for every production, the
token in each auth message, read-only answers honoured, confirmed both ways."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import (
    NODE_PEERS,
    PATIENCE,
    NodeHocuspocus,
    NodePeer,
    make_token,
    wait_until,
)

from castroom.core import model
from castroom.core.errors import CastroomError
from castroom.core.workspace import Workspace
from castroom.sync.hocuspocus_client import sync_hocuspocus
from castroom.sync.server import ServerThread

CASTROOM = Path(sys.executable).with_name("castroom")
pytestmark = NODE_PEERS


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """A workspace with two productions: (path, first id, second id)."""
    path = tmp_path / "laptop"
    with Workspace.open(path, member="casting") as ws:
        first = ws.create_production("Harbour Lights")
        first.doc.add(model.Talent, name="Ada Quinn")
        second = ws.create_production("Second Unit")
        second.doc.add(model.Role, name="Nora")
        assert first.id and second.id
        yield path, first.id, second.id


def _lines() -> tuple[list[str], object]:
    lines: list[str] = []
    return lines, lines.append


def test_every_production_over_one_socket_to_stock_hocuspocus(two, tmp_path: Path) -> None:
    path, first, second = two
    with NodeHocuspocus(0, "--keep", "1", "--token", "s3cret") as server:
        lines, echo = _lines()
        with Workspace.open(path) as ws:
            moved = sync_hocuspocus(ws, server.url, token="s3cret", echo=echo)  # type: ignore[arg-type]
        assert {m.production_id for m in moved} == {first, second}
        assert all(m.served for m in moved)
        # A second workspace names both productions and gets them whole.
        other = tmp_path / "desktop"
        with Workspace.open(other, member="ada") as ws:
            sync_hocuspocus(ws, server.url, token="s3cret", productions=[first, second])
            assert ws.production(first).doc.production.title == "Harbour Lights"
            assert [r.name for r in ws.production(second).doc.all(model.Role)] == ["Nora"]
            ws.production(second).doc.add(model.Role, name="Young Nora")
            sync_hocuspocus(ws, server.url, token="s3cret")
        # A stock provider sees the edit.
        with NodePeer(server.url, second, token="s3cret", protocol="hocuspocus") as peer:
            peer.wait_synced()
            names = {r["name"] for r in peer.dump()["roles"].values()}
            assert names == {"Nora", "Young Nora"}
        with Workspace.open(path) as ws:
            lines.clear()
            sync_hocuspocus(ws, server.url, token="s3cret", echo=echo)  # type: ignore[arg-type]
            assert {r.name for r in ws.production(second).doc.all(model.Role)} == {
                "Nora",
                "Young Nora",
            }
        assert any("Second Unit" in line and "pulled 1 change" in line for line in lines), lines


def test_wrong_token_is_refused_and_changes_nothing(two) -> None:
    path, first, _ = two
    with (
        NodeHocuspocus(0, "--keep", "1", "--token", "s3cret") as server,
        Workspace.open(path) as ws,
    ):
        before = ws.production(first).doc.encode_update()
        with pytest.raises(CastroomError, match="not synced") as refused:
            sync_hocuspocus(ws, server.url, token="wrong")
        assert "Harbour Lights" in str(refused.value)
        assert ws.production(first).doc.encode_update() == before


def test_read_only_answer_keeps_local_edits_here(two, tmp_path: Path) -> None:
    path, first, _ = two
    with NodeHocuspocus(0, "--keep", "1", "--token", "w", "--read-token", "r") as server:
        with Workspace.open(path) as ws:
            sync_hocuspocus(ws, server.url, token="w", productions=[first])
            ws.production(first).doc.add(model.Talent, name="Offline Edit")
            lines, echo = _lines()
            [item] = sync_hocuspocus(ws, server.url, token="r", productions=[first], echo=echo)  # type: ignore[arg-type]
            assert item.not_sent == "read-only token"
            assert any("local edits not sent (read-only token)" in line for line in lines)
        with NodePeer(server.url, first, token="w", protocol="hocuspocus") as peer:
            peer.wait_synced()
            names = {t["name"] for t in peer.dump()["talents"].values()}
            assert names == {"Ada Quinn"}


def test_castroom_serve_speaks_hocuspocus_to_the_client(two, tmp_path: Path) -> None:
    path, first, second = two
    token = make_token(path, "write", production=second)
    other = tmp_path / "desktop"
    with ServerThread(path) as server:
        url = server.ws_url.removesuffix("/sync") + "/hocuspocus"
        with Workspace.open(other) as ws:
            # The token reaches one production: the other is refused, by name.
            with pytest.raises(CastroomError, match="not synced"):
                sync_hocuspocus(ws, url, token=token, productions=[first, second])
            [item] = sync_hocuspocus(ws, url, token=token, productions=[second])
            assert item.served
            ws.production(second).doc.add(model.Role, name="From Desktop")
            sync_hocuspocus(ws, url, token=token)
        with Workspace.open(path) as ws:
            assert wait_until(
                lambda: (
                    "From Desktop" in {r.name for r in ws.production(second).doc.all(model.Role)}
                )
            )


def test_a_wrong_token_is_one_line_from_the_command(two, tmp_path: Path) -> None:
    """`castroom sync ws://... --protocol hocuspocus` with a wrong token: one error line
    naming the production and the server's reason (it printed three)."""
    import subprocess

    path = two[0]
    make_token(path, "write")
    other = tmp_path / "desktop"
    with Workspace.open(other, member="ada") as ws:
        ws.create_production("Desk Copy")
    with ServerThread(path) as server:
        url = server.ws_url.removesuffix("/sync") + "/hocuspocus"
        wrong = ["--protocol", "hocuspocus", "--token", "crt_000000000000_wrong"]
        done = subprocess.run(
            [str(CASTROOM), "-w", str(other), "sync", url, *wrong],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: not synced with {url}: Desk Copy (")
    assert "invalid, expired or revoked token" in lines[0]


def test_cli_live_and_timeout_suggestion(two, tmp_path: Path) -> None:
    import subprocess

    path, first, _ = two
    with NodeHocuspocus(0) as server:
        # y-websocket framing against Hocuspocus: it never answers; the error says so.
        plain = subprocess.run(
            [
                str(CASTROOM),
                "-w",
                str(path),
                "sync",
                f"{server.url}/rooms",
                "--production",
                first,
                "--timeout",
                "3",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert plain.returncode != 0
        said = plain.stderr + plain.stdout
        assert "did not answer in 3 s; waited for its sync step 2" in said, said
        assert "--protocol hocuspocus" in said
        # A first sync that fails leaves no workspace behind.
        fresh = tmp_path / "fresh"
        nothing = subprocess.run(
            [str(CASTROOM), "-w", str(fresh), "sync", server.url, "--protocol", "hocuspocus"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert nothing.returncode != 0 and "no production here" in nothing.stderr
        assert not fresh.exists()
        live = subprocess.Popen(
            [
                str(CASTROOM),
                "-w",
                str(path),
                "sync",
                server.url,
                "--protocol",
                "hocuspocus",
                "--live",
                "--duration",
                "300",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            with NodePeer(server.url, first, name="browser", protocol="hocuspocus") as peer:
                peer.wait_synced()
                with Workspace.open(path) as ws:
                    ada = next(t.id for t in ws.production(first).doc.all(model.Talent))
                peer.request("wait", collection="talents", id=ada)
                peer.request("set", collection="talents", id=ada, field="union", value="Equity")
                with Workspace.open(path) as ws:
                    production = ws.production(first)
                    assert wait_until(
                        lambda: production.doc.get(model.Talent, ada).union == "Equity"
                    )
                    production.doc.update(model.Talent, ada, {"agent": "Pat"})
                peer.request("wait", collection="talents", id=ada, field="agent", value="Pat")
                assert wait_until(
                    lambda: any(
                        p.get("user", {}).get("app") == "castroom"
                        for p in peer.request("peers")["peers"]
                    )
                )
        finally:
            live.terminate()
            out, _ = live.communicate(timeout=PATIENCE)
        assert "live: 2 production(s)" in out
        assert "Harbour Lights: connected with: browser" in out, out


def test_a_y_websocket_relay_is_named_on_timeout(two) -> None:
    from sync_helpers import NodeRelay

    path, first, _ = two
    with NodeRelay() as relay, Workspace.open(path) as ws, pytest.raises(CastroomError) as failed:
        sync_hocuspocus(ws, f"{relay.url}/sync", productions=[first], timeout=2)
    assert "without --protocol hocuspocus" in str(failed.value)

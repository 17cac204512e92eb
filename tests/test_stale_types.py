"""A peer's write never crashes castroom through a Y type another peer deleted or
replaced. Yrs frees a deleted type, and pycrdt writes through a handle to it without
checking: castroom caches each entity's map, and a cached map a peer replaced made the
next write segfault (this module's matrix exits 139 when the cache is not dropped on the
merge). Every case runs in a subprocess, so a SIGSEGV fails the test, not pytest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from patience import PATIENCE
from pycrdt import Doc, Map, Text
from stale_types import ATTACKS, seed
from sync_helpers import make_token, wait_until
from test_hostile import castroom, python
from test_sync_cli import Served

from castroom.core.yupdate import decode_state_vector

pytestmark = pytest.mark.slow

PROBE = Path(__file__).with_name("stale_types.py")


def test_every_write_path_after_a_peer_deleted_or_replaced_its_types(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(PROBE), str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    cases = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, (done.returncode, cases[-1:], done.stderr[-2000:])
    assert len(cases) == 200
    for case in cases:
        assert case["refusal_changed_nothing"] and case["reload_agrees"], case
        outcome = case["outcome"]
        assert outcome == "written" or (outcome.startswith("refused: ") and "\n" not in outcome)
    by = {(c["attack"], c["write"], c["other_process"]): c["outcome"] for c in cases}
    # Gone: one clear error, not a write into the freed map.
    assert by[("entity deleted", "update plain field", False)] == "refused: no role with id 'R1'"
    assert by[("entity replaced by a subdocument", "edit text", True)] == (
        "refused: no role with id 'R1'"
    )
    # Replaced by another map: the write goes to the map the document holds now.
    assert by[("entity replaced by a map", "update plain field", False)] == "written"


def _pull(url: str, pid: str, token: str) -> bytes:
    answer = httpx.post(
        f"{url}/sync/{pid}/pull",
        headers={"Authorization": f"Bearer {token}"},
        content=b"\x00",
        timeout=PATIENCE,
    )
    assert answer.status_code == 200, answer.text
    return answer.content


def _push(url: str, pid: str, token: str, update: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/sync/{pid}/push",
        headers={"Authorization": f"Bearer {token}"},
        content=update,
        timeout=PATIENCE,
    )


def _concurrent_edit(peer: Doc, rid: str) -> None:
    """What an honest peer that has not seen the attack writes into the role's types."""
    role = peer.get("roles", type=Map)[rid]
    assert isinstance(role, Map)
    with peer.transaction():
        role["description"] = "edited concurrently"
        notes = role["notes"]
        assert isinstance(notes, Text)
        notes.insert(0, "more ")
        role["backups"].append("T3")  # type: ignore[union-attr]
        role["external_ids"]["site"] = "42"  # type: ignore[index]


def test_the_server_merges_edits_into_types_a_peer_deleted_or_replaced(tmp_path: Path) -> None:
    """Each attack on its own role: a hostile peer's update, then an honest peer's
    concurrent edit into the same (now freed) types, then a CLI write the server picks up
    from the shared workspace. The server keeps serving, and its state is what a fresh
    load of its log gives."""
    path = tmp_path / "server"
    roles = {name: f"R{n}" for n, name in enumerate(ATTACKS, start=1)}
    pid = seed(path, tuple(roles.values()))
    token = make_token(path, "write")
    server = Served(path, tmp_path / "serve.log")
    try:
        for name, attack in ATTACKS.items():
            rid = roles[name]
            whole = _pull(server.url, pid, token)
            hostile, honest = Doc(), Doc()
            for peer in (hostile, honest):
                peer.apply_update(whole)
            before = hostile.get_state()
            with hostile.transaction():
                attack(hostile, rid)
            _concurrent_edit(honest, rid)
            assert _push(server.url, pid, token, hostile.get_update(before)).status_code == 200
            answer = _push(server.url, pid, token, honest.get_update(before))
            assert answer.status_code == 200, answer.text
            done = castroom("--workspace", str(path), "set", "role", rid, "status=cast")
            assert done.returncode in (0, 1), (name, done.returncode, done.stderr[-2000:])
            assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) <= 1, name
            # The server merges the CLI's commit from the workspace (then relays it).
            assert server.proc.poll() is None, (name, server.log.read_text()[-2000:])
            assert httpx.get(f"{server.url}/health", timeout=PATIENCE).status_code == 200
        served = lambda: decode_state_vector(_state_vector(server.url, pid, token))  # noqa: E731
        assert wait_until(lambda: served() == decode_state_vector(_stored_state(path, pid)))
    finally:
        code = server.stop()
    assert code in (0, -15), server.log.read_text()[-2000:]


def _state_vector(url: str, pid: str, token: str) -> bytes:
    answer = httpx.get(
        f"{url}/sync/{pid}/state", headers={"Authorization": f"Bearer {token}"}, timeout=PATIENCE
    )
    assert answer.status_code == 200, answer.text
    return answer.content


def _stored_state(path: Path, pid: str) -> bytes:
    """The state vector a fresh process loads from the log (in a subprocess)."""
    code = (
        "import sys\n"
        "from castroom.core.workspace import Workspace\n"
        "with Workspace.open(sys.argv[1], create=False) as ws:\n"
        "    sys.stdout.write(ws.production(sys.argv[2]).doc.state_vector().hex())\n"
    )
    return bytes.fromhex(python(code, str(path), pid))

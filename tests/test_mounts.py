"""A workspace on a read-only mount, and on a full disk: real mounts (a read-only bind
mount, a tiny tmpfs) in a private user and mount namespace (``unshare -rm``), so nothing
outside the test sees them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from patience import PATIENCE

EXE = str(Path(sys.executable).with_name("castroom"))


def in_private_mounts(script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a shell script as root of a private user+mount namespace; skip (saying why)
    where this machine allows none."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs none /mnt"],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    if probe.returncode != 0:
        pytest.skip(f"private mount namespaces are not allowed here: {probe.stderr.strip()}")
    return subprocess.run(
        ["unshare", "-rm", "sh", "-euc", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def castroom(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, "--workspace", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )


def test_a_read_only_workspace_can_still_be_read(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert castroom(ws, "init", "--production", "Harbour Lights").returncode == 0
    assert castroom(ws, "add", "talent", "name=Ada Stone").returncode == 0
    run = in_private_mounts(f"""
        mount --bind {ws} {ws}
        mount -o remount,bind,ro {ws}
        {EXE} --workspace {ws} list talents
        {EXE} --workspace {ws} show talent "Ada Stone"
        {EXE} --workspace {ws} check
        {EXE} --workspace {ws} add talent "name=Bo Li" 2>&1 || echo "add exited $?"
    """)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("Ada Stone") >= 2 and "No findings." in run.stdout
    assert "is read-only: nothing was written" in run.stdout and "add exited 1" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_a_full_disk_during_compact_is_one_clear_error(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    ws = disk / "ws"
    run = in_private_mounts(f"""
        mount -t tmpfs -o size=1m none {disk}
        {EXE} --workspace {ws} init --production "Harbour Lights" > /dev/null
        for i in 1 2 3 4 5 6 7 8; do {EXE} --workspace {ws} add talent "name=T$i" > /dev/null; done
        dd if=/dev/zero of={disk}/filler bs=4k 2> /dev/null || true
        {EXE} --workspace {ws} compact 2>&1 || echo "compact exited $?"
        rm {disk}/filler
        {EXE} --workspace {ws} list talents --json
    """)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "is full: nothing was written" in run.stdout and "compact exited 1" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert run.stdout.count('"name": "T') == 8  # nothing lost


def test_a_full_disk_on_the_server_refuses_a_push_with_507(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "push.py"
    script.write_text(
        textwrap.dedent(f"""
        import subprocess, httpx
        from castroom.core import model
        from castroom.core.workspace import Workspace
        from castroom.sync.auth import TokenStore
        from castroom.sync.server import ServerThread
        with Workspace.open("{disk}/ws") as ws:
            served = ws.create_production("Harbour Lights")
            pid, held = served.id, served.doc.encode_update()
            token = TokenStore(ws.store).create("write")[1]
        with Workspace.open("{tmp_path}/laptop") as laptop:
            mine = laptop.adopt(pid, held, origin="sync")[0]
            for i in range(200):
                mine.doc.add(model.Talent, name=f"Talent {{i}}", notes="x" * 500)
            update = mine.doc.encode_update()
        subprocess.run("dd if=/dev/zero of={disk}/filler bs=4k 2> /dev/null", shell=True)
        with ServerThread("{disk}/ws") as server:
            answer = httpx.post(f"{{server.url}}/sync/{{pid}}/push", content=update,
                                headers={{"Authorization": f"Bearer {{token}}"}}, timeout=30)
        print(answer.status_code, answer.json()["error"])
        """)
    )
    run = in_private_mounts(f"""
        mount -t tmpfs -o size=1m none {disk}
        {sys.executable} {script} 2>&1
    """)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "507" in run.stdout and "is full: nothing was written" in run.stdout, run.stdout
    assert "Traceback" not in run.stdout

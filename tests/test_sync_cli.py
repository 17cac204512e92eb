"""`castroom token`, `castroom serve` and `castroom sync` as a person runs them: in-process
for the quick cases, real subprocesses (a real server on 127.0.0.1) end to end."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sync_helpers import (
    PATIENCE,
    ctrl_c_works,
    make_cert,
    make_token,
    stop_process,
    wait_until,
)

from castroom.core import model
from castroom.core.workspace import Workspace

EXE = str(Path(sys.executable).with_name("castroom"))


def castroom(
    *args: str, env: dict[str, str] | None = None, timeout: float = PATIENCE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


class Served:
    """`castroom serve --port 0` in a subprocess; its URL read from its first line."""

    def __init__(self, workspace: Path, log: Path, *extra: str) -> None:
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(
            [EXE, "--workspace", str(workspace), "serve", "--port", "0", *extra],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + PATIENCE
        while not (match := re.search(r"at (https?://127\.0\.0\.1:\d+)", log.read_text())):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.05)
        self.url = match.group(1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        code = stop_process(self.proc, sig)
        self.handle.close()
        return code


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "server"
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Harbour Lights")
        production.doc.add(model.Talent, name="Ada Stone")
        assert production.id
        return path, production.id


@pytest.fixture
def served(seeded: tuple[Path, str], tmp_path: Path) -> Iterator[Served]:
    server = Served(seeded[0], tmp_path / "serve.log")
    yield server
    server.stop()


def new_token(cli: Any, workspace: Path, *args: str) -> str:
    result = cli("token", "create", *args, workspace=workspace)
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


# -- tokens -------------------------------------------------------------------------------------


def test_token_create_list_revoke(cli: Any, seeded: tuple[Path, str]) -> None:
    path, pid = seeded
    result = cli("token", "create", "--scope", "write", "--name", "ben laptop", workspace=path)
    assert result.exit_code == 0
    *_, token = result.output.strip().splitlines()
    assert re.fullmatch(r"crt_[0-9a-f]{12}_[\w-]{43}", token)
    token_id = token.split("_")[1]
    listed = cli("token", "list", workspace=path).output
    assert token_id in listed and "write" in listed and "ben laptop" in listed
    secret = token.split("_", 2)[2]  # the secret itself may hold "_" (urlsafe base64)
    assert secret not in listed
    scoped = new_token(cli, path, "--scope", "read", "--production", "Harbour Lights")
    entries = cli("token", "list", "--json", workspace=path)
    rows = json.loads(entries.output)
    assert {r["production"] for r in rows} == {None, pid}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", r["created"]) for r in rows)
    assert all(r["revoked"] is None for r in rows)
    assert all("hash" not in r and "secret" not in r for r in rows)
    revoked = cli("token", "revoke", token_id, workspace=path)
    assert revoked.exit_code == 0 and token_id in revoked.output
    assert "revoked" in cli("token", "list", workspace=path).output
    again = cli("token", "revoke", token_id, workspace=path)
    assert again.exit_code == 0 and again.output == f"Token {token_id} was already revoked\n"
    assert scoped.startswith("crt_")


def test_token_create_expires(cli: Any, seeded: tuple[Path, str]) -> None:
    path = seeded[0]
    result = cli("token", "create", "--scope", "read", "--expires", "30d", workspace=path)
    assert result.exit_code == 0 and ", until 20" in result.output
    (entry,) = json.loads(cli("token", "list", "--json", workspace=path).output)
    created = dt.datetime.fromisoformat(entry["created"])
    assert dt.datetime.fromisoformat(entry["expires"]) - created == dt.timedelta(days=30)
    # The plain listing says when it runs out too (a user deciding what to renew).
    until = dt.datetime.fromisoformat(entry["expires"]).strftime("%Y-%m-%d %H:%M")
    assert f"active until {until}" in cli("token", "list", workspace=path).output
    bad = cli("token", "create", "--scope", "read", "--expires", "30 days", workspace=path)
    assert bad.exit_code == 1 and "like 30d" in bad.output
    zero = cli("token", "create", "--scope", "read", "--expires", "0d", workspace=path)
    assert zero.exit_code == 1 and "'0d' would expire at once" in zero.output


def test_token_errors(cli: Any, seeded: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = seeded
    unknown = cli("token", "revoke", "ffffffff", workspace=path)
    assert unknown.exit_code == 1 and "no token" in unknown.output
    bad_scope = cli("token", "create", "--scope", "admin", workspace=path)
    assert bad_scope.exit_code == 2
    no_prod = cli("token", "create", "--scope", "read", "--production", "Nope", workspace=path)
    assert no_prod.exit_code == 1 and "no production" in no_prod.output
    nowhere = cli("token", "create", "--scope", "read", workspace=tmp_path / "missing")
    assert nowhere.exit_code == 1 and "no castroom workspace" in nowhere.output


# -- sync dispatch ------------------------------------------------------------------------------


def test_sync_rejects_unknown_schemes(cli: Any) -> None:
    result = cli("sync", "ftp://example.org/x")
    assert result.exit_code == 1 and "use http(s)://, ws(s):// or a folder" in result.output


def talents(workspace: Path) -> set[str]:
    listed = castroom("--workspace", str(workspace), "list", "talents", "--json")
    assert listed.returncode == 0, listed.stderr
    return {row["name"] for row in json.loads(listed.stdout)}


def test_sync_path_converges_two_workspaces_through_a_folder(tmp_path: Path) -> None:
    """`castroom sync PATH`, as a person runs it: real processes, one shared folder."""
    shared, a, b = tmp_path / "shared", tmp_path / "a", tmp_path / "b"
    shared.mkdir()
    made = castroom("--workspace", str(a), "init", "--production", "Folder Show")
    assert made.returncode == 0, made.stderr
    assert castroom("--workspace", str(a), "add", "talent", "name=Ada Stone").returncode == 0
    first = castroom("--workspace", str(a), "sync", str(shared))
    assert first.returncode == 0, first.stderr
    assert "wrote 1 file(s)" in first.stdout
    joined = castroom("--workspace", str(b), "sync", str(shared))  # an empty workspace joins
    assert joined.returncode == 0, joined.stderr
    assert "adopted 1 production(s)" in joined.stdout
    assert castroom("--workspace", str(b), "add", "talent", "name=Ben Ray").returncode == 0
    assert castroom("--workspace", str(b), "sync", str(shared)).returncode == 0
    back = castroom("--workspace", str(a), "sync", str(shared))
    assert back.returncode == 0 and "merged 1 file(s)" in back.stdout
    assert talents(a) == talents(b) == {"Ada Stone", "Ben Ray"}
    again = castroom("--workspace", str(a), "sync", str(shared))
    assert again.returncode == 0 and "up to date" in again.stdout


def test_sync_path_live_picks_up_a_peer_until_interrupted(tmp_path: Path) -> None:
    """`castroom sync PATH --live` in its own process: another workspace's one-shot sync
    reaches it, and Ctrl-C ends it cleanly."""
    shared, a, b = tmp_path / "shared", tmp_path / "a", tmp_path / "b"
    shared.mkdir()
    assert castroom("--workspace", str(a), "init", "--production", "Live Folder").returncode == 0
    assert castroom("--workspace", str(a), "sync", str(shared)).returncode == 0
    assert castroom("--workspace", str(b), "sync", str(shared)).returncode == 0
    log = tmp_path / "live.log"
    with log.open("w") as handle:
        live = subprocess.Popen(
            [EXE, "--workspace", str(b), "sync", str(shared), "--live"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=ctrl_c_works,  # ended below by a Ctrl-C
        )
        try:
            deadline = time.monotonic() + PATIENCE
            while "watching" not in log.read_text():
                assert time.monotonic() < deadline and live.poll() is None, log.read_text()
                time.sleep(0.05)
            assert castroom("--workspace", str(a), "add", "talent", "name=Cy Live").returncode == 0
            assert castroom("--workspace", str(a), "sync", str(shared)).returncode == 0
            deadline = time.monotonic() + PATIENCE
            while "Cy Live" not in talents(b):
                assert time.monotonic() < deadline and live.poll() is None, log.read_text()
                time.sleep(0.2)
        finally:
            if live.poll() is None:
                live.send_signal(signal.SIGINT)
            try:
                live.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                live.kill()
                live.wait(timeout=5)
    assert live.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_failed_first_sync_leaves_no_workspace_behind(cli: Any, tmp_path: Path) -> None:
    result = cli("sync", "http://127.0.0.1:9", "--token", "x", workspace=tmp_path / "new")
    assert result.exit_code == 1 and "cannot reach" in result.output
    assert not (tmp_path / "new").exists()


def test_sync_unreachable_exits_1_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "laptop"
    with Workspace.open(path) as ws:
        ws.create_production("Mine")
    before = (path / "castroom.db").stat().st_mtime_ns, Workspace.open(path).productions()
    result = castroom("--workspace", str(path), "sync", "http://127.0.0.1:9", "--token", "x")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: cannot reach http://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1
    assert Workspace.open(path).productions() == before[1]


# -- end to end ---------------------------------------------------------------------------------


def test_serve_then_sync_end_to_end(
    cli: Any,
    seeded: tuple[Path, str],
    served: Served,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, pid = seeded
    assert httpx.get(f"{served.url}/health", timeout=PATIENCE).json() == {"status": "ok"}
    token = new_token(cli, path, "--scope", "write")
    laptop = tmp_path / "laptop"
    # The real console script once (CASTROOM_TOKEN from the environment) ...
    first = castroom("--workspace", str(laptop), "sync", served.url, env={"CASTROOM_TOKEN": token})
    assert first.returncode == 0, first.stderr
    assert "Harbour Lights" in first.stdout and "new here" in first.stdout
    # ... then in-process, which is quicker.
    cli("add", "talent", "name=Ben Ray", workspace=laptop)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    second = cli("sync", served.url, "--token-file", str(token_file), workspace=laptop)
    assert "pushed 1 change" in second.output
    with Workspace.open(path, create=False) as ws:
        names = {t.name for t in ws.production(pid).doc.all(model.Talent)}
    assert names == {"Ada Stone", "Ben Ray"}
    refused = cli("sync", served.url, "--token", token + "x", workspace=laptop)  # argv works
    assert refused.exit_code == 1 and "refused (401)" in refused.output
    token_file.write_text("")
    empty = cli("sync", served.url, "--token-file", str(token_file), workspace=laptop)
    assert empty.exit_code == 1 and f"token file {token_file} is empty" in empty.output
    missing = cli("sync", served.url, "--token-file", str(tmp_path / "nope"), workspace=laptop)
    assert missing.exit_code == 1 and "cannot read token file" in missing.output
    assert served.stop() == 0
    assert "castroom server stopped" in served.log.read_text()
    assert "Traceback" not in served.log.read_text()


def test_serve_errors(cli: Any, seeded: tuple[Path, str], tmp_path: Path) -> None:
    missing = cli("serve", "--port", "0", workspace=tmp_path / "nothing")
    assert missing.exit_code == 1 and "no castroom workspace" in missing.output
    half_tls = cli("serve", "--port", "0", "--tls-cert", "x.pem", workspace=seeded[0])
    assert half_tls.exit_code == 1 and "go together" in half_tls.output


def test_serve_open_opens_the_sign_in_link_in_the_browser(
    seeded: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`castroom serve --open` hands the printed sign-in link to the user's browser
    ($BROWSER, as Python's webbrowser reads it; here a script that notes what it got)."""
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n')
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", f"{browser} %s")
    served = Served(seeded[0], tmp_path / "serve.log", "--open")
    try:
        link = wait_until(
            lambda: re.search(r"Open the dashboard as .+: (\S+)", served.log.read_text())
        )
        assert link, served.log.read_text()
        assert wait_until(opened.exists), served.log.read_text()
        assert opened.read_text() == link.group(1)
    finally:
        served.stop()


def test_serve_on_a_busy_port(seeded: tuple[Path, str], served: Served) -> None:
    port = served.url.rsplit(":", 1)[1]
    busy = castroom("--workspace", str(seeded[0]), "serve", "--port", port)
    # SO_REUSEADDR does not let two listeners share a port on Linux.
    assert busy.returncode == 1 and "cannot listen" in busy.stderr


def test_tls_end_to_end(cli: Any, seeded: tuple[Path, str], tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    path, _ = seeded
    token = new_token(cli, path, "--scope", "read")
    server = Served(path, tmp_path / "tls.log", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert server.url.startswith("https://")
        laptop = tmp_path / "laptop"
        untrusted = cli("sync", server.url, "--token", token, workspace=laptop)
        assert untrusted.exit_code == 1 and "cannot reach" in untrusted.output
        trusted = cli("sync", server.url, "--token", token, "--cacert", str(cert), workspace=laptop)
        assert trusted.exit_code == 0, trusted.output
        assert "new here" in trusted.output
        wss = server.url.replace("https", "wss") + "/sync"
        over_wss = cli("sync", wss, "--token", token, "--cacert", str(cert), workspace=laptop)
        assert over_wss.exit_code == 0, over_wss.output
    finally:
        server.stop()


def test_sync_to_a_missing_folder_fails_and_creates_no_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "never-made"
    result = castroom("-w", str(workspace), "sync", str(tmp_path / "no-such-folder"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: no folder at {tmp_path / 'no-such-folder'} (create it, or check the path)"
    ]
    assert not workspace.exists()


def test_sync_given_a_bundle_file_points_to_bundle_apply(tmp_path: Path) -> None:
    bundle = tmp_path / "from-sam.bundle"
    bundle.write_bytes(b"not read")
    result = castroom("-w", str(tmp_path / "never-made"), "sync", str(bundle))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: {bundle} is a file, not a folder: to merge a bundle, use `castroom bundle apply`"
    ]
    assert not (tmp_path / "never-made").exists()


def test_history_on_the_server_shows_a_peers_values_delete_and_restore(
    seeded: tuple[Path, str], served: Served, tmp_path: Path
) -> None:
    """A laptop's edits pushed to a real server: the server's history, made from the merged
    updates (not from a local write), shows old → new values and tells a delete from a
    restore."""
    path, _ = seeded
    token = make_token(path)
    laptop = ("--workspace", str(tmp_path / "laptop"), "--member", "noor")

    def run(*args: str) -> None:
        done = castroom(*laptop, *args)
        assert done.returncode == 0, done.stderr

    run("sync", served.url, "--token", token)
    run("set", "talent", "Ada Stone", "rate=1200")
    run("sync", served.url, "--token", token)
    run("set", "talent", "Ada Stone", "rate=$1,500")
    run("delete", "talent", "Ada Stone")
    run("sync", served.url, "--token", token)
    run("restore", "talent", "Ada Stone")
    run("sync", served.url, "--token", token)
    shown = castroom("--workspace", str(path), "history", "--entity", "Ada Stone", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = [(r["member"], r["origin"], r["changes"]) for r in json.loads(shown.stdout)]
    assert rows == [
        ("noor", "sync", ["restored"]),
        ("noor", "sync", ["deleted", "rate: $1,200.00 → $1,500.00"]),
        ("noor", "sync", ["rate: (none) → $1,200.00"]),
        ("casting", "local", ["(created)"]),
    ]


def test_history_on_the_server_names_the_member_who_pushed(
    seeded: tuple[Path, str], served: Served, tmp_path: Path
) -> None:
    """`castroom --member noor sync URL`: the server's history credits noor, not the token
    or the server's own member."""
    path, _ = seeded
    token = make_token(path)
    laptop = str(tmp_path / "laptop")
    first = castroom(
        "--workspace", laptop, "--member", "noor", "sync", served.url, "--token", token
    )
    assert first.returncode == 0, first.stderr
    added = castroom("--workspace", laptop, "--member", "noor", "add", "talent", "name=Ben Ray")
    assert added.returncode == 0, added.stderr
    pushed = castroom(
        "--workspace", laptop, "--member", "noor", "sync", served.url, "--token", token
    )
    assert pushed.returncode == 0 and "pushed 1 change" in pushed.stdout, pushed.stderr
    shown = castroom("--workspace", str(path), "history", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = [r for r in json.loads(shown.stdout) if r["kind"] == "talent" and r["origin"] == "sync"]
    assert [(r["label"], r["member"]) for r in rows] == [("Ben Ray", "noor")], rows

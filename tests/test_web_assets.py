"""The dashboard's shipped files and routes, without a browser: the committed bundle is
built from the current sources, the schema the page validates with is the model's, and
the API asks for the same tokens as the sync endpoints."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
import pytest
from patience import PATIENCE
from pycrdt import Doc
from sync_helpers import make_token, wait_until

from castroom.core import model
from castroom.core.money import money_fields
from castroom.core.workspace import Workspace
from castroom.sync.server import ServerThread
from castroom.sync.web import assets
from castroom.sync.web.schema import ENTITY_CLASSES, NESTED_CLASSES, model_schema


def test_the_committed_bundle_is_built_from_the_current_sources() -> None:
    recorded = assets.built_hash()
    assert recorded is not None, "sync/web/static/app.js records no sources hash"
    assert recorded == assets.sources_hash(), (
        "sync/web/static/ is stale against sync/web/src/: run `make web` and commit static/"
    )
    short = recorded[:16]
    for name in ("index.html", "sw.js"):
        text = (assets.STATIC / name).read_text()
        assert short in text and "__VERSION__" not in text, name


def test_the_presentation_page_is_built_from_the_current_sources() -> None:
    digest = assets.sources_hash()
    head = (assets.STATIC / "present.js").read_bytes()[:200]
    assert head.startswith(f"/* castroom-present sources sha256:{digest} */".encode()), (
        "sync/web/static/present.js is stale against sync/web/src/: run `make web`"
    )
    page = (assets.STATIC / "present.html").read_text()
    assert f"/present.js?v={digest[:16]}" in page and "__VERSION__" not in page


def test_the_sources_hash_changes_with_any_source(tmp_path: Path) -> None:
    copy = tmp_path / "web"
    (copy / "src").mkdir(parents=True)
    for name in assets.source_files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((assets.HERE / name).read_bytes())
    assert assets.sources_hash(copy) == assets.sources_hash()
    (copy / "src" / "util.js").write_text((copy / "src" / "util.js").read_text() + "\n")
    assert assets.sources_hash(copy) != assets.sources_hash()


def test_schema_is_the_models() -> None:
    served = model_schema()
    classes = (*ENTITY_CLASSES, *NESTED_CLASSES)
    _, expected = msgspec.json.schema_components(classes, ref_template="#/$defs/{name}")
    for cls in classes:
        mine = dict(served["$defs"][cls.__name__])
        assert mine.pop("x-ordered", []) == [list(p) for p in getattr(cls, "ordered", ())]
        money = sorted(money_fields(cls)) if cls in ENTITY_CLASSES else []
        assert mine.pop("x-money", []) == money
        assert mine == expected[cls.__name__], cls.__name__
    assert set(served["kinds"]) == {"production", *model.KINDS}
    assert served["kinds"]["candidate"]["crdt_maps"] == ["media", "ratings"]
    assert served["kinds"]["role"]["crdt_arrays"] == ["backups"]
    assert served["$defs"]["Talent"]["x-money"] == ["rate"]
    assert served["x-minor-digits"]["JPY"] == 0 and served["x-minor-digits"]["BHD"] == 3
    # Every ordered pair is a rule the model enforces, in the words the page repeats.
    with pytest.raises(msgspec.ValidationError, match="must be >= playing_age_min"):
        msgspec.convert(
            {"id": "t", "name": "A", "playing_age_min": 40, "playing_age_max": 30}, model.Talent
        )


@pytest.fixture
def server(tmp_path: Path):
    path = tmp_path / "ws"
    with Workspace.open(path, member="Alex") as ws:
        one = ws.create_production("One")
        two = ws.create_production("Two")
    with ServerThread(path) as running:
        yield running, path, one.id, two.id


def test_shell_and_assets_need_no_token_and_the_api_does(server) -> None:
    running = server[0]
    page = httpx.get(f"{running.url}/", timeout=PATIENCE)
    assert page.status_code == 200 and 'src="/app.js?v=' in page.text
    worker = httpx.get(f"{running.url}/sw.js", timeout=PATIENCE)
    assert worker.headers["service-worker-allowed"] == "/"
    assert httpx.get(f"{running.url}/schema.json", timeout=PATIENCE).json() == model_schema()
    assert httpx.get(f"{running.url}/api/session", timeout=PATIENCE).status_code == 401
    bad = httpx.get(
        f"{running.url}/api/session", headers={"Authorization": "Bearer crt_x_y"}, timeout=PATIENCE
    )
    assert bad.status_code == 401 and bad.json() == {"error": "invalid, expired or revoked token"}


def test_session_says_scope_member_and_the_productions_a_token_sees(server) -> None:
    running, path, one, two = server
    token = make_token(path, "read", production=one, name="Sam Chen")
    session = httpx.get(
        f"{running.url}/api/session", params={"token": token}, timeout=PATIENCE
    ).json()
    assert session["scope"] == "read" and session["member"] == "Sam Chen"
    assert session["productions"] == [{"id": one, "title": "One"}]
    findings = httpx.get(
        f"{running.url}/api/{one}/findings", params={"token": token}, timeout=PATIENCE
    )
    assert findings.status_code == 200 and findings.json()["production_id"] == one
    other = httpx.get(
        f"{running.url}/api/{two}/findings", params={"token": token}, timeout=PATIENCE
    )
    assert other.status_code == 403


def _events(lines):
    """(event name, decoded data) from a server-sent event stream's lines."""
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, msgspec.json.decode(line.removeprefix("data: "))


def test_live_stream_sends_findings_and_budget_and_again_after_a_change(server) -> None:
    running, path, one, _ = server
    token = make_token(path, "read")
    url = f"{running.url}/api/{one}/live"
    with httpx.stream("GET", url, params={"token": token}, timeout=PATIENCE) as stream:
        events = _events(stream.iter_lines())
        name, first = next(events)
        assert name == "findings" and first["production_id"] == one
        name, budget = next(events)
        assert name == "budget" and budget["total"] == 0 and budget["lines"] == []
        with Workspace.open(path) as ws:
            production = ws.production(one)
            role = production.doc.add(model.Role, name="Nora")
            production.doc.add(model.Scene, number="1", characters=[role.id])
        # Bounded by the read timeout: every change is followed by fresh findings.
        for name, second in events:
            codes = {f["code"] for f in second["findings"]} if name == "findings" else set()
            if "uncast-character" in codes:
                break
    assert second["checked_at"] > first["checked_at"]


def test_a_peers_answer_that_changes_nothing_does_not_rerun_the_checks(server) -> None:
    """A page's answer to the server's step 1 carries the production's whole delete set
    and changes nothing: the findings stay the ones worked out before (same time), until
    a real change comes."""
    running, path, one, _ = server
    token = make_token(path, "write")
    with Workspace.open(path) as ws:
        production = ws.production(one)
        talent = production.doc.add(model.Talent, name="Ada Stone")
        production.doc.update(model.Talent, talent.id, {"name": "Ada Stone-Lee"})
    first = httpx.get(
        f"{running.url}/api/{one}/findings", params={"token": token}, timeout=PATIENCE
    ).json()
    peer = Doc()
    pulled = httpx.post(
        f"{running.url}/sync/{one}/pull", params={"token": token}, content=b"\0", timeout=PATIENCE
    )
    peer.apply_update(pulled.content)
    state = httpx.get(
        f"{running.url}/sync/{one}/state", params={"token": token}, timeout=PATIENCE
    ).content
    nothing_new = peer.get_update(state)
    assert len(nothing_new) > 2, "no delete set: this would test nothing"
    pushed = httpx.post(
        f"{running.url}/sync/{one}/push",
        params={"token": token},
        content=nothing_new,
        timeout=PATIENCE,
    )
    assert pushed.status_code == 200, pushed.text
    again = httpx.get(
        f"{running.url}/api/{one}/findings", params={"token": token}, timeout=PATIENCE
    ).json()
    assert again["checked_at"] == first["checked_at"]
    # A real change is judged again.
    with Workspace.open(path) as ws:
        ws.production(one).doc.add(model.Talent, name="Cal Reyes")
    wait_until(
        lambda: (
            httpx.get(
                f"{running.url}/sync/{one}/state", params={"token": token}, timeout=PATIENCE
            ).content
            != state
        )
    )
    later = httpx.get(
        f"{running.url}/api/{one}/findings", params={"token": token}, timeout=PATIENCE
    ).json()
    assert later["checked_at"] > first["checked_at"]

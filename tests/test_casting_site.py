"""The casting-site importer: paging, retries with backoff, 429 Retry-After, timeouts, and
re-imports that update. httpx.MockTransport stands in for the outside site; a real local
HTTP server on 127.0.0.1 checks the same over real sockets, through the real CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from castroom.core.document import CastDocument
from castroom.core.errors import CastroomError
from castroom.core.importing import ImportFailed, apply_import
from castroom.core.model import Candidate, Role, Talent
from castroom.core.view import ProductionView
from castroom.plugins.casting_site import _retry_after, import_site
from tests.conftest import run_castroom

URL = "https://site.example/api/talents"


def record(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"t{i}",
        "name": f"Talent {i}",
        "playing_age": {"min": 20 + i, "max": 30 + i},
        "rate_minor": 1000 * i,
        "languages": ["English"],
        "unknown_future_field": 1,
        **extra,
    }


Handler = Callable[[httpx.Request], httpx.Response]


def pages(per_page: int, records: list[dict[str, Any]]) -> Handler:
    """A well-behaved site: ``?page=N``, relative ``next`` links."""

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        chunk = records[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(records)
        return httpx.Response(
            200, json={"talents": chunk, "next": f"?page={page + 1}" if more else None}
        )

    return handler


class FakeTime:
    """A clock that only moves when the importer sleeps: waits are instant and exact."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def run(doc: CastDocument, handler: Callable[[httpx.Request], httpx.Response], **options: Any):
    fake = FakeTime()
    result = import_site(
        URL,
        ProductionView(doc),
        options,
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=fake.clock,
    )
    return result, fake.slept


@pytest.fixture
def doc() -> CastDocument:
    return CastDocument.create("Harbour Lights")


def test_pages_are_followed_and_reimport_updates(doc: CastDocument) -> None:
    seen: list[httpx.Request] = []
    handler = pages(2, [record(i) for i in range(1, 6)])

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    result, slept = run(doc, spy, token="s3cret")
    assert slept == [] and result.errors == []
    counts = apply_import(doc, result)
    assert counts.created == 5 and len(seen) == 3
    assert all(r.headers["Authorization"] == "Bearer s3cret" for r in seen)
    t3 = next(t for t in doc.all(Talent) if t.name == "Talent 3")
    assert t3.external_ids == {"site.example": "t3"}
    assert (t3.playing_age_min, t3.playing_age_max, t3.rate) == (23, 33, 3000)
    # The site renames t3 and adds t6: one update, one new talent, nothing duplicated.
    changed = [record(i) for i in range(1, 7)]
    changed[2]["name"] = "Talent Three"
    result, _ = run(doc, pages(2, changed))
    counts = apply_import(doc, result)
    assert (counts.created, counts.updated, counts.unchanged) == (1, 1, 4)
    assert len(doc.all(Talent)) == 6 and doc.get(Talent, t3.id).name == "Talent Three"


def test_rates_are_read_by_the_one_money_parser() -> None:
    """A site may give the rate as it shows it (``rate``) or in minor units with its
    currency; castroom's parser reads both and refuses what the command line refuses."""
    euros = CastDocument.create("Harbour Lights", currency="EUR")
    ok = [
        {"id": "a", "name": "A", "rate": "€1.500,00"},
        {"id": "b", "name": "B", "rate_minor": 150000, "currency": "EUR"},
        {"id": "c", "name": "C", "rate": "1500", "rate_minor": 150000},
    ]
    result, _ = run(euros, pages(10, ok))
    assert result.errors == [] and [t.rate for t in result.entities] == [150000] * 3
    bad = [
        {"id": "d", "name": "D", "rate": "1.500"},
        {"id": "e", "name": "E", "rate_minor": 150000, "currency": "USD"},
        {"id": "f", "name": "F", "rate": "$1,500"},
        {"id": "g", "name": "G", "rate": "15", "rate_minor": 150000},
    ]
    result, _ = run(euros, pages(10, bad))
    assert result.errors == [
        "page 1, record 1 (id d): invalid talent.rate: '1.500' is ambiguous: €1,500.00 or"
        " €1.50? Write 1500.00 or 1.50",
        "page 1, record 2 (id e): invalid talent.rate: '1500.00 USD' is in USD, but this"
        " production's money is in EUR (castroom does not convert): write the amount in"
        " EUR, like 1500.00",
        "page 1, record 3 (id f): invalid talent.rate: '$1,500' is in dollars, but this"
        " production's money is in EUR (castroom does not convert): write the amount in"
        " EUR, like 1500.00",
        "page 1, record 4 (id g): invalid talent.rate: rate '15' and rate_minor 150000 disagree",
    ]
    yen = CastDocument.create("Kaiju", currency="JPY")
    result, _ = run(yen, pages(10, [{"id": "h", "name": "H", "rate_minor": 150000}]))
    assert [t.rate for t in result.entities] == [150000]  # JPY has no minor unit


def test_submissions_become_candidates_once(doc: CastDocument) -> None:
    mary = doc.add(Role, name="Mary")
    records = [record(1, submitted_for=["mary", "Nobody"])]
    result, _ = run(doc, pages(10, records))
    assert any("unknown role 'Nobody'" in w for w in result.warnings)
    apply_import(doc, result)
    apply_import(doc, run(doc, pages(10, records))[0])
    (cand,) = doc.all(Candidate)
    assert cand.role_id == mary.id and cand.stage == "submitted"
    assert cand.source == "site:site.example"


def test_429_waits_for_retry_after_and_5xx_backs_off(doc: CastDocument) -> None:
    script = iter(
        [
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(503),
            httpx.Response(502),
        ]
    )
    fine = pages(10, [record(1)])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(script, None) or fine(request)

    result, slept = run(doc, handler)
    assert slept == [7.0, 1.0, 2.0]  # Retry-After, then backoff 0.5 * 2**attempt
    assert any("retried 3 time(s)" in w for w in result.warnings)
    assert apply_import(doc, result).created == 1


def test_timeouts_are_retried_then_given_up(doc: CastDocument) -> None:
    calls = 0

    def timing_out(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(CastroomError, match=r"failed 3 times \(last: timed out"):
        run(doc, timing_out, retries="2", backoff="0.1")
    assert calls == 3
    assert doc.all(Talent) == []


def test_client_errors_are_not_retried(doc: CastDocument) -> None:
    calls = 0

    def forbidden(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(401, json={"error": "bad token"})

    with pytest.raises(CastroomError, match="HTTP 401"):
        run(doc, forbidden)
    assert calls == 1


def test_waits_are_bounded_by_the_deadline(doc: CastDocument) -> None:
    def always_limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3600"})

    # Retry-After is capped at max_wait; the next wait would pass the deadline: give up.
    with pytest.raises(CastroomError, match="gave up after 20s"):
        run(doc, always_limited, max_wait="15", deadline="20")


def test_bad_records_fail_the_whole_import(doc: CastDocument) -> None:
    records = [record(1), {"id": "t2"}, record(3, playing_age={"min": 50, "max": 10})]
    result, _ = run(doc, pages(10, records))
    where = [e.split(":")[0] for e in result.errors]
    assert where == ["page 1, record 2", "page 1, record 3 (id t3)"]
    with pytest.raises(ImportFailed):
        apply_import(doc, result)
    assert doc.all(Talent) == []


def test_paging_is_bounded(doc: CastDocument) -> None:
    def loop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"talents": [], "next": URL})

    with pytest.raises(CastroomError, match="repeats"):
        run(doc, loop)

    def endless(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        return httpx.Response(200, json={"talents": [], "next": f"?page={page + 1}"})

    with pytest.raises(CastroomError, match="more than 3 pages"):
        run(doc, endless, max_pages="3")

    def elsewhere(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"talents": [], "next": "https://evil.example/steal"})

    with pytest.raises(CastroomError, match="another site"):
        run(doc, elsewhere)

    def downgraded(request: httpx.Request) -> httpx.Response:  # the same host, over http
        return httpx.Response(200, json={"talents": [], "next": "http://site.example/p2"})

    with pytest.raises(CastroomError, match="another site"):
        run(doc, downgraded)

    def not_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>maintenance</html>")

    with pytest.raises(CastroomError, match="not the contract"):
        run(doc, not_json)


def test_retry_after_parsing() -> None:
    assert _retry_after("12", 0) == 12.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert _retry_after("soon", 0) is None and _retry_after(None, 0) is None


# -- a real HTTP server on 127.0.0.1 ----------------------------------------------------------


class SiteHandler(BaseHTTPRequestHandler):
    records: list[dict[str, Any]] = []
    limited_once: set[str] = set()
    requests: list[str] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.headers.get("Authorization") != "Bearer tok":
            return self._send(401, {"error": "token"})
        page = int(self.path.rsplit("page=", 1)[1]) if "page=" in self.path else 1
        if page == 2 and "2" not in self.limited_once:
            self.limited_once.add("2")  # the first request for page 2 is rate-limited
            return self._send(429, {"error": "slow down"}, {"Retry-After": "1"})
        chunk = self.records[(page - 1) * 2 : page * 2]
        nxt = f"/api/talents?page={page + 1}" if page * 2 < len(self.records) else None
        self._send(200, {"talents": chunk, "next": nxt})

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    SiteHandler.records = [record(i) for i in range(1, 6)]
    SiteHandler.limited_once = set()
    SiteHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SiteHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/talents"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_real_server_through_the_cli(site: str, tmp_path: Path) -> None:
    env = {"CASTROOM_WORKSPACE": str(tmp_path / "ws"), "CASTROOM_SITE_TOKEN": "tok"}
    assert run_castroom("init", "--production", "Harbour Lights", env=env).returncode == 0
    first = run_castroom("import", "site", site, "--site", "local", "--timeout", "5", env=env)
    assert first.returncode == 0, first.stderr
    assert "5 created" in first.stdout and "retried 1 time(s), waiting 1.0s" in first.stderr
    assert SiteHandler.requests.count("/api/talents?page=2") == 2
    again = run_castroom("import", "site", site, "--site", "local", env=env)
    assert "0 created, 0 updated, 5 unchanged" in again.stdout
    listed = json.loads(run_castroom("list", "talents", "--json", env=env).stdout)
    assert sorted(t["external_ids"]["local"] for t in listed) == ["t1", "t2", "t3", "t4", "t5"]
    denied = run_castroom("import", "site", site, env={**env, "CASTROOM_SITE_TOKEN": "wrong"})
    assert denied.returncode == 1 and "HTTP 401" in denied.stderr


def test_options_named_like_test_hooks_are_just_options(site: str, tmp_path: Path) -> None:
    """`--sleep 1` (or --clock, --transport) on the command line is a user option, not the
    function the importer waits with: the 429 is still waited out with a real sleep."""
    env = {"CASTROOM_WORKSPACE": str(tmp_path / "ws"), "CASTROOM_SITE_TOKEN": "tok"}
    assert run_castroom("init", "--production", "Harbour Lights", env=env).returncode == 0
    done = run_castroom(
        "import", "site", site, "--sleep", "1", "--clock", "2", "--transport", "x",
        "--max-wait", "0.05", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "5 created" in done.stdout and "retried 1 time(s)" in done.stderr


def test_real_server_timeout_is_bounded(tmp_path: Path) -> None:
    """A server that accepts and never answers: the client times out, retries, gives up."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    doc = CastDocument.create("X")
    try:
        with pytest.raises(CastroomError, match="timed out"):
            import_site(
                url, ProductionView(doc), {"timeout": "0.2", "retries": "1", "backoff": "0.05"}
            )
    finally:
        listener.close()


def test_a_new_site_id_matches_a_talent_here_by_name_and_agent(doc: CastDocument) -> None:
    zoe = doc.add(Talent, name="Zoë Müller", agent="Crème Talent")
    ada = doc.add(Talent, name="Ada Stone", agent="North Agency")
    ben = doc.add(Talent, name="Ben Ray")
    # tests/data/site/talents_page.json: ZOE MULLER is Zoë (folded), Ada Stone has
    # another agent, Ben Ray has none here to compare, Cal Oduya is new.
    page = (Path(__file__).parent / "data" / "site" / "talents_page.json").read_bytes()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=page))
    result = import_site(URL, ProductionView(doc), {}, transport=transport)
    assert result.report == [
        "matched 2 talent(s) already here by name and took their site.example id: "
        "ZOE MULLER (agent or contact), Ben  Ray (name alone (no agent or contact to compare))"
    ]
    (namesake,) = [w for w in result.warnings if "Ada Stone" in w]
    assert "'North Agency'" in namesake and "'South Agency'" in namesake
    assert "not imported (not duplicated)" in namesake
    apply_import(doc, result)
    assert len(doc.all(Talent)) == 4  # Zoë, Ada, Ben, and the new Cal
    assert doc.get(Talent, zoe.id).external_ids == {"site.example": "s1"}
    assert doc.get(Talent, ben.id).agent == "East"
    assert doc.get(Talent, ada.id).external_ids == {} and doc.get(Talent, ada.id).agent == (
        "North Agency"
    )
    # Again: the site ids match now; Ada is still reported, never duplicated.
    again = import_site(URL, ProductionView(doc), {}, transport=transport)
    assert again.report == [] and any("Ada Stone" in w for w in again.warnings)
    counts = apply_import(doc, again)
    assert counts.created == 0 and len(doc.all(Talent)) == 4


def test_two_namesakes_here_are_reported_not_guessed(doc: CastDocument) -> None:
    doc.add(Talent, name="Sam Lee")
    doc.add(Talent, name="Sam Lee", contact="sam@example.org")
    records = [{"id": "s9", "name": "Sam Lee"}]
    result = import_site(
        URL, ProductionView(doc), {}, transport=httpx.MockTransport(pages(5, records))
    )
    assert result.entities == [] and any(
        "2 talents here are named 'Sam Lee'" in w for w in result.warnings
    )


def test_the_same_person_twice_in_one_import_is_said(doc: CastDocument) -> None:
    records = [
        {"id": "a1", "name": "Ada Stone"},
        {"id": "a1", "name": "Ada Stone", "union": "Equity"},
        {"id": "z1", "name": "Zoë Stone"},
        {"id": "z2", "name": "zoe stone"},
    ]
    result, _ = run(doc, pages(10, records))
    assert result.errors == []
    assert result.warnings == [
        "page 1, record 2 (id a1): the same talent as page 1, record 1 (id a1): one talent,"
        " the later record wins",
        "page 1, record 4 (id z2): named 'zoe stone' like page 1, record 3 (id z1), with"
        " another id: imported as two talents (if they are one person, the site lists them"
        " twice)",
    ]

"""Built-in plugin: import talents (and their submissions) from a casting site over HTTP.

``castroom import site URL [--token T] [--site NAME] [--per-page N] [--max-pages N]
[--retries N] [--timeout S] [--deadline S]`` pages through the JSON contract documented
in docs/casting-site.md: ``{"talents": [...], "next": URL-or-null}``. Transient failures
(timeouts, connection errors, 5xx) are retried with exponential backoff; a 429 waits for
its ``Retry-After``. Every loop is bounded: pages, retries, each wait and the whole run.

Each talent's id at the site is kept in ``Talent.external_ids[SITE]`` (SITE defaults to
the URL's host), so importing again updates the same talents instead of duplicating them.
A record whose id is new here is matched to a talent already here by name (case and
accents folded) when their agent or contact agrees, or neither side names one; a name
here with a different agent is reported and the record skipped, never duplicated.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from msgspec import Meta

from castroom.core.api import (
    Candidate,
    CastroomError,
    Importer,
    ImportResult,
    ProductionView,
    Role,
    Talent,
    ValidationFailed,
    fold,
    hookimpl,
    model,
    parse_field,
    plain_amount,
)

if TYPE_CHECKING:
    import httpx

TOKEN_ENV = "CASTROOM_SITE_TOKEN"
RETRY_STATUSES = frozenset({500, 502, 503, 504})


# -- the contract -------------------------------------------------------------------------------


class AgeRange(msgspec.Struct, kw_only=True):
    min: Annotated[int, Meta(ge=0, le=150)] | None = None
    max: Annotated[int, Meta(ge=0, le=150)] | None = None


class SiteTalent(msgspec.Struct, kw_only=True):
    """One talent record on the site. Unknown fields are ignored (the site may add more)."""

    id: Annotated[str, Meta(min_length=1, max_length=200)]
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    agent: str | None = None
    contact: str | None = None
    union: str | None = None
    playing_age: AgeRange | None = None
    height_cm: int | None = None
    hair: str | None = None
    eyes: str | None = None
    languages: list[str] | None = None
    accents: list[str] | None = None
    skills: list[str] | None = None
    rate_minor: Annotated[int, Meta(ge=0)] | None = None
    #: The day rate as the site shows it, in major units: "1500", "$1,500.00", "1500 EUR".
    rate: str | None = None
    #: The currency of ``rate_minor``; castroom refuses a rate in another currency.
    currency: Annotated[str, Meta(pattern=model.CURRENCY_PATTERN)] | None = None
    headshot_url: str | None = None
    reel_url: str | None = None
    submitted_for: list[str] = []


class SitePage(msgspec.Struct, kw_only=True):
    talents: list[Any]
    next: str | None = None


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds on every loop: nothing here can spin or wait forever."""

    retries: int = 4
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    max_wait: float = 30.0  # no single wait (Retry-After included) is longer
    timeout: float = 10.0  # per request
    deadline: float = 300.0  # the whole import
    max_pages: int = 1000


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # here: `castroom check` loads this plugin, not its HTTP client

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class SiteClient:
    """Fetches pages of the contract with retries, backoff and rate-limit handling."""

    def __init__(
        self,
        client: httpx.Client,
        limits: Limits,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.limits = limits
        self.sleep = sleep
        self.clock = clock
        self.started = clock()
        self.waits: list[float] = []  # what we waited, for reports and tests

    def _wait(self, seconds: float, why: str) -> None:
        seconds = min(max(seconds, 0.0), self.limits.max_wait)
        if self.clock() + seconds - self.started > self.limits.deadline:
            raise CastroomError(f"casting site: gave up after {self.limits.deadline:g}s ({why})")
        self.waits.append(seconds)
        self.sleep(seconds)

    def get(self, url: str) -> bytes:
        """One page's body; raises CastroomError once retries are used up."""
        import httpx

        last = ""
        for attempt in range(self.limits.retries + 1):
            backoff = self.limits.backoff * (2**attempt)
            try:
                response = self.client.get(url, timeout=self.limits.timeout)
            except httpx.TimeoutException:
                last = "timed out"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status == 200:
                    return response.content
                if status == 429 or status in RETRY_STATUSES:
                    last = f"HTTP {status}"
                    after = _retry_after(response.headers.get("Retry-After"), time.time())
                    if attempt < self.limits.retries:
                        self._wait(after if after is not None else backoff, last)
                    continue
                raise CastroomError(f"casting site: HTTP {status} from {url}")
            if attempt < self.limits.retries:
                self._wait(backoff, last)
        raise CastroomError(
            f"casting site: {url} failed {self.limits.retries + 1} times (last: {last})"
        )

    def pages(self, url: str) -> Iterator[tuple[int, SitePage]]:
        """Every page, following ``next`` (same host only, no loops, at most max_pages)."""
        import httpx

        origin = httpx.URL(url)
        seen: set[str] = set()
        current: str | None = url
        number = 0
        while current is not None:
            number += 1
            if number > self.limits.max_pages:
                raise CastroomError(f"casting site: more than {self.limits.max_pages} pages")
            if current in seen:
                raise CastroomError(f"casting site: page {number} repeats {current}")
            seen.add(current)
            try:
                page = msgspec.json.decode(self.get(current), type=SitePage)
            except msgspec.DecodeError as exc:
                raise CastroomError(
                    f"casting site: page {number} is not the contract: {exc}"
                ) from None
            yield number, page
            if page.next:
                following = httpx.URL(current).join(page.next)
                if following.host != origin.host or following.scheme != origin.scheme:
                    raise CastroomError(f"casting site: next page on another site: {page.next}")
                current = str(following)
            else:
                current = None


# -- into entities ------------------------------------------------------------------------------


def _rate(record: SiteTalent, currency: str) -> int | None:
    """The record's day rate in the production's minor units, read by castroom's one
    money parser (so a site's rate is refused for what the command line refuses)."""
    said: list[int] = []
    if record.rate_minor is not None:
        code = record.currency or currency  # its minor units, written out with its code
        written = f"{plain_amount(record.rate_minor, code)} {code}"
        said.append(parse_field(Talent, "rate", written, currency))
    if record.rate is not None:
        said.append(parse_field(Talent, "rate", record.rate, currency))
    if len(set(said)) > 1:
        rule = f"rate {record.rate!r} and rate_minor {record.rate_minor} disagree"
        raise ValidationFailed("talent", "rate", rule)
    return said[0] if said else None


def _fields(record: SiteTalent, currency: str) -> dict[str, Any]:
    """The Talent fields a record carries (absent or null fields are left alone)."""
    out: dict[str, Any] = {"name": record.name}
    for name in (
        "agent",
        "contact",
        "union",
        "height_cm",
        "hair",
        "eyes",
        "languages",
        "accents",
        "skills",
    ):
        value = getattr(record, name)
        if value is not None:
            out[name] = value
    if record.playing_age is not None:
        out["playing_age_min"] = record.playing_age.min
        out["playing_age_max"] = record.playing_age.max
    rate = _rate(record, currency)
    if rate is not None:
        out["rate"] = rate
    if record.headshot_url is not None:
        out["headshot"] = record.headshot_url
    if record.reel_url is not None:
        out["reel"] = record.reel_url
    return out


def limits_from(options: dict[str, Any]) -> Limits:
    def number(key: str, cast: type, default: Any) -> Any:
        raw = options.get(key)
        if raw is None:
            return default
        flag = f"--{key.replace('_', '-')}"
        try:
            value = cast(raw)
        except (TypeError, ValueError):
            raise CastroomError(f"{flag} expects a number, got {raw!r}") from None
        if value < 0:
            raise CastroomError(f"{flag} must not be negative")
        return value

    base = Limits()
    return Limits(
        retries=number("retries", int, base.retries),
        backoff=number("backoff", float, base.backoff),
        max_wait=number("max_wait", float, base.max_wait),
        timeout=number("timeout", float, base.timeout),
        deadline=number("deadline", float, base.deadline),
        max_pages=number("max_pages", int, base.max_pages),
    )


def import_site(
    source: str,
    view: ProductionView,
    options: dict[str, Any],
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ImportResult:
    """Fetch every page, then map records to Talents (and Candidates for submissions).

    ``options`` are the user's (``--per-page 50`` from the command line: strings).
    ``transport``, ``sleep`` and ``clock`` are for tests (httpx.MockTransport, a fake
    clock) and are keyword arguments, never options: ``--sleep 1`` must not become the
    function the importer waits with.
    """
    import httpx  # imported when used: keeps `castroom` quick to start

    url = httpx.URL(source)
    if url.scheme not in ("http", "https") or not url.host:
        raise CastroomError(f"not an http(s) URL: {source}")
    if options.get("per_page"):
        url = url.copy_merge_params({"per_page": str(options["per_page"])})
    site = str(options.get("site") or url.host)
    token = options.get("token") or os.environ.get(TOKEN_ENV)
    headers = {"Accept": "application/json", "User-Agent": "castroom"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    limits = limits_from(options)
    client = httpx.Client(headers=headers, transport=transport, follow_redirects=True)
    fetcher = SiteClient(client, limits, sleep=sleep, clock=clock)

    talents = view.all(Talent, include_deleted=True)
    by_external = {t.external_ids[site]: t for t in talents if site in t.external_ids}
    roles = {r.name.casefold(): r for r in view.all(Role)}
    candidates = {(c.talent_id, c.role_id) for c in view.all(Candidate, include_deleted=True)}
    entities: list[model.Entity] = []
    errors: list[str] = []
    warnings: list[str] = []
    claimed: dict[str, Talent] = {}
    seen: dict[str, str] = {}  # a record's id, and its folded name -> where it came first
    namesakes = Namesakes(
        [t for t in talents if site not in t.external_ids and not t.deleted], site, warnings
    )
    with client:
        for number, page in fetcher.pages(str(url)):
            for index, raw in enumerate(page.talents, 1):
                where = f"page {number}, record {index}"
                try:
                    record = msgspec.convert(raw, SiteTalent)
                except msgspec.ValidationError as exc:
                    errors.append(f"{where}: {exc}")
                    continue
                where += f" (id {record.id})"
                _said_twice(record, where, seen, warnings)
                existing = claimed.get(record.id) or by_external.get(record.id)
                if existing is None:
                    skip, existing = namesakes.match(record, where)
                    if skip:
                        continue  # a namesake with another agent: reported, not duplicated
                base = model.to_fields(existing) if existing else {"id": model.new_id()}
                base["external_ids"] = {**base.get("external_ids", {}), site: record.id}
                try:
                    base.update(_fields(record, view.currency))
                    talent = model.validate(Talent, base)
                except CastroomError as exc:
                    errors.append(f"{where}: {exc}")
                    continue
                claimed[record.id] = talent  # type: ignore[assignment]
                entities.append(talent)
                for role_name in record.submitted_for:
                    role = roles.get(role_name.casefold())
                    if role is None:
                        warnings.append(f"{where}: submitted for unknown role {role_name!r}")
                    elif (talent.id, role.id) not in candidates:
                        candidates.add((talent.id, role.id))
                        entities.append(
                            Candidate(
                                id=model.new_id(),
                                talent_id=talent.id,
                                role_id=role.id,
                                source=f"site:{site}",
                            )
                        )
    if fetcher.waits:
        warnings.append(
            f"casting site: retried {len(fetcher.waits)} time(s), "
            f"waiting {sum(fetcher.waits):.1f}s in all"
        )
    return ImportResult(
        entities=entities, warnings=warnings, errors=errors, report=namesakes.report()
    )


def _said_twice(record: SiteTalent, where: str, seen: dict[str, str], warnings: list[str]) -> None:
    """The same person twice in one import is said, never merged or doubled silently."""
    name = "name:" + fold(record.name)
    if record.id in seen:
        warnings.append(
            f"{where}: the same talent as {seen[record.id]}: one talent, the later record wins"
        )
    elif name in seen:
        warnings.append(
            f"{where}: named {record.name!r} like {seen[name]}, with another id: imported as"
            " two talents (if they are one person, the site lists them twice)"
        )
    seen.setdefault(record.id, where)
    seen.setdefault(name, where)


class Namesakes:
    """Talents already here without this site's id, found by name for a site record: the
    same person when their agent or contact agrees (or neither side names one); a name
    with another agent is reported and skipped, never made a second time."""

    def __init__(self, talents: list[Talent], site: str, warnings: list[str]) -> None:
        self.by_name: dict[str, list[Talent]] = {}
        for talent in talents:
            self.by_name.setdefault(fold(talent.name), []).append(talent)
        self.site = site
        self.warnings = warnings
        self.taken: set[str] = set()
        self.matched: list[str] = []

    def match(self, record: SiteTalent, where: str) -> tuple[bool, Talent | None]:
        """(skip the record?, the talent here it is, or None for a new one)."""
        found = [t for t in self.by_name.get(fold(record.name), []) if t.id not in self.taken]
        if not found:
            return False, None
        agreeing = [t for t in found if _agrees(t, record)]
        open_ = [t for t in found if not _conflicts(t, record)]
        pick = agreeing or open_
        if len(pick) == 1:
            self.taken.add(pick[0].id)
            how = "agent or contact" if agreeing else "name alone (no agent or contact to compare)"
            self.matched.append(f"{record.name} ({how})")
            return False, pick[0]
        if pick:
            self.warnings.append(
                f"{where}: {len(pick)} talents here are named {record.name!r}: not imported; "
                f"set external_ids.{self.site}={record.id} on the right one, then import again"
            )
            return True, None
        here = ", ".join(f"{t.agent or t.contact!r}" for t in found)
        self.warnings.append(
            f"{where}: {record.name!r} is here with agent {here}, the site says "
            f"{record.agent or record.contact!r}: not imported (not duplicated). If it is the "
            f"same person, set their agent here and import again; if not, add them by hand"
        )
        return True, None

    def report(self) -> list[str]:
        if not self.matched:
            return []
        return [
            f"matched {len(self.matched)} talent(s) already here by name and took their "
            f"{self.site} id: {', '.join(self.matched)}"
        ]


def _same(ours: str, theirs: str | None) -> bool | None:
    """Do two agents (or contacts) agree? None when either is blank."""
    if not ours.strip() or not (theirs or "").strip():
        return None
    return fold(ours) == fold(theirs)


def _agrees(talent: Talent, record: SiteTalent) -> bool:
    return bool(_same(talent.agent, record.agent) or _same(talent.contact, record.contact))


def _conflicts(talent: Talent, record: SiteTalent) -> bool:
    return (
        _same(talent.agent, record.agent) is False or _same(talent.contact, record.contact) is False
    )


@hookimpl(trylast=True)
def castroom_register_importers(register: Any) -> None:
    register(
        Importer(
            name="site",
            description="talents and submissions from a casting site's JSON API (URL)",
            run=import_site,
        )
    )

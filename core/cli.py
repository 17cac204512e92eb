"""The ``castroom`` command line (click + rich).

Core commands live here; plugins add theirs through ``castroom_register_commands``.
Every listing takes ``--json``; every error is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import shlex
import sys
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.table import Table

from . import bundle as bundles
from . import model
from .document import CREATED, UNLISTED, CastDocument, NewerSchemaWarning, labels
from .errors import Ambiguous, CastroomError, NotFound, ValidationFailed
from .money import format_money
from .plugins import Plugins, make_plugins
from .view import ProductionView
from .workspace import StoredProduction, Workspace
from .yupdate import update_is_empty

#: Columns shown by ``castroom list KIND`` for people (``--json`` has every field).
COLUMNS: dict[str, tuple[str, ...]] = {
    "role": ("name", "kind", "age_min", "age_max", "status", "rate_cap"),
    "talent": ("name", "playing_age_min", "playing_age_max", "rate", "agent", "union"),
    "candidate": ("talent_id", "role_id", "era", "stage", "backup_rank"),
    "audition": ("starts_at", "role_id", "place", "chemistry"),
    "scene": ("number", "heading", "story_day", "era", "shoot_day_id"),
    "shoot_day": ("date", "day_number", "location", "call_time"),
    "availability": ("talent_id", "start", "end", "kind", "held_by"),
    "deal": ("talent_id", "role_id", "rate", "unit", "guaranteed_days", "status"),
    "member": ("name", "job", "email"),
}
MONEY_FIELDS = {"rate", "rate_cap", "budget_cap"}


class Context:
    """What every command needs: where the workspace is, and a way to open it."""

    def __init__(
        self, plugins: Plugins, workspace: str | None, production: str | None, member: str | None
    ):
        self.plugins = plugins
        self.workspace_path = workspace
        self.production_ref = production
        self.member = member
        self._workspace: Workspace | None = None
        self.console = Console()
        self.err = Console(stderr=True)
        #: A warning printed once the command succeeded (see CastroomGroup.invoke).
        self.notice: str | None = None

    def workspace(self, *, create: bool = False) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace.open(self.workspace_path, create=create, member=self.member)
            self._workspace._plugins = self.plugins
        return self._workspace

    def production(self) -> StoredProduction:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NewerSchemaWarning)
            production = self.workspace().production(self.production_ref)
        if production.id is not None and production.workspace.is_deleted(production.id):
            # Reads work (said once the command succeeds, as it may be a mistake; a
            # refused write's error stays the only line); writes are refused by the store.
            title = production.title()
            self.notice = (
                f"Warning: production {title} is deleted (read-only until"
                f" `castroom production restore {shlex.quote(title or production.id)}`)"
            )
        for warning in caught:
            if issubclass(warning.category, NewerSchemaWarning):
                click.echo(f"Warning: {warning.message}", err=True)
            else:
                warnings.showwarning(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        return production

    def view(self) -> ProductionView:
        """A read-only view that knows the update log (so findings can name a device)."""
        production = self.production()
        return ProductionView(production.doc, origin_of=production.origin_of)

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()


pass_ctx = click.make_pass_decorator(Context)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(data), indent=2, ensure_ascii=False, sort_keys=False))


def parse_assignments(cls: type[model.Entity], pairs: tuple[str, ...]) -> dict[str, Any]:
    """``field=value`` arguments, each value parsed for its field's type."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise CastroomError(f"expected field=value, got {pair!r}")
        name, raw = pair.split("=", 1)
        name = name.strip()
        if name not in cls.__struct_fields__ or name == "id":
            raise ValidationFailed(cls.entity_kind, name, "no such field")
        if (cls.entity_kind, name) in model.REFERENCES:
            fields[name] = parse_refs(cls, name, hints[name], raw)  # see resolve_references
        else:
            fields[name] = parse_value(cls, name, hints[name], raw)
    return fields


def parse_filters(
    doc: CastDocument, cls: type[model.Entity], pairs: tuple[str, ...]
) -> list[Callable[[dict[str, Any]], bool]]:
    """``--where field=value`` filters as tests on an entity's fields: equality, or for a
    list field given one item (not a JSON list), membership (``languages=en``)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for pair in pairs:
        name, _, raw = pair.partition("=")
        name, raw = name.strip(), raw.strip()
        hint = hints.get(name) if name in cls.__struct_fields__ else None
        if typing.get_origin(hint) is list and raw and not raw.startswith("["):
            if (cls.entity_kind, name) in model.REFERENCES:
                item = resolve_references(doc, cls, {name: [raw]}, where=True)[name][0]
            else:
                item = parse_value(cls, name, typing.get_args(hint)[0], raw)
            tests.append(_holds(name, item))
        else:
            fields = resolve_references(doc, cls, parse_assignments(cls, (pair,)), where=True)
            tests.extend(_equals(n, v) for n, v in fields.items())
    return tests


def _holds(name: str, item: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda fields: item in (fields.get(name) or [])


def _equals(name: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda fields: fields.get(name) == value


def parse_refs(cls: type[model.Entity], name: str, hint: Any, raw: str) -> Any:
    """A reference field's value as typed (ids, id prefixes or names; a JSON list or one
    item for a list field), left for :func:`resolve_references` to turn into ids."""
    text = raw.strip()
    if typing.get_origin(hint) is list:
        if not text.startswith("["):
            return [text] if text else []
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(cls.entity_kind, name, f"invalid JSON: {exc.msg}") from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValidationFailed(cls.entity_kind, name, "expected a JSON list of ids or names")
        return items
    if text.lower() in ("", "null", "none"):
        if _optional(hint):
            return None
        raise ValidationFailed(cls.entity_kind, name, "must not be empty")
    return text


def resolve_references(
    doc: CastDocument, cls: type[model.Entity], fields: dict[str, Any], *, where: bool = False
) -> dict[str, Any]:
    """Reference fields given as an id, id prefix or name (as `show` resolves them, live
    entities first) turned into ids; one that names nothing, or only deleted entities, is
    refused. Only local writes are checked here: what a peer merges is reported by the
    integrity plugin instead. ``where``: for a filter, a deleted match is fine."""
    out = dict(fields)
    for (owner, name), target in model.REFERENCES.items():
        if owner != cls.entity_kind or out.get(name) is None:
            continue
        value = out[name]
        kinds = model.reference_kinds(owner, name, target)
        ids = [_reference(doc, cls, name, kinds, str(v), where) for v in _listed(value)]
        out[name] = ids if isinstance(value, list) else ids[0]
    if cls is model.Audition and isinstance(out.get("pairings"), list):
        out["pairings"] = [
            {
                **pairing,
                "candidate_ids": [
                    _reference(doc, cls, "pairings", ("candidate",), str(ref), where)
                    for ref in pairing["candidate_ids"]
                ],
            }
            if isinstance(pairing, dict) and isinstance(pairing.get("candidate_ids"), list)
            else pairing
            for pairing in out["pairings"]
        ]
    # Object keys that name entities: a scene's looks are keyed by role id (like its
    # characters, which the model checks them against).
    if cls is model.Scene and isinstance(out.get("looks"), dict):
        out["looks"] = _resolve_keys(
            cls,
            "looks",
            "role",
            out["looks"],
            lambda k: _reference(doc, cls, "looks", ("role",), k, where),
        )
    # A candidate's ratings are keyed by member *name* (as the sample and existing
    # productions store them): a name, id or id prefix typed becomes that name.
    if cls is model.Candidate and isinstance(out.get("ratings"), dict):
        out["ratings"] = _resolve_keys(
            cls, "ratings", "member", out["ratings"], lambda k: _member_name(doc, k, where)
        )
    return out


def _member_name(doc: CastDocument, ref: str, where: bool) -> str:
    try:
        member_id = _reference(doc, model.Candidate, "ratings", ("member",), ref, where)
    except NotFound as exc:  # say how to make one: ratings are only by known members
        raise NotFound(f"{exc} (add them with `castroom add member name=...`)") from None
    return _called(doc.stored_fields(model.Member, member_id))


def _resolve_keys(
    cls: type[model.Entity],
    name: str,
    target: str,
    value: dict[str, Any],
    resolve: Callable[[str], str],
) -> dict[str, Any]:
    """``value`` with each key replaced by what ``resolve`` makes of it; two keys meaning
    the same entity are refused (one would silently overwrite the other)."""
    out: dict[str, Any] = {}
    typed: dict[str, str] = {}
    for key, item in value.items():
        resolved = resolve(str(key))
        if resolved in out:
            raise CastroomError(
                f"{cls.entity_kind}.{name}: {typed[resolved]!r} and {key!r} are the same {target}"
            )
        out[resolved], typed[resolved] = item, str(key)
    return out


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _reference(
    doc: CastDocument,
    cls: type[model.Entity],
    name: str,
    kinds: tuple[str, ...],
    ref: str,
    where: bool,
) -> str:
    """The id ``ref`` means in the first of ``kinds`` where it matches anything (a
    role's backups: a talent, else a candidate)."""
    for target in kinds:
        with contextlib.suppress(NotFound):
            return _reference_to(doc, cls, name, target, ref, where)
    raise NotFound(f"{cls.entity_kind}.{name}: no {' or '.join(kinds)} matching {ref!r}")


def _reference_to(
    doc: CastDocument, cls: type[model.Entity], name: str, target: str, ref: str, where: bool
) -> str:
    target_cls = model.kind_class(target)
    where_from = f"{cls.entity_kind}.{name}"
    raw = doc.raw(target_cls, ref)
    if raw is not None and (where or not raw.get("deleted")):
        return ref  # an existing id (even one stored invalid: it is still that entity)
    try:
        entity = doc.resolve(target_cls, ref, include_deleted=True)
    except Ambiguous as exc:
        raise Ambiguous(f"{where_from}: {exc}") from None
    if entity.deleted and not where:
        raise CastroomError(
            f"{where_from}: {target} {_name(entity)} is deleted"
            f" (`castroom restore {target} {entity.id}` first)"
        )
    return entity.id


def check_duplicate_candidate(
    doc: CastDocument,
    cls: type[model.Entity],
    fields: dict[str, Any],
    current: dict[str, Any] | None = None,
) -> None:
    """One live candidate per (talent, role, era): a second one would split its stage,
    ratings and notes in two. Changing the existing one is `set`'s job. ``current``: the
    stored fields of the one being changed (valid or not)."""
    if cls is not model.Candidate or not {"talent_id", "role_id", "era"} & fields.keys():
        return
    now = current or {}
    key = tuple(fields.get(f, now.get(f)) for f in ("talent_id", "role_id", "era"))
    for other in doc.all(model.Candidate):
        same = (other.talent_id, other.role_id, other.era) == key
        if same and other.id != now.get("id"):
            talent = doc.find(model.Talent, other.talent_id)
            role = doc.find(model.Role, other.role_id)
            era = f" ({other.era})" if other.era else ""
            raise CastroomError(
                f"{_name(talent) if talent else other.talent_id} is already a candidate for"
                f" {_name(role) if role else other.role_id}{era}: candidate {other.id}"
                f" (change it with `castroom set candidate {other.id} ...`)"
            )


def check_era(
    doc: CastDocument,
    cls: type[model.Entity],
    fields: dict[str, Any],
    current: dict[str, Any] | None = None,
) -> None:
    """A candidate's or deal's era must be one of its role's eras, when the role has any."""
    if cls not in (model.Candidate, model.Deal) or not {"era", "role_id"} & fields.keys():
        return
    era = fields.get("era", (current or {}).get("era"))
    role_id = fields.get("role_id", (current or {}).get("role_id"))
    role = doc.find(model.Role, role_id) if era and role_id else None
    if role is not None and role.eras and role.era(era) is None:
        known = ", ".join(e.name for e in role.eras)
        raise CastroomError(
            f"{cls.entity_kind}.era: {era!r} is not one of {role.name}'s eras ({known})"
        )


def parse_value(cls: type[model.Entity], name: str, hint: Any, raw: str) -> Any:
    text = raw.strip()
    # An empty value is not JSON: for a text field it is the empty string (validated
    # like any other), for an optional one null.
    if text and text[0] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(cls.entity_kind, name, f"invalid JSON: {exc.msg}") from None
    if text.lower() in ("", "null", "none") and _optional(hint):
        return None
    if _accepts(hint, dt.datetime):
        raw = _full_datetime(text)
    try:
        value = msgspec.convert(raw, hint, strict=False)
    except msgspec.ValidationError as exc:
        wanted = model.expected(str(exc).split(" - at `", 1)[0])
        if wanted is not None:  # say what was typed: "expected a whole number, got '12.5'"
            rule = f"expected {wanted}, got {text!r}"
            raise ValidationFailed(cls.entity_kind, name, rule) from None
        raise model.validation_error(cls, _at(exc, name), None) from None
    return msgspec.to_builtins(value)


#: An ISO date and time people type: a space for the T, seconds left out.
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?(.*)$")


def _full_datetime(text: str) -> str:
    """``2026-01-01 10:00`` -> ``2026-01-01T10:00:00`` (msgspec wants RFC 3339)."""
    match = _DATETIME.match(text)
    if match is None:
        return text
    date, minutes, seconds, zone = match.groups()
    return f"{date}T{minutes}{seconds or ':00'}{zone}"


def _accepts(hint: Any, wanted: type) -> bool:
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return hint is wanted or wanted in typing.get_args(hint)


def _optional(hint: Any) -> bool:
    args = typing.get_args(
        typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
    )
    return type(None) in args or type(None) in typing.get_args(hint)


def _at(exc: msgspec.ValidationError, name: str) -> msgspec.ValidationError:
    message = str(exc).split(" - at `", 1)[0]
    return msgspec.ValidationError(f"{message} - at `$.{name}`")


def _currency(production: StoredProduction) -> str:
    """The currency to show money in; the stored one even if the production is invalid
    (a peer's bad edit must not make every listing fail)."""
    try:
        return production.doc.production.currency
    except ValidationFailed:
        return str(production.doc.production_fields().get("currency") or "USD")


def kind_arg(value: str) -> type[model.Entity]:
    cls = model.kind_class(value)
    if cls is model.Production:
        raise CastroomError("the production is edited with `castroom production set field=value`")
    return cls


def display(field: str, value: Any, currency: str) -> str:
    if value is None:
        return ""
    if field in MONEY_FIELDS and isinstance(value, int):
        return format_money(value, currency)
    if isinstance(value, list | dict):
        return json.dumps(msgspec.to_builtins(value), ensure_ascii=False)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


class CastroomGroup(click.Group):
    """Turns domain errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            obj = ctx.find_object(Context)
            if obj is not None and obj.notice:
                click.echo(obj.notice, err=True)
            return result
        except CastroomError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        finally:
            obj = ctx.find_object(Context)
            if obj is not None:
                obj.close()


@click.group(cls=CastroomGroup)
@click.version_option(package_name="castroom")
@click.option(
    "--workspace",
    "-w",
    envvar="CASTROOM_WORKSPACE",
    type=click.Path(file_okay=False),
    help="Workspace folder (default: your user data folder).",
)
@click.option(
    "--production",
    "-p",
    envvar="CASTROOM_PRODUCTION",
    help="Production id, id prefix or title (when the workspace holds several).",
)
@click.option("--member", envvar="CASTROOM_MEMBER", help="Who you are, for the history.")
@click.pass_context
def cli(
    ctx: click.Context, workspace: str | None, production: str | None, member: str | None
) -> None:
    """castroom: plan who plays what, keep every scene consistent, stay in budget."""
    plugins = ctx.obj if isinstance(ctx.obj, Plugins) else make_plugins()
    ctx.obj = Context(plugins, workspace, production, member)


@cli.command()
@click.option("--production", "title", required=True, help="The production's title.")
@click.option(
    "--kind",
    default="film",
    show_default=True,
    type=click.Choice(typing.get_args(model.ProductionKind)),
)
@click.option("--currency", default="USD", show_default=True)
@click.option("--budget-cap", type=int, help="Cast budget cap, in minor units (cents).")
@click.option(
    "--force", is_flag=True, help="Make the production even if one with this title exists."
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def init(
    obj: Context,
    title: str,
    kind: str,
    currency: str,
    budget_cap: int | None,
    force: bool,
    as_json: bool,
) -> None:
    """Create a workspace (if needed) and a production in it."""
    fields: dict[str, Any] = {"kind": kind, "currency": currency}
    if budget_cap is not None:
        fields["budget_cap"] = budget_cap
    # Validate before making anything: a refused init must leave no workspace behind.
    # (A placeholder id: the real one is made with the production.)
    try:
        model.validate(model.Production, {"id": "new", "title": title, **fields})
    except ValidationFailed as exc:
        raise ValidationFailed(exc.kind, exc.field, exc.rule) from None
    if not force:
        # Running init twice must not make a second production with the same title (a
        # deleted one does not count: restore it or make a new one).
        with contextlib.suppress(NotFound):  # no workspace yet
            for pid, known in obj.workspace().productions(include_deleted=False):
                if known.casefold() == title.strip().casefold():
                    raise CastroomError(
                        f"a production titled {known!r} exists here (id {pid}); use"
                        " --production to work in it, or init --force to make another"
                    )
    workspace = obj.workspace(create=True)
    production = workspace.create_production(title, **fields)
    if as_json:
        emit_json(production.doc.production)
    else:
        click.echo(f"Created production {title!r} ({production.id}) in {workspace.path}")


@cli.command(name="add")
@click.argument("kind")
@click.argument("assignments", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def add_cmd(obj: Context, kind: str, assignments: tuple[str, ...], as_json: bool) -> None:
    """Add an entity: castroom add talent name="Ada Stone" playing_age_min=30"""
    cls = kind_arg(kind)
    fields = parse_assignments(cls, assignments)
    doc = obj.production().doc
    fields = resolve_references(doc, cls, fields)
    check_era(doc, cls, fields)
    check_duplicate_candidate(doc, cls, fields)
    entity = doc.add(cls, **fields)
    if as_json:
        emit_json(entity)
    else:
        click.echo(f"Added {cls.entity_kind} {entity.id}")


@cli.command(name="list")
@click.argument("kind")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted entities.")
@click.option(
    "--where",
    "filters",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Keep the ones whose FIELD equals VALUE; for a list field (languages, characters,"
    " ...) the ones whose list holds VALUE. References take an id, id prefix or name."
    " Repeat to require several.",
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_cmd(
    obj: Context, kind: str, include_deleted: bool, filters: tuple[str, ...], as_json: bool
) -> None:
    """List entities of a kind (singular or plural: talent, talents)."""
    cls = kind_arg(kind)
    production = obj.production()
    tests = parse_filters(production.doc, cls, filters)
    valid = production.doc.all(cls, include_deleted=True)
    # Invalid entities are skipped by all(): say so (on stderr, --json stays clean).
    hidden = len(production.doc.ids(cls)) - len(valid)
    if hidden:
        what = cls.collection if hidden > 1 else cls.entity_kind
        click.echo(f"{hidden} invalid {what} hidden; see `castroom invalid`", err=True)
    entities = [
        e
        for e in valid
        if (include_deleted or not e.deleted) and all(test(model.to_fields(e)) for test in tests)
    ]
    if as_json:
        emit_json(entities)
        return
    currency = _currency(production)
    table = Table(title=f"{len(entities)} {cls.collection}")
    columns = ("id", *COLUMNS[cls.entity_kind]) + (("deleted",) if include_deleted else ())
    for column in columns:
        table.add_column(column, overflow="fold")
    for entity in entities:
        table.add_row(*(display(c, getattr(entity, c), currency) for c in columns))
    obj.console.print(table)


@cli.command()
@click.argument("kind")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(obj: Context, kind: str, ref: str, as_json: bool) -> None:
    """Show one entity, by id, id prefix, or name."""
    cls = kind_arg(kind)
    production = obj.production()
    doc = production.doc
    entity_id = doc.resolve_id(cls, ref, include_deleted=True)
    # What is stored, valid or not: an entity a peer left invalid must be seen to be fixed.
    fields = doc.stored_fields(cls, entity_id)
    for problem in doc.problems(cls, entity_id):
        click.echo(
            f"Warning: {cls.entity_kind} {entity_id} is invalid: {problem.field or '-'}:"
            f" {problem.rule} (fix it with `castroom set {cls.entity_kind} {entity_id}"
            f" {problem.field or 'FIELD'}=...`)",
            err=True,
        )
    if as_json:
        emit_json(fields)
        return
    currency = _currency(production)
    table = Table(show_header=False, title=f"{cls.entity_kind} {entity_id}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name in cls.__struct_fields__:
        table.add_row(name, display(name, fields.get(name), currency))
    obj.console.print(table)


@cli.command(name="set")
@click.argument("kind")
@click.argument("ref")
@click.argument("assignments", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def set_cmd(obj: Context, kind: str, ref: str, assignments: tuple[str, ...], as_json: bool) -> None:
    """Change fields of an entity: castroom set talent "Ada Stone" rate=150000

    References take an id, id prefix or name. A JSON object or list replaces the whole
    field: ratings='{"Rosa": 4}' drops the candidate's other ratings, so give them all
    (a rating another member gives offline at the same time is lost: last write wins)."""
    cls = kind_arg(kind)
    doc = obj.production().doc
    # The id, not the entity: one stored invalid is repaired here (update() validates the
    # stored fields with the given ones, and writes only the given ones).
    entity_id = doc.resolve_id(cls, ref, include_deleted=True)
    current = doc.stored_fields(cls, entity_id)
    fields = resolve_references(doc, cls, parse_assignments(cls, assignments))
    check_era(doc, cls, fields, current)
    check_duplicate_candidate(doc, cls, fields, current)
    updated = doc.update(cls, entity_id, fields)
    if as_json:
        emit_json(updated)
    else:
        click.echo(f"Updated {cls.entity_kind} {entity_id}")


@cli.command()
@click.argument("kind")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the entity (with its id).")
@pass_ctx
def delete(obj: Context, kind: str, ref: str, as_json: bool) -> None:
    """Delete an entity (soft: `castroom restore` brings it back)."""
    cls = kind_arg(kind)
    doc = obj.production().doc
    # A live match wins; a deleted one only when nothing live matches (then: say so).
    # By id and stored fields: an entity stored invalid can be deleted too.
    entity_id = doc.resolve_id(cls, ref, include_deleted=True)
    fields = doc.stored_fields(cls, entity_id)
    if fields.get("deleted"):
        message = f"{cls.entity_kind} {_called(fields)} is already deleted"
    else:
        doc.delete(cls, entity_id)
        fields = doc.stored_fields(cls, entity_id)
        message = f"Deleted {cls.entity_kind} {entity_id}"
    _report(fields, message, as_json)


@cli.command()
@click.argument("kind")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the entity (with its id).")
@pass_ctx
def restore(obj: Context, kind: str, ref: str, as_json: bool) -> None:
    """Bring back a deleted entity."""
    cls = kind_arg(kind)
    doc = obj.production().doc
    entity_id = doc.resolve_id(cls, ref, prefer_deleted=True)
    fields = doc.stored_fields(cls, entity_id)
    if not fields.get("deleted"):
        message = f"{cls.entity_kind} {_called(fields)} is not deleted"
    else:
        doc.restore(cls, entity_id)
        fields = doc.stored_fields(cls, entity_id)
        message = f"Restored {cls.entity_kind} {entity_id}"
    _report(fields, message, as_json)


def _report(fields: dict[str, Any], message: str, as_json: bool) -> None:
    if as_json:
        emit_json(fields)
    else:
        click.echo(message)


def _called(fields: dict[str, Any]) -> str:
    """:func:`_name` of stored fields (valid or not)."""
    for key in ("name", "number", "date"):
        if fields.get(key) not in (None, ""):
            return str(fields[key])
    return str(fields.get("id", ""))


def _name(entity: model.Entity) -> str:
    """An entity as people know it: its name (or number), else its id."""
    return str(next(iter(labels(entity)), entity.id))


@cli.group()
def production() -> None:
    """Show or change the production itself, or list the workspace's productions."""


@production.command(name="show")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def production_show(obj: Context, as_json: bool) -> None:
    """Show the production's fields."""
    doc = obj.production().doc
    try:
        fields = model.to_fields(doc.production)
    except ValidationFailed as exc:
        # Show what is stored, and what is wrong with it, so it can be repaired.
        fields = doc.production_fields()
        click.echo(f"Warning: {exc} (fix it with `castroom production set`)", err=True)
    if as_json:
        emit_json(fields)
        return
    currency = str(fields.get("currency") or "USD")
    for name in model.Production.__struct_fields__:
        click.echo(f"{name}: {display(name, fields.get(name), currency)}")


@production.command(name="set")
@click.argument("assignments", nargs=-1, required=True)
@pass_ctx
def production_set(obj: Context, assignments: tuple[str, ...]) -> None:
    """Change the production's fields: castroom production set budget_cap=250000000"""
    fields = parse_assignments(model.Production, assignments)
    if "deleted" in fields:
        raise CastroomError("deleted: use `castroom production delete` (or `restore`)")
    obj.production().doc.update_production(fields)
    click.echo("Updated production")


@production.command(name="delete")
@click.argument("ref", required=False)
@pass_ctx
def production_delete(obj: Context, ref: str | None) -> None:
    """Delete a production (soft: hidden from `production list`; `production restore`
    brings it back). REF: id, id prefix or title (default: --production, or the only one).

    A deleted production stays readable with --production (list, show, history,
    reports), but changes to it (add, set, delete, import, ...) are refused until it is
    restored; peers' edits arriving by sync or bundle still merge."""
    production = obj.workspace().production(ref or obj.production_ref)
    title = production.title()
    if production.workspace.is_deleted(str(production.id)):
        click.echo(f"production {title} is already deleted")
        return
    production.doc.update_production({"deleted": True})
    click.echo(f"Deleted production {title} ({production.id})")


@production.command(name="restore")
@click.argument("ref", required=False)
@pass_ctx
def production_restore(obj: Context, ref: str | None) -> None:
    """Bring back a deleted production (REF: id, id prefix or title)."""
    workspace = obj.workspace()
    production_id = workspace.resolve_production(ref or obj.production_ref, prefer_deleted=True)
    production = workspace.production(production_id)
    title = production.title()
    if not workspace.is_deleted(production_id):
        click.echo(f"production {title} is not deleted")
        return
    production.doc.update_production({"deleted": False})
    click.echo(f"Restored production {title} ({production_id})")


@production.command(name="list")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted productions.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def production_list(obj: Context, include_deleted: bool, as_json: bool) -> None:
    """The productions in this workspace."""
    workspace = obj.workspace()
    known = workspace.productions(include_deleted=include_deleted)
    rows = [{"id": i, "title": t, "deleted": workspace.is_deleted(i)} for i, t in known]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['id']}  {row['title']}" + ("  (deleted)" if row["deleted"] else ""))


@cli.command()
@click.option("--limit", default=30, show_default=True, help="How many rows to show.")
@click.option("--entity", help="Only changes to this entity: an id, id prefix or name.")
@click.option("--kind", "kind", help="The --entity's kind, when a name is used by several.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def history(obj: Context, limit: int, entity: str | None, kind: str | None, as_json: bool) -> None:
    """Who changed which entity and fields, when; newest first."""
    production = obj.production()
    if entity is not None:
        entity = _history_entity(production, entity, kind)
    # --limit counts the rows shown (one per entity changed), not log entries.
    rows: list[dict[str, Any]] = []
    for entry, collection, entity_id, fields in production.history_changes(
        limit=limit, entity=entity
    ):
        rows.append(
            {
                "seq": entry.seq,
                "time": dt.datetime.fromtimestamp(entry.ts, dt.UTC).isoformat(timespec="seconds"),
                "member": entry.member,
                "device": entry.device,
                "origin": entry.origin,
                "kind": _kind_name(collection),
                "entity_id": entity_id,
                "label": _label(production, collection, entity_id),
                "fields": _history_fields(fields),
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table(title="history (newest first)")
    for column in ("time", "member", "origin", "kind", "entity", "fields"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["time"][:19].replace("T", " "),
            row["member"],
            row["origin"],
            row["kind"],
            row["label"] or row["entity_id"],
            ", ".join(row["fields"]),
        )
    obj.console.print(table)


def _history_entity(production: StoredProduction, ref: str, kind: str | None) -> str:
    """The id ``--entity`` means: resolved in ``kind``, or across every kind (an id as
    it is, so the history of an entity stored invalid still shows)."""
    doc = production.doc
    if ref == production.id:
        return ref
    kinds = [kind_arg(kind)] if kind else list(model.KINDS.values())
    if any(doc.raw(cls, ref) is not None for cls in kinds):
        return ref
    found: list[tuple[type[model.Entity], str]] = []
    for cls in kinds:
        try:  # resolve_id: an entity stored invalid has a history too
            found.append((cls, doc.resolve_id(cls, ref, include_deleted=True)))
        except NotFound:
            continue  # (Ambiguous within one kind: its message lists the matches)
    if not found:
        raise NotFound(f"no entity matching {ref!r}")
    if len(found) > 1:
        which = ", ".join(f"{c.entity_kind} {i}" for c, i in found[:5])
        raise Ambiguous(f"{ref!r} matches {which}; use --kind or the id")
    return found[0][1]


def _kind_name(collection: str) -> str:
    cls = model.COLLECTIONS.get(collection)
    return cls.entity_kind if cls else collection


def _label(production: StoredProduction, collection: str, entity_id: str) -> str:
    cls = model.COLLECTIONS.get(collection)
    if cls is None:
        if collection != "production":
            return ""
        return str(production.doc.production_fields().get("title") or "")  # valid or not
    data = production.doc.raw(cls, entity_id) or {}
    named = data.get("name") or data.get("number") or data.get("date")
    return str(named) if named else _described(production.doc, cls, data)


def _described(doc: CastDocument, cls: type[model.Entity], data: dict[str, Any]) -> str:
    """A readable label for an entity without a name of its own, from what it refers to
    (stored fields, valid or not): "Ada Stone for Nora (1962)", "Ada Stone / Nora",
    "Ada Stone 2027-03-01..03", "Nora 2027-03-01 10:00"."""

    def called(target: type[model.Entity], ref: Any) -> str:
        fields = doc.raw(target, str(ref)) if ref else None
        return str((fields or {}).get("name") or ref or "?")

    talent = called(model.Talent, data.get("talent_id"))
    role = called(model.Role, data.get("role_id"))
    if cls is model.Candidate:
        era = f" ({data['era']})" if data.get("era") else ""
        return f"{talent} for {role}{era}"
    if cls is model.Deal:
        return f"{talent} / {role}"
    if cls is model.Availability:
        start, end = str(data.get("start") or ""), str(data.get("end") or "")
        if not end or end == start:
            return f"{talent} {start}".rstrip()
        same_month = start[:8] == end[:8] and len(end) == 10
        return f"{talent} {start}..{end[8:] if same_month else end}"
    if cls is model.Audition:
        when = str(data.get("starts_at") or "")[:16].replace("T", " ")
        ids = data.get("role_ids") if data.get("role_id") is None else None
        if isinstance(ids, list) and ids:  # a chemistry read of several roles
            role = " & ".join(called(model.Role, ref) for ref in ids)
        return f"{role} {when}".rstrip()
    return ""


@cli.command()
@pass_ctx
def compact(obj: Context) -> None:
    """Fold the update log into a snapshot (history of who/what/when is kept)."""
    folded, size = obj.production().compact()
    click.echo(f"Folded {folded} updates into a snapshot of {size:,} bytes")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def invalid(obj: Context, as_json: bool) -> None:
    """Entities that break a model rule (e.g. edited on an older version elsewhere)."""
    items = obj.production().invalid()
    if as_json:
        emit_json([{**item._asdict(), "device": device} for item, device in items])
        return
    if not items:
        click.echo("No invalid entities.")
    for item, device in items:
        click.echo(
            f"{item.kind} {item.id}: {item.field or '-'}: {item.rule}"
            f" (last written by device {device})"
        )
    if items:
        sys.exit(1)


@cli.group()
def bundle() -> None:
    """Move everything (or what a peer lacks) between offline machines as one file."""


@bundle.command(name="create")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--for",
    "for_state",
    type=click.Path(exists=True, dir_okay=False),
    help="A peer's state file: include only what that peer lacks.",
)
@pass_ctx
def bundle_create(obj: Context, file: str, for_state: str | None) -> None:
    """Write this workspace's productions into FILE."""
    made = bundles.create(
        obj.workspace(), Path(file), for_state=Path(for_state) if for_state else None
    )
    # Only productions with new content count: an entry with no struct carries just the
    # delete set (which a state vector cannot tell the peer has), kept to be safe.
    new = [e for e in made.productions if not update_is_empty(e.update)]
    if not new:
        click.echo(f"Nothing new for that peer: wrote {file} anyway")
        return
    size = sum(len(e.update) for e in made.productions)  # the whole file's
    click.echo(
        f"Wrote {len(new)} production(s) ({_titles([e.title for e in new])}),"
        f" {size:,} bytes of updates, to {file}"
    )


@bundle.command(name="apply")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def bundle_apply(obj: Context, file: str) -> None:
    """Merge a bundle from another machine (works on a new, empty workspace too)."""
    workspace = obj.workspace(create=True)
    moved = bundles.apply(workspace, Path(file))
    # Only the productions the bundle changed: "0 entities changed" lines are noise.
    changed = {pid: count for pid, count in moved.items() if count}
    if not changed:
        click.echo(f"Nothing new in {file}: this workspace already had all of it")
    titles = dict(workspace.productions())
    for pid, count in changed.items():
        what = "entity" if count == 1 else "entities"
        click.echo(f"{titles.get(pid) or pid} ({pid}): {count} {what} changed")


def _titles(titles: list[str], most: int = 3) -> str:
    shown = ", ".join(titles[:most])
    return shown + (f" and {len(titles) - most} more" if len(titles) > most else "")


@bundle.command(name="state")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def bundle_state(obj: Context, file: str) -> None:
    """Write what this workspace has, for a peer's `bundle create --for FILE`."""
    count = bundles.write_state(obj.workspace(create=True), Path(file))
    click.echo(f"Wrote the state of {count} production(s) to {file}")


@cli.command(name="plugins")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def plugins_cmd(obj: Context, as_json: bool) -> None:
    """The installed plugins, their versions and hooks."""
    infos = obj.plugins.list()
    if as_json:
        # Broken plugins are part of the answer: a script must not mistake "not loaded"
        # for "not installed".
        emit_json(
            {
                "plugins": [
                    {"name": p.name, "version": p.version, "hooks": p.hooks, "builtin": p.builtin}
                    for p in infos
                ],
                "failures": [f.as_dict() for f in obj.plugins.failures],
            }
        )
    else:
        table = Table(title="plugins")
        for column in ("name", "version", "built-in", "hooks"):
            table.add_column(column, overflow="fold")
        for info in infos:
            table.add_row(
                info.name, info.version or "", "yes" if info.builtin else "", ", ".join(info.hooks)
            )
        obj.console.print(table)
    for failure in obj.plugins.failures:
        click.echo(f"Warning: {failure}", err=True)


def _history_fields(fields: list[str]) -> list[str]:
    if CREATED in fields:
        return ["(created)"]
    named = sorted(f for f in fields if f != UNLISTED)
    return [*named, "(fields not itemised: a large merge)"] if UNLISTED in fields else named


def build_cli(plugins: Plugins) -> click.Group:
    """A fresh root command: the core commands plus every plugin's.

    The module-level ``cli`` group only holds the core commands; each call makes a new
    group, so plugin commands never leak between plugin managers (tests, embedders).
    """
    root = CastroomGroup(
        name="castroom",
        callback=cli.callback,
        params=list(cli.params),
        help=cli.help,
        commands=dict(cli.commands),
    )
    plugins.register_commands(root)
    return root


def main(argv: list[str] | None = None) -> None:
    try:
        plugins = make_plugins()
        root = build_cli(plugins)
    except CastroomError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    for failure in plugins.failures:
        click.echo(f"Warning: {failure}", err=True)
    root.main(args=argv, obj=plugins, prog_name="castroom")

"""Built-in plugin: CSV import and export of any entity kind.

Import: ``castroom import csv FILE --kind talent [--map col=field ...] [--source NAME]``
(or ``castroom import xlsx BOOK.xlsx [--sheet NAME] ...``: a workbook's rows map the same
way). The file's encoding (UTF-8, UTF-16, Windows-1252) and separator (``,`` ``;`` tab
``|``) are found without options; see tables.py.
Columns named like a field (case and spaces ignored) map themselves; ``--map`` maps the
rest. A target ``attributes.shoe`` (or ``external_ids.spotlight``, ``specs.accent``) fills
one key of a dict field; ``external_id`` records the row's id at the source in
``external_ids[SOURCE]`` (talents, roles and scenes). List cells take JSON (``["a", "b"]``)
or ``a; b``. Money cells are major units of the production's currency, as people write
them (``1500``, ``1,500.00``, ``$1,500``), read by the one parser every front end uses
(:func:`castroom.core.money.parse_money`); export writes them plain (``1500.00``).

Reference cells (``talent_id``, ``role_id``, ``shoot_day_id``, ``characters``, ``role_ids``,
``scene_ids``, ``panel``) take an id, or a name (a scene's number, a shoot day's date) that matches
exactly one entity, so an office's "talent, role, stage" sheet imports as candidates.

An ``id`` column is castroom's own id (what ``castroom export csv`` writes). Its
``deleted`` column imports back quietly but is not applied (``castroom delete`` and
``restore`` do that): rows where it disagrees with castroom get one warning. Ids that are
not castroom's (an office's ``ID`` column) are kept as ``external_ids[SOURCE]`` instead,
for the kinds that have source ids (talents, roles, scenes); other kinds refuse them.

Re-importing updates instead of duplicating: a row is matched to an existing entity by
its ``id`` column, else by its source id (``external_ids``), else by a natural key (name
for talents, roles and members; number for scenes; date for shoot days; talent, role and
era for candidates). A live entity is matched before a deleted one with the same key, and
names in reference cells resolve among live entities only.
"""

from __future__ import annotations

import csv
import io
import json
import re
import typing
from pathlib import Path
from typing import Any

import msgspec

from castroom.core.api import (
    CastroomError,
    Exporter,
    Importer,
    ImportResult,
    ProductionView,
    Resolver,
    ValidationFailed,
    fold,
    hookimpl,
    label,
    model,
    money_fields,
    parse_money,
    plain_amount,
    resolve_references,
)
from castroom.plugins import tables

_NULLS = frozenset({"null", "none"})
#: Fields that identify an entity when the file has no id column.
NATURAL_KEYS: dict[str, str] = {
    "talent": "name",
    "role": "name",
    "member": "name",
    "scene": "number",
    "shoot_day": "date",
}
#: Natural keys of several fields: a candidate is a talent considered for a role (and era).
COMPOSITE_KEYS: dict[str, tuple[str, ...]] = {
    "candidate": ("talent_id", "role_id", "era"),
}
DEFAULT_SOURCE = "csv"
#: What castroom's own ids look like (ULIDs); anything else in an ``id`` column is an id
#: from somewhere else.
OWN_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


#: Fields that hold ids of other entities. A CSV may give the name (or a scene's number,
#: a shoot day's date) instead; the importer looks it up.
REFERENCES: dict[str, str] = {
    "talent_id": "talent",
    "role_id": "role",
    "shoot_day_id": "shoot_day",
    "characters": "role",
    "role_ids": "role",
    "scene_ids": "scene",
    "panel": "member",
}


# -- reading -----------------------------------------------------------------------------------


def _a(word: str) -> str:
    """``word`` with its indefinite article: "a talent", "an audition"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def parse_mapping(options: dict[str, Any]) -> dict[str, str]:
    """``--map col=field`` options as {column: target}."""
    mapping: dict[str, str] = {}
    for item in _as_list(options.get("map")):
        if not isinstance(item, str) or "=" not in item:
            raise CastroomError(f"--map expects column=field, got {item!r}")
        column, target = item.split("=", 1)
        mapping[column.strip()] = target.strip()
    return mapping


def kind_for(path: str, options: dict[str, Any]) -> type[model.Entity]:
    """The kind to import: ``--kind``, else the file name's first word (talents.csv)."""
    kind = options.get("kind")
    if kind is None:
        stem = _norm(Path(path).stem)
        for word in (stem, stem.split("_")[0], stem.split(".")[0]):
            try:
                cls = model.kind_class(word)
            except ValidationFailed:
                continue
            if cls is not model.Production:
                return cls
        return model.Talent
    cls = model.kind_class(str(kind))
    if cls is model.Production:
        raise CastroomError("the production itself cannot be imported from CSV")
    return cls


class _Field:
    """How to turn one cell into one field's value (computed once per column)."""

    def __init__(
        self, cls: type[model.Entity], target: str, hints: dict[str, Any], currency: str
    ) -> None:
        self.target = target
        self.cls = cls
        self.currency = currency
        self.field, _, self.key = target.partition(".")
        if self.field == "external_id":
            if "external_ids" not in cls.__struct_fields__:
                raise CastroomError(f"{_a(cls.entity_kind)} has no external_ids")
            self.kind = "external_id"
            return
        if self.field not in cls.__struct_fields__ or self.field == "deleted":
            raise ValidationFailed(cls.entity_kind, self.field, "no such field")
        hint = hints[self.field]
        base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
        origin = typing.get_origin(base)
        if self.key:
            if origin is not dict and base is not dict:
                raise CastroomError(f"{target}: {self.field} is not a dict field")
            self.kind = "dict_key"
        elif self.field in money_fields(cls):
            self.kind = "money"
        elif origin is list or base is list:
            self.kind = "list"
        elif origin is dict or base is dict:
            self.kind = "dict"
        else:
            self.kind = "scalar"
        self.hint = hint


def _cell(spec: _Field, raw: str) -> Any:
    """One cell's value; raises ValueError with a short reason."""
    if spec.kind == "money":
        return parse_money(raw, spec.currency)
    if spec.kind == "list":
        if raw.lstrip().startswith("["):
            value = json.loads(raw)
            if not isinstance(value, list):
                raise ValueError("expected a JSON list")
            return value
        sep = ";" if ";" in raw else "|" if "|" in raw else ","
        return [part.strip() for part in raw.split(sep) if part.strip()]
    if spec.kind == "dict":
        if raw.lstrip().startswith("{"):
            return json.loads(raw)
        out = {}
        for part in raw.split(";"):
            if part.strip():
                key, sep, value = part.partition("=")
                if not sep:
                    raise ValueError(f"expected key=value; ..., got {part.strip()!r}")
                out[key.strip()] = value.strip()
        return out
    if spec.kind in ("dict_key", "external_id"):
        return raw.strip()
    text = raw.strip()
    if text[:1] in "[{":
        return json.loads(text)
    if text.lower() in _NULLS:
        return None
    try:
        return msgspec.to_builtins(msgspec.convert(text, spec.hint, strict=False))
    except msgspec.ValidationError as exc:
        reason = str(exc).split(" - at `", 1)[0]
        # The model's words, as the command line says them, and what the cell held
        # (unless those words quote it already: "'weird' is not one of: ...").
        words = model.humane(spec.cls, spec.field, reason)
        raise ValueError(words if repr(text) in words else f"{words}, got {text!r}") from None


def _key(value: Any) -> str:
    return fold(value) if isinstance(value, str) else str(value)


def _index(entities: list[model.Entity], field: str) -> dict[str, model.Entity]:
    """Entities by a natural key; a live entity wins over a deleted one with the same key."""
    out: dict[str, model.Entity] = {}
    for entity in sorted(entities, key=lambda e: e.deleted):
        value = getattr(entity, field, None)
        if value is not None:
            out.setdefault(_key(value), entity)
    return out


def _composite(fields: dict[str, Any], names: tuple[str, ...]) -> tuple[str, ...] | None:
    """A row's (or entity's) composite natural key; None when a required part is missing
    (an absent optional part, such as a candidate's era, is its default: none)."""
    if any(fields.get(name) is None for name in names[:2]):
        return None
    return tuple(_key(fields.get(name) or "") for name in names)


def _index_composite(
    entities: list[model.Entity], names: tuple[str, ...]
) -> dict[tuple[str, ...], model.Entity]:
    out: dict[tuple[str, ...], model.Entity] = {}
    for entity in sorted(entities, key=lambda e: e.deleted):
        key = _composite(model.to_fields(entity), names)
        if key is not None:
            out.setdefault(key, entity)
    return out


class _Columns:
    """How the file's header maps to one kind's fields (warnings for what it ignores)."""

    def __init__(
        self, cls: type[model.Entity], header: list[str], mapping: dict[str, str], currency: str
    ) -> None:
        unknown_maps = set(mapping) - set(header)
        if unknown_maps:
            missing = sorted(unknown_maps)[0]
            raise CastroomError(f"--map names a column the file does not have: {missing}")
        hints = typing.get_type_hints(cls, include_extras=True)
        fields_by_norm = {_norm(f): f for f in cls.__struct_fields__}
        self.specs: list[tuple[int, _Field]] = []
        self.warnings: list[str] = []
        self.deleted: int | None = None  # the position of `export csv`'s deleted column
        for position, name in enumerate(header):
            target = mapping.get(name)
            if target is None:
                norm = _norm(name)
                target = "external_id" if norm == "external_id" else fields_by_norm.get(norm)
            if target == "deleted":
                # `export csv` writes it: the round trip must import quietly. Deleting and
                # restoring stay with `castroom delete`/`restore` (said below if a row asks).
                self.deleted = position
            elif target is None:
                if name.strip():
                    self._ignore(f"column {name!r} is not {_a(cls.entity_kind)} field")
            elif target == "external_id" and "external_ids" not in cls.__struct_fields__:
                self._ignore(f"column {name!r}: {_a(cls.entity_kind)} has no external_ids")
            else:
                self.specs.append((position, _Field(cls, target, hints, currency)))
        self.has_refs = any(spec.field in REFERENCES for _, spec in self.specs)

    def _ignore(self, why: str) -> None:
        self.warnings.append(f"{why}: ignored")


class _Matcher:
    """Finds the existing entity a row is (by id, source id, natural or composite key);
    rows of this file claim keys too, so a key repeated in the file updates one entity."""

    def __init__(self, cls: type[model.Entity], view: ProductionView, source: str) -> None:
        existing = view.all(cls, include_deleted=True)
        self.source = source
        self.by_id = {e.id: e for e in existing}
        self.by_external: dict[str, model.Entity] = {}
        if "external_ids" in cls.__struct_fields__:
            for entity in existing:
                ext = entity.external_ids.get(source)  # type: ignore[attr-defined]
                if ext:
                    self.by_external.setdefault(ext, entity)
        self.natural = NATURAL_KEYS.get(cls.entity_kind)
        self.by_natural = _index(existing, self.natural) if self.natural else {}
        self.composite = COMPOSITE_KEYS.get(cls.entity_kind)
        self.by_composite = _index_composite(existing, self.composite) if self.composite else {}

    def find(self, fields: dict[str, Any], external: str | None) -> model.Entity | None:
        """The entity the row's ``fields`` are; keys matched ignoring case are taken out of
        ``fields``, so the stored spelling stays."""
        if "id" in fields:
            match = self.by_id.get(fields["id"])
            return match or (self.by_external.get(external) if external else None)
        match = self.by_external.get(external) if external else None
        natural, composite = self.natural, self.composite
        if match is None and natural and natural in fields:
            match = self.by_natural.get(_key(fields[natural]))
            if match is not None:
                del fields[natural]
        if match is None and composite:
            key = _composite(fields, composite)
            match = self.by_composite.get(key) if key is not None else None
            if match is not None:
                for name in composite:
                    if isinstance(fields.get(name), str) and name not in REFERENCES:
                        del fields[name]
        return match

    def add(self, entity: model.Entity, external: str | None) -> None:
        self.by_id[entity.id] = entity
        if external:
            self.by_external[external] = entity
        if self.natural:
            self.by_natural[_key(getattr(entity, self.natural))] = entity
        if self.composite:
            own = _composite(model.to_fields(entity), self.composite)
            if own is not None:
                self.by_composite[own] = entity


class _Rejected(Exception):
    """A row refused, with the reason as the import report says it."""


class _Reader:
    """One CSV import: each row parsed, matched and validated into an entity."""

    def __init__(self, path: str, view: ProductionView, options: dict[str, Any]) -> None:
        self.cls = cls = kind_for(path, options)
        self.path, self.view = path, view
        self.source = str(options.get("source") or DEFAULT_SOURCE)
        self.table = tables.read_table(path, options)
        self.columns = _Columns(cls, self.table.header, parse_mapping(options), view.currency)
        self.warnings = self.columns.warnings
        self.matcher = _Matcher(cls, view, self.source)
        self.refs = Resolver(view)  # what a reference cell names, as every write resolves it
        self.foreign_ids = False
        self.mismatched = 0  # rows whose deleted cell disagrees with castroom (not applied)
        self.first_row: dict[str, int] = {}  # entity id -> the first row of this file that is it

    def read(self) -> ImportResult:
        unit, width = self.table.unit, len(self.table.header)
        entities: list[model.Entity] = []
        errors: list[str] = []
        rows = 0
        for line, row in self.table.rows:
            if not any(cell.strip() for cell in row):
                continue
            rows += 1
            try:
                if len(row) > width and any(c.strip() for c in row[width:]):
                    raise _Rejected(f"{len(row)} cells but the header has {width}")
                entity = self._entity(line, row)
            except _Rejected as exc:
                errors.append(f"{unit} {line}: {exc}")
                continue
            entities.append(entity)
        if self.mismatched:
            self.warnings.append(
                f"column 'deleted': {self.mismatched} row(s) say otherwise than castroom; import"
                " neither deletes nor restores (use `castroom delete` or `castroom restore`)"
            )
        if not rows and not errors:
            self.warnings.append(f"{self.path} has a header but no rows")
        return ImportResult(
            entities=entities, warnings=self.warnings, errors=errors, report=self.table.notes
        )

    def _cells(self, row: list[str]) -> tuple[dict[str, Any], dict[str, _Field], str | None]:
        """The row's field values, the plain scalars left for one msgspec call, and its
        source id."""
        fields: dict[str, Any] = {}
        deferred: dict[str, _Field] = {}
        external: str | None = None
        for position, spec in self.columns.specs:
            raw = unescape_cell(row[position]) if position < len(row) else ""
            text = raw.strip()
            if not text:
                continue
            if spec.kind == "scalar" and text[0] not in "[{" and text.lower() not in _NULLS:
                # Plain scalars are converted with the whole row in one msgspec call (fast);
                # a cell that does not fit is then diagnosed on its own for a clear message.
                fields[spec.field] = text
                deferred[spec.field] = spec
                continue
            try:
                value = _cell(spec, raw)
            except (ValueError, msgspec.ValidationError, CastroomError) as exc:
                reason = str(exc).split(" - at `", 1)[0]
                raise _Rejected(f"{self.cls.entity_kind}.{spec.field}: {reason}") from None
            if spec.kind == "external_id":
                external = value
            elif spec.kind == "dict_key":
                fields.setdefault(spec.field, {})[spec.key] = value
            else:
                fields[spec.field] = value
        return fields, deferred, external

    def _foreign_id(self, fields: dict[str, Any], external: str | None) -> str | None:
        """An office's "ID" column holds its ids, not ours: kept as the source id."""
        own = fields.get("id")
        if own is None or own in self.matcher.by_id or OWN_ID.match(own):
            return external
        if "external_ids" not in self.cls.__struct_fields__:
            raise _Rejected(
                f"{self.cls.entity_kind}.id: {own!r} is not a castroom id"
                " (map that column to another field with --map)"
            )
        if not self.foreign_ids:
            self.warnings.append(
                f"the id column holds ids from elsewhere: kept as external_ids[{self.source!r}]"
            )
            self.foreign_ids = True
        del fields["id"]
        return external or own

    def _entity(self, line: int, row: list[str]) -> model.Entity:
        cls, matcher = self.cls, self.matcher
        fields, deferred, external = self._cells(row)
        external = self._foreign_id(fields, external)
        if self.columns.has_refs:
            try:
                fields = resolve_references(self.refs, cls, fields)
            except CastroomError as exc:
                raise _Rejected(str(exc)) from None
        match = matcher.find(fields, external)
        if match is not None and match.id in self.first_row:
            # One person (or role, scene, ...) on two rows: say so, not a silent merge.
            unit = self.table.unit
            self.warnings.append(
                f"{unit} {line}: the same {cls.entity_kind} as {unit} {self.first_row[match.id]}"
                f" ({label(self.view, match)}): one {cls.entity_kind}, the later row's cells win"
            )
        said = self._said_deleted(row)
        if said in ("true", "false") and (said == "true") != bool(match and match.deleted):
            self.mismatched += 1
        data = _merged(match, fields)
        if external:
            data["external_ids"] = {**data.get("external_ids", {}), self.source: external}
        entity = self._validate(data, deferred)
        self.first_row.setdefault(entity.id, line)
        matcher.add(entity, external)
        return entity

    def _said_deleted(self, row: list[str]) -> str:
        """The row's deleted cell, if the file has that column."""
        at = self.columns.deleted
        return row[at].strip().lower() if at is not None and at < len(row) else ""

    def _validate(self, data: dict[str, Any], deferred: dict[str, _Field]) -> model.Entity:
        try:
            return model.validate(self.cls, data)
        except ValidationFailed as exc:
            where = f"{exc.kind}.{exc.field}" if exc.field else exc.kind
            rule = exc.rule
            if exc.field in deferred:
                try:
                    _cell(deferred[exc.field], data[exc.field])
                except (ValueError, msgspec.ValidationError) as cell_exc:
                    rule = str(cell_exc)
            raise _Rejected(f"{where}: {rule}") from None


def _merged(match: model.Entity | None, fields: dict[str, Any]) -> dict[str, Any]:
    """A matched entity's fields with the row's over them (a dict column adds keys and
    keeps the others), or a new entity's."""
    if match is None:
        return {"id": model.new_id(), **fields}
    base = model.to_fields(match)
    for name, value in fields.items():
        if isinstance(value, dict) and isinstance(base.get(name), dict):
            value = {**base[name], **value}
        base[name] = value
    return base


def read_csv(path: str, view: ProductionView, options: dict[str, Any]) -> ImportResult:
    """Read a CSV file into entities of one kind (see the module docstring)."""
    return _Reader(path, view, options).read()


# -- writing -----------------------------------------------------------------------------------


#: Cells a spreadsheet would run as a formula (OWASP "CSV injection"): a leading = + - @,
#: tab or carriage return, possibly behind quotes we added before. A plain number is not.
_FORMULA = re.compile(r"^'*[=+\-@\t\r]")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def escape_cell(text: str) -> str:
    """``text`` made inert for spreadsheets: a leading ``'`` (which they hide) before a
    formula-like cell; :func:`unescape_cell` takes exactly that quote off again."""
    return f"'{text}" if _FORMULA.match(text) and not _NUMBER.match(text) else text


def unescape_cell(text: str) -> str:
    """The value :func:`escape_cell` was given (a re-import of an export round-trips)."""
    return text[1:] if text.startswith("'") and _FORMULA.match(text) else text


def _out(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def write_csv(view: ProductionView, options: dict[str, Any]) -> str:
    """Every entity of ``--kind`` as CSV, one column per field (lists and dicts as JSON).

    ``--fields a,b,c`` picks columns; ``--all`` includes deleted entities. The output
    imports back with ``castroom import csv`` (the id column makes it an update)."""
    kind = options.get("kind")
    if not kind:
        raise CastroomError("export csv needs --kind (talent, role, scene, ...)")
    cls = model.kind_class(str(kind))
    if cls is model.Production:
        entities: list[model.Entity] = [view.production]
    else:
        entities = view.all(cls, include_deleted=bool(options.get("all")))
    fields = list(cls.__struct_fields__)
    if options.get("fields"):
        wanted = [f.strip() for f in str(options["fields"]).split(",") if f.strip()]
        model.check_field_names(cls, wanted)
        fields = wanted if "id" in wanted else ["id", *wanted]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    money = money_fields(cls)
    for entity in entities:
        data = model.to_fields(entity)
        for name in money & data.keys():  # as people (and the importer) read money
            if isinstance(data[name], int):
                data[name] = plain_amount(data[name], view.currency)
        writer.writerow([escape_cell(_out(data.get(f))) for f in fields])
    return buffer.getvalue()


# -- hooks -------------------------------------------------------------------------------------


def _claims(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def _claims_xlsx(path: Path) -> bool:
    return path.suffix.lower() in tables.XLSX_SUFFIXES


@hookimpl(trylast=True)
def castroom_register_importers(register: Any) -> None:
    register(
        Importer(
            name="csv",
            description=(
                "CSV rows into entities of one kind (--kind KIND, --map column=field ..., "
                "--source NAME for source ids; the encoding and separator are found, "
                "--encoding cp1252 and --delimiter ';' override)"
            ),
            run=read_csv,
            claims=_claims,
        )
    )
    register(
        Importer(
            name="xlsx",
            description=(
                "an Excel workbook's rows into entities of one kind, mapped as csv maps "
                "them (--kind, --map column=field ..., --source NAME, --sheet NAME)"
            ),
            run=read_csv,
            claims=_claims_xlsx,
        )
    )


@hookimpl(trylast=True)
def castroom_register_exporters(register: Any) -> None:
    register(
        Exporter(
            name="csv",
            description="every entity of one kind as CSV (--kind, --fields, --all)",
            run=write_csv,
            suffix=".csv",
        )
    )

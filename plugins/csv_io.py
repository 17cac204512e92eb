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


def read_csv(path: str, view: ProductionView, options: dict[str, Any]) -> ImportResult:  # noqa: C901 - one loop over rows and columns; to split with issue 8's money parser
    """Read a CSV file into entities of one kind (see the module docstring)."""
    cls = kind_for(path, options)
    source = str(options.get("source") or DEFAULT_SOURCE)
    mapping = parse_mapping(options)
    table = tables.read_table(path, options)
    header, unit = table.header, table.unit

    hints = typing.get_type_hints(cls, include_extras=True)
    unknown_maps = set(mapping) - set(header)
    if unknown_maps:
        missing = sorted(unknown_maps)[0]
        raise CastroomError(f"--map names a column the file does not have: {missing}")
    columns: list[tuple[int, _Field]] = []
    warnings: list[str] = []
    deleted_column: int | None = None
    mismatched = 0  # rows whose deleted cell disagrees with castroom (not applied)
    fields_by_norm = {_norm(f): f for f in cls.__struct_fields__}
    for position, name in enumerate(header):
        target = mapping.get(name)
        if target is None:
            norm = _norm(name)
            target = "external_id" if norm == "external_id" else fields_by_norm.get(norm)
        if target == "deleted":
            # `export csv` writes it: the round trip must import quietly. Deleting and
            # restoring stay with `castroom delete`/`restore` (said below if a row asks).
            deleted_column = position
            continue
        if target is None:
            if name.strip():
                warnings.append(f"column {name!r} is not {_a(cls.entity_kind)} field: ignored")
            continue
        if target == "external_id" and "external_ids" not in cls.__struct_fields__:
            warnings.append(f"column {name!r}: {_a(cls.entity_kind)} has no external_ids: ignored")
            continue
        columns.append((position, _Field(cls, target, hints, view.currency)))

    existing = view.all(cls, include_deleted=True)
    refs = Resolver(view)  # what a reference cell names, as every castroom write resolves it
    has_refs = any(spec.field in REFERENCES for _, spec in columns)
    foreign_ids = False
    by_id = {e.id: e for e in existing}
    by_external: dict[str, model.Entity] = {}
    if "external_ids" in cls.__struct_fields__:
        for entity in existing:
            ext = entity.external_ids.get(source)  # type: ignore[attr-defined]
            if ext:
                by_external.setdefault(ext, entity)
    natural = NATURAL_KEYS.get(cls.entity_kind)
    by_natural = _index(existing, natural) if natural else {}
    composite = COMPOSITE_KEYS.get(cls.entity_kind)
    by_composite = _index_composite(existing, composite) if composite else {}
    # Rows of this file claim keys too, so a key repeated in the file updates one entity.
    entities: list[model.Entity] = []
    first_row: dict[str, int] = {}  # entity id -> the first row of this file that is it
    errors: list[str] = []
    width = len(header)
    rows = 0
    for line, row in table.rows:
        if not any(cell.strip() for cell in row):
            continue
        rows += 1
        said = ""  # the row's deleted cell, if the file has that column
        if deleted_column is not None and deleted_column < len(row):
            said = row[deleted_column].strip().lower()
        if len(row) > width and any(c.strip() for c in row[width:]):
            errors.append(f"{unit} {line}: {len(row)} cells but the header has {width}")
            continue
        fields: dict[str, Any] = {}
        deferred: dict[str, _Field] = {}
        external: str | None = None
        bad = False
        for position, spec in columns:
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
                errors.append(f"{unit} {line}: {cls.entity_kind}.{spec.field}: {reason}")
                bad = True
                break
            if spec.kind == "external_id":
                external = value
            elif spec.kind == "dict_key":
                fields.setdefault(spec.field, {})[spec.key] = value
            else:
                fields[spec.field] = value
        if bad:
            continue
        if "id" in fields and fields["id"] not in by_id and not OWN_ID.match(fields["id"]):
            # An office's "ID" column holds its ids, not ours: keep them as source ids.
            if "external_ids" not in cls.__struct_fields__:
                errors.append(
                    f"{unit} {line}: {cls.entity_kind}.id: {fields['id']!r} is not a "
                    "castroom id (map that column to another field with --map)"
                )
                continue
            if not foreign_ids:
                warnings.append(
                    f"the id column holds ids from elsewhere: kept as external_ids[{source!r}]"
                )
                foreign_ids = True
            external = external or fields["id"]
            del fields["id"]
        if has_refs:
            try:
                fields = resolve_references(refs, cls, fields)
            except CastroomError as exc:
                errors.append(f"{unit} {line}: {exc}")
                continue
        match = by_id.get(fields["id"]) if "id" in fields else None
        if match is None and external:
            match = by_external.get(external)
        if match is None and natural and natural in fields and "id" not in fields:
            value = fields[natural]
            match = by_natural.get(_key(value))
            if match is not None:
                del fields[natural]  # matched ignoring case: keep the stored spelling
        if match is None and composite and "id" not in fields:
            key = _composite(fields, composite)
            match = by_composite.get(key) if key is not None else None
            if match is not None:  # matched ignoring case: keep the stored spellings
                for name in composite:
                    if isinstance(fields.get(name), str) and name not in REFERENCES:
                        del fields[name]
        if match is not None and match.id in first_row:
            # One person (or role, scene, ...) on two rows: say so, not a silent merge.
            warnings.append(
                f"{unit} {line}: the same {cls.entity_kind} as {unit} {first_row[match.id]}"
                f" ({label(view, match)}): one {cls.entity_kind}, the later row's cells win"
            )
        if said in ("true", "false") and (said == "true") != bool(match and match.deleted):
            mismatched += 1
        if match is not None:
            base = model.to_fields(match)
            for name, value in fields.items():
                if isinstance(value, dict) and isinstance(base.get(name), dict):
                    value = {**base[name], **value}  # a dict column adds keys, keeps others
                base[name] = value
            data = base
        else:
            data = {"id": model.new_id(), **fields}
        if external:
            data["external_ids"] = {**data.get("external_ids", {}), source: external}
        try:
            entity = model.validate(cls, data)
        except ValidationFailed as exc:
            where = f"{exc.kind}.{exc.field}" if exc.field else exc.kind
            rule = exc.rule
            if exc.field in deferred:
                try:
                    _cell(deferred[exc.field], data[exc.field])
                except (ValueError, msgspec.ValidationError) as cell_exc:
                    rule = str(cell_exc)
            errors.append(f"{unit} {line}: {where}: {rule}")
            continue
        entities.append(entity)
        first_row.setdefault(entity.id, line)
        by_id[entity.id] = entity
        if external:
            by_external[external] = entity
        if natural:
            by_natural[_key(getattr(entity, natural))] = entity
        if composite:
            own = _composite(model.to_fields(entity), composite)
            if own is not None:
                by_composite[own] = entity
    if mismatched:
        warnings.append(
            f"column 'deleted': {mismatched} row(s) say otherwise than castroom; import"
            " neither deletes nor restores (use `castroom delete` or `castroom restore`)"
        )
    if not rows and not errors:
        warnings.append(f"{path} has a header but no rows")
    return ImportResult(entities=entities, warnings=warnings, errors=errors, report=table.notes)


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

"""What people type into a field, as the value the model stores.

``field=value`` arguments (the CLI's add/set, ``--where`` filters), each value parsed for
its field's type: JSON for lists and objects, dates and times as people write them,
references left as typed for :func:`castroom.core.resolve.resolve_references`. No click
or rich here: every front end parses the same way and refuses with the same words.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from . import model
from .errors import CastroomError, ValidationFailed
from .money import money_fields, parse_field
from .resolve import resolve_references

if TYPE_CHECKING:
    from .document import CastDocument


def parse_assignments(
    cls: type[model.Entity], pairs: tuple[str, ...], currency: str = "USD"
) -> dict[str, Any]:
    """``field=value`` arguments, each value parsed for its field's type. Money is read
    as people write it (:func:`castroom.core.money.parse_money`) in ``currency``, or in
    the currency the same arguments give the production (``currency=EUR budget_cap=5000``)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields: dict[str, Any] = {}
    if cls is model.Production:
        given = [
            p.split("=", 1)[1].strip() for p in pairs if p.partition("=")[0].strip() == "currency"
        ]
        currency = given[-1].upper() if given else currency
    for pair in pairs:
        if "=" not in pair:
            raise CastroomError(f"expected field=value, got {pair!r}")
        name, raw = pair.split("=", 1)
        name = name.strip()
        if name not in cls.__struct_fields__ or name == "id":
            raise ValidationFailed(cls.entity_kind, name, "no such field")
        if name == "media":  # records of files in the blob store: written with the file
            words = "is changed with `castroom attach` and `castroom media detach`"
            raise ValidationFailed(cls.entity_kind, name, words)
        if (cls.entity_kind, name) in model.REFERENCES:
            fields[name] = parse_refs(cls, name, hints[name], raw)  # see resolve_references
        else:
            fields[name] = parse_value(cls, name, hints[name], raw, currency)
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
            given = parse_assignments(cls, (pair,), doc.currency)
            fields = resolve_references(doc, cls, given, where=True)
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


def parse_value(
    cls: type[model.Entity], name: str, hint: Any, raw: str, currency: str = "USD"
) -> Any:
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
    if name in money_fields(cls):  # major units as people write them: 1500, $1,500.00
        return parse_field(cls, name, text, currency)
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

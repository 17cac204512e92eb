"""Turning what a person typed into ids.

:func:`resolve_references` turns a write's reference fields (an id, an id prefix or a
name, live entities first) into ids, refusing one that names nothing or only deleted
entities. No click or rich here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from . import model
from .document import CastDocument
from .errors import Ambiguous, CastroomError, NotFound
from .labels import label, own_name


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
    return own_name(doc.stored_fields(model.Member, member_id)) or member_id


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
            f"{where_from}: {target} {label(doc, entity)} is deleted"
            f" (`castroom restore {target} {entity.id}` first)"
        )
    return entity.id

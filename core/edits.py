"""The rules a local write must keep beyond the model's own (which need the document).

No click or rich here: the CLI, importers and plugin commands refuse the same writes
with the same words.
"""

from __future__ import annotations

from typing import Any

from . import model
from .document import CastDocument
from .errors import CastroomError
from .labels import label


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
            raise CastroomError(
                f"{label(doc, other).replace(' for ', ' is already a candidate for ', 1)}:"
                f" candidate {other.id}"
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

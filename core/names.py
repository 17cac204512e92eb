"""When two names are one person: how names compare, and the rule that a new talent
must not silently repeat a live one.

Every front end (the CLI, importers, the web) compares names here, so they match and
refuse the same things: "zoe  stone" is Zoë Stone (accents, case and runs of spaces
folded). Surrounding whitespace is stripped, and line breaks refused, by the model
itself (:data:`castroom.core.model.Name`). No click or rich here.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from . import model
from .errors import CastroomError
from .labels import short_ids

if TYPE_CHECKING:
    from .resolve import Reader


def fold(name: str | None) -> str:
    """A name as compared: ``"  Zoë  MÜLLER"`` -> ``"zoe muller"``. Accents go (by Unicode
    decomposition: a letter without one, such as "ø", stays), case folds and whitespace
    collapses."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def check_talent_name(
    doc: Reader,
    cls: type[model.Entity],
    fields: dict[str, Any],
    current: dict[str, Any] | None = None,
    *,
    force: bool = False,
) -> None:
    """A talent named like a live one (folded) is refused unless ``force``d: it is
    far more often the same person typed again than a namesake. ``current``: the stored
    fields of the talent being renamed."""
    if cls is not model.Talent or force or not isinstance(fields.get("name"), str):
        return
    wanted = fold(fields["name"])
    mine = (current or {}).get("id")
    for other in doc.all(model.Talent):
        if other.id != mine and fold(other.name) == wanted:
            short = short_ids(doc.ids(model.Talent))[other.id]
            raise CastroomError(
                f"a talent named {other.name!r} exists already (id {short}): change"
                f" that one with `castroom set talent {short} ...`, or give --force if"
                " this is another person"
            )

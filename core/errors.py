"""Domain errors: each carries one clear, human-readable line."""

from __future__ import annotations


class CastroomError(Exception):
    """Base of every error castroom reports to a person (one line, non-zero exit)."""


class ValidationFailed(CastroomError):
    """An entity broke a model rule. Names the entity kind, the field and the rule."""

    def __init__(self, kind: str, field: str | None, rule: str, entity_id: str | None = None):
        self.kind = kind
        self.field = field
        self.rule = rule
        self.entity_id = entity_id
        where = f"{kind}.{field}" if field else kind
        ident = f" ({entity_id})" if entity_id else ""
        super().__init__(f"invalid {where}{ident}: {rule}")


class NotFound(CastroomError):
    """No entity (or production) matches the given id, id prefix or name."""


class Ambiguous(CastroomError):
    """A reference matches more than one entity."""


class StorageError(CastroomError):
    """The workspace could not be read or written."""


class BadUpdate(CastroomError):
    """A binary update, bundle or message could not be decoded; nothing was changed."""


class UpdateLimit(BadUpdate):
    """An update in the Yjs format but beyond one of castroom's documented limits
    (nesting, counts, sizes: ``castroom.core.yupdate``); nothing was changed."""


class UnsafeId(BadUpdate):
    """An id that would be used as a folder name is not a plain name (``..``, a path)."""


class SkippedStoredUpdates(UserWarning):
    """Stored updates that do not load (beyond castroom's limits because a castroom
    without them stored them, or damaged on disk) were left out when a production was
    loaded, so it opens; those in the log were moved into its quarantine
    (``castroom quarantine``), so later loads do not meet them. The message counts them."""

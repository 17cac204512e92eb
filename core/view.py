"""A read-only view of a production, handed to plugins.

Plugins judge; only the core writes. A view offers typed queries and a few indexes that
most checks need, computed once per view, so a dozen checks over 5,000 talents stay fast.

A view holds no reference to the document it reads (nor to the stored production, its
update log or the workspace): those are kept in a module-private table keyed by the view,
so nothing a plugin is handed leads by attribute, closure or bound method to anything it
could write (tests/test_edits.py walks the object graph to prove it). Plugins change a
production only by returning data (findings, import results, plans) that the core checks
and applies.
"""

from __future__ import annotations

import re
import weakref
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from . import labels, model
from .contracts import BudgetReport
from .model import (
    Availability,
    Candidate,
    Deal,
    Entity,
    Production,
    Role,
    Scene,
    ShootDay,
    Talent,
)
from .reads import InvalidEntity
from .storage import AtticEntry

if TYPE_CHECKING:
    from .document import CastDocument

E = TypeVar("E", bound=Entity)

_UNSET: Any = object()

#: What each view reads: (its document, the update log's "who wrote it" lookup, the
#: attic of entities removed outright). Kept
#: here, not on the view, so a plugin handed a view cannot reach a writable document.
_SOURCES: weakref.WeakKeyDictionary[
    ProductionView,
    tuple[
        CastDocument,
        Callable[[str, str], str | None] | None,
        Callable[[], list[AtticEntry]] | None,
    ],
] = weakref.WeakKeyDictionary()


def _doc_of(view: ProductionView) -> CastDocument:
    return _SOURCES[view][0]


class CostReporter(Protocol):
    """What a view needs from the plugin façade (kept structural: core imports no plugin)."""

    def cost_report(self, view: ProductionView) -> BudgetReport | None: ...


class ProductionView:
    """Typed, read-only access to one production's current state.

    ``plugins`` (the façade, :class:`castroom.core.plugins.Plugins`) lets a plugin ask for
    answers other plugins give, such as :meth:`cost_report`; the façade attaches itself
    to any view it passes to a hook, so views made without it still get it there.
    """

    def __init__(
        self,
        doc: CastDocument,
        *,
        plugins: CostReporter | None = None,
        origin_of: Callable[[str, str], str | None] | None = None,
        hard_deleted: Callable[[], list[AtticEntry]] | None = None,
    ) -> None:
        #: ``origin_of``: (entity kind, id) -> the device that last wrote it, when whoever
        #: made the view knows the update log (a stored production does).
        #: ``hard_deleted``: entities a peer removed outright, when the maker keeps the attic.
        _SOURCES[self] = (doc, origin_of, hard_deleted)
        self.plugins = plugins
        self._cost: Any = _UNSET
        self._costing = False
        self._shorts: dict[type[Entity], labels.ShortIds] = {}
        self._by_id: dict[tuple[type[Entity], bool], Mapping[str, Any]] = {}
        self._live: dict[type[Entity], Collection[str]] = {}

    @property
    def production(self) -> Production:
        return _doc_of(self).production

    @cached_property
    def currency(self) -> str:
        """The currency money is read and shown in (see :attr:`CastDocument.currency`)."""
        return _doc_of(self).currency

    def all(self, cls: type[E], *, include_deleted: bool = False) -> list[E]:
        return _doc_of(self).all(cls, include_deleted=include_deleted)

    def by_id(self, cls: type[E], *, include_deleted: bool = False) -> Mapping[str, E]:
        """Every valid entity of a kind by id, in id order (deleted ones too with
        ``include_deleted``): built once per view and shared by every plugin it is
        handed to (so treat it as read-only), so a check looks an entity up instead of
        making its own index (``id in view.by_id(Talent)``: a live, valid talent)."""
        key = (cls, include_deleted)
        found = self._by_id.get(key)
        if found is None:
            found = self._by_id[key] = _doc_of(self).by_id(cls, include_deleted=include_deleted)
        return found

    def live_ids(self, cls: type[Entity]) -> Collection[str]:
        """The ids of a kind's live (valid, not deleted) entities, once per view: ``ref
        in view.live_ids(Talent)`` asks whether a reference names one, without decoding
        every talent when the production's read copy knows them valid."""
        found = self._live.get(cls)
        if found is None:
            # A frozenset: set.difference over a dict's keys walks all of them, over a
            # set only the ids asked about (integrity: every reference, at 50,000 talents).
            found = self._live[cls] = frozenset(_doc_of(self).live_ids(cls))
        return found

    def ids(self, cls: type[Entity]) -> list[str]:
        """Every stored id of a kind (valid, invalid and deleted entities alike)."""
        return _doc_of(self).ids(cls)

    def find(self, cls: type[E], entity_id: str, *, include_deleted: bool = False) -> E | None:
        """The entity, or None (also when stored invalid: see :meth:`invalid`)."""
        return _doc_of(self).find(cls, entity_id, include_deleted=include_deleted)

    def get(self, cls: type[E], entity_id: str) -> E:
        """The entity; NotFound if absent, deleted or stored invalid (the message says)."""
        return _doc_of(self).get(cls, entity_id)

    def resolve(self, cls: type[E], ref: str) -> E:
        """What a person typed (id, prefix, name, ...): see :mod:`castroom.core.resolve`."""
        return _doc_of(self).resolve(cls, ref)

    def invalid(self) -> list[InvalidEntity]:
        """Entities that break a model rule (a peer's well-formed update may leave them)."""
        return _doc_of(self).invalid()

    def raw(self, cls: type[Entity], entity_id: str) -> dict[str, Any] | None:
        """An entity's stored fields as plain data, valid or not (to describe bad ones)."""
        return _doc_of(self).raw(cls, entity_id)

    def hard_deleted(self) -> list[AtticEntry]:
        """Entities a peer's update removed outright (their key deleted, which the schema
        forbids) that are still gone: each with its fields from before and who removed
        it. ``castroom restore --from-history`` brings them back. [] when the view cannot
        tell (a bare document keeps no attic)."""
        hard_deleted = _SOURCES[self][2]
        return hard_deleted() if hard_deleted is not None else []

    def origin(self, kind: str, entity_id: str) -> str | None:
        """The device that last wrote an entity, or None when the view cannot tell."""
        origin_of = _SOURCES[self][1]
        return origin_of(kind, entity_id) if origin_of is not None else None

    def cost_report(self) -> BudgetReport | None:
        """The production's cost report as the plugins compute it (the first
        ``castroom_cost_report`` answer, so a third-party cost plugin counts everywhere),
        once per view. None without a plugin façade, or when no plugin answers."""
        if self.plugins is None:
            return None
        if self._cost is _UNSET:
            if self._costing:  # a cost plugin asked for the cost report: no answer yet
                return None
            self._costing = True
            try:
                self._cost = self.plugins.cost_report(self)
            finally:
                self._costing = False
        return self._cost

    # -- indexes ------------------------------------------------------------------------------

    @cached_property
    def talents(self) -> dict[str, Talent]:
        return {t.id: t for t in self.all(Talent)}

    @cached_property
    def roles(self) -> dict[str, Role]:
        return {r.id: r for r in self.all(Role)}

    @cached_property
    def scenes(self) -> dict[str, Scene]:
        return {s.id: s for s in self.all(Scene)}

    @cached_property
    def shoot_days(self) -> dict[str, ShootDay]:
        return {d.id: d for d in self.all(ShootDay)}

    @cached_property
    def candidates(self) -> list[Candidate]:
        return self.all(Candidate)

    @cached_property
    def deals(self) -> list[Deal]:
        return self.all(Deal)

    @cached_property
    def availability_by_talent(self) -> dict[str, list[Availability]]:
        out: dict[str, list[Availability]] = defaultdict(list)
        for item in self.all(Availability):
            out[item.talent_id].append(item)
        return dict(out)

    @cached_property
    def booked(self) -> dict[tuple[str, str | None], list[Candidate]]:
        """(role id, era) -> candidates at stage ``booked`` (more than one is a conflict)."""
        out: dict[tuple[str, str | None], list[Candidate]] = defaultdict(list)
        for cand in self.candidates:
            if cand.stage == "booked":
                out[(cand.role_id, cand.era)].append(cand)
        return dict(out)

    @cached_property
    def _booked_talents(self) -> dict[tuple[str, str | None], Talent]:
        """(role id, era) -> the first live talent booked for it, each talent found once:
        find(), not self.talents, since checks need the few booked talents, and decoding
        all of them is most of a cold check's time."""
        out: dict[tuple[str, str | None], Talent] = {}
        found: dict[str, Talent | None] = {}
        for key, cands in self.booked.items():
            for cand in cands:
                talent_id = cand.talent_id
                if talent_id not in found:
                    found[talent_id] = self.find(Talent, talent_id)
                talent = found[talent_id]
                if talent is not None:
                    out[key] = talent
                    break
        return out

    def booked_talent(self, role_id: str, era: str | None = None) -> Talent | None:
        """The talent booked for a role (and era; falling back to the era-less booking)."""
        booked = self._booked_talents
        return booked.get((role_id, era)) or booked.get((role_id, None))

    @cached_property
    def scene_cast(self) -> dict[str, list[tuple[str, Talent | None]]]:
        """Scene id -> (role id, booked talent or None) per character that is a known role,
        for the scene's era. Most checks walk exactly this; building it once saves each."""
        roles, booked = self.roles, self._booked_talents
        out = {}
        for scene in self.scenes.values():
            era = scene.era
            out[scene.id] = [
                (role_id, booked.get((role_id, era)) or booked.get((role_id, None)))
                for role_id in dict.fromkeys(scene.characters)
                if role_id in roles
            ]
        return out

    @cached_property
    def scene_order(self) -> dict[str, int]:
        """Scene id -> its position in natural number order (2 < 10 < 10A < 11)."""
        return {scene.id: n for n, scene in enumerate(self.scenes_in_order)}

    @cached_property
    def scenes_in_order(self) -> list[Scene]:
        """Every scene in natural number order (2 < 10 < 10A < 11), once per view: a
        check that walks scenes in this order collects them already in order."""

        def key(scene: Scene) -> tuple[Any, ...]:
            number = scene.number
            if number.isascii() and number.isdigit():  # most scenes: what re.split gives
                return ((0, int(number), ""),), scene.id
            parts = re.split(r"(\d+)", number)
            numbered = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p)
            return numbered, scene.id

        return sorted(self.scenes.values(), key=key)

    def in_order(self, scenes: Iterable[Scene]) -> list[Scene]:
        """Scenes in natural number order (2 < 10 < 10A)."""
        order = self.scene_order
        return sorted(scenes, key=lambda scene: order[scene.id])

    @cached_property
    def scenes_by_shoot_day(self) -> dict[str, list[Scene]]:
        """Shoot day id -> its scenes, in the day's order (scene_ids, then scene.shoot_day_id)."""
        out: dict[str, list[Scene]] = {}
        listed: dict[str, set[str]] = {}
        scenes = self.scenes
        for day in self.shoot_days.values():
            out[day.id] = [scenes[s] for s in day.scene_ids if s in scenes]
            listed[day.id] = set(day.scene_ids)
        for scene in scenes.values():
            day_id = scene.shoot_day_id
            if day_id and day_id in out and scene.id not in listed[day_id]:
                out[day_id].append(scene)
        return out

    @cached_property
    def _our_names(self) -> frozenset[str]:
        """This production's id and title, casefolded (whose holds are ours: core/fit.py)."""
        production = self.production
        return frozenset({production.id.casefold(), production.title.casefold()})

    def label(self, entity: Entity) -> str:
        """What people call ``entity``: see :func:`castroom.core.labels.label`."""
        return labels.label(self, entity)

    def short_id(self, cls: type[Entity] | str, entity_id: str) -> str:
        """An id as people see and type it: its shortest unique prefix (8 or more
        characters) among its kind's ids; for messages, fixes and tables."""
        kind = model.kind_class(cls) if isinstance(cls, str) else cls
        shorts = self._shorts.get(kind)
        if shorts is None:
            shorts = self._shorts[kind] = labels.ShortIds(self.ids(kind))
        return shorts[entity_id]

    def called(self, cls: type[Entity] | str, entity_id: str) -> str:
        """How a message names an entity: "role Nora (01M8S3KX)" (see
        :func:`castroom.core.labels.called`)."""
        kind = model.kind_class(cls) if isinstance(cls, str) else cls
        return labels.called(self, kind, entity_id, short=self.short_id(kind, entity_id))

    def kind_of(self, name: str) -> type[Entity]:
        return model.kind_class(name)

"""Every model rule: what validate() accepts, refuses, and how it names the field and rule."""

from __future__ import annotations

import datetime as dt

import pytest

from castroom.core import model
from castroom.core.errors import ValidationFailed
from castroom.core.model import (
    Audition,
    Availability,
    Candidate,
    Deal,
    Member,
    Production,
    Role,
    Scene,
    ShootDay,
    Talent,
    validate,
)

BASE: dict[type[model.Entity], dict] = {
    Production: {"id": "p1", "title": "Tides"},
    Role: {"id": "r1", "name": "Maya"},
    Talent: {"id": "t1", "name": "Ada Stone"},
    Candidate: {"id": "c1", "talent_id": "t1", "role_id": "r1"},
    Audition: {"id": "a1", "role_id": "r1", "starts_at": "2026-03-01T10:00:00"},
    Scene: {"id": "s1", "number": "12A"},
    ShootDay: {"id": "d1", "date": "2026-04-01"},
    Availability: {"id": "v1", "talent_id": "t1", "start": "2026-04-01", "end": "2026-04-03"},
    Deal: {"id": "e1", "talent_id": "t1", "role_id": "r1", "rate": 100_000},
    Member: {"id": "m1", "name": "Rosa"},
}


def refused(cls: type[model.Entity], **fields) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        validate(cls, {**BASE[cls], **fields})
    return info.value


@pytest.mark.parametrize("cls", list(BASE))
def test_minimal_entity_of_every_kind_is_valid(cls: type[model.Entity]) -> None:
    entity = validate(cls, BASE[cls])
    assert entity.id == BASE[cls]["id"] and entity.deleted is False


def test_kinds_and_collections_cover_the_design() -> None:
    assert set(model.COLLECTIONS) == {
        "roles",
        "talents",
        "candidates",
        "auditions",
        "scenes",
        "shoot_days",
        "availabilities",
        "deals",
        "members",
    }
    assert {cls.entity_kind for cls in model.KINDS.values()} == set(model.KINDS)
    for cls in model.KINDS.values():
        assert all(f == f.lower() and " " not in f for f in cls.__struct_fields__)
    assert {"name", "rate", "playing_age_min", "playing_age_max"} <= set(Talent.__struct_fields__)
    assert {"name", "age_min", "age_max", "eras", "backups"} <= set(Role.__struct_fields__)


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (Talent, "playing_age_min", -1),
        (Talent, "playing_age_max", 151),
        (Role, "age_min", -3),
        (Talent, "rate", -1),
        (Role, "rate_cap", -5),
        (Deal, "rate", -1),
        (Deal, "guaranteed_days", -1),
        (Production, "budget_cap", -1),
        (Talent, "rate", 2**53),  # beyond float64's exact integers: Yjs numbers are doubles
        (Talent, "rate", 10.5),  # money is integral minor units
        (Production, "fringe_rate", 1.5),
        (Production, "currency", "usd"),
        (Production, "kind", "opera"),
        (Role, "kind", "hero"),
        (Role, "status", "done"),
        (Candidate, "stage", "maybe"),
        (Candidate, "ratings", {"rosa": 6}),
        (Candidate, "backup_rank", 0),
        (Availability, "kind", "busy"),
        (Deal, "unit", "hour"),
        (Deal, "status", "pending"),
        (Member, "job", "caterer"),
        (ShootDay, "date", "01/04/2026"),
        (ShootDay, "call_time", "25:00"),
        (Audition, "starts_at", "tomorrow"),
        (Audition, "minutes", 0),
        (Scene, "number", ""),
        (Scene, "pages", -1),
        (Talent, "name", ""),
        (Talent, "height_cm", 10),
        (Talent, "languages", "en"),
        (Talent, "id", "has space"),
    ],
)
def test_constraints_name_the_field(cls, field: str, value) -> None:
    error = refused(cls, **{field: value})
    assert error.kind == cls.entity_kind
    assert error.field == field
    assert error.rule and field in str(error)


@pytest.mark.parametrize(
    ("cls", "fields", "field"),
    [
        (Talent, {"playing_age_min": 40, "playing_age_max": 30}, "playing_age_max"),
        (Role, {"age_min": 50, "age_max": 20}, "age_max"),
        (Production, {"start_date": "2026-05-01", "end_date": "2026-04-01"}, "end_date"),
        (Availability, {"start": "2026-04-05", "end": "2026-04-01"}, "end"),
    ],
)
def test_min_must_not_exceed_max(cls, fields: dict, field: str) -> None:
    error = refused(cls, **fields)
    assert error.field == field


def test_equal_min_and_max_are_fine() -> None:
    talent = validate(Talent, {**BASE[Talent], "playing_age_min": 30, "playing_age_max": 30})
    assert talent.playing_age_min == talent.playing_age_max == 30


def test_every_stage_and_availability_kind_is_accepted() -> None:
    for stage in model.STAGES:
        assert validate(Candidate, {**BASE[Candidate], "stage": stage}).stage == stage
    for kind in ("unavailable", "first_hold", "second_hold", "booked"):
        assert validate(Availability, {**BASE[Availability], "kind": kind}).kind == kind


def test_required_fields_are_reported() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate(Talent, {"id": "t1"})
    assert info.value.field == "name" and "required" in info.value.rule
    with pytest.raises(ValidationFailed) as info:
        validate(Deal, {"id": "e1", "talent_id": "t1", "role_id": "r1"})
    assert info.value.field == "rate"


def test_eras_are_named_uniquely_and_checked() -> None:
    role = validate(
        Role,
        {
            **BASE[Role],
            "eras": [
                {"name": "young", "age_min": 8, "age_max": 12},
                {"name": "adult", "age_min": 30, "age_max": 40, "starts": "episode 5"},
            ],
        },
    )
    assert role.era("adult").age_min == 30 and role.era("old") is None
    assert refused(Role, eras=[{"name": "a"}, {"name": "a"}]).field == "eras"
    assert refused(Role, eras=[{"name": "a", "age_min": 9, "age_max": 3}]).field == "eras"
    assert refused(Role, eras=[{"name": "a", "colour": "red"}]).field == "eras"  # no unknowns


def test_looks_only_for_characters_in_the_scene() -> None:
    scene = validate(
        Scene, {**BASE[Scene], "characters": ["r1"], "looks": {"r1": {"hair": "grey", "age": 60}}}
    )
    assert scene.looks["r1"].hair == "grey"
    assert refused(Scene, characters=["r1"], looks={"r2": {"hair": "red"}}).field == "looks"
    assert refused(Scene, characters=["r1"], looks={"r1": {"age": -1}}).field == "looks"


def test_audition_needs_a_role_and_only_chemistry_reads_have_pairings() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate(Audition, {"id": "a1", "starts_at": "2026-03-01T10:00:00"})
    assert info.value.field == "role_id"
    chemistry = validate(
        Audition,
        {
            "id": "a2",
            "starts_at": "2026-03-01T10:00:00",
            "chemistry": True,
            "role_ids": ["r1", "r2"],
            "pairings": [{"candidate_ids": ["c1", "c2"], "rating": 4, "notes": "sparks"}],
        },
    )
    assert chemistry.pairings[0].rating == 4
    assert refused(Audition, pairings=[{"candidate_ids": ["c1", "c2"]}]).field == "pairings"
    error = refused(Audition, chemistry=True, pairings=[{"candidate_ids": ["c1"]}])
    assert error.field == "pairings"
    error = refused(
        Audition, chemistry=True, pairings=[{"candidate_ids": ["c1", "c2"], "rating": 9}]
    )
    assert error.field == "pairings"


def test_yjs_numbers_come_back_as_ints() -> None:
    # A Yjs peer stores every number as a float64: integral floats are accepted as ints.
    talent = validate(Talent, {**BASE[Talent], "rate": 150000.0, "playing_age_min": 30.0})
    assert talent.rate == 150000 and isinstance(talent.rate, int)
    assert isinstance(talent.playing_age_min, int)


def test_dates_are_iso_and_round_trip() -> None:
    day = validate(ShootDay, BASE[ShootDay])
    assert day.date == dt.date(2026, 4, 1)
    assert model.to_fields(day)["date"] == "2026-04-01"
    availability = validate(Availability, BASE[Availability])
    assert availability.covers(dt.date(2026, 4, 2)) and not availability.covers(dt.date(2026, 4, 4))


def test_unknown_fields_from_newer_peers_are_ignored_not_fatal() -> None:
    talent = validate(Talent, {**BASE[Talent], "added_in_v9": "whatever"})
    assert talent.name == "Ada Stone"


@pytest.mark.parametrize("cls", [Talent, Role, Scene])
def test_imported_kinds_keep_source_ids(cls: type[model.Entity]) -> None:
    # Absent (a document written before the field existed) means none: no migration needed.
    assert validate(cls, BASE[cls]).external_ids == {}  # type: ignore[attr-defined]
    ids = {"script:Tides": "int. pier - night#2", "office": "R-7"}
    entity = validate(cls, {**BASE[cls], "external_ids": ids})
    assert entity.external_ids == ids  # type: ignore[attr-defined]
    assert model.to_fields(entity)["external_ids"] == ids
    assert refused(cls, external_ids={"office": 7}).field == "external_ids"


def test_kind_class_accepts_singular_plural_and_aliases() -> None:
    assert model.kind_class("talent") is Talent
    assert model.kind_class("Talents") is Talent
    assert model.kind_class("shoot-days") is ShootDay
    assert model.kind_class("shoot day") is ShootDay
    assert model.kind_class("availabilities") is Availability
    assert model.kind_class("production") is Production
    with pytest.raises(ValidationFailed) as info:
        model.kind_class("dragons")
    assert "unknown kind" in str(info.value)


def test_check_field_names() -> None:
    model.check_field_names(Talent, ["name", "rate"])
    with pytest.raises(ValidationFailed) as info:
        model.check_field_names(Talent, ["name", "salary"])
    assert info.value.field == "salary" and info.value.rule == "no such field"


def test_new_ids_are_unique_valid_and_time_sorted() -> None:
    ids = [model.new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 for i in ids)
    validate(Talent, {"id": ids[0], "name": "x"})
    first, later = ids[0], model.new_id()
    assert first[:10] <= later[:10]  # the first 10 characters are the milliseconds


def test_validation_error_carries_entity_id() -> None:
    error = refused(Talent, rate=-1)
    assert error.entity_id == "t1" and "(t1)" in str(error)


def test_new_ids_made_within_one_millisecond_keep_their_order(monkeypatch) -> None:
    # A frozen clock: every id falls in the same millisecond, so only the monotonic
    # increment can keep them in the order they were made.
    monkeypatch.setattr(model.time, "time", lambda: 1_700_000_000.0)
    make = model.MonotonicIds()
    ids = [make() for _ in range(100)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # One millisecond for all of them (random steps may carry into the next one, as the
    # ULID spec allows: still unique and ordered).
    assert len({i[:10] for i in ids}) <= 2
    # Random steps, not +1: ids made together still differ early enough for a person to
    # tell them apart by a short prefix (here: all unique by their first 16 characters).
    assert len({i[:16] for i in ids}) == len(ids)
    validate(Talent, {"id": ids[-1], "name": "x"})
    # The clock stepping back does not break the order either.
    monkeypatch.setattr(model.time, "time", lambda: 1_600_000_000.0)
    assert make() > ids[-1]


def test_the_shared_id_generator_is_monotonic() -> None:
    ids = [model.new_id() for _ in range(5000)]
    assert ids == sorted(ids)


def test_role_backups_are_references_to_talents_or_candidates() -> None:
    role = validate(Role, {**BASE[Role], "backups": ["t1", "c1"]})
    assert [r for r in model.references(role) if r[0] == "backups"] == [
        ("backups", "talent", "t1"),
        ("backups", "talent", "c1"),
    ]
    assert model.reference_kinds("role", "backups", "talent") == ("talent", "candidate")
    assert model.reference_kinds("scene", "characters", "role") == ("role",)


def test_names_are_stripped_and_one_line() -> None:
    """However a name arrives (the CLI, an importer, a peer's update read back), it is
    stored without surrounding whitespace; a line break in it is refused in words."""
    assert model.validate(Talent, {"id": "t1", "name": "  Ada Stone \n"}).name == "Ada Stone"
    assert model.validate(model.Production, {"id": "p", "title": " Tides "}).title == "Tides"
    for bad, rule in (
        ("Ada\nStone", "expected one line of text (no line breaks)"),
        ("Ada\r\nStone", "expected one line of text (no line breaks)"),
        ("Ada\u2028Stone", "expected one line of text (no line breaks)"),
        ("  ", "must not be empty"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            model.validate(Talent, {"id": "t1", "name": bad})
        assert str(refused.value) == f"invalid talent.name (t1): {rule}"
    assert model.validate(Talent, {"id": "t1", "name": "Ada", "notes": "a\nb"}).notes == "a\nb"

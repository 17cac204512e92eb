"""A realistic sample production, generated deterministically from a seed.

"The Harbour Years" is a family saga shot out of sequence across three eras, so its main
characters are each played by three actors. Used by ``castroom demo``, the tests and
the benchmarks, which scale it up (5,000 talents, 1,500 scenes). Test data, written
straight into a document (no rules to check: it is built valid).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from castroom.core.document import CastDocument
from castroom.core.model import (
    STAGES,
    Audition,
    Availability,
    Candidate,
    Deal,
    Era,
    Look,
    Member,
    Pairing,
    Role,
    Scene,
    ShootDay,
    Talent,
    new_id,
)

FIRST = (
    "Ada Bea Cai Dara Eli Finn Gia Hal Ines Jon Kit Lena Milo Nia Omar Pia Quin Rosa Sami "
    "Tova Uma Vic Wren Xan Yara Zed Anya Bram Cleo Dev Esme Fox Greta Hugo Iris Jude Kai "
    "Luz Mara Nell Otto Pearl Rafe Saoirse Theo Ula Vera Wes"
).split()
LAST = (
    "Stone Okafor Lindqvist Moreau Tanaka Byrne Castillo Novak Adeyemi Kowalski Reyes "
    "Haddad Fischer O'Neill Duarte Sato Mbeki Quinn Larsen Petrov Achebe Romano Walsh Ibarra"
).split()
EXTRAS = ("Fisherman", "Nurse", "Teacher", "Garda", "Barman", "Reporter", "Priest", "Child")
HAIR = ("black", "brown", "auburn", "blonde", "grey", "red", "white")
LOCATIONS = ("Harbour Quay", "Doyle House", "Fish Market", "Lighthouse", "Chapel", "Pub")
ERAS = (("1962", 0), ("1994", 32), ("2022", 60))
SAGA = (
    ("Maggie Doyle", 19),
    ("Tom Doyle", 22),
    ("Father Keane", 35),
    ("Nora Walsh", 17),
    ("Declan Doyle", 8),
    ("Rose Byrne", 25),
    ("Mick Byrne", 30),
    ("Sister Agnes", 40),
)
JOBS = (
    ("Alex Moreno", "casting_director"),
    ("Sam Chen", "assistant_director"),
    ("Priya Nair", "producer"),
    ("Jo Okafor", "talent_coordinator"),
    ("Lee Park", "script_analyst"),
)


#: The first shoot day's week (the days follow on weekdays).
START = dt.date(2027, 3, 1)


@dataclass
class SampleSize:
    talents: int = 300
    roles: int = 40
    scenes: int = 150
    shoot_days: int = 25


def build_sample(
    doc: CastDocument, size: SampleSize | None = None, seed: int = 7
) -> dict[str, int]:
    """Fill ``doc`` (which already has its production) with a whole casting plan. Each
    part is drawn from one seeded generator, in this order (the same seed, the same plan)."""
    size = size or SampleSize()
    rng = random.Random(seed)
    members = [Member(id=new_id(), name=n, job=j, devices=[]) for n, j in JOBS]  # type: ignore[arg-type]
    talents = _talents(rng, size)
    roles = _roles(rng, size)
    candidates, booked_for = _candidates(rng, roles, talents, members)
    days = _shoot_days(rng, size)
    scenes = _scenes(rng, size, roles)
    _place_scenes(rng, scenes, days)
    availabilities = _availabilities(rng, size, talents, START)
    deals = _deals(rng, talents, booked_for)
    auditions = _auditions(rng, roles, candidates, members)
    entities = [
        *members,
        *talents,
        *roles,
        *candidates,
        *days,
        *scenes,
        *availabilities,
        *deals,
        *auditions,
    ]
    with doc.transaction():
        doc.put_many(entities)
        doc.update_production(
            {
                "budget_cap": 180_000_000,
                "fringe_rate": 0.18,
                "start_date": days[0].date.isoformat(),
                "end_date": days[-1].date.isoformat(),
            }
        )
    return {
        "members": len(members),
        "talents": len(talents),
        "roles": len(roles),
        "candidates": len(candidates),
        "scenes": len(scenes),
        "shoot_days": len(days),
        "availabilities": len(availabilities),
        "deals": len(deals),
        "auditions": len(auditions),
    }


def _talents(rng: random.Random, size: SampleSize) -> list[Talent]:
    talents = []
    for i in range(size.talents):
        low = rng.randint(6, 80)
        talents.append(
            Talent(
                id=new_id(),
                name=f"{rng.choice(FIRST)} {rng.choice(LAST)} {i:03d}"
                if size.talents > 400
                else f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                agent=rng.choice(("Blake & Co", "North Talent", "Harbour Artists", "")),
                union=rng.choice(("SAG-AFTRA", "Equity", "")),
                playing_age_min=low,
                playing_age_max=low + rng.randint(4, 12),
                hair=rng.choice(HAIR),
                languages=["en"] + (["ga"] if rng.random() < 0.2 else []),
                rate=rng.randrange(60_000, 400_000, 5_000),
                external_ids={"spotlight": f"SP{100000 + i}"},
            )
        )
    return talents


def _roles(rng: random.Random, size: SampleSize) -> list[Role]:
    roles: list[Role] = []
    for name, age in SAGA:
        eras = [
            Era(name=era, age_min=max(0, age + offset - 3), age_max=age + offset + 3)
            for era, offset in ERAS
            if age + offset < 95
        ]
        roles.append(
            Role(
                id=new_id(),
                name=name,
                kind="lead",
                eras=eras,
                status="casting",
                description=f"{name}, followed across the decades",
            )
        )
    extra_kinds = ("supporting", "day_player", "day_player", "background", "voice")
    while len(roles) < size.roles:
        n = len(roles)
        age = rng.randint(10, 75)
        roles.append(
            Role(
                id=new_id(),
                name=f"{rng.choice(EXTRAS)} {n}",
                kind=rng.choice(extra_kinds),  # type: ignore[arg-type]
                age_min=age,
                age_max=age + 8,
                rate_cap=rng.choice((None, 150_000, 250_000)),
            )
        )
    return roles


def _candidates(
    rng: random.Random, roles: list[Role], talents: list[Talent], members: list[Member]
) -> tuple[list[Candidate], dict[tuple[str, str | None], str]]:
    """Candidates for every role (and era), most slots booked; each role's backups are
    set in ``roles``. Returns them and (role id, era) -> the booked talent's id."""
    # Candidates: every role (and era) gets a pool; most get one booking.
    candidates: list[Candidate] = []
    booked_for: dict[tuple[str, str | None], str] = {}
    by_age = sorted(talents, key=lambda t: t.playing_age_min or 0)
    for r_index, role in enumerate(roles):
        slots = [(e.name, e.age_min or 0, e.age_max or 99) for e in role.eras] or [
            (None, role.age_min or 0, role.age_max or 99)
        ]
        backups: list[str] = []
        for era, low, high in slots:
            pool = [
                t
                for t in by_age
                if (t.playing_age_min or 0) <= high and (t.playing_age_max or 0) >= low
            ]
            pool = rng.sample(pool, min(len(pool), 6)) or rng.sample(talents, 3)
            # Leave a couple of slots uncast so the checks have something to say.
            book = not (r_index % 13 == 5 and era in (None, "2022"))
            for k, talent in enumerate(pool):
                stage = (
                    "booked"
                    if (book and k == 0)
                    else rng.choice([s for s in STAGES if s != "booked"])
                )
                cand = Candidate(
                    id=new_id(),
                    talent_id=talent.id,
                    role_id=role.id,
                    era=era,
                    stage=stage,  # type: ignore[arg-type]
                    source=rng.choice(("agent", "open call", "self-tape", "spotlight")),
                    ratings={m.name: rng.randint(2, 5) for m in rng.sample(members, 2)},
                )
                candidates.append(cand)
                if stage == "booked":
                    booked_for[(role.id, era)] = talent.id
            # Backups per era, as candidate ids (a candidate carries its era), from this
            # era's pool; those who can play the age the scenes ask for (an era's looks
            # are its youngest age + 2) come first.
            wanted = low + 2 if era is not None else None
            others = candidates[-len(pool) :][1:]
            by_talent = {t.id: t for t in pool}

            def covers(
                c: Candidate, wanted: int | None = wanted, by_talent: dict = by_talent
            ) -> bool:
                t = by_talent[c.talent_id]
                return wanted is None or (
                    (t.playing_age_min or 0) <= wanted <= (t.playing_age_max or 999)
                )

            backups += [c.id for c in sorted(others, key=lambda c: not covers(c))[:2]]
        roles[r_index] = Role(**{**_fields(role), "backups": backups})
    return candidates, booked_for


def _shoot_days(rng: random.Random, size: SampleSize) -> list[ShootDay]:
    # Scenes, shot out of sequence over the shoot days.
    days: list[ShootDay] = []
    day = START
    while len(days) < size.shoot_days:
        if day.weekday() < 5:
            days.append(
                ShootDay(
                    id=new_id(), date=day, day_number=len(days) + 1, location=rng.choice(LOCATIONS)
                )
            )
        day += dt.timedelta(days=1)
    return days


def _scenes(rng: random.Random, size: SampleSize, roles: list[Role]) -> list[Scene]:
    scenes = []
    base_looks: dict[tuple[str, str], Look] = {}
    per_era = size.scenes // len(ERAS)
    for n in range(size.scenes):
        era, _ = ERAS[min(n // max(per_era, 1), len(ERAS) - 1)]
        cast = [r for r in roles if r.era(era) is not None]
        others = [r for r in roles if not r.eras]
        chars = rng.sample(cast, min(len(cast), rng.randint(1, 3))) + rng.sample(
            others, rng.randint(0, 2)
        )
        looks = {}
        for r in chars:
            base = base_looks.setdefault(
                (r.id, era),
                Look(
                    hair=rng.choice(HAIR[:3]),
                    wardrobe=f"{era} costume",
                    makeup="natural",
                    age=((r.era(era).age_min or 0) + 2) if r.era(era) else None,
                ),  # type: ignore[union-attr]
            )
            looks[r.id] = base
        if n == size.scenes // 2 and chars:
            # One deliberate continuity slip for the checks to find: a hair change, no note.
            slipped = chars[0].id
            base_looks[(slipped, era)] = Look(**{**_fields(looks[slipped]), "hair": "shaved"})
        scenes.append(
            Scene(
                id=new_id(),
                number=str(n + 1),
                heading=f"{rng.choice(('INT.', 'EXT.'))} "
                f"{rng.choice(LOCATIONS).upper()} - {rng.choice(('DAY', 'NIGHT'))}",
                story_day=n // 3 + 1,
                era=era,
                characters=[r.id for r in chars],
                location=rng.choice(LOCATIONS),
                looks=looks,
                pages=rng.choice((0.5, 1.0, 1.5, 2.0)),
            )
        )
    return scenes


def _place_scenes(rng: random.Random, scenes: list[Scene], days: list[ShootDay]) -> None:
    """Shuffle the scenes onto the shoot days (both sides of the link, in place)."""
    order = scenes[:]
    rng.shuffle(order)
    per_day = max(1, len(order) // max(1, len(days)))
    for d_index, shoot_day in enumerate(days):
        chunk = (
            order[d_index * per_day : (d_index + 1) * per_day]
            if d_index < len(days) - 1
            else order[d_index * per_day :]
        )
        days[d_index] = ShootDay(**{**_fields(shoot_day), "scene_ids": [s.id for s in chunk]})
        for s in chunk:
            scenes[int(s.number) - 1] = Scene(
                **{**_fields(scenes[int(s.number) - 1]), "shoot_day_id": shoot_day.id}
            )


def _availabilities(
    rng: random.Random, size: SampleSize, talents: list[Talent], start: dt.date
) -> list[Availability]:
    availabilities = []
    for talent in rng.sample(talents, min(len(talents), size.talents // 5)):
        first = start + dt.timedelta(days=rng.randint(0, 40))
        availabilities.append(
            Availability(
                id=new_id(),
                talent_id=talent.id,
                start=first,
                end=first + dt.timedelta(days=rng.randint(0, 4)),
                kind=rng.choice(("unavailable", "first_hold", "second_hold")),  # type: ignore[arg-type]
                held_by=rng.choice(("", "Other Production Ltd")),
            )
        )
    return availabilities


def _deals(
    rng: random.Random, talents: list[Talent], booked_for: dict[tuple[str, str | None], str]
) -> list[Deal]:
    rate_of = {t.id: t.rate or 100_000 for t in talents}
    return [
        Deal(
            id=new_id(),
            talent_id=tid,
            role_id=rid,
            era=era,
            rate=rate_of[tid],
            unit=rng.choice(("day", "day", "week")),
            guaranteed_days=rng.randint(1, 6),  # type: ignore[arg-type]
            status=rng.choice(("accepted", "signed", "offered")),
        )  # type: ignore[arg-type]
        for (rid, era), tid in booked_for.items()
    ]


def _auditions(
    rng: random.Random, roles: list[Role], candidates: list[Candidate], members: list[Member]
) -> list[Audition]:
    auditions = []
    for k in range(min(20, len(roles))):
        role = roles[k]
        pool = [c.id for c in candidates if c.role_id == role.id][:4]
        auditions.append(
            Audition(
                id=new_id(),
                role_id=role.id,
                starts_at=dt.datetime(2027, 1, 11 + k % 14, 9 + k % 8),
                place="Studio 2",
                candidate_ids=pool,
                panel=[members[0].id, members[2].id],
            )
        )
    pair_roles = roles[0], roles[1]
    a = [c.id for c in candidates if c.role_id == pair_roles[0].id][:2]
    b = [c.id for c in candidates if c.role_id == pair_roles[1].id][:2]
    if len(a) == 2 and len(b) == 2:
        auditions.append(
            Audition(
                id=new_id(),
                role_ids=[r.id for r in pair_roles],
                chemistry=True,
                starts_at=dt.datetime(2027, 1, 28, 14),
                place="Studio 1",
                candidate_ids=a + b,
                pairings=[
                    Pairing(candidate_ids=[x, y], rating=rng.randint(2, 5)) for x in a for y in b
                ],
            )
        )
    return auditions


def _fields(entity: object) -> dict[str, object]:
    return {f: getattr(entity, f) for f in entity.__struct_fields__}  # type: ignore[attr-defined]

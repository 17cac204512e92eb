"""The example plugin: one check (``example.no-agent``: a talent with no agent and no
contact cannot be reached), one importer (``example``: a ``.roster`` file, one talent
per line as ``ref | name | age_min-age_max``) and one command (``roster-refs``, declared
in the package module so that ``castroom --help`` does not import this one). It imports
only castroom's public plugin API, ``castroom.core.api``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from castroom.core.api import (
    CommandContext,
    EntityRef,
    Finding,
    Importer,
    ImportResult,
    ValidationFailed,
    hookimpl,
    model,
    pass_command,
)

SOURCE = "roster"


@hookimpl
def castroom_check(view: Any) -> list[Finding]:
    return [
        Finding(
            code="example.no-agent",
            severity="warning",
            message=f"{talent.name} has no agent and no contact",
            entities=(EntityRef(kind="talent", id=talent.id, label=talent.name),),
            fix=f"castroom set talent {talent.id} contact=...",
        )
        for talent in view.talents.values()
        if not talent.agent and not talent.contact
    ]


def read_roster(source: str, view: Any, options: dict[str, Any]) -> ImportResult:
    existing = {
        t.external_ids[SOURCE]: t for t in view.all(model.Talent) if SOURCE in t.external_ids
    }
    entities, errors = [], []
    for number, line in enumerate(Path(source).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3:
            errors.append(f"line {number}: expected 'ref | name | min-max'")
            continue
        ref, name, ages = parts
        low, _, high = ages.partition("-")
        old = existing.get(ref)
        data = model.to_fields(old) if old else {"id": model.new_id()}
        data.update(
            name=name,
            playing_age_min=low or None,
            playing_age_max=high or None,
            external_ids={**data.get("external_ids", {}), SOURCE: ref},
        )
        try:
            entities.append(model.validate(model.Talent, data))
        except ValidationFailed as exc:
            errors.append(f"line {number}: {exc}")
    return ImportResult(entities=entities, errors=errors)


@hookimpl
def castroom_register_importers(register: Any) -> None:
    register(
        Importer(
            name="example",
            description="a .roster file of talents",
            run=read_roster,
            claims=lambda path: Path(path).suffix == ".roster",
        )
    )


@hookimpl
def castroom_register_commands(cli: Any) -> None:
    @cli.command(name="roster-refs")
    @pass_command
    def roster_refs(obj: CommandContext) -> None:
        """Each talent imported from a roster, by its roster ref."""
        talents = [t for t in obj.view().all(model.Talent) if SOURCE in t.external_ids]
        for talent in sorted(talents, key=lambda t: t.external_ids[SOURCE]):
            click.echo(f"{talent.external_ids[SOURCE]}  {talent.name}")

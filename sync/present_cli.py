"""``castroom present``: make, list and end presentation links (a role's selects for a
producer or director, served by ``castroom serve`` at ``/present``).

A presentation is a token of scope ``present`` in the workspace's token store, holding
what it shows (:class:`castroom.core.presenting.Showing`): the server that serves the
link is the one that must know it, end it and let its expiry pass, as for every other
token. What its viewers do lands in the production itself (ratings and notes on that
role's candidates), so every member sees the votes after a sync.
"""

from __future__ import annotations

import json
from typing import Any

import click

from castroom.core.cli import Context, pass_ctx
from castroom.core.errors import CastroomError
from castroom.core.presenting import PIPELINE

from .commands import iso_time

#: Where the link points unless ``--url`` says otherwise: ``castroom serve``'s default.
DEFAULT_URL = "http://127.0.0.1:8765"


@click.command()
@click.argument("role", required=False)
@click.option(
    "--stage",
    default="shortlisted",
    show_default=True,
    type=click.Choice(PIPELINE),
    help="Show the role's candidates at this stage or later.",
)
@click.option("--era", help="Only the candidates for this era of the role.")
@click.option(
    "--expires",
    default="7d",
    show_default=True,
    help="End the link after this long: 30d, 12h, 90m or 2w.",
)
@click.option("--name", default="", help="Who it is for, e.g. 'producers'.")
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    help="Where viewers reach `castroom serve`; the link is URL/present?token=...",
)
@click.option("--list", "listing", is_flag=True, help="List the presentations, ended ones too.")
@click.option("--revoke", "revoke_id", metavar="ID", help="End the presentation ID.")
@click.option("--json", "as_json", is_flag=True, help="With --list: as JSON.")
@pass_ctx
def present(
    obj: Context,
    role: str | None,
    stage: str,
    era: str | None,
    expires: str,
    name: str,
    url: str,
    listing: bool,
    revoke_id: str | None,
    as_json: bool,
) -> None:
    """A read-only link to ROLE's selects, for a producer or director to vote and comment."""
    if listing:
        _list(obj, as_json)
    elif revoke_id is not None:
        _revoke(obj, revoke_id)
    elif role is None:
        raise CastroomError("present: name a ROLE, or give --list or --revoke ID")
    else:
        _create(obj, role, stage=stage, era=era, expires=expires, name=name, url=url)


def _create(
    obj: Context, ref: str, *, stage: str, era: str | None, expires: str, name: str, url: str
) -> None:
    from castroom.core import presenting
    from castroom.core.model import Role

    from .auth import TokenStore, parse_duration

    expires_in = parse_duration(expires)
    production = obj.production()
    doc = production.doc
    role_id = doc.resolve_id(Role, ref)
    show = presenting.showing(doc, role_id, stage=stage, era=era)
    count = len(presenting.selects(doc, show))
    info, secret = TokenStore(production.workspace.store).create(
        "present",
        production=production.id,
        name=name,
        expires_in=expires_in,
        presentation=show,
    )
    of = presenting.role_name(doc, role_id) + (f" ({era})" if era else "")
    selects = f"{count} select{'s' * (count != 1)}" if count else "no selects yet"
    click.echo(
        f"Presentation {info.id} of {of}: candidates at {stage} or later ({selects}),"
        f" until {iso_time(info.expires)}. End it with `castroom present --revoke {info.id}`."
    )
    click.echo("Its link (served by `castroom serve`) is shown only this once:")
    click.echo(f"{url.rstrip('/')}/present?token={secret}")


def _rows(obj: Context) -> list[dict[str, Any]]:
    from castroom.core.presenting import role_name

    from .auth import TokenStore

    workspace = obj.workspace()
    titles = dict(workspace.productions())
    rows = []
    for info in TokenStore(workspace.store).presentations():
        show = info.presentation
        assert show is not None and info.production is not None
        role = show.role_id
        if info.production in titles:
            role = role_name(workspace.production(info.production).doc, show.role_id)
        state = "ended" if info.revoked else "expired" if info.expired() else "active"
        rows.append(
            {
                "id": info.id,
                "state": state,
                "production": info.production,
                "production_title": titles.get(info.production),
                "role_id": show.role_id,
                "role": role,
                "stage": show.stage,
                "era": show.era,
                "name": info.name,
                "created": iso_time(info.created),
                "expires": iso_time(info.expires),
                "revoked": iso_time(info.revoked),
            }
        )
    return rows


def _list(obj: Context, as_json: bool) -> None:
    rows = _rows(obj)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no presentations (make one with `castroom present ROLE`)")
    for row in rows:
        until = row["revoked"] if row["state"] == "ended" else row["expires"]
        era = f" ({row['era']})" if row["era"] else ""
        click.echo(
            f"{row['id']}  {row['state']:<7}  {_minute(until)}  {row['role']}{era}"
            f"  from {row['stage']}  {row['name']}".rstrip()
        )


def _revoke(obj: Context, ref: str) -> None:
    from .auth import TokenStore

    tokens = TokenStore(obj.workspace().store)
    before = {t.id: t.revoked for t in tokens.presentations()}
    info = tokens.revoke(ref, presentation=True)
    if before.get(info.id) is not None:
        click.echo(f"Presentation {info.id} had already ended")
    else:
        click.echo(f"Ended presentation {info.id}: its link now says so, and takes no votes")


def _minute(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "-"

"""``bundle create/apply/state``: moving productions between offline machines as a file."""

from __future__ import annotations

from pathlib import Path

import click

from .. import bundle as bundles
from ..yupdate import update_is_empty
from .context import Context, pass_ctx
from .root import cli


@cli.group()
def bundle() -> None:
    """Move everything (or what a peer lacks) between offline machines as one file."""


@bundle.command(name="create")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--for",
    "for_state",
    type=click.Path(exists=True, dir_okay=False),
    help="A peer's state file: include only what that peer lacks.",
)
@click.option(
    "--media",
    type=click.Choice(bundles.MEDIA_MODES),
    default="thumbs",
    show_default=True,
    help="Attached files to carry: thumbnails and posters, every file, or none.",
)
@pass_ctx
def bundle_create(obj: Context, file: str, for_state: str | None, media: str) -> None:
    """Write this workspace's productions (and attached files) into FILE."""
    made = bundles.create(
        obj.workspace(),
        Path(file),
        for_state=Path(for_state) if for_state else None,
        media=media,
    )
    if made.media:
        size = sum(len(b.data) for b in made.media)
        click.echo(f"Carrying {len(made.media)} attached file(s), {size:,} bytes")
    # Only productions with new content count: an entry with no struct carries just the
    # delete set (which a state vector cannot tell the peer has), kept to be safe.
    new = [e for e in made.productions if not update_is_empty(e.update)]
    if not new:
        click.echo(f"Nothing new for that peer: wrote {file} anyway")
        return
    size = sum(len(e.update) for e in made.productions)  # the whole file's
    click.echo(
        f"Wrote {len(new)} production(s) ({_titles([e.title for e in new])}),"
        f" {size:,} bytes of updates, to {file}"
    )


@bundle.command(name="apply")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def bundle_apply(obj: Context, file: str) -> None:
    """Merge a bundle from another machine (works on a new, empty workspace too)."""
    workspace = obj.workspace(create=True)
    applied = bundles.apply_bundle(workspace, Path(file))
    moved = applied.productions
    if applied.media:
        click.echo(f"Stored {applied.media} attached file(s) from {file}")
    # Only the productions the bundle changed: "0 entities changed" lines are noise.
    changed = {pid: count for pid, count in moved.items() if count}
    if not changed:
        click.echo(f"Nothing new in {file}: this workspace already had all of it")
    titles, shorts = dict(workspace.productions()), workspace.short_ids()
    for pid, count in changed.items():
        what = "entity" if count == 1 else "entities"
        short = shorts.get(pid, pid)
        click.echo(f"{titles.get(pid) or short} ({short}): {count} {what} changed")


def _titles(titles: list[str], most: int = 3) -> str:
    shown = ", ".join(titles[:most])
    return shown + (f" and {len(titles) - most} more" if len(titles) > most else "")


@bundle.command(name="state")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def bundle_state(obj: Context, file: str) -> None:
    """Write what this workspace has, for a peer's `bundle create --for FILE`."""
    count = bundles.write_state(obj.workspace(create=True), Path(file))
    click.echo(f"Wrote the state of {count} production(s) to {file}")

"""``attach`` and ``media list/show/export/detach/usage``: files kept with the production.

Thin: every rule is :mod:`castroom.core.media`'s.
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import media as media_core
from .. import model
from ..commands import emit_json
from ..media import Attachment, size_words
from .context import Context, pass_ctx
from .root import cli

KIND_CHOICE = click.Choice(model.MEDIA_KINDS)


@cli.command()
@click.argument("kind")
@click.argument("ref")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "as_kind", type=KIND_CHOICE, help="What the file is (default: by its type).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def attach(
    obj: Context, kind: str, ref: str, file: Path, as_kind: str | None, as_json: bool
) -> None:
    """Attach FILE to a talent or a candidate: castroom attach talent "Ada Stone" ada.jpg

    The type is read from the file's bytes (JPEG, PNG, WebP, GIF, PDF, MP4, MOV, WebM);
    a thumbnail (and a video's poster frame) is made once, without the original's
    metadata."""
    cls = media_core.owner_kind(kind)
    done = media_core.attach(obj.production(), cls, ref, file, as_kind=as_kind)
    if as_json:
        emit_json(done)
        return
    ref_ = done.media
    if done.already:
        click.echo(f"{ref_.name} is already attached to {done.label} as {ref_.kind}")
        return
    click.echo(
        f"Attached {ref_.name} to {done.entity_kind} {done.label} as {ref_.kind}"
        f" ({_describe(ref_)}, {ref_.hash[:12]})"
    )


def _describe(ref: model.MediaRef) -> str:
    parts = [ref.mime, size_words(ref.bytes)]
    if ref.width and ref.height:
        parts.append(f"{ref.width}x{ref.height}")
    if ref.duration is not None:
        parts.append(f"{ref.duration:.1f} s")
    if ref.pages is not None:
        parts.append(f"{ref.pages} page{'s' if ref.pages != 1 else ''}")
    return ", ".join(parts)


@cli.group()
def media() -> None:
    """Headshots, reels, résumés and self-tapes attached to talents and candidates."""


@media.command(name="list")
@click.argument("kind", required=False)
@click.argument("ref", required=False)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def media_list(obj: Context, kind: str | None, ref: str | None, as_json: bool) -> None:
    """Every attachment, or one talent's or candidate's: media list talent "Ada Stone"."""
    production = obj.production()
    cls = media_core.owner_kind(kind) if kind else None
    if ref is not None and cls is None:
        raise click.UsageError("give the KIND before the REF")
    entity_id = production.doc.resolve_id(cls, ref) if cls is not None and ref else None
    found = media_core.attachments(production.doc, production.workspace.blobs, cls, entity_id)
    if as_json:
        emit_json(found)
        return
    from rich.table import Table

    table = Table(title=f"{len(found)} attachment{'s' if len(found) != 1 else ''}")
    for column in ("hash", "entity", "kind", "name", "type", "size", "here"):
        table.add_column(column, overflow="fold", no_wrap=column == "hash")
    for item in found:
        table.add_row(
            item.media.hash[:12],
            f"{item.entity_kind} {item.label}",
            item.media.kind,
            item.media.name,
            _describe(item.media).split(", ", 1)[0],
            size_words(item.media.bytes),
            "yes" if item.present else "no",
        )
    obj.console.print(table)


@media.command(name="show")
@click.argument("file_ref", metavar="MEDIA")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def media_show(obj: Context, file_ref: str, as_json: bool) -> None:
    """One attached file (by hash, hash prefix or name) and who it is attached to."""
    production = obj.production()
    blobs = production.workspace.blobs
    found = media_core.find(production.doc, blobs, file_ref)
    if as_json:
        emit_json(found)
        return
    ref = found[0].media
    click.echo(f"{ref.name}: {_describe(ref)}")
    click.echo(f"  hash       {ref.hash}")
    click.echo(f"  here       {'yes' if blobs.has(ref.hash) else 'no (not fetched yet)'}")
    for part in ("thumbnail", "poster"):
        digest = getattr(ref, part)
        if digest:
            here = "" if blobs.has(digest) else " (not here yet)"
            click.echo(f"  {part:<10} {digest}{here}")
    for item in found:
        when = item.media.added_at.isoformat().replace("+00:00", "Z")
        click.echo(
            f"  attached to {item.entity_kind} {item.label} as {item.media.kind}"
            f" by {item.media.added_by or '?'} at {when}"
        )


@media.command(name="export")
@click.argument("file_ref", metavar="MEDIA")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--part",
    type=click.Choice(["original", "thumbnail", "poster"]),
    default="original",
    show_default=True,
)
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@pass_ctx
def media_export(obj: Context, file_ref: str, dest: Path, part: str, force: bool) -> None:
    """Write an attached file (or its thumbnail or poster) to DEST (a file or a folder)."""
    production = obj.production()
    blobs = production.workspace.blobs
    found = media_core.find(production.doc, blobs, file_ref)
    written = media_core.export(blobs, found, dest, part=part, force=force)
    click.echo(f"Wrote {written} ({size_words(written.stat().st_size)})")


@media.command(name="detach")
@click.argument("kind")
@click.argument("ref")
@click.argument("file_ref", metavar="MEDIA")
@pass_ctx
def media_detach(obj: Context, kind: str, ref: str, file_ref: str) -> None:
    """Remove an attachment (MEDIA: hash, hash prefix, file name, or kind). The file
    stays in the workspace until `castroom compact` finds it unused past the grace days."""
    cls = media_core.owner_kind(kind)
    gone: Attachment = media_core.detach(obj.production(), cls, ref, file_ref)
    click.echo(f"Detached {gone.media.name} from {gone.entity_kind} {gone.label}")


@media.command(name="usage")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def media_usage(obj: Context, as_json: bool) -> None:
    """What takes space in this workspace's media store."""
    found = media_core.usage(obj.workspace())
    if as_json:
        emit_json(found)
        return
    from rich.table import Table

    table = Table(title=f"media: {size_words(found.total_bytes)}")
    for column in ("what", "files", "size"):
        table.add_column(column)
    order = [*model.MEDIA_KINDS, "derived", "unreferenced"]
    for what in sorted(found.kinds, key=lambda k: order.index(k) if k in order else len(order)):
        item = found.kinds[what]
        table.add_row(what, str(item.files), size_words(item.bytes))
    obj.console.print(table)
    if found.largest:
        top = Table(title="largest")
        for column in ("production", "entity", "files", "size"):
            top.add_column(column, overflow="fold")
        for entity in found.largest:
            top.add_row(
                entity.production,
                f"{entity.entity_kind} {entity.label}",
                str(entity.files),
                size_words(entity.bytes),
            )
        obj.console.print(top)
    if "unreferenced" in found.kinds:
        click.echo(
            f"Unreferenced files are removed by `castroom compact` once unused for"
            f" {found.grace_days:g} days (media.grace_days)."
        )
    if found.missing:
        click.echo(f"{found.missing} referenced file(s) not here yet (`castroom sync` fetches)")

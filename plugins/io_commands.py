"""Built-in plugin: the generic ``import`` and ``export`` commands.

They dispatch to whatever importers and exporters the loaded plugins registered, so a
third-party importer is usable from the command line the moment it is installed. Options
the command does not know (``--kind talent --map a=b --map c=d``) are handed to the
importer or exporter as an options dict: a repeated key becomes a list, a bare ``--flag``
becomes True.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from castroom.core.api import (
    CastroomError,
    CommandContext,
    ImportFailed,
    format_errors,
    hookimpl,
    pass_command,
)

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


class _ListsPlugins(click.Command):
    """A command whose help ends with every registered importer or exporter and its
    description (where each one's own options are summarised), read from the plugins
    loaded for this run, so a third-party one shows up the moment it is installed."""

    kind = ""  # "importer" or "exporter"
    usage_hint = ""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        plugins = _plugins(ctx)
        if plugins is None:
            return
        try:
            found = plugins.importers() if self.kind == "importer" else plugins.exporters()
        except Exception:  # help must never fail over a broken plugin
            return
        rows = [(name, item.description) for name, item in sorted(found.items())]
        with formatter.section(f"{self.kind.capitalize()}s (NAME) and their options"):
            if rows:
                formatter.write_dl(rows)
            else:
                formatter.write_text("none installed")
            formatter.write_paragraph()
            formatter.write_text(self.usage_hint)


def _plugins(ctx: click.Context) -> Any:
    """The plugin façade of this run: the root context's object (help may be asked
    before any workspace is opened)."""
    from castroom.core.api import Plugins

    root = ctx.find_root().obj
    return root if isinstance(root, Plugins) else None


class ImportCommand(_ListsPlugins):
    kind = "importer"
    usage_hint = (
        "Options the import command does not know are the importer's own, given after "
        "SOURCE: castroom import csv talents.csv --kind talent --map Name=name"
    )


class ExportCommand(_ListsPlugins):
    kind = "exporter"
    usage_hint = (
        "Options the export command does not know are the exporter's own: castroom "
        "export callsheet --day 3 -o day3.html"
    )


def parse_options(args: list[str]) -> dict[str, Any]:
    """``--key value`` pairs (and ``--key=value``, bare ``--flag``) as a dict."""
    options: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise CastroomError(f"unexpected argument {arg!r} (options look like --key value)")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = True  # type: ignore[assignment]
        key = key.replace("-", "_")
        if key in options:
            previous = options[key]
            options[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            options[key] = value
        i += 1
    return options


@click.command(name="import", cls=ImportCommand, context_settings=PASS_THROUGH)
@click.argument("name")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
@pass_command
def import_cmd(obj: CommandContext, ctx: click.Context, name: str, source: str, as_json: bool):
    """Import SOURCE (a file or URL) with the importer NAME: castroom import csv t.csv --kind talent

    Every row is validated first; a bad row is reported with its line number and nothing
    is written. Importing the same source again updates instead of duplicating."""
    importers = obj.plugins.importers()
    importer = importers.get(name)
    if importer is None:
        known = ", ".join(sorted(importers)) or "none"
        raise CastroomError(f"no importer {name!r} (installed: {known})")
    options = parse_options(list(ctx.args))
    try:
        # A spinner on a terminal (nothing when stderr is a file or a pipe).
        with obj.err.status(f"Importing {source} with {name}..."):
            result, counts = obj.run_import(importer, source, options)
    except ImportFailed as exc:
        for line in format_errors(exc.errors):
            click.echo(f"  {line}", err=True)
        raise
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if as_json:
        import json

        click.echo(
            json.dumps(
                {
                    "created": counts.created,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged,
                    "warnings": result.warnings,
                    "report": result.report,
                }
            )
        )
    else:
        click.echo(
            f"Imported {counts.total} from {source} with {name}: {counts.created} created,"
            f" {counts.updated} updated, {counts.unchanged} unchanged"
        )
        for line in result.report:
            click.echo(line)


@click.command(name="export", cls=ExportCommand, context_settings=PASS_THROUGH)
@click.argument("name")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write here (default: stdout)."
)
@click.pass_context
@pass_command
def export_cmd(obj: CommandContext, ctx: click.Context, name: str, output: str | None) -> None:
    """Export the production with the exporter NAME: csv, ics, dood, callsheet, ..."""
    exporters = obj.plugins.exporters()
    exporter = exporters.get(name)
    if exporter is None:
        known = ", ".join(sorted(exporters)) or "none"
        raise CastroomError(f"no exporter {name!r} (installed: {known})")
    options = parse_options(list(ctx.args))
    data = exporter.export(obj.view(), options)
    if output:
        write_atomically(Path(output), data)
        click.echo(f"Wrote {len(data):,} bytes to {output}", err=True)
    else:
        click.echo(data, nl=False)  # bytes go to the binary stdout untouched


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file beside it, so a failed write
    never leaves a half-written export; any OS error is one clear CastroomError."""
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileNotFoundError | NotADirectoryError) and not target.parent.is_dir():
            reason = f"the folder {target.parent} does not exist"
        raise CastroomError(f"cannot write the export to {target}: {reason}") from None


@hookimpl(trylast=True)
def castroom_register_commands(cli: click.Group) -> None:
    cli.add_command(import_cmd)
    cli.add_command(export_cmd)

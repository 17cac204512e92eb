"""The sync commands: ``castroom serve``, ``castroom sync`` and ``castroom token``.

Registered as the built-in plugin ``sync`` through ``castroom_register_commands``. The
heavy imports (uvicorn, starlette, websockets) happen inside the commands, so the rest of
the CLI starts fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from castroom.core.cli import Context, pass_ctx
from castroom.core.errors import CastroomError
from castroom.core.hookspecs import hookimpl
from castroom.core.workspace import Workspace, default_path


def _setup_logging() -> None:
    root = logging.getLogger("castroom")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    from .server import quiet_handshake_noise

    quiet_handshake_noise()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 = any free).")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@click.option("--max-body", type=int, help="Largest request body or message, in bytes.")
@click.option("--open", "open_browser", is_flag=True, help="Open the dashboard in a browser.")
@pass_ctx
def serve(
    obj: Context,
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    max_body: int | None,
    open_browser: bool,
) -> None:
    """Serve this workspace's productions to peers (HTTP and y-websocket) and the
    casting room's dashboard at http://HOST:PORT/.

    Prints a sign-in link for the dashboard carrying a fresh write token for this
    workspace's member (--open opens it). Every other request needs a token from
    `castroom token create`. Peers sync at ws://HOST:PORT/sync/PRODUCTION_ID (WebSocket),
    ws://HOST:PORT/hocuspocus (Hocuspocus providers, document name = production id) or
    with `castroom sync http://HOST:PORT`.
    """
    from .server import ServerOptions
    from .web.signin import serve_with_sign_in

    workspace = obj.workspace()
    path = workspace.path
    # Limits and timeouts: the workspace config's [server] table, then the options here.
    sizes = {} if max_body is None else {"max_body": max_body, "max_message": max_body}
    options = ServerOptions.from_config(workspace.config, **sizes)
    obj.close()  # the server opens the workspace on its own thread
    _setup_logging()
    serve_with_sign_in(
        path,
        echo=click.echo,
        open_browser=open_browser,
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        options=options,
    )


@click.command(name="sync")
@click.argument("target")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="Read the bearer token from this file (or set CASTROOM_TOKEN).",
)
@click.option(
    "--token",
    envvar="CASTROOM_TOKEN",
    help="The bearer token itself (shows in `ps`: prefer --token-file or CASTROOM_TOKEN).",
)
@click.option("--live", is_flag=True, help="Stay connected and sync as edits happen.")
@click.option(
    "--production",
    "production_refs",
    multiple=True,
    help="Only this production (id, prefix or title); with --protocol hocuspocus, repeatable.",
)
@click.option(
    "--protocol",
    type=click.Choice(["y-websocket", "hocuspocus"]),
    default="y-websocket",
    show_default=True,
    help="For ws(s):// peers: a y-websocket relay (a room per production) or a Hocuspocus"
    " server (one socket for every production).",
)
@click.option(
    "--cacert",
    type=click.Path(dir_okay=False, exists=True),
    help="Trust this CA / self-signed certificate for https:// and wss://.",
)
@click.option("--duration", type=float, help="With --live: stop after this many seconds.")
@click.option(
    "--media",
    "media_mode",
    type=click.Choice(["none", "eager", "all"]),
    default="eager",
    show_default=True,
    help="With a castroom server (over HTTP, WebSocket or Hocuspocus, one-shot or --live):"
    " which attached files to fetch (eager: headshots, résumés and thumbnails; all: reels"
    " and self-tapes too). What the server lacks is sent. A plain relay holds no files.",
)
@click.option(
    "--fetch",
    "fetch_refs",
    multiple=True,
    metavar="MEDIA",
    help="One-shot, with a castroom server: fetch this attached file too, whatever --media"
    " says (a hash, hash prefix or file name, as `media show` takes it; repeatable), e.g."
    " one reel.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for a peer's answer.",
)
@pass_ctx
def sync_cmd(
    obj: Context,
    target: str,
    token_file: str | None,
    token: str | None,
    live: bool,
    production_refs: tuple[str, ...],
    protocol: str,
    cacert: str | None,
    duration: float | None,
    media_mode: str,
    fetch_refs: tuple[str, ...],
    timeout: float,
) -> None:
    """Sync with a peer: a castroom server (http[s]://HOST:PORT), a y-websocket relay
    (ws[s]://HOST:PORT/PATH, one production per room), a Hocuspocus server
    (ws[s]://HOST:PORT --protocol hocuspocus), or a shared folder (a path)."""
    from . import client

    fetch = list(fetch_refs)
    if fetch and (live or "://" not in target):
        raise CastroomError("--fetch is for a one-shot sync with a castroom server")
    if token_file is not None:
        token = read_token_file(Path(token_file))
    refs = list(production_refs) or ([obj.production_ref] if obj.production_ref else [])
    if protocol == "hocuspocus":
        if not client.is_websocket_url(target):
            raise CastroomError("--protocol hocuspocus needs a ws:// or wss:// address")
        with _no_trace_if_first_sync_fails(obj):
            _sync_hocuspocus(
                obj, target, refs, token, live, cacert, duration, timeout, media_mode, fetch
            )
        return
    if len(refs) > 1:
        raise CastroomError("one --production at a time (several: --protocol hocuspocus)")
    production_ref = refs[0] if refs else None
    if client.is_http_url(target) or client.is_websocket_url(target):
        options = dict(
            token=token,
            production=production_ref,
            echo=click.echo,
            cacert=cacert,
            timeout=timeout,
        )
        with _no_trace_if_first_sync_fails(obj):
            workspace = obj.workspace(create=True)
            if live:
                client.sync_live(workspace, target, duration=duration, media=media_mode, **options)  # type: ignore[arg-type]
            elif client.is_http_url(target):
                client.sync_http(workspace, target, media=media_mode, fetch=fetch, **options)  # type: ignore[arg-type]
            else:
                client.sync_websocket(workspace, target, media=media_mode, fetch=fetch, **options)  # type: ignore[arg-type]
        return
    if "://" in target:
        raise CastroomError(f"cannot sync with {target!r}: use http(s)://, ws(s):// or a folder")
    folder = Path(target).expanduser()
    if folder.is_file() and not live:
        raise CastroomError(
            f"{folder} is a file, not a folder: to merge a bundle, use `castroom bundle apply`"
        )
    if not live and not folder.is_dir():
        # Checked before the workspace is made, so a typo leaves nothing behind.
        raise CastroomError(f"no folder at {folder} (create it, or check the path)")
    from .folder import sync_folder

    sync_folder(obj.workspace(create=True), folder, live=live, echo=click.echo)


@contextlib.contextmanager
def _no_trace_if_first_sync_fails(obj: Context) -> Iterator[None]:
    """A first sync may create the workspace; if it then fails, leave no trace of it."""
    root = Path(obj.workspace_path).expanduser() if obj.workspace_path else default_path()
    fresh = not root.exists()
    try:
        yield
    except CastroomError:
        if fresh and root.exists() and not obj.workspace().productions():
            obj.close()
            shutil.rmtree(root, ignore_errors=True)
        raise


def _sync_hocuspocus(
    obj: Context,
    target: str,
    refs: list[str],
    token: str | None,
    live: bool,
    cacert: str | None,
    duration: float | None,
    timeout: float,
    media_mode: str = "eager",
    fetch: list[str] | None = None,
) -> None:
    from .hocuspocus_client import sync_hocuspocus, sync_hocuspocus_live

    workspace = obj.workspace(create=True)
    options = dict(
        token=token, productions=refs or None, echo=click.echo, cacert=cacert, timeout=timeout
    )
    if live:
        sync_hocuspocus_live(workspace, target, duration=duration, media=media_mode, **options)  # type: ignore[arg-type]
    else:
        sync_hocuspocus(workspace, target, media=media_mode, fetch=fetch, **options)  # type: ignore[arg-type]


def read_token_file(path: Path) -> str:
    """The token in ``path`` (its first line, stripped): one clear error if there is none."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CastroomError(f"cannot read token file {path}: {exc}") from None
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not first:
        raise CastroomError(f"token file {path} is empty")
    return first


@click.group()
def token() -> None:
    """Create, list and revoke the tokens peers use to reach `castroom serve`."""


@token.command(name="create")
@click.option("--scope", type=click.Choice(["read", "write"]), required=True)
@click.option("--production", "production_ref", help="Only this production (id, prefix or title).")
@click.option("--name", default="", help="A label, e.g. whose laptop it is for.")
@click.option(
    "--expires", help="Stop working after this long: 30d, 12h, 90m or 2w (default: never)."
)
@pass_ctx
def token_create(
    obj: Context, scope: str, production_ref: str | None, name: str, expires: str | None
) -> None:
    """Make a token. It is printed once, alone on the last line: keep it safe."""
    from .auth import TokenStore, parse_duration

    expires_in = parse_duration(expires) if expires is not None else None
    workspace = obj.workspace()
    production_id = workspace.resolve_production(production_ref) if production_ref else None
    info, secret = TokenStore(workspace.store).create(
        scope, production=production_id, name=name, expires_in=expires_in
    )
    reach = f"production {_production(workspace, production_id)}" if production_id else ""
    reach = reach or "every production"
    until = f", until {iso_time(info.expires)}" if info.expires is not None else ""
    click.echo(f"Created {scope} token {info.id} for {reach}{until}. It is shown only this once:")
    click.echo(secret)


def iso_time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


@token.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def token_list(obj: Context, as_json: bool) -> None:
    """The tokens (never their secrets), revoked ones included."""
    import msgspec

    from .auth import TokenStore

    workspace = obj.workspace()
    infos = TokenStore(workspace.store).list()
    if as_json:
        # Times as ISO 8601 (UTC), like every other --json listing.
        rows = [
            {
                **msgspec.to_builtins(info),
                "created": iso_time(info.created),
                "revoked": iso_time(info.revoked),
                "expires": iso_time(info.expires),
            }
            for info in infos
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    if not infos:
        click.echo("no tokens (create one with `castroom token create --scope read|write`)")
    for info in infos:
        created = _minute(info.created)
        state = "revoked" if info.revoked else "expired" if info.expired() else "active"
        if info.expires is not None and not info.revoked:
            state += f" {'since' if info.expired() else 'until'} {_minute(info.expires)}"
        reach = _production(workspace, info.production) if info.production else "all productions"
        click.echo(f"{info.id}  {info.scope:<5}  {state:<7}  {created}  {reach}  {info.name}")


def _production(workspace: Workspace, production_id: str) -> str:
    """A production as people see it: its title and short id."""
    title = dict(workspace.productions()).get(production_id)
    short = workspace.short_ids().get(production_id, production_id)
    return f"{title} ({short})" if title else short


def _minute(timestamp: float) -> str:
    """A token's time as the listing shows it: UTC, to the minute."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M")


@token.command(name="revoke")
@click.argument("token_id")
@pass_ctx
def token_revoke(obj: Context, token_id: str) -> None:
    """Revoke a token by its id (live connections using it are cut off within a second)."""
    from .auth import TokenStore

    tokens = TokenStore(obj.workspace().store)
    before = {t.id: t.revoked for t in tokens.list()}
    info = tokens.revoke(token_id)
    if before.get(info.id) is not None:
        click.echo(f"Token {info.id} was already revoked")
    else:
        click.echo(f"Revoked token {info.id}")


@hookimpl(trylast=True)
def castroom_register_commands(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(sync_cmd)
    cli.add_command(token)
    from .present_cli import present

    cli.add_command(present)

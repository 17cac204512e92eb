"""The commands castroom lists without importing the plugins that add them.

``castroom --help`` must not import every plugin (issue 14: start <= 100 ms), so a
plugin declares its commands' names and one-line help as plain data, and its module is
imported only when one of them runs (or a hook of it is called). Built-in plugins are
declared here, next to :data:`castroom.core.plugins.DEFAULT_PLUGINS`; a third-party
plugin declares its commands under the ``castroom.commands`` entry-point group, the
entry point named like its ``castroom`` one and pointing at a ``{command: help}`` mapping
in a module that imports nothing heavy. A plugin without a declaration still works: it
is imported when the whole command list is needed (``--help``) or a command is unknown.
A test checks every declaration here against the command its plugin really adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import CastroomError

COMMANDS_GROUP = "castroom.commands"

#: Built-in plugin -> {command: its one-line help (the first sentence of its docstring)};
#: every built-in is here, those that add no command with ``{}``.
BUILTIN_COMMANDS: dict[str, dict[str, str]] = {
    "continuity": {},
    "integrity": {},
    "scheduler": {},
    "csv_io": {},
    "screenplay": {},
    "casting_site": {},
    "calendar": {},
    "reports": {},
    "inbox": {
        "watch-inbox": "Import every file dropped into DIRECTORY with the importer that claims it.",
    },
    "contingency": {
        "replace": "A booked talent drops out: what it affects, and who could replace them.",
    },
    "budget": {"budget": "Cast cost per actor and role, and the total against the cap."},
    "auditions": {"audition": "Audition slots for a role's shortlisted candidates."},
    "io_commands": {
        "import": "Import SOURCE (a file or URL) with the importer NAME: castroom import csv"
        " t.csv --kind talent",
        "export": "Export the production with the exporter NAME: csv, ics, dood, callsheet, ...",
    },
    "demo": {"demo": "Build a sample series and walk through a day in the casting room."},
    "sync": {
        "serve": "Serve this workspace's productions to peers (HTTP and y-websocket) and the"
        " casting room's dashboard at http://HOST:PORT/.",
        "sync": "Sync with a peer: a castroom server (http[s]://HOST:PORT), a y-websocket"
        " relay (ws[s]://HOST:PORT/PATH, one production per room), a Hocuspocus server"
        " (ws[s]://HOST:PORT --protocol hocuspocus), or a shared folder (a path).",
        "token": "Create, list and revoke the tokens peers use to reach `castroom serve`.",
        "present": "A read-only link to ROLE's selects, for a producer or director to vote and"
        " comment.",
    },
}


@dataclass(frozen=True)
class DeclaredCommand:
    """A command known by name and help before its plugin is imported."""

    name: str
    help: str
    plugin: str


def read_declaration(plugin: str, declared: object) -> list[DeclaredCommand]:
    """A plugin's ``{command: help}`` mapping as commands, or one clear error."""
    if not isinstance(declared, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in declared.items()
    ):
        raise CastroomError(
            f"plugin {plugin!r} declares its commands as {type(declared).__name__}, not a"
            " mapping of command name to one-line help"
        )
    return [DeclaredCommand(name, text, plugin) for name, text in declared.items()]

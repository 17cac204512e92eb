"""The README and docs/ name only commands and options that exist, and the README's
"A day with castroom" runs as written, line after line, in one workspace.

The day is read from README.md itself, so a command edited there is the command run
here. The files it names are made from the test data (tests/data, see SOURCES.md): the
pilot is the Night Ferry script, episode 3 the same script in Final Draft with LORELEI
renamed NORA (so ``--cue NORA=...`` has a cue to map), agency.csv has the columns the
README's ``--map`` names, and ada.jpg is a small JPEG.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import shutil
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import click
import msgspec
import pytest
from PIL import Image

from castroom.core import model
from castroom.core.cli import build_cli
from castroom.core.plugins import make_plugins

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
DATA = Path(__file__).parent / "data"

#: ``castroom WORD [WORD [WORD]] rest``, up to a table cell's end or a shell comment:
#: what follows the command words is where its options stand.
COMMAND_LINE = re.compile(
    r"castroom (?:(?:-w|--workspace) \S+ )?((?:[a-z][a-z_-]* ?){1,3})([^|#]*)"
)
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z-]*)")
BLOCK = re.compile(r"```[a-z]*\n(.*?)```", re.S)
SPAN = re.compile(r"`([^`\n]+)`")


def _command_lines(text: str) -> list[str]:
    """What the doc gives as a command to type: a code span that starts with
    ``castroom``, and a code block's lines that do (after a ``$`` prompt)."""
    lines = [span for span in SPAN.findall(BLOCK.sub("", text)) if span.startswith("castroom ")]
    for block in BLOCK.findall(text):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("castroom "):
                lines.append(line)
    # ``castroom ...`` stands for any command; ``castroom --help`` is the root's own.
    return [line for line in lines if not line.startswith(("castroom ...", "castroom --"))]


def _command(root: click.Group, words: list[str]) -> tuple[click.Command, list[str]]:
    """The deepest command ``words`` name, and the words that named it."""
    command: click.Command = root
    ctx = click.Context(root)
    path: list[str] = []
    for word in words:
        sub = command.get_command(ctx, word) if isinstance(command, click.Group) else None
        if sub is None:
            break
        command, path = sub, [*path, word]
        ctx = click.Context(sub, parent=ctx)
    return command, path


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


def test_every_command_and_option_the_docs_name_exists() -> None:
    """Each ``castroom ...`` in a code span or block of the README and docs/ names a real
    command, and each ``--option`` after it is one of that command's. Options a command
    hands on to a plugin (``import``/``export`` pass theirs to the importer or exporter)
    are the plugin's own and not checked here."""
    root = build_cli(make_plugins())
    wrong = []
    for doc in DOCS:
        for line in _command_lines(doc.read_text(encoding="utf-8")):
            match = COMMAND_LINE.match(line)
            words = match.group(1).split() if match else []
            command, path = _command(root, words)
            if not match or not path:
                wrong.append(f"{doc.name}: no such command: {line}")
                continue
            if command.context_settings.get("ignore_unknown_options"):
                continue
            rest = " ".join([*words[len(path) :], match.group(2)])
            for option in OPTION.findall(rest):
                if option not in _options(command):
                    wrong.append(f"{doc.name}: `castroom {' '.join(path)}` has no {option}")
    assert not wrong, "\n".join(wrong)


def readme_day() -> list[list[str]]:
    """The README's day: each ``castroom ...`` line of its first ``sh`` block after the
    heading, split as a shell would (comments dropped), without the leading ``castroom``."""
    text = README.read_text(encoding="utf-8").split("## A day with castroom", 1)[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    assert all(words[0] == "castroom" for words in lines if words), block
    return [words[1:] for words in lines if words]


def _files(folder: Path) -> None:
    scripts, sheets = DATA / "scripts", DATA / "sheets"
    shutil.copy(scripts / "night_ferry.fountain", folder / "pilot.fountain")
    fdx = (scripts / "night_ferry.fdx").read_text(encoding="utf-8")
    (folder / "ep3.fdx").write_text(re.sub(r"\bLORELEI\b", "NORA", fdx), encoding="utf-8")
    (folder / "agency.csv").write_text(
        'Full name,Day rate\nBen Ode,"1,200"\nCleo Marsh,950\n', encoding="utf-8"
    )
    shutil.copy(sheets / "office_talent.xlsx", folder / "office.xlsx")
    shutil.copy(scripts / "night_ferry_numbered.pdf", folder / "draft3.pdf")
    Image.new("RGB", (40, 50), "teal").save(folder / "ada.jpg", "JPEG")


def test_the_readme_day_is_a_session_that_runs(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = readme_day()
    assert len(day) >= 20, day
    folder = tmp_path / "day"
    folder.mkdir()
    _files(folder)
    monkeypatch.chdir(folder)
    for args in day:
        result = cli(*args)
        assert result.exit_code == 0, f"castroom {shlex.join(args)}:\n{result.output}"

    def listed(kind: str) -> list[dict]:
        return json.loads(cli("list", kind, "--json").output)

    talents = {t["name"]: t for t in listed("talents")}
    assert talents["Ada Stone"]["agent"] == "Blake & Co"
    assert talents["Ben Ode"]["rate"] == 120_000  # "1,200" dollars, in cents
    roles = {r["name"]: r["id"] for r in listed("roles")}
    scenes = {s["number"]: s for s in listed("scenes")}
    # Episode 3 is numbered 3.1, ...; its NORA is the Maggie the team already had.
    assert roles["Maggie"] in scenes["3.1"]["characters"]
    assert "Nora" not in roles
    # The PDF draft brought scene 2A (tests/test_script_pdf.py shows 12A, 12B kept).
    assert "2A" in scenes
    assert listed("auditions") == []  # `audition plan` without --apply only shows the slots
    days = listed("shoot_days")
    assert days and days[0]["date"] == "2027-03-01"
    unscheduled = {n for n, s in scenes.items() if not s["shoot_day_id"]}
    assert unscheduled == {n for n, s in scenes.items() if s["omitted"]}, unscheduled
    assert (folder / "shoot.ics").read_text().startswith("BEGIN:VCALENDAR")
    assert (folder / "day1.pdf").read_bytes().startswith(b"%PDF-")
    media = json.loads(cli("media", "list", "--json").output)
    assert [(m["label"], m["media"]["name"], m["media"]["kind"], m["present"]) for m in media] == [
        ("Ada Stone", "ada.jpg", "headshot", True)
    ]


#: schema.md's default column, read as the value it names.
DEFAULTS: dict[str, Any] = {"null": None, '""': "", "[]": [], "{}": {}, "false": False}


def _schema_rows() -> list[tuple[type, str, str, str]]:
    """(Struct, field, default cell, rules cell) for every row of schema.md's field
    tables: a section ``### Talent (`talents`)`` or a ``**MediaRef**`` paragraph names
    the Struct the rows below it are of."""
    structs = {model.Production.collection: model.Production, "MediaRef": model.MediaRef}
    structs |= {cls.collection: cls for cls in model.KINDS.values()}
    rows, struct = [], None
    for line in (ROOT / "docs" / "schema.md").read_text(encoding="utf-8").splitlines():
        named = re.match(r"### \w+ \(`(\w+)`", line) or re.match(r"\*\*(MediaRef)\*\*", line)
        if named:
            struct = structs[named.group(1)]
        elif line.startswith("| `") and struct is not None:
            names, _, default, rules = (c.strip() for c in line.strip("|").split("|"))
            rows += [(struct, name, default, rules) for name in re.findall(r"`(\w+)`", names)]
    return rows


def _choices(annotation: Any) -> set[str]:
    """The values a ``Literal`` (or optional ``Literal``) field may take; none otherwise."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    return {c for a in typing.get_args(annotation) for c in _choices(a)}


def _listed(rules: str) -> set[str]:
    """The values a rules cell lists: its quoted ones (`INT`, ""), else its longest run of
    comma-separated words (lead, supporting, ...)."""
    quoted = re.findall(r"`([^`]+)`", rules) + ([""] if '""' in rules else [])
    runs = re.findall(r"[\w/]+(?:, [\w/]+)+", rules)
    return set(quoted) if quoted else set(max(runs, key=len).split(", ") if runs else ())


def test_schema_md_states_each_fields_default_and_choices_as_the_model_has_them() -> None:
    """A peer follows schema.md: each field's default there is the Struct's, and a field
    with a fixed set of values lists exactly those (test_document holds that every field
    is named)."""
    rows = _schema_rows()
    assert len(rows) > 100
    wrong = []
    for struct, name, default, rules in rows:
        field = {f.name: f for f in msgspec.structs.fields(struct)}[name]
        if field.default is not msgspec.NODEFAULT:
            expected: Any = field.default
        elif field.default_factory is not msgspec.NODEFAULT:
            expected = field.default_factory()
        else:
            expected = "required"
        said = DEFAULTS.get(default, default.strip("`"))
        if isinstance(expected, int | float) and not isinstance(expected, bool):
            said = float(said)
        if said != expected:
            wrong.append(f"{struct.__name__}.{name}: default {default}, the model's {expected!r}")
        choices = _choices(typing.get_type_hints(struct, include_extras=True)[name])
        if choices and _listed(rules) != choices:
            wrong.append(f"{struct.__name__}.{name}: lists {sorted(_listed(rules))}")
    assert not wrong, "\n".join(wrong)


def test_deploy_md_server_table_is_every_default_of_server_options() -> None:
    """deploy.md's ``[server]`` example names real settings, each at its default: read
    as castroom reads a workspace's config.toml, it is exactly ``ServerOptions()``."""
    from castroom.sync.server import ServerOptions

    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    [table] = [b for b in re.findall(r"```toml\n(.*?)```", text, re.S) if "[server]" in b]
    config = tomllib.loads(table)
    # from_config refuses a key it does not know (test_server_limits), so this also
    # checks every name in the example.
    assert ServerOptions.from_config(config) == ServerOptions()
    assert config["server"]["presence"], "the example shows the presence limits too"


def test_media_md_config_is_the_defaults_it_says_it_is() -> None:
    """media.md: "The values above are the defaults"; read as a workspace's config is, the
    ``[media]`` example gives what a config without it gives."""
    from castroom.core.media import media_config

    text = (ROOT / "docs" / "media.md").read_text(encoding="utf-8")
    [table] = [b for b in re.findall(r"```toml\n(.*?)```", text, re.S) if "[media]" in b]
    config = tomllib.loads(table)
    assert set(config["media"]["max_bytes"]) == set(model.MEDIA_KINDS)
    assert media_config(config) == media_config({})


def test_a_production_id_with_a_dot_is_refused_as_schema_md_says(tmp_path: Path) -> None:
    """schema.md: any id may use ``_ . : -``, but a production's id names folders, so a
    peer's production ``a.b`` is refused before anything of it is stored."""
    from castroom.core.document import CastDocument
    from castroom.core.errors import UnsafeId
    from castroom.core.workspace import Workspace

    peer = CastDocument.create("Dotted", production_id="a.b")
    assert peer.production.id == "a.b"  # a valid id inside the document
    with Workspace.open(tmp_path / "ws") as ws:
        refused = re.escape("production id 'a.b' is not an id of letters")
        with pytest.raises(UnsafeId, match=refused):
            ws.adopt("a.b", peer.encode_update(), origin="sync")
        assert ws.productions() == []


#: Bounds schema.md states once for all fields (its *Values*), not in each row: integers
#: within 2^53 - 1, short texts 2,000 characters, notes 200,000, ids 1 to 64.
SAID_ONCE = {("le", 2**53 - 1), ("max_length", 2_000), ("max_length", 200_000)}
SAID_ONCE_FOR_IDS = {("min_length", 1), ("max_length", 64)}
DASH = "\u2013"  # schema.md writes a range 1\u20131440, with an en dash
RANGE_RULES = [
    (rf"([\d,.]+)\s*{DASH}\s*([\d,.]+) characters", ("min_length", "max_length")),
    (r"^([\d,.]+)\s*<\s*x\s*≤\s*([\d,.]+)", ("gt", "le")),
    (r"^([\d,.]+)\s*≤\s*x\s*≤\s*([\d,.]+)", ("ge", "le")),
    (rf"^([\d,.]+)\s*{DASH}\s*([\d,.]+)", ("ge", "le")),
    (r"^≥\s*([\d,.]+)", ("ge",)),
]


def _bounds(annotation: Any) -> set[tuple[str, float]]:
    """The numeric and length bounds of a field's ``Meta`` (through optionals)."""
    found: set[tuple[str, float]] = set()
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metas = typing.get_args(annotation)
        for meta in (m for m in metas if isinstance(m, msgspec.Meta)):
            for key in ("ge", "gt", "le", "lt", "min_length", "max_length"):
                if getattr(meta, key) is not None:
                    found.add((key, getattr(meta, key)))
        return found | _bounds(base)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return {b for a in typing.get_args(annotation) for b in _bounds(a)}
    return found


def _stated(rules: str) -> set[tuple[str, float]]:
    """The bounds a rules cell opens with (a range, ``≥ 0``, ``0 < x ≤ 1,000``), or the
    length it gives anywhere (``1 to 200 characters``, with the dash)."""
    for pattern, keys in RANGE_RULES:
        if match := re.search(pattern, rules):
            values = (float(v.replace(",", "")) for v in match.groups())
            return set(zip(keys, values, strict=True))
    return set()


def test_schema_md_states_each_fields_bounds_as_the_model_has_them() -> None:
    """Every bound a field's row states is the model's, and every bound the model has is
    stated, in the row or once for all (integers, texts, ids)."""
    wrong = []
    for struct, name, _, rules in _schema_rows():
        bounds = _bounds(typing.get_type_hints(struct, include_extras=True)[name])
        unsaid = bounds - SAID_ONCE
        if ("max_length", 64) in bounds:
            unsaid -= SAID_ONCE_FOR_IDS
        if {(k, float(v)) for k, v in unsaid} != _stated(rules):
            wrong.append(f"{struct.__name__}.{name}: {rules!r}, the model's {sorted(unsaid)}")
    assert not wrong, "\n".join(wrong)


def _amounts(cell: str) -> list[int]:
    """``32``, ``32 MiB``, ``4,096 bytes``, ``100,000; 1,000,000`` as whole numbers."""
    amounts = []
    for number, unit in re.findall(r"([\d,]+)(?: (MiB))?", cell.split("(")[0]):
        amounts.append(int(number.replace(",", "")) * (2**20 if unit else 1))
    return amounts


def test_schema_md_update_limits_are_yupdates() -> None:
    """The table of what every update from anywhere is held to is core/yupdate.py's own
    limits, row by row."""
    from castroom.core import yupdate as y

    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    table = text.split("| limit | value |", 1)[1].split("\n\n", 1)[0]
    rows = [r.strip().strip("|").rsplit("|", 1) for r in table.splitlines()[2:]]
    limits = {
        "nesting of Y types": [y.MAX_NESTING],
        "nesting of arrays": [y.MAX_NESTING],
        "one update": [y.MAX_UPDATE_BYTES],
        "structs in one update": [y.MAX_STRUCTS],
        "structs in one incremental": [y.MAX_INCREMENTAL_STRUCTS],
        "entries in one value": [y.MAX_ENTRIES],
        "values in one update": [y.MAX_VALUES],
        "clients in one update": [y.MAX_CLIENTS, y.MAX_DELETE_RANGES],
        "a key": [y.MAX_KEY_BYTES],
        "keys of one Y.Map": [y.MAX_MAP_KEYS],
        "a stored production": [y.MAX_PRODUCTION_BYTES],
    }
    said = {}
    for what, value in rows:
        [name] = [n for n in limits if what.strip().startswith(n)]
        said[name] = _amounts(value)
    assert said == limits


@pytest.mark.parametrize("name", ["Era", "Look", "Pairing"])
def test_schema_md_names_each_nested_objects_keys_and_no_other(name: str) -> None:
    """``**Era**: `name`, ... No other keys.``: those keys are the Struct's fields, and a
    key it does not know is refused, as the page says."""
    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    paragraph = text.split(f"\n**{name}**", 1)[1].split("\n\n", 1)[0]
    assert "No other" in paragraph
    cls = getattr(model, name)
    assert set(re.findall(r"`(\w+)`", paragraph)) == set(cls.__struct_fields__)
    assert cls.__struct_config__.forbid_unknown_fields


@pytest.mark.parametrize(
    ("doc", "heading"),
    [(README, "Tested against"), (ROOT / "docs" / "deploy.md", "## Versions tested")],
)
def test_the_tested_against_versions_are_the_pinned_ones(doc: Path, heading: str) -> None:
    """The README's "Tested against" and deploy.md's "Versions tested" name each Node
    package at the version tests/interop/package.json pins (what `make test` installs
    and the tests run). Node's and Debian redis-server's are the machine's: not pinned."""
    pins = json.loads((ROOT / "tests" / "interop" / "package.json").read_text())["dependencies"]
    text = " ".join(doc.read_text(encoding="utf-8").split(heading, 1)[1].split())
    said = text.split("Debian", 1)[0]
    for package in ("yjs", "y-websocket", "@y/websocket-server", "@hocuspocus/server"):
        assert f"`{package}`" in said, package
    # "`a`, `b` and `c` 4.7.0": each named package takes the first version after it.
    for match in re.finditer(r"`([@\w/.-]+)`", said):
        version = re.search(r"\d+\.\d+\.\d+", said[match.end() :])
        assert version and pins[match.group(1)] == version.group(0), match.group(1)


def test_every_file_and_python_name_the_docs_point_to_exists() -> None:
    """A path the docs name (``tests/test_scale_out.py``, ``sync/web/src/firstsync.js``)
    is in the tree, and a dotted name (``castroom.core.costing.budget_report``) imports."""
    wrong = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for path in re.findall(
            r"(?<![\w/.-])((?:core|sync|plugins|tests|bench|docs)/[\w./-]*\w)", text
        ):
            if not (ROOT / path).exists():
                wrong.append(f"{doc.name}: no {path}")
        for name in re.findall(r"`((?:castroom\.)?(?:core|sync|plugins)\.[\w.]+)", text):
            if not _imports(name if name.startswith("castroom.") else f"castroom.{name}"):
                wrong.append(f"{doc.name}: {name} does not import")
    assert not wrong, "\n".join(wrong)


def _imports(dotted: str) -> bool:
    """Whether ``a.b.c.name`` is a module, or an attribute path from the longest module."""
    parts = dotted.split(".")
    for cut in range(len(parts), 1, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False

"""core/entry_points.py: the look at ``entry_points.txt`` files that lets castroom start
without importing importlib.metadata when no distribution declares a castroom group."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from castroom.core.entry_points import may_declare

GROUPS = ("castroom", "castroom.commands")


def _dist(root: Path, name: str, text: str, suffix: str = ".dist-info") -> None:
    info = root / f"{name}-1.0{suffix}"
    info.mkdir(parents=True)
    (info / "entry_points.txt").write_text(text)


@pytest.fixture
def only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """sys.path holding only a fresh folder (and no other distribution finder)."""
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    return tmp_path


def test_no_castroom_group_declared(only: Path) -> None:
    _dist(only, "tool", "[console_scripts]\ncastroom = castroom.core.start:main\n")
    (only / "old-1.0.egg-info").write_text("Metadata-Version: 1.0\n")  # a file, not a folder
    assert may_declare(GROUPS) is False


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("suffix", [".dist-info", ".egg-info", ".DIST-INFO"])
def test_a_declared_group_is_seen(only: Path, group: str, suffix: str) -> None:
    _dist(only, "plug", f"[console_scripts]\nx = y\n\n[ {group} ]\nname = module\n", suffix)
    assert may_declare(GROUPS) is True


def test_what_it_cannot_read_goes_to_importlib_metadata(only: Path, monkeypatch) -> None:
    (only / "plug-1.0.egg").mkdir()
    assert may_declare(GROUPS) is True
    (only / "plug-1.0.egg").rmdir()
    zipped = only / "dists.zip"
    zipped.write_bytes(b"PK\x05\x06" + bytes(18))
    monkeypatch.setattr(sys, "path", [str(only), str(zipped)])
    assert may_declare(GROUPS) is True
    monkeypatch.setattr(sys, "path", [str(only), str(only / "absent")])
    assert may_declare(GROUPS) is False

    class Finder:
        @staticmethod
        def find_distributions(context: object = None) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder()])
    assert may_declare(GROUPS) is True


PROBE = """
import json, sys
from castroom.core.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print(json.dumps("importlib.metadata" in sys.modules))
"""


def test_help_skips_importlib_metadata_unless_a_plugin_is_installed(tmp_path: Path) -> None:
    def metadata_imported(*path: str) -> bool:
        code = f"import sys; sys.path[:0] = {list(path)!r}\n" + PROBE
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return json.loads(out.stdout.splitlines()[-1])

    assert metadata_imported() is False
    _dist(tmp_path, "plug", "[castroom.commands]\nplug = plug_declared:COMMANDS\n")
    (tmp_path / "plug_declared.py").write_text("COMMANDS = {}\n")
    assert metadata_imported(str(tmp_path)) is True

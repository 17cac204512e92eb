"""Whether any installed distribution declares one of castroom's entry-point groups,
found without importing :mod:`importlib.metadata`.

Importing importlib.metadata (email, zipfile, csv, ...) is a quarter of ``castroom
--help`` (issue 14: start <= 100 ms), and most environments hold no third-party castroom
plugin. So the distributions' ``entry_points.txt`` files are looked at first, on the
same paths importlib.metadata searches; only when one declares a castroom group, or a
path holds something this look cannot read (a zip, an egg, another distribution
finder), does the caller ask importlib.metadata, whose answer is the one that counts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

#: Distribution metadata folders importlib.metadata reads entry points from.
_METADATA = (".dist-info", ".egg-info")


def may_declare(groups: Iterable[str]) -> bool:
    """False only when no distribution on ``sys.path`` declares any of ``groups``."""
    wanted = {f"[{group}]" for group in groups}
    if any(_other_finder(finder) for finder in sys.meta_path):
        return True
    for entry in sys.path:
        root = entry or "."
        if os.path.isdir(root):
            if _folder_declares(root, wanted):
                return True
        elif os.path.exists(root):  # a zip of distributions: not read here
            return True
    return False


def _other_finder(finder: object) -> bool:
    """A distribution finder besides the standard path finder (it may know more)."""
    if not hasattr(finder, "find_distributions"):
        return False
    return getattr(finder, "__name__", "") != "PathFinder"


def _folder_declares(root: str, wanted: set[str]) -> bool:
    try:
        names = os.listdir(root)
    except OSError:
        return False
    for name in names:
        low = name.lower()
        if low.endswith(".egg"):  # an egg keeps its metadata elsewhere: not read here
            return True
        if low.endswith(_METADATA) and _file_declares(
            os.path.join(root, name, "entry_points.txt"), wanted
        ):
            return True
    return False


def _file_declares(path: str, wanted: set[str]) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:  # no entry points, or an egg-info file rather than a folder
        return False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]") and f"[{line[1:-1].strip()}]" in wanted:
            return True
    return False

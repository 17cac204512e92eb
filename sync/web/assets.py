"""The dashboard's built files (``static/``) and the hash of the sources they came from.

``build.mjs`` writes ``sources sha256:<hex>`` on the bundle's first line; a test compares it
with :func:`sources_hash` so a bundle that was not rebuilt after a source change fails.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
#: The files served as they are, with their media types.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "sw.js": "text/javascript; charset=utf-8",
    # The presentation page's (its HTML is served at /present: castroom.sync.presentation).
    "present.js": "text/javascript; charset=utf-8",
    "present.css": "text/css; charset=utf-8",
}
_BANNER = re.compile(rb"^/\* castroom-web sources sha256:([0-9a-f]{64}) \*/")


def source_files(root: Path = HERE) -> list[str]:
    """The sources the bundle is built from, as sorted relative paths (as build.mjs)."""
    names = [p.relative_to(root).as_posix() for p in (root / "src").rglob("*") if p.is_file()]
    return sorted([*names, "build.mjs", "package-lock.json"])


def sources_hash(root: Path = HERE) -> str:
    """SHA-256 over each source's path and bytes, exactly as build.mjs computes it."""
    digest = hashlib.sha256()
    for name in source_files(root):
        digest.update(name.encode() + b"\0")
        digest.update((root / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def built_hash(static: Path = STATIC) -> str | None:
    """The sources hash the bundle records, or None if it records none."""
    match = _BANNER.match((static / "app.js").read_bytes()[:200])
    return match.group(1).decode() if match else None


@cache
def asset(name: str) -> bytes:
    """A built file's bytes (read once per process)."""
    return (STATIC / name).read_bytes()

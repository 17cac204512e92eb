"""The ``castroom`` console script's entry point.

``castroom --version`` needs nothing but the installed version, so it is answered here,
without importing the command line, its plugins or pycrdt (issue 14: start <= 100 ms);
everything else goes to :func:`castroom.core.cli.main`.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from importlib.metadata import version

        # The same line as click's version_option on the full command line.
        print(f"castroom, version {version('castroom')}")
        return
    from .cli import main as run

    run(argv)

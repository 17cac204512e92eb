"""The ``castroom`` console script's entry point.

``castroom --version`` needs nothing but castroom's version, so it is answered here,
without importing the command line, its plugins or pycrdt (issue 14: start <= 100 ms);
everything else goes to :func:`castroom.core.cli.main`.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from . import __version__

        # The same line as click's version_option on the full command line. Not read
        # from the installed metadata: importing importlib.metadata doubles this
        # command's time (a test holds __version__ to the metadata's version).
        print(f"castroom, version {__version__}")
        return
    from . import collector
    from .cli import main as run

    collector.ends_with_command()
    try:
        run(argv)
    finally:
        # The process ends here: spare it the final cyclic collection over everything
        # the command read (about 1 s of CPU after a 50,000-talent check; issue 14).
        # Objects are still freed as usual; only the collector's walk is skipped.
        import gc

        gc.freeze()

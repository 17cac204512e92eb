"""Run every ``bench/bench_*.py`` module's ``main()`` in name order.

``python -m bench`` runs them all; ``python -m bench core sync`` (or ``bench_core``) runs
only the named ones.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def discover() -> list[str]:
    """The benchmark modules, by name, in name order."""
    here = Path(__file__).parent
    return sorted(
        info.name for info in pkgutil.iter_modules([str(here)]) if info.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    known = discover()
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv] or known
    unknown = [w for w in wanted if w not in known]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return 2
    missed = []
    for name in wanted:
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        try:
            module.main()
        except SystemExit as exc:  # a module that missed a target says so by exiting 1
            if exc.code:
                missed.append(name)
    if missed:
        print(f"missed a target: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

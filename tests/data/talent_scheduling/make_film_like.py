"""Writes the film-like instances film{n}x{m}s{seed}.dzn (fixed seeds: the files are
what the tests and bench/bench_schedule.py read; run it again only to add sizes).

Made like the published film instances (film105: 8 actors, 18 scenes; each actor in 2
to 9 of them, costs 4-40 a day, scenes of one day, a few of two): actor ``a`` is in each
scene with probability ``p_a`` drawn from 0.1-0.5, costs 1-40 a day, a scene lasts two
days with probability 1/6, else one; every scene has someone in it and its own cast, and
no actor is in one scene only, so ``n`` scenes are ``n`` blocks after merging.

    python tests/data/talent_scheduling/make_film_like.py 30 8 0 [more n m seed ...]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path


def film_like(n: int, m: int, seed: int) -> tuple[list[int], list[int], list[list[int]]]:
    """(durations, costs, ia) with ``ia[a][s] = 1`` when actor a is in scene s."""
    rng = random.Random(seed)
    while True:
        p = [rng.uniform(0.1, 0.5) for _ in range(m)]
        casts: list[int] = []
        seen: set[int] = set()
        for _ in range(100 * n):
            cast = sum(1 << a for a in range(m) if rng.random() < p[a])
            if cast and cast not in seen:
                seen.add(cast)
                casts.append(cast)
            if len(casts) == n:
                break
        durations = [2 if rng.random() < 1 / 6 else 1 for _ in range(n)]
        costs = [rng.randint(1, 40) for _ in range(m)]
        ia = [[cast >> a & 1 for cast in casts] for a in range(m)]
        if len(casts) == n and all(sum(row) >= 2 for row in ia):
            return durations, costs, ia


def dzn(n: int, m: int, seed: int) -> str:
    durations, costs, ia = film_like(n, m, seed)
    rows = "\n".join(",".join(map(str, row)) + "|" for row in ia)
    return (
        f"% film-like, {m} actors x {n} scenes, seed {seed} (make_film_like.py)\n"
        f"numScenes = {n};\nnumActors = {m};\nia = [|\n{rows}];\n"
        f"c = [{','.join(map(str, costs))}];\nd = [{','.join(map(str, durations))}];\n"
    )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    for n, m, seed in zip(args[::3], args[1::3], args[2::3], strict=True):
        path = Path(__file__).parent / f"film{n}x{m}s{seed}.dzn"
        path.write_text(dzn(n, m, seed))
        print(path.name)

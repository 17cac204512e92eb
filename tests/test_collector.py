"""core/collector.py: the cyclic collector paused around bounded heavy work."""

from __future__ import annotations

import gc

from castroom.core.collector import paused


def test_paused_nests_and_gives_the_collector_back() -> None:
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # still inside the outer pause
    assert gc.isenabled()
    try:
        with paused():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()  # it was off before: left off
    finally:
        gc.enable()


def test_a_command_that_ends_its_process_freezes_what_it_made() -> None:
    """In the console script's process, what a command's pause let live is frozen at
    its end, so no later collection walks it; anywhere else nothing is frozen."""
    import subprocess
    import sys

    probe = (
        "import gc\n"
        "from castroom.core import collector\n"
        "def run():\n"
        "    with collector.paused(command=True):\n"
        "        keep = [[i] for i in range(10_000)]\n"
        "    return keep\n"
        "import sys\n"
        "if sys.argv[1] == 'ending':\n"
        "    collector.ends_with_command()\n"
        "before = gc.get_freeze_count()\n"
        "kept = run()\n"
        "print(gc.isenabled(), gc.get_freeze_count() - before >= 10_000)\n"
    )
    for how, frozen in (("ending", "True"), ("staying", "False")):
        done = subprocess.run(
            [sys.executable, "-c", probe, how], capture_output=True, text=True, check=True
        )
        assert done.stdout.split() == ["True", frozen]

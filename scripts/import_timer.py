"""Time one import statement in a fresh interpreter, with bytecode cached as a real install has it.

Used by the import benchmarks (`scripts/bench_import.py`, `scripts/bench_logger_targets.py --only import`).

Installers compile bytecode (pip does by default), and Python writes it on first import of an editable tree, so a
user's import reads `.pyc` files. A shell that sets PYTHONDONTWRITEBYTECODE (as CI images and sandboxes often
do) would make every timed round compile every module from source, on both sides, and the figure would then
measure the compiler rather than the import (about 60 of 105 ms for `from tally import Tally`). So the children
run without that variable, whatever this process's environment says, and `warm()` runs each statement once,
untimed, which writes the bytecode of exactly the modules it imports (for both venvs and for this checkout's
src/ and generated/ trees). This is cheaper and more exact than compiling whole site-packages folders with
compileall, and needs only that the venvs be writable, which ours (made by uv or `make install`) are.
"""

from __future__ import annotations

import os
import statistics
import subprocess
from collections.abc import Mapping
from pathlib import Path

__all__ = ["bytecode_env", "median_seconds", "timed", "warm"]


def bytecode_env() -> dict[str, str]:
    """This environment without PYTHONDONTWRITEBYTECODE (see the module's docstring)."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(python: str | Path, statement: str) -> float:
    """Seconds `statement` takes in a fresh `python` (interpreter start-up not counted)."""
    code = (
        "import sys, time\n"
        "assert not sys.dont_write_bytecode, 'bytecode writing is off: the figure would count compilation'\n"
        f"t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    )
    done = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, env=bytecode_env()
    )
    return float(done.stdout)


def warm(sides: list[tuple[str | Path, str]]) -> None:
    """Run each (python, statement) once, untimed: writes the bytecode of every module it imports."""
    for python, statement in sides:
        timed(python, statement)


def median_seconds(sides: Mapping[str, tuple[str | Path, str]], rounds: int) -> dict[str, float]:
    """Each side's median of `rounds` timed imports, after one untimed round (`warm`); the sides take turns, in
    alternating order from round to round, so that all see the same machine noise."""
    warm(list(sides.values()))
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for index in range(rounds):
        for name in names if index % 2 == 0 else reversed(names):
            times[name].append(timed(*sides[name]))
    return {name: statistics.median(values) for name, values in times.items()}

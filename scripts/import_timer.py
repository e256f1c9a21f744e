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
import subprocess
from pathlib import Path

__all__ = ["bytecode_env", "timed", "warm"]


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

"""Fresh virtual environments holding Tally's bare install (or any other requirements), made with uv.

Used by the bare-install test (`tests/install/`) and by the import benchmark (`scripts/bench_import.py`):

    wheel = build_wheel(scratch)                         # `uv build --wheel` of this checkout
    python = make_venv(scratch / "bare", [str(wheel)])   # a venv with the wheel and its required deps only
    extras_packages()                                    # every package an extra names, from pyproject.toml

Installs try uv's cache first (`--offline`), so a machine that ran `make install` needs no network; they fall
back to the package index when the cache misses something.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["ROOT", "build_wheel", "extras_packages", "make_venv", "uv_command", "venv_python"]


def uv_command() -> list[str]:
    """How to run uv here: the `uv` on PATH, else the one installed into this Python (scripts/ensure-uv.sh)."""
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def _checked(command: list[str]) -> None:
    result = _run(command)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


def build_wheel(out_dir: Path) -> Path:
    """Build this checkout's wheel into `out_dir` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _checked([*uv_command(), "build", "--wheel", "--no-progress", "--out-dir", str(out_dir), str(ROOT)])
    wheels = sorted(out_dir.glob("tally_metrics-*.whl"))
    if not wheels:
        raise RuntimeError(f"uv build wrote no tally_metrics wheel into {out_dir}")
    return wheels[-1]


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def make_venv(venv: Path, requirements: list[str]) -> Path:
    """A new venv at `venv` (this interpreter's version) with `requirements` installed; returns its python."""
    _checked([*uv_command(), "venv", "--no-progress", "--python", sys.executable, str(venv)])
    python = venv_python(venv)
    install = [*uv_command(), "pip", "install", "--no-progress", "--python", str(python), *requirements]
    if _run([*install, "--offline"]).returncode != 0:
        _checked(install)
    return python


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def extras_packages(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, set[str]]:
    """{extra: the distribution names it adds}, read from `[project.optional-dependencies]`; an extra that names
    `tally-metrics[...]` itself (as `all` does) contributes nothing of its own."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = _normalise(data["project"]["name"])
    result: dict[str, set[str]] = {}
    for extra, requirements in data["project"]["optional-dependencies"].items():
        names = {
            _normalise(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]) for requirement in requirements
        }
        result[extra] = names - {project}
    return result

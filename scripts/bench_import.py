"""Import time of the bare install against `import httpx` alone, each in its own fresh venv and process.

Two venvs are built in a scratch folder with uv (`scripts/bare_venv.py`): one with this checkout's wheel and
its required dependencies only (the bare install), one with only httpx, at the version the wheel resolves.
Each figure is the median over interleaved rounds of a fresh `python -c` timing its own import, so that
interpreter start-up is not counted and both sides see the same machine noise. Bytecode is written by a
first, untimed round, whatever PYTHONDONTWRITEBYTECODE says (`scripts/import_timer.py` says why).

    uv run python scripts/bench_import.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bare_venv import build_wheel, make_venv
from import_timer import median_seconds

TARGET = 1.30

Report = Callable[[str, str, float | None, str, bool], None]


def _version(python: Path, module: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def measure(rounds: int, report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="tally-bench-import-") as scratch:
        root = Path(scratch)
        bare = make_venv(root / "bare", [str(build_wheel(root / "dist"))])
        httpx_only = make_venv(root / "httpx", [f"httpx=={_version(bare, 'httpx')}"])
        sides = {
            "import tally": (bare, "import tally"),
            "from tally import Tally": (bare, "from tally import Tally"),
            "import httpx": (httpx_only, "import httpx"),
        }
        median = median_seconds(sides, rounds)
    base = median["import httpx"]
    ratio = median["import tally"] / base
    report(
        "import tally (bare venv) vs import httpx (httpx-only venv)",
        f"{median['import tally'] * 1000:.1f} ms (httpx {base * 1000:.1f} ms)",
        ratio,
        f"<= {TARGET:.2f}",
        ratio <= TARGET,
    )
    client_ratio = median["from tally import Tally"] / base
    # Informational, no target: what a program that makes a client pays (httpx, msgspec, the sync client).
    print(
        f"  from tally import Tally (bare venv) vs import httpx | "
        f"{median['from tally import Tally'] * 1000:.1f} ms | {client_ratio:.3f} | (informational) | -",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()

    def show(name: str, figure: str, ratio: float | None, target: str, passed: bool) -> None:
        shown = "" if ratio is None else f"{ratio:.3f}"
        print(f"  {name} | {figure} | {shown} | {target} | {'PASS' if passed else 'MISS'}")

    measure(args.rounds, show)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

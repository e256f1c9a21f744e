"""The picture in the README's CLI section, made by the CLI itself: `make docs-images` writes
docs/images/curves.png, and `tests/sdk/integration/test_readme_plot.py` checks that the committed file is what
this script makes now (pixel for pixel), so the picture cannot drift from the code.

It starts an embedded reference server, logs three deterministic training runs (seeded noise), and runs
`tally metrics plot ... --smooth 10 --output PATH` in a subprocess, as a user would.

    uv run python scripts/readme_plot.py [PATH]      # default: docs/images/curves.png
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "docs" / "images" / "curves.png"
RUNS = {"lr=3e-4": 0.6, "lr=1e-3": 1.0, "lr=3e-3": 1.7}
STEPS = 400
COMMAND = [
    "metrics",
    "plot",
    "--name",
    "train/loss",
    "--metadata",
    "split=train",
    "--smooth",
    "10",
    "--log-y",
]


def make(path: Path) -> Path:
    """Write the picture to `path` and return it."""
    from tally.embedded import start_embedded

    rng = random.Random(12)
    with start_embedded() as server, server.client() as client:
        ids = []
        for name, speed in RUNS.items():
            experiment = client.experiments.create(name)
            events = [
                {
                    "name": "train/loss",
                    "value": 2.3 * math.exp(-speed * step / 120) + 0.08 + 0.04 * rng.random(),
                    "step": step,
                    "metadata": {"split": "train"},
                }
                for step in range(STEPS)
            ]
            client.metrics.ingest(experiment.id, events)
            ids.append(experiment.id)
        env = {**os.environ, "TALLY_API_KEY": server.api_key, "TALLY_BASE_URL": server.url}
        command = [sys.executable, "-m", "tally.cli", *COMMAND[:2], *ids, *COMMAND[2:], "--output", str(path)]
        subprocess.run(command, env=env, check=True, capture_output=True)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    print(f"wrote {make(target)}")

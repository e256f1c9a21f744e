"""The runs the dashboard's browser tests (and the README's screenshots) look at, written through the SDK.

Three runs of a small sweep with `train/loss` and `val/loss` curves, one long curve of 200,000 points with a
one-step spike, an annotation, and a run whose name and metadata are HTML meant to run script (it must show as
text). Returns what the tests look for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tally import Tally

SPIKE_STEP = 123_457
SPIKE_VALUE = 50.0
LONG_POINTS = 200_000
XSS_NAME = '<img src=x onerror="window.__xss=1">'
XSS_METADATA = {"note": "<script>window.__xss=2</script>", "html": '<b onmouseover="window.__xss=3">bold</b>'}


@dataclass
class Seeded:
    sweep: list[str] = field(default_factory=list)  # ids of the three sweep runs, by lr ascending
    long: str = ""  # the run with the 200,000-point curve
    xss: str = ""


def _curve(steps: int, lr: float, offset: float) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for step in range(steps):
        train = 2.5 * math.exp(-step * lr * 40) + offset + 0.03 * math.sin(step / 3)
        events.append({"name": "train/loss", "value": train, "step": step})
        if step % 10 == 9:
            events.append(
                {"name": "val/loss", "value": train + 0.08 + 0.02 * math.cos(step / 7), "step": step}
            )
    return events


def seed(client: Tally) -> Seeded:
    out = Seeded()
    folder = client.folders.create("sweeps")
    for lr, offset in ((0.0001, 0.35), (0.0003, 0.2), (0.001, 0.28)):
        experiment = client.experiments.create(
            f"resnet-lr{lr}",
            folder_id=folder.id,
            metadata={"lr": lr, "optimizer": "adam", "batch_size": 128},
            tags=["sweep", "resnet"],
        )
        client.metrics.ingest(experiment.id, _curve(400, lr, offset))
        client.experiments.update_status(experiment.id, "completed")
        out.sweep.append(experiment.id)
    client.annotations.create(out.sweep[1], "lr warm-up ends", step=100)

    long = client.experiments.create("long-run", metadata={"lr": 0.0003, "optimizer": "sgd"}, tags=["long"])
    events = [
        {
            "name": "loss",
            "value": SPIKE_VALUE if step == SPIKE_STEP else 1.0 + 0.1 * math.sin(step / 500),
            "step": step,
        }
        for step in range(LONG_POINTS)
    ]
    client.metrics.ingest(long.id, events)
    out.long = long.id

    xss = client.experiments.create(XSS_NAME, metadata=XSS_METADATA, tags=["xss"])
    client.metrics.ingest(
        xss.id, [{"name": "loss", "value": 1.0, "step": 1, "metadata": {"split": "<svg onload=alert(1)>"}}]
    )
    client.annotations.create(xss.id, '<img src=x onerror="window.__xss=4">', step=1)
    out.xss = xss.id
    return out


def seed_million(client: Tally) -> str:
    """An experiment with a 1,000,000-point curve (`loss`), sent as pre-built batches: its id."""
    experiment = client.experiments.create("million", tags=["long"])
    for start in range(0, 1_000_000, 10_000):
        batch = [
            {"name": "loss", "value": math.sin(step / 1000), "step": step, "client_event_id": f"m{step}"}
            for step in range(start, start + 10_000)
        ]
        # readable at once only where it matters: after the last batch
        client.metrics.ingest(experiment.id, batch, sync=start == 990_000)
    return experiment.id

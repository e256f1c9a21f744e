"""Decoding a page straight into the public types, against `json.loads` of the same bytes, in one process.

The public types are generated (`generated/tally_api_types`); this keeps their decoding cost honest: a page of
1,000 metric points (the size `metrics.list` reads in bulk) decoded into `Page[tally.MetricPoint]` by msgspec,
against plain `json.loads` to dicts, interleaved so both sides see the same machine noise. A generator that made
decoding validate constraints (as datamodel-code-generator's `msgspec.Meta` does: 1.7x slower on a page of
experiments) would miss the target.

    uv run python scripts/bench_types.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import msgspec

import tally

TARGET = 0.60
POINTS = 1000

Report = Callable[[str, str, float | None, str, bool], None]


def page_bytes(points: int = POINTS) -> bytes:
    data = [
        {
            "name": "train/loss",
            "value": 1.0 / (step + 1),
            "step": step,
            "timestamp": "2026-11-23T10:00:00Z",
            "metadata": {"split": "train"},
            "client_event_id": f"evt-{step:08d}",
        }
        for step in range(points)
    ]
    return json.dumps({"data": data, "next_cursor": "cursor"}).encode()


def measure(rounds: int, report: Report, *, repeat: int = 30) -> None:
    body = page_bytes()
    decoder = msgspec.json.Decoder(tally.Page[tally.MetricPoint])
    assert len(decoder.decode(body).data) == POINTS
    sides: dict[str, Callable[[], object]] = {
        "typed": lambda: decoder.decode(body),
        "json": lambda: json.loads(body),
    }
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, side in sides.items():
            start = time.perf_counter()
            for _ in range(repeat):
                side()
            samples[name].append((time.perf_counter() - start) / repeat)
    typed = statistics.median(samples["typed"])
    plain = statistics.median(samples["json"])
    ratio = typed / plain
    report(
        f"decode a {POINTS}-point page into public types vs json.loads",
        f"{typed * 1e3:.3f} ms (json.loads {plain * 1e3:.3f} ms)",
        ratio,
        f"<= {TARGET:.2f}",
        ratio <= TARGET,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()

    def show(name: str, figure: str, ratio: float | None, target: str, passed: bool) -> None:
        print(f"  {name} | {figure} | {ratio:.3f} | {target} | {'PASS' if passed else 'MISS'}")

    measure(args.rounds, show)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

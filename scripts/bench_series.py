"""The downsampled series (`getMetricSeries`), for `make bench` (`--only series`).

- Series against the page walk: `client.metrics.series(...)` of a 1,000,000-point curve in 1,000 buckets against
  reading the same curve whole through the SDK (`client.metrics.list`, pages of 1,000). Target: <= 0.02.
- Growth: the same series call on a 1,000,000-point curve against a 10,000-point one. Target: <= 3. The server
  keeps per-block rollups at ingest, so the call reads about as many rows at both sizes.

One server process on a file database; both curves are one metric with one label set, a point per step; rounds
are interleaved and the figures are medians (`--quick`: 200,000 points instead of 1,000,000).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

__all__ = ["run"]

Report = Callable[[str, str, float | None, str, bool], None]
ServerProcess = Callable[..., AbstractContextManager[tuple[str, str]]]

_NAME = "train/loss"


def _seed(client: Any, points: int, label: str) -> str:
    experiment = client.experiments.create(label)
    for start in range(0, points, 10_000):
        events = [
            {"name": _NAME, "value": 1.0 / (1 + step), "step": step, "client_event_id": f"{label}-{step}"}
            for step in range(start, min(start + 10_000, points))
        ]
        client.metrics.ingest(experiment.id, events)
    return str(experiment.id)


def _median_seconds(call: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(report: Report, server_process: ServerProcess, *, quick: bool) -> None:
    from tally import Tally

    big, small = (200_000 if quick else 1_000_000), 10_000
    with (
        tempfile.TemporaryDirectory(prefix="tally-bench-series-") as scratch,
        server_process(Path(scratch) / "series.sqlite3") as (url, api_key),
        Tally(api_key=api_key, base_url=url) as client,
    ):
        big_id, small_id = _seed(client, big, "series-big"), _seed(client, small, "series-small")

        def series(experiment_id: str, points: int) -> Callable[[], None]:
            def call() -> None:
                found = client.metrics.series(experiment_id, _NAME, max_points=1000)
                assert found.total_points == points, found.total_points
                assert 250 <= len(found.buckets) <= 1000, len(found.buckets)

            return call

        def walk() -> None:
            read = sum(1 for _ in client.metrics.list(big_id, name=_NAME, page_size=1000))
            assert read == big, read

        for call in (series(big_id, big), series(small_id, small)):
            call()  # warm
        big_s, small_s, walk_s = [], [], []
        for _ in range(3):  # interleaved: the machine's drift falls on all three sides alike
            big_s.append(_median_seconds(series(big_id, big), 7))
            small_s.append(_median_seconds(series(small_id, small), 7))
            walk_s.append(_median_seconds(walk, 1))
    big_t, small_t, walk_t = statistics.median(big_s), statistics.median(small_s), statistics.median(walk_s)
    ratio = big_t / walk_t
    report(
        f"series of a {big:,}-point curve (1,000 buckets) vs the SDK page walk",
        f"{big_t * 1000:.1f} ms vs {walk_t:.2f} s",
        ratio,
        "<= 0.02",
        ratio <= 0.02,
    )
    growth = big_t / small_t
    report(
        f"series at {big:,} points vs at {small:,}",
        f"{big_t * 1000:.1f} ms vs {small_t * 1000:.1f} ms",
        growth,
        "<= 3",
        growth <= 3,
    )

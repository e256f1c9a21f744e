"""A run's system metrics sampler and capture, for `make bench` (`scripts/bench.py --only system`), or alone:

    uv run python scripts/bench_system.py [--quick]

1. The sampler's cost on the training loop: the CPU time its thread spends per sample (`time.thread_time`,
   reading psutil's counters and spooling the values, against the live server), as a share of one core at the
   default interval of 10 s. Target: at most 1%. The thread samples every 0.02 s here, so that a few hundred
   samples take seconds; the cost of one sample does not depend on the interval.
2. `run.log()` per value (10 metrics a step) with capture and the sampler on (the defaults) against both off
   (`capture=False, system_metrics_interval=0`), rounds interleaved, offline runs (the spool alone, no sender):
   ratio on / off. Also with the sampler at 0.1 s, 100 times denser than the default, so that it samples during
   the loop at all. Target: the defaults cost nothing a training loop can see (ratio <= 1.1).
3. Informational: the CPU time of the capture (git in a subprocess, the packages list), once per run start on a
   thread of its own (the packages list is read once per process).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

__all__ = ["run"]

Report = Callable[[str, str, float | None, str, bool], None]
ServerProcess = Callable[..., AbstractContextManager[tuple[str, str]]]
METRICS = 10
DEFAULT_INTERVAL = 10.0


def _sampler_cost(url: str, api_key: str, samples: int) -> tuple[float, int]:
    """CPU seconds per sample of a run's sampler, spooling to a live server."""
    from tally import Tally

    with Tally(api_key=api_key, base_url=url) as client:
        with client.run(f"bench-system-{time.time_ns()}", capture=False, system_metrics_interval=0.02) as run:
            sampler = run._sampler
            assert sampler is not None
            deadline = time.monotonic() + 120
            while sampler.samples < samples and time.monotonic() < deadline:
                time.sleep(0.05)
            taken, seconds = sampler.samples, sampler.cpu_seconds
        assert run.status().rejected == 0
    return seconds / max(taken, 1), taken


def _log_per_value(steps: list[dict[str, float]], **options: Any) -> list[int]:
    """Nanoseconds of each `log()` of an offline run with `options`."""
    from tally import Tally

    timings = [0] * len(steps)
    clock = time.perf_counter_ns
    with (
        contextlib.redirect_stderr(io.StringIO()),  # each offline run says where its spool is kept
        Tally(offline=True) as client,
        client.run(f"bench-log-{time.time_ns()}", **options) as run,
    ):
        if options.get("capture", True) and run._capture is not None:
            run._capture.join(
                30
            )  # the capture is spooled before the loop (it is, in a real job's first seconds)
        for step, metrics in enumerate(steps):
            t0 = clock()
            run.log(metrics, step=step)
            timings[step] = clock() - t0
    return timings


def _capture_cpu() -> float:
    """CPU seconds of one capture, its git subprocesses' included."""
    from tally.run._capture import Capture, collect

    def cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    started = cpu()
    collect(Capture())
    return cpu() - started


def run(report: Report, server_process: ServerProcess, *, quick: bool) -> None:
    samples = 100 if quick else 400
    steps_count = 20_000 if quick else 100_000
    rounds = 1 if quick else 3
    cold_capture = _capture_cpu()  # the first in this process: the packages are read
    warm_capture = _capture_cpu()
    with tempfile.TemporaryDirectory(prefix="tally-bench-system-") as scratch:
        os.environ["TALLY_SPOOL_DIR"] = scratch
        with server_process(Path(scratch) / "system.sqlite3") as (url, api_key):
            per_sample, taken = _sampler_cost(url, api_key, samples)
        share = per_sample / DEFAULT_INTERVAL
        report(
            "system metrics sampler: CPU per sample, share of one core at 10 s",
            f"{per_sample * 1e3:.3f} ms a sample ({taken} samples), {share * 100:.4f}% of a core",
            None,
            "<= 1% of a core",
            share <= 0.01,
        )
        steps = [
            {f"bench/metric_{i}": 1.0 / (1 + s * 10 + i) for i in range(METRICS)} for s in range(steps_count)
        ]
        sides: dict[str, dict[str, Any]] = {
            "off": {"capture": False, "system_metrics_interval": 0},
            "defaults": {},
            "sampler at 0.1 s": {"system_metrics_interval": 0.1},
        }
        medians: dict[str, list[float]] = {name: [] for name in sides}
        p99s: dict[str, list[float]] = {name: [] for name in sides}
        gc.collect()
        gc.freeze()
        for index in range(rounds):
            order = list(sides) if index % 2 == 0 else list(sides)[::-1]
            for name in order:
                timings = sorted(_log_per_value(steps, **sides[name]))
                medians[name].append(statistics.median(timings) / METRICS / 1000)
                p99s[name].append(timings[int(len(timings) * 0.99)] / METRICS / 1000)
        gc.unfreeze()
    off = statistics.median(medians["off"])
    for name in ("defaults", "sampler at 0.1 s"):
        on = statistics.median(medians[name])
        report(
            f"run.log() per value, capture + sampler ({name}) vs both off",
            f"median {on:.3f} vs {off:.3f} us, p99 {statistics.median(p99s[name]):.3f} vs "
            f"{statistics.median(p99s['off']):.3f} us",
            on / off,
            "<= 1.1",
            on / off <= 1.1,
        )
    report(
        "capture at a run's start (its own thread; packages read once per process)",
        f"{cold_capture * 1e3:.1f} ms of CPU the first time, {warm_capture * 1e3:.1f} ms after",
        None,
        "informational",
        True,
    )


def main() -> int:
    sys.path.insert(0, os.path.dirname(__file__))
    from bench import report, server_process

    run(report, server_process, quick="--quick" in sys.argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The training-loop logger's figures for `make bench` (`scripts/bench.py --only logger`), or alone:

    uv run python scripts/bench_logger.py [--quick] [--outage-values 10000000]

1. `run.log()` of a step with 10 metrics, spool on, sender running against the server: median and p99 per value
   (target <= 1.5 us; wandb offline `run.log` measured 15 us per value on this kind of machine).
2. End to end into the reference server (its own process): 1,000,000 values logged through a run (from the first
   `log()` until `flush()` says all is stored) against `client.metrics.ingest` of the same number of values in
   pre-built 10,000-event batches, rounds interleaved; target: the run at least as many values per second. The
   run is measured with both senders (`sender="thread"`, and `"process"`, the default on Linux, its child
   included).
3. With the server down (nothing listens), logging 10,000,000 values in a fresh process, with the default sender:
   RSS growth (target <= 50 MB) and spool bytes per value.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Report = Callable[[str, str, float | None, str, bool], None]
METRICS = 10


def _steps(count: int) -> list[dict[str, float]]:
    return [{f"bench/metric_{i}": 1.0 / (1 + step * 10 + i) for i in range(METRICS)} for step in range(count)]


def bench_logger(
    url: str, api_key: str, report: Report, *, quick: bool, outage_values: int | None = None
) -> None:
    from tally import Tally

    values = 100_000 if quick else 1_000_000
    rounds = 1 if quick else 3
    step_values = _steps(values // METRICS)
    events = [
        {
            "name": f"bench/metric_{i % METRICS}",
            "value": 1.0 / (1 + i),
            "step": i // METRICS,
            "metadata": {"split": "train"},
            "client_event_id": f"ingest-{i}",
        }
        for i in range(values)
    ]
    batches = [events[i : i + 10_000] for i in range(0, values, 10_000)]
    # What a run sends for the same values: each event also carries its log() time, and a run-style id
    # (`<run_key>.<seq>.<index>`, one run key for the whole run, as `_sender` builds it). A run key that changed
    # from event to event would scatter the inserts over the server's (experiment, client_event_id) index and
    # measure that instead: 79,000 against 185,000 events/s on 2026-12-03.
    from tally.run._sender import rfc3339

    stamp = rfc3339(time.time())
    run_key = "1a2b3c4d"
    like = [
        {**event, "timestamp": stamp, "client_event_id": f"{run_key}.{i // METRICS:x}.{i % METRICS}"}
        for i, event in enumerate(events)
    ]
    like_batches = [like[i : i + 10_000] for i in range(0, values, 10_000)]
    # The 2,000,000 pre-built events are the bench's, not the program's: out of the collector's reach, or every
    # full collection during a side (the run's sender allocates most) walks them and the run measures this
    # process's heap (0.69 of ingest with them tracked, 2026-12-03).
    gc.collect()
    gc.freeze()
    run_seconds: list[float] = []
    process_seconds: list[float] = []  # the same run with sender="process"
    ingest_seconds: list[float] = []
    like_seconds: list[float] = []
    per_step_ns: list[int] = []
    with tempfile.TemporaryDirectory(prefix="tally-bench-spool-") as spool:
        os.environ["TALLY_SPOOL_DIR"] = spool
        with Tally(api_key=api_key, base_url=url) as client:

            def through_a_run(sender: str, seconds: list[float]) -> Callable[[int], None]:
                return lambda index: _through_a_run(sender, seconds, index)

            def _through_a_run(sender: str, seconds: list[float], index: int) -> None:
                timings = [0] * len(step_values)
                clock = time.perf_counter_ns
                gc.collect()
                started = time.perf_counter()
                with client.run(
                    f"bench-run-{index}-{time.time_ns()}",
                    flush_timeout=600,
                    sender=sender,  # type: ignore[arg-type]
                ) as run:
                    for step, metrics in enumerate(step_values):
                        t0 = clock()
                        run.log(metrics, step=step, metadata={"split": "train"})
                        timings[step] = clock() - t0
                    run.flush(timeout=600)
                    seconds.append(time.perf_counter() - started)  # (closing marks it completed: not timed)
                assert run.status().stored >= values, run.status()  # (+ the sampler's own, every 10 s)
                if sender == "thread":
                    per_step_ns.extend(timings)

            def ingest(chunks: list[list[dict[str, Any]]], seconds: list[float]) -> Callable[[int], None]:
                def side(index: int) -> None:
                    gc.collect()
                    started = time.perf_counter()  # from creating the experiment, as client.run() does
                    experiment = client.experiments.create(f"bench-ingest-{index}-{time.time_ns()}")
                    for batch in chunks:
                        client.metrics.ingest(experiment.id, batch)
                    seconds.append(time.perf_counter() - started)

                return side

            sides = [
                through_a_run("thread", run_seconds),
                ingest(batches, ingest_seconds),
                ingest(like_batches, like_seconds),
                through_a_run("process", process_seconds),
            ]
            for index in range(rounds):
                for side in sides if index % 2 == 0 else sides[::-1]:
                    side(index)
    gc.unfreeze()  # the benchmarks that follow in this process get an ordinary collector back
    per_step_ns.sort()
    median_us = statistics.median(per_step_ns) / METRICS / 1000
    p99_us = per_step_ns[int(len(per_step_ns) * 0.99)] / METRICS / 1000
    report(
        "run.log() per value (10 metrics/step, spool on)",
        f"median {median_us:.2f} us, p99 {p99_us:.2f} us",
        None,
        "median <= 1.5 us",
        median_us <= 1.5,
    )
    run_rate = values / statistics.median(run_seconds)
    ingest_rate = values / statistics.median(ingest_seconds)
    like_rate = values / statistics.median(like_seconds)
    report(
        f"end to end, {values:,} values: run (sender='thread') vs ingest of 10k batches",
        f"{run_rate:,.0f} vs {ingest_rate:,.0f} values/s",
        run_rate / ingest_rate,
        ">= 1.0",
        run_rate >= ingest_rate,
    )
    report(
        "  the same, against ingest of events as a run sends them (timestamp, run-style id)",
        f"{run_rate:,.0f} vs {like_rate:,.0f} values/s",
        run_rate / like_rate,
        ">= 1.0",
        run_rate >= like_rate,
    )
    process_rate = values / statistics.median(process_seconds)
    report(
        "  the same run with sender='process' (the default on Linux), against ingest of 10k batches",
        f"{process_rate:,.0f} vs {ingest_rate:,.0f} values/s",
        process_rate / ingest_rate,
        ">= 1.0",
        process_rate >= ingest_rate,
    )
    bench_logger_outage(report, values=outage_values or (1_000_000 if quick else 10_000_000))


OUTAGE = r"""
import gc, os, sys, socket
from tally import Tally

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

values = int(sys.argv[1])
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]  # closed again: nothing listens there, the server is "down"
metrics = [f"bench/metric_{i}" for i in range(10)]
with Tally(api_key="tk_org_" + "x" * 32, base_url=f"http://127.0.0.1:{port}") as client:
    run = client.run("outage", flush_timeout=0)
    for step in range(1000):
        run.log({name: 1.0 / (1 + step + i) for i, name in enumerate(metrics)}, step=step)
    gc.collect()
    baseline = peak = rss()
    for step in range(1000, values // 10):
        run.log({name: 1.0 / (1 + step + i) for i, name in enumerate(metrics)}, step=step)
        if step % 10_000 == 0:
            peak = max(peak, rss())
    spool = run.status().spool
    size = sum(os.stat(os.path.join(spool, n)).st_blocks * 512 for n in os.listdir(spool) if n.endswith(".seg"))
    print(peak - baseline, size, run.status().pending)
    run.close()
"""


def bench_logger_outage(report: Report, *, values: int) -> None:
    """RSS growth and spool size logging `values` values with no server, in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="tally-bench-outage-") as spool:
        env = {**os.environ, "TALLY_SPOOL_DIR": spool}
        done = subprocess.run(
            [sys.executable, "-c", OUTAGE, str(values)], capture_output=True, text=True, check=True, env=env
        )
    growth, size, pending = map(int, done.stdout.split())
    assert pending == values, (pending, values)
    growth_mb = growth / 2**20
    report(
        f"server down, {values:,} values: RSS growth; spool size",
        f"+{growth_mb:.1f} MB; {size / values:.1f} bytes per value ({size / 2**20:,.0f} MiB)",
        None,
        "<= 50 MB",
        growth_mb <= 50,
    )


def main() -> int:
    import argparse

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import ROWS, report, server_process

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="100,000 values end to end, 1,000,000 in the outage"
    )
    parser.add_argument("--outage-values", type=int, default=None, help="values to log with the server down")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="tally-bench-") as scratch,
        server_process(Path(scratch) / "bench.sqlite3") as (url, api_key),
    ):
        bench_logger(url, api_key, report, quick=args.quick, outage_values=args.outage_values)
    return 0 if all(row.passed for row in ROWS) else 1


if __name__ == "__main__":
    raise SystemExit(main())

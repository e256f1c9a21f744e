"""`make bench`: the SDK measured against raw httpx on the same server, in one run.

Every figure is a ratio against a raw baseline hitting the same reference server, measured in the same process and
interleaved round by round (SDK, raw, raw, SDK, ...) so that the noise of a shared machine lands on both sides. The
server runs as a separate process (`python -m tally_server`), so the client CPU measured here is the client's alone.
Each figure is the median of several rounds; each target prints PASS or MISS.

    uv run python scripts/bench.py            # the full run (a few minutes)
    uv run python scripts/bench.py --quick    # fewer rounds and smaller sizes, to try the script itself
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_artifacts  # scripts/bench_artifacts.py: artifact upload and download of 1 GiB, and their memory
import bench_cache  # scripts/bench_cache.py: the on-disk response cache
import bench_export  # scripts/bench_export.py: the streamed export against the page walk, and its memory
import bench_logger_targets  # scripts/bench_logger_targets.py: the logger's stalls, memory and import cost
import bench_pacing  # scripts/bench_pacing.py: rate pacing against --rate-limit
import bench_postgres
import bench_runs_table
import bench_series
import bench_server_memory  # scripts/bench_server_memory.py: the SQLite server's RSS under a long load
import bench_server_scale
import bench_system  # scripts/bench_system.py: a run's system metrics sampler and capture
import bench_types  # scripts/bench_types.py: decoding pages into the generated public types
import httpx
from bench_logger import bench_logger  # scripts/bench_logger.py: the training-loop logger's figures

from tally_server.process import start_server_process

ROOT = Path(__file__).resolve().parent.parent


# ---- measurement helpers --------------------------------------------------------------------------------------
@dataclass
class Sample:
    wall: float
    cpu: float


def measure(fn: Callable[[], Any]) -> Sample:
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    fn()
    return Sample(time.perf_counter() - wall0, time.process_time() - cpu0)


def interleaved(rounds: int, sides: dict[str, Callable[[], Any]]) -> dict[str, list[Sample]]:
    """Run each side once per round, alternating the order every round."""
    results: dict[str, list[Sample]] = {name: [] for name in sides}
    names = list(sides)
    for index in range(rounds):
        order = names if index % 2 == 0 else list(reversed(names))
        for name in order:
            results[name].append(measure(sides[name]))
    return results


def median_wall(samples: list[Sample]) -> float:
    return statistics.median(s.wall for s in samples)


def median_cpu(samples: list[Sample]) -> float:
    return statistics.median(s.cpu for s in samples)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Row:
    name: str
    figure: str
    ratio: float | None
    target: str
    passed: bool

    def cells(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.3f}"
        return [self.name, self.figure, ratio, self.target, "PASS" if self.passed else "MISS"]


ROWS: list[Row] = []


def report(name: str, figure: str, ratio: float | None, target: str, passed: bool) -> None:
    row = Row(name, figure, ratio, target, passed)
    ROWS.append(row)
    print("  " + " | ".join(row.cells()), flush=True)


# ---- the server ----------------------------------------------------------------------------------------------
@contextmanager
def server_process(db: Path, extra_args: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """The reference server in its own process, on a free port, with a known org key."""
    api_key = "tk_org_" + secrets.token_urlsafe(24)
    env = {**os.environ, "TALLY_SERVER_BOOTSTRAP_KEY": api_key, "TALLY_CONFIG_DIR": str(db.parent / "config")}
    args = ["--db", str(db), "--log-level", "warning", *(extra_args or [])]
    with start_server_process(args, logs=db.parent / "server-logs", env=env, timeout=30) as server:
        yield server.url, api_key


# ---- data ------------------------------------------------------------------------------------------------------
def make_events(count: int, *, prefix: str) -> list[dict[str, Any]]:
    """`count` events over 10 metrics, each with a client_event_id, as a training loop would log them."""
    names = [f"bench/metric_{i}" for i in range(10)]
    return [
        {
            "name": names[i % 10],
            "value": 1.0 / (1 + i),
            "step": i // 10,
            "metadata": {"split": "train"},
            "client_event_id": f"{prefix}-{i}",
        }
        for i in range(count)
    ]


def batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# ---- the benchmarks --------------------------------------------------------------------------------------------
def bench_small_call(url: str, api_key: str, rounds: int, calls: int) -> None:
    from tally import Tally

    headers = {"Authorization": f"Bearer {api_key}"}
    with Tally(api_key=api_key, base_url=url, max_retries=0) as client, httpx.Client(headers=headers) as raw:
        experiment = client.experiments.create("bench-small-call")
        path = f"{url}/v1/experiments/{experiment.id}"

        def sdk() -> None:
            for _ in range(calls):
                client.experiments.get(experiment.id)

        def raw_side() -> None:
            for _ in range(calls):
                response = raw.get(path)
                response.raise_for_status()
                json.loads(response.content)

        sdk()
        raw_side()  # warm both connections
        results = interleaved(rounds, {"sdk": sdk, "raw": raw_side})
    wall = median_wall(results["sdk"]) / median_wall(results["raw"])
    cpu = median_cpu(results["sdk"]) / median_cpu(results["raw"])
    per_call = median_wall(results["sdk"]) / calls * 1e6
    report("small call, wall", f"{per_call:.0f} us/call", wall, "<= 1.10", wall <= 1.10)
    report(
        "small call, client CPU",
        f"{median_cpu(results['sdk']) / calls * 1e6:.0f} us/call",
        cpu,
        "<= 1.10",
        cpu <= 1.10,
    )


def seed_points(url: str, api_key: str, count: int, name: str) -> str:
    from tally import Tally

    with Tally(api_key=api_key, base_url=url) as client:
        experiment = client.experiments.create(name)
        for part in batches(make_events(count, prefix=name), 10_000):
            client.metrics.ingest(experiment.id, part)
        return experiment.id


def bench_bulk_read(url: str, api_key: str, rounds: int, points: int) -> None:
    from tally import Tally

    experiment_id = seed_points(url, api_key, points, "bench-bulk-read")
    headers = {"Authorization": f"Bearer {api_key}"}
    with Tally(api_key=api_key, base_url=url) as client, httpx.Client(headers=headers) as raw:

        def sdk() -> None:
            read = sum(1 for _ in client.metrics.list(experiment_id, page_size=1000))
            assert read == points, read

        def raw_side() -> None:
            read, cursor = 0, None
            while True:
                params: dict[str, Any] = {"page_size": 1000}
                if cursor:
                    params["cursor"] = cursor
                response = raw.get(f"{url}/v1/experiments/{experiment_id}/metrics", params=params)
                response.raise_for_status()
                page = json.loads(response.content)
                read += len(page["data"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert read == points, read

        results = interleaved(rounds, {"sdk": sdk, "raw": raw_side})
    ratio = median_wall(results["sdk"]) / median_wall(results["raw"])
    rate = points / median_wall(results["sdk"])
    report("read 100k points, wall", f"{rate:,.0f} points/s", ratio, "<= 1.00", ratio <= 1.00)


def bench_ingest(url: str, api_key: str, rounds: int, events_per_round: int) -> None:
    from tally import Tally

    events = make_events(events_per_round, prefix="bench-ingest")
    parts = batches(events, 10_000)
    bodies = [json.dumps({"events": part}).encode() for part in parts]
    with Tally(api_key=api_key, base_url=url) as client, httpx.Client(timeout=120) as raw:
        counter = iter(range(10_000))

        def sdk() -> None:
            experiment = client.experiments.create(f"bench-ingest-sdk-{next(counter)}")
            accepted = 0
            for part in parts:
                accepted += client.metrics.ingest(experiment.id, part).accepted
            assert accepted == events_per_round, accepted

        def raw_side() -> None:
            experiment = client.experiments.create(f"bench-ingest-raw-{next(counter)}")
            token = client.ingestion_keys.create(experiment.id, name="bench-raw").token
            target = f"{url}/v1/experiments/{experiment.id}/metrics"
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            accepted = 0
            for body in bodies:
                response = raw.post(target, content=body, headers=headers, params={"sync": "true"})
                response.raise_for_status()
                accepted += json.loads(response.content)["accepted"]
            assert accepted == events_per_round, accepted

        results = interleaved(rounds, {"sdk": sdk, "raw": raw_side})
    sdk_rate = events_per_round / median_wall(results["sdk"])
    raw_rate = events_per_round / median_wall(results["raw"])
    ratio = sdk_rate / raw_rate
    report(
        "ingest 1M events, throughput",
        f"{sdk_rate:,.0f} events/s (raw {raw_rate:,.0f})",
        ratio,
        ">= 0.90",
        ratio >= 0.90,
    )


def bench_async(url: str, api_key: str, rounds: int, calls: int, concurrency: int = 50) -> None:
    import aiohttp

    from tally import AsyncTally, Tally

    with Tally(api_key=api_key, base_url=url) as client:
        experiment_id = client.experiments.create("bench-async").id
    path = f"{url}/v1/experiments/{experiment_id}"
    headers = {"Authorization": f"Bearer {api_key}"}

    async def run_concurrently(call: Callable[[], Awaitable[None]]) -> None:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                await call()

        await asyncio.gather(*(one() for _ in range(calls)))

    async def main() -> dict[str, list[Sample]]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with (
            AsyncTally(api_key=api_key, base_url=url) as sdk_client,
            httpx.AsyncClient(headers=headers, limits=limits) as httpx_client,
            aiohttp.ClientSession(
                headers=headers, connector=aiohttp.TCPConnector(limit=concurrency)
            ) as session,
        ):

            async def sdk_call() -> None:
                await sdk_client.experiments.get(experiment_id)

            async def httpx_call() -> None:
                response = await httpx_client.get(path)
                response.raise_for_status()
                json.loads(response.content)

            async def aiohttp_call() -> None:
                async with session.get(path) as response:
                    response.raise_for_status()
                    json.loads(await response.read())

            sides = {"sdk": sdk_call, "httpx.AsyncClient": httpx_call, "aiohttp": aiohttp_call}
            for call in sides.values():  # warm every pool
                await run_concurrently(call)
            results: dict[str, list[Sample]] = {name: [] for name in sides}
            names = list(sides)
            for index in range(rounds):
                for name in names if index % 2 == 0 else list(reversed(names)):
                    gc.collect()
                    wall0, cpu0 = time.perf_counter(), time.process_time()
                    await run_concurrently(sides[name])
                    results[name].append(Sample(time.perf_counter() - wall0, time.process_time() - cpu0))
            return results

    results = asyncio.run(main())
    rates = {name: calls / median_wall(samples) for name, samples in results.items()}
    fastest = max((name for name in rates if name != "sdk"), key=rates.__getitem__)
    ratio = rates["sdk"] / rates[fastest]
    others = ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items() if name != "sdk")
    report(
        f"async, {concurrency} concurrent calls",
        f"{rates['sdk']:,.0f} calls/s ({others})",
        ratio,
        f">= 0.90 of {fastest}",
        ratio >= 0.90,
    )


def bench_import(rounds: int) -> None:
    """The bare install's import time against httpx alone, in fresh venvs: see scripts/bench_import.py."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_import

    bench_import.measure(rounds, report)


ITERATE_IN_A_FRESH_PROCESS = """
import gc, os, sys
from tally import Tally

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

url, api_key, experiment_id = sys.argv[1:4]
with Tally(api_key=api_key, base_url=url) as client:
    client.health()
    gc.collect()
    baseline = peak = rss()
    read = 0
    for read, _ in enumerate(client.metrics.list(experiment_id, page_size=1000), start=1):
        if read % 10_000 == 0:
            peak = max(peak, rss())
    print(read, peak - baseline)
"""


def bench_memory_iterating(url: str, api_key: str, points: int) -> None:
    """Peak RSS growth while iterating, in a fresh process: this one has just built a million events to seed."""
    experiment_id = seed_points(url, api_key, points, "bench-memory")
    command = [sys.executable, "-c", ITERATE_IN_A_FRESH_PROCESS, url, api_key, experiment_id]
    read, growth = map(
        int, subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    )
    assert read == points, read
    growth_mb = growth / 2**20
    report(
        f"memory, iterating {points:,} points",
        f"+{growth_mb:.1f} MB peak RSS",
        None,
        "<= 50 MB",
        growth_mb <= 50,
    )


def bench_memory_with_options(url: str, api_key: str, calls: int) -> None:
    from tally import Tally

    checkpoints: list[tuple[int, int]] = []
    with Tally(api_key=api_key, base_url=url) as client:
        step = max(calls // 10, 1)
        for index in range(calls):
            client.with_options(timeout=5.0, max_retries=1).health()
            if index % step == step - 1:
                gc.collect()
                checkpoints.append((index + 1, rss_bytes()))
    # Judge the trend after warm-up: the slope of RSS over the later 80% of the calls, scaled to the whole run.
    later = checkpoints[len(checkpoints) // 5 :]
    xs, ys = [x for x, _ in later], [y for _, y in later]
    slope = statistics.linear_regression(xs, ys).slope if len(later) >= 2 else 0.0
    trend_mb = slope * calls / 2**20
    first, last = checkpoints[0][1] / 2**20, checkpoints[-1][1] / 2**20
    figure = f"RSS {first:.1f} -> {last:.1f} MB; trend {trend_mb:+.2f} MB per {calls:,} calls"
    report(
        f"memory, {calls:,} calls with with_options", figure, None, "no growth trend (< 2 MB)", trend_mb < 2.0
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and smaller sizes")
    parser.add_argument("--only", help="run only the benchmarks whose function name contains this text")
    parser.add_argument("--logger-outage-values", type=int, help="values logged with the server down (10M)")
    args = parser.parse_args()
    quick = args.quick
    rounds = 3 if quick else 7
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    print(f"python {platform.python_version()}, httpx {httpx.__version__}; {time.strftime('%Y-%m-%d')}")
    print("  benchmark | figure | ratio (SDK / raw) | target | result")
    with (
        tempfile.TemporaryDirectory(prefix="tally-bench-") as scratch,
        server_process(Path(scratch) / "bench.sqlite3") as (url, api_key),
    ):
        benchmarks: list[Callable[[], None]] = [
            lambda: bench_small_call(url, api_key, rounds, calls=200 if quick else 1000),
            lambda: bench_bulk_read(url, api_key, rounds, points=20_000 if quick else 100_000),
            lambda: bench_ingest(url, api_key, 3, events_per_round=100_000 if quick else 1_000_000),
            lambda: bench_async(url, api_key, rounds, calls=500 if quick else 2000),
            lambda: bench_import(7 if quick else 21),
            lambda: bench_types.measure(7 if quick else 21, report),
            lambda: bench_memory_iterating(url, api_key, points=100_000 if quick else 1_000_000),
            lambda: bench_memory_with_options(url, api_key, calls=10_000 if quick else 100_000),
            lambda: bench_server_scale.run(report, server_process, quick=quick),
            lambda: bench_series.run(report, server_process, quick=quick),
            lambda: bench_server_memory.run(report, quick=quick),
            lambda: bench_logger(url, api_key, report, quick=quick, outage_values=args.logger_outage_values),
            lambda: bench_logger_targets.run(report, server_process, quick=quick),
            lambda: bench_postgres.run(report, server_process, quick=quick),
            lambda: bench_pacing.run(report, server_process, quick=quick),
            lambda: bench_runs_table.run(report, server_process, quick=quick),
            lambda: bench_cache.run(report, server_process, quick=quick),
            lambda: bench_export.run(report, quick=quick),
            lambda: bench_system.run(report, server_process, quick=quick),
            lambda: bench_artifacts.run(report, quick=quick),
        ]
        names = [
            "small_call",
            "bulk_read",
            "ingest",
            "async",
            "import",
            "types_decode",
            "memory_iterating",
            "memory_with_options",
            "server_scale",
            "series",
            "server_memory",
            "logger",
            "logger_targets",
            "postgres",
            "pacing",
            "runs_table",
            "cache",
            "export",
            "system",
            "artifacts",
        ]
        for name, benchmark in zip(names, benchmarks, strict=True):
            if args.only is None or args.only in name:
                benchmark()
    misses = [row.name for row in ROWS if not row.passed]
    print(
        f"{len(ROWS) - len(misses)} of {len(ROWS)} targets met"
        + (f"; missed: {', '.join(misses)}" if misses else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

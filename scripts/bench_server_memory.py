"""The SQLite server's memory under a long mixed load, for `make bench` (`--only server_memory`).

A server process on a file database seeded with enough points that every reader could fill a large page cache;
then 48 concurrent clients (more than the server's 40 worker threads) read pages of points at random places and
ingest small batches, in two bursts separated by an idle gap longer than anyio's 10-second worker idle time, so
that the second burst runs on new worker threads. The server's RSS is sampled from /proc/<pid>/status all along.

- Peak RSS growth over the idle server: target within the SQLite cache budget (`CACHE_BUDGET_KIB`, 128 MiB) plus
  128 MiB for the requests in flight (before the bound, each reader could keep 32 MiB: 1.3 GiB in all).
- The second burst's peak over the first's: target <= 1.2 (new worker threads reuse the readers of the retired
  ones; before, each new thread opened a connection, and a cache, that was never closed).

    uv run python scripts/bench_server_memory.py [--quick]
"""

from __future__ import annotations

import json
import os
import random
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tally_server.process import start_server_process
from tally_server.storage.database import CACHE_BUDGET_KIB

__all__ = ["run"]

Report = Callable[[str, str, float | None, str, bool], None]

CLIENTS = 48
IDLE_GAP = 11.0  # seconds: longer than anyio's WorkerThread.MAX_IDLE_TIME (10 s), so its workers are retired
_NAMES = [f"load/metric_{i}" for i in range(8)]
_MIB = 2**20


def _rss(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of `pid` in bytes."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon"):
            fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["RssAnon"]


class _Sampler:
    """The server's RSS every 0.1 s, in a thread; `peak()` of the samples since the last `mark()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(_rss(self.pid))
            self._stop.wait(0.1)

    def mark(self) -> int:
        return len(self.samples)

    def peak(self, since: int) -> int:
        return max((rss for rss, _ in self.samples[since:]), default=_rss(self.pid)[0])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _events(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": _NAMES[i % len(_NAMES)],
            "value": i * 1e-3,
            "step": i // len(_NAMES),
            "metadata": {"host": f"node-{i % 4}", "split": "train"},
            "client_event_id": f"e{i}",
        }
        for i in range(start, start + count)
    ]


def _seed(url: str, api_key: str, experiments: int, points: int) -> list[tuple[str, str]]:
    """`experiments` experiments of `points` points each; (experiment id, ingestion token) of each."""
    made = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=300) as org:
        for index in range(experiments):
            experiment = org.post("/v1/experiments", json={"name": f"memory-{index}"}).json()["id"]
            token = org.post(f"/v1/experiments/{experiment}/ingestion-keys", json={}).json()["token"]
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300
            ) as ingest:
                for start in range(0, points, 10_000):
                    body = json.dumps({"events": _events(start, min(10_000, points - start))}).encode()
                    ingest.post(
                        f"/v1/experiments/{experiment}/metrics",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    ).raise_for_status()
            made.append((experiment, token))
    return made


def _burst(url: str, api_key: str, experiments: list[tuple[str, str]], points: int, seconds: float) -> int:
    """`CLIENTS` clients for `seconds`: 9 in 10 requests read a page of up to 1,000 points somewhere, 1 in 10
    ingests 100 new events. The number of requests answered."""
    stop = time.monotonic() + seconds
    counts = [0] * CLIENTS
    failures: list[str] = []
    steps = points // len(_NAMES)

    def client(index: int) -> None:
        rng = random.Random(index)
        experiment, token = experiments[index % len(experiments)]
        headers = {"Authorization": f"Bearer {api_key}"}
        with (
            httpx.Client(base_url=url, headers=headers, timeout=120) as org,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as ingest,
        ):
            sent = 0
            while time.monotonic() < stop:
                if rng.random() < 0.1:
                    start = 10**9 + index * 10**7 + sent * 100
                    response = ingest.post(
                        f"/v1/experiments/{experiment}/metrics", json={"events": _events(start, 100)}
                    )
                else:
                    read_from, _ = experiments[rng.randrange(len(experiments))]
                    params = {"name": rng.choice(_NAMES), "min_step": rng.randrange(steps), "page_size": 1000}
                    response = org.get(f"/v1/experiments/{read_from}/metrics", params=params)
                if response.status_code >= 400:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                    return
                sent += 1
            counts[index] = sent

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"the load failed: {failures[0]}")
    return sum(counts)


def run(report: Report, *, quick: bool) -> None:
    experiments, points = (2, 100_000) if quick else (4, 250_000)
    burst = 8.0 if quick else 30.0
    api_key = "tk_org_" + secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="tally-bench-memory-") as scratch:
        env = {**os.environ, "TALLY_SERVER_BOOTSTRAP_KEY": api_key, "TALLY_CONFIG_DIR": f"{scratch}/config"}
        args = ["--db", f"{scratch}/memory.sqlite3", "--log-level", "warning"]
        server = start_server_process(args, logs=f"{scratch}/server-logs", env=env, timeout=30)
        process, url = server.process, server.url
        try:
            made = _seed(url, api_key, experiments, points)
            database_mb = Path(f"{scratch}/memory.sqlite3").stat().st_size / _MIB
            time.sleep(IDLE_GAP)  # the seeding's worker threads retire: the load starts from an idle server
            idle = _rss(process.pid)[0]
            sampler = _Sampler(process.pid)
            first_mark = sampler.mark()
            answered = _burst(url, api_key, made, points, burst)
            first_peak = sampler.peak(first_mark)
            time.sleep(IDLE_GAP)  # every worker thread of the first burst is retired
            second_mark = sampler.mark()
            answered += _burst(url, api_key, made, points, burst)
            second_peak = sampler.peak(second_mark)
            sampler.stop()
            anon_peak = max(anon for _, anon in sampler.samples)
        finally:
            process.terminate()
            process.wait(30)
    peak = max(first_peak, second_peak)
    growth_mb = (peak - idle) / _MIB
    budget_mb = CACHE_BUDGET_KIB / 1024 + 128
    report(
        f"server RSS, {CLIENTS} clients on a {database_mb:.0f} MB SQLite file",
        f"peak {peak / _MIB:.0f} MB (anonymous {anon_peak / _MIB:.0f} MB), idle {idle / _MIB:.0f} MB, "
        f"+{growth_mb:.0f} MB over {answered:,} requests in {2 * burst:.0f} s",
        None,
        f"growth <= {budget_mb:.0f} MB (cache budget + requests in flight)",
        growth_mb <= budget_mb,
    )
    ratio = second_peak / first_peak
    report(
        "server RSS, second burst on new worker threads",
        f"peak {first_peak / _MIB:.0f} MB, then {second_peak / _MIB:.0f} MB",
        ratio,
        "<= 1.20",
        ratio <= 1.2,
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller database and shorter bursts")

    def _print(name: str, figure: str, ratio: float | None, target: str, passed: bool) -> None:
        shown = "" if ratio is None else f"{ratio:.3f}"
        print(" | ".join([name, figure, shown, target, "PASS" if passed else "MISS"]), flush=True)

    run(_print, quick=parser.parse_args().quick)

"""The runs table's read, for `make bench` (`--only runs_table`): one page of 100 experiments sorted by a metric
(`GET /v1/experiments?order_by=metric:val/loss:min&page_size=100`, and its `-` twin) from an organisation of
10,000 experiments against one of 100. Target: ratio <= 1.5 (the page walks one index range, so the cost must
not grow with the number of experiments).

Each database is filled through the server's own repository before its server starts (experiments created and
their points ingested by the same code as over HTTP, so the summaries are the ones ingest keeps), one in five
experiments without the metric; then the server runs in its own process and the page is read over HTTP, the two
sizes interleaved round by round, median of the rounds.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from tally_server.ingest_batch import from_validated
from tally_server.storage.store import open_sqlite

__all__ = ["run"]

Report = Callable[[str, str, float | None, str, bool], None]
ServerProcess = Callable[..., AbstractContextManager[tuple[str, str]]]


def _seed(path: Path, experiments: int) -> None:
    repo = open_sqlite(path, fsync=False)
    try:
        repo.bootstrap(None, mint_if_existing=False)
        for i in range(experiments):
            experiment = repo.create_experiment(1, f"run-{i:05d}", None, None, {"lr": (i % 7) / 1000}, ())
            if i % 5 == 0:
                continue  # without val/loss: these come last
            experiment_pk, _ = repo.experiment_ref(1, experiment["id"])
            events = [
                {"name": name, "value": ((i * 7919 + step * 104729) % 10_007) / 1000, "step": step,
                 "client_event_id": f"{name}-{step}"}
                for step in range(5)
                for name in ("val/loss", "train/loss")
            ]  # fmt: skip
            repo.ingest_metrics(experiment_pk, experiment["id"], from_validated({"events": events}))
    finally:
        repo.close()


def _page_time(client: httpx.Client, order_by: str, calls: int) -> float:
    """The median time of reading the first page of 100 in that order."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        response = client.get("/v1/experiments", params={"order_by": order_by, "page_size": 100})
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        assert len(response.json()["data"]) == 100
    return statistics.median(times)


def run(report: Report, server_process: ServerProcess, *, quick: bool) -> None:
    large = 2_000 if quick else 10_000
    rounds, calls = 3, 30 if quick else 100
    with tempfile.TemporaryDirectory(prefix="tally-bench-runs-") as scratch:
        directory = Path(scratch)
        (directory / "small").mkdir()
        (directory / "large").mkdir()
        small_db, large_db = directory / "small" / "runs.sqlite3", directory / "large" / "runs.sqlite3"
        _seed(small_db, 100)
        _seed(large_db, large)
        with server_process(small_db) as small_at, server_process(large_db) as large_at:
            clients = [
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
                for url, key in (small_at, large_at)
            ]
            for order_by in ("metric:val/loss:min", "-metric:val/loss:min"):
                small_times: list[float] = []
                large_times: list[float] = []
                for index in range(rounds):
                    sides = [(small_times, clients[0]), (large_times, clients[1])]
                    for times, client in sides if index % 2 == 0 else reversed(sides):
                        times.append(_page_time(client, order_by, calls))
                small, big = statistics.median(small_times), statistics.median(large_times)
                ratio = big / small
                report(
                    f"runs table: a page of 100 by {order_by}, {large:,} vs 100 experiments",
                    f"{small * 1000:.2f} ms -> {big * 1000:.2f} ms",
                    ratio,
                    "<= 1.5",
                    ratio <= 1.5,
                )
            for client in clients:
                client.close()

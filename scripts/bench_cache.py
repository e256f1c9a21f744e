"""The on-disk response cache (`client.cache`), for `make bench` (`--only cache`).

- A second read of a completed 1,000,000-point experiment through the cache against the first read: the page
  walk (`client.metrics.list`, pages of 1,000) and a series (`client.metrics.series`, 1,000 buckets). The first
  read fetches and stores every page; the second finds the experiment unchanged (one revalidated
  `getExperiment` per call, a 304) and serves every page from the file. Target: <= 0.5.
- Informational: the same walk with the cache off (what the first read costs over no cache), and a
  revalidated walk of a *running* experiment (every page a 304: the server still reads and hashes each page,
  the body's transfer and gzip are saved).
- Informational: the ETag's cost, hashing one 1,000-point `listMetrics` body in process, against the whole
  request for that page.

One server process on a file database; the cache file in a scratch directory; rounds interleaved (the cache
emptied before each first read), medians (`--quick`: 200,000 points).
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


def _seed(client: Any, points: int, label: str, *, complete: bool) -> str:
    experiment = client.experiments.create(label)
    for start in range(0, points, 10_000):
        events = [
            {"name": _NAME, "value": 1.0 / (1 + step), "step": step, "client_event_id": f"{label}-{step}"}
            for step in range(start, min(start + 10_000, points))
        ]
        client.metrics.ingest(experiment.id, events)
    if complete:
        client.experiments.update_status(experiment.id, "completed")
    return str(experiment.id)


def _seconds(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def run(report: Report, server_process: ServerProcess, *, quick: bool) -> None:
    import httpx

    from tally import Tally
    from tally_server.conditional import etag_of

    points = 200_000 if quick else 1_000_000
    rounds = 2 if quick else 3
    with (
        tempfile.TemporaryDirectory(prefix="tally-bench-cache-") as scratch,
        server_process(Path(scratch) / "cache.sqlite3") as (url, api_key),
        Tally(api_key=api_key, base_url=url) as plain,
        Tally(api_key=api_key, base_url=url) as cached,
    ):
        done = _seed(plain, points, "cache-done", complete=True)
        running = _seed(plain, points // 10, "cache-running", complete=False)
        cached.cache.enable(path=Path(scratch) / "responses.sqlite3", max_bytes=4 << 30)

        def read(client: Any, experiment_id: str, expected: int) -> Callable[[], None]:
            def call() -> None:
                walked = sum(1 for _ in client.metrics.list(experiment_id, name=_NAME, page_size=1000))
                assert walked == expected, walked
                series = client.metrics.series(experiment_id, _NAME, max_points=1000)
                assert series.total_points == expected, series.total_points

            return call

        first_s, second_s, off_s, revalidated_s = [], [], [], []
        for _ in range(rounds):
            cached.cache.clear()
            first_s.append(_seconds(read(cached, done, points)))
            second_s.append(_seconds(read(cached, done, points)))
            off_s.append(_seconds(read(plain, done, points)))
            read(cached, running, points // 10)()  # stored, then every page revalidated
            revalidated_s.append(_seconds(read(cached, running, points // 10)))
        stats = cached.cache.stats()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}) as raw:
            page = f"/v1/experiments/{done}/metrics?page_size=1000"
            body = raw.get(page).content
            request_s = statistics.median(_seconds(lambda: raw.get(page)) for _ in range(21))
        hash_s = statistics.median(_seconds(lambda: etag_of(body)) for _ in range(201))

    first, second = statistics.median(first_s), statistics.median(second_s)
    off, revalidated = statistics.median(off_s), statistics.median(revalidated_s)
    ratio = second / first
    report(
        f"cache: second read of a completed {points:,}-point experiment (page walk + series) vs the first",
        f"{second:.2f} s vs {first:.2f} s ({stats.bytes / 2**20:.0f} MB in {stats.entries:,} entries)",
        ratio,
        "<= 0.5",
        ratio <= 0.5,
    )
    report(
        "cache: the first read (fetch and store) vs the same read with the cache off (informational)",
        f"{first:.2f} s vs {off:.2f} s",
        first / off,
        "none",
        True,
    )
    running_points = points // 10
    report(
        f"cache: a running {running_points:,}-point experiment read again, every page a 304, vs the cache off "
        "(informational; scaled from the completed one's figure)",
        f"{revalidated:.3f} s vs {off / 10:.3f} s",
        revalidated / (off / 10),
        "none",
        True,
    )
    report(
        "ETag: hashing one 1,000-point listMetrics body vs the whole request for that page (informational)",
        f"{hash_s * 1e6:.0f} us for {len(body) / 1024:.0f} KiB vs {request_s * 1000:.2f} ms",
        hash_s / request_s,
        "none",
        True,
    )

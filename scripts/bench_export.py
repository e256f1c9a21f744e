"""The streamed export (`exportMetrics`), for `make bench` (`--only export`).

- Export against the page walk: every point of a 1,000,000-point experiment through `client.metrics.export(...)`
  (typed `MetricPoint`s, decoded a chunk at a time) against the same points through `client.metrics.list(...)`
  (pages of 1,000, the most a page holds). Target: < 1 (faster than paging). Both read the same rows with the same
  statement and the server's row shaping bounds both (about 6 us a point on our machine); the export saves the
  1,000 round trips, the per-page decoding and the client's waiting between pages (server and client work
  overlap), not the reading itself.
- Memory: the peak RSS growth of the server process and of the client process while the export runs, sampled
  every 50 ms from /proc. Both should stay flat whatever the size (the server holds one 5,000-row chunk, the
  client one network chunk and the points of one decoded chunk); targets: server <= 64 MiB, client <= 32 MiB,
  for an answer of about 150 MiB of NDJSON. The page walk's growth is shown beside them.

One server process on a file database (SQLite), one experiment of ten metrics with a metadata label, a point per
step; the export is run once before measuring (warm page cache on both sides), then three interleaved rounds of
export and walk (medians; the peak RSS growth is the largest of the rounds). `--quick`: 200,000 points.
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tally_server.process import start_server_process

__all__ = ["run"]

Report = Callable[[str, str, float | None, str, bool], None]

_MIB = 2**20
_NAMES = [f"export/metric_{i}" for i in range(10)]


def _rss(pid: int | str) -> int:
    """VmRSS of `pid` ("self" for this process) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class _Peak:
    """`with _Peak(pid) as peak:` samples the RSS of `pid` every 50 ms in a thread; `peak.growth` is the highest
    sample less the one taken on entry."""

    def __init__(self, pid: int | str) -> None:
        self.pid, self.growth = pid, 0
        self._stop = threading.Event()
        self._start = self._high = 0

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._high = max(self._high, _rss(self.pid))

    def __enter__(self) -> _Peak:
        self._start = self._high = _rss(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._high = max(self._high, _rss(self.pid))
        self.growth = self._high - self._start


def _seed(client: Any, points: int) -> str:
    experiment = client.experiments.create("export-bench")
    for start in range(0, points, 50_000):
        events = [
            {
                "name": _NAMES[i % 10],
                "value": 1.0 / (1 + i),
                "step": i // 10,
                "metadata": {"split": "train"},
                "client_event_id": f"x-{i}",
            }
            for i in range(start, min(start + 50_000, points))
        ]
        client.metrics.ingest(experiment.id, events)
    return str(experiment.id)


def run(report: Report, *, quick: bool) -> None:
    from tally import Tally

    points = 200_000 if quick else 1_000_000
    api_key = "tk_org_" + secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="tally-bench-export-") as scratch:
        env = {**os.environ, "TALLY_SERVER_BOOTSTRAP_KEY": api_key, "TALLY_CONFIG_DIR": f"{scratch}/config"}
        args = ["--db", f"{scratch}/export.sqlite3", "--log-level", "warning"]
        with (
            start_server_process(args, logs=f"{scratch}/server-logs", env=env, timeout=30) as server,
            Tally(api_key=api_key, base_url=server.url, timeout=60.0) as client,
        ):
            experiment_id = _seed(client, points)

            def export() -> int:
                return sum(1 for _ in client.metrics.export(experiment_id))

            def walk() -> int:
                return sum(1 for _ in client.metrics.list(experiment_id, page_size=1000))

            assert export() == points  # warm
            export_times, walk_times = [], []
            server_growth = client_growth = walk_server_growth = walk_client_growth = 0
            for _ in range(3):  # interleaved: the shared machine's drift falls on both sides alike
                with _Peak(server.pid) as server_peak, _Peak("self") as client_peak:
                    started = time.perf_counter()
                    exported = export()
                    export_times.append(time.perf_counter() - started)
                with _Peak(server.pid) as walk_server, _Peak("self") as walk_client:
                    started = time.perf_counter()
                    walked = walk()
                    walk_times.append(time.perf_counter() - started)
                assert exported == walked == points, (exported, walked)
                server_growth = max(server_growth, server_peak.growth)
                client_growth = max(client_growth, client_peak.growth)
                walk_server_growth = max(walk_server_growth, walk_server.growth)
                walk_client_growth = max(walk_client_growth, walk_client.growth)
            export_s, walk_s = statistics.median(export_times), statistics.median(walk_times)
            wire = body = 0  # the answer's size on the wire (gzip) and decoded
            with httpx.stream(
                "GET",
                f"{server.url}/v1/experiments/{experiment_id}/metrics/export",
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=60.0,
            ) as answer:
                for chunk in answer.iter_bytes():
                    body += len(chunk)
                wire = answer.num_bytes_downloaded
    ratio = export_s / walk_s
    report(
        f"export of {points:,} points vs the SDK page walk (pages of 1,000)",
        f"{export_s:.2f} s ({points / export_s:,.0f} points/s) vs {walk_s:.2f} s",
        ratio,
        "< 1",
        ratio < 1,
    )
    report(
        f"server peak RSS growth exporting {points:,} points",
        f"{server_growth / _MIB:.1f} MiB (page walk {walk_server_growth / _MIB:.1f} MiB; "
        f"an answer of {body / _MIB:.0f} MiB, {wire / _MIB:.0f} MiB gzipped on the wire)",
        None,
        "<= 64 MiB",
        server_growth <= 64 * _MIB,
    )
    report(
        f"client peak RSS growth exporting {points:,} points",
        f"{client_growth / _MIB:.1f} MiB (page walk {walk_client_growth / _MIB:.1f} MiB)",
        None,
        "<= 32 MiB",
        client_growth <= 32 * _MIB,
    )

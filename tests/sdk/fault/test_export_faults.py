"""An export the server stops sending mid-way (its process SIGKILLed) is an error, never a short export that looks
whole: iterating raises `APIConnectionError`, and `export_to` leaves no file (nor its `.partial`).

The answer is asked for without gzip and is far larger than the sockets' buffers (about 20 MiB: 10,000 points with
2 KiB of metadata each), so that most of it is still unsent when the server dies."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tally import APIConnectionError, Tally

from .conftest import KEY, ServerProcess

POINTS = 10_000
LABELS = {f"k{i}": chr(97 + i) * 250 for i in range(8)}
IDENTITY = {"extra_headers": {"Accept-Encoding": "identity"}}


def _kill_when_written(server: ServerProcess, partial: Path) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if partial.exists() and partial.stat().st_size > 0:
                server.kill()
                return
            time.sleep(0.002)

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def test_a_cut_export_raises_and_writes_no_file(server: ServerProcess, tmp_path: Path) -> None:
    server.start()
    with Tally(api_key=KEY, base_url=server.url) as client:
        experiment_id = client.experiments.create("cut-export").id
        for start in range(0, POINTS, 10_000):
            client.metrics.ingest(
                experiment_id,
                [{"name": "loss", "value": i / 7, "step": i} for i in range(start, start + 10_000)],
            )
        points = client.metrics.export(experiment_id, **IDENTITY)
        assert [next(points).step for _ in range(10)] == list(range(10))
        server.kill()
        with pytest.raises(APIConnectionError):
            list(points)

        server.start()  # the same database: now the file export is cut
        target = tmp_path / "out" / "points.ndjson"
        target.parent.mkdir()
        watcher = _kill_when_written(server, target.with_name(target.name + ".partial"))
        with pytest.raises(APIConnectionError):
            client.metrics.export_to(experiment_id, target, **IDENTITY)
        watcher.join()
    assert os.listdir(target.parent) == []

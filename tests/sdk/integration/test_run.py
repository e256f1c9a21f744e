"""`client.run(...)` against the live reference server: what is logged is stored once, in order; the
experiment's lifecycle; resuming; offline runs then `tally sync`; a torn spool; a server that never answers."""

from __future__ import annotations

import os
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from tally import AsyncTally, Tally
from tally._sync._run_port import RunPort
from tally.cli import cli
from tally.run import Run, spool_status, sync_spools
from tally.run._format import MAGIC, decode_records
from tally.run._spool import FileStore
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration

METRICS = 10


def log_steps(run: object, steps: range) -> None:
    for step in steps:
        run.log({f"m/{i}": step + i / 10 for i in range(METRICS)}, step=step, metadata={"split": "train"})  # type: ignore[attr-defined]


def point_counts(client: Tally, experiment_id: str) -> Counter[tuple[str, int | None]]:
    return Counter((p.name, p.step) for p in client.metrics.list(experiment_id, page_size=1000))


def test_a_run_stores_every_value_once_and_completes(sync_client: Tally, tmp_path: Path) -> None:
    name = unique("run")
    with sync_client.run(name, metadata={"lr": 3e-4}) as run:
        assert run.id is not None  # the server answered at start: the experiment exists at once
        log_steps(run, range(500))
        run.annotate("lr drop", step=250)
        log_steps(run, range(500, 1000))
        run.flush(timeout=60)
        status = run.status()
        assert (status.logged, status.stored, status.pending, status.rejected) == (10_001, 10_001, 0, 0)
    experiment = sync_client.experiments.get(run.id)
    assert experiment.name == name
    assert experiment.status == "completed"
    assert {k: v for k, v in experiment.metadata.items() if k != "capture"} == {"lr": 3e-4}
    counts = point_counts(sync_client, run.id)
    assert len(counts) == 10_000
    assert set(counts.values()) == {1}
    [annotation] = list(sync_client.annotations.list(run.id))
    assert (annotation.text, annotation.step) == ("lr drop", 250)
    assert not any((tmp_path / "spool").iterdir())  # everything stored: the spool is gone


def test_a_block_that_raises_marks_the_experiment_failed(sync_client: Tally) -> None:
    runs: list[Run] = []

    def train() -> None:
        with sync_client.run(unique("failing")) as run:
            runs.append(run)
            log_steps(run, range(10))
            raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        train()
    [run] = runs
    assert sync_client.experiments.get(run.id or "").status == "failed"
    assert sum(point_counts(sync_client, run.id or "").values()) == 100


async def test_async_tally_runs_too(async_client: AsyncTally, sync_client: Tally) -> None:
    with async_client.run(unique("async-run")) as run:
        log_steps(run, range(50))
    assert run.status().stored == 500
    assert sync_client.experiments.get(run.id or "").status == "completed"


def test_offline_then_tally_sync_stores_everything_once(
    live_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("offline")
    with Tally(offline=True) as offline, offline.run(name) as run:
        log_steps(run, range(300))
        run.annotate("note", step=3)
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    runner = CliRunner()
    listed = runner.invoke(cli, ["sync", "--status"])
    assert listed.exit_code == 0, listed.output
    assert name in listed.output
    assert "pending 3,001" in listed.output
    synced = runner.invoke(cli, ["sync"])
    assert synced.exit_code == 0, synced.output
    assert "synced" in synced.output
    assert "stored 3,001" in synced.output
    with Tally() as client:
        [experiment] = list(client.experiments.list(name_prefix=name))
        assert experiment.status == "completed"
        counts = point_counts(client, experiment.id)
        assert len(counts) == 3000
        assert set(counts.values()) == {1}
        assert len(list(client.annotations.list(experiment.id))) == 1
    assert runner.invoke(cli, ["sync", "--status"]).output.startswith("no spools")


def test_a_truncated_spool_replays_the_rest_and_reports_the_loss(
    sync_client: Tally, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("torn")
    with Tally(offline=True) as offline:
        run = offline.run(name, capture=False)  # no record from another thread: the last one is a log()
        log_steps(run, range(100))
    # The process "dies" mid-write: the last record is cut short. (The run is never closed.)
    spool = Path(run.status().spool or "")
    segment = FileStore(spool).path(1)
    written = decode_records(segment.read_bytes()[len(MAGIC) :], base=len(MAGIC)).end
    assert written < os.path.getsize(segment)  # a crashed writer leaves the zeros it grew the file by
    os.truncate(segment, written - 7)
    run._lock.release()  # type: ignore[union-attr]  # as the kernel would for a dead process
    run._closed = True
    [report] = sync_spools(RunPort(sync_client, owned=False), tmp_path / "spool")
    assert report.state == "synced"
    assert report.stored == 990
    assert len(report.torn) == 1
    assert report.torn[0][3] == "incomplete record"
    assert "skipped (incomplete record)" in caplog.text
    [experiment] = list(sync_client.experiments.list(name_prefix=name))
    assert experiment.status == "running"  # no end record: the crash leaves the status as it was
    assert sorted({s for _, s in point_counts(sync_client, experiment.id)}) == list(range(99))


def test_resuming_an_experiment_replays_its_leftover_spool_first(sync_client: Tally) -> None:
    experiment = sync_client.experiments.create(unique("resume"))
    # A job that crashed: its spool is left, unsent (offline stands in for "the sender never got to it").
    with Tally(offline=True) as offline:
        crashed = offline.run(experiment_id=experiment.id)
        log_steps(crashed, range(100))
        crashed._lock.release()  # type: ignore[union-attr]
        crashed._closed = True
    with sync_client.run(experiment_id=experiment.id) as run:
        log_steps(run, range(100, 150))
    counts = point_counts(sync_client, experiment.id)
    assert len(counts) == 1500
    assert set(counts.values()) == {1}
    assert spool_status() == []


def test_a_server_that_never_answers_does_not_hang_the_run(
    live_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with Tally(api_key=live_server.api_key, base_url=url, timeout=30, ingest_timeout=30) as client:
            with client.run(unique("silent"), flush_timeout=0.5) as run:
                log_steps(run, range(20))
            status = run.status()
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        silent.close()
    assert (status.logged, status.pending) == (200, 200)
    assert "200 events" in capsys.readouterr().err


def test_memory_durability_keeps_no_spool(sync_client: Tally, tmp_path: Path) -> None:
    with sync_client.run(unique("memory"), durability="memory") as run:
        log_steps(run, range(20))
        assert run.status().spool is None
    assert run.status().stored == 200
    assert not (tmp_path / "spool").exists() or not any((tmp_path / "spool").iterdir())

"""`client.metrics.export` / `export_to` and `tally metrics export` against the live server, with both clients:
every point once in `list()`'s order (over more than one server chunk), typed NDJSON points, CSV rows that round-trip,
a file written whole, and the errors of a read."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

import tally
from tally import AsyncTally, MetricPoint, NotFoundError, Tally
from tally.cli import cli
from tally_server import RunningServer

from ..conftest import AnyClient, call, collect, unique

pytestmark = pytest.mark.integration

POINTS = 6_000  # more than one server chunk (5,000)
_made: dict[str, str] = {}


@pytest.fixture
def experiment(live_server: RunningServer) -> str:
    """One experiment of `POINTS` points per live server, ingested once (the tests only read it)."""
    if live_server.url not in _made:
        with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
            experiment_id = client.experiments.create(unique("export")).id
            events = [
                {
                    "name": ("loss", "acc")[i % 2],
                    "value": i / 3,
                    "step": None if i % 1000 == 7 else i // 2,
                    "metadata": {"split": "train" if i % 3 else "val", "note": 'a, "b"'},
                    "client_event_id": f"e{i}",
                }
                for i in range(POINTS)
            ]
            client.metrics.ingest(experiment_id, events)
        _made[live_server.url] = experiment_id
    return _made[live_server.url]


async def _all(iterator: Any) -> list[Any]:
    if hasattr(iterator, "__aiter__"):
        return [item async for item in iterator]
    return list(iterator)


async def test_export_yields_every_point_once_in_list_order(client: AnyClient, experiment: str) -> None:
    exported = await _all(client.metrics.export(experiment))
    assert all(isinstance(p, MetricPoint) for p in exported)
    assert len(exported) == POINTS
    assert exported == await collect(client.metrics.list(experiment, page_size=1000))


async def test_export_filters_as_list_does(client: AnyClient, experiment: str) -> None:
    filters: dict[str, Any] = {"name": "acc", "min_step": 100, "max_step": 900, "metadata_key": "split"}
    exported = await _all(client.metrics.export(experiment, **filters))
    assert exported == await collect(client.metrics.list(experiment, page_size=1000, **filters))
    assert 0 < len(exported) < POINTS


async def test_csv_rows_round_trip(client: AnyClient, experiment: str) -> None:
    rows = await _all(client.metrics.export(experiment, format="csv"))
    points = await collect(client.metrics.list(experiment, page_size=1000))
    assert len(rows) == len(points) == POINTS
    for row, point in zip(rows, points, strict=True):
        assert row["name"] == point.name
        assert float(row["value"]) == point.value
        assert (int(row["step"]) if row["step"] else None) == point.step
        assert json.loads(row["metadata"]) == dict(point.metadata)
        assert row["client_event_id"] == point.client_event_id


async def test_export_to_writes_the_file_whole(client: AnyClient, experiment: str, tmp_path: Path) -> None:
    ndjson, csv_path = tmp_path / "points.ndjson", tmp_path / "points.csv"
    assert await call(client.metrics.export_to(experiment, ndjson)) == POINTS
    assert await call(client.metrics.export_to(experiment, csv_path, format="csv")) == POINTS
    decoded = msgspec.json.Decoder(MetricPoint).decode_lines(ndjson.read_bytes())
    assert decoded == await collect(client.metrics.list(experiment, page_size=1000))
    with csv_path.open(newline="") as f:
        assert sum(1 for _ in csv.DictReader(f)) == POINTS
    assert sorted(os.listdir(tmp_path)) == ["points.csv", "points.ndjson"]  # no .partial left


async def test_errors_and_bad_format(client: AnyClient, tmp_path: Path) -> None:
    missing = "exp_01JD0000000000000000000000"
    with pytest.raises(NotFoundError):
        await _all(client.metrics.export(missing))
    target = tmp_path / "out.ndjson"
    with pytest.raises(NotFoundError):
        await call(client.metrics.export_to(missing, target))
    assert os.listdir(tmp_path) == []  # neither the file nor its .partial
    with pytest.raises(ValueError, match="format must be 'ndjson' or 'csv'"):
        client.metrics.export(missing, format="xml")  # type: ignore[call-overload]


async def test_unauthenticated(live_server: RunningServer, experiment: str) -> None:
    async with AsyncTally(api_key="tk_org_" + "x" * 32, base_url=live_server.url) as client:
        with pytest.raises(tally.AuthenticationError):
            await _all(client.metrics.export(experiment))


def test_leaving_early_frees_the_connection(live_server: RunningServer, experiment: str) -> None:
    """A loop left after a few points closes its response: the pool (one connection here) serves the next call."""
    import httpx

    with Tally(
        api_key=live_server.api_key, base_url=live_server.url, limits=httpx.Limits(max_connections=1)
    ) as client:
        for _ in range(3):
            points = client.metrics.export(experiment)
            assert next(points).name == "acc"
            points.close()  # what leaving a `for` loop does once the generator is collected
        assert client.experiments.get(experiment).id == experiment


def test_cli_export(live_server: RunningServer, experiment: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    runner = CliRunner()
    out = runner.invoke(cli, ["metrics", "export", experiment, "--name", "loss"])
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == POINTS // 2
    assert {p["name"] for p in lines} == {"loss"}
    target = tmp_path / "p.csv"
    written = runner.invoke(
        cli, ["metrics", "export", experiment, "--format", "csv", "--output", str(target)]
    )
    assert written.exit_code == 0, written.output
    assert f"{POINTS} points written" in written.stderr
    to_stdout = runner.invoke(cli, ["metrics", "export", experiment, "--format", "csv"])
    assert list(csv.reader(to_stdout.stdout.splitlines())) == list(
        csv.reader(target.read_text().splitlines())
    )

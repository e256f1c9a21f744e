"""DataFrames from compare results and metric listings, sync and async, pandas and polars."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pandas as pd
import polars as pl
import pytest

from tally import CompareResult, MetricSeries, MetricSeriesBucket, _frames
from tally._types import ComparedSeries, CompareRow

from ..conftest import AnyClient, call, unique

pytestmark = pytest.mark.integration


async def _two_runs(client: AnyClient) -> tuple[str, str]:
    ids = []
    for offset in (0.0, 10.0):
        experiment = await call(client.experiments.create(unique("frames")))
        events: list[dict[str, Any]] = [
            {"name": "loss", "value": offset + step, "step": step, "metadata": {"split": "train"}}
            for step in range(5)
            if not (offset and step == 2)  # the second run has no point at step 2
        ]
        events.append({"name": "acc", "value": 0.5, "step": 0, "metadata": {"split": "val", "seed": "1"}})
        await call(client.metrics.ingest(experiment.id, events))
        ids.append(experiment.id)
    return ids[0], ids[1]


async def test_compare_result_to_pandas_and_polars(client: AnyClient) -> None:
    first, second = await _two_runs(client)
    result: CompareResult = await call(
        client.metrics.compare(
            [{"experiment_id": first, "name": "loss"}, {"experiment_id": second, "name": "loss"}]
        )
    )
    frame = result.to_pandas()
    assert list(frame.columns) == ["step", first, second]  # only what differs: the experiment
    assert frame["step"].tolist() == [0, 1, 2, 3, 4]
    assert frame[first].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert frame[second].isna().tolist() == [False, False, True, False, False]
    assert str(frame[second].dtype) == "Float64"

    polars_frame = result.to_polars(labels=["a", "b"])
    assert polars_frame.columns == ["step", "a", "b"]
    assert polars_frame.schema["step"] == pl.Int64
    assert polars_frame.schema["b"] == pl.Float64
    assert polars_frame["b"].to_list() == [10.0, 11.0, None, 13.0, 14.0]


async def test_metric_listing_to_pandas_and_polars(client: AnyClient) -> None:
    first, _ = await _two_runs(client)
    listing = client.metrics.list(first, page_size=2)  # several pages
    frame = await call(listing.to_pandas())
    assert len(frame) == 6
    assert list(frame.columns) == [
        "name",
        "step",
        "value",
        "timestamp",
        "client_event_id",
        "metadata.seed",
        "metadata.split",
    ]
    assert frame["name"].tolist() == ["acc", *["loss"] * 5]
    assert frame["metadata.seed"][0] == "1"
    assert frame["metadata.seed"].isna().tolist()[:2] == [False, True]
    assert str(frame["timestamp"].dtype).startswith("datetime64")
    assert frame["timestamp"].dt.tz is not None

    polars_frame = await call(client.metrics.list(first, name="loss", limit=3).to_polars())
    assert polars_frame["step"].to_list() == [0, 1, 2]
    assert polars_frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert polars_frame["metadata.split"].to_list() == ["train"] * 3


async def test_metric_series_is_typed_and_becomes_one_row_per_bucket(client: AnyClient) -> None:
    """client.metrics.series on both clients: the typed MetricSeries, narrowed by step and metadata, and its
    frames."""
    experiment = await call(client.experiments.create(unique("series")))
    events: list[dict[str, Any]] = [
        {"name": "loss", "value": float(step % 7), "step": step, "metadata": {"split": "train"}}
        for step in range(40)
    ]
    events.append({"name": "loss", "value": 99.0, "step": 3, "metadata": {"split": "val"}})
    await call(client.metrics.ingest(experiment.id, events))
    series: MetricSeries = await call(client.metrics.series(experiment.id, "loss", max_points=4))
    assert isinstance(series, MetricSeries)
    assert isinstance(series.buckets[0], MetricSeriesBucket)
    assert (series.total_points, series.unstepped_points, len(series.buckets)) == (41, 0, 3)
    assert sum(bucket.count for bucket in series.buckets) == 41
    assert series.buckets[0].max == 99.0  # the val point at step 3
    train = await call(
        client.metrics.series(
            experiment.id, "loss", min_step=10, max_step=19, metadata_key="split", metadata_value="train"
        )
    )
    assert [(b.first_step, b.last_step, b.count) for b in train.buckets] == [(s, s, 1) for s in range(10, 20)]
    frame = train.to_pandas()
    assert list(frame.columns) == ["first_step", "last_step", "count", "min", "max", "mean", "first", "last"]
    assert frame["first_step"].tolist() == list(range(10, 20))
    assert str(frame["count"].dtype) == "int64"
    assert str(frame["mean"].dtype) == "float64"
    polars_frame = train.to_polars()
    assert polars_frame.schema["last_step"] == pl.Int64
    assert polars_frame.schema["max"] == pl.Float64
    assert polars_frame["max"].to_list() == [float(step % 7) for step in range(10, 20)]


async def test_other_listings_become_one_row_per_item(client: AnyClient) -> None:
    await _two_runs(client)
    frame = await call(client.experiments.list(name_prefix="frames", limit=2).to_pandas())
    assert {"id", "name", "status"} <= set(frame.columns)
    assert len(frame) == 2


def test_series_labels_name_only_what_differs() -> None:
    def series(experiment: str, name: str, **metadata: str) -> ComparedSeries:
        return ComparedSeries(experiment_id=experiment, name=name, metadata=metadata, points=1)

    assert _frames.series_labels([series("e1", "loss")]) == ["loss"]
    assert _frames.series_labels(
        [series("e1", "loss", split="train"), series("e1", "loss", split="val")]
    ) == [
        "split=train",
        "split=val",
    ]
    assert _frames.series_labels([series("e1", "loss"), series("e2", "acc")]) == ["loss e1", "acc e2"]
    assert _frames.series_labels([series("e1", "loss"), series("e1", "loss")]) == ["loss", "loss #2"]
    result = CompareResult(
        series=(series("e1", "loss"),), rows=(CompareRow(step=0, values=(1.0,)),), truncated=False
    )
    with pytest.raises(ValueError, match="labels"):
        result.to_pandas(labels=["step"])
    assert isinstance(result.to_pandas(), pd.DataFrame)


def test_frames_load_pandas_and_polars_only_when_called() -> None:
    code = (
        "import sys\n"
        "from tally import Tally, AsyncTally, CompareResult\n"
        "import tally._frames\n"
        "assert 'pandas' not in sys.modules and 'polars' not in sys.modules, 'loaded too early'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

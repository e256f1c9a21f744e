"""DataFrames from compare results and metric listings, sync and async, pandas and polars."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pandas as pd
import polars as pl
import pytest

from tally import CompareResult, _frames
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

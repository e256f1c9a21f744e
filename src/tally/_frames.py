"""DataFrames (pandas or polars) from compare results and metric listings.

The public types call in here through thin methods (`CompareResult.to_pandas()`, `Paginator.to_pandas()`, ...),
so that the conversion does not depend on how those types are defined. pandas and polars are imported only
when a conversion is asked for (the `[pandas]` and `[polars]` extras); a missing one raises one line naming it.

Shapes:
- a compare result: one row per step (`step` column, ascending), one float column per series, null where that
  series has no point at the step. Columns are named readably by `series_labels`.
- a metric series: one row per bucket, columns `first_step`, `last_step` (integers), `count`, then `min`, `max`,
  `mean`, `first`, `last` (floats).
- metric points: one row per point, columns `name`, `step`, `value`, `timestamp`, `client_event_id`, then one
  `metadata.<key>` column per metadata key seen (null where a point lacks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from tally._extras import require
from tally._types import ComparedSeries, CompareResult, MetricPoint, MetricSeries

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = [
    "buckets_to_pandas",
    "buckets_to_polars",
    "compare_columns",
    "compare_to_pandas",
    "compare_to_polars",
    "items_to_pandas",
    "items_to_polars",
    "points_columns",
    "points_to_pandas",
    "points_to_polars",
    "series_labels",
]


def series_labels(series: Sequence[ComparedSeries]) -> list[str]:
    """A readable, unique column name per series: only the parts that differ between series (metric name,
    experiment id, metadata), so two runs of `loss` read `exp_a` / `exp_b`, one run with `split=train` and
    `split=val` reads `split=train` / `split=val`, and a single series is just its metric name."""
    if not series:
        return []
    names_differ = len({item.name for item in series}) > 1
    experiments_differ = len({item.experiment_id for item in series}) > 1
    keys = sorted({key for item in series for key in item.metadata})
    varying = [key for key in keys if len({item.metadata.get(key) for item in series}) > 1]
    labels = []
    for item in series:
        parts = []
        if names_differ or not (experiments_differ or varying):
            parts.append(item.name)
        if experiments_differ:
            parts.append(item.experiment_id)
        parts.extend(f"{key}={item.metadata[key]}" for key in varying if key in item.metadata)
        labels.append(" ".join(parts))
    seen: dict[str, int] = {}
    unique = []
    for label in labels:  # identical selectors twice: keep both columns, numbered
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return unique


def compare_columns(result: CompareResult, labels: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """The result as columns: `step`, then one list of values per series."""
    names = list(labels) if labels is not None else series_labels(result.series)
    if len(names) != len(result.series):
        raise ValueError(f"labels: {len(names)} given for {len(result.series)} series")
    if "step" in names or len(set(names)) != len(names):
        raise ValueError(f"labels must be unique and not 'step': {names!r}")
    columns: dict[str, list[Any]] = {"step": [row.step for row in result.rows]}
    for index, name in enumerate(names):
        columns[name] = [row.values[index] for row in result.rows]
    return columns


def points_columns(points: Iterable[MetricPoint]) -> dict[str, list[Any]]:
    """Metric points as columns (see the module docstring)."""
    fixed: dict[str, list[Any]] = {
        name: [] for name in ("name", "step", "value", "timestamp", "client_event_id")
    }
    metadata: dict[str, list[Any]] = {}
    for count, point in enumerate(points, start=1):
        fixed["name"].append(point.name)
        fixed["step"].append(point.step)
        fixed["value"].append(point.value)
        fixed["timestamp"].append(point.timestamp)
        fixed["client_event_id"].append(point.client_event_id)
        for key, value in point.metadata.items():
            metadata.setdefault(key, [None] * (count - 1)).append(value)
        for column in metadata.values():  # keys this point lacks
            if len(column) < count:
                column.append(None)
    return {**fixed, **{f"metadata.{key}": metadata[key] for key in sorted(metadata)}}


def compare_to_pandas(result: CompareResult, labels: Sequence[str] | None = None) -> pd.DataFrame:
    pandas = require("pandas", "pandas", "CompareResult.to_pandas()")
    columns = compare_columns(result, labels)
    frame = pandas.DataFrame(
        {name: pandas.array(values, dtype="Float64") for name, values in columns.items() if name != "step"}
    )
    frame.insert(0, "step", pandas.array(columns["step"], dtype="Int64"))
    return frame


def compare_to_polars(result: CompareResult, labels: Sequence[str] | None = None) -> pl.DataFrame:
    polars = require("polars", "polars", "CompareResult.to_polars()")
    columns = compare_columns(result, labels)
    schema = {name: polars.Int64 if name == "step" else polars.Float64 for name in columns}
    return cast("pl.DataFrame", polars.DataFrame(columns, schema=schema))


def points_to_pandas(points: Iterable[MetricPoint]) -> pd.DataFrame:
    pandas = require("pandas", "pandas", "to_pandas()")
    columns = points_columns(points)
    frame = pandas.DataFrame(columns)
    frame["step"] = frame["step"].astype("Int64")
    frame["value"] = frame["value"].astype("float64")
    frame["timestamp"] = pandas.to_datetime(frame["timestamp"], utc=True)
    return frame


def points_to_polars(points: Iterable[MetricPoint]) -> pl.DataFrame:
    polars = require("polars", "polars", "to_polars()")
    columns = points_columns(points)
    schema: dict[str, Any] = {
        "name": polars.String,
        "step": polars.Int64,
        "value": polars.Float64,
        "timestamp": polars.Datetime("us", "UTC"),
        "client_event_id": polars.String,
    }
    schema.update({name: polars.String for name in columns if name.startswith("metadata.")})
    return cast("pl.DataFrame", polars.DataFrame(columns, schema=schema))


def items_to_pandas(items: Iterable[Any]) -> pd.DataFrame:
    """A listing as a frame: metric points in the shape above, any other type one row per item, one column per
    field (nested values stay as Python objects)."""
    rows = list(items)
    if all(isinstance(item, MetricPoint) for item in rows):
        return points_to_pandas(rows)
    pandas = require("pandas", "pandas", "to_pandas()")
    return pandas.DataFrame([item.to_dict() for item in rows])


def items_to_polars(items: Iterable[Any]) -> pl.DataFrame:
    """`items_to_pandas`, for polars."""
    rows = list(items)
    if all(isinstance(item, MetricPoint) for item in rows):
        return points_to_polars(rows)
    polars = require("polars", "polars", "to_polars()")
    return cast("pl.DataFrame", polars.DataFrame([item.to_dict() for item in rows]))


_BUCKET_INTEGERS = ("first_step", "last_step", "count")
_BUCKET_FLOATS = ("min", "max", "mean", "first", "last")


def _bucket_columns(series: MetricSeries) -> dict[str, list[Any]]:
    return {name: [getattr(b, name) for b in series.buckets] for name in (*_BUCKET_INTEGERS, *_BUCKET_FLOATS)}


def buckets_to_pandas(series: MetricSeries) -> pd.DataFrame:
    pandas = require("pandas", "pandas", "MetricSeries.to_pandas()")
    columns = _bucket_columns(series)
    return pandas.DataFrame(
        {
            name: pandas.array(values, dtype="int64" if name in _BUCKET_INTEGERS else "float64")
            for name, values in columns.items()
        }
    )


def buckets_to_polars(series: MetricSeries) -> pl.DataFrame:
    polars = require("polars", "polars", "MetricSeries.to_polars()")
    schema = {
        name: polars.Int64 if name in _BUCKET_INTEGERS else polars.Float64 for name in _bucket_columns(series)
    }
    return cast("pl.DataFrame", polars.DataFrame(_bucket_columns(series), schema=schema))

"""The rows an ingested batch adds to the catalog, the summaries and the rollups (`storage/batch_stats.py`) are
those of folding its points one by one.

`batch_stats` takes shortcuts for speed (C loops over a group's columns, slices of a group in step order found
by bisection); this holds it to the plain definition on batches in and out of step order, with step-less points,
repeated steps, several label sets and timestamps in several layouts. The live tests (test_summaries.py,
test_metric_series.py) check the same numbers end to end, through the API, on both backends.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tally_server._util import parse_timestamp
from tally_server.storage import rollups
from tally_server.storage.batch_stats import Points, batch_stats

ORG, EXPERIMENT = 3, 7
_NAMES = ("train/loss", "val/loss", "lr")
_LABELS = ("{}", '{"host":"a"}', '{"host":"b","split":"train"}')
_STAMPS = st.one_of(
    st.builds(
        "2026-11-23T10:{:02d}:{:02d}.{:03d}Z".format,
        st.integers(0, 59),
        st.integers(0, 59),
        st.integers(0, 999),
    ),
    st.sampled_from(["2026-11-23T11:00:00+01:00", "2026-11-23T09:59:59.5Z", "2026-11-23t10:00:00Z"]),
)
_VALUES = st.one_of(st.floats(-1e9, 1e9), st.sampled_from([0.0, -0.0, 1.0, 5e-324]))


_POINT = st.tuples(
    st.sampled_from(_NAMES),
    st.one_of(st.just(-1), st.integers(0, 40_000)),
    st.sampled_from([0, 1, 1, 3, 64, 1000, 20_000]),  # the step's rise, when steps rise
    _VALUES,
    _STAMPS,
    st.sampled_from(_LABELS),
)


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Stored points (experiment, name, step, seq, value, ts, ts_auto, metadata, client_event_id) in seq order:
    steps rising as a training loop logs them (some step-less points first, maybe), or in any order."""
    drawn = draw(st.lists(_POINT, min_size=1, max_size=120))
    rising = draw(st.booleans())
    stepless = draw(st.integers(0, 3)) if rising else 0
    step = draw(st.integers(0, 100_000))
    points = []
    for index, (name, any_step, rise, value, stamp, labels) in enumerate(drawn):
        step += rise
        point_step = (-1 if index < stepless else step) if rising else any_step
        points.append((EXPERIMENT, name, point_step, 100 + index, value, stamp, False, labels, f"id-{index}"))
    return points


def _instant(stamp: str) -> tuple[int, str]:
    return (parse_timestamp(stamp), stamp)


def _reference(points: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Every row by its definition, point by point."""
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for p in points:
        groups.setdefault((p[1], p[7]), []).append(p)
    summaries = []
    for (name, labels), group in groups.items():
        stepped = [p[2] for p in group if p[2] >= 0]
        final = max(group, key=lambda p: (p[2], p[3]))
        values = [p[4] for p in group]
        last = max(_instant(p[5]) for p in group)
        summaries.append(
            (EXPERIMENT, name, labels, len(group), min(stepped) if stepped else None, final[2], final[3],
             final[4], min(values), max(values), *last)
        )  # fmt: skip
    series, per_name, labels_count = [], [], Counter()
    for name in sorted({p[1] for p in points}):
        of_name = [p for p in points if p[1] == name]
        stamps = [_instant(p[5]) for p in of_name]
        series.append((EXPERIMENT, name, len(of_name), *min(stamps), *max(stamps)))
        final = max(of_name, key=lambda p: (p[2], p[3]))
        values = [p[4] for p in of_name]
        per_name.append((ORG, EXPERIMENT, name, final[2], final[3], final[4], min(values), max(values)))
        for p in of_name:
            if p[7] != "{}":
                for key, value in sorted(json.loads(p[7]).items()):
                    labels_count[(name, key, value)] += 1
    blocks: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for level in rollups.LEVELS:
        for p in points:
            if p[2] >= 0:
                blocks.setdefault((p[1], level, p[2] >> level, p[7]), []).append(p)
    found = []
    for (name, level, block, labels), members in blocks.items():
        first = min(members, key=lambda p: (p[2], p[3]))
        last = max(members, key=lambda p: (p[2], p[3]))
        values = [p[4] for p in members]
        found.append(
            (EXPERIMENT, name, level, block, rollups.labels_key(labels), labels, len(members), min(values),
             max(values), sum(values), first[2], first[3], first[4], last[2], last[3], last[4],
             sum(map(abs, values)))
        )  # fmt: skip
    return {
        "series": series,
        "summaries": sorted(summaries),
        "per_name": per_name,
        "labels": [(EXPERIMENT, n, k, v, c) for (n, k, v), c in sorted(labels_count.items())],
        "rollups": sorted(found, key=lambda row: row[1:5]),
    }


@settings(max_examples=100, derandomize=True, database=None, deadline=None)
@given(batches())
def test_batch_stats_are_the_point_by_point_fold(points: list[tuple[Any, ...]]) -> None:
    columns = Points(*([p[i] for p in points] for i in (1, 2, 3, 4, 5, 7)))  # as ingestion passes them
    stats = batch_stats(ORG, EXPERIMENT, columns)
    expected = _reference(points)
    assert stats.series == expected["series"]
    assert stats.summaries == expected["summaries"]
    assert stats.per_name == expected["per_name"]
    assert stats.labels == expected["labels"]
    assert len(stats.rollups) == len(expected["rollups"])
    for got, want in zip(stats.rollups, expected["rollups"], strict=True):
        assert got[:9] == want[:9], (got, want)
        assert got[10:] == want[10:16], (got, want)
        # the coarser levels add block sums, another grouping of the same additions: equal up to rounding
        assert abs(got[9] - want[9]) <= 1e-12 * want[16], (got, want)

"""getMetricSeries against a live server, on both backends: exact buckets checked against a brute-force bucketing of
the same points read back through listMetrics."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .helpers import assert_error, event

NewExperiment = Callable[..., dict[str, Any]]
IngestClient = Callable[[str], httpx.Client]


def _ingest(ingest: httpx.Client, experiment_id: str, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 10_000):
        response = ingest.post(
            f"/v1/experiments/{experiment_id}/metrics", json={"events": events[start : start + 10_000]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(events[start : start + 10_000])


def _points(client: httpx.Client, experiment_id: str, **params: Any) -> list[dict[str, Any]]:
    """Every point of the listing, in its order (name, step, ingestion order)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "page_size": 1000, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/experiments/{experiment_id}/metrics", params=query).json()
        found += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _series(client: httpx.Client, experiment_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/v1/experiments/{experiment_id}/metrics/series", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def check_exact(series: dict[str, Any], points: list[dict[str, Any]], max_points: int) -> None:
    """The buckets against the points themselves: each point in exactly one bucket, extremes, first and last
    exact, same-step points together, at most max_points buckets, one step per bucket when that fits."""
    stepped = [p for p in points if p["step"] is not None]
    buckets = series["buckets"]
    assert series["total_points"] == len(stepped) == sum(b["count"] for b in buckets)
    assert series["unstepped_points"] == len(points) - len(stepped)
    assert len(buckets) <= max_points
    distinct = sorted({p["step"] for p in stepped})
    if len(distinct) <= max_points:
        assert [(b["first_step"], b["last_step"]) for b in buckets] == [(s, s) for s in distinct]
    for before, after in itertools.pairwise(buckets):
        assert before["last_step"] < after["first_step"]
    index = 0
    for bucket in buckets:
        end = index  # the listing is in step order: a bucket's points are the next ones up to its last step
        while end < len(stepped) and stepped[end]["step"] <= bucket["last_step"]:
            end += 1
        inside = stepped[index:end]
        assert inside, bucket
        assert all(bucket["first_step"] <= p["step"] for p in inside)
        index = end
        values = [p["value"] for p in inside]
        assert bucket["count"] == len(inside)
        assert inside[0]["step"] == bucket["first_step"]
        assert inside[-1]["step"] == bucket["last_step"]
        assert (bucket["min"], bucket["max"]) == (min(values), max(values))
        assert (bucket["first"], bucket["last"]) == (values[0], values[-1])
        assert bucket["mean"] == pytest.approx(sum(values) / len(values), rel=1e-9, abs=1e-9)
    assert index == len(stepped)


def _random_curve(rng: random.Random, count: int, labels: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Steps with gaps, repeats, out-of-order arrival and a few stepless points, over several label sets."""
    events = []
    step = rng.randrange(0, 5000)
    for i in range(count):
        step += rng.choice((0, 1, 1, 1, 2, 7, 300))
        at = None if rng.random() < 0.01 else (step if rng.random() < 0.9 else rng.randrange(0, step + 1))
        events.append(event(f"p{i}", value=rng.uniform(-100, 100), step=at, metadata=rng.choice(labels)))
    return events


@pytest.mark.parametrize("seed", [1])
def test_series_buckets_are_exact_against_the_points(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient, seed: int
) -> None:
    rng = random.Random(seed)
    experiment = new_experiment()
    labels = [{"split": "train"}, {"split": "val", "seed": "1"}, {}]
    ingest = ingest_client(experiment["id"])
    events = _random_curve(rng, 6000, labels)
    _ingest(ingest, experiment["id"], events[:3000])  # two batches: the rollups are folded into stored ones
    _ingest(ingest, experiment["id"], events[3000:])
    points = _points(client, experiment["id"], name="train/loss")
    steps = [p["step"] for p in points if p["step"] is not None]
    for max_points in (1, 7, 100, 1000, 10_000):
        check_exact(
            _series(client, experiment["id"], name="train/loss", max_points=max_points), points, max_points
        )
    low, high = sorted(rng.sample(steps, 2))
    for low_high in ((low, high), (low + 1, high - 1), (low, None), (None, high)):
        bounds = {k: v for k, v in zip(("min_step", "max_step"), low_high, strict=True) if v is not None}
        zoomed = _points(client, experiment["id"], name="train/loss", **bounds)
        zoomed = [p for p in zoomed if p["step"] is not None] + [p for p in points if p["step"] is None]
        check_exact(_series(client, experiment["id"], name="train/loss", max_points=50, **bounds), zoomed, 50)
    for filters in ({"metadata_key": "split", "metadata_value": "val"}, {"metadata_key": "seed"}):
        only = _points(client, experiment["id"], name="train/loss", **filters)
        check_exact(_series(client, experiment["id"], name="train/loss", max_points=40, **filters), only, 40)


def test_a_one_step_spike_in_200000_points_shows_in_max(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment = new_experiment()
    spike = 123_457
    events = [event(f"s{s}", value=1000.0 if s == spike else 1.0 - s * 1e-6, step=s) for s in range(200_000)]
    _ingest(ingest_client(experiment["id"]), experiment["id"], events)
    series = _series(client, experiment["id"], name="train/loss", max_points=100)
    assert series["total_points"] == 200_000
    assert 25 <= len(series["buckets"]) <= 100
    holding = [b for b in series["buckets"] if b["first_step"] <= spike <= b["last_step"]]
    assert len(holding) == 1
    assert holding[0]["max"] == 1000.0
    assert all(b["max"] < 2 for b in series["buckets"] if b is not holding[0])
    zoom = _series(client, experiment["id"], name="train/loss", min_step=spike - 10, max_step=spike + 10)
    assert [b["first_step"] for b in zoom["buckets"]] == list(range(spike - 10, spike + 11))  # lossless
    assert [b["max"] for b in zoom["buckets"] if b["first_step"] == spike] == [1000.0]


def test_small_series_is_lossless_and_unstepped_points_are_counted(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment = new_experiment()
    _ingest(ingest_client(experiment["id"]), experiment["id"], [
        event("a", value=3.0, step=0), event("b", value=1.0, step=2), event("c", value=2.0, step=2),
        event("n1", value=9.0, step=None), event("n2", value=8.0, step=None), event("o", name="other", step=1),
    ])  # fmt: skip
    series = _series(client, experiment["id"], name="train/loss")
    assert series == {
        "experiment_id": experiment["id"],
        "name": "train/loss",
        "total_points": 3,
        "unstepped_points": 2,
        "buckets": [
            {"first_step": 0, "last_step": 0, "count": 1, "min": 3.0, "max": 3.0, "mean": 3.0, "first": 3.0,
             "last": 3.0},
            {"first_step": 2, "last_step": 2, "count": 2, "min": 1.0, "max": 2.0, "mean": 1.5, "first": 1.0,
             "last": 2.0},
        ],
    }  # fmt: skip
    one = _series(client, experiment["id"], name="train/loss", max_points=1)
    assert one["buckets"] == [
        {
            "first_step": 0,
            "last_step": 2,
            "count": 3,
            "min": 1.0,
            "max": 3.0,
            "mean": 2.0,
            "first": 3.0,
            "last": 2.0,
        }
    ]
    empty = _series(client, experiment["id"], name="missing")
    assert (empty["total_points"], empty["unstepped_points"], empty["buckets"]) == (0, 0, [])


def test_bad_series_parameters_are_named(client: httpx.Client, new_experiment: NewExperiment) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}/metrics/series"
    for params, field in (
        ({"name": "x", "max_points": 0}, "max_points"),
        ({"name": "x", "max_points": 10_001}, "max_points"),
        ({"name": "x", "min_step": 5, "max_step": 4}, "max_step"),
        ({"name": "x", "metadata_value": "v"}, "metadata_value"),
        ({}, "name"),
    ):
        error = assert_error(client.get(url, params=params), 400, "invalid_request")
        assert field in str(error), (params, error)
    assert_error(
        client.get("/v1/experiments/exp_missing/metrics/series", params={"name": "x"}), 404, "not_found"
    )


def test_duplicates_and_conflicts_never_change_the_series(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    """The rollups are kept from the accepted points only: a replayed batch (duplicates) and events reusing a
    client_event_id with another value (conflicts) leave every bucket as it was."""
    experiment = new_experiment()
    ingest = ingest_client(experiment["id"])
    events = [event(f"d{s}", value=float(s % 11), step=s) for s in range(5000)]
    _ingest(ingest, experiment["id"], events)
    before = {m: _series(client, experiment["id"], name="train/loss", max_points=m) for m in (3, 60, 5000)}
    path = f"/v1/experiments/{experiment['id']}/metrics"
    replay = ingest.post(path, json={"events": events[:4000]}).json()
    assert (replay["accepted"], replay["duplicates"]) == (0, 4000)
    clashing = [event(f"d{s}", value=1e6, step=s) for s in range(0, 5000, 7)]
    clash = ingest.post(path, json={"events": clashing}).json()
    assert (clash["accepted"], len(clash["conflicts"])) == (0, len(clashing))
    for max_points, series in before.items():
        assert _series(client, experiment["id"], name="train/loss", max_points=max_points) == series
    check_exact(before[60], _points(client, experiment["id"], name="train/loss"), 60)

"""Metric ingestion: duplicates, conflicts, atomic batches, limits, closed experiments, sync, listing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .helpers import assert_error, event

NewExperiment = Callable[..., dict[str, Any]]
IngestClient = Callable[[str], httpx.Client]


@pytest.fixture
def setup(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> tuple[str, httpx.Client]:
    experiment = new_experiment()
    return experiment["id"], ingest_client(experiment["id"])


def _points(client: httpx.Client, experiment_id: str, **params: Any) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"page_size": 1000, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"/v1/experiments/{experiment_id}/metrics", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        points += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return points


def test_duplicates_are_counted_and_conflicts_reported_not_stored(
    client: httpx.Client, setup: tuple[str, httpx.Client]
) -> None:
    experiment_id, ingest = setup
    path = f"/v1/experiments/{experiment_id}/metrics"
    first = [event(f"e{i}", value=i, step=i, metadata={"split": "train"}) for i in range(5)]
    assert ingest.post(path, json={"events": first}).json() == {
        "accepted": 5,
        "duplicates": 0,
        "conflicts": [],
    }
    again = [*first[:3], {**first[3], "value": 99.0}, event("e5", step=5)]
    result = ingest.post(path, json={"events": again}).json()
    assert result["accepted"] == 1
    assert result["duplicates"] == 3
    assert result["conflicts"] == [
        {
            "index": 3,
            "client_event_id": "e3",
            "message": "client_event_id was already used with another payload",
        }
    ]
    points = _points(client, experiment_id)
    assert len(points) == 6
    assert {p["client_event_id"]: p["value"] for p in points}["e3"] == 3
    # Inside one batch too: the first is stored, an identical repeat is a duplicate, a different one a
    # conflict.
    batch = [event("b1", value=1), event("b1", value=1), event("b1", value=2)]
    result = ingest.post(path, json={"events": batch}).json()
    assert (result["accepted"], result["duplicates"], [c["index"] for c in result["conflicts"]]) == (
        1,
        1,
        [2],
    )


def test_an_absent_timestamp_is_the_server_clock_and_a_resend_is_a_duplicate(
    client: httpx.Client, setup: tuple[str, httpx.Client]
) -> None:
    experiment_id, ingest = setup
    path = f"/v1/experiments/{experiment_id}/metrics"
    body = {"events": [event("t1"), event("t2", timestamp="2026-01-02T03:04:05Z")]}
    assert ingest.post(path, json=body).json()["accepted"] == 2
    assert ingest.post(path, json=body).json() == {"accepted": 0, "duplicates": 2, "conflicts": []}
    with_time = {"events": [event("t1", timestamp="2026-01-02T03:04:05Z")]}
    assert len(ingest.post(path, json=with_time).json()["conflicts"]) == 1
    stamps = {p["client_event_id"]: p["timestamp"] for p in _points(client, experiment_id)}
    assert stamps["t2"] == "2026-01-02T03:04:05Z"
    assert stamps["t1"].endswith("Z")


def test_one_invalid_event_rejects_the_whole_batch_naming_its_path(
    client: httpx.Client, setup: tuple[str, httpx.Client]
) -> None:
    experiment_id, ingest = setup
    path = f"/v1/experiments/{experiment_id}/metrics"
    cases: list[tuple[Any, str]] = [
        ({"name": "x", "value": "high", "client_event_id": "b"}, "events[3].value"),
        ({"name": "x", "value": 1}, "events[3].client_event_id"),
        ({"name": "bad name!", "value": 1, "client_event_id": "b"}, "events[3].name"),
        ({"name": "x", "value": 1, "step": -1, "client_event_id": "b"}, "events[3].step"),
        ({"name": "x", "value": 1, "client_event_id": "b", "timestamp": "yesterday"}, "events[3].timestamp"),
        ({"name": "x", "value": 1, "client_event_id": "b", "metadata": {"k": 1}}, "events[3].metadata.k"),
        ({"name": "x", "value": 1, "client_event_id": "b", "colour": "red"}, "events[3].colour"),
    ]
    good = [event(f"g{i}") for i in range(3)]
    for bad, field_path in cases:
        error = assert_error(ingest.post(path, json={"events": [*good, bad]}), 400, "invalid_request")
        assert field_path in [e["path"] for e in error["details"]["errors"]], error
    # Non-finite numbers, which Python's json would accept: NaN, Infinity, and numbers beyond a double.
    for literal in ("NaN", "Infinity", "-Infinity", "1e400", "-1e999", "1" + "0" * 400):
        raw = json.dumps({"events": [*good, {"name": "x", "value": 0, "client_event_id": "b"}]})
        raw = raw.replace('"value": 0,', f'"value": {literal},')
        error = assert_error(
            ingest.post(path, content=raw.encode(), headers={"Content-Type": "application/json"}),
            400,
            "invalid_request",
        )
        if literal not in ("NaN", "Infinity", "-Infinity"):  # these are not JSON at all
            assert error["details"]["errors"][0]["path"] == "events[3].value", error
    assert_error(ingest.post(path, json={"events": []}), 400, "invalid_request")
    assert _points(client, experiment_id) == []


def test_batches_over_10000_events_or_5_mib_are_413(setup: tuple[str, httpx.Client]) -> None:
    experiment_id, ingest = setup
    path = f"/v1/experiments/{experiment_id}/metrics"
    too_many = {"events": [{"name": "m", "value": 1, "client_event_id": str(i)} for i in range(10_001)]}
    error = assert_error(ingest.post(path, json=too_many), 413, "payload_too_large")
    assert error["details"]["max_events"] == 10_000
    huge = b'{"events": [' + b" " * (5 * 1024 * 1024) + b"]}"
    assert_error(ingest.post(path, content=huge), 413, "payload_too_large")
    exactly = {"events": [{"name": "m", "value": 1, "client_event_id": str(i)} for i in range(10_000)]}
    assert ingest.post(path, json=exactly).json()["accepted"] == 10_000


def test_ingesting_into_a_terminal_experiment_is_409_experiment_closed(
    client: httpx.Client, setup: tuple[str, httpx.Client]
) -> None:
    experiment_id, ingest = setup
    path = f"/v1/experiments/{experiment_id}/metrics"
    assert ingest.post(path, json={"events": [event("a")]}).status_code == 200
    client.post(f"/v1/experiments/{experiment_id}/status", json={"status": "completed"})
    error = assert_error(ingest.post(path, json={"events": [event("b")]}), 409, "experiment_closed")
    assert error["details"]["status"] == "completed"
    assert len(_points(client, experiment_id)) == 1


def test_sync_true_answers_once_points_are_readable(
    client: httpx.Client, setup: tuple[str, httpx.Client]
) -> None:
    experiment_id, ingest = setup
    path = f"/v1/experiments/{experiment_id}/metrics"
    for batch in range(5):
        events = [event(f"{batch}-{i}", step=batch * 100 + i) for i in range(100)]
        response = ingest.post(path, params={"sync": "true"}, json={"events": events})
        assert response.json()["accepted"] == 100
        assert len(_points(client, experiment_id)) == (batch + 1) * 100
    assert_error(
        ingest.post(path, params={"sync": "maybe"}, json={"events": [event("z")]}), 400, "invalid_request"
    )


def test_listing_order_and_filters(client: httpx.Client, setup: tuple[str, httpx.Client]) -> None:
    experiment_id, ingest = setup
    path = f"/v1/experiments/{experiment_id}/metrics"
    events = [
        event("1", name="b", step=2),
        event("2", name="a", step=5, metadata={"split": "val"}),
        event("3", name="a", step=None),
        event("4", name="a", step=1, metadata={"split": "train"}),
        event("5", name="a", step=1, metadata={"split": "val"}),
        event("6", name="b", step=0, metadata={"split.x": "q"}),
    ]
    ingest.post(path, json={"events": events})
    order = [p["client_event_id"] for p in _points(client, experiment_id)]
    assert order == ["3", "4", "5", "2", "6", "1"]  # name, step (none first), ingestion order
    assert [
        p["client_event_id"] for p in _points(client, experiment_id, name="a", min_step=1, max_step=1)
    ] == [
        "4",
        "5",
    ]
    by_key = _points(client, experiment_id, metadata_key="split")
    assert [p["client_event_id"] for p in by_key] == ["4", "5", "2"]
    by_value = _points(client, experiment_id, metadata_key="split", metadata_value="val")
    assert [p["client_event_id"] for p in by_value] == ["5", "2"]
    assert [p["client_event_id"] for p in _points(client, experiment_id, metadata_key="split.x")] == ["6"]
    error = assert_error(client.get(path, params={"metadata_value": "val"}), 400, "invalid_request")
    assert error["details"]["errors"][0]["path"] == "metadata_value"
    point = next(p for p in _points(client, experiment_id) if p["client_event_id"] == "3")
    assert point["step"] is None
    assert point["metadata"] == {}
    assert_error(client.get("/v1/experiments/exp_missing/metrics"), 404, "not_found")


def test_values_round_trip_exactly(client: httpx.Client, setup: tuple[str, httpx.Client]) -> None:
    experiment_id, ingest = setup
    values = [0.1 + 0.2, 1e-300, -2.5e300, 123456789.123456789, 0, -0.0, 2**53]
    events = [event(str(i), value=v, step=i) for i, v in enumerate(values)]
    ingest.post(f"/v1/experiments/{experiment_id}/metrics", json={"events": events})
    assert [p["value"] for p in _points(client, experiment_id)] == [float(v) for v in values]


def test_a_resend_with_the_same_instant_written_otherwise_is_a_duplicate(
    client: httpx.Client, setup: tuple[str, httpx.Client]
) -> None:
    experiment_id, ingest = setup
    path = f"/v1/experiments/{experiment_id}/metrics"
    first = event("t1", step=1, timestamp="2026-11-23T10:00:00.355Z")
    assert ingest.post(path, json={"events": [first]}).json()["accepted"] == 1
    for same in ("2026-11-23T10:00:00.355000Z", "2026-11-23T11:00:00.355+01:00"):
        again = ingest.post(path, json={"events": [{**first, "timestamp": same}]}).json()
        assert (again["accepted"], again["duplicates"], again["conflicts"]) == (0, 1, [])
    moved = ingest.post(path, json={"events": [{**first, "timestamp": "2026-11-23T10:00:00.356Z"}]}).json()
    assert [c["client_event_id"] for c in moved["conflicts"]] == ["t1"]

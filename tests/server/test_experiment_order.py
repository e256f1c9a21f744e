"""listExperiments `order_by`: by creation either way, by name either way, and by a metric's last/min/max (over
every label set) either way with the experiments lacking it last; page walks from keyset cursors that never
repeat or skip an experiment, even while experiments are created and points arrive; a cursor bound to its order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .helpers import assert_error, event, unique

NewExperiment = Callable[..., dict[str, Any]]
IngestClient = Callable[[str], httpx.Client]


def walk(client: httpx.Client, page_size: int = 2, **params: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        query = {"page_size": page_size, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/experiments", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [e["id"] for e in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


@pytest.fixture
def runs(client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient) -> dict[str, Any]:
    """Seven experiments under one fresh prefix: names with a repeat, `loss` logged under two label sets (its
    min, max and last differ in order, with ties), two without `loss`."""
    prefix = unique("order")
    names = ["c", "a", "b", "a", "d", "e", "b"]
    made = [new_experiment(name=f"{prefix}-{name}") for name in names]
    # per experiment: [(step, value, labels)], in ingestion order; None: no loss at all
    curves: list[list[tuple[int | None, float, dict[str, str]]] | None] = [
        [(0, 5.0, {}), (1, 2.0, {"split": "val"}), (2, 3.0, {})],  # min 2, max 5, last 3
        [(0, 1.0, {}), (5, 4.0, {"split": "val"})],  # min 1, max 4, last 4
        None,
        [(3, 2.0, {}), (3, 9.0, {"split": "val"})],  # min 2, max 9, last 9 (tie at step 3: ingested last)
        [(None, 7.0, {}), (1, 3.0, {})],  # min 3, max 7, last 3 (a step wins over none)
        None,
        [(2, 3.0, {})],  # min 3, max 3, last 3
    ]
    for experiment, curve in zip(made, curves, strict=True):
        if curve is None:
            continue
        events = [
            event(f"p{i}", name="loss", value=value, step=step, metadata=labels)
            for i, (step, value, labels) in enumerate(curve)
        ]
        ingest_client(experiment["id"]).post(
            f"/v1/experiments/{experiment['id']}/metrics", json={"events": events}
        ).raise_for_status()
    return {"prefix": prefix, "ids": [e["id"] for e in made], "names": names, "curves": curves}


def test_by_creation_and_by_name_either_way(client: httpx.Client, runs: dict[str, Any]) -> None:
    ids, names, prefix = runs["ids"], runs["names"], runs["prefix"]
    assert walk(client, name_prefix=prefix) == ids
    assert walk(client, name_prefix=prefix, order_by="created_at") == ids
    assert walk(client, name_prefix=prefix, order_by="-created_at") == ids[::-1]
    by_name = [i for _, _, i in sorted(zip(names, range(len(ids)), ids, strict=True))]  # ties by creation
    assert walk(client, name_prefix=prefix, order_by="name") == by_name
    assert walk(client, name_prefix=prefix, order_by="-name") == by_name[::-1]
    assert walk(client, page_size=100, name_prefix=prefix, order_by="-name") == by_name[::-1]


@pytest.mark.parametrize("value", ["last", "min", "max"])
def test_by_a_metric_either_way_without_it_last(
    client: httpx.Client, runs: dict[str, Any], value: str
) -> None:
    ids, prefix = runs["ids"], runs["prefix"]
    summary: dict[str, float] = {}
    for experiment_id, curve in zip(ids, runs["curves"], strict=True):
        if curve is None:
            continue
        values = [v for _, v, _ in curve]
        last = max(range(len(curve)), key=lambda i: (-1 if curve[i][0] is None else curve[i][0], i))
        summary[experiment_id] = {"last": values[last], "min": min(values), "max": max(values)}[value]
    having = sorted(summary, key=lambda i: (summary[i], ids.index(i)))
    lacking = [i for i in ids if i not in summary]
    order = f"metric:loss:{value}"
    assert walk(client, name_prefix=prefix, order_by=order) == having + lacking
    assert walk(client, name_prefix=prefix, order_by=f"-{order}") == having[::-1] + lacking
    for size in (1, 3, 100):
        assert walk(client, size, name_prefix=prefix, order_by=f"-{order}") == having[::-1] + lacking
    # A metric no experiment has: all of them, by creation.
    assert walk(client, name_prefix=prefix, order_by=f"-metric:nothing/here:{value}") == ids


def test_a_walk_never_repeats_or_skips_while_data_arrives(
    client: httpx.Client, runs: dict[str, Any], new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    prefix = runs["prefix"]
    for order in ("-created_at", "name", "metric:loss:min", "-metric:loss:max"):
        everything = set(walk(client, name_prefix=prefix, order_by=order))
        seen: list[str] = []
        cursor = None
        while True:
            query = {"page_size": 2, "name_prefix": prefix, "order_by": order}
            body = client.get("/v1/experiments", params={**query, **({"cursor": cursor} if cursor else {})})
            seen += [e["id"] for e in body.json()["data"]]
            cursor = body.json()["next_cursor"]
            if cursor is None:
                break
            extra = new_experiment(name=f"{prefix}-z")  # lands somewhere in the order, maybe behind the walk
            ingest_client(extra["id"]).post(
                f"/v1/experiments/{extra['id']}/metrics",
                json={"events": [event("x", name="loss", value=0.5)]},
            ).raise_for_status()
        assert len(seen) == len(set(seen))
        assert everything <= set(seen)


def test_a_cursor_is_bound_to_its_order(client: httpx.Client, runs: dict[str, Any]) -> None:
    prefix = runs["prefix"]
    first = client.get(
        "/v1/experiments", params={"page_size": 1, "name_prefix": prefix, "order_by": "metric:loss:min"}
    ).json()
    cursor = first["next_cursor"]
    for other in ("metric:loss:max", "-metric:loss:min", "name", "created_at"):
        refused = client.get("/v1/experiments", params={"cursor": cursor, "order_by": other})
        error = assert_error(refused, 400, "invalid_request")
        assert "cursor" in str(error["details"])
    by_creation = client.get("/v1/experiments", params={"page_size": 1, "name_prefix": prefix}).json()
    refused = client.get(
        "/v1/experiments", params={"cursor": by_creation["next_cursor"], "order_by": "-name"}
    )
    assert_error(refused, 400, "invalid_request")
    bad = client.get("/v1/experiments", params={"order_by": "metric:loss:median"})
    assert "order_by" in str(assert_error(bad, 400, "invalid_request")["details"])

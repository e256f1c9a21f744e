"""Keyset pagination on every list: complete, in order, and stable while others insert."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from .helpers import assert_error, event, unique


def _walk(
    client: httpx.Client,
    path: str,
    page_size: int,
    between: Callable[[int], None] | None = None,
    **params: Any,
):  # type: ignore[no-untyped-def]
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {"page_size": page_size, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["data"]) <= page_size
        items += body["data"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        if between is not None:
            between(pages)


def test_experiments_page_walk_is_stable_while_others_insert(client: httpx.Client) -> None:
    prefix = unique("page")
    created = [
        client.post("/v1/experiments", json={"name": f"{prefix}-{i:02d}"}).json()["id"] for i in range(25)
    ]
    inserted: list[str] = []

    def insert(_: int) -> None:
        inserted.append(
            client.post("/v1/experiments", json={"name": f"{prefix}-new-{len(inserted)}"}).json()["id"]
        )

    items, pages = _walk(client, "/v1/experiments", 4, insert, name_prefix=prefix)
    ids = [e["id"] for e in items]
    assert len(ids) == len(set(ids))  # nothing twice
    assert ids[:25] == created  # nothing skipped, creation order
    assert ids[25:] == inserted[: len(ids) - 25]  # later inserts appear after, in order
    assert pages >= 7


def test_metric_page_walk_is_stable_while_others_insert(
    client: httpx.Client, new_experiment: Callable[..., Any], ingest_client: Callable[[str], httpx.Client]
) -> None:
    experiment = new_experiment()
    ingest = ingest_client(experiment["id"])
    path = f"/v1/experiments/{experiment['id']}/metrics"
    ingest.post(path, json={"events": [event(f"m{i}", name="m", step=i * 2) for i in range(50)]})

    def insert(page: int) -> None:  # points before and after the walk's position, and a new name
        more = [
            event(f"late{page}-{k}", name=n, step=s)
            for k, (n, s) in enumerate([("m", 1), ("m", 1000), ("z", 0)])
        ]
        assert ingest.post(path, json={"events": more}).json()["accepted"] == 3

    items, _ = _walk(client, path, 7, insert)
    ids = [p["client_event_id"] for p in items]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if i.startswith("m")] == [f"m{i}" for i in range(50)]
    keys = [(p["name"], p["step"]) for p in items]
    assert keys == sorted(keys)


def test_every_list_pages(
    client: httpx.Client, new_experiment: Callable[..., Any], ingest_client: Callable[[str], httpx.Client]
) -> None:
    parent = client.post("/v1/folders", json={"name": unique("pf")}).json()
    for i in range(5):
        client.post("/v1/folders", json={"name": f"c{i}", "parent_id": parent["id"]})
    experiment = new_experiment(folder_id=parent["id"])
    ingest = ingest_client(experiment["id"])  # one key
    for _ in range(4):
        client.post(f"/v1/experiments/{experiment['id']}/ingestion-keys", json={})
    exp_path = f"/v1/experiments/{experiment['id']}"
    for i in range(5):
        assert ingest.post(
            f"{exp_path}/annotations", json={"text": f"n{i}", "client_event_id": f"a{i}"}
        ).is_success
    names = [f"metric/{i}" for i in range(5)]
    events = [event(f"e{i}", name=n, metadata={"k": f"v{i}"}) for i, n in enumerate(names)]
    ingest.post(f"{exp_path}/metrics", json={"events": events})
    lists = {
        "/v1/folders": {"parent_id": parent["id"]},
        f"{exp_path}/ingestion-keys": {},
        f"{exp_path}/annotations": {},
        f"{exp_path}/metrics": {},
        "/v1/metric-catalog": {"folder_id": parent["id"]},
        "/v1/metric-catalog/values": {
            "experiment_id": experiment["id"],
            "metric_name": "metric/0",
            "metadata_key": "k",
        },
    }
    for path, params in lists.items():
        one_page, _ = _walk(client, path, 1000, **params)
        paged, pages = _walk(client, path, 2, **params)
        assert paged == one_page, path
        assert pages == (len(one_page) + 1) // 2 or len(one_page) == 1, path
    catalog, _ = _walk(client, "/v1/metric-catalog", 2, experiment_id=experiment["id"])
    assert [c["name"] for c in catalog] == names


def test_a_cursor_of_another_list_is_400(client: httpx.Client, new_experiment: Callable[..., Any]) -> None:
    prefix = unique("cur")
    for i in range(3):
        new_experiment(name=f"{prefix}-{i}")
    cursor = client.get("/v1/experiments", params={"page_size": 1, "name_prefix": prefix}).json()[
        "next_cursor"
    ]
    assert cursor
    assert_error(client.get("/v1/metric-catalog", params={"cursor": cursor}), 400, "invalid_request")
    assert_error(client.get("/v1/experiments", params={"cursor": cursor + "x"}), 400, "invalid_request")

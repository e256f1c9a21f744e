"""Several clients ingesting overlapping batches in parallel end with exact counts, no duplicate rows and exact
series rollups."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tally_server import RunningServer

from .helpers import make_client
from .test_metric_series import check_exact


def test_parallel_overlapping_batches_store_each_event_once(
    live_server: RunningServer, client: httpx.Client, new_experiment: Callable[..., Any]
) -> None:
    experiment = new_experiment()
    path = f"/v1/experiments/{experiment['id']}/metrics"
    token = client.post(f"/v1/experiments/{experiment['id']}/ingestion-keys", json={}).json()["token"]
    universe = 3000
    workers, batches_per_worker, batch_size = 6, 5, 400

    def payload(i: int) -> dict[str, Any]:
        return {
            "name": f"m/{i % 3}",
            "value": i / 7,
            "step": i // 3,
            "metadata": {"host": str(i % 2)},
            "client_event_id": f"cid-{i}",
        }

    def work(seed: int) -> tuple[int, int, int]:
        rng = random.Random(seed)
        accepted = duplicates = conflicts = 0
        with make_client(live_server, token) as ingest:
            for _ in range(batches_per_worker):
                ids = rng.sample(range(universe), batch_size)
                result = ingest.post(path, json={"events": [payload(i) for i in ids]}).json()
                accepted += result["accepted"]
                duplicates += result["duplicates"]
                conflicts += len(result["conflicts"])
        return accepted, duplicates, conflicts

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(work, range(workers)))
    sent = workers * batches_per_worker * batch_size
    accepted = sum(r[0] for r in results)
    assert sum(r[1] for r in results) == sent - accepted
    assert sum(r[2] for r in results) == 0
    stored: list[str] = []
    cursor = None
    while True:
        params = {"page_size": 1000, **({"cursor": cursor} if cursor else {})}
        page = client.get(path, params=params).json()
        stored += [p["client_event_id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(stored) == len(set(stored)) == accepted
    catalog = client.get("/v1/metric-catalog", params={"experiment_id": experiment["id"]}).json()["data"]
    assert sum(entry["count"] for entry in catalog) == accepted
    for name in ("m/0", "m/1", "m/2"):  # the rollups upserted by racing batches add up exactly
        points = [p for p in _all_points(client, path) if p["name"] == name]
        series = client.get(f"{path}/series", params={"name": name, "max_points": 7}).json()
        check_exact(series, points, 7)


def _all_points(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get(path, params={"page_size": 1000, **({"cursor": cursor} if cursor else {})}).json()
        found += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found

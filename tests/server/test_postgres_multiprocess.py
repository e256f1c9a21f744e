"""Several `python -m tally_server` processes on one PostgreSQL database: every rule of the contract holds across
them because the database enforces it (no lock inside a process could)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from .postgres_cluster import PostgresCluster
from .processes import ServerProcess
from .summaries import expected_summary, stored_points, summary

PROCESSES = 3


@pytest.fixture
def servers(postgres: PostgresCluster, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Three server processes started at the same moment on one new database (so they also race to migrate
    it and to create its first organisation)."""
    url = postgres.create_database("multi")
    procs = [ServerProcess(url, tmp_path / f"config-{i}") for i in range(PROCESSES)]  # type: ignore[arg-type]
    try:
        with ThreadPoolExecutor(PROCESSES) as pool:
            list(pool.map(lambda p: p.start(), procs))
        yield procs
    finally:
        for p in procs:
            p.stop()


def _pages(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get(
            path, params={"page_size": 1000, **params, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        items += page.json()["data"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_processes_share_one_organisation(servers: list[ServerProcess]) -> None:
    ids = set()
    for server in servers:
        with server.client() as c:
            folder = c.post("/v1/folders", json={"name": f"from-{server.port}"})
            assert folder.status_code == 201, folder.text
        ids.add(folder.json()["id"])
    with servers[0].client() as c:
        names = {f["name"] for f in _pages(c, "/v1/folders")}
    assert names == {f"from-{s.port}" for s in servers}


def test_overlapping_batches_across_processes_store_each_event_once(servers: list[ServerProcess]) -> None:
    """Batches that overlap, sent at once through several processes: each event is stored once, and the metric
    summaries their concurrent upserts keep are exactly those of the stored points."""
    with servers[0].client() as c:
        experiment = c.post("/v1/experiments", json={"name": "multi-ingest"}).json()
        token = c.post(f"/v1/experiments/{experiment['id']}/ingestion-keys", json={}).json()["token"]
    path = f"/v1/experiments/{experiment['id']}/metrics"
    universe, workers, batches, size = 2000, 6, 4, 300

    def payload(i: int) -> dict[str, Any]:
        # 10 points a step per metric and shard: concurrent batches tie on steps, so the summaries' `last`
        # (highest step, then the one ingested last) is decided across processes
        return {"name": f"m/{i % 4}", "value": i / 7, "step": i // 40, "client_event_id": f"cid-{i}",
                "metadata": {"shard": str(i % 2)}}  # fmt: skip

    def work(seed: int) -> tuple[int, int, int]:
        rng = random.Random(seed)
        totals = [0, 0, 0]
        with servers[seed % PROCESSES].client(token) as ingest:  # clients spread over the processes
            for _ in range(batches):
                ids = rng.sample(range(universe), size)
                response = ingest.post(path, json={"events": [payload(i) for i in ids]})
                assert response.status_code == 200, response.text
                result = response.json()
                totals[0] += result["accepted"]
                totals[1] += result["duplicates"]
                totals[2] += len(result["conflicts"])
        return totals[0], totals[1], totals[2]

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(work, range(workers)))
    accepted = sum(r[0] for r in results)
    assert sum(r[1] for r in results) == workers * batches * size - accepted
    assert sum(r[2] for r in results) == 0
    for server in servers:  # every process reads the same, exact data
        with server.client() as c:
            stored = [p["client_event_id"] for p in _pages(c, path)]
            assert len(stored) == len(set(stored)) == accepted
            catalog = _pages(c, "/v1/metric-catalog", experiment_id=experiment["id"])
            assert sum(entry["count"] for entry in catalog) == accepted
            values = _pages(c, "/v1/metric-catalog/values", metric_name="m/0", metadata_key="shard",
                            experiment_id=experiment["id"])  # fmt: skip
            assert sum(v["count"] for v in values) == sum(1 for s in stored if int(s[4:]) % 4 == 0)
            # The summaries kept at ingest by concurrent upserts are those of the stored points.
            assert summary(c, experiment["id"]) == expected_summary(stored_points(c, experiment["id"]))


def test_one_resource_per_idempotency_key_across_processes(servers: list[ServerProcess]) -> None:
    keys = [f"multi-key-{i}" for i in range(8)]

    def create(index: int) -> list[tuple[int, str]]:
        outcomes: list[tuple[int, str]] = []
        with servers[index % PROCESSES].client() as c:  # several clients, several processes, the same keys
            for k in keys:
                body = {"name": f"idem-{k}"}
                response = c.post("/v1/experiments", json=body, headers={"Idempotency-Key": k})
                while (
                    response.status_code == 409
                    and response.json()["error"]["code"] == "idempotency_in_progress"
                ):
                    response = c.post("/v1/experiments", json=body, headers={"Idempotency-Key": k})
                assert response.status_code == 201, response.text
                outcomes.append((response.status_code, response.json()["id"]))
        return outcomes

    with ThreadPoolExecutor(len(servers) * 2) as pool:
        results = list(pool.map(create, range(len(servers) * 2)))
    for position in range(len(keys)):  # every client got the one experiment of each key
        assert len({r[position][1] for r in results}) == 1
    with servers[0].client() as c:
        names = [e["name"] for e in _pages(c, "/v1/experiments")]
    for k in keys:
        assert names.count(f"idem-{k}") == 1


def test_folder_names_and_status_transitions_hold_across_processes(servers: list[ServerProcess]) -> None:
    def create_folder(index: int) -> int:
        with servers[index % PROCESSES].client() as c:
            return c.post("/v1/folders", json={"name": "contested"}).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(create_folder, range(6)))
    assert statuses == [201, 409, 409, 409, 409, 409]

    with servers[0].client() as c:
        experiment = c.post("/v1/experiments", json={"name": "contested-status"}).json()

    def finish(index: int) -> tuple[int, str]:
        status = ("completed", "failed", "cancelled")[index % 3]
        with servers[index % PROCESSES].client() as c:
            response = c.post(f"/v1/experiments/{experiment['id']}/status", json={"status": status})
            return response.status_code, status

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(finish, range(6)))
    winners = {status for code, status in outcomes if code == 200}
    assert len(winners) == 1, outcomes  # a terminal state is final: one transition won, the rest are 409
    assert all(code in (200, 409) for code, _ in outcomes)
    with servers[1].client() as c:
        assert c.get(f"/v1/experiments/{experiment['id']}").json()["status"] == winners.pop()

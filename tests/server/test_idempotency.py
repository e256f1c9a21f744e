"""Idempotency-Key: replay, reuse with another body, in progress, 5xx not stored, 4xx stored, org scope."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tally_server import RunningServer
from tally_server.errors import ApiError
from tally_server.idempotency import fingerprint

from .helpers import assert_error, event, make_client, unique


def _key() -> str:
    return unique("idem")


def test_a_finished_request_is_replayed_with_the_header(client: httpx.Client) -> None:
    key, body = _key(), {"name": unique("f")}
    first = client.post("/v1/folders", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    second = client.post("/v1/folders", json=body, headers={"Idempotency-Key": key})
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    names = [f["name"] for f in client.get("/v1/folders", params={"page_size": 1000}).json()["data"]]
    assert names.count(body["name"]) == 1


def test_the_same_key_with_another_body_or_path_is_422(
    client: httpx.Client, new_experiment: Callable[..., Any]
) -> None:
    key = _key()
    assert (
        client.post("/v1/folders", json={"name": unique()}, headers={"Idempotency-Key": key}).status_code
        == 201
    )
    assert_error(
        client.post("/v1/folders", json={"name": unique()}, headers={"Idempotency-Key": key}),
        422,
        "idempotency_key_reused",
    )
    assert_error(
        client.post("/v1/experiments", json={"name": unique()}, headers={"Idempotency-Key": key}),
        422,
        "idempotency_key_reused",
    )


def test_a_request_still_running_is_409_with_retry_after(
    live_server: RunningServer, client: httpx.Client
) -> None:
    key, body = _key(), {"name": unique("f")}
    org_pk = live_server.repository.authenticate(live_server.api_key).org_pk
    raw = httpx.Request("POST", live_server.url + "/v1/folders", json=body).content
    # Claim the key as a first request would, and keep it running while the second arrives.
    claim = live_server.repository.idempotency_claim(
        org_pk, key, fingerprint("POST", "/v1/folders", "", raw), time.time_ns() // 1000, 0, 0
    )
    assert claim.state == "claimed"
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    response = client.post("/v1/folders", content=raw, headers=headers)
    assert_error(response, 409, "idempotency_in_progress")
    assert response.headers["Retry-After"] == "1"
    live_server.repository.idempotency_release(org_pk, key)
    assert client.post("/v1/folders", content=raw, headers=headers).status_code == 201


def test_a_concurrent_duplicate_is_refused_while_the_first_runs(
    live_server: RunningServer, client: httpx.Client, new_experiment: Callable[..., Any]
) -> None:
    pipeline = live_server.app.state.pipeline
    original = pipeline.handlers["createFolder"]
    entered, release = threading.Event(), threading.Event()

    def slow(call: Any) -> Any:
        entered.set()
        release.wait(30)
        return original(call)

    pipeline.handlers["createFolder"] = slow
    key, body = _key(), {"name": unique("slow")}
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.post, "/v1/folders", json=body, headers={"Idempotency-Key": key})
            assert entered.wait(30)
            second = client.post("/v1/folders", json=body, headers={"Idempotency-Key": key})
            release.set()
            assert first.result().status_code == 201
    finally:
        release.set()
        pipeline.handlers["createFolder"] = original
    assert_error(second, 409, "idempotency_in_progress")
    replay = client.post("/v1/folders", json=body, headers={"Idempotency-Key": key})
    assert replay.headers["Idempotent-Replayed"] == "true"


@pytest.fixture
def failing_once(live_server: RunningServer) -> Iterator[list[int]]:
    """createFolder fails with a 5xx on its first call, then works."""
    pipeline = live_server.app.state.pipeline
    original = pipeline.handlers["createFolder"]
    calls: list[int] = []

    def flaky(call: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ApiError(503, "unavailable", "Try again.", None, {"Retry-After": "1"})
        return original(call)

    pipeline.handlers["createFolder"] = flaky
    yield calls
    pipeline.handlers["createFolder"] = original


def test_5xx_answers_are_not_stored(client: httpx.Client, failing_once: list[int]) -> None:
    key, body = _key(), {"name": unique("f")}
    assert_error(client.post("/v1/folders", json=body, headers={"Idempotency-Key": key}), 503, "unavailable")
    retry = client.post("/v1/folders", json=body, headers={"Idempotency-Key": key})
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry.headers
    assert len(failing_once) == 2


def test_an_unexpected_exception_is_an_enveloped_500_and_not_stored(
    live_server: RunningServer, client: httpx.Client
) -> None:
    pipeline = live_server.app.state.pipeline
    original = pipeline.handlers["createFolder"]

    def broken(call: Any) -> Any:
        raise RuntimeError("boom tk_org_secret")

    pipeline.handlers["createFolder"] = broken
    key, body = _key(), {"name": unique("f")}
    try:
        error = assert_error(
            client.post("/v1/folders", json=body, headers={"Idempotency-Key": key}), 500, "internal"
        )
        assert "boom" not in error["message"]
    finally:
        pipeline.handlers["createFolder"] = original
    assert client.post("/v1/folders", json=body, headers={"Idempotency-Key": key}).status_code == 201


def test_4xx_answers_are_stored_and_replayed(client: httpx.Client) -> None:
    key, body = _key(), {"name": unique("f"), "parent_id": "fld_missing"}
    first = assert_error(
        client.post("/v1/folders", json=body, headers={"Idempotency-Key": key}), 404, "not_found"
    )
    second = client.post("/v1/folders", json=body, headers={"Idempotency-Key": key})
    replayed = assert_error(second, 404, "not_found")
    assert second.headers["Idempotent-Replayed"] == "true"
    assert replayed["message"] == first["message"]


def test_a_replayed_ingestion_key_is_the_same_key_with_a_usable_token(
    live_server: RunningServer, client: httpx.Client, new_experiment: Callable[..., Any]
) -> None:
    experiment = new_experiment()
    path = f"/v1/experiments/{experiment['id']}/ingestion-keys"
    key = _key()
    first = client.post(path, json={"name": "a"}, headers={"Idempotency-Key": key}).json()
    second = client.post(path, json={"name": "a"}, headers={"Idempotency-Key": key})
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first["id"]  # the same key; its token is issued anew (none is stored)
    assert len(client.get(path).json()["data"]) == 1
    with make_client(live_server, second.json()["token"]) as ingest:
        body = {"events": [event("x")]}
        assert ingest.post(f"/v1/experiments/{experiment['id']}/metrics", json=body).status_code == 200


def test_ingest_replays_its_counts(
    client: httpx.Client, new_experiment: Callable[..., Any], ingest_client: Any
) -> None:
    experiment = new_experiment()
    ingest = ingest_client(experiment["id"])
    path = f"/v1/experiments/{experiment['id']}/metrics"
    body = {"events": [event(str(i), step=i) for i in range(10)]}
    key = _key()
    assert ingest.post(path, json=body, headers={"Idempotency-Key": key}).json()["accepted"] == 10
    replay = ingest.post(path, json=body, headers={"Idempotency-Key": key})
    assert replay.json()["accepted"] == 10  # the stored answer, not a new run (which would say 10 duplicates)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert ingest.post(path, json=body, headers={"Idempotency-Key": _key()}).json()["duplicates"] == 10


def test_keys_are_scoped_per_organisation(live_server: RunningServer, client: httpx.Client) -> None:
    _, token = live_server.repository.create_organization(unique("org"))
    key = _key()
    name = unique("f")
    mine = client.post("/v1/folders", json={"name": name}, headers={"Idempotency-Key": key})
    with make_client(live_server, token) as other:
        theirs = other.post("/v1/folders", json={"name": name}, headers={"Idempotency-Key": key})
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]


def test_invalid_idempotency_keys_are_400(client: httpx.Client) -> None:
    for bad in ("", "x" * 256, "caf\u00e9", "tab\there"):
        response = client.post(
            "/v1/folders", json={"name": unique()}, headers=[("Idempotency-Key", bad.encode("latin-1"))]
        )
        error = assert_error(response, 400, "invalid_request")
        assert error["details"]["errors"][0]["path"] == "Idempotency-Key"


def test_compare_accepts_the_header_without_storing(
    client: httpx.Client, new_experiment: Callable[..., Any]
) -> None:
    experiment = new_experiment()
    key = _key()
    body = {"series": [{"experiment_id": experiment["id"], "name": "x"}]}
    for _ in range(2):
        response = client.post("/v1/metrics/compare", json=body, headers={"Idempotency-Key": key})
        assert response.status_code == 200
        assert "Idempotent-Replayed" not in response.headers

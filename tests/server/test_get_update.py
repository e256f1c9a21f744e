"""Reading one annotation or ingestion key, and updating an annotation (contract 1.5.0): getAnnotation,
updateAnnotation, getIngestionKey. Run on both backends (the live server of tests/server/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tally_server import RunningServer

from .helpers import assert_error, unique

NewExperiment = Callable[..., dict[str, Any]]
IngestClient = Callable[[str], httpx.Client]


def _annotated(
    new_experiment: NewExperiment, ingest_client: IngestClient, **fields: Any
) -> tuple[str, httpx.Client, dict[str, Any]]:
    experiment_id = new_experiment()["id"]
    ingest = ingest_client(experiment_id)
    body = {"text": "lr drop", "step": 3, "metadata": {"lr": 0.1}, "client_event_id": "note-1", **fields}
    created = ingest.post(f"/v1/experiments/{experiment_id}/annotations", json=body)
    assert created.status_code == 201, created.text
    return experiment_id, ingest, created.json()


# ---- getAnnotation ---------------------------------------------------------------------------------------------
def test_get_annotation_answers_it_in_its_experiment_only(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment_id, ingest, note = _annotated(new_experiment, ingest_client)
    path = f"/v1/experiments/{experiment_id}/annotations/{note['id']}"
    got = client.get(path)
    assert got.status_code == 200, got.text
    assert got.json() == note
    assert got.json() == client.get(f"/v1/experiments/{experiment_id}/annotations").json()["data"][0]

    other = new_experiment()["id"]
    assert_error(client.get(f"/v1/experiments/{other}/annotations/{note['id']}"), 404, "not_found")
    assert_error(client.get(f"/v1/experiments/{experiment_id}/annotations/ann_missing"), 404, "not_found")
    assert_error(client.get(f"/v1/experiments/exp_missing/annotations/{note['id']}"), 404, "not_found")
    assert_error(ingest.get(path), 403, "forbidden")  # an org key's operation
    assert client.delete(path).status_code == 204
    assert_error(client.get(path), 404, "not_found")


# ---- updateAnnotation ------------------------------------------------------------------------------------------
def test_update_annotation_changes_only_what_is_given_and_null_clears(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment_id, ingest, note = _annotated(new_experiment, ingest_client)
    path = f"/v1/experiments/{experiment_id}/annotations/{note['id']}"

    texted = client.patch(path, json={"text": "lr drop (cosine)"})
    assert texted.status_code == 200, texted.text
    assert texted.json() == {**note, "text": "lr drop (cosine)"}
    retagged = client.patch(path, json={"metadata": {"lr": 0.01, "why": {"plateau": True}}}).json()
    assert retagged == {
        **note,
        "text": "lr drop (cosine)",
        "metadata": {"lr": 0.01, "why": {"plateau": True}},
    }
    cleared = client.patch(path, json={"metadata": None}).json()
    assert cleared["metadata"] == {}
    assert client.get(path).json() == cleared
    assert [a["text"] for a in client.get(f"/v1/experiments/{experiment_id}/annotations").json()["data"]] == [
        "lr drop (cosine)"
    ]

    # the stored annotation is no longer the first payload: re-creating it with its client_event_id conflicts
    again = ingest.post(
        f"/v1/experiments/{experiment_id}/annotations",
        json={"text": "lr drop", "step": 3, "metadata": {"lr": 0.1}, "client_event_id": "note-1"},
    )
    assert_error(again, 409, "conflict")


def test_update_annotation_validates_like_create(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment_id, ingest, note = _annotated(new_experiment, ingest_client)
    path = f"/v1/experiments/{experiment_id}/annotations/{note['id']}"
    for body, field in (
        ({}, "(body)"),
        ({"text": ""}, "text"),
        ({"text": "x" * 10_001}, "text"),
        ({"step": 4}, "step"),
        ({"metadata": {str(i): i for i in range(65)}}, "metadata"),
        ({"metadata": {"": 1}}, "metadata"),
        ({"metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}}, "metadata"),
        ({"metadata": {"big": "x" * 9000}}, "metadata"),
    ):
        error = assert_error(client.patch(path, json=body), 400, "invalid_request")
        assert field in str(error["details"]), (body, error)
    assert client.get(path).json() == note  # nothing changed
    assert_error(
        client.patch(f"/v1/experiments/{experiment_id}/annotations/ann_missing", json={"text": "t"}),
        404,
        "not_found",
    )
    assert_error(ingest.patch(path, json={"text": "t"}), 403, "forbidden")


def test_update_annotation_is_idempotent_by_key(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment_id, _, note = _annotated(new_experiment, ingest_client)
    path = f"/v1/experiments/{experiment_id}/annotations/{note['id']}"
    key = {"Idempotency-Key": unique("patch")}
    first = client.patch(path, json={"text": "one"}, headers=key)
    assert first.status_code == 200, first.text
    assert client.patch(path, json={"text": "two"}).status_code == 200
    replayed = client.patch(path, json={"text": "one"}, headers=key)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == first.json()
    assert client.get(path).json()["text"] == "two"  # the replay did not run again
    assert_error(client.patch(path, json={"text": "three"}, headers=key), 422, "idempotency_key_reused")


# ---- getIngestionKey -------------------------------------------------------------------------------------------
def test_get_ingestion_key_never_answers_its_token(
    live_server: RunningServer, client: httpx.Client, new_experiment: NewExperiment
) -> None:
    experiment_id = new_experiment()["id"]
    created = client.post(f"/v1/experiments/{experiment_id}/ingestion-keys", json={"name": "trainer"}).json()
    got = client.get(f"/v1/ingestion-keys/{created['id']}")
    assert got.status_code == 200, got.text
    assert "token" not in got.json()
    assert created["token"] not in got.text
    assert got.json() == {k: v for k, v in created.items() if k != "token"}
    listed = client.get(f"/v1/experiments/{experiment_id}/ingestion-keys").json()["data"]
    assert got.json() == listed[0]

    revoked = client.post(f"/v1/ingestion-keys/{created['id']}/revoke").json()
    assert client.get(f"/v1/ingestion-keys/{created['id']}").json() == revoked
    assert revoked["revoked_at"] is not None

    assert_error(client.get("/v1/ingestion-keys/ik_missing"), 404, "not_found")
    own_key_id = client.get("/v1/auth/status").json()["key_id"]
    assert_error(
        client.get(f"/v1/ingestion-keys/{own_key_id}"), 404, "not_found"
    )  # an org key is no ingestion key
    stranger_token = live_server.repository.create_organization(unique("org"))[1]
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {stranger_token}"}
    ) as stranger:
        assert_error(stranger.get(f"/v1/ingestion-keys/{created['id']}"), 404, "not_found")
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {created['token']}"}
    ) as ingest:
        assert_error(ingest.get(f"/v1/ingestion-keys/{created['id']}"), 401, "unauthenticated")  # revoked

"""The one way out of a terminal status (contract 1.5.0): `{"status": "running", "reopen": true}` reopens a
completed, failed or cancelled experiment, for an organisation key only, and records the reopening as an
annotation in the same transaction. Run on both backends (the live server of tests/server/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .helpers import assert_error, event

NewExperiment = Callable[..., dict[str, Any]]
IngestClient = Callable[[str], httpx.Client]


@pytest.mark.parametrize("final", ["completed", "failed", "cancelled"])
def test_reopen_brings_a_terminal_experiment_back_to_running_and_records_it(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient, final: str
) -> None:
    experiment_id = new_experiment()["id"]
    path = f"/v1/experiments/{experiment_id}/status"
    ended = client.post(path, json={"status": final}).json()
    assert ended["ended_at"] is not None
    # Without reopen, terminal stays final.
    assert_error(client.post(path, json={"status": "running"}), 409, "invalid_transition")
    assert_error(client.post(path, json={"status": "running", "reopen": False}), 409, "invalid_transition")

    reopened = client.post(path, json={"status": "running", "reopen": True})
    assert reopened.status_code == 200, reopened.text
    assert (reopened.json()["status"], reopened.json()["ended_at"]) == ("running", None)
    assert client.get(f"/v1/experiments/{experiment_id}").json() == reopened.json()

    [note] = client.get(f"/v1/experiments/{experiment_id}/annotations").json()["data"]
    key_id = client.get("/v1/auth/status").json()["key_id"]
    assert note["text"] == f"reopened (was {final})"
    assert note["metadata"] == {"tally.event": "reopen", "from": final, "key_id": key_id}

    # Running again: ingestion is accepted; a second reopen of a running experiment changes and records nothing.
    accepted = ingest_client(experiment_id).post(
        f"/v1/experiments/{experiment_id}/metrics",
        json={"events": [event("after-reopen", "loss", 1.0, step=1)]},
    )
    assert accepted.status_code == 200, accepted.text
    again = client.post(path, json={"status": "running", "reopen": True})
    assert again.status_code == 200, again.text
    assert len(client.get(f"/v1/experiments/{experiment_id}/annotations").json()["data"]) == 1
    # And it can end again.
    assert client.post(path, json={"status": "completed"}).json()["status"] == "completed"


def test_reopen_takes_only_status_running_and_names_the_field(
    client: httpx.Client, new_experiment: NewExperiment
) -> None:
    experiment_id = new_experiment()["id"]
    path = f"/v1/experiments/{experiment_id}/status"
    client.post(path, json={"status": "failed"})
    error = assert_error(
        client.post(path, json={"status": "completed", "reopen": True}), 409, "invalid_transition"
    )
    assert error["message"].startswith("reopen: true reopens to status 'running' only")
    assert_error(client.post(path, json={"status": "running", "reopen": "yes"}), 400, "invalid_request")
    assert client.get(f"/v1/experiments/{experiment_id}").json()["status"] == "failed"
    assert client.get(f"/v1/experiments/{experiment_id}/annotations").json()["data"] == []


def test_an_ingestion_key_cannot_reopen(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment_id = new_experiment()["id"]
    path = f"/v1/experiments/{experiment_id}/status"
    client.post(path, json={"status": "completed"})
    assert_error(
        ingest_client(experiment_id).post(path, json={"status": "running", "reopen": True}), 403, "forbidden"
    )
    assert client.get(f"/v1/experiments/{experiment_id}").json()["status"] == "completed"

"""Deleting (contract 1.5.0): deleteExperiment removes the experiment and every row that refers to it, in one
transaction. Run on both backends (the live server of tests/server/conftest.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import Table, func, select

from tally_server import RunningServer
from tally_server.storage import schema

from .helpers import assert_error, event, unique

NewExperiment = Callable[..., dict[str, Any]]
IngestClient = Callable[[str], httpx.Client]

REFERRING = sorted(
    (table for table in schema.metadata.tables.values() if "experiment" in table.c), key=lambda t: t.name
)
"""Every table with an experiment column, from schema.py itself: a table added later is checked with no edit."""


def _rows_of(live_server: RunningServer, experiment_id: str) -> dict[str, int]:
    """How many rows of each referring table (and of `experiments`) belong to the experiment."""
    repo: Any = live_server.repository
    org_pk = repo.authenticate(live_server.api_key).org_pk
    experiment_pk, _ = repo.experiment_ref(org_pk, experiment_id)
    return _rows_of_pk(live_server, experiment_pk)


def _rows_of_pk(live_server: RunningServer, experiment_pk: int) -> dict[str, int]:
    repo: Any = live_server.repository
    counts: dict[str, int] = {}
    with repo.db.read() as conn:
        table: Table
        for table in REFERRING:
            query = select(func.count()).select_from(table).where(table.c.experiment == experiment_pk)
            counts[table.name] = int(conn.execute(query).scalar_one())
        experiments = schema.experiments
        query = select(func.count()).select_from(experiments).where(experiments.c.pk == experiment_pk)
        counts["experiments"] = int(conn.execute(query).scalar_one())
    return counts


def _filled(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> dict[str, Any]:
    """An experiment with something in every table that can refer to it."""
    created = new_experiment(tags=["doomed", unique("tag")], metadata={"lr": 0.1, "opt": {"name": "adam"}})
    experiment_id = created["id"]
    ingest = ingest_client(experiment_id)
    events = [event(f"e{i}", step=i, value=float(i), metadata={"split": "train"}) for i in range(5)]
    events.append(event("nostep", name="eval/acc", step=None))
    answer = ingest.post(f"/v1/experiments/{experiment_id}/metrics", json={"events": events})
    assert answer.status_code == 200, answer.text
    note = ingest.post(
        f"/v1/experiments/{experiment_id}/annotations", json={"text": "n", "client_event_id": "n"}
    )
    assert note.status_code == 201, note.text
    content = f"artifact of {experiment_id}".encode()
    stored = client.post(
        f"/v1/experiments/{experiment_id}/artifacts",
        params={"name": "a.bin", "sha256": hashlib.sha256(content).hexdigest()},
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert stored.status_code == 201, stored.text
    return {"experiment": created, "ingest": ingest, "annotation": note.json()}


def test_delete_experiment_removes_every_row_that_refers_to_it(
    live_server: RunningServer,
    client: httpx.Client,
    new_experiment: NewExperiment,
    ingest_client: IngestClient,
) -> None:
    filled = _filled(client, new_experiment, ingest_client)
    experiment_id = filled["experiment"]["id"]
    kept = _filled(client, new_experiment, ingest_client)["experiment"]["id"]
    before = _rows_of(live_server, experiment_id)
    empty = sorted(name for name, count in before.items() if count == 0)
    assert empty == [], (
        f"the test fills every table that refers to an experiment; these stayed empty: {empty}"
    )
    kept_before = _rows_of(live_server, kept)
    repo: Any = live_server.repository
    experiment_pk, _ = repo.experiment_ref(repo.authenticate(live_server.api_key).org_pk, experiment_id)

    deleted = client.delete(f"/v1/experiments/{experiment_id}")
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert deleted.headers["X-Request-Id"]

    assert _rows_of_pk(live_server, experiment_pk) == dict.fromkeys(before, 0)
    assert _rows_of(live_server, kept) == kept_before  # the neighbour keeps everything
    assert client.get(f"/v1/experiments/{kept}").status_code == 200


def test_a_deleted_experiment_is_404_everywhere_and_its_keys_stop_working(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    filled = _filled(client, new_experiment, ingest_client)
    experiment_id = filled["experiment"]["id"]
    ingest: httpx.Client = filled["ingest"]
    tag = filled["experiment"]["tags"][1]
    assert client.delete(f"/v1/experiments/{experiment_id}").status_code == 204

    base = f"/v1/experiments/{experiment_id}"
    for path in (base, f"{base}/summary", f"{base}/metrics", f"{base}/annotations", f"{base}/ingestion-keys"):
        assert_error(client.get(path), 404, "not_found")
    assert_error(client.delete(base), 404, "not_found")  # a second delete (without a key) finds nothing
    for params in ({"tag": tag}, {"tag": tag, "include_archived": "true"}, {"name_prefix": "exp"}):
        listed = client.get("/v1/experiments", params={**params, "page_size": 1000}).json()["data"]
        assert experiment_id not in [e["id"] for e in listed]
    catalog = client.get("/v1/metric-catalog", params={"experiment_id": experiment_id})
    assert catalog.status_code == 404 or catalog.json()["data"] == [], catalog.text
    # its ingestion keys were deleted with it: unknown tokens
    assert_error(ingest.post(f"{base}/metrics", json={"events": [event("after")]}), 401, "unauthenticated")
    assert_error(
        ingest.post(f"{base}/annotations", json={"text": "t", "client_event_id": "t"}), 401, "unauthenticated"
    )


def test_delete_experiment_works_in_every_state_and_only_in_its_organisation(
    live_server: RunningServer, client: httpx.Client, new_experiment: NewExperiment
) -> None:
    archived = new_experiment()["id"]
    assert client.post(f"/v1/experiments/{archived}/archive").status_code == 200
    completed = new_experiment()["id"]
    assert client.post(f"/v1/experiments/{completed}/status", json={"status": "completed"}).status_code == 200
    other_org = live_server.repository.create_organization(unique("org"))[1]
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {other_org}"}) as stranger:
        assert_error(stranger.delete(f"/v1/experiments/{archived}"), 404, "not_found")
    assert client.get(f"/v1/experiments/{archived}").status_code == 200
    for experiment_id in (archived, completed):
        assert client.delete(f"/v1/experiments/{experiment_id}").status_code == 204
        assert_error(client.get(f"/v1/experiments/{experiment_id}"), 404, "not_found")


def test_a_delete_racing_ingests_leaves_no_orphan_rows(
    live_server: RunningServer,
    client: httpx.Client,
    new_experiment: NewExperiment,
    ingest_client: IngestClient,
) -> None:
    """Ingests running while the experiment is deleted either land before (and are deleted with it) or are
    refused after (401: the key went with it; 404: the experiment did): never a point left behind."""
    experiment_id = new_experiment()["id"]
    ingest = ingest_client(experiment_id)
    repo: Any = live_server.repository
    experiment_pk, _ = repo.experiment_ref(repo.authenticate(live_server.api_key).org_pk, experiment_id)
    path = f"/v1/experiments/{experiment_id}/metrics"

    def send(batch: int) -> int:
        events = [event(f"b{batch}-{i}", step=batch * 100 + i, metadata={"b": str(batch)}) for i in range(50)]
        return ingest.post(path, json={"events": events}).status_code

    with ThreadPoolExecutor(4) as pool:
        sent = [pool.submit(send, batch) for batch in range(12)]
        assert client.delete(f"/v1/experiments/{experiment_id}").status_code == 204
        statuses = {future.result() for future in sent}
    assert statuses <= {200, 401, 404}, statuses
    assert set(_rows_of_pk(live_server, experiment_pk).values()) == {0}


def test_a_delete_racing_key_creation_is_never_a_500(
    live_server: RunningServer, client: httpx.Client, new_experiment: NewExperiment
) -> None:
    """Ingestion keys created while their experiment is deleted are created before (and deleted with it) or
    refused after (404): never a foreign-key error, never a key left behind."""
    experiment_id = new_experiment()["id"]
    repo: Any = live_server.repository
    experiment_pk, _ = repo.experiment_ref(repo.authenticate(live_server.api_key).org_pk, experiment_id)

    def create(_: int) -> int:
        return client.post(f"/v1/experiments/{experiment_id}/ingestion-keys", json={}).status_code

    with ThreadPoolExecutor(4) as pool:
        created = [pool.submit(create, index) for index in range(8)]
        assert client.delete(f"/v1/experiments/{experiment_id}").status_code == 204
        statuses = {future.result() for future in created}
    assert statuses <= {201, 404}, statuses
    assert set(_rows_of_pk(live_server, experiment_pk).values()) == {0}


# ---- Idempotency-Key on every DELETE ---------------------------------------------------------------------------
def test_a_delete_repeated_with_its_key_replays_its_204(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    """A client whose first answer was lost sends the same DELETE with the same key: the stored 204 comes back,
    not a 404. Another path with that key is 422; without a key a second delete is 404, as before."""
    experiment_id = new_experiment()["id"]
    ingest = ingest_client(experiment_id)
    notes = f"/v1/experiments/{experiment_id}/annotations"
    note = ingest.post(notes, json={"text": "n", "client_event_id": "n"}).json()
    for path in (f"{notes}/{note['id']}", f"/v1/experiments/{experiment_id}"):
        key = {"Idempotency-Key": unique("del")}
        first = client.delete(path, headers=key)
        assert first.status_code == 204, first.text
        assert "Idempotent-Replayed" not in first.headers
        again = client.delete(path, headers=key)
        assert again.status_code == 204, again.text
        assert again.content == b""
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]
        assert_error(client.delete(path), 404, "not_found")
        assert_error(client.delete(f"{path}x", headers=key), 422, "idempotency_key_reused")
    missing = {"Idempotency-Key": unique("del")}
    assert_error(client.delete("/v1/experiments/exp_missing", headers=missing), 404, "not_found")
    assert_error(client.delete("/v1/experiments/exp_missing", headers=missing), 404, "not_found")  # replayed


# ---- deleteFolder ----------------------------------------------------------------------------------------------
def _folder(client: httpx.Client, **fields: Any) -> str:
    created = client.post("/v1/folders", json={"name": unique("fld"), **fields})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_delete_folder_only_when_empty_and_409_names_what_is_inside(
    client: httpx.Client, new_experiment: NewExperiment
) -> None:
    folder_id = _folder(client)
    child = _folder(client, parent_id=folder_id)
    assert client.post(f"/v1/folders/{child}/archive").status_code == 200  # archived ones count too
    experiments = [new_experiment(folder_id=folder_id)["id"] for _ in range(2)]
    assert client.post(f"/v1/experiments/{experiments[1]}/archive").status_code == 200

    error = assert_error(client.delete(f"/v1/folders/{folder_id}"), 409, "folder_not_empty")
    assert error["details"] == {"folder_id": folder_id, "experiments": 2, "folders": 1}
    assert folder_id in error["message"]
    assert client.get(f"/v1/folders/{folder_id}").status_code == 200

    for experiment_id in experiments:
        assert (
            client.post(f"/v1/experiments/{experiment_id}/move", json={"folder_id": None}).status_code == 200
        )
    error = assert_error(client.delete(f"/v1/folders/{folder_id}"), 409, "folder_not_empty")
    assert error["details"] == {"folder_id": folder_id, "experiments": 0, "folders": 1}
    assert client.delete(f"/v1/folders/{child}").status_code == 204

    key = {"Idempotency-Key": unique("del")}
    deleted = client.delete(f"/v1/folders/{folder_id}", headers=key)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert client.delete(f"/v1/folders/{folder_id}", headers=key).headers["Idempotent-Replayed"] == "true"
    assert_error(client.get(f"/v1/folders/{folder_id}"), 404, "not_found")
    assert_error(client.delete(f"/v1/folders/{folder_id}"), 404, "not_found")
    assert_error(client.get("/v1/folders", params={"parent_id": folder_id}), 404, "not_found")
    listed = client.get("/v1/folders", params={"include_archived": "true", "page_size": 1000}).json()["data"]
    assert folder_id not in [f["id"] for f in listed]
    for experiment_id in experiments:  # what was inside before is untouched
        assert client.get(f"/v1/experiments/{experiment_id}").status_code == 200


def test_a_folder_name_is_free_again_after_its_folder_is_deleted(client: httpx.Client) -> None:
    parent = _folder(client)
    name = unique("again")
    first = _folder(client, name=name, parent_id=parent)
    assert client.delete(f"/v1/folders/{first}").status_code == 204
    second = _folder(client, name=name, parent_id=parent)
    assert second != first


def test_a_folder_delete_racing_creates_into_it_leaves_no_orphan(
    live_server: RunningServer, client: httpx.Client
) -> None:
    """Experiments and folders created into a folder while it is deleted: each create lands before the delete
    (which then answers 409) or fails with 404 after it; never a 500, never a row whose folder is gone."""
    folder_id = _folder(client)

    def create(index: int) -> int:
        if index % 2:
            return client.post(
                "/v1/folders", json={"name": unique("kid"), "parent_id": folder_id}
            ).status_code
        return client.post("/v1/experiments", json={"name": unique("e"), "folder_id": folder_id}).status_code

    with ThreadPoolExecutor(4) as pool:
        created = [pool.submit(create, index) for index in range(8)]
        deleted = client.delete(f"/v1/folders/{folder_id}").status_code
        statuses = {future.result() for future in created}
    assert deleted in (204, 409)
    assert statuses <= {201, 404}, statuses
    assert (201 in statuses) == (deleted == 409)  # a create that landed makes the folder not empty

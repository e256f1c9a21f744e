"""The resource lifecycle (contract 1.2.0): updateExperiment, tags and the tag filter, archive / unarchive of
experiments and folders, deleteAnnotation. Run on both backends (the live server of tests/server/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tally_server import RunningServer
from tally_server.storage.schema import experiment_tags

from .helpers import assert_error, event, make_client, unique

NewExperiment = Callable[..., dict[str, Any]]
IngestClient = Callable[[str], httpx.Client]


def _listed(client: httpx.Client, path: str, page_size: int = 1, **params: Any) -> list[str]:
    """Every id of a list walk, one item a page by default (so the cursor is exercised on every filter). A walk
    of the whole organisation asks for full pages: the shared server holds thousands of resources by then."""
    ids: list[str] = []
    query: dict[str, Any] = {**params, "page_size": page_size}
    while True:
        page = client.get(path, params=query)
        assert page.status_code == 200, page.text
        body = page.json()
        ids += [item["id"] for item in body["data"]]
        if body["next_cursor"] is None:
            return ids
        query["cursor"] = body["next_cursor"]


# ---- updateExperiment ---------------------------------------------------------------------------------------
def test_update_changes_only_what_is_given_and_null_clears(
    client: httpx.Client, new_experiment: NewExperiment
) -> None:
    created = new_experiment(description="d", metadata={"lr": 0.1}, tags=["a", "b"])
    assert created["tags"] == ["a", "b"]
    assert created["archived_at"] is None
    experiment_id = created["id"]

    renamed = client.patch(f"/v1/experiments/{experiment_id}", json={"name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {
        **created,
        "name": "renamed",
        "updated_at": renamed.json()["updated_at"],
    }

    changed = client.patch(
        f"/v1/experiments/{experiment_id}",
        json={"description": "new", "metadata": {"lr": 0.2, "nested": {"a": [1]}}, "tags": ["b", "c"]},
    ).json()
    assert (changed["description"], changed["metadata"], changed["tags"]) == (
        "new",
        {"lr": 0.2, "nested": {"a": [1]}},
        ["b", "c"],
    )
    assert client.get(f"/v1/experiments/{experiment_id}").json() == changed

    cleared = client.patch(
        f"/v1/experiments/{experiment_id}", json={"description": None, "metadata": None, "tags": None}
    ).json()
    assert (cleared["description"], cleared["metadata"], cleared["tags"]) == (None, {}, [])
    assert cleared["name"] == "renamed"


def test_update_validates_like_create(client: httpx.Client, new_experiment: NewExperiment) -> None:
    experiment_id = new_experiment()["id"]
    path = f"/v1/experiments/{experiment_id}"
    assert_error(client.patch(path, json={}), 400, "invalid_request")
    assert_error(client.patch(path, json={"name": ""}), 400, "invalid_request")
    assert_error(client.patch(path, json={"name": "x" * 201}), 400, "invalid_request")
    assert_error(client.patch(path, json={"status": "completed"}), 400, "invalid_request")
    error = assert_error(client.patch(path, json={"tags": ["ok", "has space"]}), 400, "invalid_request")
    assert "tags[1]" in error["message"]
    assert_error(client.patch(path, json={"tags": ["a", "a"]}), 400, "invalid_request")
    assert_error(client.patch(path, json={"tags": [f"t{i}" for i in range(33)]}), 400, "invalid_request")
    assert_error(client.patch(path, json={"tags": ["x" * 65]}), 400, "invalid_request")
    assert client.patch(path, json={"tags": [f"t{i}" for i in range(32)]}).status_code == 200
    assert_error(client.patch("/v1/experiments/exp_missing", json={"name": "n"}), 404, "not_found")
    # names need not be unique, as in createExperiment
    other = new_experiment()
    assert client.patch(path, json={"name": other["name"]}).status_code == 200
    assert_error(
        client.post("/v1/experiments", json={"name": "n", "tags": ["a", "a"]}), 400, "invalid_request"
    )


def test_update_and_archive_are_idempotent_by_key(
    client: httpx.Client, new_experiment: NewExperiment
) -> None:
    experiment_id = new_experiment()["id"]
    for method, path, body in [
        ("PATCH", f"/v1/experiments/{experiment_id}", {"tags": ["k"]}),
        ("POST", f"/v1/experiments/{experiment_id}/archive", None),
        ("POST", f"/v1/experiments/{experiment_id}/unarchive", None),
    ]:
        key = unique("idem")
        first = client.request(method, path, json=body, headers={"Idempotency-Key": key})
        again = client.request(method, path, json=body, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 200, first.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()


# ---- tags ---------------------------------------------------------------------------------------------------
def test_the_tag_filter_lists_experiments_that_carry_the_tag(
    client: httpx.Client, new_experiment: NewExperiment
) -> None:
    tag = unique("tag")
    first = new_experiment(tags=[tag, "shared"])
    new_experiment(tags=["shared"])
    third = new_experiment(tags=["other", tag])
    fourth = new_experiment()
    assert _listed(client, "/v1/experiments", tag=tag) == [first["id"], third["id"]]

    client.patch(f"/v1/experiments/{first['id']}", json={"tags": ["shared"]})
    client.patch(f"/v1/experiments/{fourth['id']}", json={"tags": [tag]})
    assert _listed(client, "/v1/experiments", tag=tag) == [third["id"], fourth["id"]]
    # combined with the other filters
    client.post(f"/v1/experiments/{third['id']}/status", json={"status": "completed"})
    assert _listed(client, "/v1/experiments", tag=tag, status="running") == [fourth["id"]]
    assert _listed(client, "/v1/experiments", tag=tag, name_prefix=third["name"]) == [third["id"]]
    assert _listed(client, "/v1/experiments", tag=unique("never")) == []
    assert_error(client.get("/v1/experiments", params={"tag": "a b"}), 400, "invalid_request")


def test_tags_are_per_organisation(
    live_server: RunningServer, client: httpx.Client, new_experiment: NewExperiment
) -> None:
    tag = unique("tag")
    new_experiment(tags=[tag])
    _, token = live_server.repository.create_organization(unique("org"))
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}) as other:
        assert other.get("/v1/experiments", params={"tag": tag}).json()["data"] == []


def test_the_database_refuses_a_tag_twice_on_one_experiment(
    live_server: RunningServer, new_experiment: NewExperiment
) -> None:
    """Uniqueness is the table's primary key, not only the schema's `uniqueItems`."""
    repo: Any = live_server.repository
    experiment_id = new_experiment(tags=["dup"])["id"]
    org_pk = repo.authenticate(live_server.api_key).org_pk
    experiment_pk, _ = repo.experiment_ref(org_pk, experiment_id)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), repo.db.write() as conn:
        conn.execute(experiment_tags.insert().values(org=org_pk, tag="dup", experiment=experiment_pk))


# ---- archiving experiments ----------------------------------------------------------------------------------
def test_archived_experiments_are_listed_only_when_asked(
    client: httpx.Client, new_experiment: NewExperiment
) -> None:
    tag = unique("tag")
    kept, archived = new_experiment(tags=[tag]), new_experiment(tags=[tag])
    answer = client.post(f"/v1/experiments/{archived['id']}/archive")
    assert answer.status_code == 200, answer.text
    stamp = answer.json()["archived_at"]
    assert stamp is not None
    assert answer.json()["status"] == "running"  # the status is kept

    assert _listed(client, "/v1/experiments", tag=tag) == [kept["id"]]
    assert _listed(client, "/v1/experiments", tag=tag, include_archived="true") == [
        kept["id"],
        archived["id"],
    ]
    everything = _listed(client, "/v1/experiments", page_size=1000, include_archived="true")
    assert archived["id"] in everything
    assert archived["id"] not in _listed(client, "/v1/experiments", name_prefix=archived["name"])
    assert client.get(f"/v1/experiments/{archived['id']}").json()["archived_at"] == stamp

    again = client.post(f"/v1/experiments/{archived['id']}/archive")  # a no-op: the first stamp stays
    assert again.status_code == 200
    assert again.json()["archived_at"] == stamp
    back = client.post(f"/v1/experiments/{archived['id']}/unarchive").json()
    assert back["archived_at"] is None
    assert _listed(client, "/v1/experiments", tag=tag) == [kept["id"], archived["id"]]
    assert (
        client.post(f"/v1/experiments/{kept['id']}/unarchive").json()
        == client.get(f"/v1/experiments/{kept['id']}").json()
    )  # not archived: answered as it is
    assert_error(client.post("/v1/experiments/exp_missing/archive"), 404, "not_found")


def test_an_archived_experiment_refuses_metrics_and_annotations_until_unarchived(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment_id = new_experiment()["id"]
    ingest = ingest_client(experiment_id)
    metrics, notes = (
        f"/v1/experiments/{experiment_id}/metrics",
        f"/v1/experiments/{experiment_id}/annotations",
    )
    assert ingest.post(metrics, json={"events": [event("before")]}).status_code == 200
    client.post(f"/v1/experiments/{experiment_id}/archive")

    error = assert_error(ingest.post(metrics, json={"events": [event("during")]}), 409, "experiment_archived")
    assert "unarchive" in error["message"]
    assert error["details"] == {"experiment_id": experiment_id}
    assert_error(ingest.post(notes, json={"text": "t", "client_event_id": "n1"}), 409, "experiment_archived")
    # a re-sent event that is already stored is refused too: nothing is written to an archived experiment
    assert_error(ingest.post(metrics, json={"events": [event("before")]}), 409, "experiment_archived")
    # what is stored stays readable, and the status can still change
    assert len(client.get(metrics).json()["data"]) == 1
    assert (
        client.post(f"/v1/experiments/{experiment_id}/status", json={"status": "running"}).status_code == 200
    )

    client.post(f"/v1/experiments/{experiment_id}/unarchive")
    assert ingest.post(metrics, json={"events": [event("after")]}).json()["accepted"] == 1
    assert ingest.post(notes, json={"text": "t", "client_event_id": "n1"}).status_code == 201


# ---- archiving folders --------------------------------------------------------------------------------------
def test_archiving_a_folder_hides_it_but_not_what_it_holds(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    parent = client.post("/v1/folders", json={"name": unique("p")}).json()
    folder = client.post("/v1/folders", json={"name": "f", "parent_id": parent["id"]}).json()
    sibling = client.post("/v1/folders", json={"name": "s", "parent_id": parent["id"]}).json()
    child = client.post("/v1/folders", json={"name": "c", "parent_id": folder["id"]}).json()
    inside = new_experiment(folder_id=folder["id"])

    archived = client.post(f"/v1/folders/{folder['id']}/archive")
    assert archived.status_code == 200, archived.text
    stamp = archived.json()["archived_at"]
    assert stamp is not None
    assert _listed(client, "/v1/folders", parent_id=parent["id"]) == [sibling["id"]]
    assert _listed(client, "/v1/folders", parent_id=parent["id"], include_archived=True) == [
        folder["id"],
        sibling["id"],
    ]
    # what it holds keeps its own state: its children, its experiments, their ingestion
    assert _listed(client, "/v1/folders", parent_id=folder["id"]) == [child["id"]]
    assert client.get(f"/v1/folders/{child['id']}").json()["archived_at"] is None
    assert _listed(client, "/v1/experiments", folder_id=folder["id"]) == [inside["id"]]
    ingest = ingest_client(inside["id"])
    assert (
        ingest.post(f"/v1/experiments/{inside['id']}/metrics", json={"events": [event("e")]}).status_code
        == 200
    )

    assert client.post(f"/v1/folders/{folder['id']}/archive").json()["archived_at"] == stamp  # a no-op
    assert client.get(f"/v1/folders/{folder['id']}").json()["archived_at"] == stamp
    assert client.post(f"/v1/folders/{folder['id']}/unarchive").json()["archived_at"] is None
    assert _listed(client, "/v1/folders", parent_id=parent["id"]) == [folder["id"], sibling["id"]]
    assert_error(client.post("/v1/folders/fld_missing/archive"), 404, "not_found")
    top = client.post("/v1/folders", json={"name": unique("top")}).json()
    client.post(f"/v1/folders/{top['id']}/archive")
    assert top["id"] not in _listed(client, "/v1/folders", page_size=1000)
    assert top["id"] in _listed(client, "/v1/folders", page_size=1000, include_archived=True)


# ---- deleteAnnotation ---------------------------------------------------------------------------------------
def test_delete_annotation_is_204_then_404_and_frees_its_client_event_id(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment_id = new_experiment()["id"]
    other_id = new_experiment()["id"]
    ingest = ingest_client(experiment_id)
    notes = f"/v1/experiments/{experiment_id}/annotations"
    first = ingest.post(notes, json={"text": "one", "client_event_id": "n"}).json()
    kept = ingest.post(notes, json={"text": "two", "client_event_id": "m"}).json()

    assert_error(client.delete(f"/v1/experiments/{other_id}/annotations/{first['id']}"), 404, "not_found")
    assert_error(ingest.delete(f"{notes}/{first['id']}"), 403, "forbidden")  # an org key's operation
    deleted = client.delete(f"{notes}/{first['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert deleted.headers["X-Request-Id"]
    assert "content-type" not in deleted.headers
    assert [a["id"] for a in client.get(notes).json()["data"]] == [kept["id"]]
    assert_error(client.delete(f"{notes}/{first['id']}"), 404, "not_found")
    assert_error(client.delete(f"/v1/experiments/exp_missing/annotations/{kept['id']}"), 404, "not_found")

    # the client_event_id is free again: the same id, even with another payload, makes a new annotation
    reused = ingest.post(notes, json={"text": "another", "client_event_id": "n"})
    assert reused.status_code == 201, reused.text
    assert reused.json()["id"] != first["id"]
    assert [a["id"] for a in client.get(notes).json()["data"]] == [kept["id"], reused.json()["id"]]


def test_concurrent_updates_keep_the_tag_index_in_step(
    live_server: RunningServer, new_experiment: NewExperiment
) -> None:
    """Concurrent PATCHes of one experiment's tags (one server, several threads; on PostgreSQL several
    connections): each answers 200, and afterwards the tag filter finds the experiment under exactly its tags."""
    experiment_id = new_experiment(tags=["t0"])["id"]
    choices = [[f"t{i}", f"t{(i + 1) % 6}", "common"] for i in range(6)]

    def patch(tags: list[str]) -> int:
        with make_client(live_server, live_server.api_key) as c:
            return c.patch(f"/v1/experiments/{experiment_id}", json={"tags": tags}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(patch, choices * 4))
    assert statuses == [200] * len(statuses)
    with make_client(live_server, live_server.api_key) as c:
        final = c.get(f"/v1/experiments/{experiment_id}").json()["tags"]
        assert final in choices
        for tag in {tag for tags in choices for tag in tags} | {"t0"}:
            listed = experiment_id in _listed(c, "/v1/experiments", tag=tag)
            assert listed == (tag in final), (tag, final)

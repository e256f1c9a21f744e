"""Folders and experiments: uniqueness, moves without cycles, status transitions, filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from .helpers import assert_error, unique


def _folder(client: httpx.Client, name: str, parent_id: str | None = None, **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/folders", json={"name": name, "parent_id": parent_id, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_folder_names_are_unique_within_a_parent(client: httpx.Client) -> None:
    top = _folder(client, unique("top"))
    child = _folder(client, "runs", top["id"])
    assert child["parent_id"] == top["id"]
    assert_error(client.post("/v1/folders", json={"name": "runs", "parent_id": top["id"]}), 409, "conflict")
    other = _folder(client, unique("top"))
    assert _folder(client, "runs", other["id"])["name"] == "runs"  # same name, other parent
    sibling = _folder(client, "evals", top["id"])
    assert_error(client.post(f"/v1/folders/{sibling['id']}/rename", json={"name": "runs"}), 409, "conflict")
    renamed = client.post(f"/v1/folders/{sibling['id']}/rename", json={"name": "evals-2"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "evals-2"
    # moving a "runs" folder next to another "runs" is refused too
    lone = _folder(client, "runs", _folder(client, unique("top"))["id"])
    assert_error(
        client.post(f"/v1/folders/{lone['id']}/move", json={"parent_id": top["id"]}), 409, "conflict"
    )


def test_a_folder_cannot_move_under_itself_or_a_descendant(client: httpx.Client) -> None:
    a = _folder(client, unique("a"))
    b = _folder(client, "b", a["id"])
    c = _folder(client, "c", b["id"])
    assert_error(client.post(f"/v1/folders/{a['id']}/move", json={"parent_id": c["id"]}), 409, "conflict")
    assert_error(client.post(f"/v1/folders/{a['id']}/move", json={"parent_id": a["id"]}), 409, "conflict")
    assert_error(
        client.post(f"/v1/folders/{a['id']}/move", json={"parent_id": "fld_missing"}), 404, "not_found"
    )
    moved = client.post(f"/v1/folders/{c['id']}/move", json={"parent_id": None})
    assert moved.status_code == 200
    assert moved.json()["parent_id"] is None
    children = client.get("/v1/folders", params={"parent_id": b["id"]}).json()["data"]
    assert children == []


def test_folder_get_patch_and_list(client: httpx.Client) -> None:
    parent = _folder(client, unique("p"), description="d", metadata={"team": "vision"})
    kids = [_folder(client, f"k{i}", parent["id"]) for i in range(3)]
    listed = client.get("/v1/folders", params={"parent_id": parent["id"]}).json()
    assert [f["id"] for f in listed["data"]] == [k["id"] for k in kids]
    assert listed["next_cursor"] is None
    top_level = client.get("/v1/folders", params={"page_size": 1000}).json()["data"]
    assert parent["id"] in {f["id"] for f in top_level}
    assert all(f["parent_id"] is None for f in top_level)
    got = client.get(f"/v1/folders/{parent['id']}").json()
    assert got == parent
    patched = client.patch(f"/v1/folders/{parent['id']}", json={"metadata": {"team": "nlp", "n": 1}}).json()
    assert patched["metadata"] == {"team": "nlp", "n": 1}
    assert patched["description"] == "d"
    cleared = client.patch(f"/v1/folders/{parent['id']}", json={"description": None, "metadata": None}).json()
    assert cleared["description"] is None
    assert cleared["metadata"] == {}
    assert_error(client.patch(f"/v1/folders/{parent['id']}", json={}), 400, "invalid_request")
    assert_error(client.get("/v1/folders/fld_missing"), 404, "not_found")
    assert_error(client.post("/v1/folders", json={"name": "x", "parent_id": "fld_missing"}), 404, "not_found")


def test_experiment_status_transitions(
    client: httpx.Client, new_experiment: Callable[..., dict[str, Any]]
) -> None:
    for final in ("completed", "failed", "cancelled"):
        experiment = new_experiment()
        assert experiment["status"] == "running"
        assert experiment["ended_at"] is None
        path = f"/v1/experiments/{experiment['id']}/status"
        same = client.post(path, json={"status": "running"})
        assert same.status_code == 200
        assert same.json() == experiment  # a no-op
        done = client.post(path, json={"status": final}).json()
        assert done["status"] == final
        assert done["ended_at"] is not None
        for target in ("running", "completed", "failed", "cancelled"):
            error = assert_error(client.post(path, json={"status": target}), 409, "invalid_transition")
            assert error["details"] == {"from": final, "to": target}
    assert_error(
        client.post("/v1/experiments/exp_missing/status", json={"status": "failed"}), 404, "not_found"
    )
    assert_error(
        client.post(f"/v1/experiments/{new_experiment()['id']}/status", json={"status": "paused"}),
        400,
        "invalid_request",
    )


def test_experiment_filters_and_moves(
    client: httpx.Client, new_experiment: Callable[..., dict[str, Any]]
) -> None:
    folder = _folder(client, unique("f"))
    prefix = unique("filt")
    first = new_experiment(name=prefix + "-a", folder_id=folder["id"], metadata={"lr": 0.1})
    second = new_experiment(name=prefix + "-b")
    client.post(f"/v1/experiments/{second['id']}/status", json={"status": "failed"})

    def ids(**params: Any) -> list[str]:
        response = client.get("/v1/experiments", params={"name_prefix": prefix, **params})
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["data"]]

    assert ids() == [first["id"], second["id"]]
    assert ids(folder_id=folder["id"]) == [first["id"]]
    assert ids(status="failed") == [second["id"]]
    assert ids(status="running") == [first["id"]]
    assert ids(created_after=first["created_at"]) == [second["id"]]
    assert ids(created_before=second["created_at"]) == [first["id"]]
    assert ids(created_after="2999-01-01T00:00:00Z") == []
    assert ids(folder_id="fld_missing") == []  # the contract gives listExperiments no 404
    moved = client.post(f"/v1/experiments/{second['id']}/move", json={"folder_id": folder["id"]}).json()
    assert moved["folder_id"] == folder["id"]
    assert ids(folder_id=folder["id"]) == [first["id"], second["id"]]
    out = client.post(f"/v1/experiments/{first['id']}/move", json={"folder_id": None}).json()
    assert out["folder_id"] is None
    missing = client.post(f"/v1/experiments/{first['id']}/move", json={"folder_id": "fld_missing"})
    assert_error(missing, 404, "not_found")
    assert client.get(f"/v1/experiments/{first['id']}").json()["metadata"] == {"lr": 0.1}

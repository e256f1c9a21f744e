"""Compare, the metric catalog, annotations and ingestion keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from .helpers import assert_error, event, unique

NewExperiment = Callable[..., dict[str, Any]]
IngestClient = Callable[[str], httpx.Client]


def _ingest(ingest: httpx.Client, experiment_id: str, events: list[dict[str, Any]]) -> None:
    response = ingest.post(f"/v1/experiments/{experiment_id}/metrics", json={"events": events})
    assert response.status_code == 200, response.text


def test_compare_aligns_series_by_step_latest_point_wins(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    a, b = new_experiment(), new_experiment()
    _ingest(ingest_client(a["id"]), a["id"], [
        event("a0", value=1.0, step=0), event("a1", value=2.0, step=1), event("a1b", value=2.5, step=1),
        event("a3", value=4.0, step=3), event("anone", value=9.0, step=None),
        event("av", value=7.0, step=1, metadata={"split": "val"}),
    ])  # fmt: skip
    _ingest(
        ingest_client(b["id"]), b["id"], [event("b1", value=10.0, step=1), event("b2", value=20.0, step=2)]
    )
    body = {
        "series": [
            {"experiment_id": a["id"], "name": "train/loss"},
            {"experiment_id": b["id"], "name": "train/loss"},
        ]
    }
    result = client.post("/v1/metrics/compare", json=body).json()
    assert result["rows"] == [
        {"step": 0, "values": [1.0, None]},
        {"step": 1, "values": [7.0, 10.0]},  # the latest ingested point at step 1 wins
        {"step": 2, "values": [None, 20.0]},
        {"step": 3, "values": [4.0, None]},
    ]
    assert [s["points"] for s in result["series"]] == [3, 2]
    assert result["truncated"] is False
    filtered = {"series": [{"experiment_id": a["id"], "name": "train/loss", "metadata": {"split": "val"}}]}
    assert client.post("/v1/metrics/compare", json=filtered).json()["rows"] == [{"step": 1, "values": [7.0]}]
    window = client.post(
        "/v1/metrics/compare", json={**body, "min_step": 1, "max_step": 2, "limit": 1}
    ).json()
    assert window["rows"] == [{"step": 1, "values": [7.0, 10.0]}]
    assert window["truncated"] is True
    assert [s["points"] for s in window["series"]] == [1, 2]
    missing = {"series": [{"experiment_id": "exp_missing", "name": "x"}]}
    assert_error(client.post("/v1/metrics/compare", json=missing), 404, "not_found")
    too_many = {"series": [{"experiment_id": a["id"], "name": "x"}] * 21}
    assert_error(client.post("/v1/metrics/compare", json=too_many), 400, "invalid_request")
    twenty = {"series": [{"experiment_id": a["id"], "name": "train/loss"}] * 20}
    assert len(client.post("/v1/metrics/compare", json=twenty).json()["rows"][0]["values"]) == 20


def test_catalog_counts_first_last_seen_keys_and_folder_descendants(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    top = client.post("/v1/folders", json={"name": unique("cat")}).json()
    child = client.post("/v1/folders", json={"name": "child", "parent_id": top["id"]}).json()
    outside = new_experiment()
    e1, e2 = new_experiment(folder_id=top["id"]), new_experiment(folder_id=child["id"])
    metric = unique("acc").replace("-", "_")
    _ingest(ingest_client(e1["id"]), e1["id"], [
        event("1", name=metric, timestamp="2026-01-01T10:00:00Z", metadata={"split": "train"}),
        event("2", name=metric, timestamp="2026-01-01T09:00:00+00:00",
              metadata={"split": "val", "seed": "1"}),
    ])  # fmt: skip
    _ingest(ingest_client(e2["id"]), e2["id"], [
        event("1", name=metric, timestamp="2026-01-01T12:00:00.5Z", metadata={"split": "train"}),
        event("2", name=metric + "/other", timestamp="2026-01-02T00:00:00Z"),
    ])  # fmt: skip
    _ingest(ingest_client(outside["id"]), outside["id"], [event("1", name=metric, metadata={"zone": "x"})])
    entries = client.get("/v1/metric-catalog", params={"folder_id": top["id"], "name_prefix": metric}).json()[
        "data"
    ]
    assert entries == [
        {
            "name": metric, "count": 3, "experiment_count": 2, "first_seen": "2026-01-01T09:00:00+00:00",
            "last_seen": "2026-01-01T12:00:00.5Z", "metadata_keys": ["seed", "split"],
        },
        {
            "name": metric + "/other", "count": 1, "experiment_count": 1,
            "first_seen": "2026-01-02T00:00:00Z",
            "last_seen": "2026-01-02T00:00:00Z", "metadata_keys": [],
        },
    ]  # fmt: skip
    child_only = client.get(
        "/v1/metric-catalog", params={"folder_id": child["id"], "name_prefix": metric}
    ).json()
    assert [(e["name"], e["count"]) for e in child_only["data"]] == [(metric, 1), (metric + "/other", 1)]
    org_wide = client.get("/v1/metric-catalog", params={"name_prefix": metric}).json()["data"]
    assert org_wide[0]["count"] == 4
    assert org_wide[0]["metadata_keys"] == ["seed", "split", "zone"]
    values = client.get(
        "/v1/metric-catalog/values",
        params={"metric_name": metric, "metadata_key": "split", "folder_id": top["id"]},
    ).json()
    assert values == {
        "data": [{"value": "train", "count": 2}, {"value": "val", "count": 1}],
        "next_cursor": None,
    }
    one = client.get(
        "/v1/metric-catalog/values",
        params={"metric_name": metric, "metadata_key": "split", "experiment_id": e2["id"]},
    ).json()["data"]
    assert one == [{"value": "train", "count": 1}]
    assert_error(client.get("/v1/metric-catalog", params={"folder_id": "fld_missing"}), 404, "not_found")
    assert_error(
        client.get("/v1/metric-catalog/values", params={"metric_name": metric}), 400, "invalid_request"
    )


def test_duplicates_do_not_inflate_the_catalog(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment = new_experiment()
    ingest = ingest_client(experiment["id"])
    events = [event(str(i), name="dup/metric", step=i, metadata={"k": "v"}) for i in range(10)]
    _ingest(ingest, experiment["id"], events)
    _ingest(ingest, experiment["id"], events)
    entry = client.get("/v1/metric-catalog", params={"experiment_id": experiment["id"]}).json()["data"][0]
    assert entry["count"] == 10
    params = {"experiment_id": experiment["id"], "metric_name": "dup/metric", "metadata_key": "k"}
    assert client.get("/v1/metric-catalog/values", params=params).json()["data"] == [
        {"value": "v", "count": 10}
    ]


def test_annotations_are_idempotent_by_client_event_id(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment = new_experiment()
    ingest = ingest_client(experiment["id"])
    path = f"/v1/experiments/{experiment['id']}/annotations"
    note = {"text": "lr drop", "step": 5000, "client_event_id": "lr-5000", "metadata": {"lr": 1e-4}}
    created = ingest.post(path, json=note)
    assert created.status_code == 201
    again = ingest.post(path, json=note)
    assert again.status_code == 200
    assert again.json() == created.json()
    assert_error(ingest.post(path, json={**note, "text": "other"}), 409, "conflict")
    untimed = {"text": "no time", "client_event_id": "t"}
    assert ingest.post(path, json=untimed).status_code == 201
    assert ingest.post(path, json=untimed).status_code == 200
    listed = client.get(path).json()["data"]
    assert [a["client_event_id"] for a in listed] == ["lr-5000", "t"]
    assert listed[0]["metadata"] == {"lr": 1e-4}
    assert_error(ingest.post(path, json={"text": "x"}), 400, "invalid_request")


def test_ingestion_keys_list_revoked_and_hide_tokens(
    client: httpx.Client, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    path = f"/v1/experiments/{experiment['id']}/ingestion-keys"
    first = client.post(path, json={"name": "a"}).json()
    second = client.post(path, json={}).json()
    assert first["token"].startswith("tk_ing_")
    assert first["token_hint"] == first["token"][-4:]
    assert second["name"] is None
    client.post(f"/v1/ingestion-keys/{first['id']}/revoke")
    listed = client.get(path).json()["data"]
    assert [k["id"] for k in listed] == [first["id"], second["id"]]
    assert listed[0]["revoked_at"] is not None
    assert listed[1]["revoked_at"] is None
    assert all("token" not in k for k in listed)
    assert_error(client.post("/v1/ingestion-keys/ik_missing/revoke"), 404, "not_found")
    assert_error(client.post("/v1/experiments/exp_missing/ingestion-keys", json={}), 404, "not_found")

"""Data of every kind the server stores, written through the API, and a snapshot of all of it read back.

Run as a script it is the previous release's side of the in-place upgrade test (tests/server/test_migrations.py):
started with that release's `tally_server` first on PYTHONPATH, it writes the data into `--db`, stops the
server, and prints a JSON document: the ids and tokens it made and the snapshot its server read back. Imported,
it gives the test the same `snapshot()` to read the upgraded database with. It needs only httpx and the
`tally_server` it finds, so it runs on either release.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

KEY = "tk_org_" + "L" * 32
IDEMPOTENT_BODY = {"name": "made-once", "tags": ["idem"]}


def metric_events(count: int) -> list[dict[str, Any]]:
    """Points of two metrics, with and without steps and timestamps, with metadata (two labels)."""
    return [
        {
            "name": ("train/loss", "val/acc")[i % 2],
            "value": i / 7,
            "client_event_id": f"e{i}",
            **({"step": i // 2} if i % 5 else {}),
            **({"timestamp": f"2026-01-02T03:04:{i % 60:02d}.5Z"} if i % 3 else {}),
            "metadata": {"split": ("train", "val")[i % 2], "host": f"h{i % 3}"},
        }
        for i in range(count)
    ]


def populate(url: str) -> dict[str, Any]:
    """Folders (nested, archived), experiments (tags, archived, ended, in folders), points with metadata and
    steps, annotations, ingestion keys (live, revoked, expiring), an idempotency record."""
    org = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)

    def ok(response: httpx.Response) -> Any:
        assert response.status_code in (200, 201), response.text
        return response.json()

    top = ok(org.post("/v1/folders", json={"name": "top", "description": "d", "metadata": {"team": "a"}}))
    child = ok(org.post("/v1/folders", json={"name": "child", "parent_id": top["id"]}))
    shelved = ok(org.post("/v1/folders", json={"name": "shelved"}))
    ok(org.post(f"/v1/folders/{shelved['id']}/archive"))
    tagged = ok(
        org.post(
            "/v1/experiments",
            json={"name": "tagged", "folder_id": child["id"], "tags": ["b", "a"], "metadata": {"lr": 0.1}},
        )
    )
    ended = ok(org.post("/v1/experiments", json={"name": "ended", "folder_id": top["id"]}))
    archived = ok(org.post("/v1/experiments", json={"name": "archived", "tags": ["old"]}))
    replayed = org.post("/v1/experiments", json=IDEMPOTENT_BODY, headers={"Idempotency-Key": "idem-1"})
    made_once = ok(replayed)
    live = ok(org.post(f"/v1/experiments/{tagged['id']}/ingestion-keys", json={"name": "live"}))
    expiring = ok(
        org.post(f"/v1/experiments/{tagged['id']}/ingestion-keys", json={"expires_in_seconds": 86400})
    )
    revoked = ok(org.post(f"/v1/experiments/{ended['id']}/ingestion-keys", json={}))
    spare = ok(org.post(f"/v1/experiments/{archived['id']}/ingestion-keys", json={}))

    def ingest_client(token: str) -> httpx.Client:
        return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    writers = {tagged["id"]: live, ended["id"]: revoked, archived["id"]: spare}
    for experiment in (tagged, ended, archived):
        writer = ingest_client(writers[experiment["id"]]["token"])
        path = f"/v1/experiments/{experiment['id']}/metrics"
        events = metric_events(40)
        ok(writer.post(path, json={"events": events}))
        ok(writer.post(path, json={"events": events[:5]}))  # duplicates, stored once
        note = {"text": "note", "step": 3, "client_event_id": "n1"}
        ok(writer.post(f"/v1/experiments/{experiment['id']}/annotations", json=note))
    note = {"text": "free", "metadata": {"k": "v"}, "client_event_id": "n2"}
    ok(ingest_client(live["token"]).post(f"/v1/experiments/{tagged['id']}/annotations", json=note))
    ok(org.post(f"/v1/ingestion-keys/{revoked['id']}/revoke"))
    ok(org.post(f"/v1/experiments/{ended['id']}/status", json={"status": "completed"}))
    ok(org.post(f"/v1/experiments/{archived['id']}/archive"))
    return {
        "folders": [top["id"], child["id"], shelved["id"]],
        "experiments": [tagged["id"], ended["id"], archived["id"], made_once["id"]],
        "made_once": made_once,
        "tokens": {"live": live["token"], "expiring": expiring["token"], "revoked": revoked["token"]},
        "tagged": tagged["id"],
    }


def snapshot(url: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Everything the API shows of the data `populate` made (timestamps the server stamped included)."""
    seen: dict[str, Any] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as org:
        _read_all(org, plan, seen)
    return seen


_ADDED_SINCE = {"group": None}
"""Fields later contracts added to answers, at the value their absence means (an experiment's `group`, 1.7.0):
left out of a snapshot, so that the release before's answers and today's compare."""


def _as_before(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _as_before(v) for k, v in value.items() if not (k in _ADDED_SINCE and v == _ADDED_SINCE[k])
        }
    if isinstance(value, list):
        return [_as_before(v) for v in value]
    return value


def _read_all(org: httpx.Client, plan: dict[str, Any], seen: dict[str, Any]) -> None:

    def get(path: str, **params: Any) -> None:
        response = org.get(path, params=params)
        assert response.status_code == 200, (path, response.text)
        seen[f"{path}?{json.dumps(params, sort_keys=True)}"] = _as_before(response.json())

    get("/v1/auth/status")
    get("/v1/folders", include_archived=True)
    get("/v1/folders", parent_id=plan["folders"][0], include_archived=True)
    for folder in plan["folders"]:
        get(f"/v1/folders/{folder}")
    get("/v1/experiments", include_archived=True, page_size=1000)
    get("/v1/experiments", tag="a")
    get("/v1/experiments", tag="old", include_archived=True)
    get("/v1/experiments", status="completed")
    get("/v1/metric-catalog", page_size=1000)
    get("/v1/metric-catalog/values", metric_name="train/loss", metadata_key="host")
    for experiment in plan["experiments"]:
        base = f"/v1/experiments/{experiment}"
        get(base)
        get(f"{base}/metrics", page_size=1000)
        get(f"{base}/metrics", name="val/acc", metadata_key="split", metadata_value="val")
        get(f"{base}/annotations")
        get(f"{base}/ingestion-keys")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    import tally_server  # the release on PYTHONPATH

    with tally_server.start_server(db=args.db, bootstrap_key=KEY) as server:
        plan = populate(server.url)
        seen = snapshot(server.url, plan)
    json.dump({"tally_server": tally_server.__file__, "plan": plan, "snapshot": seen}, sys.stdout)


if __name__ == "__main__":
    main()

"""Health, request ids, the error envelope on unknown routes, and the auth rules (401 / 403 / 404)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx

from tally_server import RunningServer

from .helpers import assert_error, event, make_client


def test_health_needs_no_auth_and_carries_a_request_id(anon: httpx.Client) -> None:
    response = anon.get("/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["X-Request-Id"].startswith("req_")


def test_a_sane_client_request_id_is_kept_and_an_insane_one_replaced(anon: httpx.Client) -> None:
    assert anon.get("/v1/health", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    replaced = anon.get("/v1/health", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    assert replaced.startswith("req_")


def test_unknown_routes_are_404_and_unknown_methods_405_in_the_envelope(client: httpx.Client) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(client.get("/v1/folders/"), 404, "not_found")
    # A known path with a method it does not have: 405 with Allow, still in the envelope.
    response = client.delete("/v1/folders")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"
    assert_error(client.put("/v1/experiments/exp_x"), 405, "method_not_allowed")


def test_missing_unknown_and_malformed_tokens_are_401(anon: httpx.Client) -> None:
    assert_error(anon.get("/v1/folders"), 401, "unauthenticated")
    assert_error(
        anon.get("/v1/folders", headers={"Authorization": "Bearer tk_org_nope"}), 401, "unauthenticated"
    )
    assert_error(
        anon.get("/v1/folders", headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401, "unauthenticated"
    )
    assert_error(anon.get("/v1/auth/status", headers={"Authorization": "Bearer"}), 401, "unauthenticated")


def test_auth_status_describes_org_and_ingestion_keys(
    client: httpx.Client,
    new_experiment: Callable[..., dict[str, Any]],
    ingest_client: Callable[[str], httpx.Client],
) -> None:
    org = client.get("/v1/auth/status").json()
    assert org["key_kind"] == "org"
    assert org["experiment_id"] is None
    assert org["organization_name"] == "default"
    assert "experiments" in org["scopes"]
    experiment = new_experiment()
    ingest = ingest_client(experiment["id"]).get("/v1/auth/status").json()
    assert ingest["key_kind"] == "ingestion"
    assert ingest["experiment_id"] == experiment["id"]
    assert ingest["organization_id"] == org["organization_id"]
    assert ingest["scopes"] == ["metrics:write", "annotations:write"]


def test_org_keys_cannot_ingest_and_ingestion_keys_only_ingest(
    client: httpx.Client,
    new_experiment: Callable[..., dict[str, Any]],
    ingest_client: Callable[[str], httpx.Client],
) -> None:
    experiment = new_experiment()
    path = f"/v1/experiments/{experiment['id']}"
    error = assert_error(client.post(f"{path}/metrics", json={"events": [event("a")]}), 403, "forbidden")
    assert error["details"] == {"required_key_kind": "ingestion"}
    assert_error(
        client.post(f"{path}/annotations", json={"text": "x", "client_event_id": "a"}), 403, "forbidden"
    )
    ingest = ingest_client(experiment["id"])
    assert_error(ingest.get(path), 403, "forbidden")
    assert_error(ingest.get(f"{path}/metrics"), 403, "forbidden")
    assert_error(ingest.get("/v1/folders"), 403, "forbidden")
    assert_error(ingest.post(f"{path}/ingestion-keys", json={}), 403, "forbidden")


def test_an_ingestion_key_is_403_on_another_experiment_and_404_on_a_missing_one(
    new_experiment: Callable[..., dict[str, Any]], ingest_client: Callable[[str], httpx.Client]
) -> None:
    mine, other = new_experiment(), new_experiment()
    ingest = ingest_client(mine["id"])
    body = {"events": [event("a")]}
    assert_error(ingest.post(f"/v1/experiments/{other['id']}/metrics", json=body), 403, "forbidden")
    assert_error(ingest.post("/v1/experiments/exp_missing/metrics", json=body), 404, "not_found")
    note = {"text": "x", "client_event_id": "n1"}
    assert_error(ingest.post(f"/v1/experiments/{other['id']}/annotations", json=note), 403, "forbidden")
    assert ingest.post(f"/v1/experiments/{mine['id']}/metrics", json=body).status_code == 200


def test_a_revoked_ingestion_key_is_401(
    live_server: RunningServer, client: httpx.Client, new_experiment: Callable[..., dict[str, Any]]
) -> None:
    experiment = new_experiment()
    created = client.post(f"/v1/experiments/{experiment['id']}/ingestion-keys", json={"name": "gone"}).json()
    with make_client(live_server, created["token"]) as ingest:
        path = f"/v1/experiments/{experiment['id']}/metrics"
        assert ingest.post(path, json={"events": [event("a")]}).status_code == 200
        revoked = client.post(f"/v1/ingestion-keys/{created['id']}/revoke")
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        assert_error(ingest.post(path, json={"events": [event("b")]}), 401, "unauthenticated")
    again = client.post(f"/v1/ingestion-keys/{created['id']}/revoke")
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


def test_another_organisations_resources_are_404(
    live_server: RunningServer, client: httpx.Client, new_experiment: Callable[..., dict[str, Any]]
) -> None:
    _, token = live_server.repository.create_organization("other")
    experiment = new_experiment()
    folder = client.post("/v1/folders", json={"name": "private-" + experiment["id"]}).json()
    key = client.post(f"/v1/experiments/{experiment['id']}/ingestion-keys", json={}).json()
    with make_client(live_server, token) as stranger:
        exp_path = f"/v1/experiments/{experiment['id']}"
        assert_error(stranger.get(exp_path), 404, "not_found")
        assert_error(stranger.get(f"{exp_path}/metrics"), 404, "not_found")
        assert_error(stranger.get(f"{exp_path}/annotations"), 404, "not_found")
        assert_error(stranger.get(f"{exp_path}/ingestion-keys"), 404, "not_found")
        assert_error(stranger.post(f"{exp_path}/status", json={"status": "failed"}), 404, "not_found")
        assert_error(stranger.get(f"/v1/folders/{folder['id']}"), 404, "not_found")
        assert_error(stranger.get("/v1/folders", params={"parent_id": folder["id"]}), 404, "not_found")
        assert_error(stranger.post(f"/v1/ingestion-keys/{key['id']}/revoke"), 404, "not_found")
        assert_error(
            stranger.post(
                "/v1/metrics/compare", json={"series": [{"experiment_id": experiment["id"], "name": "x"}]}
            ),
            404,
            "not_found",
        )
        assert_error(
            stranger.get("/v1/metric-catalog", params={"experiment_id": experiment["id"]}), 404, "not_found"
        )
        assert stranger.get("/v1/experiments").json()["data"] == []
        assert stranger.get("/v1/auth/status").json()["organization_name"] == "other"
    assert client.get(f"/v1/experiments/{experiment['id']}").status_code == 200


def test_invalid_parameters_name_the_field(client: httpx.Client) -> None:
    error = assert_error(client.get("/v1/folders", params={"page_size": 0}), 400, "invalid_request")
    assert error["details"]["errors"][0]["path"] == "page_size"
    error = assert_error(client.get("/v1/folders", params={"page_size": "ten"}), 400, "invalid_request")
    assert error["details"]["errors"][0]["path"] == "page_size"
    error = assert_error(client.get("/v1/folders/bad%20id"), 400, "invalid_request")
    assert error["details"]["errors"][0]["path"] == "folder_id"
    error = assert_error(client.get("/v1/folders", params={"cursor": "garbage"}), 400, "invalid_request")
    assert error["details"]["errors"][0]["path"] == "cursor"
    error = assert_error(client.get("/v1/folders", params={"page_sise": 5}), 400, "invalid_request")
    assert error["details"]["errors"][0]["path"] == "page_sise"


def test_malformed_json_bodies_are_400(client: httpx.Client) -> None:
    json_type = {"Content-Type": "application/json"}
    for body in (b"{", b"", b"[1, 2", b'{"name": NaN}', b'{"name": Infinity}'):
        assert_error(client.post("/v1/folders", content=body, headers=json_type), 400, "invalid_request")
    error = assert_error(client.post("/v1/folders", json={"name": "x", "extra": 1}), 400, "invalid_request")
    assert error["details"]["errors"][0]["path"] == "extra"
    error = assert_error(client.post("/v1/folders", json={}), 400, "invalid_request")
    assert error["details"]["errors"][0]["path"] == "name"


def test_the_server_turns_nagle_off_on_its_connections(live_server: RunningServer) -> None:
    """uvicorn writes a response's head and body separately: with Nagle's algorithm on, the body waited for the
    client's delayed ACK of the head, about 40 ms on every answer of a kept-alive connection."""
    with httpx.Client(base_url=live_server.url) as client:
        assert client.get("/v1/health").status_code == 200  # the connection stays open, kept alive
        connections = list(live_server._server.server_state.connections)
        sockets = [c.transport.get_extra_info("socket") for c in connections]
        assert sockets
        assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)

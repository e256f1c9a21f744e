"""Bad input is a 4xx that names the field and the fix, within limits the contract states: body depth, metadata
caps, JSON content type, unparsable request lines; and the ingestion keys' secrets never rest in the database."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tally_server import RunningServer, start_server
from tally_server.storage.schema import api_keys

from .helpers import assert_error, make_client, unique

NewExperiment = Callable[..., dict[str, Any]]
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("depth", [33, 900, 10_000])
def test_a_body_nested_too_deep_is_400_naming_the_limit(client: httpx.Client, depth: int) -> None:
    body = '{"name": "deep", "metadata": {"a": ' + '{"a": ' * depth + "1" + "}" * depth + "}}"
    error = assert_error(client.post("/v1/experiments", content=body, headers=JSON), 400, "invalid_request")
    assert "nested more than" in error["message"]


def test_free_form_metadata_is_capped_in_depth_keys_and_bytes(client: httpx.Client) -> None:
    nested: Any = 1
    for _ in range(9):  # nine objects deep: one level too many
        nested = {"a": nested}
    error = assert_error(
        client.post("/v1/experiments", json={"name": "m", "metadata": nested}), 400, "invalid_request"
    )
    assert error["details"]["errors"][0]["path"] == "metadata"
    assert "8 levels" in error["details"]["errors"][0]["message"]
    large = {"notes": "x" * 9000}
    error = assert_error(
        client.post("/v1/folders", json={"name": unique(), "metadata": large}), 400, "invalid_request"
    )
    assert error["details"]["errors"][0]["path"] == "metadata"
    assert "8192-byte limit" in error["details"]["errors"][0]["message"]
    assert_error(
        client.post("/v1/experiments", json={"name": "m", "metadata": {"k" * 65: 1}}), 400, "invalid_request"
    )
    assert_error(
        client.post("/v1/experiments", json={"name": "m", "metadata": {"": 1}}), 400, "invalid_request"
    )
    # At the limits it is accepted, and kept as sent.
    at_limit: Any = "leaf"
    for _ in range(8):
        at_limit = {"a": at_limit}
    accepted = client.post("/v1/experiments", json={"name": "m", "metadata": at_limit})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["metadata"] == at_limit


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_declared_json_is_415(client: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/folders", content=b'{"name": "typed"}', headers=headers)
    error = assert_error(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"]
    accepted = client.post(
        "/v1/folders",
        content=b'{"name": "%s"}' % unique().encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert accepted.status_code == 201


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GET /v1/health?q=" + b"a" * 70_000 + b" HTTP/1.1", 414),  # over the 64 KiB cap on request heads
        (b"GET /v1/health HTTP/1.1 extra", 400),  # not HTTP/1.1
    ],
    ids=["too long", "malformed"],
)
def test_an_unparsable_request_line_is_answered_in_the_envelope(
    live_server: RunningServer, request_line: bytes, status: int
) -> None:
    host, port = live_server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request_line + b"\r\nHost: tally\r\n\r\n")
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status)
    assert b"content-type: application/json" in head.lower()
    response = httpx.Response(
        status, headers=[tuple(line.split(b": ", 1)) for line in head.split(b"\r\n")[1:]], content=body
    )
    assert_error(response, status, "invalid_request")


def test_no_ingestion_token_rests_in_the_database_and_a_replay_reissues_one(tmp_path: Any) -> None:
    db = tmp_path / "tally.sqlite3"
    with start_server(db=db) as server, make_client(server, server.api_key) as client:
        experiment = client.post("/v1/experiments", json={"name": "secret"}).json()["id"]
        headers = {"Idempotency-Key": "mint-once"}
        path = f"/v1/experiments/{experiment}/ingestion-keys"
        first = client.post(path, json={"name": "trainer"}, headers=headers).json()
        replay = client.post(path, json={"name": "trainer"}, headers=headers)
        assert replay.status_code == 201
        assert replay.headers["Idempotent-Replayed"] == "true"
        again = replay.json()
        assert again["id"] == first["id"]
        assert again["token"].startswith("tk_ing_")
        assert again["token"] != first["token"]
        assert again["token_hint"] == again["token"][-4:]
        event = {"name": "loss", "value": 1.0, "step": 1, "client_event_id": "e1"}
        with make_client(server, again["token"]) as ingest:
            assert (
                ingest.post(f"/v1/experiments/{experiment}/metrics", json={"events": [event]}).status_code
                == 200
            )
        with make_client(server, first["token"]) as stale:
            assert_error(
                stale.post(f"/v1/experiments/{experiment}/metrics", json={"events": [event]}),
                401,
                "unauthenticated",
            )
        # A key revoked since cannot be replayed into a working token.
        client.post(f"/v1/ingestion-keys/{first['id']}/revoke", json={})
        assert_error(client.post(path, json={"name": "trainer"}, headers=headers), 409, "conflict")
    dump = "\n".join(sqlite3.connect(db).iterdump())
    for token in (first["token"], again["token"]):
        assert token not in dump
        assert token[7:] not in dump


def test_an_ingestion_key_can_expire(
    client: httpx.Client, new_experiment: NewExperiment, live_server: RunningServer
) -> None:
    experiment = new_experiment()["id"]
    path = f"/v1/experiments/{experiment}/ingestion-keys"
    assert_error(client.post(path, json={"expires_in_seconds": 59}), 400, "invalid_request")
    forever = client.post(path, json={}).json()
    assert forever["expires_at"] is None
    created = client.post(path, json={"expires_in_seconds": 60}).json()
    assert created["expires_at"] > created["created_at"]
    listed = {k["id"]: k for k in client.get(path).json()["data"]}
    assert listed[created["id"]]["expires_at"] == created["expires_at"]
    event = {"name": "loss", "value": 1.0, "step": 1, "client_event_id": "e1"}
    repo = live_server.app.state.repo
    with make_client(live_server, created["token"]) as ingest:
        assert (
            ingest.post(f"/v1/experiments/{experiment}/metrics", json={"events": [event]}).status_code == 200
        )
        with repo.db.write() as conn:  # let its minute pass
            conn.execute(
                update(api_keys)
                .values(expires_us=time.time_ns() // 1000 - 1)
                .where(api_keys.c.id == created["id"])
            )
        assert_error(
            ingest.post(f"/v1/experiments/{experiment}/metrics", json={"events": [event]}),
            401,
            "unauthenticated",
        )

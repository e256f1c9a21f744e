"""A cursor is untrusted input: every list operation of the contract refuses a forged one with 400 naming
`cursor`, on both backends (never a 500 from the database, nor a page of whatever a forged position selects).

The forgeries are made from a real cursor of each list: integers beyond int64, negative ones, other types, a
key one item longer or shorter, extra fields, another list's cursor, and text that is not a cursor at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tally_server import RunningServer

from . import spec_requests
from .helpers import assert_error, event, make_client, unique
from .writes import Contract, Op

CONTRACT = Contract.load()
LIST_OPS = [
    op
    for op in CONTRACT.ops
    if any(p["name"] == "cursor" and p["in"] == "query" for p in spec_requests.parameters(CONTRACT, op))
]


@dataclass
class Lists:
    """For each list operation: a client allowed to call it, its URL and required query, and a real cursor."""

    client: httpx.Client
    calls: dict[str, tuple[str, dict[str, Any]]]
    cursors: dict[str, str]


@pytest.fixture(scope="module")
def lists(live_server: RunningServer) -> Iterator[Lists]:
    """Two items or more in every list (a page of one then has a next_cursor)."""
    with make_client(live_server, live_server.api_key) as client:
        folder = client.post("/v1/folders", json={"name": unique("cursors")}).json()["id"]
        for i in range(2):
            client.post("/v1/folders", json={"name": f"c{i}", "parent_id": folder})
        # metadata {"k": ...}: listExperiments is called with metadata_key=k too
        experiment = client.post(
            "/v1/experiments", json={"name": unique("cursors"), "folder_id": folder, "metadata": {"k": 1}}
        ).json()
        client.post(
            "/v1/experiments", json={"name": unique("cursors"), "folder_id": folder, "metadata": {"k": 2}}
        )
        tokens = [
            client.post(f"/v1/experiments/{experiment['id']}/ingestion-keys", json={}).json()["token"]
            for _ in range(2)
        ]
        with make_client(live_server, tokens[0]) as ingest:
            events = [
                event(f"e{i}", name=f"cursor/{i % 2}", step=i, metadata={"k": f"v{i}"}) for i in range(4)
            ]
            assert ingest.post(
                f"/v1/experiments/{experiment['id']}/metrics", json={"events": events}
            ).is_success
            for i in range(2):
                note = {"text": f"n{i}", "client_event_id": f"a{i}"}
                assert ingest.post(f"/v1/experiments/{experiment['id']}/annotations", json=note).is_success
        for i in range(2):
            data = f"artifact {i}".encode()
            assert client.post(
                f"/v1/experiments/{experiment['id']}/artifacts",
                params={"name": f"file-{i}", "sha256": hashlib.sha256(data).hexdigest()},
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            ).is_success
        known = {
            "experiment_id": experiment["id"],
            "folder_id": folder,
            "parent_id": folder,
            "metric_name": "cursor/0",
            "metadata_key": "k",
        }
        calls: dict[str, tuple[str, dict[str, Any]]] = {}
        cursors: dict[str, str] = {}
        for op in LIST_OPS:
            url = spec_requests.url_of(CONTRACT, op, **{p: known[p] for p in op.path_params})
            query = {
                p["name"]: known[p["name"]]
                for p in spec_requests.parameters(CONTRACT, op)
                if p["in"] == "query" and p["name"] in known
            }
            first = client.get(url, params={**query, "page_size": 1})
            assert first.status_code == 200, (op.label, first.text)
            assert first.json()["next_cursor"], (
                f"{op.label}: the fixture made too few items for a second page"
            )
            calls[op.operation_id] = (url, query)
            cursors[op.operation_id] = first.json()["next_cursor"]
        yield Lists(client, calls, cursors)


def _decode(cursor: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def forgeries(real: str, others: list[str]) -> Iterator[tuple[str, str]]:
    """(what, cursor) for every way to forge a cursor from a real one."""
    data = _decode(real)
    assert set(data) == {"l", "k"}, data  # the shape the forgeries below start from
    key = data["k"]
    for index, value in enumerate(key):
        if isinstance(value, int):
            swaps: list[Any] = [2**63, 2**64, 10**30, -(2**63) - 1, -2, 1.5, True, None, str(value)]
        else:
            swaps = [1, None, [], {}, "a\u0000b"]
        for swap in swaps:
            yield f"k[{index}] = {swap!r}", _encode({**data, "k": [*key[:index], swap, *key[index + 1 :]]})
    yield "one item more", _encode({**data, "k": [*key, key[-1]]})
    yield "one item fewer", _encode({**data, "k": key[:-1]})
    for swap in ({}, "x", None, 1):
        yield f"k = {swap!r}", _encode({**data, "k": swap})
    yield "an extra field", _encode({**data, "x": 1})
    yield "no list name", _encode({"k": key})
    for shape in ([], "x", 1, None):
        yield f"not an object: {shape!r}", _encode(shape)
    for other in others:
        yield f"another list's cursor ({_decode(other)['l']})", other
    yield "not base64url", real[:-1] + "!"
    yield "a character more", real + "x"


@pytest.mark.parametrize("op", LIST_OPS, ids=[op.operation_id for op in LIST_OPS])
def test_a_forged_cursor_is_400_naming_cursor(lists: Lists, op: Op) -> None:
    url, query = lists.calls[op.operation_id]
    real = lists.cursors[op.operation_id]
    assert lists.client.get(url, params={**query, "page_size": 1, "cursor": real}).status_code == 200
    others = [cursor for name, cursor in lists.cursors.items() if _decode(cursor)["l"] != _decode(real)["l"]]
    accepted = []
    for what, forged in forgeries(real, others):
        response = lists.client.get(url, params={**query, "cursor": forged})
        if response.status_code != 400:
            accepted.append(f"{what}: {response.status_code} {response.text[:120]}")
            continue
        error = assert_error(response, 400, "invalid_request")
        assert [e["path"] for e in error["details"]["errors"]] == ["cursor"], (what, error)
    assert not accepted, f"{op.label} did not refuse these forged cursors:\n" + "\n".join(accepted)

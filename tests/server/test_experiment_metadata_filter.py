"""listExperiments `metadata_key` / `metadata_value`: an exact, typed match on experiment metadata (a JSON literal
on the wire; numbers as numbers; nested keys with dots), kept up to date through updates, combined with the other
filters and every order, and bad literals refused naming `metadata_value`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .helpers import assert_error, unique

NewExperiment = Callable[..., dict[str, Any]]


def found(client: httpx.Client, prefix: str, **params: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        query = {"page_size": 2, "name_prefix": prefix, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/experiments", params=query)
        assert response.status_code == 200, response.text
        ids += [e["id"] for e in response.json()["data"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return ids


@pytest.fixture
def runs(new_experiment: NewExperiment) -> dict[str, Any]:
    prefix = unique("meta")
    metadata = [
        {"lr": 0.0003, "optim": {"name": "adam", "beta": 0.9}, "seed": 1},
        {"lr": 3e-4, "optim": {"name": "sgd"}, "seed": 1.0, "note": None},
        {"lr": "0.0003", "optim": "adam", "seed": True, "tags": ["a"]},
        {"lr": 0.001, "optim": {"name": "adam"}, "seed": 2, "a.b": 1},
        {},
    ]
    made = [new_experiment(name=f"{prefix}-{i}", metadata=m) for i, m in enumerate(metadata)]
    return {"prefix": prefix, "ids": [e["id"] for e in made]}


def test_typed_exact_matches(client: httpx.Client, runs: dict[str, Any]) -> None:
    ids, prefix = runs["ids"], runs["prefix"]

    def match(key: str, value: str | None = None) -> list[str]:
        params = {"metadata_key": key, **({"metadata_value": value} if value is not None else {})}
        return found(client, prefix, **params)

    assert match("lr", "0.0003") == ids[:2]  # the number, however written; not the string
    assert match("lr", "3e-4") == ids[:2]
    assert match("lr", '"0.0003"') == [ids[2]]
    assert match("seed", "1") == ids[:2]  # 1 == 1.0; not true
    assert match("seed", "true") == [ids[2]]
    assert match("note", "null") == [ids[1]]
    assert match("optim.name", '"adam"') == [ids[0], ids[3]]
    assert match("optim", '"adam"') == [ids[2]]
    assert match("optim.beta", "0.9") == [ids[0]]
    assert match("optim") == ids[:4]  # has the key, whatever its value (objects included)
    assert match("tags") == [ids[2]]
    assert match("missing") == []
    assert match("lr", '"x\\u0000y"') == []  # no stored string holds NUL (requests cannot): no 500 either
    assert match("a.b") == []  # a key holding a dot cannot be addressed
    assert match("lr", "1e999") == []  # a JSON number beyond a float's range: infinite, matches nothing
    # With the other filters and orders.
    assert found(client, prefix, metadata_key="lr", metadata_value="0.0003", order_by="-created_at") == [
        ids[1], ids[0]
    ]  # fmt: skip
    assert found(client, prefix, metadata_key="optim", order_by="-name") == ids[:4][::-1]
    assert found(client, prefix, metadata_key="optim", order_by="metric:loss:min") == ids[:4]


def test_updates_rewrite_the_index(client: httpx.Client, runs: dict[str, Any]) -> None:
    ids, prefix = runs["ids"], runs["prefix"]
    changed = client.patch(f"/v1/experiments/{ids[4]}", json={"metadata": {"lr": 0.0003}})
    assert changed.status_code == 200, changed.text
    client.patch(f"/v1/experiments/{ids[0]}", json={"metadata": None}).raise_for_status()
    assert found(client, prefix, metadata_key="lr", metadata_value="0.0003") == [ids[1], ids[4]]
    assert found(client, prefix, metadata_key="optim.name") == [ids[1], ids[3]]


@pytest.mark.parametrize("value", ["adam", "[1]", '{"a": 1}', "NaN", "'x'", "1 2"])
def test_a_value_that_is_not_a_json_literal_is_refused(client: httpx.Client, value: str) -> None:
    response = client.get("/v1/experiments", params={"metadata_key": "lr", "metadata_value": value})
    error = assert_error(response, 400, "invalid_request")
    assert "metadata_value" in str(error["details"])


def test_a_value_needs_its_key(client: httpx.Client) -> None:
    error = assert_error(
        client.get("/v1/experiments", params={"metadata_value": "1"}), 400, "invalid_request"
    )
    assert "metadata_value" in str(error["details"])

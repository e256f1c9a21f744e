"""Input the server cannot store or read is refused the same way on every operation and both backends: a body that
is not UTF-8, and the NUL character (U+0000) in any string of a body (keys included, at any depth), in any query
parameter and in any path parameter, is 400 `invalid_request` naming where it is.

The operations, their parameters and their bodies (the contract's examples) come from openapi/tally.yaml, so an
operation added to the contract is covered with no edit here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tally_server import RunningServer

from . import spec_requests
from .helpers import assert_error, make_client
from .writes import Contract, Op

CONTRACT = Contract.load()
BODY_OPS = [op for op in CONTRACT.ops if CONTRACT.body_schema(op) is not None]
JSON = {"Content-Type": "application/json"}


def parameters(op: Op) -> list[dict[str, Any]]:
    return spec_requests.parameters(CONTRACT, op)


def example_of(parameter: dict[str, Any]) -> str:
    return spec_requests.example_of(CONTRACT, parameter)


def url_of(op: Op, **replaced: str) -> str:
    """Path parameters set to their examples: ids need not exist, the input is refused before any lookup."""
    return spec_requests.url_of(CONTRACT, op, **replaced)


class Callers:
    """An httpx client with the credential each operation takes (org key, or an ingestion key)."""

    def __init__(self, server: RunningServer) -> None:
        self.org = make_client(server, server.api_key)
        experiment = self.org.post("/v1/experiments", json={"name": "untrusted-input"}).json()["id"]
        token = self.org.post(f"/v1/experiments/{experiment}/ingestion-keys", json={}).json()["token"]
        self.ingest = make_client(server, token)

    def for_op(self, op: Op) -> httpx.Client:
        return self.ingest if op.schemes == {"IngestionKey"} else self.org

    def close(self) -> None:
        self.org.close()
        self.ingest.close()


@pytest.fixture(scope="module")
def callers(live_server: RunningServer) -> Iterator[Callers]:
    made = Callers(live_server)
    yield made
    made.close()


def field_path(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def strings_and_keys(value: Any, parts: list[str | int]) -> Iterator[tuple[str, list[str | int]]]:
    """("value", path) for every string, ("key", path) for every object key, at any depth."""
    if isinstance(value, str):
        yield "value", parts
    elif isinstance(value, dict):
        for key, child in value.items():
            yield "key", [*parts, key]
            yield from strings_and_keys(child, [*parts, key])
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from strings_and_keys(child, [*parts, index])


def with_nul(body: Any, what: str, parts: list[str | int]) -> tuple[Any, str]:
    """A copy of `body` with a NUL in the string (or the key) at `parts`, and the path the server must name."""
    body = copy.deepcopy(body)
    parent = body
    for part in parts[:-1]:
        parent = parent[part]
    last = parts[-1]
    if what == "value":
        parent[last] = parent[last][:1] + "\x00" + parent[last][1:]
        return body, field_path(parts)
    assert isinstance(last, str)
    renamed = last[:1] + "\x00" + last[1:]
    parent[renamed] = parent.pop(last)
    return body, field_path([*parts[:-1], renamed.replace("\x00", "\\u0000")])


NUL_CASES = [
    pytest.param(op, what, parts, id=f"{op.operation_id}:{what}:{field_path(parts)}")
    for op in BODY_OPS
    for what, parts in strings_and_keys(CONTRACT.body_example(op), [])
]


def test_every_body_operation_has_a_string_to_try() -> None:
    with_strings = {op.operation_id for op, *_ in (case.values for case in NUL_CASES)}
    without = {op.operation_id for op in BODY_OPS} - with_strings
    assert not without, (
        f"the examples of {without} hold no string or key: give them one in openapi/tally.yaml"
    )


@pytest.mark.parametrize(("op", "what", "parts"), NUL_CASES)
def test_nul_in_any_string_or_key_of_a_body_is_400_naming_it(
    callers: Callers, op: Op, what: str, parts: list[str | int]
) -> None:
    body, path = with_nul(CONTRACT.body_example(op), what, parts)
    response = callers.for_op(op).request(op.method, url_of(op), json=body)
    error = assert_error(response, 400, "invalid_request")
    assert {"path": path, "message": error["details"]["errors"][0]["message"]} in error["details"]["errors"]
    assert "NUL" in error["message"], error


@pytest.mark.parametrize("op", BODY_OPS, ids=[op.operation_id for op in BODY_OPS])
@pytest.mark.parametrize("where", ["in a string", "in a key"])
def test_a_body_that_is_not_utf8_is_400_naming_the_body(callers: Callers, op: Op, where: str) -> None:
    text = json.dumps(CONTRACT.body_example(op)).encode()
    assert text.startswith(b"{")
    if where == "in a key":  # Latin-1 bytes: valid JSON, not UTF-8
        content = b'{"caf\xe9": 1, ' + text[1:]
    else:
        first = re.search(rb': "[^"]*"', text)  # the example's first string value
        assert first is not None, text
        content = text[: first.start()] + b': "caf\xe9"' + text[first.end() :]
    response = callers.for_op(op).request(op.method, url_of(op), content=content, headers=JSON)
    error = assert_error(response, 400, "invalid_request")
    assert error["details"]["errors"][0]["path"] == "(body)"
    assert "UTF-8" in error["message"]


QUERY_CASES = [
    pytest.param(op, p["name"], id=f"{op.operation_id}:{p['name']}")
    for op in CONTRACT.ops
    for p in parameters(op)
    if p["in"] == "query"
]
PATH_CASES = [
    pytest.param(op, name, id=f"{op.operation_id}:{name}") for op in CONTRACT.ops for name in op.path_params
]


@pytest.mark.parametrize(("op", "name"), QUERY_CASES)
def test_nul_in_any_query_parameter_is_400_naming_it(callers: Callers, op: Op, name: str) -> None:
    parameter = next(p for p in parameters(op) if p["name"] == name)
    value = example_of(parameter)
    query = {name: value[:1] + "\x00" + value[1:]}
    body = CONTRACT.body_example(op) if CONTRACT.body_schema(op) is not None else None
    response = callers.for_op(op).request(op.method, url_of(op), params=query, json=body)
    error = assert_error(response, 400, "invalid_request")
    named = [e for e in error["details"]["errors"] if e["path"] == name]
    assert named, error
    assert "NUL" in named[0]["message"]


@pytest.mark.parametrize(("op", "name"), PATH_CASES)
def test_nul_in_any_path_parameter_is_400_naming_it(callers: Callers, op: Op, name: str) -> None:
    body = CONTRACT.body_example(op) if CONTRACT.body_schema(op) is not None else None
    response = callers.for_op(op).request(op.method, url_of(op, **{name: "exp\x00x"}), json=body)
    error = assert_error(response, 400, "invalid_request")
    assert error["details"]["errors"][0]["path"] == name
    assert "NUL" in error["message"]

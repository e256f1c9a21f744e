"""The server refuses to start when its handlers and openapi/tally.yaml differ, and says what to do: an operation
added to the spec without a handler (the maintainer's step "server handler + storage" left undone) names the
operation, its route and where the handler goes; a handler left over from a removed operation is named too."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tally_server._call import Call, Reply
from tally_server._spec import build_spec, load_spec, spec_text
from tally_server.app import build_app
from tally_server.handlers import HANDLERS
from tally_server.pipeline import handler_problems
from tally_server.storage.backends import open_repository


def _with_an_operation_no_handler_serves() -> dict[str, Any]:
    """The contract plus one operation: an existing operation's definition under a new path and operationId."""
    document: dict[str, Any] = yaml.safe_load(spec_text())
    template = copy.deepcopy(document["paths"]["/v1/health"]["get"])
    template["operationId"] = "getHealthTwice"
    document["paths"]["/v1/health/twice"] = {"get": template}
    return document


def test_the_server_serves_exactly_the_contracts_operations() -> None:
    assert handler_problems(load_spec(), HANDLERS) == []


def test_an_operation_without_a_handler_stops_the_server_with_what_to_do() -> None:
    spec = build_spec(_with_an_operation_no_handler_serves())
    repo = open_repository(None)
    try:
        with pytest.raises(RuntimeError) as raised:
            build_app(repo, spec=spec)
    finally:
        repo.close()
    message = str(raised.value)
    assert "operation getHealthTwice (GET /v1/health/twice) has no handler" in message
    assert "src/tally_server/handlers/" in message
    assert "HANDLERS" in message


def test_a_handler_without_an_operation_is_named() -> None:
    def leftover(call: Call) -> Reply:
        return Reply(204, None)

    (problem,) = handler_problems(load_spec(), {**HANDLERS, "deleteEverything": leftover})
    assert "handler 'deleteEverything' matches no operation of openapi/tally.yaml" in problem

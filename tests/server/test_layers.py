"""The server's layers, read from its source: what only storage may know, and the limits only the contract states.

- No database-driver knowledge above `tally_server.storage`: no import of sqlite3 / psycopg / psycopg_pool, no
  string naming them (`type(exc).__module__.startswith("psycopg")`, `import_module("sqlite3")`), no DB-API
  exception class named by string, no driver error attribute (`sqlstate`, `sqlite_errorname`). Storage turns driver
  faults into its own exceptions (`storage.faults`); everything above sees only those.
- No limit of the contract that the server enforces itself (body bytes and depth, events per request) is written
  as a number in the server: it is read from `tally_api_types.limits`, which `make generate` derives from
  `openapi/tally.yaml`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tally_api_types import limits

import tally_server

from .helpers import assert_error

_ROOT = Path(tally_server.__file__).resolve().parent
_DRIVERS = {"sqlite3", "psycopg", "psycopg_pool", "psycopg2"}
# A driver named in a string: `sqlite3`, `psycopg.errors`; not a file name such as `server.sqlite3`.
_DRIVER_NAMED = re.compile(r"(?<![.\w])(sqlite3|psycopg2?|psycopg_pool)\b")
_DBAPI_ERRORS = {
    "Error",
    "DatabaseError",
    "DataError",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
}
_DRIVER_ATTRIBUTES = {"sqlstate", "pgcode", "pgerror", "diag", "sqlite_errorcode", "sqlite_errorname"}


def _modules_above_storage() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(_ROOT.rglob("*.py")):
        relative = path.relative_to(_ROOT)
        if relative.parts[0] == "storage":
            continue
        yield str(relative), ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _driver_knowledge(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in _DRIVERS:
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in _DRIVERS:
            yield node.lineno, f"from {node.module} import ..."
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _DRIVER_NAMED.search(node.value):
                yield node.lineno, f"a string naming a driver: {node.value[:60]!r}"
            elif node.value in _DBAPI_ERRORS:
                yield node.lineno, f"a driver's exception class named by string: {node.value!r}"
        elif isinstance(node, ast.Attribute) and node.attr in _DRIVER_ATTRIBUTES:
            yield node.lineno, f"a driver error's attribute: .{node.attr}"


def test_only_storage_knows_the_database_drivers() -> None:
    found = [
        f"src/tally_server/{name}:{line}: {what}"
        for name, tree in _modules_above_storage()
        for line, what in _driver_knowledge(tree)
    ]
    assert not found, (
        "database-driver knowledge above storage; move it into src/tally_server/storage/ (faults.py turns driver "
        "errors into storage's own exceptions):\n" + "\n".join(found)
    )


def test_the_driver_scan_sees_what_it_forbids() -> None:
    """The scan itself: each form of driver knowledge it must catch, caught."""
    source = """
import sqlite3
from psycopg import errors
import psycopg_pool.pool as pool
if type(exc).__module__.startswith("psycopg"): pass
if exc.__class__.__name__ == "OperationalError": pass
code = exc.sqlstate
name = exc.sqlite_errorname
path = "server.sqlite3"
"""
    found = sorted(line for line, _what in _driver_knowledge(ast.parse(source)))
    assert found == [2, 3, 4, 5, 6, 7, 8]


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_each_layer_knows_only_the_layers_below_it() -> None:
    """Start-up (`app`) wires the layers; the routes and the middleware speak ASGI and know no repository; the
    pipeline, validation and the handlers know no ASGI (so they run, and are read, without a web server); nothing
    imports start-up back."""
    modules = dict(_modules_above_storage())
    problems = []
    for name, tree in modules.items():
        imported = _imports(tree)
        module = name.removesuffix(".py").replace("/", ".")
        if module in ("routes", "middleware") and any(i.startswith("tally_server.storage") for i in imported):
            problems.append(f"{name} speaks HTTP and must not reach storage")
        if (module in ("pipeline", "validation") or module.startswith("handlers")) and any(
            i.split(".")[0] in ("starlette", "uvicorn") for i in imported
        ):
            problems.append(f"{name} is below the routes and must not speak ASGI")
        if module != "app" and "tally_server.app" in imported and module not in ("__init__", "cli", "runner"):
            problems.append(f"{name} imports start-up (tally_server.app) back")
    for layer in ("app", "routes", "middleware", "pipeline", "validation"):
        if f"{layer}.py" not in modules:
            problems.append(f"src/tally_server/{layer}.py is missing")
    assert not problems, "\n".join(problems)


# The limits the server enforces by its own code rather than through the schema validator, and a reason for any
# place where the same number means something else.
_SELF_ENFORCED = {
    limits.REQUEST_BODY_X_MAX_BYTES: "REQUEST_BODY_X_MAX_BYTES",
    limits.REQUEST_BODY_X_MAX_DEPTH: "REQUEST_BODY_X_MAX_DEPTH",
    limits.INGEST_METRICS_REQUEST_EVENTS_MAX_ITEMS: "INGEST_METRICS_REQUEST_EVENTS_MAX_ITEMS",
}
_UNRELATED = {("ratelimit.py", 10_000): "how many idle rate-limit buckets are kept, not a contract limit"}


def _constant_numbers(tree: ast.Module) -> Iterator[tuple[int, int]]:
    """Every integer a constant expression spells (`10_000`, `5 * 1024 * 1024`, `1 << 20`), with its line."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant | ast.BinOp | ast.UnaryOp):
            continue
        if not all(
            isinstance(n, ast.Constant | ast.BinOp | ast.UnaryOp | ast.operator | ast.unaryop)
            for n in ast.walk(node)
        ):
            continue
        try:
            value = eval(compile(ast.Expression(node), "<limit>", "eval"), {"__builtins__": {}})  # noqa: S307
        except Exception:  # noqa: S112 - not a number (a string times a string...)
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            yield node.lineno, value


def test_the_server_restates_no_limit_of_the_contract() -> None:
    found = sorted(
        {
            f"src/tally_server/{name}:{line}: {value} is tally_api_types.limits.{_SELF_ENFORCED[value]}"
            for name, tree in _modules_above_storage()
            for line, value in _constant_numbers(tree)
            if value in _SELF_ENFORCED and (Path(name).name, value) not in _UNRELATED
        }
    )
    assert not found, (
        "read these from tally_api_types.limits (generated from openapi/tally.yaml):\n" + "\n".join(found)
    )


@pytest.mark.parametrize("operation", ["createExperiment", "ingestMetrics"])
def test_the_body_caps_are_the_contracts(
    operation: str,
    client: httpx.Client,
    new_experiment: Callable[..., dict[str, Any]],
    ingest_client: Callable[[str], httpx.Client],
) -> None:
    """Over `x-request-body`'s byte cap: 413 naming the contract's caps, for any operation with a body; nested
    deeper than its depth cap: 400 (naming `(body)` where the body has free-form parts; elsewhere the schema
    refuses it first)."""
    if operation == "createExperiment":
        caller, path = client, "/v1/experiments"
    else:
        experiment_id = new_experiment()["id"]
        caller, path = ingest_client(experiment_id), f"/v1/experiments/{experiment_id}/metrics"
    json_body = {"Content-Type": "application/json"}
    too_large = b'{"name": "' + b"x" * limits.REQUEST_BODY_X_MAX_BYTES + b'"}'
    error = assert_error(caller.post(path, content=too_large, headers=json_body), 413, "payload_too_large")
    assert error["details"] == {
        "max_bytes": limits.REQUEST_BODY_X_MAX_BYTES,
        "max_events": limits.INGEST_METRICS_REQUEST_EVENTS_MAX_ITEMS,
    }
    depth = limits.REQUEST_BODY_X_MAX_DEPTH
    too_deep = "[" * depth + "]" * depth  # inside the body's own object: one level more than allowed
    raw = f'{{"name": "deep", "events": {too_deep}}}'.encode()
    error = assert_error(caller.post(path, content=raw, headers=json_body), 400, "invalid_request")
    if operation == "createExperiment":  # a body with free-form parts: its depth is walked before its schema
        assert [e["path"] for e in error["details"]["errors"]] == ["(body)"], error
        assert f"more than {depth} levels" in error["details"]["errors"][0]["message"]

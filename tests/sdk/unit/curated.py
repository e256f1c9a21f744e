"""Which operation of openapi/tally.yaml each curated method of a client wraps, derived from the code itself.

A curated method imports its generated operation module (`from tally_api.api.<tag> import <operation>`) and
calls `<operation>._get_kwargs(...)` (ARCHITECTURE.md, "the curated layer"), directly, in a nested function (a
paginator's `fetch`) or in a private method of its class that it calls (`metrics.ingest` sends through
`_send_batch`). The abstract syntax tree of the method says which modules it calls that way; the generated module's
own `_get_kwargs` says which method and path it sends, and the spec says which operation that is. Nothing here names
an operation, so a method added for a new operation is found with no registration.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
SPEC_PATH = ROOT / "openapi" / "tally.yaml"
HTTP_METHODS = ("get", "put", "post", "patch", "delete")


@dataclass(frozen=True)
class SpecOperation:
    """One operation of the spec, with the inputs a curated method must expose."""

    operation_id: str
    method: str
    path: str
    inputs: dict[str, tuple[str, bool]]  # name -> (where: path, query or body, required)
    pages: bool  # answers a page (`data` and `next_cursor`): a paginated list

    @property
    def label(self) -> str:
        return f"{self.operation_id} ({self.method.upper()} {self.path})"


@dataclass(frozen=True)
class CuratedMethod:
    """A public method of a client or of one of its resources that sends an operation."""

    label: str  # e.g. "Tally.folders.create"
    function: Callable[..., Any]
    operation_ids: frozenset[str]


def load_spec(path: Path = SPEC_PATH) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return spec


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """Follow local `$ref`s (and merge `allOf` parts) until a plain object is left."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    if isinstance(node, dict) and "allOf" in node:
        merged: dict[str, Any] = {"properties": {}, "required": []}
        for part in node["allOf"]:
            part = resolve(spec, part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return merged
    return node


def spec_operations(spec: dict[str, Any]) -> dict[str, SpecOperation]:
    """Every operation, by operationId, with its path, query and body inputs (headers travel in the per-call
    options: credentials, `idempotency_key=`, `extra_headers=`)."""
    found: dict[str, SpecOperation] = {}
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = item[method]
            inputs: dict[str, tuple[str, bool]] = {}
            for param in [*item.get("parameters", []), *op.get("parameters", [])]:
                param = resolve(spec, param)
                if param["in"] in ("path", "query"):
                    inputs[param["name"]] = (
                        param["in"],
                        param["in"] == "path" or bool(param.get("required")),
                    )
            body = resolve(spec, op.get("requestBody", {}))
            schema = resolve(spec, body.get("content", {}).get("application/json", {}).get("schema", {}))
            body_required = bool(body.get("required"))
            for name in schema.get("properties", {}):
                inputs[name] = ("body", body_required and name in schema.get("required", []))
            found[op["operationId"]] = SpecOperation(
                op["operationId"], method, path, inputs, pages=_answers_a_page(spec, op)
            )
    return found


def _answers_a_page(spec: dict[str, Any], op: dict[str, Any]) -> bool:
    for status, response in op.get("responses", {}).items():
        if str(status).startswith("2"):
            content = resolve(spec, response).get("content", {}).get("application/json", {})
            if "next_cursor" in resolve(spec, content.get("schema", {})).get("properties", {}):
                return True
    return False


_METHOD = re.compile(r'"method":\s*"(\w+)"')
_URL = re.compile(r'"url":\s*f?"([^"]+)"')


@cache
def generated_route(module: str) -> tuple[str, str]:
    """(method, path template) that a generated operation module's `_get_kwargs` sends."""
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None:
        raise LookupError(f"{module} does not exist: run `make generate` after changing openapi/tally.yaml")
    source = Path(found.origin).read_text(encoding="utf-8")
    method, url = _METHOD.search(source), _URL.search(source)
    if method is None or url is None:
        raise LookupError(
            f"{module}: no method and url found in its _get_kwargs (has the generator changed?)"
        )
    return method.group(1).lower(), url.group(1)


def called_operation_modules(cls: type, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The generated operation modules whose `_get_kwargs` method `name` of `cls` calls, itself or through the
    private methods of `cls` it calls."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(cls, name))))
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tally_api.api."):
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    modules: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        target = node.func.value
        if node.func.attr == "_get_kwargs" and isinstance(target, ast.Name) and target.id in imported:
            modules.add(imported[target.id])
        elif (
            isinstance(target, ast.Name)
            and target.id == "self"
            and node.func.attr.startswith("_")
            and not node.func.attr.startswith("__")
            and callable(getattr(cls, node.func.attr, None))
            and node.func.attr not in seen
        ):
            modules |= called_operation_modules(cls, node.func.attr, seen | {name})
    return modules


def unused_parameters(function: Callable[..., Any]) -> list[str]:
    """The parameters of `function` its body never reads (a parameter added to the signature and not sent)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    read = {
        node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    return [name for name in inspect.signature(function).parameters if name != "self" and name not in read]


def public_methods(obj: object) -> Iterator[tuple[str, Callable[..., Any]]]:
    for name, member in inspect.getmembers(type(obj)):
        if not name.startswith("_") and inspect.isfunction(member):
            yield name, member


def curated_methods(client: object, spec: dict[str, Any]) -> list[CuratedMethod]:
    """The public methods of `client` and of its resources (the attributes that are objects of this package's
    resource modules) that send an operation of `spec`."""
    by_route = {(op.method, op.path): op.operation_id for op in spec_operations(spec).values()}
    client_name = type(client).__name__
    owners: list[tuple[str, object]] = [(client_name, client)]
    # The resources are made on first use (`functools.cached_property` on the client's class).
    resources = [
        name for name, member in inspect.getmembers(type(client)) if isinstance(member, cached_property)
    ]
    for attribute in sorted(resources):
        value = getattr(client, attribute)
        if not attribute.startswith("_") and type(value).__module__.endswith("._resources"):
            owners.append((f"{client_name}.{attribute}", value))
    found: list[CuratedMethod] = []
    for prefix, owner in owners:
        for name, function in public_methods(owner):
            modules = called_operation_modules(type(owner), name)
            ids = set()
            for module in modules:
                route = generated_route(module)
                if route not in by_route:
                    raise LookupError(
                        f"{prefix}.{name} calls {module}, which sends {route[0].upper()} {route[1]}: no such "
                        "operation in openapi/tally.yaml (run `make generate`, or fix the method)"
                    )
                ids.add(by_route[route])
            if ids:
                found.append(CuratedMethod(f"{prefix}.{name}", function, frozenset(ids)))
    return found

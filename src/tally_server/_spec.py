"""The contract at run time: `openapi/tally.yaml` loaded once, its `$ref`s inlined, and every request and
response
schema compiled into a Draft 2020-12 validator (jsonschema-rs), so routing and validation cannot drift
from it."""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from tally_server._util import TIMESTAMP_RULE

__all__ = [
    "FieldError",
    "Operation",
    "Parameter",
    "Spec",
    "build_spec",
    "format_path",
    "load_spec",
    "spec_text",
]

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def spec_text() -> str:
    """The spec's YAML: the copy packaged in the wheel if present, else the repository's
    `openapi/tally.yaml`."""
    packaged = importlib.resources.files("tally_server").joinpath("_spec", "tally.yaml")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    repo_copy = Path(__file__).resolve().parents[2] / "openapi" / "tally.yaml"
    return repo_copy.read_text(encoding="utf-8")


def _resolve(node: Any, root: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline every local `$ref` (the contract has no recursive schemas; a cycle is an error)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                raise ValueError(f"only local $refs are supported, not {ref!r}")
            if ref in seen:
                raise ValueError(f"recursive $ref {ref!r}")
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            resolved = _resolve(target, root, (*seen, ref))
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if siblings and isinstance(resolved, dict):
                return {**resolved, **_resolve(siblings, root, seen)}
            return resolved
        return {key: _resolve(value, root, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, root, seen) for item in node]
    return node


def _compile(schema: Mapping[str, Any]) -> Any:
    return jsonschema_rs.Draft202012Validator(dict(schema), validate_formats=True)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One validation problem: the field path (`events[3].value`) and what is wrong."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def format_path(parts: list[str | int] | tuple[str | int, ...], prefix: str = "") -> str:
    """`["events", 3, "value"]` -> `events[3].value`."""
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _field_errors(
    validator: Any, instance: Any, prefix: str, schema: Mapping[str, Any] | None, limit: int = 20
) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in validator.iter_errors(instance):
        parts: list[str | int] = list(error.instance_path)
        kind = error.kind
        kind_name = type(kind).__name__
        if kind_name == "Required":
            parts.append(str(kind.property))
        elif kind_name == "AdditionalProperties" and len(kind.unexpected) == 1:
            parts.append(str(kind.unexpected[0]))
        path = format_path(parts, prefix) or "(body)"
        message = _short_message(error.message)
        if kind_name in ("Format", "Pattern") and _is_date_time(schema, error.schema_path[:-1]):
            message = f"must be {TIMESTAMP_RULE}"  # not the contract's pattern, which says little to a person
        found = FieldError(path, message)
        if found not in errors:  # a leap second at the wrong minute fails both the format and the pattern
            errors.append(found)
        if len(errors) >= limit:
            break
    return errors


def _is_date_time(schema: Any, schema_path: Any) -> bool:
    """Whether the subschema at `schema_path` (inside `schema`, its `$ref`s inlined) is a `format: date-time`."""
    node = schema
    try:
        for part in schema_path:
            node = node[part]
    except (KeyError, IndexError, TypeError):
        return False
    return isinstance(node, Mapping) and node.get("format") == "date-time"


def _short_message(message: str) -> str:
    # jsonschema-rs quotes the whole offending instance; keep messages short (and never echo a huge body
    # back).
    return message if len(message) <= 300 else message[:297] + "..."


_INTEGER_RE = re.compile(r"-?[0-9]+")
_NUMBER_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Parameter:
    """One path, query or header parameter, with its compiled schema."""

    name: str
    location: str
    required: bool
    schema: Mapping[str, Any]
    validator: Any = field(repr=False, compare=False)

    def coerce(self, raw: str) -> Any:
        """Turn the raw string into the schema's scalar type when it looks like one; validation judges
        the rest."""
        types = self.schema.get("type", "string")
        types = [types] if isinstance(types, str) else list(types)
        if "integer" in types and _INTEGER_RE.fullmatch(raw):
            return int(raw)
        if "number" in types and _NUMBER_RE.fullmatch(raw):
            return float(raw)
        if "boolean" in types and raw in ("true", "false"):
            return raw == "true"
        return raw

    def check(self, value: Any) -> list[FieldError]:
        if self.validator.is_valid(value):
            return []
        return _field_errors(self.validator, value, self.name, self.schema)

    @property
    def default(self) -> Any:
        return self.schema.get("default")


@dataclass(slots=True)
class Operation:
    """One operation of the contract: how to route it, what to validate, what it may answer."""

    operation_id: str
    method: str
    path: str
    secured: bool
    security_schemes: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    body_required: bool
    body_validator: Any = field(repr=False)
    body_schema: Mapping[str, Any] | None = field(repr=False)
    responses: dict[str, Any] = field(repr=False)
    # The media types of the 200 answer, in the contract's order (the first is the default): an operation that
    # offers more than one negotiates by `Accept` (see `tally_server.negotiation`).
    produces: tuple[str, ...] = ()
    # The request body is bytes (`application/octet-stream`), streamed to disk by the route, never JSON.
    streams_body: bool = False

    @property
    def accepts_idempotency_key(self) -> bool:
        return any(p.location == "header" and p.name.lower() == "idempotency-key" for p in self.parameters)

    def body_default(self, name: str) -> Any:
        """The contract's default of the body's top-level property `name` (None when it declares none): a
        handler reads it here rather than restating it."""
        properties = (self.body_schema or {}).get("properties") or {}
        return (properties.get(name) or {}).get("default")

    def check_body(self, body: Any) -> list[FieldError]:
        if self.body_validator is None or self.body_validator.is_valid(body):
            return []
        return _field_errors(self.body_validator, body, "", self.body_schema)

    def response_problems(self, status: int, body: Any) -> list[str]:
        """Why `body` at `status` does not conform to the contract (empty when it does)."""
        key = str(status)
        if key not in self.responses:
            return [f"status {status} is not declared for {self.operation_id}"]
        validator = self.responses[key]
        if validator is None:
            return [] if body is None else [f"status {status} of {self.operation_id} declares no body"]
        return [
            f"{format_path(list(e.instance_path)) or '(body)'}: {_short_message(e.message)}"
            for e in validator.iter_errors(body)
        ][:20]


@dataclass(slots=True)
class Spec:
    """The loaded contract."""

    document: dict[str, Any] = field(repr=False)
    operations: list[Operation]
    version: str

    def by_id(self) -> dict[str, Operation]:
        return {op.operation_id: op for op in self.operations}

    def schema(self, name: str) -> dict[str, Any]:
        resolved: dict[str, Any] = _resolve(self.document["components"]["schemas"][name], self.document)
        return resolved


def _json_body_schema(node: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not node:
        return None
    content = node.get("content") or {}
    media = content.get("application/json")
    if media is None:
        return None
    schema: Mapping[str, Any] | None = media.get("schema")
    return schema


def build_spec(document: dict[str, Any]) -> Spec:
    """The contract of an OpenAPI document already parsed (load_spec for the packaged one; tests pass others)."""
    resolved_paths: dict[str, Any] = _resolve(document["paths"], document)
    global_security = document.get("security", [])
    operations: list[Operation] = []
    response_cache: dict[str, Any] = {}
    for path, item in resolved_paths.items():
        shared_params = item.get("parameters", [])
        for method in _HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            merged: dict[tuple[str, str], dict[str, Any]] = {}
            for param in [*shared_params, *op.get("parameters", [])]:
                merged[(param["name"], param["in"])] = param
            parameters = tuple(
                Parameter(
                    name=p["name"],
                    location=p["in"],
                    required=bool(p.get("required", False)),
                    schema=p.get("schema", {}),
                    validator=_compile(p.get("schema", {})),
                )
                for p in merged.values()
            )
            security = op.get("security", global_security)
            schemes = tuple(name for requirement in security for name in requirement)
            body = op.get("requestBody")
            body_schema = _json_body_schema(body)
            responses: dict[str, Any] = {}
            for status, response in op.get("responses", {}).items():
                schema = _json_body_schema(response)
                if schema is None:
                    responses[str(status)] = None
                    continue
                cache_key = json.dumps(schema, sort_keys=True)
                if cache_key not in response_cache:
                    response_cache[cache_key] = _compile(schema)
                responses[str(status)] = response_cache[cache_key]
            operations.append(
                Operation(
                    operation_id=op["operationId"],
                    method=method.upper(),
                    path=path,
                    secured=bool(schemes),
                    security_schemes=schemes,
                    parameters=parameters,
                    body_required=bool(body and body.get("required", False)),
                    body_validator=_compile(body_schema) if body_schema is not None else None,
                    body_schema=body_schema,
                    responses=responses,
                    produces=tuple((op.get("responses", {}).get("200") or {}).get("content") or ()),
                    streams_body="application/octet-stream" in ((body or {}).get("content") or {}),
                )
            )
    return Spec(document=document, operations=operations, version=str(document["info"]["version"]))


@cache
def load_spec() -> Spec:
    """The contract, loaded and compiled once per process."""
    document = yaml.safe_load(spec_text())
    if not isinstance(document, dict):
        raise ValueError("the OpenAPI document is not a mapping")
    return build_spec(document)

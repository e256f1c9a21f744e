"""The contract's house rules, checked on openapi/tally.yaml itself.

Each test names the rule from ARCHITECTURE.md or issue 2 that it holds the spec to, so a failure says what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "openapi" / "tally.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
METHODS = ("get", "put", "post", "patch", "delete")

INGESTION_KEY_OPERATIONS = {"ingestMetrics", "createAnnotation"}
UNAUTHENTICATED_OPERATIONS = {"getHealth"}


def operations() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Every (method, path, path item, operation) in the spec."""
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item, item[method]


def resolve(node: Any) -> Any:
    """Follow a local `$ref` (one level at a time) to the object it names."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def parameters_of(item: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [resolve(p) for p in item.get("parameters", []) + operation.get("parameters", [])]


def op_ids() -> list[str]:
    return [op["operationId"] for _, _, _, op in operations()]


def op_by_id(operation_id: str) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    for method, path, item, op in operations():
        if op["operationId"] == operation_id:
            return method, path, item, op
    raise KeyError(operation_id)


# A registry so that example validation follows the spec's own `$ref`s under Draft 2020-12, as OpenAPI 3.1 says.
_REGISTRY: Registry[Any] = Registry().with_resource(
    "tally.yaml", Resource.from_contents(SPEC, default_specification=DRAFT202012)
)


def validate_example(schema: dict[str, Any], example: Any) -> None:
    rooted = _rebase_refs(schema)
    validator = jsonschema.Draft202012Validator(
        rooted, registry=_REGISTRY, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(example), key=lambda e: list(e.absolute_path))
    assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def _rebase_refs(node: Any) -> Any:
    """Point `#/...` refs at the registered spec document, so a sub-schema validates on its own."""
    if isinstance(node, dict):
        return {
            k: ("tally.yaml" + v if k == "$ref" and v.startswith("#") else _rebase_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rebase_refs(v) for v in node]
    return node


def test_spec_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1")
    validate(SPEC)


def test_every_operation_is_named_tagged_and_versioned() -> None:
    """Rules every operation follows, however many there are (no list of them to keep by hand): a unique
    camelCase operationId (the generator's module name and the server's handler key), exactly one tag that the
    spec declares (the SDK's resource and the generator's package), and a path under /v1."""
    declared_tags = {tag["name"] for tag in SPEC["tags"]}
    ids = op_ids()
    problems = [f"operationId {oid} is used more than once" for oid in sorted(set(ids)) if ids.count(oid) > 1]
    for method, path, _, op in operations():
        where = f"{method.upper()} {path}"
        if not re.fullmatch(r"[a-z][A-Za-z0-9]*", op.get("operationId", "")):
            problems.append(f"{where}: operationId {op.get('operationId')!r} must be camelCase")
        if len(op.get("tags", [])) != 1 or op["tags"][0] not in declared_tags:
            problems.append(
                f"{where}: needs exactly one tag of {sorted(declared_tags)} (add new ones to `tags`)"
            )
        if not path.startswith("/v1/"):
            problems.append(f"{where}: paths start with /v1/")
    assert not problems, "\n".join(problems)


def test_servers_name_the_local_reference_server() -> None:
    assert {"url": "http://127.0.0.1:8787"}.items() <= SPEC["servers"][0].items()


@pytest.mark.parametrize("operation_id", op_ids())
def test_every_body_has_an_example_that_validates(operation_id: str) -> None:
    _, _, _, op = op_by_id(operation_id)
    bodies: list[tuple[str, dict[str, Any]]] = []
    if "requestBody" in op:
        bodies += [(f"request {ct}", media) for ct, media in resolve(op["requestBody"])["content"].items()]
    for status, response in op["responses"].items():
        bodies += [
            (f"response {status} {ct}", media) for ct, media in resolve(response).get("content", {}).items()
        ]
    assert bodies, f"{operation_id} has no bodies at all"
    for where, media in bodies:
        examples = (
            [media["example"]]
            if "example" in media
            else [e["value"] for e in media.get("examples", {}).values()]
        )
        assert examples, f"{operation_id}: {where} has no example"
        for example in examples:
            try:
                validate_example(media["schema"], example)
            except AssertionError as exc:
                raise AssertionError(
                    f"{operation_id}: {where} example does not match its schema: {exc}"
                ) from None


@pytest.mark.parametrize("operation_id", op_ids())
def test_every_operation_declares_its_error_responses(operation_id: str) -> None:
    method, _, _, op = op_by_id(operation_id)
    statuses = set(op["responses"])
    required = {"500", "503"}
    if operation_id not in UNAUTHENTICATED_OPERATIONS:
        required |= {"401", "429"}
    if operation_id not in UNAUTHENTICATED_OPERATIONS | {"getAuthStatus"}:
        required |= {"400", "403"}
    if "{" in SPEC_PATH_OF[operation_id]:
        required.add("404")
    if method in ("post", "patch"):
        required |= {"409", "413", "422"}
    if method == "delete":  # idempotency_in_progress, idempotency_key_reused
        required |= {"409", "422"}
    assert required <= statuses, f"{operation_id} lacks error responses {sorted(required - statuses)}"
    for status in statuses - {s for s in statuses if s.startswith("2")} - {"304"}:  # 304: no body at all
        content = resolve(op["responses"][status])["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}, (
            f"{operation_id} {status} must use the error envelope"
        )


SPEC_PATH_OF = {op["operationId"]: path for _, path, _, op in operations()}


@pytest.mark.parametrize("operation_id", op_ids())
def test_every_get_is_conditional(operation_id: str) -> None:
    """Every GET answers with an `ETag`, takes `If-None-Match` and may answer 304 without a body; nothing else
    declares them (a write is never answered 304). A streamed GET (its 200 is not JSON: `exportMetrics`' NDJSON or
    CSV) is the exception the contract states: the ETag hashes the body, unknown until it has been sent; unless it
    is known before (`downloadArtifact`: the content's sha256), and then the GET is conditional like the others."""
    method, _, _, op = op_by_id(operation_id)
    params = {p.get("$ref") for p in op.get("parameters", [])}
    conditional = "#/components/parameters/IfNoneMatch" in params
    answer = resolve(op["responses"].get("200", {}))
    streamed = method == "get" and "application/json" not in answer.get("content", {"application/json": {}})
    streamed = streamed and "ETag" not in answer.get("headers", {})
    if method != "get" or streamed:
        kind = "a streamed answer" if streamed else "not a GET"
        assert not conditional, f"{operation_id} is {kind}: no If-None-Match"
        assert "304" not in op["responses"], f"{operation_id} is {kind}: no 304"
        if streamed:
            assert "ETag" not in op["responses"]["200"].get("headers", {}), (
                f"{operation_id} is {kind}: no ETag"
            )
        return
    assert conditional, f"{operation_id} lacks the If-None-Match parameter"
    assert op["responses"].get("304") == {"$ref": "#/components/responses/NotModified"}, (
        f"{operation_id} lacks its 304 response"
    )
    assert "ETag" in op["responses"]["200"]["headers"], f"{operation_id} 200 lacks the ETag header"
    assert "content" not in resolve(op["responses"]["304"]), "a 304 has no body"


@pytest.mark.parametrize("operation_id", op_ids())
def test_every_response_declares_x_request_id(operation_id: str) -> None:
    _, _, _, op = op_by_id(operation_id)
    for status, response in op["responses"].items():
        assert "X-Request-Id" in resolve(response).get("headers", {}), (
            f"{operation_id} {status} lacks X-Request-Id"
        )


@pytest.mark.parametrize(
    "operation_id", [op["operationId"] for m, _, _, op in operations() if m in ("post", "patch", "delete")]
)
def test_every_post_patch_and_delete_takes_an_idempotency_key(operation_id: str) -> None:
    """A DELETE too: retried after its answer was lost, it must replay its first success, not answer 404."""
    _, _, item, op = op_by_id(operation_id)
    headers = {p["name"]: p for p in parameters_of(item, op) if p["in"] == "header"}
    assert "Idempotency-Key" in headers
    schema = headers["Idempotency-Key"]["schema"]
    assert (schema["minLength"], schema["maxLength"]) == (1, 255)


@pytest.mark.parametrize("operation_id", [oid for oid in op_ids() if oid.startswith("list")])
def test_every_list_takes_page_size_and_cursor_and_answers_a_page(operation_id: str) -> None:
    _, _, item, op = op_by_id(operation_id)
    query = {p["name"]: p for p in parameters_of(item, op) if p["in"] == "query"}
    page_size = query["page_size"]["schema"]
    assert (page_size["minimum"], page_size["maximum"], page_size["default"]) == (1, 1000, 100)
    assert query["cursor"]["schema"]["type"] == "string"
    page = resolve(op["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page["required"]) == {"data", "next_cursor"}
    assert resolve(page["properties"]["next_cursor"])["type"] == ["string", "null"]


@pytest.mark.parametrize("operation_id", op_ids())
def test_security_is_declared_per_operation(operation_id: str) -> None:
    method, _, _, op = op_by_id(operation_id)
    assert "security" in op, f"{operation_id} must declare its own security"
    schemes = {name for requirement in op["security"] for name in requirement}
    # The dashboard's session cookie reads (every GET but health), and never writes: a page of another site
    # cannot change anything through it.
    session = {"DashboardSession"} if method == "get" else set()
    if operation_id in UNAUTHENTICATED_OPERATIONS:
        assert schemes == set()
    elif operation_id in INGESTION_KEY_OPERATIONS:
        assert schemes == {"IngestionKey"}
    elif operation_id == "getAuthStatus":
        assert schemes == {"OrgApiKey", "IngestionKey", *session}
    else:
        assert schemes == {"OrgApiKey", *session}


def test_query_parameters_are_plain_scalars() -> None:
    for method, path, item, op in operations():
        for parameter in parameters_of(item, op):
            if parameter["in"] == "query":
                schema = resolve(parameter["schema"])
                assert schema.get("type") in {"string", "integer", "boolean", "number"}, (
                    f"{method.upper()} {path} ?{parameter['name']} must be a plain scalar, not {schema}"
                )


def test_metric_names_never_travel_in_paths() -> None:
    for method, path, item, op in operations():
        path_parameters = [p["name"] for p in parameters_of(item, op) if p["in"] == "path"]
        assert not [name for name in path_parameters if "name" in name], f"{method.upper()} {path}"


def _response_enums() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every enumeration reachable from a 2xx or error response body, with where it is."""
    seen: set[int] = set()

    def walk(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
        node = resolve(node)
        if not isinstance(node, dict) or id(node) in seen:
            return
        seen.add(id(node))
        if "enum" in node:
            yield where, node
        for key in ("properties",):
            for name, child in node.get(key, {}).items():
                yield from walk(child, f"{where}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from walk(node[key], f"{where}[]")
        for key in ("allOf", "oneOf"):
            for child in node.get(key, []):
                yield from walk(child, where)
        if "anyOf" in node:
            branches = [resolve(b) for b in node["anyOf"]]
            open_string = any(b.get("type") == "string" and "enum" not in b for b in branches)
            for branch in branches:
                if "enum" in branch and not open_string:
                    yield where, branch

    for _, _, _, op in operations():
        for status, response in op["responses"].items():
            for media in resolve(response).get("content", {}).values():
                yield from walk(media["schema"], f"{op['operationId']} {status}")


def test_response_enums_stay_parseable_when_the_server_adds_a_value() -> None:
    closed = [where for where, _ in _response_enums()]
    assert not closed, f"closed enums in responses (wrap them in anyOf [enum, string]): {closed}"


def test_the_open_enum_check_catches_a_closed_enum() -> None:
    experiment = SPEC["components"]["schemas"]["Experiment"]["properties"]
    original = experiment["status"]
    experiment["status"] = {"$ref": "#/components/schemas/ExperimentStatus"}
    try:
        assert any("status" in where for where, _ in _response_enums())
    finally:
        experiment["status"] = original


def test_no_unions_so_the_breaking_change_check_sees_every_property() -> None:
    """Optic's breaking-change rules skip union-typed properties (anyOf/oneOf) when checking required-ness, so a
    union in the spec would let `make spec-diff` miss a required property made optional. Nullable fields use type
    arrays (`[string, 'null']`) and open enums use `x-extensible-enum` instead."""
    text = SPEC_PATH.read_text(encoding="utf-8")
    assert "anyOf:" not in text
    assert "oneOf:" not in text


def test_open_enums_list_the_same_values_as_their_strict_request_twins() -> None:
    schemas = SPEC["components"]["schemas"]
    assert schemas["ExperimentStatusValue"]["x-extensible-enum"] == schemas["ExperimentStatus"]["enum"]
    assert schemas["ExperimentStatusValue"]["type"] == "string"

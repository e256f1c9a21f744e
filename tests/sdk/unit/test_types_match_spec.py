"""The public types come out of `make generate`; this checks what they are (the generated classes, with only the
SDK-only fields added), and checks against openapi/tally.yaml whatever `src/` still restates by hand (the lenient
error envelope, the SDK's loosened `MetricEvent`, batch and metadata limits), so that nothing can drift."""

from __future__ import annotations

import ast
import itertools
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import tally_api_types
import yaml

import tally
import tally._types
from tally import _error_body as _errors  # the error envelope (`tally._errors` reads it)
from tally._types import Page

SPEC = yaml.safe_load((Path(__file__).resolve().parents[3] / "openapi" / "tally.yaml").read_text())
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]

# The public types are generated (tally_api_types); what `src/` may still restate by hand is listed here, each
# with its reason, and checked against the spec below.
RESPONSE_TYPES: dict[type[msgspec.Struct], str] = {
    tally.Health: "Health",
    tally.AuthStatus: "AuthStatus",
    tally.Folder: "Folder",
    tally.Experiment: "Experiment",
    tally.EventConflict: "EventConflict",
    tally.IngestResult: "IngestMetricsResult",
    tally.MetricPoint: "MetricPoint",
    tally.MetricSeries: "MetricSeries",
    tally.MetricSeriesBucket: "MetricSeriesBucket",
    tally.ComparedSeries: "ComparedSeries",
    tally.CompareRow: "CompareRow",
    tally.CompareResult: "CompareMetricsResult",
    tally.CatalogEntry: "MetricCatalogEntry",
    tally.MetadataValueCount: "MetadataValueCount",
    tally.IngestionKey: "IngestionKey",
    tally.CreatedIngestionKey: "CreatedIngestionKey",
    tally.Annotation: "Annotation",
    _errors.ErrorResponse: "ErrorResponse",  # hand-kept and lenient: a bad envelope still maps to an error
}
REQUEST_TYPES: dict[type[msgspec.Struct], str] = {
    tally.MetricEvent: "MetricEvent",
    tally.SeriesSelector: "SeriesSelector",
}
# Fields the SDK adds or loosens on purpose, with the reason: the only fields `src/tally/_types.py` may declare.
SDK_ONLY = {(tally.AuthStatus, "credential_source")}  # which credential source won; set by the SDK
OPTIONAL_IN_SDK = {
    (tally.MetricEvent, "client_event_id"),  # filled with tally.event_id(...) when absent
}
LENIENT_ERROR_TYPES = {
    _errors.ErrorResponse,
    _errors.ErrorBody,
}  # every field optional: a bad envelope still maps


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return resolve(SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            part = resolve(part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return merged
    return schema


def schema_types(schema: dict[str, Any]) -> set[str]:
    schema = resolve(schema)
    kind = schema.get("type", "object" if "properties" in schema else None)
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if schema.get("format") == "date-time":
        kinds = {"date-time" if k == "string" else k for k in kinds}
    return kinds


def python_types(annotation: Any) -> set[str]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(python_types(arg) for arg in typing.get_args(annotation)))
    if annotation is type(None):
        return {"null"}
    if annotation is datetime:
        return {"date-time"}
    base = origin or annotation
    table = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        tuple: "array",
        list: "array",
        dict: "object",
        Mapping: "object",  # a response's free-form object, frozen (FrozenDict) on decoding
    }
    if base in table:
        return {table[base]}
    if isinstance(base, type) and issubclass(base, msgspec.Struct):
        return {"object"}
    if annotation is Any:
        return {"any"}
    raise AssertionError(f"unexpected annotation {annotation!r}")


def check(struct: type[msgspec.Struct], schema_name: str, *, request: bool) -> None:
    schema = resolve(SCHEMAS[schema_name])
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    hints = typing.get_type_hints(struct)
    fields = {f.name: f for f in info.fields}
    spec_only = set(properties) - set(fields)
    assert not spec_only, f"{struct.__name__} lacks spec fields {spec_only} of {schema_name}"
    for name, field in fields.items():
        if (struct, name) in SDK_ONLY:
            assert not field.required
            continue
        assert name in properties, f"{struct.__name__}.{name} is not in {schema_name}"
        wanted = schema_types(properties[name])
        got = python_types(hints[name])
        if request and (name not in required or (struct, name) in OPTIONAL_IN_SDK):
            got.discard("null")  # optional request fields default to None, meaning "absent"
            wanted.discard("null")
        if "any" not in got and struct not in LENIENT_ERROR_TYPES:
            assert got == wanted, f"{struct.__name__}.{name}: {got} vs spec {wanted}"
        if struct in LENIENT_ERROR_TYPES:
            continue
        if (struct, name) in OPTIONAL_IN_SDK:
            assert name in required
            assert not field.required
        elif request:
            assert field.required == (name in required), f"{struct.__name__}.{name} required-ness"
        else:
            # Optional or nullable response properties have a default (a new SDK reads an older server);
            # required, non-nullable ones must be present.
            must_have = name in required and "null" not in schema_types(properties[name])
            assert field.required == must_have, f"{struct.__name__}.{name} required-ness vs the spec"


@pytest.mark.parametrize(
    ("struct", "schema_name"), RESPONSE_TYPES.items(), ids=lambda v: getattr(v, "__name__", v)
)
def test_response_type_matches_spec(struct: type[msgspec.Struct], schema_name: str) -> None:
    check(struct, schema_name, request=False)


def test_error_body_matches_spec() -> None:
    body = resolve(SCHEMAS["ErrorBody"])
    assert {f.name for f in msgspec.structs.fields(_errors.ErrorBody)} == set(body["properties"])


@pytest.mark.parametrize(
    ("struct", "schema_name"), REQUEST_TYPES.items(), ids=lambda v: getattr(v, "__name__", v)
)
def test_request_type_matches_spec(struct: type[msgspec.Struct], schema_name: str) -> None:
    check(struct, schema_name, request=True)


@pytest.mark.parametrize("page_schema", [name for name in SCHEMAS if name.endswith("Page")])
def test_page_matches_every_page_schema(page_schema: str) -> None:
    schema = SCHEMAS[page_schema]
    assert (
        set(schema["required"]) == {f.name for f in msgspec.structs.fields(Page)} == set(schema["properties"])
    )


def _declared_fields(tree: ast.Module) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            found[node.name] = {
                item.target.id
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
    return found


def test_src_restates_no_schema_field() -> None:
    """`src/tally/_types.py` declares no field but the SDK-only ones above, so a property added to a schema
    reaches the public type through `make generate` alone (test_generated_types.py runs that case)."""
    source = Path(tally._types.__file__).read_text(encoding="utf-8")
    declared = {
        (cls, name)
        for cls, names in _declared_fields(ast.parse(source)).items()
        if issubclass(getattr(tally._types, cls), msgspec.Struct)
        for name in names
    }
    allowed = {(struct.__name__, name) for struct, name in SDK_ONLY | OPTIONAL_IN_SDK}
    assert declared == allowed


@pytest.mark.parametrize("struct", [*RESPONSE_TYPES, *REQUEST_TYPES], ids=lambda v: v.__name__)
def test_public_types_are_the_generated_ones(struct: type[msgspec.Struct]) -> None:
    """Every public type is a generated class, or a subclass of one that adds only the SDK-only fields."""
    if struct in LENIENT_ERROR_TYPES:
        return
    generated = next(c for c in struct.__mro__ if vars(tally_api_types).get(c.__name__) is c)
    extra = set(struct.__struct_fields__) - set(generated.__struct_fields__)
    assert extra == {name for owner, name in SDK_ONLY if owner is struct}


def test_every_object_schema_has_a_generated_struct() -> None:
    for name, schema in SCHEMAS.items():
        merged = resolve(schema)
        properties = set(merged.get("properties") or {})
        if not properties or properties == {"data", "next_cursor"}:
            continue
        struct = getattr(tally_api_types, name)
        assert set(struct.__struct_fields__) == properties, name


def test_open_enums_are_strings_and_known_values_match() -> None:
    assert typing.get_type_hints(tally.Experiment)["status"] is str
    assert typing.get_type_hints(tally.AuthStatus)["key_kind"] is str
    assert [s.value for s in tally.ExperimentStatus] == SCHEMAS["ExperimentStatusValue"]["x-extensible-enum"]
    assert [k.value for k in tally.KeyKind] == SCHEMAS["KeyKindValue"]["x-extensible-enum"]


def test_batch_limits_match_spec() -> None:
    from tally._events import MAX_BATCH_EVENTS
    from tally._pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

    assert SCHEMAS["IngestMetricsRequest"]["properties"]["events"]["maxItems"] == MAX_BATCH_EVENTS
    page_size = SPEC["components"]["parameters"]["PageSize"]["schema"]
    assert (page_size["default"], page_size["maximum"]) == (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def test_the_generated_limits_are_the_specs_constraints() -> None:
    """`tally_api_types.limits` (what `tally._limits` checks against) holds every constraint of the spec's
    named schemas and parameters, each equal to the value at the JSON pointer its docstring names."""
    from tally_api_types import limits

    tree = ast.parse(Path(limits.__file__).read_text())
    constants: dict[str, tuple[Any, str]] = {}
    body = tree.body
    for node, following in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            assert isinstance(following, ast.Expr), node.target.id
            pointer = ast.literal_eval(following.value).strip("`")
            constants[node.target.id] = (getattr(limits, node.target.id), pointer)
    for name, (value, pointer) in constants.items():
        node: Any = SPEC
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part]
        assert node == value, (name, pointer)
    keywords = {
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "uniqueItems",
    }
    keywords |= {"minProperties", "maxProperties", "x-max-depth", "x-max-bytes", "exclusiveMinimum"}
    keywords.add("exclusiveMaximum")

    def count(node: Any) -> int:
        if not isinstance(node, dict):
            return 0
        found = sum(1 for key in node if key in keywords)
        found += sum(count(child) for child in (node.get("properties") or {}).values())
        found += sum(count(node.get(key)) for key in ("items", "additionalProperties", "propertyNames"))
        return found + sum(count(part) for part in node.get("allOf") or [])

    components = SPEC["components"]
    expected = sum(count(schema) for schema in SCHEMAS.values())
    expected += sum(count(parameter.get("schema")) for parameter in components["parameters"].values())
    expected += sum(count(extension) for key, extension in components.items() if key.startswith("x-"))
    assert len(constants) == expected
    from tally import _limits

    assert (_limits.MAX_METADATA_ENTRIES, _limits.MAX_METADATA_BYTES) == (64, 8192)  # read from there

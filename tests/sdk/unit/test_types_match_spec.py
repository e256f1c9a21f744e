"""Every public type that restates a schema is checked against openapi/tally.yaml: fields, required-ness,
nullability and base types. Run on every test run, so the SDK's types and the spec cannot drift."""

from __future__ import annotations

import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

import tally
from tally import _errors
from tally._types import Page

SPEC = yaml.safe_load((Path(__file__).resolve().parents[3] / "openapi" / "tally.yaml").read_text())
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]

RESPONSE_TYPES: dict[type[msgspec.Struct], str] = {
    tally.Health: "Health",
    tally.AuthStatus: "AuthStatus",
    tally.Folder: "Folder",
    tally.Experiment: "Experiment",
    tally.EventConflict: "EventConflict",
    tally.IngestResult: "IngestMetricsResult",
    tally.MetricPoint: "MetricPoint",
    tally.ComparedSeries: "ComparedSeries",
    tally.CompareRow: "CompareRow",
    tally.CompareResult: "CompareMetricsResult",
    tally.CatalogEntry: "MetricCatalogEntry",
    tally.MetadataValueCount: "MetadataValueCount",
    tally.IngestionKey: "IngestionKey",
    tally.CreatedIngestionKey: "CreatedIngestionKey",
    tally.Annotation: "Annotation",
    _errors.ErrorResponse: "ErrorResponse",
}
REQUEST_TYPES: dict[type[msgspec.Struct], str] = {
    tally.MetricEvent: "MetricEvent",
    tally.SeriesSelector: "SeriesSelector",
}
# Fields the SDK adds or loosens on purpose, with the reason.
SDK_ONLY = {(tally.AuthStatus, "credential_source")}  # which credential source won; set by the SDK
OPTIONAL_IN_SDK = {
    (tally.MetricEvent, "client_event_id"),  # filled with tally.event_id(...) when absent
    # Added in 1.1 of the contract: a server of 1.0 does not send it, and its keys never expire.
    (tally.IngestionKey, "expires_at"),
    (tally.CreatedIngestionKey, "expires_at"),
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
        elif name in required:
            assert field.required, f"{struct.__name__}.{name} must be required"
        else:  # optional in a response (added in a later contract): the SDK defaults it, for older servers
            assert not field.required, f"{struct.__name__}.{name} is optional in the spec: give it a default"


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


def test_metadata_caps_match_spec() -> None:
    from tally import _limits

    metadata = SCHEMAS["Metadata"]
    assert metadata["maxProperties"] == _limits.MAX_METADATA_ENTRIES
    assert metadata["propertyNames"] == {"minLength": 1, "maxLength": _limits.MAX_METADATA_KEY}
    assert metadata["x-max-depth"] == _limits.MAX_METADATA_DEPTH
    assert metadata["x-max-bytes"] == _limits.MAX_METADATA_BYTES

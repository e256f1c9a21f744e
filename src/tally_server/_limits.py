"""Limits the contract states that JSON Schema cannot express, or that the server checks before the schema: how
large and deep a request body may be (`components.x-request-body`) and how many events one ingest holds, read from
`tally_api_types.limits` (generated from the spec); and the `x-max-depth` / `x-max-bytes` caps on free-form objects
(the `Metadata` schema), read from the resolved schemas at start-up.

So the server enforces what `openapi/tally.yaml` says and nothing else; the walks are iterative (a hostile body
cannot exhaust the stack) and stop at the limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tally_api_types import limits

from tally_server._spec import FieldError, format_path

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_BODY_DEPTH",
    "MAX_EVENTS",
    "SizeCap",
    "admits_free_form",
    "body_depth_errors",
    "cap_errors",
    "size_caps",
]

MAX_BODY_DEPTH = limits.REQUEST_BODY_X_MAX_DEPTH  # levels of objects and arrays in a request body
MAX_BODY_BYTES = limits.REQUEST_BODY_X_MAX_BYTES  # bytes of a request body as sent
MAX_EVENTS = limits.INGEST_METRICS_REQUEST_EVENTS_MAX_ITEMS  # events in one ingest request


def _encoded_size(value: Any) -> int:
    # The server stores free-form metadata as this compact JSON (storage.rows.free_json): measure the same.
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@dataclass(frozen=True, slots=True)
class SizeCap:
    """`x-max-depth` / `x-max-bytes` of the schema at `path` in a body (`"*"` stands for every array item)."""

    path: tuple[str, ...]
    max_depth: int | None
    max_bytes: int | None


def size_caps(schema: Mapping[str, Any] | None) -> tuple[SizeCap, ...]:
    """Every capped schema reachable from a body schema through properties, array items and allOf."""
    found: list[SizeCap] = []
    stack: list[tuple[Mapping[str, Any], tuple[str, ...]]] = [(schema, ())] if schema else []
    while stack:
        node, path = stack.pop()
        if "x-max-depth" in node or "x-max-bytes" in node:
            found.append(SizeCap(path, node.get("x-max-depth"), node.get("x-max-bytes")))
        for name, child in (node.get("properties") or {}).items():
            stack.append((child, (*path, name)))
        if isinstance(node.get("items"), Mapping):
            stack.append((node["items"], (*path, "*")))
        stack.extend((part, path) for part in node.get("allOf") or ())
    return tuple(sorted(found, key=lambda cap: cap.path))


def admits_free_form(schema: Mapping[str, Any] | None) -> bool:
    """Whether a body schema lets a client nest values freely somewhere (`additionalProperties: true` or an
    untyped value); only such bodies need their depth walked, the others are bounded by their schema."""
    stack: list[Any] = [schema] if schema else []
    while stack:
        node = stack.pop()
        if not isinstance(node, Mapping):
            continue
        extra = node.get("additionalProperties")
        if extra is True or extra == {}:
            return True
        stack.extend((node.get("properties") or {}).values())
        stack.extend(
            v for k, v in node.items() if k in ("items", "additionalProperties") and isinstance(v, Mapping)
        )
        stack.extend(node.get("allOf") or ())
    return False


def _depth_over(value: Any, limit: int) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels (a scalar is level 0)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if level + 1 > limit:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def body_depth_errors(body: Any) -> list[FieldError]:
    if _depth_over(body, MAX_BODY_DEPTH):
        return [FieldError("(body)", f"is nested more than {MAX_BODY_DEPTH} levels deep; flatten it")]
    return []


def _located(
    body: Any, path: tuple[str, ...], prefix: list[str | int]
) -> Iterator[tuple[list[str | int], Any]]:
    if not path:
        yield prefix, body
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(body, list):
            for index, item in enumerate(body):
                yield from _located(item, rest, [*prefix, index])
    elif isinstance(body, dict) and head in body:
        yield from _located(body[head], rest, [*prefix, head])


def cap_errors(body: Any, caps: tuple[SizeCap, ...]) -> list[FieldError]:
    """The capped values of `body` that are too deep or too large, each named by its field path."""
    errors: list[FieldError] = []
    for cap in caps:
        for parts, value in _located(body, cap.path, []):
            if value is None:
                continue
            where = format_path(parts) or "(body)"
            if cap.max_depth is not None and _depth_over(value, cap.max_depth):
                errors.append(
                    FieldError(where, f"is nested more than {cap.max_depth} levels deep; flatten it")
                )
            elif cap.max_bytes is not None and (size := _encoded_size(value)) > cap.max_bytes:
                errors.append(
                    FieldError(
                        where,
                        f"is {size} bytes as JSON, over the {cap.max_bytes}-byte limit; store less, or keep "
                        "large data elsewhere and put its location here",
                    )
                )
    return errors

"""The contract's caps on free-form metadata (the `Metadata` schema of `openapi/tally.yaml`), checked before a
request leaves, so a mistake fails at once with the field and the fix instead of after a round trip (and, from a
training loop's spool, instead of never). `tests/sdk/unit/test_types_match_spec.py` checks these numbers against
the spec, so the two cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_METADATA_ENTRIES",
    "MAX_METADATA_KEY",
    "check_metadata",
]

MAX_METADATA_ENTRIES = 64  # Metadata.maxProperties
MAX_METADATA_KEY = 64  # Metadata.propertyNames.maxLength (and minLength 1)
MAX_METADATA_DEPTH = 8  # Metadata.x-max-depth: the object itself is level 1
MAX_METADATA_BYTES = 8192  # Metadata.x-max-bytes: compact UTF-8 JSON


def _depth(value: Any) -> int:
    """Levels of objects and arrays (a scalar is 0), walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_METADATA_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_metadata(value: Mapping[str, Any] | None, field: str = "metadata") -> None:
    """ValueError naming `field` and the fix when `value` breaks a cap of the contract's `Metadata`."""
    if value is None:
        return
    if len(value) > MAX_METADATA_ENTRIES:
        raise ValueError(
            f"{field} has {len(value)} entries; at most {MAX_METADATA_ENTRIES} are allowed: merge some"
        )
    for key in value:
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY:
            raise ValueError(f"{field} key {key!r} must be a string of 1 to {MAX_METADATA_KEY} characters")
    if _depth(value) > MAX_METADATA_DEPTH:
        raise ValueError(f"{field} is nested more than {MAX_METADATA_DEPTH} levels deep; flatten it")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(
            f"{field} is {size} bytes as JSON, over the {MAX_METADATA_BYTES}-byte limit; store less, or keep large "
            "data elsewhere and put its location here"
        )

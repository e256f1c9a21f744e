"""Experiment metadata as rows of `experiment_metadata`: what listExperiments' `metadata_key` / `metadata_value`
filter finds through an index instead of reading every experiment's JSON.

One row per key path (nested keys joined with dots: `{"optim": {"lr": 3e-4}}` gives `optim` and `optim.lr`),
typed: `kind` is number, string, true, false, null, array or object; a number's value is in `number` (a 64-bit
float, so 1 and 1.0 are one value; one beyond its range, 1e999, is infinite and matches nothing stored), a
string's in `text` ('' otherwise). A string PostgreSQL's text cannot hold (NUL, which no request may carry, or
a lone surrogate, both reachable only through a `metadata_value` escape such as `"\\u0000"`) is kind `string0`
with its JSON text, so such a filter matches nothing instead of failing in the database. Arrays and objects are
rows too (the key exists) but are never matched by value; an array's items get no rows. A key holding a dot
cannot be addressed (the contract says so), so it and what is under it get no rows: two spellings can never claim
one path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

__all__ = ["MetadataValueError", "flatten", "parse_value"]

_MAX_PATH = 256  # the contract's maxLength of metadata_key: a longer path can never be asked for


class MetadataValueError(ValueError):
    """`metadata_value` is not a JSON literal that can match."""


def _typed(value: Any) -> tuple[str, float | None, str]:
    """(kind, number, text) of a JSON value."""
    if value is None:
        return "null", None, ""
    if value is True:
        return "true", None, ""
    if value is False:
        return "false", None, ""
    if isinstance(value, int | float):
        return "number", float(value), ""
    if isinstance(value, str):
        if (
            "\x00" in value
        ):  # PostgreSQL's text cannot hold NUL: such a string is kept JSON-escaped, as its own kind
            return "string0", None, json.dumps(value)
        return "string", None, value
    if isinstance(value, list):
        return "array", None, ""
    return "object", None, ""


def flatten(metadata: Any, prefix: str = "") -> Iterator[tuple[str, str, float | None, str]]:
    """(path, kind, number, text) of every addressable key of a metadata object."""
    if not isinstance(metadata, dict):
        return
    for key, value in metadata.items():
        if "." in key or not key:
            continue
        path = prefix + key
        if len(path) > _MAX_PATH:
            continue
        yield (path, *_typed(value))
        if isinstance(value, dict):
            yield from flatten(value, path + ".")


def parse_value(text: str) -> tuple[str, float | None, str]:
    """`metadata_value` as (kind, number, text); MetadataValueError unless it is a JSON scalar."""
    try:
        value = json.loads(text, parse_constant=_refuse)
    except ValueError as exc:
        raise MetadataValueError(
            'must be a JSON literal: a number (0.0003), a string with its quotes ("adam"), true, false or null'
        ) from exc
    if isinstance(value, list | dict):
        raise MetadataValueError(
            "arrays and objects are not matched; give a number, a string, true, false or null"
        )
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode()
        except (
            UnicodeEncodeError
        ):  # a lone surrogate (\ud800): no stored metadata holds one, so it matches nothing
            return "string0", None, json.dumps(value)
    return _typed(value)


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")

"""What the contract refuses, refused before it leaves: the SDK's one set of checks of what it sends.

The same functions run at `run.log()` / `run.annotate()` (so a bad value fails at the call, naming it, instead of
poisoning a batch later) and again at send time in `client.metrics.ingest` (`tally._events.prepare_events`) and
`client.annotations.create`, so the run's sender meets exactly the refusals the caller would. Every number and
pattern comes from `tally_api_types.limits`, which `make generate` derives from `openapi/tally.yaml`; nothing here
restates a limit by hand. Rules the schemas cannot say are written here once, each with its reason:

- no NUL (U+0000) in any string, at any depth: PostgreSQL cannot store it in text or JSONB, and the contract
  refuses it on both backends;
- no NaN or Infinity in metadata: JSON has no such numbers (they would be stored as null);
- a timestamp is RFC 3339 with an offset (a `datetime` must be timezone-aware), years 0001 to 9999, seconds 00
  to 59 (no leap second), also once its fraction is rounded to the microsecond: what the server accepts, and
  what every reader can parse back.

Each check raises `ValueError` naming the field and the fix. The hot ones (`check_values`, `check_metric_name`)
remember the names they have passed, so a training loop pays for a name's pattern once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from tally_api_types import limits as _contract

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_METADATA_ENTRIES",
    "MAX_METADATA_KEY",
    "check_annotation",
    "check_client_event_id",
    "check_event",
    "check_labels",
    "check_metadata",
    "check_metric_name",
    "check_step",
    "check_tags",
    "check_timestamp",
    "check_value",
    "check_values",
]

MAX_METADATA_ENTRIES = _contract.METADATA_MAX_PROPERTIES
MAX_METADATA_KEY = _contract.METADATA_PROPERTY_NAMES_MAX_LENGTH
MAX_METADATA_DEPTH = _contract.METADATA_X_MAX_DEPTH  # the object itself is level 1
MAX_METADATA_BYTES = _contract.METADATA_X_MAX_BYTES  # compact UTF-8 JSON, as the server measures it

_NAME = re.compile(_contract.METRIC_NAME_PATTERN)
_KEY = re.compile(_contract.METADATA_KEY_PATTERN)
_CLIENT_EVENT_ID = re.compile(_contract.CLIENT_EVENT_ID_PATTERN)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.(\d+))?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII)
_NUL = "\x00"
_TAG = re.compile(_contract.TAG_PATTERN)

_KNOWN_CAP = 100_000
"""How many passed names and label keys are remembered (then the memory starts again)."""
_known_names: set[str] = set()
_known_keys: set[str] = set()


def _remember(known: set[str], value: str) -> None:
    if len(known) >= _KNOWN_CAP:
        known.clear()
    known.add(value)


# ---- metric events: names, values, steps, labels -------------------------------------------------------------------
def check_metric_name(name: object, field: str = "metric name") -> None:
    """A `MetricName`: 1 to 256 characters of the contract's pattern."""
    if name in _known_names:
        return
    if (
        type(name) is not str
        or not _contract.METRIC_NAME_MIN_LENGTH <= len(name) <= _contract.METRIC_NAME_MAX_LENGTH
        or not _NAME.fullmatch(name)
    ):
        raise ValueError(
            f"{field} {name!r} is not valid: {_contract.METRIC_NAME_MIN_LENGTH} to "
            f"{_contract.METRIC_NAME_MAX_LENGTH} characters matching {_contract.METRIC_NAME_PATTERN} "
            "(e.g. 'train/loss')"
        )
    _remember(_known_names, name)


def _bad_value(field: str, value: object) -> ValueError:
    return ValueError(
        f"{field} is {value!r}: a metric value must be a finite int or float (no NaN, Infinity, None, bool or "
        "strings); drop or replace it"
    )


def check_value(value: Any, field: str = "value") -> float | int:
    """A metric value as it travels: a finite int or float as is, another number (a numpy scalar, a Decimal) as
    its float; anything else, NaN and Infinity refused."""
    kind = type(value)
    if kind is int:
        return int(value)
    if kind is float:
        if value - value != 0.0:  # NaN or +-Infinity
            raise _bad_value(field, value)
        return float(value)
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise _bad_value(field, value)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _bad_value(field, value) from None
    if not math.isfinite(number):
        raise _bad_value(field, value)
    return number


def check_values(values: dict[str, Any]) -> dict[str, Any]:
    """`run.log()`'s values: names and values checked; returns `values` itself when every value is already a
    finite float or int (the common case, one pass, no copy), else a copy with the converted values."""
    known = _known_names
    for name, value in values.items():
        kind = type(value)
        if kind is not int and (kind is not float or value - value != 0.0):
            return _converted(values)
        if name not in known:
            check_metric_name(name)
    return values


def _converted(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        check_metric_name(name)
        out[name] = check_value(value, f"metric {name!r}")
    return out


def check_step(
    step: object,
    field: str = "step",
    *,
    minimum: int = _contract.METRIC_EVENT_STEP_MINIMUM,
    maximum: int = _contract.METRIC_EVENT_STEP_MAXIMUM,
) -> None:
    """A step: an int (or a float without fraction, as JSON has it) from 0 to 2**53 - 1 (the bounds of
    `MetricEvent.step` unless given), or None."""
    if step is None:
        return
    if isinstance(step, bool):
        pass
    elif (
        isinstance(step, int) or (isinstance(step, float) and step.is_integer())
    ) and minimum <= step <= maximum:
        return
    raise ValueError(f"{field} is {step!r}: a step is an int from {minimum} to {maximum}, or None")


def check_labels(labels: Mapping[str, Any], field: str = "metadata") -> dict[str, str]:
    """A metric event's `Labels`: at most 32 entries, keys of the `MetadataKey` pattern, values strings of at most
    256 characters without NUL. Returns them as a dict."""
    checked = labels if type(labels) is dict else dict(labels)
    if len(checked) > _contract.LABELS_MAX_PROPERTIES:
        raise ValueError(
            f"{field} has {len(checked)} entries; at most {_contract.LABELS_MAX_PROPERTIES} are allowed"
        )
    for key, value in checked.items():
        if key not in _known_keys:
            if (
                type(key) is not str
                or not _contract.METADATA_KEY_MIN_LENGTH <= len(key) <= _contract.METADATA_KEY_MAX_LENGTH
                or not _KEY.fullmatch(key)
            ):
                raise ValueError(
                    f"{field} key {key!r} is not valid: {_contract.METADATA_KEY_MIN_LENGTH} to "
                    f"{_contract.METADATA_KEY_MAX_LENGTH} characters matching {_contract.METADATA_KEY_PATTERN}"
                )
            _remember(_known_keys, key)
        if (
            type(value) is not str
            or len(value) > _contract.LABELS_ADDITIONAL_PROPERTIES_MAX_LENGTH
            or _NUL in value
        ):
            raise ValueError(
                f"{field}[{key!r}] is {value!r}: label values are strings of at most "
                f"{_contract.LABELS_ADDITIONAL_PROPERTIES_MAX_LENGTH} characters, without NUL (\\x00)"
            )
    return checked


def check_client_event_id(value: object, field: str = "client_event_id") -> None:
    """A `ClientEventId`: 1 to 128 printable ASCII characters without spaces."""
    if (
        type(value) is not str
        or not _contract.CLIENT_EVENT_ID_MIN_LENGTH <= len(value) <= _contract.CLIENT_EVENT_ID_MAX_LENGTH
        or not _CLIENT_EVENT_ID.fullmatch(value)
    ):
        raise ValueError(
            f"{field} is {value!r}: {_contract.CLIENT_EVENT_ID_MIN_LENGTH} to "
            f"{_contract.CLIENT_EVENT_ID_MAX_LENGTH} characters matching {_contract.CLIENT_EVENT_ID_PATTERN} "
            "(printable ASCII, no spaces)"
        )


def check_event(
    index: int,
    name: object,
    value: object,
    step: object,
    timestamp: object,
    labels: Mapping[str, Any] | None,
    client_event_id: object,
) -> None:
    """One `MetricEvent` (None: absent), as `events[index]`; its checks are the ones above, with the common case
    (a known name, a finite float or int, an int step) decided inline."""
    if name not in _known_names:
        check_metric_name(name, f"events[{index}].name")
    kind = type(value)
    if kind is not int and (kind is not float or value - value != 0.0):  # type: ignore[operator]
        check_value(value, f"events[{index}].value")
    if step is not None and not (
        type(step) is int
        and _contract.METRIC_EVENT_STEP_MINIMUM <= step <= _contract.METRIC_EVENT_STEP_MAXIMUM
    ):
        check_step(step, f"events[{index}].step")
    if timestamp is not None:
        check_timestamp(timestamp, f"events[{index}].timestamp")
    if labels is not None:
        check_labels(labels, f"events[{index}].metadata")
    if client_event_id is not None and not (
        type(client_event_id) is str
        and len(client_event_id) <= _contract.CLIENT_EVENT_ID_MAX_LENGTH
        and _CLIENT_EVENT_ID.fullmatch(client_event_id)
    ):
        check_client_event_id(client_event_id, f"events[{index}].client_event_id")


# ---- timestamps ------------------------------------------------------------------------------------------------------
def check_timestamp(value: object, field: str = "timestamp") -> None:
    """An RFC 3339 date-time with an offset (a string), or a timezone-aware `datetime` (its offset in whole
    minutes, as RFC 3339 writes them); year 0001 to 9999 and seconds 00 to 59, also once the fraction is rounded to
    the microsecond as readers round it: what the server accepts, which every reader parses back."""
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            raise ValueError(
                f"{field} is a naive datetime ({value.isoformat()}): give it a time zone, e.g. "
                "datetime.now(UTC) or value.replace(tzinfo=UTC)"
            )
        if offset % timedelta(minutes=1):
            raise ValueError(
                f"{field} is {value.isoformat()}: its UTC offset has seconds, which RFC 3339 cannot write; "
                "convert it, e.g. value.astimezone(UTC)"
            )
        return
    if not isinstance(value, str):
        raise ValueError(
            f"{field} is a {type(value).__name__}: pass a timezone-aware datetime or an RFC 3339 string"
        )
    match = _RFC3339.fullmatch(value)
    if match is not None:
        try:  # (Python 3.11's parser wants the upper-case T and Z; RFC 3339 allows both cases)
            parsed = datetime.fromisoformat(value.upper())  # (the fraction cut to microseconds)
            fraction = match.group(1) or ""
            if len(fraction) > 6 and fraction[6] >= "5":
                parsed += timedelta(microseconds=1)  # readers round half up (msgspec): past year 9999?
            return
        except (ValueError, OverflowError):
            pass
    raise ValueError(
        f"{field} is {value[:64]!r}: a timestamp is RFC 3339 with an offset, years 0001 to 9999 and seconds 00 "
        "to 59 (no leap second: send the next second), e.g. '2026-01-02T03:04:05.678Z'"
    )


# ---- free-form metadata and annotations ------------------------------------------------------------------------------
def _walk_errors(value: Mapping[str, Any], field: str) -> str | None:
    """The first problem of free-form JSON `value`: too deep, a NUL in a key or string, a non-finite number or a
    value JSON cannot hold. Iterative, and stops at the depth limit."""
    stack: list[tuple[Any, int, str]] = [(value, 1, field)]
    while stack:
        node, level, where = stack.pop()
        if level > MAX_METADATA_DEPTH:
            return f"{field} is nested more than {MAX_METADATA_DEPTH} levels deep; flatten it"
        if isinstance(node, Mapping):
            for key, child in node.items():
                if not isinstance(key, str):
                    return f"{where} has the key {key!r}: keys are strings"
                if _NUL in key:
                    return f"{where} has the key {key!r}: keys and strings may not hold NUL (\\x00)"
                path = f"{where}[{key!r}]"
                if isinstance(child, Mapping | list | tuple):
                    stack.append((child, level + 1, path))
                else:
                    problem = _scalar_error(child, path)
                    if problem:
                        return problem
        else:
            for index, child in enumerate(node):
                path = f"{where}[{index}]"
                if isinstance(child, Mapping | list | tuple):
                    stack.append((child, level + 1, path))
                else:
                    problem = _scalar_error(child, path)
                    if problem:
                        return problem
    return None


def _scalar_error(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return f"{where} is {value!r}: metadata numbers must be finite (JSON has no NaN or Infinity)"
    if isinstance(value, str):
        if _NUL in value:
            return f"{where} holds a NUL (\\x00): strings may not hold it; remove it"
        return None
    return (
        f"{where} is a {type(value).__name__}: metadata values are JSON (str, int, float, bool, None, lists and "
        "dicts); convert it, e.g. to a string"
    )


def check_metadata(value: Mapping[str, Any] | None, field: str = "metadata") -> None:
    """Free-form `Metadata`: at most 64 top-level entries with keys of 1 to 64 characters, nested at most 8 levels,
    at most 8 KiB as compact UTF-8 JSON, JSON values only (finite numbers), no NUL anywhere."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ValueError(f"{field} is a {type(value).__name__}: pass a dict")
    if len(value) > MAX_METADATA_ENTRIES:
        raise ValueError(
            f"{field} has {len(value)} entries; at most {MAX_METADATA_ENTRIES} are allowed: merge some"
        )
    for key in value:
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY:
            raise ValueError(f"{field} key {key!r} must be a string of 1 to {MAX_METADATA_KEY} characters")
    problem = _walk_errors(value, field)
    if problem:
        raise ValueError(problem)
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(
            f"{field} is {size} bytes as JSON, over the {MAX_METADATA_BYTES}-byte limit; store less, or keep large "
            "data elsewhere and put its location here"
        )


def check_annotation(
    text: object,
    *,
    step: object = None,
    timestamp: object = None,
    metadata: Mapping[str, Any] | None = None,
    client_event_id: object = None,
) -> None:
    """A `CreateAnnotationRequest`: text of 1 to 10,000 characters without NUL, a step, a timestamp, metadata and
    a client_event_id as the contract has them (None: absent)."""
    low, high = (
        _contract.CREATE_ANNOTATION_REQUEST_TEXT_MIN_LENGTH,
        _contract.CREATE_ANNOTATION_REQUEST_TEXT_MAX_LENGTH,
    )
    if type(text) is not str or not low <= len(text) <= high or _NUL in text:
        shown = text[:40] + "..." if isinstance(text, str) and len(text) > 40 else text
        raise ValueError(
            f"annotation text {shown!r} is not valid: a string of {low} to {high} characters without NUL (\\x00)"
        )
    check_step(
        step,
        minimum=_contract.CREATE_ANNOTATION_REQUEST_STEP_MINIMUM,
        maximum=_contract.CREATE_ANNOTATION_REQUEST_STEP_MAXIMUM,
    )
    if timestamp is not None:
        check_timestamp(timestamp)
    check_metadata(metadata)
    if client_event_id is not None:
        check_client_event_id(client_event_id)


def check_tags(tags: object, field: str = "tags") -> list[str]:
    """An experiment's `Tags`: at most 32 distinct strings of the `Tag` pattern (1 to 64 characters). Returns
    them as a list; a lone string is refused (it would be one tag per character)."""
    if isinstance(tags, str) or not isinstance(tags, list | tuple | set | frozenset):
        raise TypeError(f"{field} must be a list of strings, e.g. [{tags!r}]")
    checked = list(tags)
    for index, tag in enumerate(checked):
        if not isinstance(tag, str) or not _contract.TAG_MIN_LENGTH <= len(tag) <= _contract.TAG_MAX_LENGTH:
            raise ValueError(
                f"{field}[{index}] is {tag!r}: a tag is a string of 1 to {_contract.TAG_MAX_LENGTH} characters"
            )
        if not _TAG.match(tag):
            raise ValueError(f"{field}[{index}] is {tag!r}: a tag holds only letters, digits and _ . : / = -")
    if len(set(checked)) != len(checked):
        raise ValueError(f"{field} repeats a tag: give each once")
    if len(checked) > _contract.TAGS_MAX_ITEMS:
        raise ValueError(f"{field} has {len(checked)} tags; at most {_contract.TAGS_MAX_ITEMS} are allowed")
    return checked

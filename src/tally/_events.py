"""Metric events before they travel: deterministic ids, the contract's checks (`tally._limits`), and batches
within the server's limits.

Pure functions, no I/O. The hot path (`prepare_events`) makes one pass over the events and copies nothing when
every event already has a `client_event_id` and a plain finite number as its value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from tally_api_types import limits as _contract

from tally._limits import check_event, check_value
from tally._types import MetricEvent

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "EventInput",
    "annotation_event_id",
    "event_id",
    "plan_batches",
    "prepare_events",
]

MAX_BATCH_EVENTS = _contract.INGEST_METRICS_REQUEST_EVENTS_MAX_ITEMS
"""The server's limit of events per ingest request (spec: `IngestMetricsRequest.events.maxItems`)."""
MAX_BATCH_BYTES = _contract.REQUEST_BODY_X_MAX_BYTES
"""The server's limit of bytes per request body (spec: `components.x-request-body.x-max-bytes`, 5 MiB)."""

EventInput = Mapping[str, Any] | MetricEvent

_encoder = msgspec.json.Encoder(order="sorted")
_body_encoder = msgspec.json.Encoder()


def event_id(
    experiment_id: str, name: str, step: int | None, metadata: Mapping[str, str] | None = None
) -> str:
    """The deterministic `client_event_id` of a metric event: the first 32 hex digits of the SHA-256 of the
    compact JSON array `[experiment_id, name, step, metadata]` (keys sorted, UTF-8, metadata `{}` when
    absent).

    The same event logged twice (a re-run, a retried batch) gets the same id, so the server stores it once."""
    payload = _encoder.encode((experiment_id, name, step, dict(metadata) if metadata else {}))
    return hashlib.sha256(payload).hexdigest()[:32]


def annotation_event_id(
    experiment_id: str,
    text: str,
    step: int | None,
    timestamp: datetime | str | None,
    metadata: Mapping[str, Any] | None,
) -> str:
    """The deterministic `client_event_id` of an annotation created without one (same recipe, prefixed)."""
    stamp = timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp
    payload = _encoder.encode(
        ("annotation", experiment_id, text, step, stamp, dict(metadata) if metadata else {})
    )
    return "ann-" + hashlib.sha256(payload).hexdigest()[:32]


_EVENT_FIELDS = frozenset(MetricEvent.__struct_fields__)
"""The fields of the contract's `MetricEvent` (which admits no others)."""


def _unknown_field(index: int, event: Mapping[str, Any]) -> None:
    for key in event:
        if key not in _EVENT_FIELDS:
            raise ValueError(
                f"events[{index}] has the field {key!r}, which the API does not take: the fields are "
                f"{', '.join(sorted(_EVENT_FIELDS))}"
            )


def prepare_events(experiment_id: str, events: Sequence[EventInput]) -> Sequence[EventInput]:
    """Check every event (`tally._limits.check_event`, the same checks `run.log()` makes) and fill missing
    `client_event_id`s; returns `events` itself when nothing changed.

    Raises `ValueError` naming `events[i]` and the field for anything the contract refuses (a non-finite or
    non-numeric value, a bad name, step, timestamp, label or id, an unknown field), or for an event with neither
    `client_event_id` nor `step`; `TypeError` for something that is neither a mapping nor a `MetricEvent`."""
    out: list[EventInput] | None = None
    check = check_event
    last_stamp: Any = None
    last_labels: Any = None
    for index, event in enumerate(events):
        if type(event) is dict:  # the common case first: an exact-type check is far cheaper than the ABC's
            get = event.get
            name, value, step, stamp, labels, cid = (
                get("name"),
                get("value"),
                get("step"),
                get("timestamp"),
                get("metadata"),
                get("client_event_id"),
            )
            if not _EVENT_FIELDS.issuperset(event):
                _unknown_field(index, event)
        elif isinstance(event, MetricEvent):
            name, value, step, stamp, labels, cid = (
                event.name,
                event.value,
                event.step,
                event.timestamp,
                event.metadata,
                event.client_event_id,
            )
        elif isinstance(event, Mapping):
            _unknown_field(index, event)
            name, value, step, stamp, labels, cid = (
                event.get("name"),
                event.get("value"),
                event.get("step"),
                event.get("timestamp"),
                event.get("metadata"),
                event.get("client_event_id"),
            )
        else:
            raise TypeError(
                f"events[{index}] is a {type(event).__name__}: pass dicts or tally.MetricEvent objects"
            )
        # The events of one `run.log()` share their timestamp and labels objects: each is checked once.
        check(
            index,
            name,
            value,
            step,
            None if stamp is last_stamp else stamp,
            None if labels is last_labels else labels,
            cid,
        )
        last_stamp, last_labels = stamp, labels
        kind = type(value)
        replaced_value = (
            None if kind is float or kind is int else check_value(value, f"events[{index}].value")
        )
        if cid is None or replaced_value is not None:
            changes: dict[str, Any] = {}
            if replaced_value is not None:
                changes["value"] = replaced_value
            if cid is None:
                if step is None:
                    raise ValueError(
                        f"events[{index}] has neither client_event_id nor step: give it a step, or a "
                        "client_event_id (a stable id of your own, so that re-sending it is safe)"
                    )
                changes["client_event_id"] = event_id(experiment_id, str(name), step, labels)
            if out is None:
                out = list(events)
            if isinstance(event, MetricEvent):
                out[index] = msgspec.structs.replace(event, **changes)
            else:
                out[index] = {**event, **changes}
    return events if out is None else out


def _body(events: Sequence[EventInput]) -> bytes:
    return b'{"events":' + _body_encoder.encode(events) + b"}"


def plan_batches(
    events: Sequence[EventInput],
    *,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[tuple[int, int, bytes]]:
    """Split prepared events into request bodies within the limits: yields `(start, end, body)` in order.

    Chunks of `max_events` are encoded once; one over `max_bytes` is halved until it fits. An event that alone
    exceeds `max_bytes` is still sent, for the server to refuse with a clear 413."""
    total = len(events)
    pending = [(start, min(start + max_events, total)) for start in range(0, total, max_events)]
    pending.reverse()
    while pending:
        start, end = pending.pop()
        chunk = events if start == 0 and end == total else events[start:end]
        body = _body(chunk)
        if len(body) <= max_bytes or end - start == 1:
            yield start, end, body
            continue
        middle = (start + end) // 2
        pending.append((middle, end))
        pending.append((start, middle))

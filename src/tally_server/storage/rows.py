"""Rows as the contract's JSON objects, and values as the database stores them (the same on both backends).

Each shaping function reads a row of the matching select of `tally_server.storage.store` by position. Metadata
and tags stay the stored JSON text (`msgspec.Raw`): a page of points is not parsed and re-encoded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from tally_server._util import parse_timestamp, readable_timestamp
from tally_server.storage.repository import Json, Key, Page

__all__ = [
    "annotation",
    "experiment",
    "extremes",
    "folder",
    "free_json",
    "ingestion_key",
    "page",
    "summary",
    "tags_json",
]

_raw = msgspec.Raw


def free_json(value: Any) -> str:
    """Free-form metadata as stored: compact JSON text in the order sent (stdlib json keeps huge integers)."""
    return json.dumps(
        {} if value is None else value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def tags_json(tags: Sequence[str] | None) -> str:
    """Tags as stored in `experiments.tags`: a compact JSON array, in the order sent (the contract's pattern
    keeps them ASCII without quotes or backslashes)."""
    return json.dumps(list(tags or ()), separators=(",", ":"))


def _shaper(*keys: str | None) -> Callable[[Sequence[Any]], Json]:
    """A row (by position) as a JSON object of `keys` (None: a column the contract does not show); its metadata
    and tags stay raw JSON text."""

    def shape(row: Sequence[Any]) -> Json:
        item = {key: value for key, value in zip(keys, row, strict=True) if key is not None}
        for raw in ("metadata", "tags"):
            if raw in item:
                item[raw] = _raw(item[raw])
        return item

    return shape


folder = _shaper(
    None,
    "id",
    "name",
    "parent_id",
    "description",
    "metadata",
    "created_at",
    "updated_at",
    None,
    "archived_at",
)
experiment = _shaper(
    None, "id", "name", "folder_id", "description", "metadata", "status", "created_at", "updated_at", "ended_at",
    "tags", "archived_at", "group",
)  # fmt: skip
ingestion_key = _shaper(
    None, "id", "experiment_id", "name", "token_hint", "created_at", "revoked_at", "expires_at"
)


def annotation(row: Sequence[Any]) -> Json:
    return {
        "id": row[1],
        "experiment_id": row[2],
        "text": row[3],
        "step": row[4],
        "timestamp": readable_timestamp(row[5]),
        "metadata": _raw(row[6]),
        "client_event_id": row[7],
        "created_at": row[8],
    }


def page(rows: Sequence[Any], limit: int, item: Callable[[Any], Json], key: Callable[[Any], Key]) -> Page:
    """A page of `limit` items from `limit + 1` rows: the extra row says whether there is a next page."""
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([item(r) for r in rows], key(rows[-1]) if more and rows else None)


def summary(row: Sequence[Any]) -> Json:
    """A `MetricSummary` from (name, labels, count, first_step, last_step, last, min, max, last_ts); a stored
    last_step of -1 (the step-less point) means no point has a step."""
    return {
        "name": row[0],
        "metadata": msgspec.Raw(row[1]),
        "count": int(row[2]),
        "first_step": row[3],
        "last_step": None if row[4] < 0 else row[4],
        "last": row[5],
        "min": row[6],
        "max": row[7],
        "last_logged_at": readable_timestamp(row[8]),
    }


def extremes(stamps: Sequence[str]) -> tuple[tuple[int, str], tuple[int, str]]:
    """The earliest and latest of some RFC 3339 timestamps, as (microseconds, text)."""
    lengths = set(map(len, stamps))
    width = len(stamps[0])
    if len(lengths) == 1 and width > 10:
        joined = "".join(stamps)  # every stamp's last character and its 11th, by slicing (ingest's hot path)
        uniform = joined[width - 1 :: width] == "Z" * len(stamps) and joined[10::width] == "T" * len(stamps)
    else:
        uniform = False
    if uniform:
        # Same layout, UTC, same fraction width: text order is time order.
        low, high = min(stamps), max(stamps)
        return (parse_timestamp(low), low), (parse_timestamp(high), high)
    parsed = [(parse_timestamp(s), s) for s in stamps]
    return min(parsed), max(parsed)

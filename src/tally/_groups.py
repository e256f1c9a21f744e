"""A group of experiments (the ranks of one distributed job, `client.run(..., group=...)`) as the series of one
metric to compare: `client.metrics.compare(group=..., name=...)`. Pure: the caller lists the group.

The members are ordered by name with the numbers in it compared as numbers, so `job-rank2` comes before
`job-rank10` (creation order would be the order in which the ranks happened to start).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tally_api_types.limits import COMPARE_METRICS_REQUEST_SERIES_MAX_ITEMS

__all__ = ["COMPARE_MAX_SERIES", "group_series", "natural_key"]

COMPARE_MAX_SERIES = COMPARE_METRICS_REQUEST_SERIES_MAX_ITEMS
_NUMBER = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that compares the runs of digits in `name` as numbers."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _NUMBER.split(name) if part)


def group_series(
    group: str, members: Sequence[Any], name: str, metadata: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """The series selectors of metric `name` (with `metadata` labels) in each of the group's `members`
    (experiments: `.id`, `.name`), in natural name order. ValueError for an empty group or one too big to compare
    in one request."""
    if not members:
        raise ValueError(f"group {group!r} has no experiments (or only archived ones)")
    if len(members) > COMPARE_MAX_SERIES:
        raise ValueError(
            f"group {group!r} has more than {COMPARE_MAX_SERIES} experiments, more than one compare takes: pass "
            "series= with the ones to compare"
        )
    ordered = sorted(members, key=lambda e: natural_key(e.name))
    return [
        {"experiment_id": e.id, "name": name, **({"metadata": dict(metadata)} if metadata else {})}
        for e in ordered
    ]

"""What one ingested batch adds to the catalog, the summaries and the rollups: the rows of their upserts, worked
out from one grouping of the batch's accepted points, given column by column.

Why a module of its own: this is the ingest's hot path after the point insert itself (`make bench` holds the
server's ingest to at least half of bare SQLite inserting the same rows). The batch is grouped once by (name,
label set), as lists of positions; everything else is per group or per block, and the per-point work is done by
C loops (a group's columns picked by `itemgetter`, `min` / `max` / `sum` over slices, `bisect`), not by Python
statements. Columns rather than rows: the repository then never builds the rows (its insert consumes them as
they are zipped), and picking a group's values out of a column is cheaper than reading each row. A training loop
logs each series with rising steps, so a group's points are usually in (step, seq) order already: then a block's first
and last points are the ends of its slice of the group. A group out of step order takes the per-point fold.

The answers are exactly those of folding the points one by one (tests/server/test_batch_stats.py checks them
against that fold): counts, extremes and first / last points are exact, and a block's sum adds its values in
batch order, as the fold does. `store.py` runs the statements; this module only computes their rows.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter, le
from typing import Any, NamedTuple

import msgspec

from tally_server.storage import rollups, rows

__all__ = ["BatchStats", "Points", "batch_stats"]

_EMPTY = "{}"  # the label text of a point without metadata
_FINEST = rollups.LEVELS[0]


class Points(NamedTuple):
    """Stored points column by column (one entry per point, in increasing `seq`: the order ingestion gives them),
    as ingestion inserts them: a step-less point's step is -1, `labels` the metadata text."""

    names: Sequence[str]
    steps: Sequence[int]
    seqs: Sequence[int]
    values: Sequence[float]
    stamps: Sequence[str]
    labels: Sequence[str]


@dataclass(slots=True)
class BatchStats:
    """The upserts' rows, each list in its table's column order (schema.py) and sorted by primary key, so two
    writers take the rows' locks in one order and never deadlock."""

    series: list[tuple[Any, ...]] = field(default_factory=list)  # metric_series
    summaries: list[tuple[Any, ...]] = field(default_factory=list)  # metric_summaries
    per_name: list[tuple[Any, ...]] = field(default_factory=list)  # experiment_metrics
    labels: list[tuple[Any, ...]] = field(default_factory=list)  # metric_label_values
    rollups: list[tuple[Any, ...]] = field(default_factory=list)  # metric_rollups


def batch_stats(org_pk: int, experiment_pk: int, points: Points) -> BatchStats:
    """The rows for `points`."""
    out = BatchStats()
    series: dict[str, list[Any]] = {}  # name -> [count, (first_us, first_ts), (last_us, last_ts)]
    per_name: dict[str, list[Any]] = {}  # name -> [last_step, last_seq, last_value, min, max]
    labels: Counter[tuple[str, str, str]] = Counter()
    for (name, metadata), positions in _groups(points.names, points.labels).items():
        count = len(positions)
        pick = _picker(positions)
        steps: Sequence[int] = pick(points.steps)
        values: Sequence[float] = pick(points.values)
        seqs: Sequence[int] = pick(points.seqs)
        first, last = rows.extremes(pick(points.stamps))
        low, high = min(values), max(values)
        if count == 1 or all(map(le, steps, islice(steps, 1, None))):
            # (step, seq) order: steps rise and seqs rise with the batch order
            start = bisect_left(steps, 0)
            first_step = steps[start] if start < count else None
            final = (steps[-1], seqs[-1], values[-1])
            blocks = _ordered_blocks(steps, seqs, values, start)
        else:
            stepped = [step for step in steps if step >= 0]
            first_step = min(stepped) if stepped else None
            final = max(zip(steps, seqs, values, strict=True))  # seqs are unique: the value never decides
            blocks = _folded_blocks(steps, seqs, values)
        out.summaries.append((experiment_pk, name, metadata, count, first_step, *final, low, high, *last))
        merged = per_name.get(name)
        if merged is None:
            per_name[name] = [*final, low, high]
        else:
            if final[:2] > (merged[0], merged[1]):
                merged[0:3] = final
            merged[3] = min(merged[3], low)
            merged[4] = max(merged[4], high)
        entry = series.get(name)
        if entry is None:
            series[name] = [count, first, last]
        else:
            entry[0] += count
            entry[1] = min(entry[1], first)
            entry[2] = max(entry[2], last)
        if metadata != _EMPTY:
            for key, value in msgspec.json.decode(metadata).items():
                labels[(name, key, value)] += count
        if blocks:
            key = rollups.labels_key(metadata)
            for level, found in _levels(blocks):
                out.rollups += [
                    (experiment_pk, name, level, block, key, metadata, *acc) for block, acc in found
                ]
    out.series = sorted((experiment_pk, n, c, *first, *last) for n, (c, first, last) in series.items())
    out.summaries.sort()
    out.per_name = sorted((org_pk, experiment_pk, name, *merged) for name, merged in per_name.items())
    out.labels = [(experiment_pk, n, k, v, c) for (n, k, v), c in sorted(labels.items())]
    out.rollups.sort(key=itemgetter(1, 2, 3, 4))  # (name, level, block, labels): primary-key order
    return out


def _picker(positions: list[int]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """A function giving a column's items at `positions` (a C loop), as a tuple even for one position
    (`itemgetter` gives the item itself then)."""
    if len(positions) > 1:
        return itemgetter(*positions)
    position = positions[0]
    return lambda column: (column[position],)


def _groups(names: Sequence[str], labels: Sequence[str]) -> dict[tuple[str, str], list[int]]:
    """The points' positions per (name, label text), in batch order: the one pass in Python over every point."""
    groups: dict[tuple[str, str], list[int]] = {}
    get = groups.get
    for position, key in enumerate(zip(names, labels, strict=True)):
        group = get(key)
        if group is None:
            groups[key] = [position]
        else:
            group.append(position)
    return groups


def _ordered_blocks(
    steps: Sequence[int], seqs: Sequence[int], values: Sequence[float], start: int
) -> dict[int, rollups.Accumulator]:
    """The finest level's aggregates of a group in (step, seq) order, from index `start` (the first point with a
    step): a block is a slice, found by bisection; its first and last points are the slice's ends, and its sum
    adds the values in order from the first (as the one-by-one fold does)."""
    found: dict[int, rollups.Accumulator] = {}
    count = len(steps)
    i = start
    while i < count:
        block = steps[i] >> _FINEST
        j = bisect_left(steps, (block + 1) << _FINEST, i)
        chunk = values[i:j]
        found[block] = [
            j - i, min(chunk), max(chunk), sum(islice(chunk, 1, None), chunk[0]),
            steps[i], seqs[i], chunk[0], steps[j - 1], seqs[j - 1], chunk[-1],
        ]  # fmt: skip
        i = j
    return found


def _folded_blocks(
    steps: Sequence[int], seqs: Sequence[int], values: Sequence[float]
) -> dict[int, rollups.Accumulator]:
    """The finest level's aggregates of a group in any order: each point folded in (stepless ones skipped)."""
    found: dict[int, rollups.Accumulator] = {}
    get = found.get
    for step, seq, value in zip(steps, seqs, values, strict=True):
        if step < 0:
            continue
        block = step >> _FINEST
        acc = get(block)
        if acc is None:
            found[block] = [1, value, value, value, step, seq, value, step, seq, value]
            continue
        acc[0] += 1
        if value < acc[1]:
            acc[1] = value
        elif value > acc[2]:
            acc[2] = value
        acc[3] += value
        if step > acc[7] or (step == acc[7] and seq > acc[8]):
            acc[7], acc[8], acc[9] = step, seq, value
        elif step < acc[4] or (step == acc[4] and seq < acc[5]):
            acc[4], acc[5], acc[6] = step, seq, value
    return found


def _levels(
    finest: dict[int, rollups.Accumulator],
) -> list[tuple[int, list[tuple[int, rollups.Accumulator]]]]:
    """Every level's (block, aggregate) pairs of one group, each coarser level folded from the level below."""
    found = [(_FINEST, list(finest.items()))]
    below, shift_below = finest, _FINEST
    for level in rollups.LEVELS[1:]:
        coarser: dict[int, rollups.Accumulator] = {}
        for block, acc in below.items():
            key = block >> (level - shift_below)
            coarser[key] = rollups.fold(coarser.get(key), acc)
        found.append((level, list(coarser.items())))
        below, shift_below = coarser, level
    return found

"""Exact downsampling of a metric's curve (`getMetricSeries`) from per-block aggregates kept at ingest.

Why: a curve of 1,000,000 points drawn as 1,000 buckets must not read 1,000,000 points. Ingestion keeps, per
(experiment, name, label set), one row of `metric_rollups` per block of 2**level consecutive steps at each level
of `LEVELS`: the count, min, max and sum of its points and its first and last point by (step, seq). A block is
aligned (`step >> level`), so a bucket whose width is a power of two at least 2**level is a union of whole blocks
of that level. A read takes whole blocks from the coarsest level that still fits the bucket width and reads raw
points only at the range's ragged edges; the rows it reads grow with the bucket count, not with the points.

Everything here is exact: counts, min and max are those of the points themselves (a one-step spike is its
block's max, so it is every coarser bucket's max too); a bucket's mean is its sum over its count. Label sets are
rolled up apart and combined at read, so a metadata filter keeps the answer exact. This module holds the pure
parts of the read (the bucket width, the fold); `batch_stats.py` computes a batch's rows, `store.py` runs the
statements.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

__all__ = [
    "LEVELS",
    "Accumulator",
    "Buckets",
    "bucket_width",
    "fold",
    "labels_key",
    "level_for",
]

LEVELS = (6, 10, 14)
"""The block sizes kept, as powers of two (64, 1,024 and 16,384 steps): a read of up to `max_points` buckets reads
at most about 8 * `max_points` block rows up to 16,384 * 8 * `max_points` steps (more beyond), plus up to two
blocks of raw points at the edges; a range too short for 64-step blocks (fewer than 64 * `max_points` steps) is
read from the points. The levels set the ingest cost: a batch upserts one row per block it touches, per name,
label set and level. With 16-step blocks at four levels the server's ingest fell from 0.57 to 0.40 of bare
SQLite; with 64-step blocks at five levels to 0.48, and a 10-event ingest grew 1.2 times from 0 to 1,000,000
stored points (`scripts/bench.py --only server_scale`)."""


def labels_key(metadata_text: str) -> str:
    """The label set's key in `metric_rollups`: the SHA-256 of its canonical (sorted) JSON text. The text itself
    can be up to about 10 KiB, more than a PostgreSQL index entry holds."""
    return hashlib.sha256(metadata_text.encode()).hexdigest()


# An aggregate in progress: [count, min, max, sum, first_step, first_seq, first_value, last_step, last_seq,
# last_value].
Accumulator = list[Any]


def _fold_point(acc: Accumulator | None, step: int, seq: int, value: float) -> Accumulator:
    if acc is None:
        return [1, value, value, value, step, seq, value, step, seq, value]
    acc[0] += 1
    if value < acc[1]:
        acc[1] = value
    if value > acc[2]:
        acc[2] = value
    acc[3] += value
    if (step, seq) < (acc[4], acc[5]):
        acc[4], acc[5], acc[6] = step, seq, value
    if (step, seq) > (acc[7], acc[8]):
        acc[7], acc[8], acc[9] = step, seq, value
    return acc


def fold(acc: Accumulator | None, other: Sequence[Any]) -> Accumulator:
    """`other` (an aggregate) folded into `acc` (a copy of `other` when None)."""
    if acc is None:
        return list(other)
    acc[0] += other[0]
    if other[1] < acc[1]:
        acc[1] = other[1]
    if other[2] > acc[2]:
        acc[2] = other[2]
    acc[3] += other[3]
    if (other[4], other[5]) < (acc[4], acc[5]):
        acc[4], acc[5], acc[6] = other[4], other[5], other[6]
    if (other[7], other[8]) > (acc[7], acc[8]):
        acc[7], acc[8], acc[9] = other[7], other[8], other[9]
    return acc


def bucket_width(first_step: int, last_step: int, max_points: int) -> int:
    """The smallest shift `w` such that the aligned blocks of 2**w steps over [first_step, last_step] number at
    most `max_points`."""
    width = 0
    while (last_step >> width) - (first_step >> width) + 1 > max_points:
        width += 1
    return width


def level_for(width: int) -> int | None:
    """The coarsest rollup level whose blocks fit in a bucket of 2**width steps (None: none does, read raw)."""
    fitting = [level for level in LEVELS if level <= width]
    return fitting[-1] if fitting else None


class Buckets:
    """Buckets of 2**width steps being filled from raw points and from rollup rows."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._found: dict[int, Accumulator] = {}

    def add_point(self, step: int, seq: int, value: float) -> None:
        bucket = step >> self.width
        self._found[bucket] = _fold_point(self._found.get(bucket), step, seq, value)

    def add_block(self, level: int, block: int, row: Sequence[Any]) -> None:
        """`row`: an aggregate in `Accumulator` order."""
        bucket = block >> (self.width - level)
        self._found[bucket] = fold(self._found.get(bucket), row)

    def answer(self) -> list[dict[str, Any]]:
        return [
            {
                "first_step": acc[4],
                "last_step": acc[7],
                "count": acc[0],
                "min": acc[1],
                "max": acc[2],
                "mean": min(max(acc[3] / acc[0], acc[1]), acc[2]),  # rounding never leaves [min, max]
                "first": acc[6],
                "last": acc[9],
            }
            for _, acc in sorted(self._found.items())
        ]

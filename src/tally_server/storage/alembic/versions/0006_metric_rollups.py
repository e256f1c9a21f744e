"""Per-block aggregates of the metric points, for `getMetricSeries` (contract 1.4.0).

`metric_rollups` holds, per (experiment, name, label set, level, block), the count, min, max, sum and first and
last point by (step, seq) of the points whose step is in the block of 2**level steps (`step >> level`), at the
levels 6, 10 and 14 (see tally_server.storage.rollups). Ingestion keeps it up to date; this revision fills it
from the points already stored, one experiment at a time. Points without a step (stored at step -1) are not rolled
up. Self-contained (see 0001): the label key (SHA-256 of the metadata text) and the levels are restated here.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.Text(collation="C").with_variant(sa.Text(), "sqlite")
DOUBLE: Any = sa.Double().with_variant(sa.REAL(), "sqlite")
LEVELS = (6, 10, 14)


def upgrade() -> None:
    rollups = op.create_table(
        "metric_rollups",
        sa.Column("experiment", BIG, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("block", BIG, nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("count", BIG, nullable=False),
        sa.Column("min", DOUBLE, nullable=False),
        sa.Column("max", DOUBLE, nullable=False),
        sa.Column("sum", DOUBLE, nullable=False),
        sa.Column("first_step", BIG, nullable=False),
        sa.Column("first_seq", BIG, nullable=False),
        sa.Column("first_value", DOUBLE, nullable=False),
        sa.Column("last_step", BIG, nullable=False),
        sa.Column("last_seq", BIG, nullable=False),
        sa.Column("last_value", DOUBLE, nullable=False),
        sa.PrimaryKeyConstraint("experiment", "name", "level", "block", "labels"),
        sqlite_with_rowid=False,
    )
    assert rollups is not None
    _backfill(op.get_bind(), rollups)


def _backfill(conn: sa.Connection, rollups: sa.Table) -> None:
    points = sa.table(
        "metric_points",
        sa.column("experiment"),
        sa.column("name"),
        sa.column("step"),
        sa.column("seq"),
        sa.column("value"),
        sa.column("metadata"),
    )
    p = points.c
    experiments = conn.execute(sa.select(p.experiment).distinct().order_by(p.experiment)).scalars().all()
    for experiment in experiments:
        blocks: dict[tuple[str, str, int, int], list[Any]] = {}
        result = conn.execute(
            sa.select(p.name, p.metadata, p.step, p.seq, p.value)
            .where(p.experiment == experiment, p.step >= 0)
            .order_by(p.name, p.step, p.seq)
        )
        for name, metadata, step, seq, value in result:
            for level in LEVELS:  # in (step, seq) order: the first point seen is a block's first
                key = (name, metadata, level, step >> level)
                acc = blocks.get(key)
                if acc is None:
                    blocks[key] = [1, value, value, value, step, seq, value, step, seq, value]
                else:
                    acc[0] += 1
                    acc[1] = min(acc[1], value)
                    acc[2] = max(acc[2], value)
                    acc[3] += value
                    acc[7], acc[8], acc[9] = step, seq, value
        columns = [
            *("count", "min", "max", "sum"),
            *("first_step", "first_seq", "first_value", "last_step", "last_seq", "last_value"),
        ]
        rows = [
            {
                "experiment": experiment,
                "name": name,
                "level": level,
                "block": block,
                "labels": hashlib.sha256(metadata.encode()).hexdigest(),
                "metadata": metadata,
                **dict(zip(columns, acc, strict=True)),
            }
            for (name, metadata, level, block), acc in blocks.items()
        ]
        if rows:
            conn.execute(sa.insert(rollups), rows)


def downgrade() -> None:
    raise NotImplementedError("the schema is only ever upgraded")

"""Metric summaries kept at ingest (contract 1.4.0): per experiment, metric name and label set
(`metric_summaries`, getExperimentSummary), and per experiment and metric name whatever the labels
(`experiment_metrics`, with one index per sortable value for listExperiments' `order_by=metric:...`); and the
index `experiments_by_name` (`order_by=name`).

Fills both tables from the points already stored, so a database upgraded in place answers as if the summaries had
been kept from the start. Self-contained (see 0001), except that the
backfill reads timestamps with the server's own `parse_timestamp`: `last_logged_at` must be the instant ingestion
compares, lenient readings of older rows included.

The backfill streams the points in primary-key order (experiment, name, step, seq), so the last point seen of a
(name, label set) is the one with the highest (step, seq): the rule ingestion keeps. It writes in chunks, so its
memory stays bounded by the number of label sets of one experiment and metric.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from tally_server._util import parse_timestamp

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FLOAT: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")
NAME = sa.Text(collation="C").with_variant(sa.Text(), "sqlite")

_CHUNK = 1000


def upgrade() -> None:
    summaries = op.create_table(
        "metric_summaries",
        sa.Column("experiment", BIG, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("labels", NAME, nullable=False),
        sa.Column("count", BIG, nullable=False),
        sa.Column("first_step", BIG),
        sa.Column("last_step", BIG, nullable=False),
        sa.Column("last_seq", BIG, nullable=False),
        sa.Column("last_value", FLOAT, nullable=False),
        sa.Column("min_value", FLOAT, nullable=False),
        sa.Column("max_value", FLOAT, nullable=False),
        sa.Column("last_us", BIG, nullable=False),
        sa.Column("last_ts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("experiment", "name", "labels"),
        sqlite_with_rowid=False,
    )
    per_name = op.create_table(
        "experiment_metrics",
        sa.Column("org", BIG, nullable=False),
        sa.Column("experiment", BIG, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("last_step", BIG, nullable=False),
        sa.Column("last_seq", BIG, nullable=False),
        sa.Column("last_value", FLOAT, nullable=False),
        sa.Column("min_value", FLOAT, nullable=False),
        sa.Column("max_value", FLOAT, nullable=False),
        sa.PrimaryKeyConstraint("experiment", "name"),
        sqlite_with_rowid=False,
    )
    for value in ("last", "min", "max"):
        op.create_index(
            f"experiment_metrics_by_{value}",
            "experiment_metrics",
            ["org", "name", f"{value}_value", "experiment"],
        )
    op.create_index("experiments_by_name", "experiments", ["org", "name", "pk"])
    assert summaries is not None
    assert per_name is not None
    _backfill(op.get_bind(), summaries, per_name)


def _per_name(org: Any, groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The `experiment_metrics` row of one (experiment, name) from its label sets' summaries."""
    last = max(groups, key=lambda g: (g["last_step"], g["last_seq"]))
    return {
        "org": org, "experiment": last["experiment"], "name": last["name"], "last_step": last["last_step"],
        "last_seq": last["last_seq"], "last_value": last["last_value"],
        "min_value": min(g["min_value"] for g in groups), "max_value": max(g["max_value"] for g in groups),
    }  # fmt: skip


def _backfill(conn: sa.Connection, summaries: sa.Table, per_name: sa.Table) -> None:
    points = sa.table(
        "metric_points",
        sa.column("experiment"), sa.column("name"), sa.column("step"), sa.column("seq"), sa.column("value"),
        sa.column("ts"), sa.column("metadata"),
    )  # fmt: skip
    experiments = sa.table("experiments", sa.column("pk"), sa.column("org"))
    c = points.c
    query = (
        sa.select(c.experiment, c.name, c.metadata, c.step, c.seq, c.value, c.ts, experiments.c.org)
        .select_from(points.join(experiments, experiments.c.pk == c.experiment))
        .order_by(c.experiment, c.name, c.step, c.seq)
    )
    groups: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    current: tuple[Any, Any] | None = None
    out: list[dict[str, Any]] = []
    out_per_name: list[dict[str, Any]] = []
    org = None
    streamed = conn.execute(query, execution_options={"yield_per": _CHUNK})
    for experiment, name, labels, step, seq, value, ts, its_org in streamed:
        if (experiment, name) != current:  # one (experiment, name) is done: its label sets are complete
            if groups:
                out.extend(groups.values())
                out_per_name.append(_per_name(org, list(groups.values())))
            groups.clear()
            current, org = (experiment, name), its_org
            if len(out) >= _CHUNK:
                conn.execute(summaries.insert(), out)
                conn.execute(per_name.insert(), out_per_name)
                out, out_per_name = [], []
        us = parse_timestamp(ts)
        group = groups.get((experiment, name, labels))
        if group is None:
            groups[(experiment, name, labels)] = {
                "experiment": experiment, "name": name, "labels": labels, "count": 1,
                "first_step": step if step >= 0 else None, "last_step": step, "last_seq": seq, "last_value": value,
                "min_value": value, "max_value": value, "last_us": us, "last_ts": ts,
            }  # fmt: skip
            continue
        group["count"] += 1
        if step >= 0 and group["first_step"] is None:
            group["first_step"] = step  # ascending order: the first stepped point has the lowest step
        group["last_step"], group["last_seq"], group["last_value"] = step, seq, value
        group["min_value"] = min(group["min_value"], value)
        group["max_value"] = max(group["max_value"], value)
        if (us, ts) > (group["last_us"], group["last_ts"]):
            group["last_us"], group["last_ts"] = us, ts
    if groups:
        out.extend(groups.values())
        out_per_name.append(_per_name(org, list(groups.values())))
    if out:
        conn.execute(summaries.insert(), out)
        conn.execute(per_name.insert(), out_per_name)


def downgrade() -> None:
    raise NotImplementedError("the schema is only ever upgraded")

"""Metric summaries kept at ingest (contract 1.4.0): per experiment, metric name and label set
(`metric_summaries`, getExperimentSummary), and per experiment and metric name whatever the labels
(`experiment_metrics`, with one index per sortable value for listExperiments' `order_by=metric:...`); the
index `experiments_by_name` (`order_by=name`); and `experiment_metadata`, each experiment's metadata as typed
rows per key path (listExperiments' `metadata_key` / `metadata_value`), filled from the stored metadata with a
copy of the flattening the server does (`storage/metadata_index.py` as it shipped).

Fills both tables from the points already stored, so a database upgraded in place answers as if the summaries had
been kept from the start. Self-contained (see 0001), except that the
backfill reads timestamps with the server's own `parse_timestamp`: `last_logged_at` must be the instant ingestion
compares, lenient readings of older rows included.

The backfill streams the points in primary-key order (experiment, name, step, seq), so the last point seen of a
(name, label set) is the one with the highest (step, seq): the rule ingestion keeps. It writes in chunks, so its
memory stays bounded by the number of label sets of one experiment and metric.
"""

from __future__ import annotations

import json
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
    by_path = op.create_table(
        "experiment_metadata",
        sa.Column("org", BIG, nullable=False),
        sa.Column("path", NAME, nullable=False),
        sa.Column("experiment", BIG, sa.ForeignKey("experiments.pk"), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("number", FLOAT),
        sa.Column("text", NAME, nullable=False),
        sa.PrimaryKeyConstraint("org", "path", "experiment"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "experiment_metadata_by_number", "experiment_metadata", ["org", "path", "number", "experiment"]
    )
    op.create_index(
        "experiment_metadata_by_value", "experiment_metadata", ["org", "path", "kind", "text", "experiment"]
    )
    op.create_index("experiment_metadata_by_experiment", "experiment_metadata", ["experiment"])
    assert by_path is not None
    _backfill_metadata(op.get_bind(), by_path)
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


def _typed(value: Any) -> tuple[str, float | None, str]:
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
    return ("array" if isinstance(value, list) else "object"), None, ""


def _flatten(metadata: Any, prefix: str = "") -> Any:
    if not isinstance(metadata, dict):
        return
    for key, value in metadata.items():
        path = prefix + key
        if "." in key or not key or len(path) > 256:
            continue
        yield (path, *_typed(value))
        if isinstance(value, dict):
            yield from _flatten(value, path + ".")


def _backfill_metadata(conn: sa.Connection, by_path: sa.Table) -> None:
    experiments = sa.table("experiments", sa.column("pk"), sa.column("org"), sa.column("metadata"))
    found = conn.execute(sa.select(experiments.c.pk, experiments.c.org, experiments.c.metadata))
    out = [
        {"org": org, "path": path, "experiment": pk, "kind": kind, "number": number, "text": text}
        for pk, org, metadata in found
        for path, kind, number, text in _flatten(json.loads(metadata or "{}"))
    ]
    for start in range(0, len(out), _CHUNK):
        conn.execute(by_path.insert(), out[start : start + _CHUNK])


def downgrade() -> None:
    raise NotImplementedError("the schema is only ever upgraded")

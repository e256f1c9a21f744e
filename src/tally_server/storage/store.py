"""`Repository` on SQLite or PostgreSQL: one class, its statements written once in SQLAlchemy Core.

Every statement is built from the tables of `tally_server.storage.schema` and compiled by SQLAlchemy for the
database the connection is to; what truly differs between the backends is a named function of
`tally_server.storage.dialects`. Connections come from `tally_server.storage.database` (SQLite) or
`tally_server.storage.pg_database` (PostgreSQL), which both hand out SQLAlchemy `Connection`s by `read()`,
`snapshot()` and `write()`.

Each rule of the data model is kept by the database, so that it holds with concurrent writers (PostgreSQL: several
server processes on one database) as with SQLite's single writer:

- ingestion dedupe: the unique index on (experiment, client_event_id) with `INSERT ... ON CONFLICT DO NOTHING`;
- folder-name uniqueness: the unique index `folders_unique_name`; a writer that loses the race gets the same
  409 as one that finds the name taken (`_name_race`);
- status transitions and experiment updates take the experiment's row `FOR UPDATE`; an ingest (and an
  annotation) holds it `FOR SHARE`, so no point lands after the experiment was closed or archived (archiving
  updates the row, so it waits for them and they for it); a repeated archive is a no-op by the UPDATE's own
  condition. SQLite compiles these clauses to nothing: its writers are serialised by `BEGIN IMMEDIATE`;
- tags: the primary key of `experiment_tags` (org, tag, experiment);
- the first organisation: created under `dialects.lock_bootstrap`, so servers starting together make one.

Idempotency claims. On PostgreSQL a claim dies with its holder: a request claiming a key pins one pooled
connection for itself (`PgDatabase.pin`), takes the session-level advisory lock of (org, key) on it
(`dialects.try_claim_lock`), and only then inserts its 'running' row; it keeps both until its answer is committed
with its effect, or its row released, and only then unlocks. So a 'running' row whose lock anyone can take
belongs to a holder whose session is gone (its process killed, its connection cut, the database restarted): the
next claimer takes it over at once instead of answering 409 `idempotency_in_progress` until a stale timeout. The
holder cannot still finish afterwards: everything it does runs on the session that died. A start clears nothing,
since other live processes may hold claims. On SQLite (one process owns the file) the claims left 'running' by a
previous process are released at start, and a 'running' row older than `stale_before_us` is taken over. Every
statement of a claim is a conditional insert or update on the (org, key) primary key, so two claimers that both
found the lock free still produce one winner.
"""

import contextlib
import functools
import itertools
import json
import logging
import operator
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Protocol, TypeVar

import msgspec
from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement

from tally_server._util import (
    format_us,
    hash_token,
    new_id,
    new_token,
    now,
    parse_timestamp,
    readable_timestamp,
)
from tally_server.ordering import CREATED, ExperimentOrder
from tally_server.storage import batch_stats, dialects, metadata_index, rollups, rows
from tally_server.storage.artifacts import ArtifactRows
from tally_server.storage.repository import (
    BootstrapResult,
    ConflictError,
    ExperimentArchivedError,
    ExperimentClosedError,
    FolderNotEmptyError,
    IdempotencyClaim,
    InvalidTransitionError,
    Json,
    Key,
    MetricBatchIn,
    NotFoundError,
    Page,
    Principal,
)
from tally_server.storage.schema import (
    annotations,
    api_keys,
    experiment_metadata,
    experiment_metrics,
    experiment_tags,
    experiments,
    folders,
    idempotency_keys,
    metric_label_values,
    metric_points,
    metric_rollups,
    metric_series,
    metric_summaries,
    organizations,
)
from tally_server.storage.schema import metadata as schema_metadata
from tally_server.storage.sessions import DashboardSessions

__all__ = ["SqlRepository", "open_postgres", "open_sqlite"]

_T = TypeVar("_T")
logger = logging.getLogger("tally_server.storage")

_TERMINAL = frozenset({"completed", "failed", "cancelled"})
_NO_STEP = -1  # how a point without a step is stored: it sorts before step 0
_EMPTY = "{}"


class Connections(Protocol):
    """What the repository needs of a backend's connection module (`database.Database`, `pg_database.PgDatabase`):
    `read()`, `snapshot()` and `write()` (re-entrant on a thread) hand out SQLAlchemy connections."""

    dialect: str

    def read(self) -> contextlib.AbstractContextManager[Connection]: ...
    def snapshot(self) -> contextlib.AbstractContextManager[Connection]: ...
    def write(self) -> contextlib.AbstractContextManager[Connection]: ...
    def check_available(self) -> None: ...
    def close(self) -> None: ...


# ---- the selects rows.py shapes (by position) -----------------------------------------------------------------
_f, _p = folders.alias("f"), folders.alias("p")
_FOLDER = select(
    _f.c.pk, _f.c.id, _f.c.name, _p.c.id, _f.c.description, _f.c.metadata, _f.c.created_at, _f.c.updated_at,
    _f.c.parent, _f.c.archived_at,
).select_from(_f.outerjoin(_p, _p.c.pk == _f.c.parent))  # fmt: skip
_e, _ef = experiments, folders
_EXPERIMENT_COLUMNS = (
    _e.c.pk, _e.c.id, _e.c.name, _ef.c.id, _e.c.description, _e.c.metadata, _e.c.status, _e.c.created_at,
    _e.c.updated_at, _e.c.ended_at, _e.c.tags, _e.c.archived_at, _e.c.run_group,
)  # fmt: skip
_EXPERIMENT_WIDTH = len(
    _EXPERIMENT_COLUMNS
)  # a row of an order by a metric has the metric's value after them
_EXPERIMENT = select(*_EXPERIMENT_COLUMNS).select_from(_e.outerjoin(_ef, _ef.c.pk == _e.c.folder))
# With the `tag` filter, the walk is one range of experiment_tags' primary key (org, tag, experiment), in
# experiment order: the cost of a page does not grow with the number of experiments (tagged or not).
_t = experiment_tags.alias("t")
_EXPERIMENT_BY_TAG = select(*_EXPERIMENT_COLUMNS).select_from(
    _t.join(_e, _e.c.pk == _t.c.experiment).outerjoin(_ef, _ef.c.pk == _e.c.folder)
)
# With the metadata filter (and no tag), the walk is one range of an experiment_metadata index, in experiment order.
_EXPERIMENT_BY_METADATA = select(*_EXPERIMENT_COLUMNS).select_from(
    experiment_metadata.join(_e, _e.c.pk == experiment_metadata.c.experiment).outerjoin(
        _ef, _ef.c.pk == _e.c.folder
    )
)
_k = api_keys
_KEY = select(
    _k.c.pk, _k.c.id, _e.c.id, _k.c.name, _k.c.token_hint, _k.c.created_at, _k.c.revoked_at, _k.c.expires_at
).select_from(_k.join(_e, _e.c.pk == _k.c.experiment))
_a = annotations
_ANNOTATION = select(
    _a.c.pk, _a.c.id, _e.c.id, _a.c.text, _a.c.step, _a.c.ts, _a.c.metadata, _a.c.client_event_id,
    _a.c.created_at, _a.c.ts_auto,
).select_from(_a.join(_e, _e.c.pk == _a.c.experiment))  # fmt: skip
_i = idempotency_keys
_IDEMPOTENCY = select(_i.c.fingerprint, _i.c.state, _i.c.status, _i.c.body, _i.c.headers, _i.c.created_us)

# ---- the statements of every request, built once (building a statement costs more than running it) ------------
# Parameters are named apart from the columns (SQLAlchemy reserves a column's name for its VALUES and SET).
_b = bindparam
_AUTHENTICATE = (
    select(
        _k.c.id, _k.c.kind, _k.c.revoked_at, organizations.c.pk, organizations.c.id, organizations.c.name,
        _e.c.pk, _e.c.id, _k.c.expires_us,
    )
    .select_from(
        _k.join(organizations, organizations.c.pk == _k.c.org).outerjoin(_e, _e.c.pk == _k.c.experiment)
    )
    .where(_k.c.token_hash == _b("hash"))
)  # fmt: skip
_EXPERIMENT_REF = select(_e.c.pk, _e.c.status).where(_e.c.id == _b("experiment_id"), _e.c.org == _b("org_pk"))
# FOR KEY SHARE (PostgreSQL): createIngestionKey holds the experiment until its key row commits, so a concurrent
# deleteExperiment (FOR UPDATE) deletes that key too, or the create comes after it and finds no experiment (404).
_EXPERIMENT_REF_HELD = _EXPERIMENT_REF.with_for_update(read=True, key_share=True)
_EXPERIMENT_BY_ID = _EXPERIMENT.where(_e.c.id == _b("experiment_id"), _e.c.org == _b("org_pk"))
# FOR UPDATE OF experiments (PostgreSQL; nothing on SQLite, whose writers are serialised): concurrent changes of
# one experiment take turns, the second seeing the first one's result.
_EXPERIMENT_BY_ID_FOR_UPDATE = _EXPERIMENT_BY_ID.with_for_update(of=experiments)
_FOLDER_PK = select(folders.c.pk).where(folders.c.id == _b("folder_id"), folders.c.org == _b("org_pk"))
# FOR KEY SHARE (PostgreSQL): a write that puts something into a folder (an experiment, a child folder) holds the
# folder until it commits, so deleteFolder (FOR UPDATE) waits and then counts it (409 folder_not_empty); a write
# that comes after the delete finds no folder (404), never a foreign-key error.
_FOLDER_PK_HELD = _FOLDER_PK.with_for_update(read=True, key_share=True)
_FOLDER_PK_FOR_UPDATE = _FOLDER_PK.with_for_update()
_FOLDER_BY_ID = _FOLDER.where(_f.c.id == _b("folder_id"), _f.c.org == _b("org_pk"))
# FOR SHARE (PostgreSQL): the experiment cannot be closed or archived (FOR UPDATE, UPDATE) until the ingest or
# the annotation holding it commits.
_EXPERIMENT_STATE_FOR_SHARE = (
    select(_e.c.status, _e.c.archived_at, _e.c.org)
    .where(_e.c.pk == _b("experiment_pk"))
    .with_for_update(read=True)
)
# Every table with a row per experiment, from schema.py, so a table added later is deleted with its experiment
# (deleteExperiment). Each is read by an index that starts with `experiment` (tests/server/test_query_plans.py).
_EXPERIMENT_PARTS = tuple(
    table for table in schema_metadata.sorted_tables if "experiment" in table.c and table is not experiments
)
_IDEMPOTENCY_ROW = _IDEMPOTENCY.where(_i.c.org == _b("org_pk"), _i.c.key == _b("claim_key"))
_IDEMPOTENCY_DONE = (
    update(_i)
    .values(state="done", status=_b("answer_status"), body=_b("answer_body"), headers=_b("answer_headers"))
    .where(_i.c.org == _b("org_pk"), _i.c.key == _b("claim_key"))
)
_IDEMPOTENCY_RELEASE = delete(_i).where(
    _i.c.org == _b("org_pk"), _i.c.key == _b("claim_key"), _i.c.state == "running"
)
_IDEMPOTENCY_EXPIRE = delete(_i).where(
    _i.c.org == _b("org_pk"), _i.c.key == _b("claim_key"), _i.c.created_us < _b("expire_before_us")
)
_IDEMPOTENCY_TAKE_OVER = (
    update(_i)
    .values(created_us=_b("now_us"))
    .where(_i.c.org == _b("org_pk"), _i.c.key == _b("claim_key"), _i.c.state == "running")
)
_INSERT_API_KEY = api_keys.insert()
_INSERT_EXPERIMENT = experiments.insert().returning(experiments.c.pk)
_INSERT_TAGS = experiment_tags.insert()
_INSERT_METADATA = experiment_metadata.insert()
_INSERT_FOLDER = folders.insert()
_INSERT_ANNOTATION = annotations.insert()


@functools.cache
def _claim_insert(dialect: str) -> Any:
    return dialects.insert(dialect, idempotency_keys).on_conflict_do_nothing(
        index_elements=[_i.c.org, _i.c.key]
    )


# ---- the ingest path's statements: compiled once per dialect, run with the driver's executemany ----------------
# A point as ingestion inserts it: (experiment, name, step, seq, value, ts, ts_auto, metadata, client_event_id),
# ts_auto in the form `dialects.flags` gives.
_PointRow = tuple[int, str, int, int, float, str, Any, str, str]
# The bulk statements' rows are tuples in their table's column order (schema.py).
_POINT_COLUMNS = tuple(metric_points.c.keys())
_SERIES_COLUMNS = tuple(metric_series.c.keys())
_LABEL_COLUMNS = tuple(metric_label_values.c.keys())
_SUMMARY_COLUMNS = tuple(metric_summaries.c.keys())
_PER_NAME_COLUMNS = tuple(experiment_metrics.c.keys())
_ROLLUP_COLUMNS = tuple(metric_rollups.c.keys())
_MAX_STEP = (1 << 63) - 1


def _insert_points(dialect: str) -> Any:
    m = metric_points.c
    return dialects.insert(dialect, metric_points).on_conflict_do_nothing(
        index_elements=[m.experiment, m.client_event_id]
    )


def _upsert_series(dialect: str) -> Any:
    s = metric_series.c
    stmt = dialects.insert(dialect, metric_series)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[s.experiment, s.name],
        set_={
            "count": s.count + new.count,
            "first_ts": case((new.first_us < s.first_us, new.first_ts), else_=s.first_ts),
            "first_us": dialects.least(dialect, s.first_us, new.first_us),
            "last_ts": case((new.last_us > s.last_us, new.last_ts), else_=s.last_ts),
            "last_us": dialects.greatest(dialect, s.last_us, new.last_us),
        },
    )


def _upsert_summaries(dialect: str) -> Any:
    """One summary row per (experiment, name, label set), merged with what is stored in one atomic statement:
    counts add, extremes take least/greatest, and `last_*` come from whichever side has the higher (step, seq),
    so two concurrent batches (PostgreSQL) leave the same row whichever commits first. The SET expressions all
    read the stored row as it was before this update (SQL's rule), so their order does not matter."""
    s = metric_summaries.c
    stmt = dialects.insert(dialect, metric_summaries)
    new = stmt.excluded
    newer = tuple_(new.last_step, new.last_seq) > tuple_(s.last_step, s.last_seq)
    later = tuple_(new.last_us, new.last_ts) > tuple_(s.last_us, s.last_ts)
    return stmt.on_conflict_do_update(
        index_elements=[s.experiment, s.name, s.labels],
        set_={
            "count": s.count + new.count,
            "first_step": dialects.least(
                dialect,
                func.coalesce(s.first_step, new.first_step),
                func.coalesce(new.first_step, s.first_step),
            ),
            "last_step": case((newer, new.last_step), else_=s.last_step),
            "last_seq": case((newer, new.last_seq), else_=s.last_seq),
            "last_value": case((newer, new.last_value), else_=s.last_value),
            "min_value": dialects.least(dialect, s.min_value, new.min_value),
            "max_value": dialects.greatest(dialect, s.max_value, new.max_value),
            "last_us": case((later, new.last_us), else_=s.last_us),
            "last_ts": case((later, new.last_ts), else_=s.last_ts),
        },
    )


def _upsert_per_name(dialect: str) -> Any:
    """`experiment_metrics`: the same merge as `_upsert_summaries`, per (experiment, name)."""
    s = experiment_metrics.c
    stmt = dialects.insert(dialect, experiment_metrics)
    new = stmt.excluded
    newer = tuple_(new.last_step, new.last_seq) > tuple_(s.last_step, s.last_seq)
    return stmt.on_conflict_do_update(
        index_elements=[s.experiment, s.name],
        set_={
            "last_step": case((newer, new.last_step), else_=s.last_step),
            "last_seq": case((newer, new.last_seq), else_=s.last_seq),
            "last_value": case((newer, new.last_value), else_=s.last_value),
            "min_value": dialects.least(dialect, s.min_value, new.min_value),
            "max_value": dialects.greatest(dialect, s.max_value, new.max_value),
        },
    )


_ID_OF_ROW = operator.itemgetter(8)  # a point row's client_event_id


def _points(
    dialect: str, seqs: Sequence[int], batch: MetricBatchIn, received: str
) -> tuple[batch_stats.Points, list[Any] | None]:
    """A validated batch's points column by column as stored, and their `ts_auto` flags in the dialect's form
    (`dialects.flags`; None: all false). Python runs per event only where a field is absent: a step-less point
    stores step -1, an event without a timestamp gets the time it was received, flagged `ts_auto`."""
    steps: Sequence[Any] = batch.steps  # int | None, then int
    if None in steps:
        steps = [_NO_STEP if step is None else step for step in steps]
    stamps: Sequence[Any] = batch.timestamps
    autos = None
    if msgspec.UNSET in stamps:
        no, yes = dialects.flags(dialect)
        autos = [yes if stamp is msgspec.UNSET else no for stamp in stamps]
        stamps = [received if stamp is msgspec.UNSET else stamp for stamp in stamps]
    return batch_stats.Points(batch.names, steps, seqs, batch.values, stamps, batch.labels), autos


def _point_rows(
    dialect: str, experiment_pk: int, points: batch_stats.Points, autos: list[Any] | None, ids: Sequence[str]
) -> Iterator[_PointRow]:
    """The insert's rows, zipped from the columns as the driver consumes them: no list of 10,000 tuples is
    built and freed (the driver's executemany takes an iterator)."""
    no, _ = dialects.flags(dialect)
    return zip(
        itertools.repeat(experiment_pk),
        points.names,
        points.steps,
        points.seqs,
        points.values,
        points.stamps,
        itertools.repeat(no) if autos is None else autos,
        points.labels,
        ids,
    )


def _stored_points(rows: Sequence[_PointRow]) -> batch_stats.Points:
    """Rows (at least one) as columns."""
    columns = list(zip(*rows, strict=True))
    return batch_stats.Points(columns[1], columns[2], columns[3], columns[4], columns[5], columns[7])


def _upsert_labels(dialect: str) -> Any:
    v = metric_label_values.c
    stmt = dialects.insert(dialect, metric_label_values)
    return stmt.on_conflict_do_update(
        index_elements=[v.experiment, v.name, v.key, v.value], set_={"count": v.count + stmt.excluded.count}
    )


def _upsert_rollups(dialect: str) -> Any:
    """Fold a batch's block aggregate into the stored one: counts and sums add, extremes stay extreme, and the
    first / last point is the one of lowest / highest (step, seq). (SET reads the row as it was, on both
    backends, so the CASEs all compare with the old first / last.)"""
    r = metric_rollups.c
    stmt = dialects.insert(dialect, metric_rollups)
    new = stmt.excluded
    earlier = (new.first_step < r.first_step) | (
        (new.first_step == r.first_step) & (new.first_seq < r.first_seq)
    )
    later = (new.last_step > r.last_step) | ((new.last_step == r.last_step) & (new.last_seq > r.last_seq))
    return stmt.on_conflict_do_update(
        index_elements=[r.experiment, r.name, r.level, r.block, r.labels],
        set_={
            "count": r.count + new.count,
            "min": dialects.least(dialect, r.min, new.min),
            "max": dialects.greatest(dialect, r.max, new.max),
            "sum": r.sum + new.sum,
            "first_step": case((earlier, new.first_step), else_=r.first_step),
            "first_seq": case((earlier, new.first_seq), else_=r.first_seq),
            "first_value": case((earlier, new.first_value), else_=r.first_value),
            "last_step": case((later, new.last_step), else_=r.last_step),
            "last_seq": case((later, new.last_seq), else_=r.last_seq),
            "last_value": case((later, new.last_value), else_=r.last_value),
        },
    )


def _label_filter(dialect: str, column: Any, filters: Json) -> list[ColumnElement[bool]]:
    """`metadata_key` / `metadata_value` of a metric read, on a metadata text column."""
    key = filters.get("metadata_key")
    if key is None:
        return []
    value = filters.get("metadata_value")
    if value is not None:
        return [dialects.json_text(dialect, column, key) == value]
    return [dialects.json_has(dialect, column, key)]


def _archive(table: Any, pk: int, archived: bool) -> Any:
    """Archive (or unarchive) one row. The condition on `archived_at` makes a repeat a no-op in the database
    itself, whoever runs it at once."""
    _, stamp = now()
    c = table.c
    unchanged = c.archived_at.is_(None) if archived else c.archived_at.is_not(None)
    return (
        update(table)
        .values(archived_at=stamp if archived else None, updated_at=stamp)
        .where(c.pk == pk, unchanged)
    )


def _metric_point_range(
    dialect: str, experiment_pk: int, filters: Json, after: Key | None
) -> list[ColumnElement[bool]]:
    """The WHERE clause of a metric listing, shaped so that the database reads one range of the primary key
    (experiment, name, step, seq) from the cursor on, whatever page the walk is on.

    With a name, the step bounds and the cursor fold into one lower bound on (step, seq): written as separate
    conditions, SQLite picks the step range and re-reads every point before the cursor on every page.
    """
    m = metric_points.c
    where: list[ColumnElement[bool]] = [m.experiment == experiment_pk]
    min_step, max_step = filters.get("min_step"), filters.get("max_step")
    if max_step is not None:  # an upper bound leaves out points without a step (stored as step -1)
        min_step = max(min_step or 0, 0)
    if filters.get("name") is not None:
        where.append(m.name == filters["name"])
        # seq starts at 1: (min_step, 0) means step >= min_step
        lower = None if min_step is None else (min_step, 0)
        if after is not None and (lower is None or (after[1], after[2]) > lower):
            lower = (after[1], after[2])
        if lower is not None:
            where.append(tuple_(m.step, m.seq) > tuple_(*lower))
    else:
        if min_step is not None:
            where.append(m.step >= min_step)
        if after is not None:
            where.append(tuple_(m.name, m.step, m.seq) > tuple_(*after))
    if max_step is not None:
        where.append(m.step <= max_step)
    key = filters.get("metadata_key")
    if key is not None:
        value = filters.get("metadata_value")
        if value is not None:
            where.append(dialects.json_text(dialect, m.metadata, key) == value)
        else:
            where.append(dialects.json_has(dialect, m.metadata, key))
    return where


_em = experiment_metrics.c
_md = experiment_metadata.c
# (path, None) or (path, (kind, number, text)): listExperiments' metadata filter (`metadata_index.parse_value`)
MetadataFilter = tuple[str, tuple[str, float | None, str] | None]


def _tagged(org_pk: int, tag: str) -> ColumnElement[bool]:
    """The experiment carries `tag`: one probe of experiment_tags' primary key (org, tag, experiment)."""
    return exists().where(_t.c.org == org_pk, _t.c.tag == tag, _t.c.experiment == _e.c.pk)


def _metadata_match(org_pk: int, wanted: MetadataFilter) -> list[ColumnElement[bool]]:
    """The experiment_metadata rows of a metadata filter: one range of its primary key (the key exists),
    of experiment_metadata_by_number (a number), or of experiment_metadata_by_value (any other value)."""
    path, value = wanted
    match = [_md.org == org_pk, _md.path == path]
    if value is not None:
        kind, number, text_ = value
        if kind == "number":
            match.append(_md.number == number)
        else:
            match += [_md.kind == kind, _md.text == text_]
    return match


def _has_metadata(org_pk: int, wanted: MetadataFilter) -> ColumnElement[bool]:
    """The experiment has the metadata: one probe of experiment_metadata's primary key per experiment the order's
    index walk reaches. Written as a scalar subquery with LIMIT 1, not EXISTS: PostgreSQL turns an EXISTS into a
    semi-join, and with a few hundred matches prefers to hash them and read every experiment to sort them."""
    probe = select(literal(1)).where(*_metadata_match(org_pk, wanted), _md.experiment == _e.c.pk).limit(1)
    return probe.scalar_subquery().is_not(None)


def _experiments_in_order(
    org_pk: int,
    order: ExperimentOrder,
    tag: str | None,
    where: list[ColumnElement[bool]],
    after: Key | None,
    wanted: MetadataFilter | None = None,
) -> Any:
    """By creation (experiments_by_org (org, pk), or with a tag one range of experiment_tags' primary key) or by
    name (experiments_by_name (org, name, pk)), either way, from the cursor on; descending is the same index
    read backwards."""
    desc = order.descending
    if order.by == "created_at":
        if tag is not None:
            column = _t.c.experiment
            query = _EXPERIMENT_BY_TAG.where(_t.c.org == org_pk, _t.c.tag == tag, _e.c.org == org_pk)
            if wanted is not None:
                query = query.where(_has_metadata(org_pk, wanted))
        elif wanted is not None:  # one range of a metadata index, in experiment order
            column = _md.experiment
            query = _EXPERIMENT_BY_METADATA.where(*_metadata_match(org_pk, wanted))
        else:
            column = _e.c.pk
            query = _EXPERIMENT.where(_e.c.org == org_pk)
        if desc:
            query = query if after is None else query.where(column < after[0])
        else:  # (from 0 without a cursor: one range of the index either way)
            query = query.where(column > (after[0] if after else 0))
        return query.where(*where).order_by(column.desc() if desc else column)
    query = _EXPERIMENT.where(_e.c.org == org_pk, *where)
    if tag is not None:
        query = query.where(_tagged(org_pk, tag))
    if wanted is not None:
        query = query.where(_has_metadata(org_pk, wanted))
    if after is not None:
        position = tuple_(_e.c.name, _e.c.pk)
        bound = tuple_(literal(after[0], _e.c.name.type), literal(after[1], BigInteger()))
        query = query.where(position < bound if desc else position > bound)
    if desc:
        return query.order_by(_e.c.name.desc(), _e.c.pk.desc())
    return query.order_by(_e.c.name, _e.c.pk)


def _experiments_by_metric(
    org_pk: int,
    order: ExperimentOrder,
    tag: str | None,
    where: list[ColumnElement[bool]],
    after: Key | None,
    wanted: MetadataFilter | None = None,
) -> Any:
    """The experiments that have the metric, by its value then creation: one range of
    experiment_metrics_by_<value> (org, name, value, experiment), from the cursor on. The row's last column is
    the value (the cursor's)."""
    value = _em[f"{order.value}_value"]
    query = (
        select(*_EXPERIMENT_COLUMNS, value)
        .select_from(
            experiment_metrics.join(_e, _e.c.pk == _em.experiment).outerjoin(_ef, _ef.c.pk == _e.c.folder)
        )
        .where(_em.org == org_pk, _em.name == order.metric, *where)
    )
    if tag is not None:
        query = query.where(_tagged(org_pk, tag))
    if wanted is not None:
        query = query.where(_has_metadata(org_pk, wanted))
    if after is not None:
        position = tuple_(value, _em.experiment)
        bound = tuple_(literal(after[1], value.type), literal(after[2], BigInteger()))
        query = query.where(position < bound if order.descending else position > bound)
    if order.descending:
        return query.order_by(value.desc(), _em.experiment.desc())
    return query.order_by(value, _em.experiment)


def _experiments_without_metric(
    org_pk: int,
    order: ExperimentOrder,
    tag: str | None,
    where: list[ColumnElement[bool]],
    start: int,
    wanted: MetadataFilter | None = None,
) -> Any:
    """The experiments that lack the metric, by creation (experiments_by_org, each probing
    experiment_metrics' primary key), after those that have it in either direction."""
    has_it = exists().where(_em.experiment == _e.c.pk, _em.name == order.metric)
    query = _EXPERIMENT.where(_e.c.org == org_pk, _e.c.pk > start, ~has_it, *where)
    if tag is not None:
        query = query.where(_tagged(org_pk, tag))
    if wanted is not None:
        query = query.where(_has_metadata(org_pk, wanted))
    return query.order_by(_e.c.pk)


class SqlRepository(ArtifactRows):
    """`Repository` on the database `db` connects to (see the module's docstring); artifacts in
    `storage.artifacts`."""

    def __init__(self, db: Connections) -> None:
        self.db = db
        self.sessions = DashboardSessions(db)
        self._claim = threading.local()  # the advisory lock this thread's request holds, if any (PostgreSQL)
        if not dialects.session_locks(db.dialect):
            with db.write() as conn:
                # Requests that were running when a previous process stopped will never finish.
                conn.execute(delete(_i).where(_i.c.state == "running"))

    def close(self) -> None:
        self.db.close()

    def check_available(self) -> None:
        self.db.check_available()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction around everything this thread writes inside the block (see `Repository.atomic`)."""
        with self.db.write():
            yield

    # ---- organisations and keys ---------------------------------------------------------------------------
    def bootstrap(self, token: str | None, *, mint_if_existing: bool) -> BootstrapResult:
        _, stamp = now()
        o = organizations.c
        with self.db.write() as conn:
            dialects.lock_bootstrap(conn)
            row = conn.execute(select(o.pk, o.id).order_by(o.pk).limit(1)).first()
            created = row is None
            if row is None:
                org_id = new_id("org_")
                org_pk = conn.execute(
                    organizations.insert().values(id=org_id, name="default", created_at=stamp).returning(o.pk)
                ).scalar_one()
            else:
                org_pk, org_id = int(row[0]), str(row[1])
            new: str | None = None
            if token is not None:
                known = conn.execute(select(_k.c.pk).where(_k.c.token_hash == hash_token(token))).first()
                if known is None:
                    self._insert_org_key(conn, org_pk, token, stamp)
            elif created or mint_if_existing:
                new = new_token("tk_org_")
                self._insert_org_key(conn, org_pk, new, stamp)
        return BootstrapResult(org_id=org_id, created_org=created, new_token=new)

    def create_organization(self, name: str) -> tuple[str, str]:
        """A new organisation with one org API key: (organisation id, token)."""
        _, stamp = now()
        org_id = new_id("org_")
        token = new_token("tk_org_")
        with self.db.write() as conn:
            org_pk = conn.execute(
                organizations.insert()
                .values(id=org_id, name=name, created_at=stamp)
                .returning(organizations.c.pk)
            ).scalar_one()
            self._insert_org_key(conn, org_pk, token, stamp)
        return org_id, token

    @staticmethod
    def _insert_org_key(conn: Connection, org_pk: int, token: str, stamp: str) -> None:
        conn.execute(
            _INSERT_API_KEY,
            {
                "id": new_id("key_"), "org": org_pk, "kind": "org", "experiment": None, "name": None,
                "token_hash": hash_token(token), "token_hint": token[-4:], "created_at": stamp,
            },
        )  # fmt: skip

    def authenticate(self, token: str) -> Principal | None:
        with self.db.read() as conn:
            row = conn.execute(_AUTHENTICATE, {"hash": hash_token(token)}).first()
        if row is None or row[2] is not None or (row[8] is not None and row[8] <= now()[0]):
            return None
        kind: Literal["org", "ingestion"] = "ingestion" if row[1] == "ingestion" else "org"
        return Principal(
            key_id=row[0], kind=kind, org_pk=row[3], org_id=row[4], org_name=row[5], experiment_pk=row[6],
            experiment_id=row[7],
        )  # fmt: skip

    def experiment_ref(self, org_pk: int, experiment_id: str) -> tuple[int, str]:
        """The experiment's row key and status; NotFoundError outside the organisation."""
        with self.db.read() as conn:
            return self._experiment_ref(conn, org_pk, experiment_id)

    @staticmethod
    def _experiment_ref(
        conn: Connection, org_pk: int, experiment_id: str, *, held: bool = False
    ) -> tuple[int, str]:
        query = _EXPERIMENT_REF_HELD if held else _EXPERIMENT_REF
        row = conn.execute(query, {"experiment_id": experiment_id, "org_pk": org_pk}).first()
        if row is None:
            raise NotFoundError("experiment", experiment_id)
        return int(row[0]), str(row[1])

    @staticmethod
    def _folder_pk(conn: Connection, org_pk: int, folder_id: str, *, held: bool = False) -> int:
        """The folder's row key; `held` when the caller puts something into it (see `_FOLDER_PK_HELD`)."""
        row = conn.execute(
            _FOLDER_PK_HELD if held else _FOLDER_PK, {"folder_id": folder_id, "org_pk": org_pk}
        ).first()
        if row is None:
            raise NotFoundError("folder", folder_id)
        return int(row[0])

    # ---- folders -------------------------------------------------------------------------------------------
    def list_folders(
        self,
        org_pk: int,
        parent_id: str | None,
        limit: int,
        after: Key | None,
        include_archived: bool = False,
    ) -> Page:
        with self.db.snapshot() as conn:
            query = _FOLDER.where(_f.c.org == org_pk, _f.c.pk > (after[0] if after else 0))
            if not include_archived:
                query = query.where(_f.c.archived_at.is_(None))
            if parent_id is None:
                query = query.where(_f.c.parent.is_(None))
            else:
                query = query.where(_f.c.parent == self._folder_pk(conn, org_pk, parent_id))
            found = conn.execute(query.order_by(_f.c.pk).limit(limit + 1)).all()
        return rows.page(found, limit, rows.folder, lambda r: (r[0],))

    @staticmethod
    def _fetch_folder(conn: Connection, org_pk: int, folder_id: str) -> Sequence[Any]:
        row = conn.execute(_FOLDER_BY_ID, {"folder_id": folder_id, "org_pk": org_pk}).first()
        if row is None:
            raise NotFoundError("folder", folder_id)
        return tuple(row)

    @staticmethod
    def _check_name_free(
        conn: Connection, org_pk: int, parent_pk: int | None, name: str, except_pk: int | None = None
    ) -> None:
        f = folders.c
        row = conn.execute(
            select(f.id).where(
                f.org == org_pk, func.coalesce(f.parent, 0) == (parent_pk or 0), f.name == name,
                f.pk != (except_pk or 0),
            )
        ).first()  # fmt: skip
        if row is not None:
            raise ConflictError(
                f"A folder named {name!r} already exists in this parent.",
                {"name": name, "existing_id": row[0]},
            )

    def _name_race(self, write: Callable[[Connection], _T]) -> _T:
        """Run a folder write; if a concurrent writer took the name first (the unique index refused the row:
        PostgreSQL's writers run at once), run it again: the name check now sees the winner and raises the usual
        ConflictError."""
        with self.db.write() as conn:
            try:
                with conn.begin_nested():
                    return write(conn)
            except IntegrityError:
                return write(conn)

    def create_folder(
        self, org_pk: int, name: str, parent_id: str | None, description: str | None, metadata: Any
    ) -> Json:
        _, stamp = now()
        folder_id = new_id("fld_")

        def create(conn: Connection) -> Json:
            parent_pk = self._folder_pk(conn, org_pk, parent_id, held=True) if parent_id is not None else None
            self._check_name_free(conn, org_pk, parent_pk, name)
            conn.execute(
                _INSERT_FOLDER,
                {
                    "id": folder_id, "org": org_pk, "parent": parent_pk, "name": name, "description": description,
                    "metadata": rows.free_json(metadata), "created_at": stamp, "updated_at": stamp,
                },
            )  # fmt: skip
            return rows.folder(self._fetch_folder(conn, org_pk, folder_id))

        return self._name_race(create)

    def get_folder(self, org_pk: int, folder_id: str) -> Json:
        with self.db.read() as conn:
            return rows.folder(self._fetch_folder(conn, org_pk, folder_id))

    def patch_folder(self, org_pk: int, folder_id: str, changes: Json) -> Json:
        _, stamp = now()
        values: Json = {"updated_at": stamp}
        if "description" in changes:
            values["description"] = changes["description"]
        if "metadata" in changes:
            values["metadata"] = rows.free_json(changes["metadata"])
        with self.db.write() as conn:
            row = self._fetch_folder(conn, org_pk, folder_id)
            conn.execute(update(folders).values(values).where(folders.c.pk == row[0]))
            return rows.folder(self._fetch_folder(conn, org_pk, folder_id))

    def rename_folder(self, org_pk: int, folder_id: str, name: str) -> Json:
        _, stamp = now()

        def rename(conn: Connection) -> Json:
            row = self._fetch_folder(conn, org_pk, folder_id)
            if row[2] != name:
                self._check_name_free(conn, org_pk, row[8], name, except_pk=row[0])
                conn.execute(
                    update(folders).values(name=name, updated_at=stamp).where(folders.c.pk == row[0])
                )
            return rows.folder(self._fetch_folder(conn, org_pk, folder_id))

        return self._name_race(rename)

    def move_folder(self, org_pk: int, folder_id: str, parent_id: str | None) -> Json:
        _, stamp = now()

        def move(conn: Connection) -> Json:
            row = self._fetch_folder(conn, org_pk, folder_id)
            folder_pk = int(row[0])
            parent_pk = self._folder_pk(conn, org_pk, parent_id, held=True) if parent_id is not None else None
            if parent_pk is not None and folder_pk in self._ancestors(conn, parent_pk):
                raise ConflictError(
                    f"Folder {folder_id} cannot move under itself or one of its descendants.",
                    {"folder_id": folder_id, "parent_id": parent_id},
                )
            if row[8] != parent_pk:
                self._check_name_free(conn, org_pk, parent_pk, row[2], except_pk=folder_pk)
                conn.execute(
                    update(folders)
                    .values(parent=parent_pk, updated_at=stamp)
                    .where(folders.c.pk == folder_pk)
                )
            return rows.folder(self._fetch_folder(conn, org_pk, folder_id))

        return self._name_race(move)

    @staticmethod
    def _ancestors(conn: Connection, folder_pk: int) -> set[int]:
        """The folder and every folder above it."""
        up = select(cast(folder_pk, BigInteger).label("pk")).cte("up", recursive=True)
        up = up.union(
            select(folders.c.parent).join(up, folders.c.pk == up.c.pk).where(folders.c.parent.is_not(None))
        )
        return {r[0] for r in conn.execute(select(up.c.pk))}

    @staticmethod
    def _subtree(conn: Connection, org_pk: int, folder_pk: int) -> list[int]:
        """The folder and every folder below it. `f.org = ?` lets each step use folders_by_parent; without it
        SQLite builds an automatic index over every folder on every call."""
        down = select(cast(folder_pk, BigInteger).label("pk")).cte("down", recursive=True)
        down = down.union(
            select(folders.c.pk).join(down, and_(folders.c.org == org_pk, folders.c.parent == down.c.pk))
        )
        return [r[0] for r in conn.execute(select(down.c.pk))]

    def set_folder_archived(self, org_pk: int, folder_id: str, archived: bool) -> Json:
        """Only the folder itself: what it holds keeps its own state (see the contract's archiveFolder)."""
        with self.db.write() as conn:
            conn.execute(_archive(folders, self._fetch_folder(conn, org_pk, folder_id)[0], archived))
            return rows.folder(self._fetch_folder(conn, org_pk, folder_id))

    def delete_folder(self, org_pk: int, folder_id: str) -> None:
        """Delete an empty folder; FolderNotEmptyError counting what it holds otherwise (archived ones too). The
        row lock waits for the writes that are putting something into it (`_FOLDER_PK_HELD`), so the counts see
        them; the foreign keys of `experiments.folder` and `folders.parent` refuse anything that slipped past."""
        with self.db.write() as conn:
            row = conn.execute(_FOLDER_PK_FOR_UPDATE, {"folder_id": folder_id, "org_pk": org_pk}).first()
            if row is None:
                raise NotFoundError("folder", folder_id)
            folder_pk = int(row[0])
            inside = conn.execute(
                select(
                    select(func.count()).where(experiments.c.folder == folder_pk).scalar_subquery(),
                    select(func.count())
                    .where(folders.c.org == org_pk, folders.c.parent == folder_pk)
                    .scalar_subquery(),
                )
            ).one()
            if inside[0] or inside[1]:
                raise FolderNotEmptyError(folder_id, int(inside[0]), int(inside[1]))
            conn.execute(delete(folders).where(folders.c.pk == folder_pk))

    # ---- experiments ---------------------------------------------------------------------------------------
    def list_experiments(self, org_pk: int, filters: Json, limit: int, after: Key | None) -> Page:
        """A page in `filters["order"]` (`tally_server.ordering`; by creation when absent), from the keyset
        position `after`. Each order walks one index range from the cursor on (see `_experiments_in_order`)."""
        order: ExperimentOrder = filters.get("order") or CREATED
        wanted: MetadataFilter | None = filters.get("metadata")
        where = self._experiment_filters(filters)
        with self.db.snapshot() as conn:
            if filters.get("folder_id") is not None:
                # The contract gives listExperiments no 404: a folder that does not exist holds no experiments.
                folder = conn.execute(
                    select(folders.c.pk).where(folders.c.id == filters["folder_id"], folders.c.org == org_pk)
                ).first()
                if folder is None:
                    return Page([], None)
                where.append(_e.c.folder == folder[0])
            if order.by != "metric":
                query = _experiments_in_order(org_pk, order, filters.get("tag"), where, after, wanted)
                found = conn.execute(query.limit(limit + 1)).all()
                key = (lambda r: (r[0],)) if order.by == "created_at" else (lambda r: (r[2], r[0]))
                return rows.page(found, limit, rows.experiment, key)
            # By a metric: those that have it, in the order of its value, then those without it, by creation.
            with_it: list[Any] = []
            if after is None or after[0] == 0:
                query = _experiments_by_metric(org_pk, order, filters.get("tag"), where, after, wanted)
                with_it = list(conn.execute(query.limit(limit + 1)).all())
            without: list[Any] = []
            if len(with_it) <= limit:
                start = after[2] if after is not None and after[0] == 1 else 0
                query = _experiments_without_metric(org_pk, order, filters.get("tag"), where, start, wanted)
                without = list(conn.execute(query.limit(limit - len(with_it) + 1)).all())
        walked = [(0, r[_EXPERIMENT_WIDTH], r) for r in with_it] + [(1, None, r) for r in without]
        more = len(walked) > limit
        walked = walked[:limit]
        items = [rows.experiment(r[:_EXPERIMENT_WIDTH]) for _, _, r in walked]
        last = walked[-1] if walked else None
        return Page(items, (last[0], last[1], last[2][0]) if more and last else None)

    @staticmethod
    def _experiment_filters(filters: Json) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if not filters.get("include_archived"):
            where.append(_e.c.archived_at.is_(None))
        if filters.get("status") is not None:
            where.append(_e.c.status == filters["status"])
        prefix = filters.get("name_prefix")
        if prefix is not None:
            where.append(func.substr(_e.c.name, 1, func.length(prefix)) == prefix)
        if filters.get("created_after") is not None:
            where.append(_e.c.created_us > parse_timestamp(filters["created_after"]))
        if filters.get("created_before") is not None:
            where.append(_e.c.created_us < parse_timestamp(filters["created_before"]))
        if filters.get("group") is not None:  # one range of experiments_by_group (org, run_group, pk)
            where.append(_e.c.run_group == filters["group"])
        return where

    @staticmethod
    def _fetch_experiment(
        conn: Connection, org_pk: int, experiment_id: str, *, for_update: bool = False
    ) -> Sequence[Any]:
        """The experiment's row; `for_update` locks it (see `_EXPERIMENT_BY_ID_FOR_UPDATE`)."""
        query = _EXPERIMENT_BY_ID_FOR_UPDATE if for_update else _EXPERIMENT_BY_ID
        row = conn.execute(query, {"experiment_id": experiment_id, "org_pk": org_pk}).first()
        if row is None:
            raise NotFoundError("experiment", experiment_id)
        return tuple(row)

    def create_experiment(
        self,
        org_pk: int,
        name: str,
        folder_id: str | None,
        description: str | None,
        metadata: Any,
        tags: Sequence[str] = (),
        group: str | None = None,
    ) -> Json:
        us, stamp = now()
        experiment_id = new_id("exp_")
        with self.db.write() as conn:
            folder_pk = self._folder_pk(conn, org_pk, folder_id, held=True) if folder_id is not None else None
            experiment_pk = conn.execute(
                _INSERT_EXPERIMENT,
                {
                    "id": experiment_id, "org": org_pk, "folder": folder_pk, "name": name,
                    "description": description, "metadata": rows.free_json(metadata), "status": "running",
                    "created_us": us, "created_at": stamp, "updated_at": stamp, "ended_at": None,
                    "tags": rows.tags_json(tags), "run_group": group,
                },
            ).scalar_one()  # fmt: skip
            self._add_tags(conn, org_pk, experiment_pk, tags)
            self._index_metadata(conn, org_pk, experiment_pk, metadata, replace=False)
            return rows.experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    @staticmethod
    def _index_metadata(
        conn: Connection, org_pk: int, experiment_pk: int, metadata: Any, *, replace: bool
    ) -> None:
        """Write the experiment's metadata rows (`metadata_index`), in the transaction that writes its metadata."""
        if replace:
            conn.execute(delete(experiment_metadata).where(experiment_metadata.c.experiment == experiment_pk))
        found = [
            {
                "org": org_pk,
                "path": path,
                "experiment": experiment_pk,
                "kind": kind,
                "number": number,
                "text": text,
            }
            for path, kind, number, text in metadata_index.flatten(metadata or {})
        ]
        if found:
            conn.execute(_INSERT_METADATA, found)

    @staticmethod
    def _add_tags(conn: Connection, org_pk: int, experiment_pk: int, tags: Sequence[str] | None) -> None:
        if tags:
            conn.execute(
                _INSERT_TAGS, [{"org": org_pk, "tag": tag, "experiment": experiment_pk} for tag in tags]
            )

    def update_experiment(self, org_pk: int, experiment_id: str, changes: Json) -> Json:
        """Absent keys stay as they are; None clears (metadata to {}, tags to none). The tag index is rewritten in
        the same transaction: only the tags that went away are deleted, only the new ones inserted."""
        _, stamp = now()
        values: Json = {"updated_at": stamp}
        for column in ("name", "description"):
            if column in changes:
                values[column] = changes[column]
        if "metadata" in changes:
            values["metadata"] = rows.free_json(changes["metadata"])
        with self.db.write() as conn:
            # Two concurrent updates take turns, so the second rewrites the tag index from the first's tags.
            row = self._fetch_experiment(conn, org_pk, experiment_id, for_update=True)
            if "tags" in changes:
                new_tags = list(changes["tags"] or ())
                old_tags = json.loads(row[10])
                values["tags"] = rows.tags_json(new_tags)
                gone = [tag for tag in old_tags if tag not in new_tags]
                if gone:
                    t = experiment_tags.c
                    conn.execute(
                        delete(experiment_tags).where(
                            t.org == org_pk,
                            t.experiment == row[0],
                            dialects.ids_in(conn.dialect.name, t.tag, gone),
                        )
                    )
                self._add_tags(conn, org_pk, int(row[0]), [tag for tag in new_tags if tag not in old_tags])
            if "metadata" in changes:
                self._index_metadata(conn, org_pk, int(row[0]), changes["metadata"], replace=True)
            conn.execute(update(experiments).values(values).where(experiments.c.pk == row[0]))
            return rows.experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    def set_experiment_archived(self, org_pk: int, experiment_id: str, archived: bool) -> Json:
        """Status, data and keys are kept; ingestion and annotation creation check `archived_at` in the
        transaction that would store them. A repeat is a no-op (the UPDATE's condition)."""
        with self.db.write() as conn:
            conn.execute(
                _archive(experiments, self._fetch_experiment(conn, org_pk, experiment_id)[0], archived)
            )
            return rows.experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    def get_experiment(self, org_pk: int, experiment_id: str) -> Json:
        with self.db.read() as conn:
            return rows.experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    def update_experiment_status(
        self, org_pk: int, experiment_id: str, status: str, *, reopened_by: str | None = None
    ) -> Json:
        """The one way out of a terminal state is the explicit reopen to `running` (`reopened_by`, the key id):
        the status, `ended_at` and the annotation that records it change in one transaction, so a reopened
        experiment always has its record, and a crash leaves neither."""
        _, stamp = now()
        with self.db.write() as conn:
            # The row lock makes concurrent transitions take turns: the second sees the first one's result.
            row = self._fetch_experiment(conn, org_pk, experiment_id, for_update=True)
            current = row[6]
            if current in _TERMINAL and reopened_by is not None and status == "running":
                annotation_id = new_id("ann_")
                conn.execute(
                    _INSERT_ANNOTATION,
                    {
                        "id": annotation_id, "experiment": row[0], "text": f"reopened (was {current})",
                        "step": None, "ts": stamp, "ts_auto": True,
                        "metadata": rows.free_json({"tally.event": "reopen", "from": current, "key_id": reopened_by}),
                        "client_event_id": f"reopen.{annotation_id}", "created_at": stamp,
                    },
                )  # fmt: skip
            elif current in _TERMINAL:
                raise InvalidTransitionError(experiment_id, current, status)
            if status != current:
                conn.execute(
                    update(experiments)
                    .values(status=status, updated_at=stamp, ended_at=stamp if status in _TERMINAL else None)
                    .where(experiments.c.pk == row[0])
                )
            return rows.experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    def move_experiment(self, org_pk: int, experiment_id: str, folder_id: str | None) -> Json:
        _, stamp = now()
        with self.db.write() as conn:
            row = self._fetch_experiment(conn, org_pk, experiment_id)
            folder_pk = self._folder_pk(conn, org_pk, folder_id, held=True) if folder_id is not None else None
            if row[3] != folder_id:
                conn.execute(
                    update(experiments)
                    .values(folder=folder_pk, updated_at=stamp)
                    .where(experiments.c.pk == row[0])
                )
            return rows.experiment(self._fetch_experiment(conn, org_pk, experiment_id))

    def delete_experiment(self, org_pk: int, experiment_id: str) -> None:
        """The experiment and every row that refers to it (`_EXPERIMENT_PARTS`), in one transaction. The row lock
        (FOR UPDATE on PostgreSQL) waits for the ingests and annotations that hold it FOR SHARE; those that come
        after find no experiment (404) or no key (401), so nothing is written under a deleted experiment."""
        with self.db.write() as conn:
            row = self._fetch_experiment(conn, org_pk, experiment_id, for_update=True)
            experiment_pk = int(row[0])
            contents = self._experiment_contents(conn, experiment_pk)
            for table in _EXPERIMENT_PARTS:
                conn.execute(delete(table).where(table.c.experiment == experiment_pk))
            conn.execute(delete(experiments).where(experiments.c.pk == experiment_pk))
            self._release_contents(conn, contents)  # the files no other experiment's artifact uses

    # ---- metrics -------------------------------------------------------------------------------------------
    def ingest_metrics(self, experiment_pk: int, experiment_id: str, batch: MetricBatchIn) -> Json:
        """Store a validated batch in one transaction, committed before this returns (so `sync=true` holds:
        every accepted point is readable through `list_metrics` as soon as the answer is sent).

        This is the hot path (`make bench` compares it with the bare driver inserting the same rows): the
        insert's rows are zipped from the batch's columns as the driver's executemany consumes them, the
        statement compiled once (`dialects.executemany`); the unique index on (experiment, client_event_id) finds
        the repeats while inserting, so a batch of new events costs one index probe each and nothing more.
        """
        _, received = now()
        with self.db.write() as conn:
            dialect = conn.dialect.name
            status = conn.execute(_EXPERIMENT_STATE_FOR_SHARE, {"experiment_pk": experiment_pk}).first()
            if status is None:
                raise NotFoundError("experiment", experiment_id)
            if status[0] in _TERMINAL:
                raise ExperimentClosedError(experiment_id, status[0])
            if status[1] is not None:
                raise ExperimentArchivedError(experiment_id)
            count = len(batch.names)
            points, autos = _points(dialect, dialects.reserve_seqs(conn, count), batch, received)
            # The upkeep's rows are worked out before the insert, while the batch's columns are still in the CPU's
            # caches (after it, the same work took about 1.3 ms more of a 10,000-event batch). They hold when every
            # point is new; when some were repeats, they are worked out again from the points stored.
            stats = batch_stats.batch_stats(int(status[2]), experiment_pk, points)
            rows = _point_rows(dialect, experiment_pk, points, autos, batch.client_event_ids)
            in_order = dialects.insert_order(dialect, rows, _ID_OF_ROW)
            inserted = dialects.executemany(conn, _insert_points, _POINT_COLUMNS, in_order)
            conflicts: list[Json] = []
            if inserted == count:
                accepted, duplicates = count, 0
            else:
                every = list(_point_rows(dialect, experiment_pk, points, autos, batch.client_event_ids))
                stored, duplicates, conflicts = self._sort_out_repeats(conn, experiment_pk, every)
                accepted = len(stored)
                if stored:
                    stats = batch_stats.batch_stats(int(status[2]), experiment_pk, _stored_points(stored))
            if accepted:
                self._upsert_stats(conn, stats)
        return {"accepted": accepted, "duplicates": duplicates, "conflicts": conflicts}

    @staticmethod
    def _sort_out_repeats(
        conn: Connection, experiment_pk: int, points: list[_PointRow]
    ) -> tuple[list[_PointRow], int, list[Json]]:
        """After an insert that skipped some rows: which rows were stored (the stored point has the `seq` this
        batch gave the row), which repeat a stored point exactly (duplicates) and which reuse its
        `client_event_id` with another payload (conflicts). The lookup probes the unique index once per id."""
        ids = [row[8] for row in points]
        # stored[client_event_id] = (seq, (name, step, value, the timestamp's instant or None, metadata)): the same
        # instant written another way (`.355Z`, `.355000+00:00`) is the same payload
        stored: dict[str, tuple[int, tuple[Any, ...]]] = {
            r[0]: (r[1], (r[2], r[3], r[4], None if r[6] else parse_timestamp(r[5]), r[7]))
            for r in conn.execute(dialects.points_by_client_event_id(conn.dialect.name, experiment_pk, ids))
        }
        accepted: list[_PointRow] = []
        duplicates = 0
        conflicts: list[Json] = []
        for index, row in enumerate(points):
            seq, payload = stored[row[8]]
            if seq == row[3]:
                accepted.append(row)
            elif payload == (row[1], row[2], row[4], None if row[6] else parse_timestamp(row[5]), row[7]):
                duplicates += 1
            else:
                conflicts.append(
                    {
                        "index": index,
                        "client_event_id": row[8],
                        "message": "client_event_id was already used with another payload",
                    }
                )
        return accepted, duplicates, conflicts

    @staticmethod
    def _upsert_stats(conn: Connection, stats: batch_stats.BatchStats) -> None:
        """The catalog (per name: count, first and last seen; per label value: count), the summaries (per name
        and label set, and per name for ordering) and the rollups of the accepted points, each one executemany
        of rows worked out in one grouping of the batch (`batch_stats`); every writer upserts the rows in key
        order, so two batches never deadlock on them."""
        dialects.executemany(conn, _upsert_series, _SERIES_COLUMNS, stats.series)
        dialects.executemany(conn, _upsert_summaries, _SUMMARY_COLUMNS, stats.summaries)
        dialects.executemany(conn, _upsert_per_name, _PER_NAME_COLUMNS, stats.per_name)
        if stats.labels:
            dialects.executemany(conn, _upsert_labels, _LABEL_COLUMNS, stats.labels)
        if stats.rollups:
            dialects.executemany(conn, _upsert_rollups, _ROLLUP_COLUMNS, stats.rollups)

    def list_metrics(
        self, org_pk: int, experiment_id: str, filters: Json, limit: int, after: Key | None
    ) -> Page:
        m = metric_points.c
        with self.db.read() as conn:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            found = list(
                conn.execute(
                    select(m.name, m.value, m.step, m.ts, m.metadata, m.client_event_id, m.seq)
                    .where(*_metric_point_range(conn.dialect.name, experiment_pk, filters, after))
                    .order_by(m.name, m.step, m.seq)
                    .limit(limit + 1)
                ).all()
            )
        more = len(found) > limit
        if more:
            del found[limit:]
        items = [
            {
                "name": r[0],
                "value": r[1],
                "step": None if r[2] < 0 else r[2],
                "timestamp": readable_timestamp(r[3]),
                "metadata": msgspec.Raw(r[4]),
                "client_event_id": r[5],
            }
            for r in found
        ]
        last = found[-1] if found else None
        return Page(items, (last[0], last[2], last[6]) if more and last else None)

    def get_experiment_summary(self, org_pk: int, experiment_id: str, name: str | None) -> Json:
        """The summaries ingestion keeps (one primary-key range of `metric_summaries`), by name, then labels."""
        s = metric_summaries.c
        with self.db.snapshot() as conn:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            query = select(
                s.name, s.labels, s.count, s.first_step, s.last_step, s.last_value, s.min_value, s.max_value,
                s.last_ts,
            ).where(s.experiment == experiment_pk)  # fmt: skip
            if name is not None:
                query = query.where(s.name == name)
            found = conn.execute(query.order_by(s.name, s.labels)).all()
        return {"experiment_id": experiment_id, "metrics": [rows.summary(r) for r in found]}

    def metric_series(self, org_pk: int, experiment_id: str, filters: Json) -> Json:
        """`getMetricSeries` (see `tally_server.storage.rollups`), read in one snapshot.

        First the points of the range's first `max_points` + 1 steps, a page at a time: if there are no more steps,
        one bucket per step (lossless). Otherwise the bucket width from the range's first and last steps, whole
        blocks of the coarsest level that fits it from `metric_rollups`, and raw points only for the steps of
        the range outside whole blocks (its ragged edges)."""
        m, r = metric_points.c, metric_rollups.c
        name, max_points = filters["name"], filters["max_points"]
        low = filters.get("min_step") or 0
        high = _MAX_STEP if filters.get("max_step") is None else filters["max_step"]
        with self.db.snapshot() as conn:
            dialect = conn.dialect.name
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            labels = _label_filter(dialect, m.metadata, filters)
            of_name = [m.experiment == experiment_pk, m.name == name, *labels]
            unstepped = conn.execute(
                select(func.count()).select_from(metric_points).where(*of_name, m.step == _NO_STEP)
            ).scalar_one()

            def raw(
                first: int, last: int, after: tuple[int, int] | None = None, limit: int | None = None
            ) -> Any:
                # from a page's last point on: one lower bound on (step, seq), as listMetrics pages
                lower = m.step >= first if after is None else tuple_(m.step, m.seq) > tuple_(*after)
                query = select(m.step, m.seq, m.value).where(*of_name, lower, m.step <= last)
                query = query.order_by(m.step, m.seq)
                return conn.execute(query if limit is None else query.limit(limit)).all()

            head: list[Any] = []
            steps = 0
            after: tuple[int, int] | None = None
            while steps <= max_points:
                page = raw(low, high, after, max_points + 1)
                for point in page:
                    if not head or point[0] != head[-1][0]:
                        steps += 1
                    head.append(point)
                if len(page) <= max_points:
                    break
                after = (page[-1][0], page[-1][1])
            if steps <= max_points:
                buckets = rollups.Buckets(0)
                for point in head:
                    buckets.add_point(*point)
            else:
                last_step = conn.execute(
                    select(m.step)
                    .where(*of_name, m.step >= low, m.step <= high)
                    .order_by(m.step.desc(), m.seq.desc())
                    .limit(1)
                ).scalar_one()
                width = rollups.bucket_width(head[0][0], last_step, max_points)
                buckets = rollups.Buckets(width)
                level = rollups.level_for(width)
                whole = None
                if level is not None:
                    first_block, last_block = -((-low) >> level), ((high + 1) >> level) - 1
                    if first_block <= last_block:
                        whole = (first_block, last_block)
                if whole is None:
                    for point in raw(low, high):
                        buckets.add_point(*point)
                else:
                    assert level is not None
                    first_block, last_block = whole
                    if low < first_block << level:
                        for point in raw(low, (first_block << level) - 1):
                            buckets.add_point(*point)
                    if (last_block + 1) << level <= high:
                        for point in raw((last_block + 1) << level, high):
                            buckets.add_point(*point)
                    blocks = conn.execute(
                        select(
                            r.block, r.count, r.min, r.max, r.sum, r.first_step, r.first_seq, r.first_value,
                            r.last_step, r.last_seq, r.last_value,
                        ).where(
                            r.experiment == experiment_pk,
                            r.name == name,
                            r.level == level,
                            r.block >= first_block,
                            r.block <= last_block,
                            *_label_filter(dialect, r.metadata, filters),
                        )
                    )  # fmt: skip
                    for row in blocks:
                        buckets.add_block(level, row[0], row[1:])
        found = buckets.answer()
        return {
            "experiment_id": experiment_id,
            "name": name,
            "total_points": sum(bucket["count"] for bucket in found),
            "unstepped_points": unstepped,
            "buckets": found,
        }

    def compare_metrics(
        self, org_pk: int, series: Sequence[Json], min_step: int | None, max_step: int | None, limit: int
    ) -> Json:
        low = 0 if min_step is None else min_step
        high = (1 << 63) - 1 if max_step is None else max_step
        described: list[Json] = []
        columns: list[dict[int, float]] = []
        m = metric_points.c
        with self.db.snapshot() as conn:
            for selector in series:
                experiment_pk, _ = self._experiment_ref(conn, org_pk, selector["experiment_id"])
                labels: dict[str, str] = selector.get("metadata") or {}
                where = [
                    m.experiment == experiment_pk,
                    m.name == selector["name"],
                    m.step >= low,
                    m.step <= high,
                ]
                where += [
                    dialects.json_text(conn.dialect.name, m.metadata, key) == value
                    for key, value in sorted(labels.items())
                ]
                values: dict[int, float] = {}
                result = conn.execute(select(m.step, m.value).where(*where).order_by(m.step, m.seq))
                for step, value in result:
                    if step not in values and len(values) > limit:
                        break  # the first limit+1 steps of every series are enough to build the rows
                    values[step] = value  # ordered by ingestion within a step: the latest wins
                result.close()
                if len(values) > limit:
                    points = conn.execute(select(func.count(m.step.distinct())).where(*where)).scalar_one()
                else:
                    points = len(values)
                columns.append(values)
                described.append(
                    {
                        "experiment_id": selector["experiment_id"],
                        "name": selector["name"],
                        "metadata": labels,
                        "points": points,
                    }
                )
        steps = sorted(set().union(*columns))
        truncated = len(steps) > limit
        table = [{"step": step, "values": [column.get(step) for column in columns]} for step in steps[:limit]]
        return {"series": described, "rows": table, "truncated": truncated}

    def _experiment_scope(
        self, conn: Connection, org_pk: int, experiment_id: str | None, folder_id: str | None
    ) -> Callable[[Any], list[ColumnElement[bool]]]:
        """Conditions on a table's `experiment` column for the catalog's filters (404 for ids outside the
        organisation)."""
        dialect = conn.dialect.name
        experiment_pk = (
            None if experiment_id is None else self._experiment_ref(conn, org_pk, experiment_id)[0]
        )
        subtree = (
            None
            if folder_id is None
            else self._subtree(conn, org_pk, self._folder_pk(conn, org_pk, folder_id))
        )

        def scope(column: Any) -> list[ColumnElement[bool]]:
            clauses: list[ColumnElement[bool]] = []
            if experiment_pk is not None:
                clauses.append(column == experiment_pk)
            if subtree is not None:
                in_folders = dialects.ids_in(dialect, _e.c.folder, subtree, integers=True)
                clauses.append(column.in_(select(_e.c.pk).where(in_folders)))
            if not clauses:
                clauses.append(column.in_(select(_e.c.pk).where(_e.c.org == org_pk)))
            return clauses

        return scope

    def list_metric_catalog(
        self,
        org_pk: int,
        experiment_id: str | None,
        folder_id: str | None,
        name_prefix: str | None,
        limit: int,
        after: Key | None,
    ) -> Page:
        s, v = metric_series.c, metric_label_values.c
        with self.db.snapshot() as conn:
            scope = self._experiment_scope(conn, org_pk, experiment_id, folder_id)
            query = select(s.name).distinct().where(*scope(s.experiment))
            if name_prefix is not None:
                query = query.where(func.substr(s.name, 1, func.length(name_prefix)) == name_prefix)
            if after is not None:
                query = query.where(s.name > after[0])
            names = list(conn.execute(query.order_by(s.name).limit(limit + 1)).scalars())
            more = len(names) > limit
            names = names[:limit]
            if not names:
                return Page([], None)
            dialect = conn.dialect.name
            entries: dict[str, Json] = {}
            for name, count, first_us, first_ts, last_us, last_ts in conn.execute(
                select(s.name, s.count, s.first_us, s.first_ts, s.last_us, s.last_ts).where(
                    *scope(s.experiment), dialects.ids_in(dialect, s.name, names)
                )
            ):
                entry = entries.get(name)
                if entry is None:
                    entries[name] = {
                        "name": name, "count": count, "experiment_count": 1, "first": (first_us, first_ts),
                        "last": (last_us, last_ts),
                    }  # fmt: skip
                else:
                    entry["count"] += count
                    entry["experiment_count"] += 1
                    entry["first"] = min(entry["first"], (first_us, first_ts))
                    entry["last"] = max(entry["last"], (last_us, last_ts))
            keys: dict[str, list[str]] = {}
            for name, key in conn.execute(
                select(v.name, v.key)
                .distinct()
                .where(*scope(v.experiment), dialects.ids_in(dialect, v.name, names))
                .order_by(v.name, v.key)
            ):
                keys.setdefault(name, []).append(key)
        items = [
            {
                "name": name,
                "count": entries[name]["count"],
                "experiment_count": entries[name]["experiment_count"],
                "first_seen": readable_timestamp(entries[name]["first"][1]),
                "last_seen": readable_timestamp(entries[name]["last"][1]),
                "metadata_keys": keys.get(name, []),
            }
            for name in names
        ]
        return Page(items, (names[-1],) if more else None)

    def inspect_metric_values(
        self,
        org_pk: int,
        metric_name: str,
        metadata_key: str,
        experiment_id: str | None,
        folder_id: str | None,
        limit: int,
        after: Key | None,
    ) -> Page:
        v = metric_label_values.c
        with self.db.snapshot() as conn:
            scope = self._experiment_scope(conn, org_pk, experiment_id, folder_id)
            query = select(v.value, func.sum(v.count)).where(
                *scope(v.experiment), v.name == metric_name, v.key == metadata_key
            )
            if after is not None:
                query = query.where(v.value > after[0])
            found = conn.execute(query.group_by(v.value).order_by(v.value).limit(limit + 1)).all()
        return rows.page(found, limit, lambda r: {"value": r[0], "count": int(r[1])}, lambda r: (r[0],))

    # ---- ingestion keys ------------------------------------------------------------------------------------
    def list_ingestion_keys(self, org_pk: int, experiment_id: str, limit: int, after: Key | None) -> Page:
        with self.db.read() as conn:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            found = conn.execute(
                _KEY.where(
                    _k.c.experiment == experiment_pk,
                    _k.c.kind == "ingestion",
                    _k.c.pk > (after[0] if after else 0),
                )
                .order_by(_k.c.pk)
                .limit(limit + 1)
            ).all()
        return rows.page(found, limit, rows.ingestion_key, lambda r: (r[0],))

    def create_ingestion_key(
        self, org_pk: int, experiment_id: str, name: str | None, expires_in_seconds: int | None = None
    ) -> Json:
        us, stamp = now()
        token = new_token("tk_ing_")
        key_id = new_id("ik_")
        expires_us = None if expires_in_seconds is None else us + expires_in_seconds * 1_000_000
        with self.db.write() as conn:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id, held=True)
            conn.execute(
                api_keys.insert().values(
                    id=key_id, org=org_pk, kind="ingestion", experiment=experiment_pk, name=name,
                    token_hash=hash_token(token), token_hint=token[-4:], created_at=stamp, expires_us=expires_us,
                    expires_at=None if expires_us is None else format_us(expires_us),
                )
            )  # fmt: skip
            row = conn.execute(_KEY.where(_k.c.id == key_id)).one()
        return {**rows.ingestion_key(row), "token": token}

    def reissue_ingestion_token(self, org_pk: int, key_id: str) -> Json:
        """A new token for an ingestion key that is neither revoked nor expired (the old one stops working):
        how an idempotent replay of its creation answers, since the server never keeps a token."""
        us, _ = now()
        token = new_token("tk_ing_")
        k = api_keys.c
        with self.db.write() as conn:
            changed = conn.execute(
                update(api_keys)
                .values(token_hash=hash_token(token), token_hint=token[-4:])
                .where(
                    k.id == key_id, k.org == org_pk, k.kind == "ingestion", k.revoked_at.is_(None),
                    (k.expires_us.is_(None)) | (k.expires_us > us),
                )
            ).rowcount  # fmt: skip
            if not changed:
                raise ConflictError(
                    f"Ingestion key {key_id} was revoked or has expired since it was created; create a new one.",
                    {"key_id": key_id},
                )
            row = conn.execute(_KEY.where(_k.c.id == key_id)).one()
        return {**rows.ingestion_key(row), "token": token}

    def get_ingestion_key(self, org_pk: int, key_id: str) -> Json:
        """An ingestion key of the organisation (revoked and expired ones too), never its token (the server has
        only its hash)."""
        with self.db.read() as conn:
            row = conn.execute(
                _KEY.where(_k.c.id == key_id, _k.c.org == org_pk, _k.c.kind == "ingestion")
            ).first()
        if row is None:
            raise NotFoundError("ingestion key", key_id)
        return rows.ingestion_key(row)

    def revoke_ingestion_key(self, org_pk: int, key_id: str) -> Json:
        _, stamp = now()
        k = api_keys.c
        with self.db.write() as conn:
            conn.execute(
                update(api_keys)
                .values(revoked_at=stamp)
                .where(k.id == key_id, k.org == org_pk, k.kind == "ingestion", k.revoked_at.is_(None))
            )
            row = conn.execute(
                _KEY.where(_k.c.id == key_id, _k.c.org == org_pk, _k.c.kind == "ingestion")
            ).first()
        if row is None:
            raise NotFoundError("ingestion key", key_id)
        return rows.ingestion_key(row)

    # ---- annotations ---------------------------------------------------------------------------------------
    def list_annotations(self, org_pk: int, experiment_id: str, limit: int, after: Key | None) -> Page:
        with self.db.read() as conn:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            found = conn.execute(
                _ANNOTATION.where(_a.c.experiment == experiment_pk, _a.c.pk > (after[0] if after else 0))
                .order_by(_a.c.pk)
                .limit(limit + 1)
            ).all()
        return rows.page(found, limit, rows.annotation, lambda r: (r[0],))

    def create_annotation(self, experiment_pk: int, experiment_id: str, payload: Json) -> tuple[bool, Json]:
        """Create an annotation; an existing one with the same `client_event_id` and payload is answered as is
        (`created` False); with another payload, ConflictError."""
        _, stamp = now()
        step = payload.get("step")
        step = None if step is None else int(step)
        ts = payload.get("timestamp")
        metadata = payload.get("metadata") or {}
        client_event_id = payload["client_event_id"]
        with self.db.write() as conn:
            archived = conn.execute(_EXPERIMENT_STATE_FOR_SHARE, {"experiment_pk": experiment_pk}).first()
            if archived is None:  # deleted since the key was checked (deleteExperiment)
                raise NotFoundError("experiment", experiment_id)
            if archived[1] is not None:
                raise ExperimentArchivedError(experiment_id)
            row = conn.execute(
                _ANNOTATION.where(_a.c.experiment == experiment_pk, _a.c.client_event_id == client_event_id)
            ).first()
            if row is not None:
                stored = (row[3], row[4], None if row[9] else parse_timestamp(row[5]), json.loads(row[6]))
                if stored != (payload["text"], step, None if ts is None else parse_timestamp(ts), metadata):
                    raise ConflictError(
                        "client_event_id was already used with another payload.",
                        {"client_event_id": client_event_id, "annotation_id": row[1]},
                    )
                return False, rows.annotation(row)
            annotation_id = new_id("ann_")
            conn.execute(
                _INSERT_ANNOTATION,
                {
                    "id": annotation_id, "experiment": experiment_pk, "text": payload["text"], "step": step,
                    "ts": stamp if ts is None else ts, "ts_auto": ts is None, "metadata": rows.free_json(metadata),
                    "client_event_id": client_event_id, "created_at": stamp,
                },
            )  # fmt: skip
            row = conn.execute(_ANNOTATION.where(_a.c.id == annotation_id)).one()
        return True, rows.annotation(row)

    @staticmethod
    def _fetch_annotation(conn: Connection, experiment_pk: int, annotation_id: str) -> Sequence[Any]:
        row = conn.execute(
            _ANNOTATION.where(_a.c.id == annotation_id, _a.c.experiment == experiment_pk)
        ).first()
        if row is None:
            raise NotFoundError("annotation", annotation_id)
        return tuple(row)

    def get_annotation(self, org_pk: int, experiment_id: str, annotation_id: str) -> Json:
        with self.db.read() as conn:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            return rows.annotation(self._fetch_annotation(conn, experiment_pk, annotation_id))

    def update_annotation(self, org_pk: int, experiment_id: str, annotation_id: str, changes: Json) -> Json:
        """Text and metadata: absent keys stay as they are, metadata None clears it to {}. The id, step,
        timestamp and client_event_id stay, so a later create with that id and the old payload is a conflict."""
        values: Json = {}
        if "text" in changes:
            values["text"] = changes["text"]
        if "metadata" in changes:
            values["metadata"] = rows.free_json(changes["metadata"] or {})
        with self.db.write() as conn:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            changed = conn.execute(
                update(annotations)
                .values(values)
                .where(annotations.c.id == annotation_id, annotations.c.experiment == experiment_pk)
            ).rowcount
            if not changed:
                raise NotFoundError("annotation", annotation_id)
            return rows.annotation(self._fetch_annotation(conn, experiment_pk, annotation_id))

    def delete_annotation(self, org_pk: int, experiment_id: str, annotation_id: str) -> None:
        """The row goes, and with it the claim on its client_event_id (the unique constraint is on live rows):
        a later annotation with that id is a new one."""
        with self.db.write() as conn:
            experiment_pk, _ = self._experiment_ref(conn, org_pk, experiment_id)
            deleted = conn.execute(
                delete(annotations).where(
                    annotations.c.id == annotation_id, annotations.c.experiment == experiment_pk
                )
            ).rowcount
        if not deleted:
            raise NotFoundError("annotation", annotation_id)

    # ---- idempotency ---------------------------------------------------------------------------------------
    def idempotency_claim(
        self,
        org_pk: int,
        key: str,
        fingerprint: str,
        now_us: int,
        expire_before_us: int,
        stale_before_us: int,
    ) -> IdempotencyClaim:
        """See the module's docstring. With session locks (PostgreSQL) `stale_before_us` is not used: the lock
        says whether a holder lives."""
        if getattr(self._claim, "lock", None) is not None:  # a request that never finished its claim
            logger.warning("releasing an idempotency claim its request left behind")
            self._end_claim()
        if dialects.session_locks(self.db.dialect):
            return self._claim_with_lock(org_pk, key, fingerprint, now_us, expire_before_us)
        # A replay, a mismatch or a request still running is known from committed data: answer it without waiting
        # for SQLite's write lock, which the running request holds until its effect and answer commit.
        with self.db.read() as conn:
            row = conn.execute(_IDEMPOTENCY_ROW, {"org_pk": org_pk, "claim_key": key}).first()
        if row is not None and row[5] >= expire_before_us:
            if row[0] != fingerprint:
                return IdempotencyClaim("mismatch")
            if row[1] == "done":
                return IdempotencyClaim("done", int(row[2]), bytes(row[3]), json.loads(row[4] or "{}"))
            if row[5] >= stale_before_us:
                return IdempotencyClaim("running")
        with self.db.write() as conn:
            return self._claim_row(
                conn, org_pk, key, fingerprint, now_us, expire_before_us, stale_before_us, None
            )

    def _claim_with_lock(
        self, org_pk: int, key: str, fingerprint: str, now_us: int, expire_before_us: int
    ) -> IdempotencyClaim:
        """PostgreSQL: pin a session, take the claim's advisory lock on it, then claim the row; the session and
        its lock stay with this thread when claimed, until `_end_claim`."""
        lock = dialects.claim_lock_key(org_pk, key)
        db: Any = self.db
        conn = db.pin()
        held = False
        try:
            held = dialects.try_claim_lock(conn, lock)
            with self.db.write() as tx:  # on the pinned connection
                claim = self._claim_row(tx, org_pk, key, fingerprint, now_us, expire_before_us, 0, held)
        except BaseException:
            db.unpin(_unlocker(lock if held else None))
            raise
        if claim.state == "claimed":
            self._claim.lock = lock  # held until the answer or the release is committed
        else:
            db.unpin(_unlocker(lock if held else None))
        return claim

    @staticmethod
    def _claim_row(
        conn: Connection,
        org_pk: int,
        key: str,
        fingerprint: str,
        now_us: int,
        expire_before_us: int,
        stale_before_us: int,
        held: bool | None,
    ) -> IdempotencyClaim:
        """Claim the key's row in a write transaction. `held`: whether this session holds the key's lock (None:
        no session locks, a 'running' row older than `stale_before_us` is taken over)."""
        which = {"org_pk": org_pk, "claim_key": key}
        row = conn.execute(_IDEMPOTENCY_ROW, which).first()
        if row is not None and row[5] < expire_before_us and held is not False:
            conn.execute(_IDEMPOTENCY_EXPIRE, {**which, "expire_before_us": expire_before_us})
            row = None
        if row is None:
            if held is False:  # its holder is about to insert it, or just finished
                return IdempotencyClaim("running")
            inserted = conn.execute(
                _claim_insert(conn.dialect.name),
                {
                    "org": org_pk,
                    "key": key,
                    "fingerprint": fingerprint,
                    "state": "running",
                    "created_us": now_us,
                },
            ).rowcount
            return IdempotencyClaim("claimed" if inserted else "running")
        if row[0] != fingerprint:
            return IdempotencyClaim("mismatch")
        if row[1] == "done":
            return IdempotencyClaim("done", int(row[2]), bytes(row[3]), json.loads(row[4] or "{}"))
        if held or (held is None and row[5] < stale_before_us):
            # Its holder's session is gone (PostgreSQL), or its process died long ago (SQLite): run it again.
            taken = conn.execute(_IDEMPOTENCY_TAKE_OVER, {**which, "now_us": now_us}).rowcount
            if taken and held:
                logger.warning(
                    "took over an idempotency claim whose holder's database session ended (org %s)", org_pk
                )
            return IdempotencyClaim("claimed" if taken else "running")
        return IdempotencyClaim("running")

    def idempotency_complete(
        self, org_pk: int, key: str, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        """Record the answer; a claim's lock is dropped once that is committed (with the effect, inside
        `atomic()`)."""
        with self.db.write() as conn:
            conn.execute(
                _IDEMPOTENCY_DONE,
                {
                    "org_pk": org_pk, "claim_key": key, "answer_status": status, "answer_body": body,
                    "answer_headers": json.dumps(headers),
                },
            )  # fmt: skip
        self._end_claim()

    def idempotency_release(self, org_pk: int, key: str) -> None:
        """Delete the 'running' row, then drop the lock; the lock goes even when the delete fails (a session
        that is gone took it already, and a live one must not keep it)."""
        try:
            with self.db.write() as conn:
                conn.execute(_IDEMPOTENCY_RELEASE, {"org_pk": org_pk, "claim_key": key})
        finally:
            self._end_claim()

    def idempotency_purge(self, expire_before_us: int) -> int:
        with self.db.write() as conn:
            return int(
                conn.execute(delete(idempotency_keys).where(_i.c.created_us < expire_before_us)).rowcount
            )

    def _end_claim(self) -> None:
        """Unlock and unpin, now or (inside `atomic()`) once its transaction commits; if that transaction rolls
        back instead, the claim stays held for the release that follows."""
        lock: int | None = getattr(self._claim, "lock", None)
        if lock is None:
            return

        def unlock(conn: Connection) -> None:
            self._claim.lock = None
            _unlocker(lock)(conn)

        db: Any = self.db
        db.unpin(unlock)


def _unlocker(lock: int | None) -> Callable[[Connection], None]:
    def unlock(conn: Connection) -> None:
        if lock is not None:
            dialects.release_claim_lock(conn, lock)

    return unlock


def open_sqlite(path: str | os.PathLike[str] | None, *, fsync: bool = True) -> SqlRepository:
    from tally_server.storage.database import Database

    return SqlRepository(Database(path, fsync=fsync))


def open_postgres(url: str, *, max_connections: int = 16) -> SqlRepository:
    from tally_server.storage.pg_database import PgDatabase  # needs the server extra's psycopg

    return SqlRepository(PgDatabase(url, max_connections=max_connections))

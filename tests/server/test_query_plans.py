"""The cost of a request must not grow with what is already stored: every statement the server runs on the ingest
path, and on the list and catalog paths, is planned on an index.

The statements are not listed here by hand: the test records every statement the SQLite backend executes while it
serves each path (the driver connections' trace callback, under SQLAlchemy), then asks SQLite for each one's
`EXPLAIN QUERY PLAN`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tally_server.ingest_batch import IngestBatch, from_validated
from tally_server.storage.repository import FolderNotEmptyError
from tally_server.storage.store import SqlRepository, open_sqlite

_TABLE_SCAN = re.compile(r"^SCAN (?!CONSTANT ROW)(?!json_each|j\b)(\w+)")


@pytest.fixture
def repo() -> Iterator[SqlRepository]:
    repository = open_sqlite(None)
    yield repository
    repository.close()


def _event(i: int, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "name": "train/loss",
        "value": float(i),
        "step": i,
        "metadata": {"split": "train"},
        "client_event_id": f"c{i}",
    }
    return {**event, **changes}


def _batch(events: list[dict[str, Any]]) -> IngestBatch:
    return from_validated({"events": events})


def _seeded(repo: SqlRepository) -> dict[str, Any]:
    repo.bootstrap(None, mint_if_existing=False)
    folder = repo.create_folder(1, "team", None, None, {})
    child = repo.create_folder(1, "sub", folder["id"], None, {})
    experiment = repo.create_experiment(1, "run", child["id"], None, {}, ["seeded", "other"])
    experiment_pk, _ = repo.experiment_ref(1, experiment["id"])
    for i in range(50):  # experiments with and without the tag, some archived, so a scan would show
        extra = repo.create_experiment(1, f"x{i}", None, None, {}, ["seeded"] if i % 2 else [f"t{i}"])
        if i % 3 == 0:
            repo.set_experiment_archived(1, extra["id"], True)
    repo.set_folder_archived(1, repo.create_folder(1, "old", None, None, {})["id"], True)
    for start in range(0, 6000, 2000):
        repo.ingest_metrics(
            experiment_pk, experiment["id"], _batch([_event(i) for i in range(start, start + 2000)])
        )
    return {
        "folder": folder["id"],
        "experiment": experiment["id"],
        "experiment_pk": experiment_pk,
        "tagged_pk": experiment_pk,
    }


def _plans(repo: SqlRepository, action: Callable[[], object]) -> list[tuple[str, list[str]]]:
    """Every statement `action` makes the repository execute, with its query plan."""
    statements: list[str] = []
    db: Any = repo.db
    connections = [db._writer.connection.driver_connection, db._reader().connection.driver_connection]
    for conn in connections:
        conn.set_trace_callback(statements.append)
    try:
        action()
    finally:
        for conn in connections:
            conn.set_trace_callback(None)
    planned: dict[str, list[str]] = {}
    reader = connections[1]
    for statement in statements:
        verb = statement.split(None, 1)[0].upper()
        if verb in {"BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "SAVEPOINT", "RELEASE"} or statement in planned:
            continue
        try:
            planned[statement] = [row[3] for row in reader.execute("EXPLAIN QUERY PLAN " + statement)]
        except sqlite3.Error as exc:  # pragma: no cover - would mean the recorded text is not runnable
            raise AssertionError(f"cannot explain {statement[:200]!r}: {exc}") from exc
    assert planned, "no statement was recorded"
    return list(planned.items())


def _problems(plans: list[tuple[str, list[str]]], *, strict_points: bool) -> list[str]:
    """What makes a statement's cost grow with the stored data: a full scan of a table, an index built on every
    call, sorting the matching points; and, where `strict_points`, reading every point of the experiment (a
    search of metric_points on the experiment alone)."""
    problems = []
    for statement, plan in plans:
        about_points = "metric_points" in statement
        for step in plan:
            scan = _TABLE_SCAN.match(step)
            if scan is not None and scan.group(1) not in re.findall(r"WITH RECURSIVE (\w+)", statement):
                problems.append(f"full scan of {scan.group(1)}: {step} in {statement[:160]}")
            if "AUTOMATIC" in step:
                problems.append(f"an index built on every call: {step} in {statement[:160]}")
            if about_points and "TEMP B-TREE" in step:
                problems.append(f"sorts the matching points: {step} in {statement[:160]}")
            if about_points and strict_points and step.endswith("(experiment=?)"):
                problems.append(f"reads every point of the experiment: {step} in {statement[:160]}")
    return problems


def test_every_statement_of_an_ingest_uses_an_index(repo: SqlRepository) -> None:
    seeded = _seeded(repo)
    # New events, exact repeats (duplicates), a changed repeat (a conflict) and a repeat inside the batch: the
    # slow path that sorts out repeats runs too.
    batch = _batch([_event(i) for i in range(5990, 6010)] + [_event(7, value=-1.0), _event(6005)])

    def ingest() -> object:
        return repo.ingest_metrics(seeded["experiment_pk"], seeded["experiment"], batch)

    plans = _plans(repo, ingest)
    assert any("metric_points" in statement for statement, _ in plans)
    assert _problems(plans, strict_points=True) == []


def test_the_duplicate_lookup_probes_the_client_event_id_index(repo: SqlRepository) -> None:
    seeded = _seeded(repo)
    plans = _plans(
        repo, lambda: repo.ingest_metrics(seeded["experiment_pk"], seeded["experiment"], _batch([_event(3)]))
    )
    lookups = [
        plan for statement, plan in plans if statement.startswith("SELECT") and "metric_points" in statement
    ]
    assert lookups, "a batch of one repeat must look its stored twin up"
    assert all(any("metric_points_by_client_event_id" in step for step in plan) for plan in lookups), lookups


@pytest.mark.parametrize(
    "read",
    [
        "list by name, from a cursor deep into the series",
        "list by name and step range, from a cursor",
        "list everything, from a cursor",
        "list by name, series from rollups with ragged edges",
        "list by name, series lossless zoom and filtered",
        "compare",
        "catalog of the organisation",
        "catalog of a folder tree",
        "values of a metadata key",
        "experiments, folders, keys and annotations",
        "experiments by tag, archived left out or included",
        "folders, archived left out or included",
        "experiment summary, whole or of one name",
    ],
)
def test_list_and_catalog_reads_use_an_index(repo: SqlRepository, read: str) -> None:
    seeded = _seeded(repo)
    experiment = seeded["experiment"]
    deep = ("train/loss", 4000, 4001)
    reads: dict[str, Callable[[], object]] = {
        "list by name, from a cursor deep into the series": lambda: repo.list_metrics(
            1, experiment, {"name": "train/loss"}, 100, deep
        ),
        "list by name and step range, from a cursor": lambda: repo.list_metrics(
            1, experiment, {"name": "train/loss", "min_step": 10, "max_step": 5000}, 100, deep
        ),
        "list everything, from a cursor": lambda: repo.list_metrics(1, experiment, {}, 100, deep),
        "list by name, series from rollups with ragged edges": lambda: repo.metric_series(
            1, experiment, {"name": "train/loss", "max_points": 100, "min_step": 7, "max_step": 5990}
        ),
        "list by name, series lossless zoom and filtered": lambda: repo.metric_series(
            1,
            experiment,
            {
                "name": "train/loss",
                "max_points": 100,
                "min_step": 4000,
                "max_step": 4050,
                "metadata_key": "split",
            },
        ),
        "compare": lambda: repo.compare_metrics(
            1,
            [{"experiment_id": experiment, "name": "train/loss", "metadata": {"split": "train"}}],
            0,
            99,
            10,
        ),
        "catalog of the organisation": lambda: repo.list_metric_catalog(1, None, None, "train", 10, None),
        "catalog of a folder tree": lambda: repo.list_metric_catalog(
            1, None, seeded["folder"], None, 10, None
        ),
        "values of a metadata key": lambda: repo.inspect_metric_values(
            1, "train/loss", "split", experiment, None, 10, None
        ),
        "experiments, folders, keys and annotations": lambda: (
            repo.list_experiments(1, {"status": "running", "folder_id": seeded["folder"]}, 10, None),
            repo.list_folders(1, seeded["folder"], 10, None),
            repo.list_ingestion_keys(1, experiment, 10, None),
            repo.list_annotations(1, experiment, 10, None),
        ),
        "experiments by tag, archived left out or included": lambda: (
            repo.list_experiments(1, {"tag": "seeded"}, 10, None),
            repo.list_experiments(1, {"tag": "seeded", "include_archived": True}, 10, (seeded["tagged_pk"],)),
            repo.list_experiments(
                1, {"tag": "seeded", "status": "running", "folder_id": seeded["folder"]}, 10, None
            ),
            repo.list_experiments(1, {"include_archived": True}, 10, None),
        ),
        "experiment summary, whole or of one name": lambda: (
            repo.get_experiment_summary(1, experiment, None),
            repo.get_experiment_summary(1, experiment, "train/loss"),
        ),
        "folders, archived left out or included": lambda: (
            repo.list_folders(1, None, 10, None),
            repo.list_folders(1, seeded["folder"], 10, None, include_archived=True),
        ),
    }
    plans = _plans(repo, reads[read])
    assert _problems(plans, strict_points=read.startswith("list by name")) == []
    if read.startswith("experiments by tag"):  # one range of the tag index, in page order: no sort, no filter
        tagged = [plan for statement, plan in plans if "FROM experiment_tags" in statement]
        assert tagged
        for plan in tagged:
            assert plan[0] == "SEARCH t USING PRIMARY KEY (org=? AND tag=? AND experiment>?)", plan
            assert not any("TEMP B-TREE" in step for step in plan), plan
    if read.startswith("experiment summary"):  # one range of the primary key, already in answer order
        summaries = [plan for statement, plan in plans if "FROM metric_summaries" in statement]
        assert len(summaries) == 2
        for plan in summaries:
            assert plan[0].startswith("SEARCH metric_summaries USING PRIMARY KEY (experiment=?"), plan
            assert not any("TEMP B-TREE" in step for step in plan), plan
    if read.startswith("list by name") and "series" not in read:
        # a page walk starts each page at its cursor, not at the first step
        searches = [step for statement, plan in plans if "FROM metric_points" in statement for step in plan]
        assert searches
        assert all("(step,seq)>(?,?)" in step for step in searches), searches
    if "series" in read:  # a series reads points and rollup blocks by name and step / block range
        searches = [step for _, plan in plans for step in plan if "metric_" in step]
        assert all("name=?" in step and ("step" in step or "block" in step) for step in searches), searches
        rollups = [step for statement, plan in plans if "FROM metric_rollups" in statement for step in plan]
        assert bool(rollups) is ("ragged" in read), rollups


def test_lifecycle_writes_use_an_index(repo: SqlRepository) -> None:
    """updateExperiment (tags rewritten), archive / unarchive, annotation creation on a checked experiment and
    deleteAnnotation: every statement is planned on an index."""
    seeded = _seeded(repo)
    experiment = seeded["experiment"]
    _, annotation = repo.create_annotation(
        seeded["experiment_pk"], experiment, {"text": "t", "client_event_id": "a1"}
    )

    def writes() -> object:
        repo.update_experiment(1, experiment, {"name": "n", "tags": ["other", "new"], "metadata": None})
        repo.set_experiment_archived(1, experiment, True)
        repo.set_experiment_archived(1, experiment, False)
        repo.set_folder_archived(1, seeded["folder"], True)
        repo.set_folder_archived(1, seeded["folder"], False)
        repo.create_annotation(seeded["experiment_pk"], experiment, {"text": "u", "client_event_id": "a2"})
        return repo.delete_annotation(1, experiment, annotation["id"])

    plans = _plans(repo, writes)
    assert any("experiment_tags" in statement for statement, _ in plans)
    assert _problems(plans, strict_points=False) == []


def test_deletes_and_single_reads_use_an_index(repo: SqlRepository) -> None:
    """deleteExperiment (every table that refers to it), deleteFolder (the not-empty check and the delete),
    getAnnotation, updateAnnotation and getIngestionKey: every statement is planned on an index, so deleting one
    experiment costs what it holds, never what the others hold."""
    seeded = _seeded(repo)
    experiment = seeded["experiment"]
    repo.update_experiment(1, experiment, {"metadata": {"lr": 0.1, "opt": {"name": "adam"}}})
    _, annotation = repo.create_annotation(
        seeded["experiment_pk"], experiment, {"text": "t", "client_event_id": "a1"}
    )
    key = repo.create_ingestion_key(1, experiment, "k")
    empty = repo.create_folder(1, "empty", None, None, {})

    def writes() -> object:
        repo.get_annotation(1, experiment, annotation["id"])
        repo.update_annotation(1, experiment, annotation["id"], {"text": "u", "metadata": None})
        repo.get_ingestion_key(1, key["id"])
        with pytest.raises(FolderNotEmptyError):
            repo.delete_folder(1, seeded["folder"])
        repo.delete_folder(1, empty["id"])
        return repo.delete_experiment(1, experiment)

    plans = _plans(repo, writes)
    deleted = {match for statement, _ in plans for match in re.findall(r"^DELETE FROM (\w+)", statement)}
    assert {"metric_points", "experiment_tags", "experiment_metadata", "api_keys", "folders"} <= deleted
    assert _problems(plans, strict_points=False) == []


# ---- listExperiments in every order, at 10,000 experiments, on both backends -----------------------------------
_MANY = 10_000


def _seed_many(repo: SqlRepository) -> None:
    """10,000 experiments of organisation 1 (names repeating, every third archived, a tag on every fifth), 80%
    with `val/loss` in experiment_metrics and every other one with `other`: written straight into the tables
    (the plans are the point, not the ingest), then ANALYZEd so the planners know the sizes."""
    from tally_server.storage.schema import (
        experiment_metadata,
        experiment_metrics,
        experiment_tags,
        experiments,
    )

    repo.bootstrap(None, mint_if_existing=False)
    stamp = "2026-01-01T00:00:00Z"
    with repo.db.write() as conn:
        first = int(conn.execute(select(func.coalesce(func.max(experiments.c.pk), 0))).scalar_one()) + 1
        pks = range(first, first + _MANY)
        conn.execute(
            experiments.insert(),
            [
                {
                    "pk": pk, "id": f"exp_many{pk}", "org": 1, "folder": None, "name": f"run-{pk % 977:04d}",
                    "description": None, "metadata": "{}", "status": "running", "created_us": pk,
                    "created_at": stamp, "updated_at": stamp, "tags": "[]",
                    "archived_at": stamp if pk % 3 == 0 else None,
                }
                for pk in pks
            ],
        )  # fmt: skip
        conn.execute(
            experiment_tags.insert(), [{"org": 1, "tag": "t", "experiment": pk} for pk in pks if pk % 5 == 0]
        )
        metrics = [
            {
                "org": 1, "experiment": pk, "name": name, "last_step": 10, "last_seq": pk,
                "last_value": (pk * 7919) % 1000 / 7, "min_value": (pk * 104729) % 1000 / 9,
                "max_value": (pk * 1299709) % 1000 / 3,
            }
            for pk in pks
            for name in ("val/loss", "other")
            if (name == "val/loss" and pk % 5 != 1) or (name == "other" and pk % 2 == 0)
        ]  # fmt: skip
        conn.execute(experiment_metrics.insert(), metrics)
        conn.execute(
            experiment_metadata.insert(),
            [
                row
                for pk in pks
                for row in (
                    {"org": 1, "path": "lr", "experiment": pk, "kind": "number", "number": pk % 10 / 1000, "text": ""},
                    {"org": 1, "path": "optim", "experiment": pk, "kind": "object", "number": None, "text": ""},
                    {"org": 1, "path": "optim.name", "experiment": pk, "kind": "string", "number": None,
                     "text": ("adam", "sgd", "lion")[pk % 3]},
                )
            ],
        )  # fmt: skip
        conn.execute(text("ANALYZE"))


def _order_statements(dialect: str) -> list[tuple[str, str, Any]]:
    """(order, what, statement) for each order, with and without a cursor and the usual filters."""
    from tally_server.ordering import parse_order
    from tally_server.storage import store

    found = []
    archived = [store._e.c.archived_at.is_(None)]
    wanted: list[Any] = [
        ("lr", ("number", 0.003, "")),
        ("optim.name", ("string", None, "adam")),
        ("optim", None),
    ]
    for metadata in wanted:  # the metadata filter: a range of its index by creation, a probe in other orders
        for text_ in ("created_at", "-created_at", "name", "-metric:val/loss:min"):
            order = parse_order(text_)
            what = f"metadata={metadata}"
            if order.by == "metric":
                found.append(
                    (text_, what, store._experiments_by_metric(1, order, None, archived, None, metadata))
                )
                found.append(
                    (
                        text_,
                        "without",
                        store._experiments_without_metric(1, order, None, archived, 0, metadata),
                    )
                )
            else:
                found.append(
                    (text_, what, store._experiments_in_order(1, order, None, archived, None, metadata))
                )
                found.append(
                    (
                        text_,
                        what + " tag",
                        store._experiments_in_order(1, order, "t", archived, None, metadata),
                    )
                )
    for text_ in ("created_at", "-created_at", "name", "-name"):
        order = parse_order(text_)
        cursor = (5000,) if order.by == "created_at" else ("run-0500", 5000)
        for tag in (None, "t"):
            for after in (None, cursor):
                found.append(
                    (
                        text_,
                        f"tag={tag} after={after}",
                        store._experiments_in_order(1, order, tag, archived, after),
                    )
                )
    for value in ("last", "min", "max"):
        for sign in ("", "-"):
            order = parse_order(f"{sign}metric:val/loss:{value}")
            for after in (None, (0, 50.0, 5000)):
                found.append(
                    (
                        order.text,
                        f"with, after={after}",
                        store._experiments_by_metric(1, order, None, archived, after),
                    )
                )
            found.append(
                (order.text, "with, tag", store._experiments_by_metric(1, order, "t", archived, None))
            )
            found.append(
                (order.text, "without", store._experiments_without_metric(1, order, None, archived, 5000))
            )
    return [(o, w, s.limit(101)) for o, w, s in found]


def _literal_sql(statement: Any, dialect: Any) -> str:
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def test_every_experiment_order_uses_an_index_at_10000_experiments_on_sqlite(repo: SqlRepository) -> None:
    """Each order's statements read one index range in the order asked for: no full scan, no sort, no index
    built per call (EXPLAIN QUERY PLAN)."""
    _seed_many(repo)
    from sqlalchemy.dialects import sqlite

    db: Any = repo.db
    reader = db._reader().connection.driver_connection
    for order, what, statement in _order_statements("sqlite"):
        sql = _literal_sql(statement, sqlite.dialect())
        plan = [row[3] for row in reader.execute("EXPLAIN QUERY PLAN " + sql)]
        problems = [
            step for step in plan if _TABLE_SCAN.match(step) or "TEMP B-TREE" in step or "AUTOMATIC" in step
        ]
        assert problems == [], (order, what, plan)
        first = plan[0]
        if order.lstrip("-").startswith("metric:") and what != "without":
            value = order.rsplit(":", 1)[1]
            assert f"INDEX experiment_metrics_by_{value} (org=? AND name=?" in first, (
                order,
                what,
                plan,
            )
        elif order.lstrip("-") == "name":
            assert "experiments_by_name (org=?" in first, (order, what, plan)
        elif what.startswith("metadata=") and not what.endswith("tag"):  # by creation, one range of its index
            assert first.startswith("SEARCH experiment_metadata USING"), (order, what, plan)
            assert "(org=? AND path=?" in first, (order, what, plan)


def test_every_experiment_order_uses_an_index_at_10000_experiments_on_postgresql(
    postgres: Any,
) -> None:
    """The same statements on PostgreSQL (EXPLAIN): index scans in the order asked for, no sequential scan of
    experiments or experiment_metrics, no sort."""
    from sqlalchemy.dialects import postgresql

    from tally_server.storage.store import open_postgres

    repository = open_postgres(postgres.create_database("orders"))
    try:
        _seed_many(repository)
        with repository.db.read() as conn:
            for order, what, statement in _order_statements("postgresql"):
                sql = _literal_sql(statement, postgresql.dialect())
                plan = "\n".join(row[0] for row in conn.execute(text("EXPLAIN " + sql.replace("%", "%%"))))
                # (folders is empty here: its sequential scan costs nothing)
                assert (
                    re.search(r"Seq Scan on (experiments|experiment_metrics|experiment_tags)\b", plan) is None
                ), (order, what, plan)
                assert "Sort" not in plan, (order, what, plan)
                if order.lstrip("-").startswith("metric:") and what != "without":
                    assert f"experiment_metrics_by_{order.rsplit(':', 1)[1]}" in plan, (order, what, plan)
                elif order.lstrip("-") == "name":
                    assert "experiments_by_name" in plan, (order, what, plan)
    finally:
        repository.close()


def test_series_reads_use_an_index_on_postgresql(postgres: Any) -> None:
    """getMetricSeries on PostgreSQL (EXPLAIN of the statements it runs, with the planner told to avoid sequential
    scans, so a table this small cannot hide a missing index): the points and the rollup blocks are read through
    their primary keys by name and step or block range, never by a sequential scan or a sort."""
    from sqlalchemy import event

    from tally_server.storage.store import open_postgres

    repository = open_postgres(postgres.create_database("series_plans"))
    try:
        seeded = _seeded(repository)
        recorded: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")) and not many:
                recorded.append((statement, parameters))

        engine = repository.db.engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", record)
        try:
            for filters in (
                {
                    "name": "train/loss",
                    "max_points": 100,
                    "min_step": 7,
                    "max_step": 5990,
                },  # rollups, ragged edges
                {
                    "name": "train/loss",
                    "max_points": 100,
                    "min_step": 4000,
                    "max_step": 4050,
                },  # lossless zoom
            ):
                repository.metric_series(1, seeded["experiment"], filters)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        about_points = [(s, p) for s, p in recorded if "metric_points" in s or "metric_rollups" in s]
        assert about_points, "no statement read the points or their rollups"
        with repository.db.read() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            for statement, parameters in about_points:
                plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
                assert re.search(r"Seq Scan on metric_(points|rollups)\b", plan) is None, (statement, plan)
                assert re.search(r"Index (Only )?Scan", plan), (statement, plan)
                assert "Sort" not in plan, (statement, plan)
            conn.exec_driver_sql("RESET enable_seqscan")
    finally:
        repository.close()


def _group_many(repo: SqlRepository) -> None:
    """The 10,000 experiments of `_seed_many`, half of them in 500 groups of ten (`job-<n>`: a job's ranks)."""
    from sqlalchemy import Text, cast, literal, update

    from tally_server.storage.schema import experiments

    _seed_many(repo)
    with repo.db.write() as conn:
        conn.execute(
            update(experiments)
            .where(experiments.c.pk % 2 == 0)
            .values(run_group=literal("job-", Text) + cast(experiments.c.pk % 1000, Text))
        )
        conn.execute(text("ANALYZE"))


_GROUP_READS: list[dict[str, Any]] = [
    {"group": "job-42"},
    {"group": "job-42", "include_archived": True},
    {"group": "job-42", "status": "running", "name_prefix": "run-"},
]


def test_the_group_filter_reads_one_range_of_its_index_at_10000_experiments_on_sqlite(
    repo: SqlRepository,
) -> None:
    """listExperiments?group= (a job's ranks): one range of experiments_by_group (org, run_group, pk) in page
    order, from the cursor on; no full scan, no sort, whatever the number of other experiments."""
    _group_many(repo)
    for filters in _GROUP_READS:
        for after in (None, (5000,)):
            plans = _plans(repo, lambda: repo.list_experiments(1, filters, 10, after))  # noqa: B023
            assert _problems(plans, strict_points=False) == []
            listed = [plan for statement, plan in plans if "FROM experiments" in statement]
            assert listed, plans
            for plan in listed:
                assert "experiments_by_group (org=? AND run_group=? AND pk>?)" in plan[0], (filters, plan)
                assert not any("TEMP B-TREE" in step for step in plan), (filters, plan)
    found = list(repo.list_experiments(1, {"group": "job-42", "include_archived": True}, 100, None).items)
    assert len(found) == 10
    assert {item["group"] for item in found} == {"job-42"}


def test_the_group_filter_reads_its_index_at_10000_experiments_on_postgresql(postgres: Any) -> None:
    """The same reads on PostgreSQL (EXPLAIN of the statements they run): an index scan of experiments_by_group,
    no sequential scan of experiments, no sort."""
    from sqlalchemy import event

    from tally_server.storage.store import open_postgres

    repository = open_postgres(postgres.create_database("group_plans"))
    try:
        _group_many(repository)
        recorded: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            if "FROM experiments" in statement and not many:
                recorded.append((statement, parameters))

        engine = repository.db.engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", record)
        try:
            for filters in _GROUP_READS:
                for after in (None, (5000,)):
                    repository.list_experiments(1, filters, 10, after)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert recorded
        with repository.db.read() as conn:
            for statement, parameters in recorded:
                plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
                assert "experiments_by_group" in plan, (statement, plan)
                assert re.search(r"Seq Scan on experiments\b", plan) is None, (statement, plan)
                assert "Sort" not in plan, (statement, plan)
    finally:
        repository.close()


def test_artifact_statements_use_an_index(repo: SqlRepository, tmp_path: Any) -> None:
    """uploadArtifact, listArtifacts, getArtifact, deleteArtifact (with its "is this content still used?"
    check) and deleteExperiment's artifacts: every statement on an index, among other experiments' artifacts."""
    from tally_server.contents import ContentStore

    seeded = _seeded(repo)
    experiment = seeded["experiment"]
    repo.contents = ContentStore(tmp_path)

    def staged(data: bytes) -> Any:
        upload = repo.contents.stage()  # type: ignore[union-attr]
        upload.write([data])
        upload.finish()
        return upload

    other = repo.create_experiment(1, "other", None, None, {}, [])["id"]
    for i in range(30):  # a scan would show
        repo.create_artifact(1, other, f"o{i}", staged(f"other {i}".encode()))

    def calls() -> object:
        made = repo.create_artifact(1, experiment, "ckpt", staged(b"weights"))
        repo.create_artifact(1, experiment, "copy", staged(b"weights"))
        repo.list_artifacts(1, experiment, 10, None)
        repo.get_artifact(1, experiment, made["id"])
        repo.delete_artifact(1, experiment, made["id"])
        return repo.delete_experiment(1, experiment)

    plans = _plans(repo, calls)
    assert any("FROM artifacts" in statement for statement, _ in plans)
    assert _problems(plans, strict_points=False) == []

"""One Alembic history for both backends (tally_server.storage.migrate): a database made by the release before
Alembic upgrades in place with every row kept, a new database gets exactly that release's schema, a newer schema
is refused in one line, and servers starting at once migrate once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tally_server import start_server
from tally_server.storage.migrate import SchemaTooNewError, head, revisions, upgrade_url

from .conftest import BACKENDS
from .legacy_data import IDEMPOTENT_BODY, KEY, metric_events, snapshot
from .legacy_release import extract_legacy_tree, make_legacy_database
from .postgres_cluster import PostgresCluster
from .schema_catalog import schema_of
from .summaries import expected_summary, stored_points, summary
from .test_metric_series import check_exact


def _new_db(backend: str, request: pytest.FixtureRequest, directory: Path, name: str) -> str:
    if backend == "sqlite":
        return str(directory / f"{name}.sqlite3")
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database(name)


def _execute(db: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """One statement (`?` for parameters) on either backend, committed."""
    if db.startswith("postgresql://"):
        with psycopg.connect(db, autocommit=True) as pg:
            cur = pg.execute(sql.replace("?", "%s"), params)  # constant SQL of the tests
            return cur.fetchall() if cur.description else []
    conn = sqlite3.connect(db)
    try:
        with conn:
            return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def legacy_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract_legacy_tree(tmp_path_factory.mktemp("legacy-release"))


@pytest.fixture(scope="module", params=BACKENDS)
def legacy_db(
    request: pytest.FixtureRequest, legacy_tree: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A database made and filled by the release before Alembic, its schema read before anything newer opened
    it."""
    db = _new_db(request.param, request, tmp_path_factory.mktemp("legacy-db"), "legacy")
    made = make_legacy_database(legacy_tree, db)
    return {"db": db, "made": made, "schema": schema_of(db)}


def _at_head(legacy_schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of the release before, as the revisions after it change it: 0004 drops PostgreSQL's three JSON
    emulation functions (SQLite has no functions to drop)."""
    if "functions" not in legacy_schema:
        return legacy_schema
    assert [name for name, _ in legacy_schema["functions"]] == [
        "tally_json_each", "tally_json_extract", "tally_json_type"
    ]  # fmt: skip
    return {**legacy_schema, "functions": []}


# Tables the revisions after the release before add (whole, so they leave the release's tables as they were);
# tests/server/test_schema.py checks them against schema.py.
_NEW_TABLES = frozenset(
    {
        "metric_summaries", "experiment_metrics", "experiment_metadata",  # 0005
        "metric_rollups",  # 0006
        "dashboard_sessions", "login_links",  # 0007
        "artifacts",  # 0010
    }
)  # fmt: skip
_NEW_INDEXES = frozenset(
    {"experiments_by_name", "experiment_tags_by_experiment", "folders_by_parent_only", "experiments_by_group"}
)  # 0005, 0008 and 0009, on tables of the release
_NEW_COLUMNS = frozenset({("experiments", "run_group")})  # 0009, the last column of a table of the release


def _release_tables(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema without the tables and indexes revisions after the release before added (on PostgreSQL, rows
    start with their table's name; an index row's second field is its name)."""
    if "functions" not in schema:  # SQLite: one entry per table
        return {
            name: {
                **table,
                "indexes": {k: v for k, v in table["indexes"].items() if k not in _NEW_INDEXES},
                "columns": [c for c in table["columns"] if (name, c[0]) not in _NEW_COLUMNS],
            }
            for name, table in schema.items()
            if name not in _NEW_TABLES
        }
    return {
        part: [
            row
            for row in found
            if part == "functions"
            or (part == "sequences" and row[0] not in {f"{table}_pk_seq" for table in _NEW_TABLES})
            or (
                part != "sequences"
                and row[0] not in _NEW_TABLES
                and not (part == "indexes" and row[1] in _NEW_INDEXES)
                and not (part == "columns" and (row[0], row[2]) in _NEW_COLUMNS)
            )
        ]
        for part, found in schema.items()
    }


def test_a_new_database_gets_exactly_the_schema_of_the_release_before(
    legacy_db: dict[str, Any], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Revisions 0001-0003 on an empty database == legacy schema versions 1-3 (then 0004's one change), on the
    backend's catalog: tables, columns (types, nullability, defaults, collations, identity), keys, foreign keys,
    checks, indexes (with their expressions), WITHOUT ROWID, the PostgreSQL sequence and functions."""
    backend = "sqlite" if not legacy_db["db"].startswith("postgresql://") else "postgresql"
    fresh = _new_db(backend, request, tmp_path, "fresh")
    upgrade_url(Path(fresh) if backend == "sqlite" else fresh)
    assert _release_tables(schema_of(fresh)) == _at_head(legacy_db["schema"])
    assert _execute(fresh, "SELECT version_num FROM alembic_version") == [(head(),)]
    assert _execute(fresh, "SELECT version FROM schema_version") == [(len(revisions()),)]
    if backend == "sqlite":
        assert _execute(fresh, "SELECT name, value FROM counters") == [("metric_seq", 0)]


def test_a_database_of_the_release_before_upgrades_in_place_with_every_row_kept(
    legacy_db: dict[str, Any],
) -> None:
    db, made = legacy_db["db"], legacy_db["made"]
    plan = made["plan"]
    with start_server(db=db, validate_responses=True) as server:
        assert snapshot(server.url, plan) == made["snapshot"]  # every folder, experiment, point, key, note
        with httpx.Client(base_url=server.url, timeout=60) as c:
            org = {"Authorization": f"Bearer {KEY}"}
            # 0005 backfilled the metric summaries of the points the old release stored.
            with httpx.Client(base_url=server.url, headers=org, timeout=60) as reader:
                for experiment in plan["experiments"]:
                    points = stored_points(reader, experiment)
                    assert summary(reader, experiment) == expected_summary(points)
                assert len(summary(reader, plan["tagged"])) == 6  # two metrics, three label sets each
                # ... and the per-metric values listExperiments sorts by (all experiments hold both metrics).
                lowest = {
                    e: min(m["min"] for m in summary(reader, e) if m["name"] == "val/acc")
                    for e in plan["experiments"]
                    if summary(reader, e)
                }
                ordered = reader.get(
                    "/v1/experiments",
                    params={"order_by": "-metric:val/acc:min", "include_archived": True, "page_size": 1000},
                ).json()["data"]
                having = sorted(lowest, key=lambda e: (lowest[e], plan["experiments"].index(e)), reverse=True)
                lacking = [e for e in plan["experiments"] if e not in lowest]
                assert [e["id"] for e in ordered] == having + lacking
                # ... and the metadata index of the experiments it stored.
                by_lr = reader.get(
                    "/v1/experiments",
                    params={"metadata_key": "lr", "metadata_value": "0.1", "include_archived": True},
                ).json()["data"]
                assert [e["id"] for e in by_lr] == [plan["tagged"]]

            def auth(token: str) -> int:
                return c.get("/v1/auth/status", headers={"Authorization": f"Bearer {token}"}).status_code

            assert auth(KEY) == 200
            assert auth(plan["tokens"]["live"]) == 200
            assert auth(plan["tokens"]["expiring"]) == 200
            assert auth(plan["tokens"]["revoked"]) == 401
            # The idempotency record written by the old server answers a replay.
            replay = c.post(
                "/v1/experiments", json=IDEMPOTENT_BODY, headers={**org, "Idempotency-Key": "idem-1"}
            )
            assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (201, "true"), (
                replay.text
            )
            assert replay.json() == plan["made_once"]
            # Old rows take new writes: points next to the old ones (their duplicates still recognised), tags.
            path = f"/v1/experiments/{plan['tagged']}/metrics"
            ingest = {"Authorization": f"Bearer {plan['tokens']['live']}"}
            events = [metric_events(2)[1], {"name": "train/loss", "value": 1.0, "client_event_id": "new"}]
            assert c.post(path, json={"events": events}, headers=ingest).json() == {
                "accepted": 1, "duplicates": 1, "conflicts": []
            }  # fmt: skip
            with httpx.Client(base_url=server.url, headers=org, timeout=60) as reader:
                points = stored_points(reader, plan["tagged"])
                assert summary(reader, plan["tagged"]) == expected_summary(points)  # backfill + ingest merged
            # 0006 rolled the old points up: the series is exact over old and new points alike.
            points = c.get(path, params={"name": "train/loss", "page_size": 1000}, headers=org).json()["data"]
            series_path = f"{path}/series"
            for max_points in (1, 1000):
                series = c.get(
                    series_path, params={"name": "train/loss", "max_points": max_points}, headers=org
                )
                check_exact(series.json(), points, max_points)
            c.patch(
                f"/v1/experiments/{plan['tagged']}", json={"tags": ["late"]}, headers=org
            ).raise_for_status()
            tagged = c.get("/v1/experiments", params={"tag": "late"}, headers=org).json()["data"]
            assert [e["id"] for e in tagged] == [plan["tagged"]]
    assert _execute(db, "SELECT version_num FROM alembic_version") == [(head(),)]
    assert max(_execute(db, "SELECT version FROM schema_version"))[0] == len(revisions())
    # stamped at 0003, not rebuilt; then only 0004-0006 ran on its tables
    assert _release_tables(schema_of(db)) == _at_head(legacy_db["schema"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_newer_schema_is_refused_in_one_line(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """An Alembic revision this code does not know, or a legacy version past its history: SchemaTooNewError,
    whose one line `tally serve` prints."""
    db = _new_db(backend, request, tmp_path, "newer")
    target: str | Path = Path(db) if backend == "sqlite" else db
    upgrade_url(target)
    _execute(db, "UPDATE alembic_version SET version_num = '0999'")
    with pytest.raises(
        SchemaTooNewError, match=rf"schema revision 0999, .*this server knows up to {head()}$"
    ):
        upgrade_url(target)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    result = subprocess.run(
        [sys.executable, "-m", "tally_server", "--port", "0", "--db", db],
        env={**environment, "TALLY_CONFIG_DIR": str(tmp_path / "config")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith(f"this server knows up to {head()}"), result.stderr
    assert "Traceback" not in result.stderr
    _execute(db, "UPDATE alembic_version SET version_num = ?", head())
    _execute(db, "INSERT INTO schema_version(version) VALUES (?)", len(revisions()) + 1)
    with pytest.raises(
        SchemaTooNewError,
        match=rf"schema version {len(revisions()) + 1}; this server knows up to {len(revisions())}$",
    ):
        upgrade_url(target)


_RACER = """
import logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(message)s")
from tally_server.storage.migrate import upgrade_url
go = Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
db = sys.argv[1]
upgrade_url(db if db.startswith("postgresql://") else Path(db))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_servers_starting_at_once_migrate_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Three processes upgrade one empty database at the same moment: one creates the schema under the lock,
    the others wait, find the head and change nothing."""
    db = _new_db(backend, request, tmp_path, "race")
    go = tmp_path / "go"
    command = [sys.executable, "-c", _RACER, db, str(go)]
    racers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    try:
        for racer in racers:
            assert racer.stdout is not None
            assert racer.stdout.readline().strip() == "ready"
        go.touch()
        outcomes = [racer.communicate(timeout=60) for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
    assert [racer.returncode for racer in racers] == [0, 0, 0], outcomes
    assert sum(err.count("schema upgraded from nothing") for _, err in outcomes) == 1, outcomes
    assert _execute(db, "SELECT version_num FROM alembic_version") == [(head(),)]
    assert _execute(db, "SELECT version FROM schema_version") == [(len(revisions()),)]

"""The reference server on PostgreSQL, for `make bench` (`--only postgres`).

- Ingest throughput under a concurrent load (several clients, each sending 10,000-event batches to its own
  experiment): SQLite with one server process, PostgreSQL with one process and with two processes on one
  database (clients spread over them). Reported next to each other; whether the second process adds
  throughput is the question (on a 2-core machine it mostly cannot: see docs/server.md).
- The same load against its floor: bare psycopg, one connection per client, inserting the same rows with the
  statement the server runs (`executemany` of INSERT ... ON CONFLICT (experiment, client_event_id) DO NOTHING, in
  the server's row order), one transaction per 10,000-row batch, into the minimal table that holds the rows and
  enforces the dedupe (primary key (experiment, name, step, seq), unique index (experiment, client_event_id)).
  Target: >= 0.5, for one server process and for two.
- Flat cost on PostgreSQL: the median time of a 10-event ingest into an experiment holding 0 points, then the
  same experiment holding 1,000,000. Target: ratio <= 1.2, as on SQLite.

PostgreSQL runs from a temporary cluster that this module starts (initdb, pg_ctl), with fsync on: the durable
setting a real server has. The servers run as their own processes; request bodies are encoded before the clock
starts, so the figures are the servers'.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from bench_server_scale import BATCH, _events, _rows, _Server, flat_cost

from tally_server.process import ServerProcess as Started
from tally_server.process import start_server_process, wait_until_healthy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "server"))
from postgres_cluster import PostgresCluster  # the test suite's throwaway cluster

__all__ = ["run"]

Report = Callable[[str, str, float | None, str, bool], None]
ServerProcess = Callable[..., AbstractContextManager[tuple[str, str]]]
CLIENTS = 4


@contextmanager
def _servers(db: str, count: int, config: Path) -> Iterator[list[tuple[str, str]]]:
    """`count` server processes on one database (a URL or a file), sharing one org key."""
    api_key = "tk_org_" + secrets.token_urlsafe(24)
    env = {**os.environ, "TALLY_SERVER_BOOTSTRAP_KEY": api_key, "TALLY_CONFIG_DIR": str(config)}
    env.pop("TALLY_SERVER_DATABASE_URL", None)
    started: list[Started] = []
    try:
        for _ in range(count):  # all started before any is waited for: they race to migrate and bootstrap
            args = ["--db", db, "--log-level", "warning"]
            started.append(start_server_process(args, logs=config / "server-logs", env=env, wait=False))
        for server in started:
            wait_until_healthy(server, timeout=60)
        yield [(server.url, api_key) for server in started]
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            server.process.wait(timeout=30)


def _concurrent_rate(servers: list[_Server], bodies: list[list[bytes]]) -> float:
    """Events per second with one client per body list, client i on server i % len(servers)."""
    targets = [servers[i % len(servers)].experiment() for i in range(len(bodies))]
    headers = {"Content-Type": "application/json"}

    def send(index: int) -> int:
        path, client = targets[index]
        accepted = 0
        with client:
            for body in bodies[index]:
                response = client.post(path, content=body, headers=headers)
                response.raise_for_status()
                accepted += response.json()["accepted"]
        return accepted

    with ThreadPoolExecutor(len(bodies)) as pool:
        started = time.perf_counter()
        accepted = sum(pool.map(send, range(len(bodies))))
        elapsed = time.perf_counter() - started
    assert accepted == BATCH * sum(len(b) for b in bodies), accepted
    return accepted / elapsed


def _client_events(batches: int, tag: str) -> list[list[list[dict[str, Any]]]]:
    """Per client, its batches of events."""
    return [[_events(b, BATCH, f"{tag}-c{c}") for b in range(batches)] for c in range(CLIENTS)]


def _bodies(events: list[list[list[dict[str, Any]]]]) -> list[list[bytes]]:
    return [[json.dumps({"events": batch}).encode() for batch in client] for client in events]


_MINIMAL_SCHEMA = (
    'CREATE TABLE metric_points (experiment BIGINT NOT NULL, name TEXT COLLATE "C" NOT NULL, step BIGINT NOT NULL, '
    "seq BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL, ts TEXT NOT NULL, ts_auto BOOLEAN NOT NULL, "
    'metadata TEXT NOT NULL, client_event_id TEXT COLLATE "C" NOT NULL, PRIMARY KEY (experiment, name, step, seq))',
    "CREATE UNIQUE INDEX metric_points_by_client_event_id ON metric_points(experiment, client_event_id)",
)
_INSERT = (
    "INSERT INTO metric_points(experiment, name, step, seq, value, ts, ts_auto, metadata, client_event_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (experiment, client_event_id) DO NOTHING"
)


def _floor_rate(url: str, events: list[list[list[dict[str, Any]]]]) -> float:
    """Rows per second: bare psycopg, one connection per client into its own experiment, in a fresh minimal
    table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS metric_points")
        for statement in _MINIMAL_SCHEMA:
            conn.execute(statement)  # type: ignore[arg-type]  # constants above
    rows = [
        [
            sorted(_rows(c + 1, batch, b * BATCH + 1, no_flag=False), key=lambda row: row[8])
            for b, batch in enumerate(client)
        ]
        for c, client in enumerate(events)
    ]
    connections = [psycopg.connect(url) for _ in rows]

    def insert(index: int) -> int:
        conn = connections[index]
        for batch in rows[index]:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(_INSERT, batch)
        return sum(len(batch) for batch in rows[index])

    try:
        with ThreadPoolExecutor(len(rows)) as pool:
            started = time.perf_counter()
            inserted = sum(pool.map(insert, range(len(rows))))
            elapsed = time.perf_counter() - started
    finally:
        for conn in connections:
            conn.close()
    return inserted / elapsed


def run(report: Report, server_process: ServerProcess, *, quick: bool) -> None:
    del server_process  # several processes per database here: see _servers
    rounds = 3
    batches = 2 if quick else 5  # per client and round
    stored = 100_000 if quick else 1_000_000
    small_calls = 100 if quick else 300
    cluster = PostgresCluster(fsync=True)
    try:
        with tempfile.TemporaryDirectory(prefix="tally-bench-pg-") as scratch, ExitStack() as stack:
            directory = Path(scratch)
            sqlite_one = stack.enter_context(_servers(str(directory / "bench.sqlite3"), 1, directory / "c1"))
            pg_one = stack.enter_context(_servers(cluster.create_database("bench"), 1, directory / "c2"))
            pg_two = stack.enter_context(_servers(cluster.create_database("bench"), 2, directory / "c3"))
            sides = {
                "sqlite x1": [_Server(*s) for s in sqlite_one],
                "postgresql x1": [_Server(*s) for s in pg_one],
                "postgresql x2": [_Server(*s) for s in pg_two],
            }
            floor_url = cluster.create_database("floor")
            rates: dict[str, list[float]] = {name: [] for name in (*sides, "floor")}
            for index in range(rounds):
                order = [*sides, "floor"] if index % 2 == 0 else ["floor", *reversed(sides)]
                for name in order:
                    events = _client_events(batches, f"r{index}-{name[:2]}")
                    if name == "floor":
                        rates[name].append(_floor_rate(floor_url, events))
                    else:
                        rates[name].append(_concurrent_rate(sides[name], _bodies(events)))
            sqlite, one, two, floor = (statistics.median(rates[name]) for name in (*sides, "floor"))
            for processes, rate in ((1, one), (2, two)):
                report(
                    f"PostgreSQL ingest vs bare psycopg, {processes} server process{'es' if processes > 1 else ''}",
                    f"{rate:,.0f} events/s (bare psycopg {floor:,.0f} rows/s, {CLIENTS} connections)",
                    rate / floor,
                    ">= 0.50",
                    rate / floor >= 0.5,
                )
            report(
                f"PostgreSQL ingest, 1 server process, {CLIENTS} clients",
                f"{one:,.0f} events/s (SQLite, 1 process: {sqlite:,.0f})",
                one / sqlite,
                "reported",
                True,
            )
            report(
                f"PostgreSQL ingest, 2 server processes vs 1, {CLIENTS} clients",
                f"{two:,.0f} vs {one:,.0f} events/s on {os.cpu_count()} cores",
                two / one,
                "reported",
                True,
            )
            empty_ms, full_ms, seeded = flat_cost(sides["postgresql x1"][0], stored, small_calls, "pg")
            ratio = full_ms / empty_ms
            report(
                f"PostgreSQL 10-event ingest at 0 vs {stored:,} points",
                f"{empty_ms:.2f} ms -> {full_ms:.2f} ms (seeded at {seeded:,.0f} events/s)",
                ratio,
                "<= 1.20",
                ratio <= 1.2,
            )
    finally:
        cluster.stop()

"""The reference server on PostgreSQL, for `make bench` (`--only postgres`).

- Ingest throughput under a concurrent load (several clients, each sending 10,000-event batches to its own
  experiment): SQLite with one server process, PostgreSQL with one process and with two processes on one
  database (clients spread over them). Reported next to each other; whether the second process adds
  throughput is the question (on a 2-core machine it mostly cannot: see docs/server.md).
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

from bench_server_scale import BATCH, _events, _Server, flat_cost

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


def _bodies(batches: int, tag: str) -> list[list[bytes]]:
    return [
        [json.dumps({"events": _events(b, BATCH, f"{tag}-c{c}")}).encode() for b in range(batches)]
        for c in range(CLIENTS)
    ]


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
            rates: dict[str, list[float]] = {name: [] for name in sides}
            for index in range(rounds):
                order = list(sides) if index % 2 == 0 else list(reversed(sides))
                for name in order:
                    rates[name].append(
                        _concurrent_rate(sides[name], _bodies(batches, f"r{index}-{name[:2]}"))
                    )
            sqlite, one, two = (statistics.median(rates[name]) for name in sides)
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

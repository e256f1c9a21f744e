"""The reference server at scale, for `make bench` (`--only server_scale`).

- Ingest throughput against its floor: bare SQLite inserting the same rows (same pragmas: WAL, synchronous=FULL;
  one transaction per 10,000 rows), measured in the same run, rounds interleaved, into two tables:
  - the minimal table that can hold the rows and enforce the dedupe: its primary key (experiment, name, step,
    seq) and a unique index on (experiment, client_event_id), nothing else. Target: >= 0.5. This is the floor:
    it does not move when the server adds an index, so it never flatters the server;
  - the server's own schema (the Alembic head), reported next to it for comparison with earlier runs.
- Flat cost: the median time of a 10-event ingest into an experiment holding 0 points, then the same experiment
  holding 1,000,000. Target: ratio <= 1.2.
- The cost of durability: the same two loads on a server with `--no-fsync` (synchronous=NORMAL) against the
  default (synchronous=FULL, an fsync per commit). Reported, no target.

The servers run as their own processes on file databases; request bodies are encoded before the clock starts, so
the figures are the server's.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

from tally_server.storage.migrate import upgrade_url

__all__ = ["flat_cost", "run"]

Report = Callable[[str, str, float | None, str, bool], None]
ServerProcess = Callable[..., AbstractContextManager[tuple[str, str]]]

BATCH = 10_000
_NAMES = ("train/loss", "train/accuracy", "val/loss")


def _events(batch: int, size: int, tag: str) -> list[dict[str, Any]]:
    base = batch * size
    return [
        {
            "name": _NAMES[i % 3],
            "value": (base + i) * 1e-6,
            "step": (base + i) // 3,
            "timestamp": f"2026-11-23T10:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}000Z",
            "metadata": {"host": f"node-{i % 4}", "split": "train"},
            "client_event_id": f"{tag}-{base + i}",
        }
        for i in range(size)
    ]


def _rows(
    experiment_pk: int, events: list[dict[str, Any]], first_seq: int, *, no_flag: Any = 0
) -> list[tuple[Any, ...]]:
    """The rows the server stores for these events (metadata as sorted compact JSON; the flag `ts_auto` as the
    server binds it: the integer SQLite stores, since Python's sqlite3 binds a bool through its adapter
    registry, about 4 ms a batch that the floor must not carry when the server does not; PostgreSQL's BOOLEAN
    takes `no_flag=False`)."""
    return [
        (
            experiment_pk,
            e["name"],
            e["step"],
            first_seq + i,
            float(e["value"]),
            e["timestamp"],
            no_flag,
            json.dumps(e["metadata"], separators=(",", ":"), sort_keys=True),
            e["client_event_id"],
        )
        for i, e in enumerate(events)
    ]


_MINIMAL_SCHEMA = (
    # What the rows need and nothing more: the key they are stored under and the dedupe's unique index.
    "CREATE TABLE metric_points (experiment INTEGER NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, "
    "seq INTEGER NOT NULL, value REAL NOT NULL, ts TEXT NOT NULL, ts_auto INTEGER NOT NULL, metadata TEXT NOT NULL, "
    "client_event_id TEXT NOT NULL, PRIMARY KEY (experiment, name, step, seq)) WITHOUT ROWID",
    "CREATE UNIQUE INDEX metric_points_by_client_event_id ON metric_points(experiment, client_event_id)",
)


def _floor(directory: Path, bodies: list[list[dict[str, Any]]], *, minimal: bool) -> float:
    """Rows per second: bare SQLite, the server's pragmas, one transaction per batch, into the minimal table or
    into the server's schema (made by its migrations)."""
    path = directory / f"floor-{uuid.uuid4().hex[:8]}.sqlite3"
    if not minimal:
        upgrade_url(path)
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "cache_size=-32768", "temp_store=MEMORY"):
        conn.execute(f"PRAGMA {pragma}")
    if minimal:
        for statement in _MINIMAL_SCHEMA:
            conn.execute(statement)
    else:
        conn.execute("INSERT INTO organizations(id, name, created_at) VALUES ('org', 'o', 'now')")
        conn.execute(
            "INSERT INTO experiments(id, org, name, metadata, status, created_us, created_at, updated_at) "
            "VALUES ('exp', 1, 'e', '{}', 'running', 0, 'now', 'now')"
        )
    batches = [_rows(1, events, index * BATCH + 1) for index, events in enumerate(bodies)]
    started = time.perf_counter()
    for rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO metric_points(experiment, name, step, seq, value, ts, ts_auto, metadata, client_event_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return sum(len(rows) for rows in batches) / elapsed


class _Server:
    """One running server: an org client, and per experiment an ingestion client."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url = url
        self.org = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=300)

    def experiment(self) -> tuple[str, httpx.Client]:
        experiment = self.org.post("/v1/experiments", json={"name": f"scale-{uuid.uuid4().hex[:8]}"}).json()[
            "id"
        ]
        token = self.org.post(f"/v1/experiments/{experiment}/ingestion-keys", json={}).json()["token"]
        client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=300)
        return f"/v1/experiments/{experiment}/metrics", client

    def ingest_rate(self, bodies: list[bytes]) -> float:
        """Events per second for pre-encoded 10,000-event bodies sent one after another."""
        path, client = self.experiment()
        headers = {"Content-Type": "application/json"}
        with client:
            started = time.perf_counter()
            accepted = 0
            for body in bodies:
                response = client.post(path, content=body, headers=headers)
                response.raise_for_status()
                accepted += response.json()["accepted"]
            elapsed = time.perf_counter() - started
        assert accepted == BATCH * len(bodies), accepted
        return accepted / elapsed


def _small_ingest_ms(client: httpx.Client, path: str, calls: int, tag: str) -> float:
    """The median milliseconds of a 10-event ingest (new events each time)."""
    headers = {"Content-Type": "application/json"}
    bodies = [json.dumps({"events": _events(i, 10, f"{tag}-small")}).encode() for i in range(calls)]
    times = []
    for body in bodies:
        started = time.perf_counter()
        response = client.post(path, content=body, headers=headers)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(times) * 1000


def flat_cost(server: _Server, stored: int, calls: int, tag: str) -> tuple[float, float, float]:
    """The median ms of a 10-event ingest into a new experiment holding 0 points, then `stored` points (seeded in
    10,000-event batches), and the seeding rate in events per second."""
    path, client = server.experiment()
    with client:
        empty_ms = _small_ingest_ms(client, path, calls, f"{tag}-empty")
        headers = {"Content-Type": "application/json"}
        started = time.perf_counter()
        for b in range(stored // BATCH):
            body = json.dumps({"events": _events(b, BATCH, f"{tag}-seed")}).encode()
            client.post(path, content=body, headers=headers).raise_for_status()
        seeded = time.perf_counter() - started
        full_ms = _small_ingest_ms(client, path, calls, f"{tag}-full")
    return empty_ms, full_ms, stored / seeded


def _encoded(batches: int, tag: str) -> tuple[list[list[dict[str, Any]]], list[bytes]]:
    events = [_events(b, BATCH, tag) for b in range(batches)]
    return events, [json.dumps({"events": e}).encode() for e in events]


def run(report: Report, server_process: ServerProcess, *, quick: bool) -> None:
    rounds = 3
    batches = 5 if quick else 20
    stored = 100_000 if quick else 1_000_000
    small_calls = 100 if quick else 300
    with tempfile.TemporaryDirectory(prefix="tally-bench-scale-") as scratch:
        directory = Path(scratch)
        with (
            server_process(directory / "durable.sqlite3") as durable_at,
            server_process(directory / "fast.sqlite3", extra_args=["--no-fsync"]) as fast_at,
        ):
            durable, fast = _Server(*durable_at), _Server(*fast_at)
            # 1. throughput against bare SQLite, interleaved round by round
            minimal_rates, full_rates, server_rates, fast_rates = [], [], [], []
            for index in range(rounds):
                events, bodies = _encoded(batches, f"r{index}")
                sides: list[tuple[list[float], Callable[[], float]]] = [
                    (minimal_rates, lambda events=events: _floor(directory, events, minimal=True)),
                    (full_rates, lambda events=events: _floor(directory, events, minimal=False)),
                    (server_rates, lambda bodies=bodies: durable.ingest_rate(bodies)),
                    (fast_rates, lambda bodies=bodies: fast.ingest_rate(bodies)),
                ]
                for results, side in sides if index % 2 == 0 else reversed(sides):
                    results.append(side())
            minimal, full, server, no_fsync = (
                statistics.median(r) for r in (minimal_rates, full_rates, server_rates, fast_rates)
            )
            ratio = server / minimal
            report(
                "server ingest vs bare SQLite, minimal table",
                f"{server:,.0f} events/s (bare SQLite {minimal:,.0f} rows/s)",
                ratio,
                ">= 0.50",
                ratio >= 0.5,
            )
            report(
                "server ingest vs bare SQLite, server's schema",
                f"{server:,.0f} events/s (bare SQLite {full:,.0f} rows/s)",
                server / full,
                "reported",
                True,
            )
            report(
                "durable (fsync) vs --no-fsync, 10k batches",
                f"{server:,.0f} vs {no_fsync:,.0f} events/s",
                server / no_fsync,
                "reported",
                True,
            )
            # 2. a 10-event ingest at 0 and at `stored` points in the same experiment
            fast_path, fast_client = fast.experiment()
            with fast_client:
                fast_ms = _small_ingest_ms(fast_client, fast_path, small_calls, "empty")
            empty_ms, full_ms, seeded = flat_cost(durable, stored, small_calls, "sqlite")
            ratio = full_ms / empty_ms
            report(
                f"10-event ingest at 0 vs {stored:,} points",
                f"{empty_ms:.2f} ms -> {full_ms:.2f} ms (seeded at {seeded:,.0f} events/s)",
                ratio,
                "<= 1.20",
                ratio <= 1.2,
            )
            report(
                "durable (fsync) vs --no-fsync, 10-event ingest",
                f"{empty_ms:.2f} vs {fast_ms:.2f} ms",
                empty_ms / fast_ms,
                "reported",
                True,
            )

"""The PostgreSQL backend of `Repository`: several server processes (or hosts) on one database.

It runs the SQLite repository's queries (see `pg_database` for how they are translated) and replaces what
differs when writers are concurrent instead of serialised by SQLite's single write lock. Each rule of the data
model is kept by the database, so it holds across processes:

- ingestion dedupe: the unique index on (experiment, client_event_id) with `INSERT ... ON CONFLICT DO
  NOTHING`, rows inserted in client_event_id order so that two overlapping batches cannot deadlock;
- the metric sequence: a SEQUENCE (a counter row would make every ingest wait for the one before it);
- idempotency claims: `INSERT ... ON CONFLICT DO NOTHING` on the (org, key) primary key (one winner), a stale
  claim taken over by a conditional UPDATE (one winner too);
- folder-name uniqueness: the unique index `folders_unique_name`; a writer that loses the race gets the same
  409 as one that finds the name taken;
- status transitions and experiment updates: the experiment's row `FOR UPDATE`; an ingest (and an annotation)
  holds it `FOR SHARE`, so no point lands after the experiment was closed or archived (archiving updates the
  row, so it waits for them and they for it); a repeated archive is a no-op by the UPDATE's own condition;
- tags: the primary key of `experiment_tags` (org, tag, experiment);
- the first organisation: created under an advisory lock, so servers starting together make one.

Startup does not clear 'running' idempotency claims as the SQLite backend does: another process may be
running them. A claim whose process died is taken over once it is older than the stale timeout
(`tally_server.idempotency`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg.errors

from tally_server.storage.pg_database import PgConnection, PgDatabase
from tally_server.storage.repository import BootstrapResult, IdempotencyClaim, Json
from tally_server.storage.sqlite import SqliteRepository, _PointRow

__all__ = ["PostgresRepository"]

_T = TypeVar("_T")


class PostgresRepository(SqliteRepository):
    """`Repository` on PostgreSQL (psycopg 3 with a connection pool)."""

    def __init__(self, url: str, *, max_connections: int = 16) -> None:
        # Not SqliteRepository.__init__: no file, and no clearing of other processes' running claims.
        self.db = PgDatabase(url, max_size=max_connections)  # type: ignore[assignment]

    def check_available(self) -> None:
        """Nothing to check without a query: PostgreSQL owns its files (a lost connection is met by the request
        that needs it, and answered 503)."""

    # ---- organisations -------------------------------------------------------------------------------------
    def bootstrap(self, token: str | None, *, mint_if_existing: bool) -> BootstrapResult:
        with self.db.write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('tally.bootstrap'))")
            return super().bootstrap(token, mint_if_existing=mint_if_existing)

    # ---- folders -------------------------------------------------------------------------------------------
    def _name_race(self, write: Callable[[], _T]) -> _T:
        """Run a folder write; if a concurrent writer took the name first (the unique index refused the row),
        run it again: the name check now sees the winner and raises the usual ConflictError."""
        with self.db.write() as conn:
            try:
                with _pg(conn).savepoint():
                    return write()
            except psycopg.errors.UniqueViolation:
                return write()

    def create_folder(
        self, org_pk: int, name: str, parent_id: str | None, description: str | None, metadata: Any
    ) -> Json:
        return self._name_race(lambda: super(PostgresRepository, self).create_folder(
            org_pk, name, parent_id, description, metadata))  # fmt: skip

    def rename_folder(self, org_pk: int, folder_id: str, name: str) -> Json:
        return self._name_race(lambda: super(PostgresRepository, self).rename_folder(org_pk, folder_id, name))

    def move_folder(self, org_pk: int, folder_id: str, parent_id: str | None) -> Json:
        return self._name_race(
            lambda: super(PostgresRepository, self).move_folder(org_pk, folder_id, parent_id)
        )

    # ---- experiments ---------------------------------------------------------------------------------------
    def update_experiment_status(self, org_pk: int, experiment_id: str, status: str) -> Json:
        with self.db.write() as conn:
            # The row lock makes concurrent transitions take turns: the second sees the first one's result.
            conn.execute(
                "SELECT 1 FROM experiments WHERE id = ? AND org = ? FOR UPDATE", (experiment_id, org_pk)
            )
            return super().update_experiment_status(org_pk, experiment_id, status)

    def update_experiment(self, org_pk: int, experiment_id: str, changes: Json) -> Json:
        with self.db.write() as conn:
            # Two concurrent updates take turns, so the second rewrites the tag index from the first's tags.
            conn.execute(
                "SELECT 1 FROM experiments WHERE id = ? AND org = ? FOR UPDATE", (experiment_id, org_pk)
            )
            return super().update_experiment(org_pk, experiment_id, changes)

    # ---- metrics -------------------------------------------------------------------------------------------
    @staticmethod
    def _reserve_seqs(conn: Any, count: int) -> Sequence[int]:
        rows = conn.execute("SELECT nextval('metric_seq') FROM generate_series(1, ?)", (count,)).fetchall()
        return sorted(int(r[0]) for r in rows)

    @staticmethod
    def _insert_points(conn: Any, rows: list[_PointRow]) -> int:
        before = conn.total_changes
        # In client_event_id order: two batches that share ids wait for each other in the same order, so they
        # queue instead of deadlocking.
        conn.executemany(
            "INSERT INTO metric_points(experiment, name, step, seq, value, ts, ts_auto, metadata, "
            "client_event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(experiment, client_event_id) DO NOTHING",
            sorted(rows, key=lambda row: row[8]),
        )
        return int(conn.total_changes - before)

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
        with self.db.write() as conn:
            conn.execute(
                "DELETE FROM idempotency_keys WHERE org = ? AND key = ? AND created_us < ?",
                (org_pk, key, expire_before_us),
            )
            inserted = conn.execute(
                "INSERT INTO idempotency_keys(org, key, fingerprint, state, created_us) "
                "VALUES (?, ?, ?, 'running', ?) ON CONFLICT (org, key) DO NOTHING",
                (org_pk, key, fingerprint, now_us),
            ).rowcount
            if inserted:
                return IdempotencyClaim("claimed")
            row = conn.execute(
                "SELECT fingerprint, state, status, body, headers, created_us FROM idempotency_keys "
                "WHERE org = ? AND key = ?",
                (org_pk, key),
            ).fetchone()
            if row is None:  # released between our insert and our read: the client may retry
                return IdempotencyClaim("running")
            if row[0] != fingerprint:
                return IdempotencyClaim("mismatch")
            if row[1] == "done":
                return IdempotencyClaim("done", int(row[2]), bytes(row[3]), json.loads(row[4] or "{}"))
            # A claim older than the stale timeout belongs to a process that died: one taker wins it.
            taken = conn.execute(
                "UPDATE idempotency_keys SET created_us = ? WHERE org = ? AND key = ? AND state = 'running' "
                "AND created_us < ?",
                (now_us, org_pk, key, stale_before_us),
            ).rowcount
            return IdempotencyClaim("claimed" if taken else "running")


def _pg(conn: Any) -> PgConnection:
    assert isinstance(conn, PgConnection)
    return conn

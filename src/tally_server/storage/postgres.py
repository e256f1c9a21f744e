"""The PostgreSQL backend of `Repository`: several server processes (or hosts) on one database.

It runs the SQLite repository's queries (see `pg_database` for how they are translated) and replaces what
differs when writers are concurrent instead of serialised by SQLite's single write lock. Each rule of the data
model is kept by the database, so it holds across processes:

- ingestion dedupe: the unique index on (experiment, client_event_id) with `INSERT ... ON CONFLICT DO
  NOTHING`, rows inserted in client_event_id order so that two overlapping batches cannot deadlock;
- the metric sequence: a SEQUENCE (a counter row would make every ingest wait for the one before it);
- idempotency claims: held by the claiming request's database session (below);
- folder-name uniqueness: the unique index `folders_unique_name`; a writer that loses the race gets the same
  409 as one that finds the name taken;
- status transitions and experiment updates: the experiment's row `FOR UPDATE`; an ingest (and an annotation)
  holds it `FOR SHARE`, so no point lands after the experiment was closed or archived (archiving updates the
  row, so it waits for them and they for it); a repeated archive is a no-op by the UPDATE's own condition;
- tags: the primary key of `experiment_tags` (org, tag, experiment);
- the first organisation: created under an advisory lock, so servers starting together make one.

Idempotency claims die with their holder. A request claiming a key pins one pooled connection for itself
(`PgDatabase.pin`), takes the session-level advisory lock of (org, key) on it (`pg_try_advisory_lock`, keyed by
a 64-bit hash), and only then inserts its 'running' row; it keeps both until its answer is committed with its
effect, or its row released, and only then unlocks. So a 'running' row whose lock anyone can take belongs to a
holder whose session is gone (its process killed, its connection cut, the database restarted): the next claimer
takes it over at once instead of answering 409 `idempotency_in_progress` until a stale timeout. The holder
cannot still finish afterwards: everything it does runs on the session that died. A lock held is a request
running, however long; startup clears nothing, since other live processes may hold claims. Every statement of
the claim is a conditional insert or update on the (org, key) primary key, so two claimers that both found
the lock free (one right after the other) still produce one winner.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg.errors

from tally_server.storage.pg_database import PgConnection, PgDatabase
from tally_server.storage.repository import BootstrapResult, IdempotencyClaim, Json
from tally_server.storage.sqlite import SqliteRepository, _PointRow

__all__ = ["PostgresRepository"]

_T = TypeVar("_T")
logger = logging.getLogger("tally_server.storage")


class PostgresRepository(SqliteRepository):
    """`Repository` on PostgreSQL (psycopg 3 with a connection pool)."""

    def __init__(self, url: str, *, max_connections: int = 16) -> None:
        # Not SqliteRepository.__init__: no file, and no clearing of other processes' running claims.
        self.pg = PgDatabase(url, max_size=max_connections)
        self.db = self.pg  # type: ignore[assignment]
        self._claim = threading.local()  # the advisory lock this thread's request holds, if any

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
        """See the module's docstring. `stale_before_us` is not used: the lock says whether a holder lives."""
        if getattr(self._claim, "lock", None) is not None:  # a request that never finished its claim
            logger.warning("releasing an idempotency claim its request left behind")
            self._end_claim()
        lock = _claim_lock(org_pk, key)
        conn = self.pg.pin()
        claim = IdempotencyClaim("running")
        held = False
        try:
            held = bool(conn.execute("SELECT pg_try_advisory_lock(?::bigint)", (lock,)).fetchone()[0])
            with self.db.write() as tx:  # on the pinned connection
                if held:
                    tx.execute(
                        "DELETE FROM idempotency_keys WHERE org = ? AND key = ? AND created_us < ?",
                        (org_pk, key, expire_before_us),
                    )
                row = tx.execute(
                    "SELECT fingerprint, state, status, body, headers FROM idempotency_keys "
                    "WHERE org = ? AND key = ?",
                    (org_pk, key),
                ).fetchone()
                if row is not None and row[0] != fingerprint:
                    claim = IdempotencyClaim("mismatch")
                elif row is not None and row[1] == "done":
                    claim = IdempotencyClaim("done", int(row[2]), bytes(row[3]), json.loads(row[4] or "{}"))
                elif held and row is None:
                    inserted = tx.execute(
                        "INSERT INTO idempotency_keys(org, key, fingerprint, state, created_us) "
                        "VALUES (?, ?, ?, 'running', ?) ON CONFLICT (org, key) DO NOTHING",
                        (org_pk, key, fingerprint, now_us),
                    ).rowcount
                    claim = IdempotencyClaim("claimed" if inserted else "running")
                elif held:  # 'running', and nobody holds its lock: its holder's session is gone
                    taken = tx.execute(
                        "UPDATE idempotency_keys SET created_us = ? "
                        "WHERE org = ? AND key = ? AND state = 'running'",
                        (now_us, org_pk, key),
                    ).rowcount
                    claim = IdempotencyClaim("claimed" if taken else "running")
                    if taken:
                        logger.warning(
                            "took over an idempotency claim whose holder's database session ended (org %s)",
                            org_pk,
                        )
        except BaseException:
            self.pg.unpin(_unlocker(lock if held else None))
            raise
        if claim.state == "claimed":
            self._claim.lock = lock  # held until the answer or the release is committed
        else:
            self.pg.unpin(_unlocker(lock if held else None))
        return claim

    def idempotency_complete(
        self, org_pk: int, key: str, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        """Record the answer; the claim's lock is dropped once that is committed (with the effect, inside
        `atomic()`)."""
        super().idempotency_complete(org_pk, key, status, body, headers)
        self._end_claim()

    def idempotency_release(self, org_pk: int, key: str) -> None:
        """Delete the 'running' row, then drop the lock; the lock goes even when the delete fails (a session
        that is gone took it already, and a live one must not keep it)."""
        try:
            super().idempotency_release(org_pk, key)
        finally:
            self._end_claim()

    def _end_claim(self) -> None:
        """Unlock and unpin, now or (inside `atomic()`) once its transaction commits; if that transaction rolls
        back instead, the claim stays held for the release that follows."""
        lock: int | None = getattr(self._claim, "lock", None)
        if lock is None:
            return

        def unlock(conn: PgConnection) -> None:
            self._claim.lock = None
            _unlocker(lock)(conn)

        self.pg.unpin(unlock)


def _claim_lock(org_pk: int, key: str) -> int:
    """The advisory lock key of an (organisation, Idempotency-Key): 64 bits of a hash, so the same in every
    process (and apart from the `hashtext(...)` locks of migrations and bootstrap but by chance)."""
    digest = hashlib.blake2b(f"tally.idempotency\0{org_pk}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _unlocker(lock: int | None) -> Callable[[PgConnection], None]:
    def unlock(conn: PgConnection) -> None:
        if (
            lock is not None
            and not conn.execute("SELECT pg_advisory_unlock(?::bigint)", (lock,)).fetchone()[0]
        ):
            raise RuntimeError("the idempotency claim's advisory lock was not held")

    return unlock


def _pg(conn: Any) -> PgConnection:
    assert isinstance(conn, PgConnection)
    return conn

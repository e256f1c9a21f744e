"""What truly differs between SQLite and PostgreSQL, as named functions; everything else the repository writes once.

Each function takes the dialect's name (`conn.dialect.name`: "sqlite" or "postgresql") or a connection, and
answers the SQLAlchemy Core construct (or runs the statement) that backend needs:

- `insert`: the dialect's INSERT, which has `on_conflict_do_nothing` / `on_conflict_do_update` (`excluded`);
- `least` / `greatest`: the scalar min and max of two values;
- `json_text` / `json_has`: one top-level key of a JSON text column (metadata filters);
- `ids_in`: "this column is one of these many values" (a JSON array read by `json_each` on SQLite, an array
  parameter on PostgreSQL), one statement parameter however many values;
- `reserve_seqs`: the ingestion order (SQLite: a `counters` row, writers are serialised anyway; PostgreSQL: the
  SEQUENCE `metric_seq`, so concurrent ingests never queue on one row);
- `points_by_client_event_id`: the duplicate lookup of ingestion, tuned for each backend's planner;
- `insert_order`: the order a batch's rows are inserted in (PostgreSQL: by client_event_id, so that two
  overlapping batches of concurrent writers queue instead of deadlocking);
- `session_locks`, `try_claim_lock`, `release_claim_lock`: PostgreSQL's session-level advisory lock, which the
  idempotency claims of `tally_server.storage.store` hold on the request's pinned session; SQLite has none (one
  process writes at a time, and its claims left running are cleared at start);
- `lock_bootstrap`: servers starting together on a new PostgreSQL database create one first organisation;
- `lock_content`: an artifact content's lock, held by the transactions that publish or remove it;
- `executemany`: a statement compiled once per dialect, run by the driver's `executemany` (the ingest path);
- `flags`: false and true as that `executemany` takes them for a flag column (schema.py's `_FLAG`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import ARRAY, BigInteger, Connection, Text, any_, bindparam, cast, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from tally_server.storage.schema import counters, metric_points, metric_seq

__all__ = [
    "executemany",
    "flags",
    "greatest",
    "ids_in",
    "insert",
    "insert_order",
    "json_has",
    "json_text",
    "least",
    "lock_bootstrap",
    "lock_content",
    "points_by_client_event_id",
    "release_claim_lock",
    "reserve_seqs",
    "session_locks",
    "try_claim_lock",
]

_POSTGRESQL = "postgresql"


def insert(dialect: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    """INSERT with the dialect's ON CONFLICT clauses (the two constructs have the same methods)."""
    if dialect == _POSTGRESQL:
        return postgresql.insert(table)
    return sqlite.insert(table)


def least(dialect: str, a: Any, b: Any) -> Any:
    return func.least(a, b) if dialect == _POSTGRESQL else func.min(a, b)


def greatest(dialect: str, a: Any, b: Any) -> Any:
    return func.greatest(a, b) if dialect == _POSTGRESQL else func.max(a, b)


def json_text(dialect: str, column: Any, key: str) -> Any:
    """The text value of `key` in the JSON object stored in `column` (NULL when absent). Metadata keys match
    ^[A-Za-z_][A-Za-z0-9_.-]*$ (the contract), so quoting one makes a SQLite JSON path."""
    if dialect == _POSTGRESQL:
        return cast(column, postgresql.JSONB)[key].astext
    return func.json_extract(column, '$."' + key + '"')


def json_has(dialect: str, column: Any, key: str) -> Any:
    """Whether the JSON object stored in `column` has `key` (whatever its value, JSON null included)."""
    if dialect == _POSTGRESQL:
        return cast(column, postgresql.JSONB).has_key(key)
    return func.json_type(column, '$."' + key + '"').is_not(None)


def ids_in(dialect: str, column: Any, values: Sequence[Any], *, integers: bool = False) -> Any:
    """`column` is one of `values`, as one parameter (a page's names, a folder's subtree)."""
    if dialect == _POSTGRESQL:
        return column == any_(bindparam(None, list(values), type_=ARRAY(BigInteger if integers else Text)))
    each = func.json_each(msgspec.json.encode(list(values)).decode()).table_valued("value").alias("j")
    return column.in_(select(each.c.value))


# One row holding every value as an array: the driver converts it in C, where a row per value cost a batch of
# 10,000 events ~5% of its ingest in Python.
_NEXT_SEQS = select(func.array_agg(metric_seq.next_value())).select_from(
    func.generate_series(1, bindparam("count"))
)
_ADVANCE_COUNTER = (
    counters.update()
    .values(value=counters.c.value + bindparam("count"))
    .where(counters.c.name == "metric_seq")
    .returning(counters.c.value)
)


def reserve_seqs(conn: Connection, count: int) -> Sequence[int]:
    """`count` new values of the ingestion order, increasing."""
    if conn.dialect.name == _POSTGRESQL:
        return sorted(conn.execute(_NEXT_SEQS, {"count": count}).scalar_one())
    last = int(conn.execute(_ADVANCE_COUNTER, {"count": count}).scalar_one())
    return range(last - count + 1, last + 1)


# The stored points of some client_event_ids, each one probe of the unique index (experiment, client_event_id).
# SQLite: json_each drives (CROSS JOIN fixes the join order) and INDEXED BY names the index: without it SQLite
# plans `client_event_id IN (...)` on the primary key and reads every point of the experiment, so the cost
# would grow with the experiment's size. PostgreSQL's planner finds the index by itself.
_STORED_SQLITE = text(
    "SELECT m.client_event_id, m.seq, m.name, m.step, m.value, m.ts, m.ts_auto, m.metadata "
    "FROM json_each(:ids) AS j CROSS JOIN metric_points AS m INDEXED BY metric_points_by_client_event_id "
    "ON m.experiment = :experiment AND m.client_event_id = j.value"
)


def points_by_client_event_id(dialect: str, experiment_pk: int, ids: Sequence[str]) -> Any:
    """(client_event_id, seq, name, step, value, ts, ts_auto, metadata) of the stored points with these ids."""
    if dialect == _POSTGRESQL:
        m = metric_points.c
        return select(m.client_event_id, m.seq, m.name, m.step, m.value, m.ts, m.ts_auto, m.metadata).where(
            m.experiment == experiment_pk, ids_in(dialect, m.client_event_id, ids)
        )
    return _STORED_SQLITE.bindparams(ids=msgspec.json.encode(list(ids)).decode(), experiment=experiment_pk)


def insert_order(dialect: str, rows: Iterable[tuple[Any, ...]], key: Callable[[tuple[Any, ...]], Any]) -> Any:
    """The rows in the order to insert them: PostgreSQL's concurrent writers take the unique index's entries
    in one order (so two batches sharing ids queue instead of deadlocking); SQLite's one writer keeps the
    batch's order (and an iterator of rows stays one)."""
    return sorted(rows, key=key) if dialect == _POSTGRESQL else rows


def session_locks(dialect: str) -> bool:
    """Whether a database session can hold a lock that dies with it (PostgreSQL's advisory locks)."""
    return dialect == _POSTGRESQL


def claim_lock_key(org_pk: int, key: str) -> int:
    """The advisory lock key of an (organisation, Idempotency-Key): 64 bits of a hash, so the same in every
    process (and apart from the `hashtext(...)` locks of migrations and bootstrap but by chance)."""
    digest = hashlib.blake2b(f"tally.idempotency\0{org_pk}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def try_claim_lock(conn: Connection, lock: int) -> bool:
    """Take the session-level advisory lock `lock` on `conn`'s session if nobody holds it (PostgreSQL)."""
    held = conn.execute(select(func.pg_try_advisory_lock(cast(lock, BigInteger)))).scalar_one()
    conn.commit()  # (SQLAlchemy's side; the lock is the session's)
    return bool(held)


def release_claim_lock(conn: Connection, lock: int) -> None:
    """Drop the session-level advisory lock `lock` that `conn`'s session holds (PostgreSQL)."""
    released = conn.execute(select(func.pg_advisory_unlock(cast(lock, BigInteger)))).scalar_one()
    conn.commit()
    if not released:
        raise RuntimeError("the idempotency claim's advisory lock was not held")


def lock_content(conn: Connection, sha256: str) -> None:
    """Inside a write transaction: hold an artifact content's lock until it ends (PostgreSQL's transaction-level
    advisory lock on 64 bits of the sha256; SQLite's write transactions are serialised already). See
    `tally_server.storage.artifacts`."""
    if conn.dialect.name == _POSTGRESQL:
        key = int.from_bytes(bytes.fromhex(sha256[:16]), "big", signed=True)
        conn.execute(select(func.pg_advisory_xact_lock(cast(key, BigInteger))))


def lock_bootstrap(conn: Connection) -> None:
    """Inside the bootstrap's transaction: on PostgreSQL, servers starting together make one first organisation
    (SQLite's write transactions are serialised already)."""
    if conn.dialect.name == _POSTGRESQL:
        conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("tally.bootstrap"))))


# The psycopg dialect's default paramstyle is pyformat (%(name)s); the driver takes %s with tuples too.
_POSITIONAL: dict[str, Dialect] = {
    "sqlite": sqlite.dialect(paramstyle="qmark"),
    _POSTGRESQL: postgresql.psycopg.dialect(paramstyle="format"),  # type: ignore[no-untyped-call]
}
_HOT: dict[tuple[str, Callable[[str], Any]], str] = {}
# A flag column is INTEGER 0/1 on SQLite and BOOLEAN on PostgreSQL. Python's sqlite3 binds only exact int, float,
# str and bytes directly: a bool goes through its adapter registry, per value (an insert of 10,000 points spent
# about 4 ms, an eighth of its time, adapting their `ts_auto`), so SQLite is given the integers it stores anyway.
_FLAGS: dict[str, tuple[Any, Any]] = {"sqlite": (0, 1), _POSTGRESQL: (False, True)}


def flags(dialect: str) -> tuple[Any, Any]:
    """(false, true) for a flag column's parameter in `executemany`'s rows."""
    return _FLAGS[dialect]


def executemany(
    conn: Connection, build: Callable[[str], Any], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Run the Core statement `build(dialect)` once per row of `rows` (tuples in the order of `columns`, a
    sequence or an iterator) with
    the driver's own executemany, inside `conn`'s transaction; how many rows it changed. The statement is
    compiled once per dialect; no dict is built per row, and SQLAlchemy's per-statement work is skipped: on the
    ingest path the cost is per row (`make bench` compares it with the bare driver)."""
    sql = _HOT.get((conn.dialect.name, build))
    if sql is None:
        compiled = build(conn.dialect.name).compile(dialect=_POSITIONAL[conn.dialect.name])
        if list(compiled.positiontup or ()) != list(columns):
            raise AssertionError(f"{build.__name__}: parameters {compiled.positiontup} are not {columns}")
        sql = _HOT[(conn.dialect.name, build)] = compiled.string
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)  # type: ignore[arg-type]  # (both drivers take any iterable)
        return int(cursor.rowcount)
    finally:
        cursor.close()

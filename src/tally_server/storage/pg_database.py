"""PostgreSQL connections: a psycopg 3 pool, one transaction per thread, versioned migrations.

The repository's queries are shared with SQLite (`tally_server.storage.sqlite`); `PgConnection` runs them on
PostgreSQL after a fixed set of rewrites (`_REWRITES`): `?` placeholders become `%s`, SQLite-only words
become their PostgreSQL equivalents. Each rewrite is one exact phrase listed here, so a query that changes in
sqlite.py without its rewrite fails loudly in the PostgreSQL test run rather than silently doing something
else. (An ORM or a query builder would do this too, at the price of rewriting every query of the repository;
the rewrites are short and tested on both databases by the same suite.)

Transactions: `write()` takes a pooled connection for the block and keeps it in a thread-local, so every
write the repository makes on this thread inside `Repository.atomic()` joins one transaction, as on SQLite.
Unlike SQLite, writers of different threads and processes run at once: the rules of the data model are
kept by the database (unique indexes, `ON CONFLICT`, row locks), not by a lock in this process.

Pinning: `pin()` keeps one pooled connection, its session, for the thread until `unpin()`; every read and write
the thread makes meanwhile runs on it (so a pinned thread never needs a second connection from the pool). What a
session-level lock taken on it guards then lives exactly as long as that session: the idempotency claims of
`tally_server.storage.postgres` die with the process or the database session that held them. `unpin()` inside a
transaction waits for it to commit (a lock dropped before the commit would free what the commit records).

Faults: an error that ends a write transaction leaves it as one of `tally_server.storage.faults`' errors when it
is a fault of the machine (disk full, connection lost), naming the database (never its password).

Durability: PostgreSQL's default `synchronous_commit=on` waits for the WAL flush before a commit returns, so
an answer of 2xx survives a crash of the machine; this module never turns it off.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict

from tally_server.storage.backends import redact_url
from tally_server.storage.faults import classify
from tally_server.storage.migrate import upgrade_url
from tally_server.storage.repository import UnstorableTextError

__all__ = ["PgConnection", "PgDatabase"]

logger = logging.getLogger("tally_server.storage")

# Every SQLite-only phrase of the shared queries and what PostgreSQL says instead (applied in order).
_REWRITES: tuple[tuple[str, str], ...] = (
    # The planner finds the unique index by itself (CROSS JOIN is how SQLite is told the join order).
    (
        " CROSS JOIN metric_points AS m INDEXED BY metric_points_by_client_event_id",
        " JOIN metric_points AS m",
    ),
    ("FROM json_each(?) AS j", "FROM tally_json_each(convert_from(?, 'UTF8')) AS j"),  # JSON bytes here
    (
        "folder IN (SELECT value FROM json_each(?))",
        "folder IN (SELECT value::bigint FROM tally_json_each(?))",
    ),
    ("name IN (SELECT value FROM json_each(?))", "name IN (SELECT value FROM tally_json_each(?))"),
    ("json_extract(metadata, ?)", "tally_json_extract(metadata, ?)"),
    ("json_type(metadata, ?)", "tally_json_type(metadata, ?)"),
    # The folder walks start from a row key: typed, as PostgreSQL wants both terms of a recursive union alike.
    ("AS (SELECT ? UNION", "AS (SELECT ?::bigint UNION"),
    # The scalar min() and max() of SQLite.
    ("min(first_us, excluded.first_us)", "least(metric_series.first_us, excluded.first_us)"),
    ("max(last_us, excluded.last_us)", "greatest(metric_series.last_us, excluded.last_us)"),
    # In ON CONFLICT ... DO UPDATE, PostgreSQL wants the stored row's columns qualified by the table's name.
    (
        "name) DO UPDATE SET count = count + excluded.count,",
        "name) DO UPDATE SET count = metric_series.count + excluded.count,",
    ),
    (
        "value) DO UPDATE SET count = count + excluded.count",
        "value) DO UPDATE SET count = metric_label_values.count + excluded.count",
    ),
    ("excluded.first_us < first_us", "excluded.first_us < metric_series.first_us"),
    ("excluded.last_us > last_us", "excluded.last_us > metric_series.last_us"),
    ("ELSE first_ts END", "ELSE metric_series.first_ts END"),
    ("ELSE last_ts END", "ELSE metric_series.last_ts END"),
    # An ingest holds its experiment's row against a concurrent close (which takes it FOR UPDATE).
    (
        "SELECT status, archived_at FROM experiments WHERE pk = ?",
        "SELECT status, archived_at FROM experiments WHERE pk = ? FOR SHARE",
    ),
    # So does an annotation against a concurrent archive (which updates the row, so waits for it).
    (
        "SELECT archived_at FROM experiments WHERE pk = ?",
        "SELECT archived_at FROM experiments WHERE pk = ? FOR SHARE",
    ),
)


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """A query of the SQLite repository as PostgreSQL runs it."""
    for old, new in _REWRITES:
        sql = sql.replace(old, new)
    return sql.replace("%", "%%").replace("?", "%s")


def _has_nul(params: Sequence[Any]) -> bool:
    """Whether a text parameter holds NUL, which PostgreSQL's text cannot: a write of one is refused as bad
    input (a 400), not a server error."""
    return any(type(value) is str and "\x00" in value for value in params)


class _Result:
    """The rows of one statement, fetched at once (the connection goes back to the pool right after)."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def close(self) -> None:
        self._next = len(self._rows)


class PgConnection:
    """One psycopg connection with the SQLite connection's surface that the repository uses."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn
        self.total_changes = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        if _has_nul(params):
            if sql.lstrip().startswith(("SELECT", "WITH")):
                # Stored text never holds NUL, so no row can match a value with one (every condition of the
                # repository's reads is a conjunction): answer what SQLite answers, no rows.
                return _Result([], 0)
            raise UnstorableTextError
        with self.raw.cursor() as cur:
            cur.execute(translate(sql), tuple(params))  # translated constant SQL
            query = cur.description is not None
            rows = cur.fetchall() if query else []
            changed = max(cur.rowcount, 0)
        if not query:
            self.total_changes += changed
        return _Result(rows, changed)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if any(_has_nul(row) for row in rows):
            raise UnstorableTextError
        with self.raw.cursor() as cur:
            cur.executemany(translate(sql), rows)  # translated constant SQL
            self.total_changes += max(cur.rowcount, 0)

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A savepoint inside the current transaction: an error inside rolls back to it, not the whole one."""
        with self.raw.transaction():
            yield


class _PooledReader:
    """Reads outside a transaction: each statement on a pooled connection in autocommit, which sees every
    commit made before it started (as SQLite's reader does)."""

    def __init__(self, pool: psycopg_pool.ConnectionPool[Any]) -> None:
        self._pool = pool

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        with self._pool.connection() as conn:
            return PgConnection(conn).execute(sql, params)


class PgDatabase:
    """The connections to one PostgreSQL database (`postgresql://user@host:port/dbname`)."""

    is_scratch = False
    synchronous = "on (synchronous_commit)"

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 16) -> None:
        self.url = url
        self.label = f"PostgreSQL database {conninfo_to_dict(url).get('dbname', '')!r}"
        """How messages name the database: its name alone (the URL may hold a password)."""
        self._local = threading.local()
        self._pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": "tally-server"},
            open=False,
            name="tally",
        )
        try:
            self._pool.open(wait=True, timeout=30.0)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise ConnectionError(f"cannot connect to {redact_url(url)} within 30 s") from exc
        self._reader = _PooledReader(self._pool)
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def _migrate(self) -> None:
        upgrade_url(self.url, label=redact_url(self.url))

    @property
    def schema_version(self) -> int:
        return int(self.reader().execute("SELECT max(version) FROM schema_version").fetchone()[0])

    def _current(self) -> PgConnection | None:
        conn: PgConnection | None = getattr(self._local, "conn", None)
        return conn

    def _pinned(self) -> psycopg.Connection[Any] | None:
        raw: psycopg.Connection[Any] | None = getattr(self._local, "pinned", None)
        return raw

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """This thread's pinned connection, else a pooled one for the block."""
        pinned = self._pinned()
        if pinned is not None:
            yield pinned
            return
        with self._pool.connection() as raw:
            yield raw

    def reader(self) -> PgConnection | _PooledReader:
        """Where to read: this thread's transaction when one is open (it sees its own writes), else its pinned
        connection, else the pool."""
        current = self._current()
        if current is not None:
            return current
        pinned = self._pinned()
        return self._reader if pinned is None else PgConnection(pinned)

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[PgConnection]:
        """A read-only transaction whose statements all see one snapshot (REPEATABLE READ)."""
        current = self._current()
        if current is not None:
            yield current
            return
        with self._connection() as raw:
            raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield PgConnection(raw)
            finally:
                raw.execute("COMMIT")

    @contextlib.contextmanager
    def write(self) -> Iterator[PgConnection]:
        """A transaction (READ COMMITTED), committed before the outermost `write()` of this thread returns; a
        `write()` inside another joins it."""
        current = self._current()
        if current is not None:
            yield current
            return
        committed = False
        try:
            with self._connection() as raw, raw.transaction():
                conn = PgConnection(raw)
                self._local.conn = conn
                try:
                    yield conn
                finally:
                    self._local.conn = None
            committed = True
        except Exception as exc:
            fault = classify(exc, self.label)
            if fault is None or fault is exc:
                raise
            raise fault from exc
        finally:
            after: Callable[[PgConnection], None] | None = getattr(self._local, "unpin_after_commit", None)
            self._local.unpin_after_commit = None
            if after is not None and committed:
                self._unpin_now(after)

    def pin(self) -> PgConnection:
        """Keep a pooled connection for this thread until `unpin()` (see the module's docstring)."""
        if self._pinned() is not None:
            raise RuntimeError("this thread already holds a pinned connection")
        raw = self._pool.getconn()
        self._local.pinned = raw
        return PgConnection(raw)

    def unpin(self, before: Callable[[PgConnection], None]) -> None:
        """Give the pinned connection back after `before(connection)` (which drops what the session held). Inside
        a transaction, once it commits; if it rolls back instead, the connection stays pinned (whoever pinned it
        unpins it again when it gives up)."""
        if self._current() is not None:
            self._local.unpin_after_commit = before
            return
        self._unpin_now(before)

    def _unpin_now(self, before: Callable[[PgConnection], None]) -> None:
        raw = self._pinned()
        self._local.pinned = None
        if raw is None:
            return
        try:
            before(PgConnection(raw))
        except Exception:
            # Whatever the session still holds must not go back to the pool with it: closing it drops it all.
            if not (raw.broken or raw.closed):  # (a session that is gone took what it held with it)
                logger.warning("closing a pinned connection that could not be reset", exc_info=True)
            raw.close()
        self._pool.putconn(raw)

    def close(self) -> None:
        self._pool.close()

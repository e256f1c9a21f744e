"""PostgreSQL connections: SQLAlchemy's pool of psycopg 3 connections, one transaction per thread, pinning.

The repository (`tally_server.storage.store`) runs its SQLAlchemy Core statements, compiled for PostgreSQL, on
connections this module hands out. Unlike SQLite, writers of different threads and processes run at once: the
rules of the data model are kept by the database (unique indexes, `ON CONFLICT`, row locks written where the
repository takes them), not by a lock in this process.

Transactions: every connection is in autocommit, and this module begins the transactions itself, on the driver
(psycopg's `transaction()`, or `BEGIN ... READ ONLY`), so a statement outside them costs one round trip and
nothing else. `write()` opens a transaction (READ COMMITTED) on a pooled connection for the block and keeps it in
a thread-local, so every write the repository makes on this thread inside `Repository.atomic()` joins one
transaction, as on SQLite, and every read meanwhile runs in it. `read()` outside one runs in autocommit (each
statement sees every commit made before it started); `snapshot()` is a REPEATABLE READ READ ONLY transaction,
for reads of several statements that must agree.

Pinning: `pin()` keeps one pooled connection, its session, for the thread until `unpin()`; every read and write
the thread makes meanwhile runs on it (so a pinned thread never needs a second connection from the pool). What a
session-level lock taken on it guards then lives exactly as long as that session: the idempotency claims of the
repository die with the process or the database session that held them. `unpin()` inside a transaction waits for
it to commit (a lock dropped before the commit would free what the commit records).

Faults: an error that ends a write transaction leaves it as one of `tally_server.storage.faults`' errors when it
is a fault of the machine (disk full, connection lost), naming the database (never its password). Text with NUL,
which PostgreSQL's text cannot hold, is `UnstorableTextError` (bad input, a 400), whatever statement met it.

Durability: PostgreSQL's default `synchronous_commit=on` waits for the WAL flush before a commit returns, so
an answer of 2xx survives a crash of the machine; this module never turns it off.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import ExceptionContext

from tally_server.storage.backends import redact_url
from tally_server.storage.faults import classify
from tally_server.storage.migrate import upgrade
from tally_server.storage.repository import UnstorableTextError

__all__ = ["PgDatabase"]

logger = logging.getLogger("tally_server.storage")
_CONNECT_SECONDS = 30.0


class PgDatabase:
    """The connections to one PostgreSQL database (`postgresql://user@host:port/dbname`)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, max_connections: int = 16) -> None:
        self.url = url
        self.label = f"PostgreSQL database {conninfo_to_dict(url).get('dbname', '')!r}"
        """How messages name the database: its name alone (the URL may hold a password)."""
        self._local = threading.local()
        self.engine = create_engine(
            "postgresql+psycopg://",
            creator=lambda: psycopg.connect(url, application_name="tally-server"),
            pool_size=max_connections,
            max_overflow=0,
            pool_timeout=_CONNECT_SECONDS,
            isolation_level="AUTOCOMMIT",  # transactions are the ones this module begins (see the docstring)
        )
        event.listen(self.engine, "handle_error", _refuse_nul)
        try:
            self._wait_until_reachable()
            # Alembic under its advisory lock, in a transaction of its own (this engine is in autocommit otherwise)
            upgrade(self.engine.execution_options(isolation_level="READ COMMITTED"), label=redact_url(url))
        except BaseException:
            self.engine.dispose()
            raise

    def _wait_until_reachable(self) -> None:
        deadline = time.monotonic() + _CONNECT_SECONDS
        while True:
            try:
                self.engine.connect().close()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise ConnectionError(
                        f"cannot connect to {redact_url(self.url)} within {_CONNECT_SECONDS:.0f} s"
                    ) from exc
                time.sleep(0.5)

    def check_available(self) -> None:
        """Nothing to check without a query: PostgreSQL owns its files (a lost connection is met by the request
        that needs it, and answered 503)."""

    def _tx(self) -> Connection | None:
        conn: Connection | None = getattr(self._local, "tx", None)
        return conn

    def _pinned(self) -> Connection | None:
        conn: Connection | None = getattr(self._local, "pinned", None)
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection]:
        """This thread's pinned connection, else a pooled one for the block."""
        pinned = self._pinned()
        if pinned is not None:
            yield pinned
            return
        with self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """Where to read: this thread's transaction when one is open (it sees its own writes), else its pinned
        connection, else a pooled one in autocommit."""
        tx = self._tx()
        if tx is not None:
            yield tx
            return
        with self._connection() as conn:
            yield conn

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction whose statements all see one snapshot (REPEATABLE READ)."""
        tx = self._tx()
        if tx is not None:
            yield tx
            return
        with self._connection() as conn:
            driver = _driver(conn)
            driver.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield conn
            finally:
                if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    with contextlib.suppress(psycopg.Error):  # a connection lost: its error is the one to see
                        driver.execute("ROLLBACK")

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction (READ COMMITTED), committed before the outermost `write()` of this thread returns; a
        `write()` inside another joins it."""
        tx = self._tx()
        if tx is not None:
            yield tx
            return
        committed = False
        try:
            with self._connection() as conn, _driver(conn).transaction():
                self._local.tx = conn
                try:
                    yield conn
                finally:
                    self._local.tx = None
            committed = True
        except Exception as exc:
            fault = classify(exc, self.label)
            if fault is None or fault is exc:
                raise
            raise fault from exc
        finally:
            after: Callable[[Connection], None] | None = getattr(self._local, "unpin_after_commit", None)
            self._local.unpin_after_commit = None
            if after is not None and committed:
                self._unpin_now(after)

    def pin(self) -> Connection:
        """Keep a pooled connection for this thread until `unpin()` (see the module's docstring)."""
        if self._pinned() is not None:
            raise RuntimeError("this thread already holds a pinned connection")
        conn = self.engine.connect()
        self._local.pinned = conn
        return conn

    def unpin(self, before: Callable[[Connection], None]) -> None:
        """Give the pinned connection back after `before(connection)` (which drops what the session held). Inside
        a transaction, once it commits; if it rolls back instead, the connection stays pinned (whoever pinned it
        unpins it again when it gives up)."""
        if self._tx() is not None:
            self._local.unpin_after_commit = before
            return
        self._unpin_now(before)

    def _unpin_now(self, before: Callable[[Connection], None]) -> None:
        conn = self._pinned()
        self._local.pinned = None
        if conn is None:
            return
        try:
            before(conn)
        except Exception:
            # Whatever the session still holds must not go back to the pool with it: closing it drops it all.
            if not conn.invalidated:
                logger.warning("closing a pinned connection that could not be reset", exc_info=True)
            conn.invalidate()
        finally:
            conn.close()

    def close(self) -> None:
        self.engine.dispose()


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy one (to begin and end transactions on it)."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def _refuse_nul(context: ExceptionContext) -> Any:
    """psycopg refuses to send text with NUL (PostgreSQL's text cannot hold it): that is bad input."""
    if isinstance(context.original_exception, psycopg.DataError) and "NUL" in str(context.original_exception):
        raise UnstorableTextError from context.original_exception
    return None

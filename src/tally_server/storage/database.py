"""SQLite connections: WAL, a busy timeout, foreign keys, private files, durable commits, bounded caches.

The repository (`tally_server.storage.store`) runs its SQLAlchemy Core statements on connections this module
hands out; they are the driver's own `sqlite3` connections, opened by `_connect` (the engines' `creator`) with
every setting below, and wrapped by SQLAlchemy's `Connection`.

One writer connection behind a lock (every write transaction is `BEGIN IMMEDIATE`, so several processes on one
file are serialised too) and one reader connection per thread. WAL lets readers run while a write is in progress,
and a committed write is visible to every read that starts afterwards. A write transaction is re-entrant on its
thread: the request pipeline opens one around an operation and its idempotency record, and the repository's own
`write()` inside it joins that transaction instead of committing early; a read on that thread meanwhile runs in
it too (it sees the thread's own writes). Otherwise a thread reads on its own reader, whose statements autocommit
(each sees the latest commit; `snapshot()` puts several in one read transaction). A thread's reader comes from a
pool at its first read and goes back to it when the thread ends, for the next new thread: the server's worker
threads come and go (anyio retires one idle for 10 seconds), and readers must not pile up with them.

The driver runs in autocommit mode (`isolation_level=None`) and this module says BEGIN itself (`BEGIN IMMEDIATE`
for a write, `BEGIN` for a snapshot), as SQLAlchemy's documentation advises for pysqlite: so transactions are
exactly those written here.

Memory: the page caches are bounded in total. The writer keeps `WRITER_CACHE_KIB` (32 MiB: ingest updates
several indexes), each reader `READER_CACHE_KIB` (2 MiB: a page of 1,000 points reads a few dozen pages, and the
operating system's cache holds the file anyway; measured on 2,000,000 points, listing pages went as fast as with
32 MiB). Readers kept are at most one per worker thread, 40 under uvicorn (anyio's default limiter), so the caches
stay under 32 + 41 x 2 = 114 MiB, within `CACHE_BUDGET_KIB` (128 MiB); the same budget is set as SQLite's soft
heap limit, process-wide, so that SQLite trims its caches rather than pass it even with more threads than that.
`make bench` prints the server's peak RSS under a long mixed load.

Durability: a file database commits with `synchronous=FULL`, so the WAL is fsynced before a commit returns and an
answer of 2xx survives a power loss or an OS crash. `fsync=False` (`tally serve --no-fsync`) trades that for
speed (`synchronous=NORMAL`: a commit survives the server's crash, not the machine's); `make bench` prints the
cost of each.

A database file deleted or replaced while the server runs (a cleanup job, a restore copied over it, a volume
remounted) would otherwise keep taking writes into an inode that no longer has a name: every answer a 200, and
all of it gone at the next start, where a new empty file looks healthy. So the server keeps one descriptor of
the file it opened (never closed before the connections: closing any descriptor of a SQLite file drops the
process's POSIX locks on it, see https://sqlite.org/howtocorrupt.html section 2.2) and compares it with the
path: `fstat` of the descriptor against `stat` of the path, same device and inode and at least one link. That
is two system calls (about 1.5 microseconds), made before every commit and whenever a read starts, so a write is
never acknowledged into a file that is gone and nothing is served from one: the answer is `DatabaseGoneError`
(503 `unavailable`, naming the file) until the file is back or the server restarts. The error logged names the
descriptor (`/proc/<pid>/fd/<n>`) through which the old data can still be copied.

A driver error inside a write transaction leaves it as one of `tally_server.storage.faults`' errors when it
is a fault of the machine (locked: busy; `SQLITE_FULL`: full), with this file's path in it.

`path=None` (or `":memory:"`) gives a scratch database: a real WAL file in a private temporary directory that is
deleted on close, never fsynced (nothing in it is meant to outlive the process). (A shared-cache in-memory
database would lock tables instead of using WAL, so concurrent readers would fail rather than wait; a scratch
file behaves exactly like a real one.)

Schema: `tally_server.storage.migrate.upgrade_url` brings the file to the schema this server knows (Alembic), at open,
before any other connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import QueuePool, StaticPool

from tally_server.storage.faults import DatabaseGoneError, classify
from tally_server.storage.migrate import SchemaTooNewError, upgrade_url

__all__ = [
    "CACHE_BUDGET_KIB",
    "READER_CACHE_KIB",
    "WRITER_CACHE_KIB",
    "Database",
    "SchemaTooNewError",
]

WRITER_CACHE_KIB = 32 * 1024
"""The writer connection's page cache."""
READER_CACHE_KIB = 2 * 1024
"""Each reader connection's page cache."""
CACHE_BUDGET_KIB = 128 * 1024
"""What SQLite's caches may hold in all: writer + one reader per worker thread, and the process's soft heap
limit."""
READERS_KEPT = 41
"""Idle readers kept for the next read: one per worker thread of uvicorn (40) and the main thread. More reads at
once than that get a reader of their own, closed when they end."""

logger = logging.getLogger("tally_server.storage")


class Database:
    """The connections to one SQLite database."""

    dialect = "sqlite"

    def __init__(self, path: str | os.PathLike[str] | None = None, *, fsync: bool = True) -> None:
        self._scratch_dir: str | None = None
        if path is None or str(path) == ":memory:":
            self._scratch_dir = tempfile.mkdtemp(prefix="tally-server-")
            self.path = Path(self._scratch_dir) / "scratch.sqlite3"
        else:
            self.path = Path(path).expanduser()
        self.label = str(self.path)
        self._create_private_file()
        self._file = _FileIdentity(self.path)
        self._synchronous = "OFF" if self._scratch_dir is not None else ("FULL" if fsync else "NORMAL")
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closed = False
        self._writer_engine = create_engine(
            "sqlite+pysqlite://",
            creator=lambda: self._connect(WRITER_CACHE_KIB, writer=True),
            poolclass=StaticPool,
        )
        self._reader_engine = create_engine(
            "sqlite+pysqlite://",
            creator=lambda: self._connect(READER_CACHE_KIB),
            poolclass=QueuePool,
            pool_size=READERS_KEPT,
            max_overflow=-1,
        )
        try:
            upgrade_url(self.path, label=self.label)
        except BaseException:
            self._file.close()
            raise
        self._writer: Connection = self._writer_engine.connect()

    def _create_private_file(self) -> None:
        """The database and its WAL files readable by their owner only: created so, or tightened if an existing
        file was made with wider permissions (it holds key hashes and every metric)."""
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        for file in (
            self.path,
            self.path.with_name(self.path.name + "-wal"),
            self.path.with_name(self.path.name + "-shm"),
        ):
            with contextlib.suppress(FileNotFoundError):
                if file.stat().st_mode & 0o077:
                    file.chmod(0o600)

    def _connect(self, cache_kib: int, *, writer: bool = False) -> sqlite3.Connection:
        """A driver connection with every setting of this module (SQLAlchemy's engines call it)."""
        if self._closed:
            raise RuntimeError("the database is closed")
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        conn.execute("PRAGMA temp_store=MEMORY")
        if writer:
            conn.execute("PRAGMA journal_mode=WAL")
            _limit_soft_heap(conn, CACHE_BUDGET_KIB * 1024)
        return conn

    def check_available(self) -> None:
        """Raise `DatabaseGoneError` when the file at `path` is no longer the one this server writes to."""
        self._file.check()

    @property
    def connection_count(self) -> int:
        """How many connections are open: the writer, and the readers lent out or idle."""
        pool = self._reader_engine.pool
        assert isinstance(pool, QueuePool)
        return 1 + pool.checkedin() + pool.checkedout()

    @property
    def synchronous(self) -> str:
        """The `synchronous` setting of every connection: FULL (durable), NORMAL (`fsync=False`), OFF (scratch)."""
        return self._synchronous

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection to read from: this thread's write transaction when it has one open, else this thread's
        reader, whose every statement sees the latest commit."""
        if getattr(self._local, "writing", False):
            yield self._writer
            return
        yield self._reader()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """Like `read()`, in a read transaction: every statement of the block sees the same snapshot."""
        if getattr(self._local, "writing", False):
            yield self._writer
            return
        conn = self._reader()
        driver = _driver(conn)
        driver.execute("BEGIN")
        try:
            yield conn
        finally:
            if driver.in_transaction:
                driver.execute("COMMIT")

    def _reader(self) -> Connection:
        """This thread's reader: taken from the pool at its first read, given back when the thread ends (its
        thread-local lease is collected then, and the finalizer closes the connection back into the pool)."""
        self._file.check()
        lease: _ReaderLease | None = getattr(self._local, "reader", None)
        if lease is None:
            if self._closed:
                raise RuntimeError("the database is closed")
            conn = self._reader_engine.connect()
            lease = self._local.reader = _ReaderLease(conn)
            weakref.finalize(lease, _give_back, conn)
        return lease.conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed before the outermost `write()` of this thread returns (so a read that
        starts afterwards sees it); a `write()` inside another joins it."""
        if getattr(self._local, "writing", False):
            yield self._writer
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the database is closed")
            conn = self._writer
            self._local.writing = True
            try:
                _driver(conn).execute("BEGIN IMMEDIATE")  # the write lock at once
                conn.begin()  # SQLAlchemy's side of it: its commit() and rollback() end the driver's
                try:
                    yield conn
                    self._file.check()  # never acknowledge a write into a file that is gone
                    conn.commit()
                except BaseException:
                    with contextlib.suppress(Exception):  # SQLite may have rolled it back already
                        conn.rollback()
                    raise
            except Exception as exc:
                fault = classify(exc, str(self.path), self.path.parent)
                if fault is None or fault is exc:
                    raise
                raise fault from exc
            finally:
                self._local.writing = False

    def close(self) -> None:
        """Close every connection; a scratch database is deleted."""
        with self._lock:
            self._closed = True
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer_engine.dispose()
            self._reader_engine.dispose()
            self._file.close()
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)


class _ReaderLease:
    """A reader connection lent to one thread (held in its thread-local storage)."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn


def _give_back(conn: Connection) -> None:
    with contextlib.suppress(Exception):  # the database may be closed already
        conn.close()


def _driver(conn: Connection) -> sqlite3.Connection:
    """The `sqlite3` connection under a SQLAlchemy one (to say BEGIN without a statement's overhead)."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def _limit_soft_heap(conn: sqlite3.Connection, limit_bytes: int) -> None:
    """Set SQLite's soft heap limit (process-wide: every connection of the process shares it) to `limit_bytes`,
    unless a lower one is already set."""
    current = int(conn.execute("PRAGMA soft_heap_limit").fetchone()[0])
    if current == 0 or current > limit_bytes:
        conn.execute(f"PRAGMA soft_heap_limit={int(limit_bytes)}")


class _FileIdentity:
    """The database file this server opened, held by a descriptor, compared with whatever `path` names now."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._gone = False

    def check(self) -> None:
        fd = self._fd
        if fd is None:
            return
        held = os.fstat(fd)
        try:
            named = os.stat(self.path)
        except OSError:  # no such file, or its directory is gone or unreadable: either way not ours
            named = None
        if (
            named is not None
            and held.st_nlink > 0
            and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
        ):
            if self._gone:
                logger.warning("the database file %s is back; serving again", self.path)
                self._gone = False
            return
        what = "deleted" if named is None else "replaced by another file"
        if not self._gone:
            self._gone = True
            logger.error(
                "the database file %s was %s while the server was running: every request is refused (503) "
                "until it is back, since nothing written now would be kept. Restart the server to serve the file "
                "now at that path. This process still holds the old file open as /proc/%d/fd/%d: copy it before "
                "stopping the server if its data is needed (its latest commits may still be in %s-wal).",
                self.path, what, os.getpid(), fd, self.path,
            )  # fmt: skip
        raise DatabaseGoneError(
            f"The database file {self.path} was {what} while the server was running; nothing written now would "
            "be kept. Restore the file or restart the server.",
            str(self.path),
        )

    def close(self) -> None:
        """After every connection is closed (closing it earlier would drop SQLite's locks on the file)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

"""SQLite connections: WAL, a busy timeout, foreign keys, versioned migrations, private files, durable commits.

One writer connection behind a lock (every write transaction is `BEGIN IMMEDIATE`, so several processes on one
file are serialised too) and one reader connection per thread. WAL lets readers run while a write is in progress,
and a committed write is visible to every reader that starts afterwards. A write transaction is re-entrant on its
thread: the request pipeline opens one around an operation and its idempotency record, and the repository's own
`write()` inside it joins that transaction instead of committing early.

Durability: a file database commits with `synchronous=FULL`, so the WAL is fsynced before a commit returns and an
answer of 2xx survives a power loss or an OS crash. `fsync=False` (`tally serve --no-fsync`) trades that for
speed (`synchronous=NORMAL`: a commit survives the server's crash, not the machine's); `make bench` prints the
cost of each.

`path=None` (or `":memory:"`) gives a scratch database: a real WAL file in a private temporary directory that is
deleted on close, never fsynced (nothing in it is meant to outlive the process). (A shared-cache in-memory
database would lock tables instead of using WAL, so concurrent readers would fail rather than wait; a scratch
file behaves exactly like a real one.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from tally_server.storage.migrations import MIGRATIONS

__all__ = ["Database", "SchemaTooNewError"]


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer server than this one."""


class Database:
    """The connections to one SQLite database."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, fsync: bool = True) -> None:
        self._scratch_dir: str | None = None
        if path is None or str(path) == ":memory:":
            self._scratch_dir = tempfile.mkdtemp(prefix="tally-server-")
            self.path = Path(self._scratch_dir) / "scratch.sqlite3"
        else:
            self.path = Path(path).expanduser()
        self._create_private_file()
        self._synchronous = "OFF" if self.is_scratch else ("FULL" if fsync else "NORMAL")
        self._lock = threading.Lock()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._migrate()

    @property
    def is_scratch(self) -> bool:
        return self._scratch_dir is not None

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

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA cache_size=-32768")
        conn.execute("PRAGMA temp_store=MEMORY")
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self._writer
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
                current = int(row[0] or 0)
                if current > len(MIGRATIONS):
                    raise SchemaTooNewError(
                        f"{self.path} has schema version {current}; this server knows up to {len(MIGRATIONS)}"
                    )
                for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                    for statement in _statements(script):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version(version) VALUES (?)", (version,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        return int(self.reader().execute("SELECT max(version) FROM schema_version").fetchone()[0])

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (autocommit: each statement sees the latest committed data)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("the database is closed")
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same snapshot."""
        conn = self.reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @property
    def synchronous(self) -> str:
        """The `synchronous` setting of every connection: FULL (durable), NORMAL (`fsync=False`), OFF (scratch)."""
        return self._synchronous

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed before the outermost `write()` of this thread returns (so a reader
        that starts afterwards sees it); a `write()` inside another joins it."""
        if getattr(self._local, "writing", False):
            yield self._writer
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the database is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            self._local.writing = True
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            finally:
                self._local.writing = False

    def close(self) -> None:
        """Close every connection; a scratch database is deleted."""
        with self._lock:
            self._closed = True
            with self._all_lock:
                for conn in self._all:
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
                self._all.clear()
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into complete statements."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {buffer.strip()[:80]!r}")

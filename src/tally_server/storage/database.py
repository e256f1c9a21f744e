"""SQLite connections: WAL, a busy timeout, foreign keys, versioned migrations, private files.

One writer connection behind a lock (every write transaction is `BEGIN IMMEDIATE`, so several processes on one
file are serialised too) and one reader connection per thread. WAL lets readers run while a write is in
progress,
and a committed write is visible to every reader that starts afterwards.

`path=None` (or `":memory:"`) gives a scratch database: a real WAL file in a private temporary directory
that is
deleted on close. (A shared-cache in-memory database would lock tables instead of using WAL, so
concurrent readers
would fail rather than wait; a scratch file behaves exactly like a real one.)
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

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._scratch_dir: str | None = None
        if path is None or str(path) == ":memory:":
            self._scratch_dir = tempfile.mkdtemp(prefix="tally-server-")
            self.path = Path(self._scratch_dir) / "scratch.sqlite3"
        else:
            self.path = Path(path).expanduser()
        self._create_private_file()
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
        if self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=OFF" if self.is_scratch else "PRAGMA synchronous=NORMAL")
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

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed before this returns (so a reader that starts afterwards sees it)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the database is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

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

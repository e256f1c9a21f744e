"""What a failure of the database itself means for the request that met it: busy, gone, or full.

The drivers raise their own exceptions (`sqlite3.OperationalError` for a locked database and for a full disk
alike; psycopg's `OperationalError` for a lost connection and for `disk_full` alike), which SQLAlchemy wraps,
keeping the driver's as `orig`. Only this module reads
them, and turns the ones that are a fault of the machine, not of the request, into one of three errors that the
HTTP layer answers without knowing any driver:

- `DatabaseBusyError`: locked (`SQLITE_BUSY`, `SQLITE_LOCKED`), unreachable, or asking this transaction to
  retry (a deadlock, a serialisation failure): 503 `unavailable` with `Retry-After: 1`, since the same request
  can succeed a moment later;
- `DatabaseGoneError`: the SQLite file was deleted or replaced while the server held it open (see
  `tally_server.storage.database`): 503 `unavailable` naming the file, without `Retry-After` (waiting does not
  bring it back; an operator does);
- `DatabaseFullError`: no space left (`SQLITE_FULL`, `ENOSPC`, PostgreSQL's `disk_full`, SQLSTATE 53100): 507
  `insufficient_storage`, never retried by the SDK (a full disk does not empty itself by waiting), logged as an
  error naming what is full.

Anything else (a constraint, a bug) is not a fault of this kind: `classify` answers None and it propagates as
it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import sys
from pathlib import Path

import sqlalchemy.exc

__all__ = [
    "DatabaseBusyError",
    "DatabaseFault",
    "DatabaseFullError",
    "DatabaseGoneError",
    "classify",
]

# SQLite's primary result codes (the low byte of an extended code): https://sqlite.org/rescode.html
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_IOERR = 10
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
# Less than this free on the database's file system, and an I/O error of SQLite is taken for a full disk (SQLite
# reports some ENOSPC as SQLITE_IOERR_*, for instance when it cannot grow the WAL index, and keeps the errno).
_NEARLY_FULL_BYTES = 64 * 1024


class DatabaseFault(Exception):
    """The database cannot do what the request asked, for a reason of the machine, not of the request.

    `database` names it for people (the SQLite file's path, or "PostgreSQL database 'name'"), never with a
    password; None when the failure was met outside the code that knows which database it is."""

    def __init__(self, message: str, database: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.database = database


class DatabaseBusyError(DatabaseFault):
    """Locked, unreachable, or a transaction the database asked to retry: the same request can succeed soon."""


class DatabaseGoneError(DatabaseFault):
    """The SQLite file the server holds open was deleted or replaced: nothing written now would be kept."""


class DatabaseFullError(DatabaseFault):
    """No space is left where the database writes."""


def classify(
    exc: BaseException, database: str | None = None, directory: Path | None = None
) -> DatabaseFault | None:
    """The fault `exc` (a driver's exception) means, or None when it is not one. `directory` is where a SQLite
    database's files are (to tell a full disk from another I/O error)."""
    if isinstance(exc, DatabaseFault):
        return exc
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig  # SQLAlchemy wraps the driver's exception
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # no pooled connection free in time
        return DatabaseBusyError(
            f"the database is busy ({database or 'its connection pool'}): {exc}", database
        )
    where = f" ({database})" if database else ""
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return DatabaseBusyError(f"the database is locked{where}: {exc}", database)
        if code == _SQLITE_FULL or (code == _SQLITE_IOERR and _nearly_full(directory)):
            return _full(database, getattr(exc, "sqlite_errorname", None) or str(exc))
        return None
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return _full(database, os.strerror(exc.errno or errno.ENOSPC))
    psycopg = sys.modules.get("psycopg")  # looked up, not imported: a SQLite server never loads it
    if psycopg is not None and isinstance(exc, psycopg.Error):
        if exc.sqlstate == _PG_DISK_FULL:
            return _full(database, "disk_full, SQLSTATE 53100")
        if isinstance(exc, psycopg.OperationalError):  # also the pool's timeout
            return DatabaseBusyError(f"the database is unreachable or busy{where}: {exc}", database)
    return None


def _full(database: str | None, cause: str) -> DatabaseFullError:
    what = database or "the server's database"
    return DatabaseFullError(f"No space is left for {what} ({cause}); free some space, then retry.", database)


def _nearly_full(directory: Path | None) -> bool:
    if directory is None:
        return False
    with contextlib.suppress(OSError):
        stats = os.statvfs(directory)
        return stats.f_bavail * stats.f_frsize < _NEARLY_FULL_BYTES
    return False

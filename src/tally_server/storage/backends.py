"""Which backend a `--db` value selects: a PostgreSQL URL, or a SQLite file path (or `:memory:`).

A value that looks like a URL of any other scheme is refused rather than taken for a file name (without this
check `--db mysql://host/db` would quietly create a SQLite file under `./mysql:/host/db`).
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

from tally_server.storage.repository import Repository

__all__ = ["UnsupportedDatabaseError", "is_postgres", "open_repository", "redact_url"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class UnsupportedDatabaseError(ValueError):
    """A database URL of a scheme this server does not speak."""


def is_postgres(db: str | os.PathLike[str] | None) -> bool:
    return isinstance(db, str) and db.startswith(_POSTGRES_SCHEMES)


def open_repository(db: str | os.PathLike[str] | None, *, fsync: bool = True) -> Repository:
    """The repository for `db`: PostgreSQL for `postgresql://...`, SQLite for a path, `:memory:` or None."""
    if is_postgres(db):
        assert isinstance(db, str)
        if not fsync:
            raise ValueError(
                "--no-fsync applies to SQLite only; on PostgreSQL set synchronous_commit in the server's "
                "configuration instead"
            )
        from tally_server.storage.store import open_postgres

        return open_postgres(db)
    if isinstance(db, str) and _URL.match(db):
        scheme = db.split("://", 1)[0]
        raise UnsupportedDatabaseError(
            f"unsupported database URL scheme {scheme!r}: use postgresql://user@host/dbname for PostgreSQL, "
            "or a file path (or :memory:) for SQLite"
        )
    from tally_server.storage.store import open_sqlite

    return open_sqlite(db, fsync=fsync)


def redact_url(url: str) -> str:
    """The database URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))

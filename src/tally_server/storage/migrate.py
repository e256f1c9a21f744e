"""The schema brought up to date at start-up: one Alembic history (`storage/alembic/versions/`) for both
backends, run programmatically (no alembic.ini).

- An empty database goes straight to the newest revision (the head).
- A database of the releases before Alembic (a `schema_version` table at N, no `alembic_version`) is stamped at
  revision N (revisions 0001-0003 create exactly what legacy versions 1-3 created) and upgraded in place: the
  revisions after N only add to it, every row is kept.
- A database newer than this code (an `alembic_version` revision it does not know, or a legacy version past its
  history) is refused in one line: `SchemaTooNewError`.
- The legacy `schema_version` table stays, and after every upgrade holds the number of revisions applied (a
  revision's position in the history). Servers of the releases before Alembic read only that table: a database
  upgraded past their schema is refused by them in their own one line ("has schema version 4; this server knows
  up to 3") rather than served with columns they do not know.

Several servers may start at once on one database: the upgrade runs in one transaction under a lock, so one
migrates and the others wait for it, then find the head and do nothing. PostgreSQL: a transaction-scoped advisory
lock (the key the releases before Alembic took too, so old and new servers take turns as well), and DDL is
transactional there, so a failed upgrade leaves nothing behind. SQLite: `BEGIN IMMEDIATE` (the write lock of the
file) on a connection of its own, closed afterwards; SQLite's DDL is transactional as well.

Adding a revision: copy the newest file in `alembic/versions/`, number it next (`0004_what.py`, `revision =
"0004"`, `down_revision = "0003"`), write `upgrade()` with `op.*` and no import of the app's tables (a revision
records the schema as it shipped), with a visible `if sqlite:` branch where the backends truly differ. The
repository's tables must then match the head: the tests compare them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = ["SCRIPT_LOCATION", "SchemaTooNewError", "head", "revisions", "upgrade", "upgrade_url"]

logger = logging.getLogger("tally_server.storage")

SCRIPT_LOCATION = Path(__file__).with_name("alembic")
"""The Alembic script directory: `env.py` and `versions/`, shipped in the package."""

_PG_LOCK = "SELECT pg_advisory_xact_lock(hashtext('tally.migrate'))"
"""The lock every server (this release's and the ones before it) takes around its migration on PostgreSQL."""


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer server than this one."""


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


@functools.cache
def revisions() -> tuple[str, ...]:
    """The revisions of the history, oldest first (legacy schema version N is the Nth). The history is one line:
    a revision's position is what `schema_version` records."""
    script = ScriptDirectory.from_config(_config())
    if len(script.get_heads()) != 1:
        raise RuntimeError(
            f"the migration history in {SCRIPT_LOCATION} must have one head: {script.get_heads()}"
        )
    return tuple(r.revision for r in reversed(list(script.walk_revisions())))


def head() -> str:
    """The newest revision this code knows."""
    return revisions()[-1]


def upgrade(engine: sa.Engine, *, label: str | None = None) -> None:
    """Bring the database of `engine` to the head (see the module's docstring). `label` names the database in
    the refusal (default: its URL without the password, or the SQLite file's path)."""
    label = label if label is not None else _label(engine.url)
    with _locked(engine) as conn:
        _upgrade(conn, label)


def upgrade_url(url: str | os.PathLike[str] | sa.URL, *, label: str | None = None) -> None:
    """`upgrade()` for a caller without an engine: a SQLite file's path, `postgresql://...` (libpq's URL,
    connected with psycopg) or a SQLAlchemy URL; the engine made for it is disposed of afterwards."""
    if isinstance(url, os.PathLike):
        url = sa.URL.create("sqlite", database=os.fspath(url))
    elif isinstance(url, str) and url.startswith(("postgresql://", "postgres://")):
        url = sa.make_url("postgresql+psycopg://" + url.split("://", 1)[1])
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        upgrade(engine, label=label)
    finally:
        engine.dispose()


def _label(url: sa.URL) -> str:
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)


@contextlib.contextmanager
def _locked(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that holds the migration lock, committed when the block ends."""
    if engine.dialect.name != "sqlite":
        with engine.connect() as conn, conn.begin():
            conn.execute(sa.text(_PG_LOCK))
            yield conn
        return
    # SQLite: the driver's own transaction handling (an implicit BEGIN before DML only, never before DDL) would
    # leave the DDL in autocommit. So a connection of its own in autocommit, where the transaction is ours:
    # BEGIN IMMEDIATE takes the file's write lock before anything is read.
    if engine.url.database in (None, "", ":memory:"):
        raise ValueError("migrating a SQLite database needs its file (an in-memory database has none)")
    own = sa.create_engine(
        engine.url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT", connect_args={"timeout": 30.0}
    )
    try:
        with own.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    finally:
        own.dispose()


@contextlib.contextmanager
def _alembic_quiet() -> Iterator[None]:
    """Alembic's INFO lines (plugins set up, the dialect's impl, each step) at every start would bury the
    server's banner: one line of ours says what changed instead. `--log-level debug` shows them all."""
    alembic_logger = logging.getLogger("alembic")
    if alembic_logger.isEnabledFor(logging.DEBUG):
        yield
        return
    before = alembic_logger.level
    alembic_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        alembic_logger.setLevel(before)


def _upgrade(conn: sa.Connection, label: str) -> None:
    with _alembic_quiet():
        _upgrade_quietly(conn, label)


def _upgrade_quietly(conn: sa.Connection, label: str) -> None:
    known = revisions()
    config = _config(conn)
    current = MigrationContext.configure(conn).get_current_revision()
    legacy = _legacy_version(conn)
    if current is not None and current not in known:
        raise SchemaTooNewError(
            f"{label} has schema revision {current}, which this server does not know; "
            f"this server knows up to {known[-1]}"
        )
    if legacy > len(known):  # (also checked with an alembic_version: every upgrade writes both)
        raise SchemaTooNewError(f"{label} has schema version {legacy}; this server knows up to {len(known)}")
    if current is None and legacy > 0:  # a release before Alembic made exactly the schema of revision N
        current = known[legacy - 1]
        command.stamp(config, current)
    if current != known[-1]:
        command.upgrade(config, "head")
        logger.info("%s: schema upgraded from %s to revision %s", label, current or "nothing", known[-1])
    conn.execute(sa.text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
    if _legacy_version(conn) < len(known):
        conn.execute(sa.text("INSERT INTO schema_version(version) VALUES (:n)"), {"n": len(known)})


def _legacy_version(conn: sa.Connection) -> int:
    """The `schema_version` of the releases before Alembic (0 if the table is missing or empty)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.text("SELECT max(version) FROM schema_version")).scalar() or 0)

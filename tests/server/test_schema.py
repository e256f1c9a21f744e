"""`storage/schema.py` declares exactly the schema the Alembic history makes at its head, on both backends: the
same tables, columns (type, nullability, default), primary keys, unique constraints and indexes. (The history
itself makes what the releases before Alembic made: test_migrations.py.) A revision without its change in
schema.py, or the reverse, fails here."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text

from tally_server.storage.database import Database
from tally_server.storage.pg_database import PgDatabase
from tally_server.storage.schema import SQLITE_ONLY, metadata

from .postgres_cluster import PostgresCluster


def _sqlite_shape(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if name not in ("schema_version", "sqlite_sequence", "alembic_version")
        ]
        shape: dict[str, Any] = {}
        for table in tables:
            # (name, type, notnull, default, pk); a primary key column counts as NOT NULL whatever its DDL said:
            # SQLAlchemy writes it, the legacy DDL left it implicit (SQLite's INTEGER PRIMARY KEY is never NULL)
            columns = [
                (name, kind, notnull or pk > 0, default, pk)
                for _, name, kind, notnull, default, pk in conn.execute(f"PRAGMA table_info({table})")
            ]
            indexes = {}
            for _, name, unique, origin, _partial in conn.execute(f"PRAGMA index_list({table})"):
                keys = [row[2] for row in conn.execute(f"PRAGMA index_info({name})")]
                indexes[name if origin == "c" else (origin, tuple(keys))] = (bool(unique), tuple(keys))
            without_rowid = "WITHOUT ROWID" in conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            ).fetchone()[0].upper().replace("\n", " ")  # fmt: skip
            shape[table] = (columns, indexes, without_rowid)
        return shape
    finally:
        conn.close()


def test_the_declared_sqlite_schema_is_the_migrated_one(tmp_path: Path) -> None:
    migrated = tmp_path / "migrated.sqlite3"
    Database(migrated).close()
    declared = tmp_path / "declared.sqlite3"
    engine = create_engine(f"sqlite:///{declared}")
    metadata.create_all(engine)
    engine.dispose()
    assert _sqlite_shape(declared) == _sqlite_shape(migrated)


_PG_SHAPE = text(
    """
    SELECT 'column', table_name || '.' || column_name,
           data_type || coalesce(' ' || collation_name, '') || ' ' || is_nullable || ' '
           || coalesce(column_default, '') || ' ' || is_identity
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT 'index', indexname, indexdef
      FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT 'constraint', conrelid::regclass::text || ' ' || conname, pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'sequence', sequence_name, data_type FROM information_schema.sequences
     WHERE sequence_schema = 'public'
    """
)


def _pg_shape(url: str) -> set[tuple[str, ...]]:
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(url))
    try:
        with engine.connect() as conn:
            return {
                tuple(row)
                for row in conn.execute(_PG_SHAPE)
                if "schema_version" not in row[1] and "alembic_version" not in row[1]
            }
    finally:
        engine.dispose()


def test_the_declared_postgresql_schema_is_the_migrated_one(postgres: PostgresCluster) -> None:
    migrated = postgres.create_database("migrated")
    PgDatabase(migrated).close()
    declared = postgres.create_database("declared")
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(declared))
    metadata.create_all(engine, tables=[t for t in metadata.sorted_tables if t.name not in SQLITE_ONLY])
    engine.dispose()
    assert _pg_shape(declared) ^ _pg_shape(migrated) == set()

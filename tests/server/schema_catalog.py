"""A database's schema as comparable data, read from its catalog: what the migration tests compare between a
database made by the release before Alembic and one made by the Alembic history (tables, columns with types,
nullability, defaults and collations, keys, foreign keys, checks, indexes with their expressions, WITHOUT ROWID,
PostgreSQL's sequences and functions). Alembic's own `alembic_version` table is left out."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import psycopg

__all__ = ["schema_of"]

_SKIP = ("alembic_version",)


def schema_of(db: str | Path) -> dict[str, Any]:
    if isinstance(db, str) and db.startswith("postgresql://"):
        return _postgres(db)
    return _sqlite(Path(db))


def _squash(sql: str) -> str:
    """SQL without its spacing and identifier quotes, lowercased: the same statement written two ways."""
    return re.sub(r'[\s"]+', "", sql).lower()


def _checks(sql: str) -> list[str]:
    """The CHECK expressions of a CREATE TABLE statement (column or table constraints alike)."""
    found = []
    for match in re.finditer(r"\bCHECK\s*\(", sql, flags=re.IGNORECASE):
        depth, start = 1, match.end()
        for end in range(start, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                found.append(_squash(sql[start:end]))
                break
    return sorted(found)


def _sqlite(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        schema: dict[str, Any] = {}
        for name, sql in tables:
            if name in _SKIP:
                continue
            indexes = {}
            for _, index, unique, origin, partial in conn.execute(f"PRAGMA index_list('{name}')"):
                columns = [
                    tuple(row[1:5]) for row in conn.execute(f"PRAGMA index_xinfo('{index}')") if row[5]
                ]
                row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (index,)).fetchone()
                text = row[0] if row else None  # (a WITHOUT ROWID table's key has no row there)
                key = index if origin == "c" else f"{origin}:{[c[1] for c in columns]}"  # sqlite_autoindex_N
                indexes[key] = (unique, origin, partial, columns, _squash(text) if text else None)
            schema[name] = {
                "columns": [tuple(row[1:6]) for row in conn.execute(f"PRAGMA table_xinfo('{name}')")],
                "foreign_keys": sorted(
                    tuple(row[2:]) for row in conn.execute(f"PRAGMA foreign_key_list('{name}')")
                ),
                "indexes": indexes,
                "checks": _checks(sql),
                "without_rowid": _squash(sql).endswith("withoutrowid"),
            }
        return schema
    finally:
        conn.close()


def _postgres(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [row for row in conn.execute(sql).fetchall() if row[0] not in _SKIP]

        return {
            "columns": rows(
                "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default, "
                "collation_name, is_identity, identity_generation FROM information_schema.columns "
                "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
            ),
            "constraints": rows(
                "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
            ),
            "indexes": rows(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
            ),
            "sequences": rows(
                "SELECT sequencename, data_type::text, start_value, increment_by, max_value, cycle "
                "FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"
            ),
            "functions": rows(
                "SELECT proname, pg_get_functiondef(oid) FROM pg_proc "
                "WHERE pronamespace = 'public'::regnamespace ORDER BY 1"
            ),
        }

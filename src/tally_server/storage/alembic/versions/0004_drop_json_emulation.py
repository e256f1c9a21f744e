"""Drop the three PostgreSQL functions that made PostgreSQL read SQLite's JSON paths.

Revision 0001 created `tally_json_each`, `tally_json_extract` and `tally_json_type` so that SQLite's SQL text,
rewritten, could run on PostgreSQL. The repository now writes each statement once in SQLAlchemy Core, and JSON
access is a named function of `storage/dialects.py` that uses PostgreSQL's own operators, so nothing calls them.
SQLite has nothing to drop. Self-contained (see 0001).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for function in (
        "tally_json_each(TEXT)",
        "tally_json_extract(TEXT, TEXT)",
        "tally_json_type(TEXT, TEXT)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")


def downgrade() -> None:
    raise NotImplementedError("the schema is only ever upgraded")

"""Ingestion keys may expire (legacy schema version 2).

The SDK mints its keys with an expiry, so the keys of clients that exit without cleaning up stop working on
their own. Self-contained (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("expires_us", BIG))
    op.add_column("api_keys", sa.Column("expires_at", sa.Text()))


def downgrade() -> None:
    raise NotImplementedError("the schema is only ever upgraded")

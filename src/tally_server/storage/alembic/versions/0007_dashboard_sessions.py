"""The dashboard's sessions and one-time login links (contract 1.5.0: `createLoginLink`, `DashboardSession`).

Both tables hold hashes of tokens, never tokens. Each is indexed by its key, so deleting keys (an experiment's
ingestion keys, deleteExperiment) never scans them for the foreign-key check. Self-contained (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.Text(), primary_key=True),
        sa.Column("key", BIG, sa.ForeignKey("api_keys.pk"), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("expires_us", BIG, nullable=False),
    )
    op.create_index("dashboard_sessions_by_expiry", "dashboard_sessions", ["expires_us"])
    op.create_index("dashboard_sessions_by_key", "dashboard_sessions", ["key"])
    op.create_table(
        "login_links",
        sa.Column("token_hash", sa.Text(), primary_key=True),
        sa.Column("key", BIG, sa.ForeignKey("api_keys.pk"), nullable=False),
        sa.Column("expires_us", BIG, nullable=False),
        sa.Column("used_us", BIG),
    )
    op.create_index("login_links_by_expiry", "login_links", ["expires_us"])
    op.create_index("login_links_by_key", "login_links", ["key"])


def downgrade() -> None:
    raise NotImplementedError("the schema is only ever upgraded")

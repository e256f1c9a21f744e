"""Artifacts (contract 1.7.0: `uploadArtifact`, `listArtifacts`, `getArtifact`, `downloadArtifact`,
`deleteArtifact`): a row per file attached to an experiment; the content lives on the filesystem, content-addressed
by sha256 (`tally_server.artifacts`). Indexed by experiment (lists, and deleteExperiment's foreign-key check) and by
sha256 (whether a content is still used when an artifact goes). Self-contained (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        row_key = sa.Column("pk", sa.Integer(), primary_key=True, nullable=True)
    else:
        row_key = sa.Column("pk", sa.BigInteger(), sa.Identity(), primary_key=True)
    op.create_table(
        "artifacts",
        row_key,
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("experiment", BIG, sa.ForeignKey("experiments.pk"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("size_bytes", BIG, nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.UniqueConstraint("id"),
    )
    op.create_index("artifacts_by_experiment", "artifacts", ["experiment", "pk"])
    op.create_index("artifacts_by_sha256", "artifacts", ["sha256"])


def downgrade() -> None:
    raise NotImplementedError("the schema is only ever upgraded")

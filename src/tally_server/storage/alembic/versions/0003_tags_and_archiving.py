"""Experiment tags, archiving of experiments and folders (legacy schema version 3).

The resource lifecycle of contract 1.2.0. Self-contained (see 0001).

`experiments.tags` keeps an experiment's tags as sent (a JSON array, in order); `experiment_tags` holds one row
per tag for the `tag` filter of listExperiments, keyed so that a filtered page walk is one range of it in
experiment order; its primary key forbids a tag twice on one experiment.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.Text(collation="C").with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.add_column("experiments", sa.Column("tags", sa.Text(), nullable=False, server_default="[]"))
    op.add_column("experiments", sa.Column("archived_at", sa.Text()))
    op.add_column("folders", sa.Column("archived_at", sa.Text()))
    op.create_table(
        "experiment_tags",
        sa.Column("org", BIG, nullable=False),
        sa.Column("tag", NAME, nullable=False),
        sa.Column("experiment", BIG, sa.ForeignKey("experiments.pk"), nullable=False),
        sa.PrimaryKeyConstraint("org", "tag", "experiment"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    raise NotImplementedError("the schema is only ever upgraded")

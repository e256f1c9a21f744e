"""Experiment groups (contract 1.7.0): `experiments.run_group` and the index of listExperiments' `group` filter.

The contract's field is `group`, a keyword in SQL, so the column is `run_group` (null: in no group). The index
(org, run_group, pk) makes a page of one group one range in experiment order, whatever the number of other
experiments. Self-contained (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NAME = sa.Text(collation="C").with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.add_column("experiments", sa.Column("run_group", NAME))
    op.create_index("experiments_by_group", "experiments", ["org", "run_group", "pk"])


def downgrade() -> None:
    raise NotImplementedError("the schema is only ever upgraded")

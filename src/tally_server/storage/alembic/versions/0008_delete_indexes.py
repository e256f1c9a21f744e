"""Indexes for deleting (contract 1.5.0): the foreign-key checks of deleteExperiment and deleteFolder.

Deleting an experiment's row makes the database check that no `experiment_tags` row still refers to it, and
deleting a folder's row that no folder has it as `parent`. Neither table had an index that starts with that
column (`experiment_tags` is keyed (org, tag, experiment), `folders_by_parent` is (org, parent, pk)), so each
check read the whole table: a delete's cost grew with every other organisation's tags and folders. Self-contained
(see 0001).
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("experiment_tags_by_experiment", "experiment_tags", ["experiment"])
    op.create_index("folders_by_parent_only", "folders", ["parent"])


def downgrade() -> None:
    raise NotImplementedError("the schema is only ever upgraded")

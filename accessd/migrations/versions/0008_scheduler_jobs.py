"""the last run of each scheduled job, for one scheduler per cluster and catching up missed runs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 05:00:00

No rows: a job's first leader records it (accessd.jobs).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_job",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("due_after", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16)),
        sa.Column("ran_by", sa.String(200)),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("error", sa.String(300)),
    )


def downgrade() -> None:
    op.drop_table("scheduler_job")

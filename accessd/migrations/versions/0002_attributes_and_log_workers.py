"""account attributes; API client default purpose; per-worker decision-log counters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.add_column(sa.Column("attributes", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("api_client") as batch:
        batch.add_column(sa.Column("default_purpose", sa.String(length=64), nullable=True))
    op.create_table(
        "decision_log_worker",
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("written", sa.BigInteger(), nullable=False),
        sa.Column("failed_batches", sa.Integer(), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker"),
    )


def downgrade() -> None:
    op.drop_table("decision_log_worker")
    with op.batch_alter_table("api_client") as batch:
        batch.drop_column("default_purpose")
    with op.batch_alter_table("account") as batch:
        batch.drop_column("attributes")

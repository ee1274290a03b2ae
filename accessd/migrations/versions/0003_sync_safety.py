"""sync safety: who disabled an account, where a sync run came from, the run lock

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 13:00:00

Existing disabled accounts get ``disabled_by`` from their newest leaver (or joiner) lifecycle
event; without one, "directory" when their reason starts with ``directory:`` (what the sync used
to go by) and "admin" otherwise. Existing runs get their source from their actor.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.add_column(sa.Column("disabled_by", sa.String(length=16), nullable=True))
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=True))
    op.create_table(
        "run_lock",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        """
        UPDATE account SET disabled_by = COALESCE(
            (SELECT e.source FROM lifecycle_event e
              WHERE e.account_id = account.id AND e.kind IN ('leaver', 'joiner')
              ORDER BY e.id DESC LIMIT 1),
            CASE WHEN status_reason LIKE 'directory:%' THEN 'directory' ELSE 'admin' END)
        WHERE status = 'disabled'
        """
    )
    op.execute(
        """
        UPDATE sync_run SET source = CASE
            WHEN actor LIKE 'system:scheduler%' THEN 'scheduler'
            WHEN actor LIKE 'cli%' THEN 'cli'
            ELSE 'other' END
        """
    )


def downgrade() -> None:
    op.drop_table("run_lock")
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("account") as batch:
        batch.drop_column("disabled_by")

"""a change sequence on accounts (and their grants), API clients and policy revisions, and the counter
every worker polls (or is notified of) to apply only what changed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 04:00:00

Existing rows get sequence 0 and the counter starts at 0: a worker's first load reads everything.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("account", "api_client", "policy_revision")  # a grant's change is its account's


def upgrade() -> None:
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("reload_seq", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO change_counter (id, seq, reload_seq) VALUES (1, 0, 0)")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0"))
        op.create_index(f"ix_{table}_change_seq", table, ["change_seq"])


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_change_seq", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("change_seq")
    op.drop_table("change_counter")

"""one lifecycle for every source: departures at a moment, suspensions, typed sources with the
event they came from; SCIM groups; HR events; Shared Signals keys, streams and outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 16:00:00

Existing accounts get ``origin`` "directory" when they have a directory key, else "cli".
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.add_column(sa.Column("departure_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("external_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("origin", sa.String(length=16), nullable=True))
        batch.create_index("ix_account_departure_at", ["departure_at"])
    op.execute("UPDATE account SET origin = CASE WHEN directory_key IS NULL THEN 'cli' ELSE 'directory' END")
    with op.batch_alter_table("lifecycle_event") as batch:
        batch.add_column(sa.Column("event_ref", sa.String(length=200), nullable=True))
    with op.batch_alter_table("admin_user") as batch:
        batch.add_column(sa.Column("last_login_at", sa.DateTime(), nullable=True))
    op.create_index("ix_decision_subject_at", "decision_log", ["subject_id", "at"])
    op.create_index("ix_account_username_lower", "account", [sa.text("lower(username)")])

    op.create_table(
        "scim_group",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("display_name", name="uq_scim_group_display_name"),
    )
    op.create_table(
        "scim_group_member",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["scim_group.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_id", "account_id"),
    )
    op.create_index("ix_scim_group_member_account_id", "scim_group_member", ["account_id"])

    op.create_table(
        "hr_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("employee_number", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("effective_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "event_id", name="uq_hr_event_source_event_id"),
    )

    op.create_table(
        "ssf_key",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kid"),
    )
    op.create_table(
        "ssf_stream",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=200), nullable=True),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("delivery_method", sa.String(length=200), nullable=False),
        sa.Column("endpoint_url", sa.String(length=2000), nullable=True),
        sa.Column("authorization_header", sa.Text(), nullable=True),
        sa.Column("events_requested", sa.JSON(), nullable=False),
        sa.Column("events_delivered", sa.JSON(), nullable=False),
        sa.Column("subject_format", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "ssf_stream_subject",
        sa.Column("stream_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["stream_id"], ["ssf_stream.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("stream_id", "subject_id"),
    )
    op.create_table(
        "ssf_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["stream_id"], ["ssf_stream.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("jti", name="uq_ssf_outbox_jti"),
    )
    op.create_index("ix_ssf_outbox_due", "ssf_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_ssf_outbox_stream_subject", "ssf_outbox", ["stream_id", "subject_id", "id"])


def downgrade() -> None:
    op.drop_table("ssf_outbox")
    op.drop_table("ssf_stream_subject")
    op.drop_table("ssf_stream")
    op.drop_table("ssf_key")
    op.drop_table("hr_event")
    op.drop_index("ix_scim_group_member_account_id", table_name="scim_group_member")
    op.drop_table("scim_group_member")
    op.drop_table("scim_group")
    op.drop_index("ix_account_username_lower", table_name="account")
    op.drop_index("ix_decision_subject_at", table_name="decision_log")
    with op.batch_alter_table("admin_user") as batch:
        batch.drop_column("last_login_at")
    with op.batch_alter_table("lifecycle_event") as batch:
        batch.drop_column("event_ref")
    with op.batch_alter_table("account") as batch:
        batch.drop_index("ix_account_departure_at")
        batch.drop_column("origin")
        batch.drop_column("external_id")
        batch.drop_column("departure_at")

"""admin users are accounts: sign-in records with argon2id passwords, TOTP, recovery codes and
lockout; the console role becomes a role grant decided by the admin_ui policy

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 23:50:00

An admin user without an account (created by an earlier ``accessd demo``) gets one, with its
console role as a manual grant. Its old scrypt password hash no longer verifies: reset it with
``accessd admin password USERNAME``.
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    orphans = conn.execute(
        sa.text("SELECT id, username, console_role FROM admin_user WHERE account_id IS NULL")
    ).all()
    for admin_id, username, role in orphans:
        account_id = conn.scalar(sa.text("SELECT id FROM account WHERE subject_id = :s"), {"s": username})
        if account_id is None:
            conn.execute(
                sa.text(
                    "INSERT INTO account (subject_id, username, display_name, attributes, status, "
                    "session_epoch, origin, created_at, updated_at) VALUES "
                    "(:s, :s, :s, '{}', 'active', 0, 'cli', :now, :now)"
                ),
                {"s": username, "now": now},
            )
            account_id = conn.scalar(sa.text("SELECT id FROM account WHERE subject_id = :s"), {"s": username})
        conn.execute(
            sa.text(
                "INSERT INTO role_grant (account_id, role, source, granted_at, granted_by) "
                "VALUES (:a, :r, 'manual', :now, 'migration 0005')"
            ),
            {"a": account_id, "r": role or "admin", "now": now},
        )
        conn.execute(
            sa.text("UPDATE admin_user SET account_id = :a WHERE id = :i"), {"a": account_id, "i": admin_id}
        )

    with op.batch_alter_table("admin_user") as batch:
        batch.drop_column("console_role")
        batch.alter_column("password_hash", existing_type=sa.String(length=300), nullable=True)
        batch.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("totp_enabled_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("recovery_codes", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.DateTime(), nullable=True))
        batch.create_unique_constraint("uq_admin_user_account_id", ["account_id"])


def downgrade() -> None:
    with op.batch_alter_table("admin_user") as batch:
        batch.drop_constraint("uq_admin_user_account_id", type_="unique")
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
        batch.drop_column("recovery_codes")
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_enabled_at")
        batch.drop_column("totp_secret")
        batch.add_column(
            sa.Column("console_role", sa.String(length=32), nullable=False, server_default="admin")
        )

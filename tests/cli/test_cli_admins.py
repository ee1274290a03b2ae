"""``accessd admin ...``: the first administrator, password resets, unlock and the 2FA rescue,
on SQLite and PostgreSQL (in-process, against the test database)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from accessd import passwords
from accessd.db import Database, alembic_config
from accessd.models import Account, AdminUser, utcnow
from tests.support.cli import cli

GOOD = "a long and unusual passphrase 31 otters"


def test_admin_create_makes_an_account_with_the_role_and_an_argon2id_password(loaded_db):
    out = cli(
        loaded_db.url, "admin", "create", "Ada", "--role", "helpdesk", "--password-stdin", stdin=GOOD + "\n"
    )
    assert "administrator ada created with role helpdesk" in out.output
    with loaded_db.session() as s:
        admin = s.scalar(select(AdminUser))
        account = s.get(Account, admin.account_id)
        assert admin.password_hash.startswith("$argon2id$") and GOOD not in admin.password_hash
        assert passwords.verify(admin.password_hash, GOOD)
        assert (account.subject_id, account.roles) == ("ada", frozenset({"helpdesk"}))
    again = cli(loaded_db.url, "admin", "create", "ada", "--password-stdin", stdin=GOOD + "\n", code=2)
    assert "already an administrator" in again.stderr


def test_admin_create_refuses_a_guessable_password_and_writes_nothing(loaded_db):
    for weak, why in (("short", "at least 12"), ("password123456", "too easy to guess")):
        out = cli(loaded_db.url, "admin", "create", "ada", "--password-stdin", stdin=weak + "\n", code=2)
        assert why in out.stderr
    with loaded_db.session() as s:
        assert s.scalar(select(AdminUser)) is None
        assert s.scalar(select(Account).where(Account.subject_id == "ada")) is None


def test_password_unlock_and_reset_2fa(loaded_db):
    cli(loaded_db.url, "admin", "create", "ada", "--password-stdin", stdin=GOOD + "\n")
    with loaded_db.session() as s:
        admin = s.scalar(select(AdminUser))
        admin.locked_until = utcnow() + dt.timedelta(minutes=10)
        admin.totp_secret, admin.totp_enabled_at = "JBSWY3DPEHPK3PXP", utcnow()
    assert "ada unlocked" in cli(loaded_db.url, "admin", "unlock", "ada").output
    new = "another passphrase for 9 red kites"
    cli(loaded_db.url, "admin", "password", "ada", "--password-stdin", stdin=new + "\n")
    assert "is off" in cli(loaded_db.url, "admin", "reset-2fa", "ada").output
    with loaded_db.session() as s:
        admin = s.scalar(select(AdminUser))
        assert (
            admin.locked_until is None
            and admin.totp_secret is None
            and passwords.verify(admin.password_hash, new)
        )
    listing = cli(loaded_db.url, "admin", "list").output
    assert "ada\tada\tactive\tadmin\t2fa off" in listing
    assert "no administrator 'bob'" in cli(loaded_db.url, "admin", "unlock", "bob", code=2).stderr


def test_migration_0005_gives_an_earlier_admin_user_an_account_with_its_role(empty_database_url):
    db = Database(empty_database_url)
    cfg = alembic_config(db.url)
    command.upgrade(cfg, "0004")
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO admin_user (username, password_hash, console_role, created_at) "
                "VALUES ('old', 'scrypt:xyz', 'auditor', :now)"
            ),
            {"now": utcnow()},
        )
    db.upgrade()
    with db.session() as s:
        admin = s.scalar(select(AdminUser))
        account = s.get(Account, admin.account_id)
        assert (account.subject_id, account.roles, account.status) == (
            "old",
            frozenset({"auditor"}),
            "active",
        )
    db.dispose()

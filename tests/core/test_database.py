"""The schema migrates and round-trips data on SQLite and on PostgreSQL."""

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from accessd.db import Database
from accessd.models import Account, Base, RoleGrant


def test_migrations_create_every_table(db):
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "account",
        "role_grant",
        "policy_revision",
        "api_client",
        "sync_run",
        "decision_log",
        "audit_event",
        "lifecycle_event",
        "admin_user",
        "alembic_version",
    } <= tables


def test_upgrade_is_idempotent(db):
    db.upgrade()
    db.upgrade()
    assert inspect(db.engine).has_table("account")


def test_account_with_grants_round_trips(db):
    with db.session() as s:
        acc = Account(
            subject_id="t.meyer",
            employee_number="E1",
            directory_key="uuid-1",
            display_name="Tanja",
            start_date=dt.date(2026, 1, 1),
        )
        acc.grants.append(RoleGrant(role="therapist", source="directory", source_ref="cn=therapists"))
        acc.grants.append(RoleGrant(role="dpo", source="manual"))
        s.add(acc)
    with db.session() as s:
        acc = s.scalar(select(Account).where(Account.directory_key == "uuid-1"))
        assert acc.roles == frozenset({"therapist", "dpo"})
        assert acc.status == "active" and acc.session_epoch == 0
        assert acc.start_date == dt.date(2026, 1, 1)


def test_directory_key_is_unique(db):
    with db.session() as s:
        s.add(Account(subject_id="a", directory_key="same"))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Account(subject_id="b", directory_key="same"))


def test_failed_transaction_changes_nothing(db):
    with pytest.raises(RuntimeError), db.session() as s:
        s.add(Account(subject_id="half-written"))
        s.flush()
        raise RuntimeError("boom")
    with db.session() as s:
        assert s.scalar(select(Account).where(Account.subject_id == "half-written")) is None


def test_postgres_urls_use_psycopg3():
    assert Database.__init__  # module imports
    from accessd.db import normalise_url

    assert normalise_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalise_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalise_url("sqlite:///x") == "sqlite:///x"


# SQLite cannot reflect the expression index on lower(username): it is compared on PostgreSQL
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_the_migrations_build_exactly_the_tables_the_models_declare(db):
    """A model change without its migration (or the reverse) shows up here, on both backends."""
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []

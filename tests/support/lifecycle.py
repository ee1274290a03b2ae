"""Helpers shared by the lifecycle tests and bench/ldap_sync.py: settings for a test subtree, row counts."""

from __future__ import annotations

from sqlalchemy import func, select

from accessd import models
from accessd.config import load_settings
from tests.support.ldap import DEFAULT_POLICY, SERVICE_PASSWORD


def make_settings(server, people, database_url: str = "", **overrides):
    ldap = {
        "url": server.url(),
        "bind_dn": server.bind_dn("sync"),
        "bind_password": SERVICE_PASSWORD,
        "user_base": people.people if "user_base" not in overrides else overrides.pop("user_base"),
        "group_base": people.groups,
        "page_size": 50,
        "timeout_seconds": 5,
        "password_policy_dn": DEFAULT_POLICY,
        "attributes": {"end_date": "employmentEndDate", "start_date": "employmentStartDate"},
        "group_roles": {
            f"cn=therapists,{people.groups}": ["therapist"],
            "billing": ["billing"],
            "clinical-leads": ["dpo"],
        },
    }
    ldap.update(overrides.pop("ldap", {}))
    sync = {"approval_min_accounts": 5, "approval_min_ratio": 0.10, "min_seen_ratio": 0.5}
    sync.update(overrides.pop("sync", {}))
    return load_settings(
        env={}, overrides={"database_url": database_url, "ldap": ldap, "sync": sync, **overrides}
    )


def table_counts(db) -> dict[str, int]:
    """Row count of every table (to prove a run wrote nothing)."""
    with db.session() as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t)) for t in models.Base.metadata.sorted_tables
        }


def max_updated(db):
    with db.session() as s:
        return s.scalar(select(func.max(models.Account.updated_at)))


def account(db, subject_id: str) -> models.Account:
    """The account with this subject id, its grants loaded (for assertions after the session)."""
    with db.session() as s:
        acc = s.scalar(select(models.Account).where(models.Account.subject_id == subject_id))
        assert acc is not None, f"no account {subject_id}"
        acc.grants  # noqa: B018 - load while the session is open
        return acc


def lifecycle_events(db, subject_id: str) -> list[tuple[str, str, str]]:
    """(kind, source, actor) of the account's lifecycle events, oldest first."""
    with db.session() as s:
        acc_id = s.scalar(select(models.Account.id).where(models.Account.subject_id == subject_id))
        rows = s.scalars(
            select(models.LifecycleEvent)
            .where(models.LifecycleEvent.account_id == acc_id)
            .order_by(models.LifecycleEvent.id)
        )
        return [(e.kind, e.source, e.actor) for e in rows]

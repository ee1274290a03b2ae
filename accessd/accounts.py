"""Accounts and role grants: the subjects of decisions."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd.errors import Invalid, NotFound
from accessd.models import ACCOUNT_STATUSES, GRANT_SOURCES, Account, RoleGrant
from accessd.policy.engine import Subject


def get_by_subject_id(session: Session, subject_id: str) -> Account:
    account = session.scalar(select(Account).where(Account.subject_id == subject_id))
    if account is None:
        raise NotFound(f"no account with subject id {subject_id!r}")
    return account


def upsert(session: Session, *, subject_id: str, **attrs) -> Account:
    """Create or update an account by subject id (used by the demo loader and tests)."""
    status = attrs.get("status", "active")
    if status not in ACCOUNT_STATUSES:
        raise Invalid(f"status must be one of {', '.join(ACCOUNT_STATUSES)}")
    account = session.scalar(select(Account).where(Account.subject_id == subject_id))
    if account is None:
        account = Account(subject_id=subject_id)
        session.add(account)
    for key, value in attrs.items():
        setattr(account, key, value)
    session.flush()
    return account


def grant(
    session: Session,
    account: Account,
    role: str,
    source: str = "manual",
    source_ref: str | None = None,
    actor: str = "system",
) -> RoleGrant:
    """Grant ``role`` (idempotent per role and source)."""
    if source not in GRANT_SOURCES:
        raise Invalid(f"source must be one of {', '.join(GRANT_SOURCES)}")
    for g in account.grants:
        if g.role == role and g.source == source:
            return g
    g = RoleGrant(role=role, source=source, source_ref=source_ref, granted_by=actor)
    account.grants.append(g)
    session.flush()
    return g


def subject_for(account: Account) -> Subject:
    """The engine's view of an account: id, roles, attributes, status and dates."""
    return Subject(
        id=account.subject_id,
        roles=account.roles,
        attributes={"region": account.region or "", "department": account.department or ""},
        status=account.status,
        start_date=account.start_date,
        end_date=account.end_date,
    )


def role_holder_counts(session: Session, today: dt.date | None = None) -> dict[str, int]:
    """How many active accounts hold each (directly granted) role."""
    today = today or dt.date.today()
    counts: Counter[str] = Counter()
    rows = session.execute(
        select(Account.id, RoleGrant.role, Account.status, Account.start_date, Account.end_date).join(
            RoleGrant, RoleGrant.account_id == Account.id
        )
    )
    seen = set()
    for acc_id, role, status, start, end in rows:
        if status != "active" or (start and start > today) or (end and end < today):
            continue
        if (acc_id, role) not in seen:
            seen.add((acc_id, role))
            counts[role] += 1
    return dict(counts)

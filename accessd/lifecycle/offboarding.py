"""The one offboarding routine (and its inverse for returning employees).

Every trigger -- the LDAP sync, the scheduler, the HR webhook, SCIM, the admin UI and the CLI --
calls :func:`offboard`. It is idempotent: a second call with the account already disabled and
without grants changes nothing, writes no event and returns False.

Disabling removes **all** role grants, directory-sourced and manual alike: a leaver keeps no
access, and a manual grant is a decision about a person in a job they no longer hold. A returning
employee (:func:`reenable`) gets the roles the directory gives them now; manual grants are not
restored and must be granted again.

Every change bumps ``account.updated_at`` (other processes poll it) and, when access shrinks,
``session_epoch`` (sessions issued before become invalid).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session

from accessd import audit
from accessd.models import Account, LifecycleEvent, RoleGrant, utcnow


def offboard(
    session: Session,
    account: Account,
    *,
    reason: str,
    source: str,
    actor: str,
    effective: dt.date | None = None,
) -> bool:
    """Disable ``account`` now, or schedule it: a future ``effective`` date only sets ``end_date``
    (the decision engine denies after the end date itself). Returns True when something changed.
    """
    now = utcnow()
    today = now.date()
    if effective is not None and effective >= today:
        if account.end_date == effective or account.status == "disabled":
            return False
        old = account.end_date
        account.end_date = effective
        account.updated_at = now
        _record(
            session,
            account,
            "leaver_scheduled",
            "account.schedule_departure",
            reason,
            source,
            actor,
            now,
            end_date=effective.isoformat(),
            previous_end_date=old.isoformat() if old else None,
        )
        return True

    if account.status == "disabled" and not account.grants:
        return False
    removed = sorted(f"{g.role} ({g.source})" for g in account.grants)
    was = account.status
    account.grants.clear()  # delete-orphan cascade deletes the rows
    account.status = "disabled"
    account.status_reason = reason[:200]
    account.disabled_at = account.disabled_at if was == "disabled" and account.disabled_at else now
    if effective is not None and (account.end_date is None or account.end_date > effective):
        account.end_date = effective
    account.session_epoch = (account.session_epoch or 0) + 1
    account.updated_at = now
    _record(
        session,
        account,
        "leaver",
        "account.offboard",
        reason,
        source,
        actor,
        now,
        previous_status=was,
        removed_roles=removed,
    )
    return True


def reenable(
    session: Session,
    account: Account,
    *,
    reason: str,
    source: str,
    actor: str,
    roles: Iterable[tuple[str, str | None]] = (),
) -> bool:
    """Re-enable a returning employee with ``roles`` ((role, group DN) pairs from the directory).

    Manual grants removed at offboarding are not restored. A past end date is cleared. Returns
    False (and changes nothing) when the account is already active.
    """
    if account.status != "disabled":
        return False
    now = utcnow()
    account.status = "active"
    account.status_reason = None
    account.disabled_at = None
    if account.end_date is not None and account.end_date < now.date():
        account.end_date = None
    granted = []
    held = {(g.role, g.source) for g in account.grants}
    for role, ref in roles:
        if (role, "directory") not in held:
            account.grants.append(
                RoleGrant(role=role, source="directory", source_ref=ref, granted_by=actor, granted_at=now)
            )
            held.add((role, "directory"))
            granted.append(role)
    account.session_epoch = (account.session_epoch or 0) + 1
    account.updated_at = now
    _record(session, account, "rehire", "account.reenable", reason, source, actor, now, roles=sorted(granted))
    return True


def _record(
    session: Session,
    account: Account,
    kind: str,
    action: str,
    reason: str,
    source: str,
    actor: str,
    at: dt.datetime,
    **detail,
) -> None:
    """The lifecycle event and the audit record every change writes."""
    session.add(
        LifecycleEvent(
            account_id=account.id, kind=kind, reason=reason[:200], source=source, actor=actor, at=at
        )
    )
    audit.record(
        session,
        actor,
        action,
        f"account:{account.subject_id}",
        {"reason": reason, "source": source, **detail},
    )
    session.flush()

"""The one offboarding routine (and its inverse for returning employees).

Every trigger calls :func:`offboard`: the LDAP sync (:mod:`accessd.lifecycle.sync_apply`), the
scheduler's daily end-date sweep (:mod:`accessd.jobs`) and ``accessd offboard``; a new trigger
must call it too, never disable an account itself. It is idempotent: a second call with the
account already disabled and without grants changes nothing, writes no event and returns False.

Disabling removes **all** role grants, directory-sourced and manual alike: a leaver keeps no
access, and a manual grant is a decision about a person in a job they no longer hold. A returning
employee (:func:`reenable`) gets the roles the directory gives them now; manual grants are not
restored and must be granted again.

Every change bumps ``account.updated_at`` (other processes poll it) and, when access shrinks,
``session_epoch`` (sessions issued before become invalid).

Who disabled an account is recorded as ``account.disabled_by``, the ``source`` of the call (a
short name of the trigger; the callers today pass):

* ``directory`` -- the LDAP sync (the directory locked, expired or removed the person);
* ``cli`` -- ``accessd offboard`` (and ``accessd account enable`` for :func:`reenable`);
* ``scheduler`` -- the daily end-date sweep.

The directory may lift only what the directory did: :func:`reenable` with source ``directory``
leaves an account disabled by anyone else alone. Offboarding an account the directory disabled,
from any other source, takes the departure over: the new source and reason are recorded (a
``leaver_confirmed`` event, no second ``leaver``), so the directory can no longer lift it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session

from accessd import audit, clock
from accessd.models import Account, LifecycleEvent, RoleGrant, utcnow

DIRECTORY = "directory"


def offboard(
    session: Session,
    account: Account,
    *,
    reason: str,
    source: str,
    actor: str,
    effective: dt.date | None = None,
) -> bool:
    """Disable ``account`` now, or schedule it: an ``effective`` date (the last working day) from
    today on -- today in the configured zone (:mod:`accessd.clock`) -- only sets ``end_date`` (the
    decision engine denies after the end date itself). Returns True when something changed.

    ``source`` names the trigger (see the module docstring) and becomes ``disabled_by``. An
    account already disabled keeps its reason and source, except that a non-directory source
    takes over a directory disable. ``reason`` is free text and decides nothing.
    """
    now, today = utcnow(), clock.today()
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

    was, was_by, was_reason = account.status, account.disabled_by, account.status_reason
    take_over = was == "disabled" and was_by == DIRECTORY and source != DIRECTORY
    if was == "disabled" and not account.grants and not take_over:
        return False
    removed = sorted(f"{g.role} ({g.source})" for g in account.grants)
    account.grants.clear()  # delete-orphan cascade deletes the rows
    account.status = "disabled"
    if was != "disabled" or take_over or not was_by:
        account.status_reason = reason[:200]
        account.disabled_by = source
    account.disabled_at = account.disabled_at if was == "disabled" and account.disabled_at else now
    if effective is not None and (account.end_date is None or account.end_date > effective):
        account.end_date = effective
    account.session_epoch = (account.session_epoch or 0) + 1
    account.updated_at = now
    _record(
        session,
        account,
        "leaver_confirmed" if take_over else "leaver",
        "account.offboard",
        reason,
        source,
        actor,
        now,
        previous_status=was,
        removed_roles=removed,
        **({"previous_source": was_by, "previous_reason": was_reason} if take_over else {}),
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
    """Re-enable a disabled account with ``roles`` ((role, group DN) pairs from the directory).

    ``source``: ``directory`` for a returning employee (the sync), another trigger's name (``cli``)
    for an administrator's decision. The directory lifts only its own disables: with
    source ``directory`` an account disabled by anyone else stays disabled. Manual grants removed
    at offboarding are not restored. A past end date is cleared. Returns False (and changes
    nothing) when the account is active or not the directory's to re-enable.
    """
    if account.status != "disabled":
        return False
    if source == DIRECTORY and account.disabled_by != DIRECTORY:
        return False
    now, today = utcnow(), clock.today()
    previous_by = account.disabled_by
    account.status = "active"
    account.status_reason = None
    account.disabled_by = None
    account.disabled_at = None
    if account.end_date is not None and account.end_date < today:
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
    _record(
        session,
        account,
        "rehire",
        "account.reenable",
        reason,
        source,
        actor,
        now,
        roles=sorted(granted),
        previous_source=previous_by,
    )
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

"""The one lifecycle: every change of an account's state goes through these routines.

Every trigger calls them -- the LDAP sync (:mod:`accessd.lifecycle.sync_apply`), the scheduler's
departures job (:mod:`accessd.jobs`), ``accessd offboard`` / ``accessd account enable``, and the
other sources named in :class:`~accessd.lifecycle.states.Source` -- and none changes
``account.status`` itself. Each routine is idempotent: called again with nothing left to change
it writes nothing, sends nothing and returns False. A change writes one lifecycle event (kind,
typed source, actor, reason, and ``event_ref``: the id of the event it came from), one audit
record, bumps ``account.updated_at`` (other processes poll it) and, when access shrinks,
``session_epoch``, and emits its signals (:mod:`accessd.lifecycle.signals`) in the same
transaction.

* :func:`offboard` -- disable now (all grants removed), or schedule the departure for a later
  moment: a ``date`` is the last working day (access ends at the next midnight in
  ``settings.timezone``), an aware ``datetime`` the exact moment. The engine denies from
  ``departure_at`` on by itself; the departures job disables the account when it is due.
* :func:`cancel_departure` -- withdraw a scheduled departure that has not been carried out.
* :func:`suspend` / :func:`resume` -- a leave of absence: denied, grants kept; lifted on return.
* :func:`reenable` -- a returning employee (rehire): active again with the directory's roles;
  manual grants removed at offboarding are not restored.

The source of a suspension or disable is kept in ``account.disabled_by``. The directory may lift
only what the directory did: :func:`reenable` with source ``directory`` leaves an account disabled
by anyone else alone. Offboarding an account the directory disabled, from any other source, takes
the departure over: the new source and reason are recorded (a ``leaver_confirmed`` event, no second
``leaver`` and no second signal), so the directory can no longer lift it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session

from accessd import accounts, audit, clock
from accessd.lifecycle import signals
from accessd.lifecycle.states import Source, Status
from accessd.models import Account, RoleGrant, utcnow

DIRECTORY = Source.DIRECTORY


def departure_moment(effective: dt.date | dt.datetime) -> dt.datetime:
    """When access ends, as a naive UTC datetime (how the database stores times): a ``date`` is the
    last working day, so access ends at the following midnight in the configured zone; an aware
    ``datetime`` is the moment itself. A naive datetime is refused (its zone would be a guess)."""
    if isinstance(effective, dt.datetime):
        if effective.tzinfo is None:
            raise ValueError("a departure time needs a time zone (e.g. 2026-12-31T17:00:00+01:00)")
        moment = effective
    else:
        moment = dt.datetime.combine(effective + dt.timedelta(days=1), dt.time(), tzinfo=clock.zone())
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def last_day(moment: dt.datetime) -> dt.date:
    """The last day (in the configured zone) with access before ``moment`` (naive UTC)."""
    local = moment.replace(tzinfo=dt.UTC).astimezone(clock.zone())
    return (local - dt.timedelta(microseconds=1)).date()


def offboard(
    session: Session,
    account: Account,
    *,
    reason: str,
    source: Source | str,
    actor: str,
    effective: dt.date | dt.datetime | None = None,
    event_ref: str | None = None,
) -> bool:
    """Disable ``account`` now, or schedule its departure for ``effective`` (see
    :func:`departure_moment`) when that moment is still ahead. Returns True when something changed.

    An account already disabled keeps its reason and source, except that a non-directory source
    takes over a directory disable. ``reason`` is free text and decides nothing.
    """
    source = Source(source)
    now = utcnow()
    moment = departure_moment(effective) if effective is not None else None
    if moment is not None and moment > now:
        return _schedule(session, account, moment, reason, source, actor, event_ref, now)

    was, was_by, was_reason = account.status, account.disabled_by, account.status_reason
    take_over = was == Status.DISABLED and was_by == DIRECTORY and source != DIRECTORY
    if was == Status.DISABLED and not account.grants and not take_over:
        return False
    removed = sorted(f"{g.role} ({g.source})" for g in account.grants)
    account.grants.clear()  # delete-orphan cascade deletes the rows
    account.status = Status.DISABLED
    if was != Status.DISABLED or take_over or not was_by:
        account.status_reason = reason[:200]
        account.disabled_by = source
    account.disabled_at = account.disabled_at if was == Status.DISABLED and account.disabled_at else now
    if moment is not None:
        if account.departure_at is None or account.departure_at > moment:
            account.departure_at = moment
        day = last_day(moment)
        if account.end_date is None or account.end_date > day:
            account.end_date = day
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
        event_ref,
        previous_status=was,
        removed_roles=removed,
        **({"previous_source": was_by, "previous_reason": was_reason} if take_over else {}),
    )
    if was != Status.DISABLED:
        signals.emit(session, account, "disabled", reason=reason, source=source)
    return True


def _schedule(session, account, moment, reason, source, actor, event_ref, now) -> bool:
    """Set a future departure (the engine denies from ``moment`` on; the job disables then)."""
    if account.status == Status.DISABLED or account.departure_at == moment:
        return False
    if account.departure_at is None and account.end_date == last_day(moment):
        account.departure_at = moment  # an end date set before departure_at existed: no new event
        return False
    old = account.departure_at
    account.departure_at = moment
    account.end_date = last_day(moment)
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
        event_ref,
        end_date=account.end_date.isoformat(),
        departure_at=moment.isoformat() + "Z",
        previous_departure_at=old.isoformat() + "Z" if old else None,
    )
    return True


def cancel_departure(
    session: Session, account: Account, *, reason: str, source: Source | str, actor: str, event_ref=None
) -> bool:
    """Withdraw a scheduled departure of an account not yet disabled (its end date is cleared)."""
    source = Source(source)
    if account.status == Status.DISABLED or (account.departure_at is None and account.end_date is None):
        return False
    now = utcnow()
    old_at, old_day = account.departure_at, account.end_date
    account.departure_at = None
    account.end_date = None
    account.updated_at = now
    _record(
        session,
        account,
        "departure_cancelled",
        "account.cancel_departure",
        reason,
        source,
        actor,
        now,
        event_ref,
        previous_end_date=old_day.isoformat() if old_day else None,
        previous_departure_at=old_at.isoformat() + "Z" if old_at else None,
    )
    return True


def suspend(
    session: Session, account: Account, *, reason: str, source: Source | str, actor: str, event_ref=None
) -> bool:
    """A leave of absence: an active account is denied from now on, its grants kept."""
    source = Source(source)
    if account.status != Status.ACTIVE:
        return False
    now = utcnow()
    account.status = Status.SUSPENDED
    account.status_reason = reason[:200]
    account.disabled_by = source
    account.session_epoch = (account.session_epoch or 0) + 1
    account.updated_at = now
    _record(session, account, "suspended", "account.suspend", reason, source, actor, now, event_ref)
    signals.emit(session, account, "suspended", reason=reason, source=source)
    return True


def resume(
    session: Session, account: Account, *, reason: str, source: Source | str, actor: str, event_ref=None
) -> bool:
    """Lift a suspension: the account is active again with the grants it kept."""
    source = Source(source)
    if account.status != Status.SUSPENDED:
        return False
    if source == DIRECTORY and account.disabled_by != DIRECTORY:
        return False
    now = utcnow()
    previous_by = account.disabled_by
    account.status = Status.ACTIVE
    account.status_reason = None
    account.disabled_by = None
    account.session_epoch = (account.session_epoch or 0) + 1
    account.updated_at = now
    _record(
        session,
        account,
        "resumed",
        "account.resume",
        reason,
        source,
        actor,
        now,
        event_ref,
        previous_source=previous_by,
    )
    signals.emit(session, account, "enabled", reason=reason, source=source)
    return True


def reenable(
    session: Session,
    account: Account,
    *,
    reason: str,
    source: Source | str,
    actor: str,
    roles: Iterable[tuple[str, str | None]] = (),
    event_ref: str | None = None,
) -> bool:
    """Re-enable a disabled account with ``roles`` ((role, group DN) pairs from the directory).

    ``source``: ``directory`` for a returning employee (the sync), another trigger's name (``cli``)
    for an administrator's decision. The directory lifts only its own disables: with
    source ``directory`` an account disabled by anyone else stays disabled. Manual grants removed
    at offboarding are not restored. A past end date is cleared. Returns False (and changes
    nothing) when the account is active or not the directory's to re-enable.
    """
    source = Source(source)
    if account.status != Status.DISABLED:
        return False
    if source == DIRECTORY and account.disabled_by != DIRECTORY:
        return False
    now, today = utcnow(), clock.today()
    previous_by = account.disabled_by
    account.status = Status.ACTIVE
    account.status_reason = None
    account.disabled_by = None
    account.disabled_at = None
    if account.end_date is not None and account.end_date < today:
        account.end_date = None
    if account.departure_at is not None and account.departure_at <= now:
        account.departure_at = None
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
        event_ref,
        roles=sorted(granted),
        previous_source=previous_by,
    )
    signals.emit(session, account, "enabled", reason=reason, source=source)
    return True


def _record(
    session: Session,
    account: Account,
    kind: str,
    action: str,
    reason: str,
    source: Source,
    actor: str,
    at: dt.datetime,
    event_ref: str | None,
    **detail,
) -> None:
    """The lifecycle event and the audit record every change writes."""
    accounts.record_event(session, account, kind, reason, source, actor, at, event_ref)
    audit.record(
        session,
        actor,
        action,
        f"account:{account.subject_id}",
        {
            "reason": reason,
            "source": str(source),
            **({"event_ref": event_ref} if event_ref else {}),
            **detail,
        },
    )
    session.flush()

"""Signed HR events (``POST /hr/v1/events``): hire, termination, leave, return and rehire, keyed
by employee number, turned into the one set of lifecycle routines
(:mod:`accessd.lifecycle.offboarding`). No Flask here; ``accessd/web/hr.py`` is a thin view.
Who sent a delivery and what its body says is read by :mod:`accessd.lifecycle.hr_requests`
(Standard Webhooks verification, the members of each type); this module applies and stores it.

**Exactly once.** Every accepted event is stored in ``hr_event`` (unique per source and
``webhook-id``) in the transaction that makes its change, so the change and its record exist
together or not at all. A sender retries until it gets a 2xx, so a replayed id answers **200**
``{"status": "duplicate"}`` and changes nothing (the first answer's status is repeated under
``original``); the same id with a different body is a 409. A rejected event is not stored: a
retry of it is judged afresh (a termination that arrives before its hire is taken once the hire
is in).

**Refused, with nothing changed** (a 4xx ``{"error", "message"}``): no or malformed
webhook headers, a bad signature or one made with another source's secret (401
``invalid_signature``), a timestamp outside the window (401 ``timestamp_outside_window``), a
source name not configured (404 ``unknown_source``), a body that is not a JSON object of the
documented members and types -- NUL characters, lone surrogates, ``1e999``, deep nesting, an
unknown member or type (400 ``invalid``) --, an employee number no account has, except for a hire
(404 ``unknown_employee``), and an event the account's state contradicts (409 ``conflict``: a
leave or a return for someone who has left, a rehire of someone on leave). A source whose secret
is unusable answers 503 (a configuration problem here; ``accessd config check`` names it).

**The types** (``employee_number`` and an optional ``reason`` in each):

* ``hire`` -- creates the account (origin ``hr``, active, no roles) with subject id ``username``
  or, without one, the employee number; profile members ``username``, ``display_name``, ``email``,
  ``department``, ``title``, ``region``, ``manager``, ``start_date`` (the engine denies before it).
  An existing account gets its profile updated; a disabled one is re-enabled first (a rehire).
  The subject id never changes once created. Roles are not HR's: they come from the directory,
  SCIM groups or an administrator (an account without roles is denied everything).
* ``termination`` -- ``offboard``: ``effective`` absent or null = now; ``"2026-12-31"`` = the last
  working day (access ends at the next midnight in ``timezone``); ``"2026-12-31T17:00:00+01:00"``
  = that moment (an offset is required). A moment in the future schedules the departure: the
  engine denies from then on, and the scheduler's departures job disables the account.
* ``leave`` -- ``suspend`` (denied with ``account_suspended``, grants kept); ``return`` -- ``resume``.
* ``rehire`` -- ``reenable`` a disabled account, or withdraw a scheduled termination of one not yet
  gone (``cancel_departure``): "this person works here"; profile members as for ``hire``. This is
  why there is no sixth ``termination_cancelled`` type.

Each routine is called with ``source=Source.HR``, ``actor="hr:<source>"`` and
``event_ref="<source>:<webhook-id>"``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accessd import accounts
from accessd.db import Database
from accessd.errors import Conflict, NotFound
from accessd.lifecycle import offboarding
from accessd.lifecycle.hr_requests import Event, parse, verify
from accessd.lifecycle.states import Source, Status
from accessd.models import Account, HrEvent, utcnow

log = logging.getLogger(__name__)


class UnknownEmployee(NotFound, code="unknown_employee"):
    """No account has the event's employee number (and the event is not a hire)."""


@dataclass
class Result:
    """What became of an event: ``applied`` (changed now), ``scheduled`` (a future termination),
    ``unchanged`` (accepted; the account was already so) or ``duplicate`` (seen before)."""

    status: str
    source: str
    event_id: str
    type: str
    employee_number: str | None
    subject_id: str | None = None
    account_status: str | None = None
    departure_at: dt.datetime | None = None  # UTC
    original: dict | None = None  # duplicate: the first delivery's status and time

    def to_json(self) -> dict:
        body = {
            "status": self.status,
            "event": {
                "source": self.source,
                "id": self.event_id,
                "type": self.type,
                "employee_number": self.employee_number,
            },
        }
        if self.subject_id is not None:
            body["account"] = {
                "subject_id": self.subject_id,
                "status": self.account_status,
                "departure_at": _utc_text(self.departure_at),
            }
        if self.original is not None:
            body["original"] = self.original
        return body


def _utc_text(moment: dt.datetime | None) -> str | None:
    return moment.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z") if moment else None


def handle(db: Database, sources: Mapping[str, str], source: str | None, headers, body: bytes) -> Result:
    """Verify, read and apply one delivery (``headers``: any mapping with case-insensitive or
    lower-case names). Raises the errors the module docstring lists; nothing is written then."""
    headers = {k.lower(): v for k, v in headers.items()}
    name = verify(sources, source, headers, body)
    event = parse(name, headers["webhook-id"], body)
    try:
        with db.session() as s:
            result = apply(s, event)
    except IntegrityError:
        # a concurrent delivery of the same id committed first (PostgreSQL waits for it, then
        # refuses the second insert): it is a replay like any other
        with db.session() as s:
            result = _duplicate(s, event)
        if result is None:
            raise
    log.info(
        "HR event %s from %s: %s %s -> %s",
        event.webhook_id,
        event.source,
        event.type,
        event.employee_number,
        result.status,
    )
    return result


def apply(session: Session, event: Event) -> Result:
    """Store ``event`` in ``hr_event`` and make its change, in the caller's transaction.

    A replayed id returns its duplicate result and writes nothing. Raises UnknownEmployee,
    Conflict or Invalid before anything is written, so the caller's rollback leaves nothing.
    """
    dup = _duplicate(session, event)
    if dup is not None:
        return dup
    account = session.scalar(select(Account).where(Account.employee_number == event.employee_number))
    if account is None and event.type != "hire":
        raise UnknownEmployee(
            f"no account has employee number {event.employee_number!r}; send a hire first",
            pointer="/employee_number",
        )
    row = HrEvent(
        source=event.source,
        event_id=event.webhook_id,
        type=event.type,
        employee_number=event.employee_number,
        received_at=utcnow(),
        status="received",
        detail={"sha256": event.digest},
    )
    session.add(row)
    session.flush()  # the unique (source, event_id) decides a race before any change is made
    account, status = _APPLY[event.type](session, account, event)
    row.status = status
    if status == "scheduled":
        row.effective_at = account.departure_at
    elif status == "applied":
        row.effective_at = row.received_at
    row.detail = {
        "sha256": event.digest,
        "subject_id": account.subject_id,
        "reason": event.reason,
        **({"effective": _jsonable(event.effective)} if event.type == "termination" else {}),
        **({"profile": {k: _jsonable(v) for k, v in event.profile.items()}} if event.profile else {}),
    }
    session.flush()
    return Result(
        status=status,
        source=event.source,
        event_id=event.webhook_id,
        type=event.type,
        employee_number=event.employee_number,
        subject_id=account.subject_id,
        account_status=account.status,
        departure_at=account.departure_at if account.status != Status.DISABLED else None,
    )


def _duplicate(session: Session, event: Event) -> Result | None:
    row = session.scalar(
        select(HrEvent).where(HrEvent.source == event.source, HrEvent.event_id == event.webhook_id)
    )
    if row is None:
        return None
    if (row.detail or {}).get("sha256") != event.digest:
        raise Conflict(
            f"webhook-id {event.webhook_id!r} was used before for a different body; "
            "a retry must resend the same bytes, a new event needs a new id",
            pointer="/headers/webhook-id",
        )
    return Result(
        status="duplicate",
        source=row.source,
        event_id=row.event_id,
        type=row.type,
        employee_number=row.employee_number,
        original={"status": row.status, "received_at": _utc_text(row.received_at)},
    )


def _jsonable(value):
    return value.isoformat() if isinstance(value, dt.date) else value


# --- one function per type: (account, status) ---------------------------------------------------


def _by(event: Event) -> dict:
    """Who makes the change, as every lifecycle routine takes it (the module docstring)."""
    return {"source": Source.HR, "actor": event.actor, "event_ref": event.ref}


def _reason(event: Event, what: str) -> str:
    return event.reason or f"{what} (HR source {event.source})"


def _outcome(changed: bool) -> str:
    return "applied" if changed else "unchanged"


def _hire(session: Session, account: Account | None, event: Event) -> tuple[Account, str]:
    if account is None:
        subject_id = event.profile.get("username") or event.employee_number
        fields = {k: v for k, v in event.profile.items() if v is not None}
        account = accounts.add(
            session,
            None,
            subject_id=subject_id,
            employee_number=event.employee_number,
            origin=Source.HR,
            **_by(event),
            **fields,
        )
        return account, "applied"
    if account.status == Status.DISABLED:
        return _rehire(session, account, event)
    return account, _outcome(_update_profile(session, account, event))


def _rehire(session: Session, account: Account, event: Event) -> tuple[Account, str]:
    if account.status == Status.SUSPENDED:
        raise Conflict(
            f"employee {event.employee_number!r} is on leave (suspended); send a return, not a rehire"
        )
    if account.status == Status.DISABLED:
        changed = offboarding.reenable(session, account, reason=_reason(event, "rehired"), **_by(event))
    else:  # still here: a rehire withdraws a scheduled termination
        changed = offboarding.cancel_departure(
            session, account, reason=_reason(event, "termination withdrawn"), **_by(event)
        )
    changed = _update_profile(session, account, event) or changed
    return account, _outcome(changed)


def _update_profile(session: Session, account: Account, event: Event) -> bool:
    changes = {k: v for k, v in event.profile.items() if getattr(account, k) != v}
    if not changes:
        return False
    accounts.upsert(
        session,
        subject_id=account.subject_id,
        reason=_reason(event, f"{event.type}: profile"),
        **_by(event),
        **changes,
    )
    return True


def _termination(session: Session, account: Account, event: Event) -> tuple[Account, str]:
    changed = offboarding.offboard(
        session, account, reason=_reason(event, "terminated"), effective=event.effective, **_by(event)
    )
    if not changed:
        return account, "unchanged"
    return account, "applied" if account.status == Status.DISABLED else "scheduled"


#: leave and return: the routine, and the reason recorded when the event gives none
_ABSENCE = {
    "leave": (offboarding.suspend, "leave of absence"),
    "return": (offboarding.resume, "back from leave"),
}


def _absence(session: Session, account: Account, event: Event) -> tuple[Account, str]:
    """A leave (suspend) or a return (resume): only for someone who has not left."""
    if account.status == Status.DISABLED:
        raise Conflict(
            f"employee {event.employee_number!r} has left (account disabled); "
            f"a {event.type} needs an active account: send a rehire first"
        )
    routine, what = _ABSENCE[event.type]
    return account, _outcome(routine(session, account, reason=_reason(event, what), **_by(event)))


_APPLY = {
    "hire": _hire,
    "termination": _termination,
    "leave": _absence,
    "return": _absence,
    "rehire": _rehire,
}

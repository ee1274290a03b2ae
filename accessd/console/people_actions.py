"""The actions an administrator takes on a person, each through the routine every other trigger
uses -- :mod:`accessd.lifecycle.offboarding` (offboard, schedule a departure, cancel it, suspend,
resume, re-enable) and :mod:`accessd.accounts` (grant, revoke) -- with ``source=Source.ADMIN`` and
the caller's ``actor``, in one transaction.

:func:`preview` says in words what an action would do now (the confirmation page);
:func:`perform` does it and returns ``(changed, outcome in words)``. A refused input
(:class:`~accessd.errors.Invalid` 400, an unknown subject or action
:class:`~accessd.errors.NotFound` 404, revoking a directory grant :class:`~accessd.errors.Conflict`
409) writes nothing; a routine with nothing left to change returns ``(False, why)``. No Flask.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd import accounts, clock
from accessd.console.people import SOURCE, applicable_actions, local, parse_day
from accessd.console.permissions import Reach
from accessd.db import Database
from accessd.errors import Invalid, NotFound
from accessd.lifecycle import offboarding
from accessd.lifecycle.states import Status
from accessd.models import Account, SsfStream, utcnow

_TIME = re.compile(r"\d{2}:\d{2}")


def parse_departure(day: str | None, time: str | None = None) -> dt.date | dt.datetime:
    """A departure as the form gives it: the last working day, or that day and the time access
    ends (``HH:MM`` in ``settings.timezone``). Refused unless it is still ahead: a departure
    already due is "offboard now", which the administrator should choose knowingly."""
    last = parse_day("date", day, required=True)
    time = (time or "").strip()
    effective: dt.date | dt.datetime = last
    if time:
        try:
            if not _TIME.fullmatch(time):
                raise ValueError
            effective = dt.datetime.combine(last, dt.time.fromisoformat(time), tzinfo=clock.zone())
        except ValueError:
            raise Invalid(f"time: {time[:20]!r} is not a time of day (HH:MM)") from None
    return _ahead(effective)


def _ahead(effective: dt.date | dt.datetime) -> dt.date | dt.datetime:
    """``effective`` when the moment access would end is still ahead; else Invalid."""
    try:
        moment = offboarding.departure_moment(effective)
    except ValueError as exc:  # a datetime without its zone
        raise Invalid(str(exc)) from None
    if moment <= utcnow():
        shown = effective.isoformat(" ", "minutes") if isinstance(effective, dt.datetime) else effective
        raise Invalid(f"{shown} is not in the future: choose a later moment, or offboard now")
    return effective


def _reason(reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise Invalid("a reason is required: it is recorded on the account and in the audit trail")
    return accounts.check_text("reason", reason.strip(), 1000)


# -- actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionInfo:
    name: str
    label: str  # the button
    needs: str | None  # what the form asks for besides a reason: date | role | None
    reason: bool = True  # grant and revoke record no reason (accounts.grant/revoke take none)


ACTIONS = {
    a.name: a
    for a in (
        ActionInfo("offboard", "Offboard now", None),
        ActionInfo("schedule", "Schedule departure", "date"),
        ActionInfo("cancel-departure", "Cancel departure", None),
        ActionInfo("suspend", "Suspend", None),
        ActionInfo("resume", "Resume", None),
        ActionInfo("reenable", "Re-enable", None),
        ActionInfo("grant", "Grant a role", "role", reason=False),
        ActionInfo("revoke", "Revoke a manual grant", "role", reason=False),
    )
}


def action_info(name: str) -> ActionInfo:
    info = ACTIONS.get(name)
    if info is None:
        raise NotFound(f"no action {name!r}; the actions are {', '.join(ACTIONS)}")
    return info


@dataclass(frozen=True)
class Preview:
    """The confirmation page of an action: who, what will happen, and what the form offers."""

    action: ActionInfo
    subject_id: str
    display_name: str
    status: str
    applies: bool  # False: doing it now would change nothing (the page says why)
    consequences: tuple[str, ...]
    roles: tuple[str, ...]  # grant: catalogue roles not held manually; revoke: manual grants


def preview(db: Database, subject_id: str, action: str, reach: Reach) -> Preview:
    """What ``action`` would do to ``subject_id`` now, in words (NotFound for either; Forbidden
    when the account carries admin rights beyond ``reach``). A grant offers only the roles
    ``reach`` may hand out."""
    info = action_info(action)
    with db.session() as s:
        acc = accounts.get_by_subject_id(s, subject_id)
        reach.check_change(acc.subject_id, acc.roles)
        streams = s.scalar(select(func.count()).select_from(SsfStream).where(SsfStream.status == "enabled"))
        manual = sorted(g.role for g in acc.grants if g.source == "manual")
        roles: tuple[str, ...] = ()
        if action == "grant":
            known = accounts.catalogue_in_force(s).roles
            roles = tuple(r for r in known if r not in manual and reach.may_grant(r))
        elif action == "revoke":
            roles = tuple(manual)
        return Preview(
            action=info,
            subject_id=acc.subject_id,
            display_name=acc.display_name,
            status=acc.status,
            applies=action in applicable_actions(acc) and (info.needs != "role" or bool(roles)),
            consequences=tuple(_consequences(acc, action, streams)),
            roles=roles,
        )


def _consequences(acc: Account, action: str, streams: int) -> list[str]:
    name = acc.display_name or acc.subject_id
    held = ", ".join(f"{g.role} ({g.source})" for g in sorted(acc.grants, key=lambda g: g.role)) or "none"
    told = (
        f"Connected applications are told through {streams} Shared Signals stream(s)."
        if streams
        else "No Shared Signals stream is set up: no application is told."
    )
    if action == "offboard":
        if acc.status == Status.DISABLED:
            return [
                f"{name} is already disabled (by {acc.disabled_by}: {acc.status_reason}).",
                "The departure is recorded as yours: the directory sync will not re-enable the account.",
            ]
        return [
            f"{name} is disabled now: every decision about them is denied from this moment.",
            f"All their grants are removed: {held}. Re-enabling does not restore manual grants.",
            "Their sessions end.",
            told,
        ]
    if action == "schedule":
        return [
            f"{name} keeps access until the moment you choose; from then on every decision is denied "
            "and the account is disabled by the departures job.",
            "A date is the last working day: access ends at the following midnight "
            f"({clock.zone()}). With a time, access ends at that time.",
        ]
    if action == "cancel-departure":
        when = local(acc.departure_at)
        shown = (
            when.strftime("%Y-%m-%d %H:%M %Z")
            if when
            else (acc.end_date.isoformat() if acc.end_date else "-")
        )
        return [f"The scheduled departure ({shown}) is withdrawn and the end date cleared."]
    if action == "suspend":
        return [
            f"{name} is suspended (a leave of absence): every decision is denied; grants are kept.",
            "Their sessions end.",
            told,
        ]
    if action == "resume":
        return [f"{name} is active again with the grants they kept: {held}.", told]
    if action == "reenable":
        return [
            f"{name} is active again. Manual grants removed at offboarding are not restored: grant "
            "them again; directory roles come back with the next sync.",
            "A past end date is cleared.",
            told,
        ]
    if action == "grant":
        return [
            f"{name} gets the role as a manual grant, kept until revoked or offboarded.",
            *(
                ["The account is disabled: the grant takes effect when it is re-enabled."]
                if acc.status == "disabled"
                else []
            ),
        ]
    return [
        f"{name} loses the manual grant. A role also held through the directory stays.",
        "Their sessions end.",
    ]


def perform(
    db: Database,
    subject_id: str,
    action: str,
    *,
    actor: str,
    reach: Reach,
    reason: str | None = None,
    role: str | None = None,
    effective: dt.date | dt.datetime | None = None,
) -> tuple[bool, str]:
    """Do ``action`` to ``subject_id`` through the routine every trigger uses (source admin);
    returns (changed, what happened in words). ``effective`` is the departure of ``schedule``
    (see :func:`parse_departure`); ``role`` that of grant and revoke. Refused input raises and
    writes nothing; a routine with nothing left to change returns (False, why). Forbidden when
    the account, or the role granted, carries admin rights beyond ``reach``."""
    info = action_info(action)
    if info.reason:
        reason = _reason(reason)
    if info.needs == "role":
        role = (role or "").strip()
        if not role:
            raise Invalid("choose a role")
    if action == "schedule":
        if effective is None:
            raise Invalid("a departure date is required (YYYY-MM-DD)")
        # a moment already past would offboard now: that is the other action, chosen knowingly
        _ahead(effective)
    if action == "grant":
        reach.check_grant(role)
    with db.session() as s:
        acc = accounts.get_by_subject_id(s, subject_id)
        reach.check_change(acc.subject_id, acc.roles)
        return _perform(s, acc, action, actor=actor, reason=reason, role=role, effective=effective)


def _perform(s: Session, acc: Account, action: str, *, actor, reason, role, effective) -> tuple[bool, str]:
    sid = acc.subject_id
    lifecycle = {
        "offboard": (offboarding.offboard, "offboarded", "already offboarded"),
        "cancel-departure": (offboarding.cancel_departure, "departure cancelled", "no departure to cancel"),
        "suspend": (offboarding.suspend, "suspended", "not active"),
        "resume": (offboarding.resume, "resumed", "not suspended"),
        "reenable": (offboarding.reenable, "re-enabled; grant roles again if needed", "not disabled"),
    }
    if action in lifecycle:
        routine, done, refused = lifecycle[action]
        if routine(s, acc, reason=reason, source=SOURCE, actor=actor):
            return True, f"{sid}: {done}"
        return False, f"{sid}: {refused} (status {acc.status}); nothing changed"
    if action == "schedule":
        if offboarding.offboard(s, acc, reason=reason, source=SOURCE, actor=actor, effective=effective):
            ends = offboarding.departure_moment(effective)
            return True, (
                f"{sid}: departure scheduled; last working day {acc.end_date.isoformat()}, access ends "
                f"{local(ends).strftime('%Y-%m-%d %H:%M %Z')}"
            )
        why = (
            "the account is disabled"
            if acc.status == Status.DISABLED
            else "that departure is already scheduled"
        )
        return False, f"{sid}: {why}; nothing changed"
    if action == "grant":
        if any(g.role == role and g.source == "manual" for g in acc.grants):
            return False, f"{sid}: already holds {role} (manual grant); nothing changed"
        accounts.grant(s, acc, role, source="manual", actor=actor)
        later = " (takes effect when the account is re-enabled)" if acc.status == Status.DISABLED else ""
        return True, f"{sid}: granted {role}{later}"
    # revoke
    if not accounts.revoke(s, acc, role, actor=actor):
        return False, f"{sid}: holds no manual grant of {role}; nothing changed"
    still = " (still held through the directory)" if role in acc.roles else ""
    return True, f"{sid}: revoked {role}{still}"

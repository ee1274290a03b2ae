"""Stale and orphan accounts: who holds access without using it, and whom no source knows any more.

**Stale**: an *active* account with no decision (``decision_log.subject_id``) and no sign-in
(``admin_user.last_login_at`` of the admin users linked to it) for ``stale.days`` days (90).
Idle time counts from the newest of: the last decision, the last sign-in, the account's creation,
its start date (nobody uses an account before the first working day) and its last re-enable or
return from leave (lifecycle events ``rehire`` and ``resumed``: a rehired person starts afresh).
Suspended and disabled accounts are already denied and are not looked at.

**Orphan**: an active account that no source vouches for any more, by its ``origin``:

* ``directory`` (or no origin but a directory key) -- without a directory key; or no directory
  is configured (``ldap.url`` empty); or the newest full directory read did not find it: a full
  sync run planned its departure as gone from the directory and did not carry it out (held for
  approval, rejected, superseded, or a dry run). A sync that applied its plan has disabled it.
* ``hr`` -- none of the HR sources that sent events for its employee number is configured in
  ``hr.sources`` any more.
* ``scim`` -- never: the SCIM client that created it manages it (it deactivates or deletes it
  through /scim/v2).
* ``cli``, ``admin`` (and no origin without a directory key) -- never: a person created it by
  hand and is its source; it is still reported when stale.

**The sweep** (:func:`sweep`, daily in ``accessd scheduler``) logs what :func:`find` finds. With
``stale.action = "suspend"`` it suspends the *stale* accounts through
:func:`~accessd.lifecycle.offboarding.suspend` (source ``sweep``; HR's return or
``accessd account resume`` lifts it). An orphan still in use is only reported: a broken link to
its source is a question for a person, not a reason to lock out someone who works. Never on
incomplete evidence: with the decision log off (``decision_log.enabled = false``), or when more
than ``stale.max_ratio`` of the active accounts would be suspended (an emptied log, applications
that stopped logging), it suspends nobody and says why.

The query is one statement over the active accounts with a correlated ``max(at)`` per account:
with the ``(subject_id, at)`` index on ``decision_log`` each is one index probe, so the cost grows
with the number of accounts, not with the size of the log.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd import clock
from accessd.config import Settings
from accessd.db import Database
from accessd.lifecycle import offboarding
from accessd.lifecycle.states import Source, Status
from accessd.lifecycle.sync_plan import GONE
from accessd.models import Account, AdminUser, DecisionLog, HrEvent, LifecycleEvent, SyncRun, utcnow

log = logging.getLogger(__name__)
ACTOR = "system:sweep"
#: lifecycle events after which an account counts as freshly in use
RESTARTS = ("rehire", "resumed")
#: full sync runs that read the whole directory and kept their plan without carrying it out all
_READ_RUNS = ("succeeded", "pending_approval", "rejected", "superseded")


@dataclass
class Finding:
    """One active account that is stale, an orphan, or both, with the evidence."""

    account_id: int
    subject_id: str
    origin: str  # the origin column, or what it implies: directory (a key) or cli
    created_at: dt.datetime
    last_decision: dt.datetime | None
    last_sign_in: dt.datetime | None
    idle_since: dt.datetime  # newest of decision, sign-in, creation, start, re-enable (UTC)
    idle_days: int
    stale: bool
    orphan: str | None  # why no source knows it; None: a source does

    def to_json(self) -> dict:
        return {
            "subject": self.subject_id,
            "stale": self.stale,
            "orphan": self.orphan,
            "idle_days": self.idle_days,
            "idle_since": _iso(self.idle_since),
            "last_decision": _iso(self.last_decision),
            "last_sign_in": _iso(self.last_sign_in),
            "origin": self.origin,
            "created_at": _iso(self.created_at),
        }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment else None


@dataclass
class Report:
    findings: list[Finding]
    active: int  # active accounts looked at
    days: int

    @property
    def stale(self) -> list[Finding]:
        return [f for f in self.findings if f.stale]

    @property
    def orphans(self) -> list[Finding]:
        return [f for f in self.findings if f.orphan]


def find(session: Session, settings: Settings, days: int | None = None) -> Report:
    """The active accounts that are stale (idle ``days``, default ``stale.days``) or orphans,
    by subject id."""
    days = settings.stale.days if days is None else days
    now = utcnow()
    cutoff = now - dt.timedelta(days=days)
    last_decision = (
        select(func.max(DecisionLog.at))
        .where(DecisionLog.subject_id == Account.subject_id)
        .correlate(Account)
        .scalar_subquery()
    )
    last_sign_in = (
        select(func.max(AdminUser.last_login_at))
        .where(AdminUser.account_id == Account.id)
        .correlate(Account)
        .scalar_subquery()
    )
    restarted = (
        select(func.max(LifecycleEvent.at))
        .where(LifecycleEvent.account_id == Account.id, LifecycleEvent.kind.in_(RESTARTS))
        .correlate(Account)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Account.id,
            Account.subject_id,
            Account.origin,
            Account.directory_key,
            Account.employee_number,
            Account.created_at,
            Account.start_date,
            last_decision,
            last_sign_in,
            restarted,
        )
        .where(Account.status == Status.ACTIVE)
        .order_by(Account.subject_id)
    ).all()
    orphan_reason = _OrphanCheck(session, settings, rows)
    findings = []
    for acc_id, subject_id, origin, key, number, created, start, decided, signed_in, restart in rows:
        origin = origin or (Source.DIRECTORY if key else Source.CLI)
        since = max(m for m in (decided, signed_in, created, restart, _start_moment(start)) if m is not None)
        stale = since < cutoff
        orphan = orphan_reason(acc_id, origin, key, number)
        if stale or orphan:
            findings.append(
                Finding(
                    account_id=acc_id,
                    subject_id=subject_id,
                    origin=str(origin),
                    created_at=created,
                    last_decision=decided,
                    last_sign_in=signed_in,
                    idle_since=since,
                    idle_days=max(0, (now - since).days),
                    stale=stale,
                    orphan=orphan,
                )
            )
    return Report(findings=findings, active=len(rows), days=days)


def _start_moment(start: dt.date | None) -> dt.datetime | None:
    """The first moment of the start date in the configured zone, as naive UTC."""
    if start is None:
        return None
    local = dt.datetime.combine(start, dt.time(), tzinfo=clock.zone())
    return local.astimezone(dt.UTC).replace(tzinfo=None)


class _OrphanCheck:
    """Why an account is an orphan (or None), from evidence read once per :func:`find`."""

    def __init__(self, session: Session, settings: Settings, rows):
        self.directory = bool(settings.ldap.url)
        self.hr_sources: Mapping = settings.hr.sources or {}
        self.gone, self.run = self._gone_from_directory(session) if self.directory else (set(), None)
        self.announced: dict[str, set[str]] = defaultdict(set)
        if any(r.origin == Source.HR for r in rows):
            for source, number in session.execute(select(HrEvent.source, HrEvent.employee_number).distinct()):
                self.announced[number].add(source)

    @staticmethod
    def _gone_from_directory(session: Session) -> tuple[set[int], SyncRun | None]:
        run = session.scalars(
            select(SyncRun)
            .where(SyncRun.kind == "full", SyncRun.status.in_(_READ_RUNS))
            .order_by(SyncRun.id.desc())
            .limit(1)
        ).first()
        actions = ((run.plan or {}).get("actions") or []) if run else []
        gone = {
            a.get("account_id") for a in actions if a.get("action") == "leave" and a.get("reason") == GONE
        }
        return gone, run

    def __call__(self, account_id: int, origin: str, key: str | None, number: str | None) -> str | None:
        if origin == Source.DIRECTORY:
            if not key:
                return "a directory account without a directory key"
            if not self.directory:
                return "no directory is configured (ldap.url is empty)"
            if account_id in self.gone:
                run = self.run
                what = "dry run" if run.dry_run else run.status.replace("_", " ")
                return f"not in the directory at the last full sync (run {run.id}, {what})"
        elif origin == Source.HR:
            sources = self.announced.get(number or "", set())
            if not sources:
                return "no HR event on record for its employee number"
            if not sources & set(self.hr_sources):
                names = ", ".join(sorted(sources))
                return f"its HR source ({names}) is no longer configured (hr.sources)"
        return None


@dataclass
class SweepResult:
    report: Report
    suspended: list[str]
    refused: str | None = None  # why nothing was suspended although stale.action is suspend


def sweep(db: Database, settings: Settings) -> SweepResult:
    """Find stale and orphan accounts; suspend the stale ones when ``stale.action`` is
    ``suspend`` and the evidence is complete (see the module docstring). Logs the outcome."""
    with db.session() as s:
        report = find(s, settings)
        result = SweepResult(report=report, suspended=[])
        stale = report.stale
        if settings.stale.action == "suspend" and stale:
            result.refused = _refusal(settings, len(stale), report.active)
            if result.refused is None:
                today = clock.today().isoformat()
                for f in stale:
                    account = s.get(Account, f.account_id, with_for_update=True)
                    reason = (
                        f"stale: no decision or sign-in since {f.idle_since:%Y-%m-%d} ({f.idle_days} days)"
                    )
                    if offboarding.suspend(
                        s,
                        account,
                        reason=reason,
                        source=Source.SWEEP,
                        actor=ACTOR,
                        event_ref=f"sweep:{today}",
                    ):
                        result.suspended.append(f.subject_id)
    _log(result, settings)
    return result


def _refusal(settings: Settings, stale: int, active: int) -> str | None:
    if not settings.decision_log.enabled:
        return "the decision log is off (decision_log.enabled = false): no evidence of use"
    if active and stale / active > settings.stale.max_ratio:
        return (
            f"{stale} of {active} active accounts look stale, more than stale.max_ratio "
            f"({settings.stale.max_ratio:.0%}); check that applications still log decisions"
        )
    return None


def _log(result: SweepResult, settings: Settings) -> None:
    report = result.report
    if not report.findings:
        log.info("stale sweep: no stale or orphan accounts among %d active", report.active)
        return
    names = ", ".join(f.subject_id for f in report.findings[:20])
    more = f" and {len(report.findings) - 20} more" if len(report.findings) > 20 else ""
    log.warning(
        "stale sweep: %d stale (idle %d+ days) and %d orphan accounts of %d active: %s%s "
        "(`accessd accounts stale` shows the evidence)",
        len(report.stale),
        report.days,
        len(report.orphans),
        report.active,
        names,
        more,
    )
    if result.suspended:
        log.warning("stale sweep: suspended %d accounts", len(result.suspended))
    if result.refused:
        log.warning("stale sweep: suspended nobody: %s", result.refused)

"""The admin console's front page: what needs an administrator's attention, in one call.

:func:`summary` returns a :class:`Dashboard` (plain data, no Flask): people by state, the last
sync run, runs held for approval, departures due within a week (overdue ones first), Shared
Signals events not yet delivered, and the policy revision in force. A fixed number of queries,
each bounded (counts, or at most ``limit`` rows), whatever the number of people.

"Within a week" is in days of ``settings.timezone`` (:mod:`accessd.clock`): a departure is due
when its last working day is today or one of the next six days -- access ends at the latest at
the midnight seven days from the coming one. A departure whose moment has passed on an account
not yet disabled (the departures job is late or not running) is listed as overdue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select

from accessd import clock
from accessd.db import Database
from accessd.lifecycle.states import Status
from accessd.models import ACCOUNT_STATUSES, Account, PolicyRevision, SsfOutbox, SyncRun, utcnow

WEEK_DAYS = 7


@dataclass(frozen=True)
class LastSync:
    id: int
    kind: str  # full | incremental
    status: str  # running | succeeded | failed | pending_approval | rejected | superseded
    source: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    counts: dict
    reason: str | None


@dataclass(frozen=True)
class Departure:
    subject_id: str
    display_name: str
    status: str
    last_day: dt.date | None
    ends_at: dt.datetime | None  # when access ends, aware in settings.timezone
    overdue: bool  # the moment has passed but the account is not disabled yet


@dataclass(frozen=True)
class Dashboard:
    people: dict[str, int]  # status -> count, every status present (0 when none)
    last_sync: LastSync | None
    awaiting_approval: int
    departures: list[Departure] = field(default_factory=list)
    departures_total: int = 0  # may exceed len(departures) (at most ``limit`` are listed)
    outbox: dict[str, int] = field(default_factory=dict)  # pending / failed -> count
    policy_revision: int | None = None
    policy_loaded_at: dt.datetime | None = None

    @property
    def people_total(self) -> int:
        return sum(self.people.values())


def summary(db: Database, limit: int = 20) -> Dashboard:
    """The dashboard now; at most ``limit`` departures are listed (``departures_total`` counts all)."""
    today = clock.today()
    now = utcnow()
    window_end = _midnight_utc(today + dt.timedelta(days=WEEK_DAYS))
    # departure_at is the moment; an end date without one (set before departure_at existed, or
    # by the directory) ends access at the midnight after it
    due = and_(
        Account.status != Status.DISABLED,
        or_(
            and_(Account.departure_at.is_not(None), Account.departure_at <= window_end),
            and_(
                Account.departure_at.is_(None),
                Account.end_date.is_not(None),
                Account.end_date < today + dt.timedelta(days=WEEK_DAYS),
            ),
        ),
    )
    with db.session() as s:
        people = dict.fromkeys(ACCOUNT_STATUSES, 0)
        for status, n in s.execute(select(Account.status, func.count()).group_by(Account.status)):
            people[status] = n
        run = s.scalars(
            select(SyncRun).where(SyncRun.dry_run.is_(False)).order_by(SyncRun.id.desc()).limit(1)
        ).first()
        last_sync = (
            LastSync(
                run.id,
                run.kind,
                run.status,
                run.source,
                _local(run.started_at),
                _local(run.finished_at),
                dict(run.counts or {}),
                run.reason,
            )
            if run is not None
            else None
        )
        held = s.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.status == "pending_approval"))
        total = s.scalar(select(func.count()).select_from(Account).where(due))
        rows = s.execute(
            select(
                Account.subject_id,
                Account.display_name,
                Account.status,
                Account.end_date,
                Account.departure_at,
            )
            .where(due)
            .order_by(Account.end_date, Account.departure_at, Account.subject_id)
            .limit(limit)
        ).all()
        outbox = {"pending": 0, "failed": 0}
        for status, n in s.execute(
            select(SsfOutbox.status, func.count())
            .where(SsfOutbox.status.in_(tuple(outbox)))
            .group_by(SsfOutbox.status)
        ):
            outbox[status] = n
        rev = s.execute(
            select(PolicyRevision.id, PolicyRevision.created_at).order_by(PolicyRevision.id.desc()).limit(1)
        ).first()
    departures = [_departure(r, now) for r in rows]
    departures.sort(key=lambda d: (not d.overdue, d.ends_at or dt.datetime.max.replace(tzinfo=dt.UTC)))
    return Dashboard(
        people=people,
        last_sync=last_sync,
        awaiting_approval=held,
        departures=departures,
        departures_total=total,
        outbox=outbox,
        policy_revision=rev.id if rev else None,
        policy_loaded_at=_local(rev.created_at) if rev else None,
    )


def _midnight_utc(day: dt.date) -> dt.datetime:
    """00:00 of ``day`` in settings.timezone, as naive UTC (how departure_at is stored)."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=clock.zone())
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def _local(moment: dt.datetime | None) -> dt.datetime | None:
    """A stored naive-UTC instant, aware in settings.timezone (every time returned here is)."""
    return moment.replace(tzinfo=dt.UTC).astimezone(clock.zone()) if moment is not None else None


def _departure(row, now: dt.datetime) -> Departure:
    subject_id, name, status, end_date, departure_at = row
    moment = departure_at or (_midnight_utc(end_date + dt.timedelta(days=1)) if end_date else None)
    return Departure(
        subject_id=subject_id,
        display_name=name,
        status=status,
        last_day=end_date,
        ends_at=_local(moment),
        overdue=moment is not None and moment <= now,
    )

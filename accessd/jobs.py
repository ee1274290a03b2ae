"""Scheduled jobs, run by ``accessd scheduler`` (never by web workers).

Job functions call the same service functions as the CLI. ``register(scheduler, settings)``
adds: an incremental directory sync every ``sync.incremental_minutes``, a full sync on
``sync.full_cron``, every minute the departures that are due, and a daily
purge of decision records older than ``decision_log.retention_days`` and of delivered Shared Signals
events older than ``ssf.outbox_retention_days``, and a daily sweep that reports
(or, with ``stale.action = "suspend"``, suspends) stale and orphan accounts. At start it also
starts the Shared Signals push deliverer (:func:`start_event_delivery`).
Directory jobs never overlap, in this process or any other on any host: a run that finds the
database's sync lock held (another scheduler, an `accessd sync`, an approval) is skipped.

One scheduler per cluster. Any number of ``accessd scheduler`` processes may run, on any hosts;
with a :class:`Cluster` (what the command passes to ``register``) only the one that leads
(:class:`accessd.lifecycle.locks.Leadership`, settings ``[scheduler]``) runs jobs, and a standby
takes over when it dies. Each run is first claimed in the job's ``scheduler_job`` row by a
compare-and-set, and only when one of the job's fire times passed since the row's ``due_after``:
a fire time is run once across the cluster, even in the moment two processes both believe they
lead. Interval jobs count their fire times from a fixed instant, so every process agrees on them.
A process that becomes leader runs at once, and once, each job that missed one or more fire times
while nobody led, or whose last run was left unfinished by another process (it died mid-run:
every job is safe to run again). A job never run before waits for its first fire time, except the
departures, which run at the first start. The Shared Signals deliverer runs in every process: it
claims outbox rows by a conditional UPDATE (accessd.ssf.delivery), so none is sent twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from accessd import clock
from accessd.config import Settings
from accessd.db import Database
from accessd.errors import SyncBusy
from accessd.lifecycle import stale
from accessd.lifecycle.locks import Leadership
from accessd.lifecycle.offboarding import offboard
from accessd.lifecycle.states import Source, Status
from accessd.lifecycle.sync import SyncResult, run_sync
from accessd.models import Account, SchedulerJob, utcnow
from accessd.pdp import decision_queries
from accessd.ssf import outbox
from accessd.ssf.delivery import Deliverer

log = logging.getLogger(__name__)
ACTOR = "system:scheduler"
SOURCE = "scheduler"


def directory_sync(db: Database, settings: Settings, kind: str) -> SyncResult | None:
    """One directory sync (``full`` or ``incremental``); None when another sync is running."""
    try:
        result = run_sync(db, settings, kind=kind, actor=ACTOR, source=SOURCE)
    except SyncBusy as exc:
        log.info("%s sync skipped: %s", kind, exc.message)
        return None
    level = logging.WARNING if result.status == "failed" else logging.INFO
    log.log(
        level,
        "%s sync run %s: %s %s %s",
        kind,
        result.run_id,
        result.status,
        result.counts,
        result.reason or "",
    )
    return result


def offboard_due_departures(db: Database) -> int:
    """Disable every account whose departure is due: ``departure_at`` passed, or (an end date
    without a moment) its last working day is over in the configured zone. Runs every minute; a
    minute missed while no scheduler led is caught up when one leads, so a departure due while no
    scheduler ran is carried out then.
    Each account is offboarded exactly once: rows are locked while they are handled (PostgreSQL)
    and :func:`~accessd.lifecycle.offboarding.offboard` skips what is already disabled."""
    now, today = utcnow(), clock.today()
    done = 0
    with db.session() as s:
        due = s.scalars(
            select(Account)
            .where(
                Account.status != Status.DISABLED,
                or_(
                    Account.departure_at <= now,
                    and_(Account.departure_at.is_(None), Account.end_date < today),
                ),
            )
            .order_by(Account.id)
            .with_for_update(skip_locked=True)
        )
        for account in due:
            when = (
                account.departure_at.isoformat() + "Z"
                if account.departure_at
                else account.end_date.isoformat()
            )
            done += offboard(
                s,
                account,
                reason=f"departure due ({when})",
                source=Source.SCHEDULER,
                actor=ACTOR,
                event_ref=f"departure:{when}",
            )
    if done:
        log.info("offboarded %d accounts whose departure was due", done)
    return done


def purge_decision_log(db: Database, retention_days: int) -> int:
    """Delete decision records older than the configured retention."""
    with db.session() as s:
        removed = decision_queries.purge(s, retention_days)
    log.info("decision log: purged %d records older than %d days", removed, retention_days)
    return removed


def purge_event_outbox(db: Database, retention_days: int) -> int:
    """Delete Shared Signals events delivered (or given up) longer ago than the retention."""
    with db.session() as s:
        removed = outbox.purge(s, retention_days)
    log.info("event outbox: purged %d events older than %d days", removed, retention_days)
    return removed


def start_event_delivery(db: Database, settings: Settings) -> None:
    """Start this process's Shared Signals push deliverer (a job run once, when the scheduler
    starts): what the scheduler's own jobs queue goes out right after their commit, and it shares
    the outbox with the web workers' deliverers (accessd.ssf.delivery). Stopped at exit."""
    global _deliverer
    if _deliverer is None or _deliverer.db is not db:
        if _deliverer is not None:
            _deliverer.close()
        _deliverer = Deliverer(db, settings.ssf)
    _deliverer.start()


_deliverer: Deliverer | None = None


ANCHOR = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class Every(IntervalTrigger):
    """Every ``interval``, counted from :data:`ANCHOR`: the same fire times in every process
    whenever it started, and a run between them (a catch-up) does not shift the ones after it."""

    def __init__(self, **interval):
        super().__init__(**interval, start_date=ANCHOR, timezone=dt.UTC)

    def get_next_fire_time(self, previous_fire_time, now):
        if previous_fire_time is not None:
            now = previous_fire_time + dt.timedelta(microseconds=1)
        return super().get_next_fire_time(None, now)


@dataclass(frozen=True)
class _Job:
    id: str
    name: str
    trigger: object
    first_run_at_start: bool
    func: object
    args: tuple


class Cluster:
    """This process's part in running the jobs once per cluster (see the module docstring).

    ``register(scheduler, settings, db, cluster)`` routes every job through :meth:`run`;
    :meth:`start` starts the leadership thread, :meth:`stop` hands the lead back."""

    def __init__(self, db: Database, settings: Settings, scheduler):
        self.db = db
        self.scheduler = scheduler
        self.jobs: dict[str, _Job] = {}
        self.leadership = Leadership(
            db,
            "scheduler",
            lease_seconds=settings.scheduler.lease_seconds,
            retry_seconds=settings.scheduler.retry_seconds,
            on_lead=self._took_the_lead,
        )
        self._catching_up: set[str] = set()

    def start(self) -> None:
        self.leadership.start()

    def stop(self) -> None:
        self.leadership.stop()

    def add(self, job_id: str, name: str, trigger, func, args, first_run_at_start: bool = False) -> None:
        self.jobs[job_id] = _Job(job_id, name, trigger, first_run_at_start, func, tuple(args))

    def run(self, job_id: str, func, *args) -> None:
        """The scheduler's job function: run ``func(*args)`` if this process leads and claims
        the run; record how it ended."""
        if not self.leadership.confirm():
            log.debug("%s: not run here (standing by)", job_id)
            return
        catching_up = job_id in self._catching_up
        self._catching_up.discard(job_id)
        try:
            claimed = self._claim(self.jobs[job_id], catching_up)
        except Exception as exc:  # noqa: BLE001 - unclaimed is not run: the next fire time tries again
            log.warning("%s: not run, its run could not be claimed: %s", job_id, type(exc).__name__)
            return
        if claimed is None:
            return
        owner, number = claimed
        status, error = "failed", None
        try:
            func(*args)
            status = "succeeded"
        except Exception as exc:  # noqa: BLE001 - recorded and logged; the next fire time tries again
            error = f"{type(exc).__name__}: {exc}"[:300]
            log.exception("%s failed", job_id)
        finally:
            with self.db.session() as s:
                s.execute(
                    update(SchedulerJob)
                    .where(SchedulerJob.id == job_id, SchedulerJob.runs == number)
                    .values(status=status, finished_at=utcnow(), error=error)
                )

    def _took_the_lead(self) -> None:
        """Record the jobs never scheduled before, then start a catch-up of every job: each runs
        now if it missed a fire time (or was left unfinished) -- :meth:`run` decides. The catch-up
        is a one-off job of its own: an instance of the job itself may be in flight (started
        just before the lead was taken, it found none) and would make APScheduler skip it."""
        now = utcnow()
        with self.db.session() as s:
            known = set(s.scalars(select(SchedulerJob.id)))
            for job in self.jobs.values():
                if job.id not in known and not job.first_run_at_start:
                    s.execute(
                        _insert(self.db).values(id=job.id, runs=0, due_after=now).on_conflict_do_nothing()
                    )
        self._catching_up = set(self.jobs)
        for job in self.jobs.values():
            self.scheduler.add_job(
                self.run,
                args=[job.id, job.func, *job.args],
                id=f"{job.id}:catch-up",
                name=f"catch up: {job.name}",
                replace_existing=True,
            )

    def _claim(self, job: _Job, catching_up: bool) -> tuple[str, int] | None:
        """(owner, run number) when this process won the run; None when it is not due or
        another process claimed it first."""
        owner, now = self.leadership.owner, utcnow()
        if owner is None:
            return None
        claim = {"status": "running", "ran_by": owner, "started_at": now, "due_after": now}
        claim.update(finished_at=None, error=None)
        with self.db.session() as s:
            row = s.get(SchedulerJob, job.id)
            if row is None:  # never run (or its row was deleted): due
                won = s.execute(
                    _insert(self.db)
                    .values(id=job.id, runs=1, **claim)
                    .on_conflict_do_nothing()
                    .returning(SchedulerJob.id)
                ).first()
                return (owner, 1) if won else None
            runs, last_by = row.runs, row.ran_by  # as read: the UPDATE below refreshes ``row``
            unfinished = catching_up and row.status == "running" and last_by != owner
            missed = _next_fire(job.trigger, row.due_after)
            if not unfinished and (missed is None or missed > now):
                return None
            won = s.execute(
                update(SchedulerJob)
                .where(SchedulerJob.id == job.id, SchedulerJob.runs == runs)
                .values(runs=runs + 1, **claim)
            ).rowcount
        if won != 1:
            return None
        if unfinished:
            log.info("%s: running again, its last run (by %s) did not finish", job.id, last_by)
        elif catching_up:
            log.info(
                "%s: catching up, once, what fell due at %s UTC and after",
                job.id,
                f"{missed:%Y-%m-%d %H:%M:%S}",
            )
        return owner, runs + 1


def _next_fire(trigger, after: dt.datetime) -> dt.datetime | None:
    """The trigger's first fire time after ``after`` (naive UTC in and out)."""
    fire = trigger.get_next_fire_time(None, after.replace(tzinfo=dt.UTC) + dt.timedelta(microseconds=1))
    return None if fire is None else fire.astimezone(dt.UTC).replace(tzinfo=None)


def _insert(db: Database):
    # an INSERT's rowcount is -1 with psycopg: whether a row went in is told by RETURNING
    return (pg_insert if db.dialect == "postgresql" else sqlite_insert)(SchedulerJob.__table__)


def register(
    scheduler, settings: Settings, db: Database | None = None, cluster: Cluster | None = None
) -> None:
    """Add the jobs to an APScheduler scheduler. With ``cluster`` (``accessd scheduler``) each
    runs through :meth:`Cluster.run`: only while this process leads, once per fire time."""
    db = db or Database(settings.effective_database_url)
    common = {"max_instances": 1, "coalesce": True, "replace_existing": True, "misfire_grace_time": 300}

    def add(func, trigger, args, id, name, first_run_at_start=False, **extra):
        if cluster is not None:
            cluster.add(id, name, trigger, func, args, first_run_at_start)
            func, args = cluster.run, [id, func, *args]
        scheduler.add_job(func, trigger, args=args, id=id, name=name, **common, **extra)

    if settings.ldap.url:
        add(
            directory_sync,
            Every(minutes=settings.sync.incremental_minutes),
            [db, settings, "incremental"],
            "ldap-incremental",
            "incremental directory sync",
        )
        add(
            directory_sync,
            CronTrigger.from_crontab(settings.sync.full_cron, timezone=settings.timezone),
            [db, settings, "full"],
            "ldap-full",
            "full directory sync",
        )
    add(
        offboard_due_departures,
        Every(minutes=1),
        [db],
        "departures",
        "offboard accounts whose departure is due",
        first_run_at_start=True,
        # at start too (without a cluster: always; with one: if this process leads and a minute
        # was missed) -- what fell due while no scheduler ran
        next_run_time=dt.datetime.now(dt.UTC),
    )
    scheduler.add_job(
        start_event_delivery,
        args=[db, settings],
        id="ssf-delivery",
        name="start the Shared Signals push deliverer",
        replace_existing=True,
    )
    add(
        purge_decision_log,
        CronTrigger(hour=3, minute=30, timezone=settings.timezone),
        [db, settings.decision_log.retention_days],
        "decision-log-retention",
        "purge decision records past their retention",
    )
    add(
        purge_event_outbox,
        CronTrigger(hour=3, minute=45, timezone=settings.timezone),
        [db, settings.ssf.outbox_retention_days],
        "event-outbox-retention",
        "purge delivered Shared Signals events past their retention",
    )
    add(
        stale.sweep,
        CronTrigger(hour=4, minute=15, timezone=settings.timezone),
        [db, settings],
        "stale-sweep",
        "report (or suspend) stale and orphan accounts",
    )

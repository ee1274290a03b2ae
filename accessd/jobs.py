"""Scheduled jobs, run by ``accessd scheduler`` (never by web workers).

Job functions call the same service functions as the CLI. ``register(scheduler, settings)``
adds: an incremental directory sync every ``sync.incremental_minutes``, a full sync on
``sync.full_cron``, every minute (and at start) the departures that are due, and a daily
purge of decision records older than ``decision_log.retention_days`` and of delivered Shared Signals
events older than ``ssf.outbox_retention_days``, and a daily sweep that reports
(or, with ``stale.action = "suspend"``, suspends) stale and orphan accounts. At start it also
starts the Shared Signals push deliverer (:func:`start_event_delivery`).
Directory jobs never overlap, in this process or any other on any host: a run that finds the
database's sync lock held (another scheduler, an `accessd sync`, an approval) is skipped.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import and_, or_, select

from accessd import clock
from accessd.config import Settings
from accessd.db import Database
from accessd.errors import SyncBusy
from accessd.lifecycle import stale
from accessd.lifecycle.offboarding import offboard
from accessd.lifecycle.states import Source, Status
from accessd.lifecycle.sync import SyncResult, run_sync
from accessd.models import Account, utcnow
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
    without a moment) its last working day is over in the configured zone. Runs every minute and
    once when the scheduler starts, so a departure due while no scheduler ran is carried out then.
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


def register(scheduler, settings: Settings, db: Database | None = None) -> None:
    """Add the jobs to an APScheduler scheduler."""
    db = db or Database(settings.effective_database_url)
    common = {"max_instances": 1, "coalesce": True, "replace_existing": True, "misfire_grace_time": 300}
    if settings.ldap.url:
        scheduler.add_job(
            directory_sync,
            IntervalTrigger(minutes=settings.sync.incremental_minutes),
            args=[db, settings, "incremental"],
            id="ldap-incremental",
            name="incremental directory sync",
            **common,
        )
        scheduler.add_job(
            directory_sync,
            CronTrigger.from_crontab(settings.sync.full_cron, timezone=settings.timezone),
            args=[db, settings, "full"],
            id="ldap-full",
            name="full directory sync",
            **common,
        )
    scheduler.add_job(
        offboard_due_departures,
        IntervalTrigger(minutes=1),
        args=[db],
        id="departures",
        name="offboard accounts whose departure is due",
        next_run_time=dt.datetime.now(dt.UTC),  # at start too: catch up on what fell due while down
        **common,
    )
    scheduler.add_job(
        start_event_delivery,
        args=[db, settings],
        id="ssf-delivery",
        name="start the Shared Signals push deliverer",
        replace_existing=True,
    )
    scheduler.add_job(
        purge_decision_log,
        CronTrigger(hour=3, minute=30, timezone=settings.timezone),
        args=[db, settings.decision_log.retention_days],
        id="decision-log-retention",
        name="purge decision records past their retention",
        **common,
    )
    scheduler.add_job(
        purge_event_outbox,
        CronTrigger(hour=3, minute=45, timezone=settings.timezone),
        args=[db, settings.ssf.outbox_retention_days],
        id="event-outbox-retention",
        name="purge delivered Shared Signals events past their retention",
        **common,
    )
    scheduler.add_job(
        stale.sweep,
        CronTrigger(hour=4, minute=15, timezone=settings.timezone),
        args=[db, settings],
        id="stale-sweep",
        name="report (or suspend) stale and orphan accounts",
        **common,
    )

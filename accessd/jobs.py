"""Scheduled jobs, run by ``accessd scheduler`` (never by web workers).

Job functions call the same service functions as the CLI. ``register(scheduler, settings)``
adds: an incremental directory sync every ``sync.incremental_minutes``, a full sync on
``sync.full_cron``, a daily sweep that offboards accounts whose end date has passed, and a daily
purge of decision records older than ``decision_log.retention_days``.
Directory jobs never overlap, in this process or any other on any host: a run that finds the
database's sync lock held (another scheduler, an `accessd sync`, an approval) is skipped.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from accessd import clock
from accessd.config import Settings
from accessd.db import Database
from accessd.errors import SyncBusy
from accessd.lifecycle.offboarding import offboard
from accessd.lifecycle.sync import SyncResult, run_sync
from accessd.models import Account
from accessd.pdp import decision_queries

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


def expire_ended_accounts(db: Database, today: dt.date | None = None) -> int:
    """Offboard active accounts whose last working day has passed (the engine already denies them);
    ``today`` defaults to the clock's (the configured zone's) date."""
    today = today or clock.today()
    done = 0
    with db.session() as s:
        due = s.scalars(select(Account).where(Account.status != "disabled", Account.end_date < today))
        for account in due:
            reason = f"end date {account.end_date.isoformat()} passed"
            done += offboard(s, account, reason=reason, source=SOURCE, actor=ACTOR)
    if done:
        log.info("offboarded %d accounts whose end date passed", done)
    return done


def purge_decision_log(db: Database, retention_days: int) -> int:
    """Delete decision records older than the configured retention."""
    with db.session() as s:
        removed = decision_queries.purge(s, retention_days)
    log.info("decision log: purged %d records older than %d days", removed, retention_days)
    return removed


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
        expire_ended_accounts,
        CronTrigger(hour=0, minute=5, timezone=settings.timezone),
        args=[db],
        id="expire-ended",
        name="offboard accounts past their end date",
        **common,
    )
    scheduler.add_job(
        purge_decision_log,
        CronTrigger(hour=3, minute=30, timezone=settings.timezone),
        args=[db, settings.decision_log.retention_days],
        id="decision-log-retention",
        name="purge decision records past their retention",
        **common,
    )

"""The database side of a sync run: what it loads before reading, and its ``SyncRun`` record.

:func:`load_context` gathers what a run needs before it reads the directory (accounts and
grants, the high-water mark of the last applied run, the people the last good full run saw, the
subject attributes of the policy in force). The record helpers store a plan on its run, mark
older held runs superseded, fail runs a dead process left ``running`` (``INTERRUPTED``), and
check that a held run may still be approved.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accessd.db import Database
from accessd.errors import Conflict, NotFound
from accessd.lifecycle.sync_actions import SyncPlan
from accessd.lifecycle.sync_plan import AccountState, load_state
from accessd.models import SyncRun, utcnow
from accessd.pdp import revisions

INTERRUPTED = "interrupted: the process running it stopped before it finished"


@dataclass
class RunContext:
    """What a run needs from the database before it reads the directory."""

    kind: str
    since: str | None  # incremental: the high-water mark of the last applied run
    last_seen: int | None  # people seen by the last good full run
    accounts: dict[int, AccountState]
    grants: dict[int, list[tuple]]
    subject_attributes: set[str]


def _last_good(session: Session, *, full_only: bool) -> SyncRun | None:
    q = select(SyncRun).where(SyncRun.status == "succeeded", SyncRun.dry_run.is_(False))
    if full_only:
        q = q.where(SyncRun.kind == "full")
    return session.scalars(q.order_by(SyncRun.id.desc()).limit(1)).first()


def load_context(session: Session, kind: str) -> RunContext:
    last_any = _last_good(session, full_only=False)
    last_full = _last_good(session, full_only=True)
    accounts, grants = load_state(session)
    return RunContext(
        kind=kind,
        since=last_any.high_water_mark if (kind == "incremental" and last_any) else None,
        last_seen=last_full.seen if last_full else None,
        accounts=accounts,
        grants=grants,
        subject_attributes=_declared_subject_attributes(session),
    )


def _declared_subject_attributes(session: Session) -> set[str]:
    """The subject attributes of the policy in force (none before a policy is loaded)."""
    rev = revisions.current(session)
    return set(revisions.policy_of(rev).catalogue.subject_attributes) if rev else set()


def run_record(session: Session, run_id: int) -> SyncRun:
    """The run ``run_id``, or NotFound."""
    run = session.get(SyncRun, run_id)
    if run is None:
        raise NotFound(f"no sync run {run_id}")
    return run


def finish(db: Database, run_id: int, **values) -> None:
    with db.session() as s:
        s.execute(update(SyncRun).where(SyncRun.id == run_id).values(finished_at=utcnow(), **values))


def store_plan(session: Session, run_id: int, plan: SyncPlan, **values) -> None:
    """Finish run ``run_id`` with ``plan`` (and its counts and high-water mark) stored on it."""
    session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id)
        .values(
            finished_at=utcnow(),
            counts=plan.counts(),
            plan=plan.to_json(),
            high_water_mark=plan.high_water_mark,
            **values,
        )
    )


def supersede_older(session: Session, run_id: int) -> None:
    """A newer real run read the directory later: older held plans can no longer be approved."""
    session.execute(
        update(SyncRun)
        .where(SyncRun.id < run_id, SyncRun.status == "pending_approval")
        .values(
            status="superseded",
            reason=f"superseded by run {run_id}, which read the directory later",
            finished_at=utcnow(),
        )
    )


def fail_interrupted(db: Database) -> None:
    """Mark runs a dead process left ``running`` as failed. Called with the sync lock held: no
    live process can be running one."""
    with db.session() as s:
        s.execute(
            update(SyncRun)
            .where(SyncRun.status.in_(("running", "applying")))
            .values(status="failed", reason=INTERRUPTED, finished_at=utcnow())
        )


def approvable(session: Session, run_id: int) -> SyncRun:
    """The held run, or Conflict saying why it cannot be approved."""
    run = run_record(session, run_id)
    if run.applied_at is not None:
        raise Conflict(
            f"sync run {run_id} was already applied at {run.applied_at:%Y-%m-%d %H:%M:%S}"
            f"{' (approved by ' + run.approved_by + ')' if run.approved_by else ''}"
        )
    newer = session.scalars(
        select(SyncRun)
        .where(SyncRun.id > run_id, SyncRun.status == "succeeded", SyncRun.dry_run.is_(False))
        .order_by(SyncRun.id)
        .limit(1)
    ).first()
    if newer is not None:
        raise Conflict(
            f"sync run {run_id} cannot be approved: run {newer.id} read the directory later and completed "
            f"at {newer.finished_at:%Y-%m-%d %H:%M:%S}; run `accessd sync` for a current plan"
        )
    if run.status == "superseded":
        raise Conflict(f"sync run {run_id} cannot be approved: {run.reason}")
    if run.status != "pending_approval" or run.dry_run:
        dry = ", dry run" if run.dry_run else ""
        raise Conflict(f"sync run {run_id} is not pending approval (status {run.status}{dry})")
    return run

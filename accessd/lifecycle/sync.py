"""Reconcile the directory with accessd's accounts: read -> plan -> (check) -> apply.

``run_sync(db, settings, kind=..., dry_run=..., source=...)`` reads the directory completely (one
paged search for users, one for groups), loads accounts and grants, computes a typed plan in
memory (:mod:`~accessd.lifecycle.sync_plan`, actions in :mod:`~accessd.lifecycle.sync_actions`)
and writes only the differences, in bulk (:mod:`~accessd.lifecycle.sync_apply`). The plan is
stored on the ``SyncRun`` (:mod:`~accessd.lifecycle.sync_runs`); a dry run stops there, a real run
applies exactly that plan, and a run that would disable or strip too many accounts stops as
``pending_approval``. This module orchestrates: runs, approval, rejection, listing, locking.

One at a time: every run and every approval holds the database's sync lock
(:mod:`accessd.lifecycle.locks`) from before its run record is written until it is finished; a
second process gets ``SyncBusy`` at once and records nothing. With the lock held, runs still
``running`` were left by a dead process and are marked failed (``INTERRUPTED``).

Safety (never deprovision on incomplete evidence): if the directory could not be bound or read
completely (any page, a size or time limit, a missing base DN), or a full run sees fewer people
than ``sync.min_seen_ratio`` of the last good full run (or nobody at all while directory accounts
exist), the run fails and changes nothing.

Approval (``approve``) re-reads the directory and plans again; it applies only what is still true,
holds the plan again as a new run when it needs approval for more than was approved, and refuses
a run older than a newer completed run. Every newer real run supersedes older held runs.

Incremental runs read only entries changed after the high-water mark of the last applied run
(``entryCSN`` on OpenLDAP, ``uSNChanged`` on AD; ``modifyTimestamp`` can be configured), the mark
being what the directory had reached *before* that run began to read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update

from accessd import audit
from accessd.config import Settings
from accessd.db import Database
from accessd.errors import Conflict, DirectoryUnavailable, Invalid
from accessd.lifecycle.directory import Directory
from accessd.lifecycle.directory_entries import DirectoryEntry
from accessd.lifecycle.locks import SyncLock
from accessd.lifecycle.sync_actions import SyncPlan, describe_action
from accessd.lifecycle.sync_apply import apply_plan, approval_reason, too_few_seen
from accessd.lifecycle.sync_plan import plan_sync, read_directory
from accessd.lifecycle.sync_runs import (
    RunContext,
    approvable,
    fail_interrupted,
    finish,
    load_context,
    run_record,
    store_plan,
    supersede_older,
)
from accessd.models import SyncAction, SyncRun, utcnow

__all__ = [
    "ApprovalResult",
    "SyncPlan",
    "SyncResult",
    "approve",
    "describe_action",
    "get_run",
    "list_runs",
    "reject",
    "run_sync",
]

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    run_id: int
    status: str  # succeeded | failed | pending_approval
    reason: str | None
    dry_run: bool
    seen: int
    plan: SyncPlan | None
    counts: dict
    timings: dict[str, float] = field(default_factory=dict)  # seconds: read, plan, write

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class ApprovalResult:
    """What ``approve`` did: applied the re-checked plan, or held it again as ``held_run_id``."""

    run_id: int
    applied: dict[str, int]
    held_run_id: int | None = None
    dropped: list[str] = field(default_factory=list)  # approved changes no longer true (described)
    reason: str | None = None


@dataclass
class _Outcome:
    seen: int
    plan: SyncPlan | None  # None: nothing may change; ``reason`` says why
    reason: str | None
    timings: dict[str, float]


def _read_and_plan(
    settings: Settings,
    ctx: RunContext,
    *,
    progress: Callable[[int], None] | None,
    today: dt.date | None,
) -> _Outcome:
    """Read the directory completely and plan; a failed or implausibly small read gives no plan."""

    def needs_groups(users: list[DirectoryEntry]) -> bool:
        known = {a.key: a for a in ctx.accounts.values() if a.key}
        for u in users:
            acc = known.get(u.key)
            if acc is None or acc.fields["directory_dn"] != u.dn or acc.status == "disabled":
                return True
        return False

    t0 = time.perf_counter()
    try:
        with Directory(
            settings.ldap,
            subject_attributes=ctx.subject_attributes,
            progress=progress,
            progress_every=settings.sync.progress_every,
        ) as d:
            snapshot = read_directory(d, ctx.kind, ctx.since, needs_groups)
    except DirectoryUnavailable as exc:
        return _Outcome(0, None, exc.message, {})
    seen = len(snapshot.users)
    timings = {"read": time.perf_counter() - t0}
    reason = too_few_seen(snapshot, ctx.accounts, ctx.last_seen, settings)
    if reason:
        return _Outcome(seen, None, reason, timings)
    t1 = time.perf_counter()
    plan = plan_sync(snapshot, ctx.accounts, ctx.grants, settings, today=today)
    timings["plan"] = time.perf_counter() - t1
    return _Outcome(seen, plan, None, timings)


# --- a run --------------------------------------------------------------------------------------


def run_sync(
    db: Database,
    settings: Settings,
    *,
    kind: str = "full",
    dry_run: bool = False,
    actor: str = "system:sync",
    source: str = "cli",
    progress: Callable[[int], None] | None = None,
    today: dt.date | None = None,
) -> SyncResult:
    """Run one sync and record it, ``source`` (cli, scheduler, cron, ...) saying what started it.

    Never raises for directory problems: the run is marked failed with the reason and nothing is
    changed. Raises SyncBusy while another process holds the sync lock, and Invalid for a
    ``kind`` other than full or incremental, both recording nothing. Any other error marks the
    run failed and is raised again: an :mod:`accessd.errors` type (Invalid for a missing LDAP
    setting) or the database driver's.
    """
    if kind not in ("full", "incremental"):
        raise Invalid(f"kind must be full or incremental, not {kind!r}")
    with SyncLock(db) as lock:
        fail_interrupted(db)
        with db.session() as s:
            run = SyncRun(kind=kind, dry_run=dry_run, status="running", actor=actor, source=source, counts={})
            s.add(run)
            s.flush()
            run_id = run.id
            ctx = load_context(s, kind)
        lock.set_run(run_id)
        try:
            out = _read_and_plan(settings, ctx, progress=progress, today=today)
            return _conclude(db, settings, run_id, ctx, out, dry_run=dry_run, actor=actor)
        except BaseException as exc:
            with contextlib.suppress(Exception), db.session() as s:  # the database may be what failed
                s.execute(
                    update(SyncRun)
                    .where(SyncRun.id == run_id, SyncRun.status == "running")
                    .values(status="failed", reason=f"{type(exc).__name__}: {exc}", finished_at=utcnow())
                )
            raise


def _conclude(
    db: Database,
    settings: Settings,
    run_id: int,
    ctx: RunContext,
    out: _Outcome,
    *,
    dry_run: bool,
    actor: str,
) -> SyncResult:
    """Record a run's outcome: failed, dry, held for approval, or applied."""
    if out.plan is None:
        finish(db, run_id, status="failed", reason=out.reason, seen=out.seen)
        log.debug("sync run %s failed: %s", run_id, out.reason)
        return SyncResult(run_id, "failed", out.reason, dry_run, out.seen, None, {})
    plan, counts = out.plan, out.plan.counts()
    approval = approval_reason(plan, ctx.accounts, settings, run_id)
    if dry_run or approval:
        # the plan is stored either way: a dry run to show it, a held run to apply it on approval
        if dry_run:
            status, reason = "succeeded", (f"dry run; a real run {approval}" if approval else "dry run")
        else:
            status, reason = "pending_approval", approval
        with db.session() as s:
            store_plan(s, run_id, plan, status=status, reason=reason, seen=out.seen)
            if not dry_run:
                supersede_older(s, run_id)
        return SyncResult(run_id, status, reason, dry_run, out.seen, plan, counts, out.timings)

    t2 = time.perf_counter()
    with db.session() as s:
        applied = apply_plan(s, plan, run_id=run_id, actor=actor) if plan.actions else {}
        reason = None if applied == counts else f"applied {applied}"
        store_plan(s, run_id, plan, status="succeeded", applied_at=utcnow(), seen=out.seen, reason=reason)
        supersede_older(s, run_id)
    out.timings["write"] = time.perf_counter() - t2
    return SyncResult(run_id, "succeeded", None, False, out.seen, plan, counts, out.timings)


# --- approval -----------------------------------------------------------------------------------


def approve(
    db: Database,
    settings: Settings,
    run_id: int,
    actor: str,
    *,
    progress: Callable[[int], None] | None = None,
    today: dt.date | None = None,
) -> ApprovalResult:
    """Approve a held run: re-read the directory and apply only what is still true, exactly once.

    The plan is made again (same kind and high-water mark, same safety checks as any run).
    Approved disables and role removals that are no longer true are dropped; changes that need
    no approval are applied as any run would. If the new plan needs approval for a disable or
    removal that was not approved, nothing is applied: a new held run (source ``approval``)
    supersedes this one, to be approved in its place. A run older than a newer completed run
    cannot be approved (Conflict). Raises SyncBusy while another sync runs, and
    DirectoryUnavailable (the run stays held) when the directory cannot be read completely.
    """
    with SyncLock(db) as lock:
        fail_interrupted(db)
        lock.set_run(run_id)
        with db.session() as s:
            held = approvable(s, run_id)
            approved = SyncPlan.from_json(held.plan)
            ctx = load_context(s, held.kind)
        out = _read_and_plan(settings, ctx, progress=progress, today=today)
        if out.plan is None:
            raise DirectoryUnavailable(
                f"sync run {run_id} stays pending approval: the directory could not be re-read: {out.reason}"
            )
        old, new = approved.reductions(), out.plan.reductions()
        beyond = set(new) - set(old)
        if beyond and approval_reason(out.plan, ctx.accounts, settings, run_id):
            return _hold_again(db, settings, run_id, ctx, out, actor, len(beyond))
        dropped = [describe_action(old[k]) for k in sorted(set(old) - set(new), key=str)]
        return _apply_approved(db, run_id, out, actor, dropped)


def _hold_again(
    db: Database, settings: Settings, run_id: int, ctx: RunContext, out: _Outcome, actor: str, beyond: int
) -> ApprovalResult:
    """The directory changed beyond what was approved: a new held run replaces ``run_id``."""
    with db.session() as s:
        run = SyncRun(kind=ctx.kind, dry_run=False, status="pending_approval", actor=actor, source="approval")
        s.add(run)
        s.flush()
        reason = (
            f"made when run {run_id} was approved, which did not cover {beyond} of its disables or role "
            f"removals; it {approval_reason(out.plan, ctx.accounts, settings, run.id)}"
        )
        store_plan(s, run.id, out.plan, status="pending_approval", reason=reason, seen=out.seen)
        supersede_older(s, run.id)
        s.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(
                reason=f"not applied: the directory changed beyond what was approved by {actor}; "
                f"run {run.id} holds the new plan for approval"
            )
        )
        audit.record(
            s, actor, "sync.approve_held", f"sync_run:{run_id}", {"new_run": run.id, "beyond": beyond}
        )
    return ApprovalResult(run_id, {}, held_run_id=run.id, reason=reason)


def _apply_approved(
    db: Database, run_id: int, out: _Outcome, actor: str, dropped: list[str]
) -> ApprovalResult:
    """Apply the re-checked plan on the held run, exactly once (a concurrent reject wins or loses)."""
    plan = out.plan
    with db.session() as s:
        claimed = s.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id, SyncRun.status == "pending_approval", SyncRun.applied_at.is_(None))
            .values(status="applying", approved_by=actor)
        ).rowcount
        if claimed != 1:
            raise Conflict(f"sync run {run_id} is no longer pending approval")
        applied = apply_plan(s, plan, run_id=run_id, actor=actor) if plan.actions else {}
        reason = f"approved by {actor}; re-checked against the directory"
        if dropped:
            reason += f": {len(dropped)} approved changes no longer true were not applied"
        store_plan(s, run_id, plan, status="succeeded", applied_at=utcnow(), seen=out.seen, reason=reason)
        supersede_older(s, run_id)
        audit.record(s, actor, "sync.approve", f"sync_run:{run_id}", {"applied": applied, "dropped": dropped})
    return ApprovalResult(run_id, dict(applied), dropped=dropped, reason=reason)


def reject(db: Database, run_id: int, actor: str) -> None:
    """Discard a pending run's plan: nothing is applied."""
    with db.session() as s:
        run = run_record(s, run_id)
        done = s.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id, SyncRun.status == "pending_approval")
            .values(status="rejected", approved_by=actor, reason=f"rejected by {actor}", finished_at=utcnow())
        ).rowcount
        if done != 1:
            s.refresh(run)
            raise Conflict(f"sync run {run_id} is not pending approval (status {run.status})")
        audit.record(s, actor, "sync.reject", f"sync_run:{run_id}", {})


# --- stored runs --------------------------------------------------------------------------------


def list_runs(db: Database, limit: int = 20) -> list[SyncRun]:
    with db.session() as s:
        return list(s.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)))


def get_run(db: Database, run_id: int) -> tuple[SyncRun, list[SyncAction]]:
    with db.session() as s:
        run = run_record(s, run_id)
        actions = list(
            s.scalars(select(SyncAction).where(SyncAction.run_id == run_id).order_by(SyncAction.id))
        )
        return run, actions

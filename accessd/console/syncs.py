"""Directory sync runs for the admin UI: the list, one run's report, approving or rejecting a
held run.

Approval and rejection go through :mod:`accessd.lifecycle.sync` (the functions ``accessd sync
approve`` / ``reject`` call), so the UI approves exactly as the CLI does: approving re-reads the
directory under the sync lock and applies only what is still true, exactly once; rejecting needs
no directory. Their failures are :mod:`accessd.errors` types with a message a person can act on:
``DirectoryUnavailable`` (503; the run stays held), ``SyncBusy`` (409, another sync holds the
lock), ``Conflict`` (409, no longer pending or superseded), ``Invalid`` (400, no directory is
configured), ``NotFound`` (404).

A run's report lists its actions: the ``sync_action`` rows of an applied run, or the stored plan
of a run that applied nothing (held, rejected, a dry run). Each action has its kind (``join``,
``update``, ``leave``, ``reenable``, ``grant``, ``revoke``) and the label people use (joiner,
mover, leaver, returner, grant, revoke). Times are aware datetimes in ``settings.timezone``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select

from accessd.console.logs import checked_page, checked_text, local
from accessd.console.paging import PER_PAGE, Page, newest_first, offset_of
from accessd.errors import Invalid, NotFound
from accessd.models import Account, SyncAction, SyncRun

LABELS = {
    "join": "joiner",
    "update": "mover",
    "leave": "leaver",
    "reenable": "returner",
    "grant": "grant",
    "revoke": "revoke",
}
STATUSES = ("running", "applying", "succeeded", "failed", "pending_approval", "rejected", "superseded")
_MAX_ID = 2**31 - 1  # the id columns are 32-bit: a bigger number is no run (and no SQL error)


@dataclass(frozen=True)
class RunSummary:
    id: int
    kind: str
    dry_run: bool
    status: str
    source: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    seen: int
    counts: dict
    reason: str | None
    actor: str
    approved_by: str | None
    applied_at: dt.datetime | None

    @property
    def held(self) -> bool:
        """Pending approval: approve or reject may be offered."""
        return self.status == "pending_approval" and not self.dry_run

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class ActionRow:
    kind: str
    label: str
    subject_id: str | None
    account_id: int | None
    detail: str
    reason: str | None


@dataclass(frozen=True)
class RunReport:
    run: RunSummary
    actions: Page  # of ActionRow
    applied: bool  # True: the actions applied (sync_action); False: the stored plan
    warnings: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # every action of the run by kind


def _summary(r: SyncRun) -> RunSummary:
    return RunSummary(
        id=r.id,
        kind=r.kind,
        dry_run=bool(r.dry_run),
        status=r.status,
        source=r.source,
        started_at=local(r.started_at),
        finished_at=local(r.finished_at),
        seen=r.seen or 0,
        counts=dict(r.counts or {}),
        reason=r.reason,
        actor=r.actor,
        approved_by=r.approved_by,
        applied_at=local(r.applied_at),
    )


def checked_run_id(run_id) -> int:
    if isinstance(run_id, bool) or not isinstance(run_id, int) or not 1 <= run_id <= _MAX_ID:
        raise NotFound(f"no sync run {str(run_id)[:40]}")
    return run_id


def _kind(kind: str | None) -> str | None:
    kind = checked_text(kind, "kind", 16)
    if kind is not None and kind not in LABELS:
        raise Invalid(f"kind must be one of {', '.join(LABELS)}", pointer="kind")
    return kind


def list_runs(db, page: int = 1, per_page: int = PER_PAGE, status: str | None = None) -> Page:
    """One page of runs (of ``status`` if given), newest first."""
    page = checked_page(page)
    status = checked_text(status, "status", 24)
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", pointer="status")
    where = [SyncRun.status == status] if status else []
    with db.session() as s:
        return newest_first(s, SyncRun, where, page, per_page, _summary)


def held_count(db) -> int:
    """How many runs wait for approval (for a dashboard or the nav)."""
    with db.session() as s:
        return s.scalar(
            select(func.count(SyncRun.id)).where(
                SyncRun.status == "pending_approval", SyncRun.dry_run.is_(False)
            )
        )


def run_summary(db, run_id: int) -> RunSummary:
    run_id = checked_run_id(run_id)
    with db.session() as s:
        run = s.get(SyncRun, run_id)
        if run is None:
            raise NotFound(f"no sync run {run_id}")
        return _summary(run)


def run_report(
    db, run_id: int, page: int = 1, per_page: int = PER_PAGE, kind: str | None = None
) -> RunReport:
    """Run ``run_id`` with one page of its actions (of ``kind`` if given), in plan order."""
    run_id = checked_run_id(run_id)
    page = checked_page(page)
    kind = _kind(kind)
    with db.session() as s:
        run = s.get(SyncRun, run_id)
        if run is None:
            raise NotFound(f"no sync run {run_id}")
        summary = _summary(run)
        plan = run.plan or {}
        kinds = dict(
            s.execute(
                select(SyncAction.action, func.count(SyncAction.id))
                .where(SyncAction.run_id == run_id)
                .group_by(SyncAction.action)
            ).all()
        )
        if kinds:
            where = [SyncAction.run_id == run_id] + ([SyncAction.action == kind] if kind else [])
            total = s.scalar(select(func.count(SyncAction.id)).where(*where))
            rows = s.execute(
                select(SyncAction, Account.subject_id)
                .outerjoin(Account, Account.id == SyncAction.account_id)
                .where(*where)
                .order_by(SyncAction.id)
                .limit(per_page)
                .offset(offset_of(page, per_page))
            )
            items = [
                ActionRow(
                    a.action, LABELS.get(a.action, a.action), subject, a.account_id, a.detail or "", a.reason
                )
                for a, subject in rows
            ]
            actions = Page(items=items, total=total, page=page, per_page=per_page)
            return RunReport(summary, actions, True, list(plan.get("warnings", [])), kinds)
    return _plan_report(summary, plan, page, per_page, kind)


def _plan_report(summary: RunSummary, plan: dict, page: int, per_page: int, kind: str | None) -> RunReport:
    """The report of a run that applied nothing: its stored plan (none for a failed run)."""
    from accessd.lifecycle.sync_actions import action_from_json  # the plan's own reading

    planned = [action_from_json(a) for a in plan.get("actions", [])]
    kinds: dict[str, int] = {}
    for a in planned:
        kinds[a.action] = kinds.get(a.action, 0) + 1
    chosen = [a for a in planned if kind is None or a.action == kind]
    start = offset_of(page, per_page)
    items = [
        ActionRow(
            a.action,
            LABELS.get(a.action, a.action),
            a.subject_id,
            getattr(a, "account_id", None),
            a.describe(),
            a.reason,
        )
        for a in chosen[start : start + per_page]
    ]
    actions = Page(items=items, total=len(chosen), page=page, per_page=per_page)
    return RunReport(summary, actions, False, list(plan.get("warnings", [])), kinds)


# -- approve / reject -----------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalOutcome:
    run_id: int
    applied: dict[str, int]
    held_run_id: int | None  # the directory changed beyond the approval: approve this run instead
    dropped: list[str]  # approved changes no longer true, not applied
    message: str


def approve(db, settings, run_id: int, actor: str) -> ApprovalOutcome:
    """Approve held run ``run_id`` as ``accessd sync approve`` does (re-reads the directory)."""
    run_id = checked_run_id(run_id)
    if not settings.ldap.url:
        raise Invalid(
            f"sync run {run_id} cannot be approved here: approving re-reads the directory, and no "
            "directory is configured (ldap.url); reject it instead, or configure the directory"
        )
    from accessd.lifecycle import sync  # pulls in ldap3: only for the request that needs it

    result = sync.approve(db, settings, run_id, actor)
    if result.held_run_id is not None:
        message = (
            f"Run {run_id} was not applied: the directory changed beyond what was approved. "
            f"Run {result.held_run_id} holds the new plan; review it and approve it instead."
        )
    else:
        done = ", ".join(f"{LABELS.get(k, k)} {v}" for k, v in sorted(result.applied.items()))
        message = f"Run {run_id} approved and applied: {done or 'nothing left to change'}."
        if result.dropped:
            message += f" {len(result.dropped)} approved change(s) no longer true were not applied."
    return ApprovalOutcome(run_id, dict(result.applied), result.held_run_id, list(result.dropped), message)


def reject(db, run_id: int, actor: str) -> str:
    """Reject held run ``run_id``: nothing of it is applied. Returns the message to show."""
    run_id = checked_run_id(run_id)
    from accessd.lifecycle import sync

    sync.reject(db, run_id, actor)
    return f"Run {run_id} rejected; nothing of it was applied."

"""Apply a sync plan (one small function per action kind) and the thresholds that stop one.

:func:`apply_plan` writes a :class:`~accessd.lifecycle.sync_actions.SyncPlan` with bulk
statements, kind by kind in plan order (leavers first: they may free employee numbers for
joiners), then the lifecycle events, one ``SyncAction`` row per planned action and a
``sync.applied`` audit record. It tolerates steps already done: an approved plan may be applied
after some of it happened by other means. Leaves and re-enables go through the one offboarding
routine (:mod:`accessd.lifecycle.offboarding`).

Thresholds (never deprovision on incomplete evidence): :func:`too_few_seen` says why a full read
is no evidence to change anyone; :func:`approval_reason` why a plan must wait for approval.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from accessd import audit, changes
from accessd.config import Settings
from accessd.lifecycle import signals
from accessd.lifecycle.directory_mapping import PROFILE_FIELDS
from accessd.lifecycle.offboarding import offboard, reenable
from accessd.lifecycle.sync_actions import Action, Grant, Join, Leave, Reenable, Revoke, SyncPlan, Update
from accessd.lifecycle.sync_plan import DATE_FIELDS, SOURCE, AccountState, DirectorySnapshot
from accessd.models import Account, LifecycleEvent, RoleGrant, SyncAction, utcnow

# --- thresholds -----------------------------------------------------------------------------------


def too_few_seen(
    snapshot: DirectorySnapshot, accounts: dict[int, AccountState], last_seen: int | None, settings: Settings
) -> str | None:
    """Why a full read is not evidence enough to change anyone (nobody, or far fewer than the
    ``last_seen`` of the last good full run), or None."""
    if snapshot.kind != "full":
        return None
    seen = len(snapshot.users)
    dir_accounts = sum(1 for a in accounts.values() if a.key and a.status != "disabled")
    if seen == 0 and dir_accounts:
        return (
            f"the directory returned no people under {settings.ldap.user_base} while {dir_accounts} "
            "directory accounts are active; check the bind's read access and the base DN"
        )
    if last_seen and seen < settings.sync.min_seen_ratio * last_seen:
        return (
            f"saw {seen} people, fewer than {settings.sync.min_seen_ratio:.0%} of the "
            f"{last_seen} in the last good full run; nothing changed"
        )
    return None


def approval_reason(
    plan: SyncPlan, accounts: dict[int, AccountState], settings: Settings, run_id: int
) -> str | None:
    """Why ``plan`` must wait for approval (too many disables or role removals), or None."""
    reductions = plan.reduced_accounts()
    active = sum(1 for a in accounts.values() if a.status != "disabled")
    s = settings.sync
    if len(reductions) > s.approval_min_accounts and len(reductions) > s.approval_min_ratio * active:
        return (
            f"would disable or remove roles from {len(reductions)} of {active} active accounts "
            f"(more than {s.approval_min_accounts} and more than {s.approval_min_ratio:.0%}); "
            f"approve with `accessd sync approve {run_id}`"
        )
    return None


# --- applying -------------------------------------------------------------------------------------


@dataclass
class _Writes:
    """What one application shares between the kinds: who, when, and what it did so far."""

    session: Session
    actor: str
    now: dt.datetime
    ref: str  # the event every change of this application came from: "sync_run:<id>"
    applied: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    events: list[dict] = field(default_factory=list)  # lifecycle events, written at the end
    created: dict[str, int] = field(default_factory=dict)  # directory key -> id of a new account
    touched: set[int] = field(default_factory=set)  # accounts whose roles changed

    def trigger(self, a: Action) -> dict:
        """What a lifecycle routine records of this application: reason, source, actor, event."""
        return {"reason": a.reason, "source": SOURCE, "actor": self.actor, "event_ref": self.ref}

    def grant_row(self, account_id: int, role: str, ref: str | None) -> dict:
        return {
            "account_id": account_id,
            "role": role,
            "source": SOURCE,
            "source_ref": ref,
            "granted_at": self.now,
            "granted_by": self.actor,
        }


def _date(v):
    return dt.date.fromisoformat(v) if isinstance(v, str) else v


def apply_plan(session: Session, plan: SyncPlan, *, run_id: int, actor: str) -> dict[str, int]:
    """Write ``plan`` with bulk statements; tolerant of steps already done (an approved plan may
    be applied after some of it happened by other means). Returns per-action counts applied."""
    w = _Writes(session, actor, utcnow(), f"sync_run:{run_id}")
    _apply_leaves(w, plan.of_kind(Leave))
    _apply_updates(w, plan.of_kind(Update))
    _apply_joins(w, plan.of_kind(Join))
    _apply_reenables(w, plan.of_kind(Reenable))
    _apply_grants(w, plan.of_kind(Grant))
    _apply_revokes(w, plan.of_kind(Revoke))
    moved = {e["account_id"] for e in w.events if e["kind"] == "mover"}
    for acc_id in sorted(w.touched - moved - set(w.created.values())):
        w.events.append({"account_id": acc_id, "kind": "mover", "reason": "directory roles changed"})
    if w.events:
        session.execute(
            insert(LifecycleEvent),
            [
                {
                    **e,
                    "reason": (e["reason"] or "")[:200],
                    "source": SOURCE,
                    "actor": actor,
                    "at": w.now,
                    "event_ref": w.ref,
                }
                for e in w.events
            ],
        )
    if plan.actions:
        session.execute(insert(SyncAction), [_action_row(a, run_id, w.created) for a in plan.actions])
        audit.record(
            session,
            actor,
            "sync.applied",
            f"sync_run:{run_id}",
            {"kind": plan.kind, "planned": plan.counts(), "applied": dict(w.applied)},
        )
    session.expire_all()
    _signal_role_changes(session, w.touched - set(w.created.values()))
    return dict(w.applied)


def _signal_role_changes(session: Session, account_ids: set[int]) -> None:
    """Tell the connected applications whose roles the directory changed (new accounts aside:
    no application has a session of theirs yet)."""
    if account_ids:
        for acc in session.scalars(select(Account).where(Account.id.in_(account_ids)).order_by(Account.id)):
            signals.emit(session, acc, "roles_changed", roles=sorted(acc.roles), source=SOURCE)


def _action_row(a: Action, run_id: int, created: dict[str, int]) -> dict:
    """The ``SyncAction`` record of one planned action (a join names the account it created)."""
    key = a.key if isinstance(a, Join) else None
    return {
        "run_id": run_id,
        "account_id": created.get(key) if isinstance(a, Join) else a.account_id,
        "directory_key": key,
        "action": a.action,
        "detail": a.describe(),
        "reason": (a.reason or "")[:200],
    }


def _one_by_one(w: _Writes, actions: list, kind: str, routine: Callable[[Account, Any], bool]) -> None:
    """Leaves and re-enables: the offboarding routine, account by account (it skips what is done)."""
    for a in actions:
        acc = w.session.get(Account, a.account_id)
        if acc is not None and routine(acc, a):
            w.applied[kind] += 1


def _apply_leaves(w: _Writes, leaves: list[Leave]) -> None:
    def leave(acc: Account, a: Leave) -> bool:
        return offboard(w.session, acc, effective=_date(a.effective), **w.trigger(a))

    _one_by_one(w, leaves, "leave", leave)


def _apply_updates(w: _Writes, updates: list[Update]) -> None:
    rows = []
    for a in updates:
        row = {"id": a.account_id, "updated_at": w.now}
        for f, (_old, new) in a.changes.items():
            row[f] = _date(new) if f in DATE_FIELDS else new
        rows.append(row)
        w.events.append({"account_id": a.account_id, "kind": "mover", "reason": a.reason})
    # rows with different keys must go in separate executemany batches
    batches: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        batches[tuple(sorted(r))].append(r)
    for batch in batches.values():
        w.session.execute(update(Account), batch)
    if rows:
        w.applied["update"] += len(rows)


def _join_row(j: Join, now: dt.datetime) -> dict:
    """The account row a join action inserts (a person already departed joins disabled)."""
    f = j.fields
    disabled = j.status == "disabled"
    return {
        "subject_id": j.subject_id,
        "directory_key": j.key,
        **{name: f[name] for name in PROFILE_FIELDS},
        "directory_dn": f["directory_dn"],
        "display_name": f["display_name"] or f["username"],
        "attributes": f.get("attributes") or {},
        "start_date": _date(f["start_date"]),
        "end_date": _date(j.end_date),
        "status": j.status,
        "status_reason": j.reason if disabled else None,
        "disabled_by": SOURCE if disabled else None,
        "disabled_at": now if disabled else None,
        "session_epoch": 0,
        "created_at": now,
        "updated_at": now,
    }


def _apply_joins(w: _Writes, joins: list[Join]) -> None:
    """Insert new accounts (not those a key already has) with their grants and joiner events."""
    if not joins:
        return
    existing = set(
        w.session.scalars(
            select(Account.directory_key).where(Account.directory_key.in_([j.key for j in joins]))
        )
    )
    joins = [j for j in joins if j.key not in existing]
    freed = [j.take_employee_number_from for j in joins if j.take_employee_number_from]
    if freed:
        w.session.execute(
            update(Account).where(Account.id.in_(freed)).values(employee_number=None, updated_at=w.now)
        )
    rows = [_join_row(j, w.now) for j in joins]
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        for acc_id, key in w.session.execute(
            insert(Account).returning(Account.id, Account.directory_key), chunk
        ):
            w.created[key] = acc_id
    grant_rows = [w.grant_row(w.created[j.key], role, ref) for j in joins for role, ref in j.roles]
    if grant_rows:
        w.session.execute(insert(RoleGrant), grant_rows)
    for j in joins:
        w.events.append({"account_id": w.created[j.key], "kind": "joiner", "reason": j.reason})
    w.applied["join"] += len(joins)


def _apply_reenables(w: _Writes, reenables: list[Reenable]) -> None:
    def back(acc: Account, a: Reenable) -> bool:
        return reenable(w.session, acc, roles=list(a.roles), **w.trigger(a))

    _one_by_one(w, reenables, "reenable", back)


def _apply_grants(w: _Writes, grants: list[Grant]) -> None:
    """Insert directory grants the account does not hold yet."""
    if not grants:
        return
    held = set(
        w.session.execute(
            select(RoleGrant.account_id, RoleGrant.role).where(
                RoleGrant.source == SOURCE, RoleGrant.account_id.in_({a.account_id for a in grants})
            )
        )
    )
    rows = [
        w.grant_row(a.account_id, a.role, a.source_ref) for a in grants if (a.account_id, a.role) not in held
    ]
    if rows:
        w.session.execute(insert(RoleGrant), rows)
        w.session.execute(
            update(Account).where(Account.id.in_({r["account_id"] for r in rows})).values(updated_at=w.now)
        )
    w.applied["grant"] += len(rows)
    w.touched |= {r["account_id"] for r in rows}


def _apply_revokes(w: _Writes, revokes: list[Revoke]) -> None:
    """Delete the directory grants; the accounts' sessions end (session epoch + 1)."""
    if not revokes:
        return
    gids = [a.grant_id for a in revokes]
    # the accounts are updated below in this transaction, so the change sequence names them
    revoked = delete(RoleGrant).where(RoleGrant.id.in_(gids), RoleGrant.source == SOURCE)
    result = w.session.execute(revoked.execution_options(**{changes.ACCOUNTS_TOUCHED: True}))
    acc_ids = {a.account_id for a in revokes}
    w.session.execute(
        update(Account)
        .where(Account.id.in_(acc_ids))
        .values(updated_at=w.now, session_epoch=Account.session_epoch + 1)
    )
    w.applied["revoke"] += result.rowcount or 0
    w.touched |= acc_ids

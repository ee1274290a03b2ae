"""Reconcile the directory with accessd's accounts: read -> plan -> (check) -> apply.

``run_sync(db, settings, kind=..., dry_run=..., source=...)`` reads the directory completely (one
paged search for users, one for groups), loads accounts and grants into dicts, computes a
:class:`plan <SyncPlan>` in memory and writes only the differences, in bulk. The plan is stored on
the ``SyncRun``; a dry run stops there, a real run applies exactly that plan, and a run that would
disable or strip too many accounts stops as ``pending_approval``.

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

Who may lift a disable: the sync re-enables only accounts whose ``disabled_by`` is ``directory``;
an account disabled by an administrator, HR, SCIM, the CLI or the scheduler stays disabled.

Incremental runs read only entries changed after the high-water mark of the last applied run
(``entryCSN`` on OpenLDAP, ``uSNChanged`` on AD; ``modifyTimestamp`` can be configured), the mark
being what the directory had reached *before* that run began to read; they never infer departures
from absence -- deletions are caught by the next full run. Groups are re-read in full only when a
group changed or a changed person is new, renamed or returning.

Subject ids: a new account's ``subject_id`` is its username. When that is already taken (a uid
deleted and re-created is a new person with a new entryUUID), the new account gets
``<username>#2`` (``#3``, ...) and the old account keeps ``<username>``, stays disabled and keeps
its history.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from accessd import audit
from accessd.config import Settings
from accessd.db import Database
from accessd.errors import Conflict, DirectoryUnavailable, NotFound
from accessd.lifecycle.directory import (
    PROFILE_FIELDS,
    Directory,
    DirectoryEntry,
    DirectoryGroup,
    norm_dn,
)
from accessd.lifecycle.locks import SyncLock
from accessd.lifecycle.offboarding import offboard, reenable
from accessd.models import Account, LifecycleEvent, RoleGrant, SyncAction, SyncRun, utcnow

log = logging.getLogger(__name__)

SOURCE = "directory"
GONE = "directory: gone from the directory"
# fields the sync keeps equal to the directory (besides roles and status); of ``attributes`` only
# the keys mapped in ldap.attributes (see directory.subject_attribute_mapping)
SYNCED_FIELDS = ("directory_dn", *PROFILE_FIELDS, "attributes", "start_date")
DATE_FIELDS = {"start_date"}


@dataclass
class DirectorySnapshot:
    """What one run read. ``groups`` is None when an incremental run did not need them."""

    kind: str
    users: list[DirectoryEntry]
    groups: list[DirectoryGroup] | None
    high_water_mark: str | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class SyncPlan:
    """Ordered, JSON-serialisable actions plus warnings. Deterministic for the same inputs."""

    kind: str
    actions: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    high_water_mark: str | None = None

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "actions": self.actions,
            "warnings": self.warnings,
            "high_water_mark": self.high_water_mark,
        }

    @classmethod
    def for_snapshot(cls, snapshot: DirectorySnapshot) -> SyncPlan:
        """An empty plan carrying what the read warned about (e.g. temporary lockouts)."""
        return cls(
            kind=snapshot.kind, high_water_mark=snapshot.high_water_mark, warnings=list(snapshot.warnings)
        )

    @classmethod
    def from_json(cls, data: dict) -> SyncPlan:
        return cls(
            kind=data["kind"],
            actions=list(data["actions"]),
            warnings=list(data.get("warnings", [])),
            high_water_mark=data.get("high_water_mark"),
        )

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = defaultdict(int)
        for a in self.actions:
            c[a["action"]] += 1
        return dict(sorted(c.items()))

    def reductions(self) -> set[int]:
        """Existing accounts this plan would disable (or schedule to leave) or strip of a role."""
        return {a["account_id"] for a in self.actions if a["action"] in ("leave", "revoke")}


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


# --- reading ------------------------------------------------------------------------------------


def read_directory(
    directory: Directory,
    kind: str,
    since: str | None,
    needs_groups: Callable[[list[DirectoryEntry]], bool] | None = None,
) -> DirectorySnapshot:
    """Read users and groups completely or raise DirectoryUnavailable.

    A full read (or an incremental one without a high-water mark) reads everything. An
    incremental read reads changed users and changed groups, and all groups only when a group
    changed or ``needs_groups(changed_users)`` says so.

    The snapshot's high-water mark is the one the directory had reached *before* the read began:
    a change committed during the read (to a page already read) is read again by the next
    incremental run. Runs therefore overlap a little; re-reading an entry is harmless because
    the plan compares the directory with the accounts, never replays changes.
    """
    full = kind == "full" or not since
    mark, mark_warning = directory.high_water_mark()
    directory.load_password_policies()
    users = list(directory.users(None if full else since))
    if full:
        groups: list[DirectoryGroup] | None = list(directory.groups())
    else:
        changed = list(directory.groups(since))
        groups = list(directory.groups()) if changed or (needs_groups and needs_groups(users)) else None
    warnings = [w for w in [mark_warning, *directory.warnings] if w] + [u.warning for u in users if u.warning]
    return DirectorySnapshot(
        kind="full" if full else "incremental",
        users=users,
        groups=groups,
        high_water_mark=mark,
        warnings=warnings,
    )


# --- state --------------------------------------------------------------------------------------


@dataclass
class _Acc:
    id: int
    subject_id: str
    key: str | None
    status: str
    status_reason: str | None
    end_date: dt.date | None
    fields: dict
    disabled_by: str | None = None


def load_state(session: Session) -> tuple[dict[int, _Acc], dict[int, list[tuple]]]:
    """All accounts (by id) and all grants (account id -> [(grant id, role, source, ref)])."""
    cols = [
        Account.id,
        Account.subject_id,
        Account.directory_key,
        Account.status,
        Account.status_reason,
        Account.end_date,
        Account.disabled_by,
        *(getattr(Account, f) for f in SYNCED_FIELDS),
    ]
    accounts = {}
    for row in session.execute(select(*cols)):
        fields = dict(zip(SYNCED_FIELDS, row[7:], strict=True))
        fields["attributes"] = fields["attributes"] or {}
        accounts[row[0]] = _Acc(
            id=row[0],
            subject_id=row[1],
            key=row[2],
            status=row[3],
            status_reason=row[4],
            end_date=row[5],
            disabled_by=row[6],
            fields=fields,
        )
    grants: dict[int, list[tuple]] = defaultdict(list)
    for gid, acc_id, role, source, ref in session.execute(
        select(RoleGrant.id, RoleGrant.account_id, RoleGrant.role, RoleGrant.source, RoleGrant.source_ref)
    ):
        grants[acc_id].append((gid, role, source, ref))
    return accounts, grants


# --- roles from groups --------------------------------------------------------------------------


class RoleResolver:
    """Maps a member DN to roles through ``ldap.group_roles``, expanding nested groups.

    A group's roles reach members of groups nested in it up to ``depth_limit`` levels; cycles are
    detected and reported (each group is visited once per path).
    """

    def __init__(self, groups: list[DirectoryGroup], group_roles: dict, depth_limit: int):
        self.warnings: list[str] = []
        by_dn = {norm_dn(g.dn): g for g in groups}
        by_cn: dict[str, list[str]] = defaultdict(list)
        for g in groups:
            by_cn[g.name.lower()].append(norm_dn(g.dn))
        # group -> roles it grants directly
        roles: dict[str, set[str]] = defaultdict(set)
        for ref, rs in (group_roles or {}).items():
            rs = [rs] if isinstance(rs, str) else list(rs)
            targets = [norm_dn(ref)] if "=" in ref else by_cn.get(ref.lower(), [])
            for t in targets:
                if t in by_dn:
                    roles[t].update(rs)
            if not any(t in by_dn for t in targets):
                self.warnings.append(f"group_roles: group {ref!r} was not found in the directory")
        # child -> parents (member-of), for expanding upwards
        parents: dict[str, set[str]] = defaultdict(set)
        for gdn, g in by_dn.items():
            for m in g.members:
                parents[norm_dn(m)].add(gdn)
        self._parents = parents
        self._group_roles = roles
        self._cache: dict[str, dict[str, str]] = {}
        self._depth_limit = depth_limit
        self._by_dn = by_dn
        self._reported: set[str] = set()

    def _expand(self, group: str) -> dict[str, str]:
        """Roles (-> granting group DN) of ``group`` and every group it is nested in."""
        if group in self._cache:
            return self._cache[group]
        out: dict[str, str] = {}
        stack = [(group, 0, frozenset([group]))]
        while stack:
            g, depth, path = stack.pop()
            for r in self._group_roles.get(g, ()):
                if r not in out or self._by_dn[g].dn < out[r]:
                    out[r] = self._by_dn[g].dn
            for parent in sorted(self._parents.get(g, ())):
                if parent in path:
                    self._warn(
                        f"group nesting cycle: {self._by_dn[g].dn} is a member of {self._by_dn[parent].dn}, "
                        "which already contains it; ignoring that link"
                    )
                    continue
                if depth + 1 > self._depth_limit:
                    self._warn(
                        f"group nesting deeper than {self._depth_limit} at {self._by_dn[parent].dn}; "
                        "ignoring deeper levels"
                    )
                    continue
                stack.append((parent, depth + 1, path | {parent}))
        self._cache[group] = out
        return out

    def _warn(self, text: str) -> None:
        if text not in self._reported:
            self._reported.add(text)
            self.warnings.append(text)

    def roles_of(self, dn: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for g in sorted(self._parents.get(norm_dn(dn), ())):
            for role, ref in self._expand(g).items():
                if role not in out or ref < out[role]:
                    out[role] = ref
        return out


# --- planning -----------------------------------------------------------------------------------


def _value(v):
    return v.isoformat() if isinstance(v, dt.date) else v


def _wanted(e: DirectoryEntry, acc: _Acc | None) -> dict:
    """The synced fields as the directory has them. Attribute keys the directory maps are set
    (or removed when the directory has no value); keys it does not map are kept."""
    attributes = {k: v for k, v in (acc.fields["attributes"] if acc else {}).items() if k not in e.attributes}
    attributes.update({k: v for k, v in e.attributes.items() if v is not None})
    return {"directory_dn": e.dn, **e.profile, "attributes": attributes, "start_date": e.start_date}


def plan_sync(
    snapshot: DirectorySnapshot,
    accounts: dict[int, _Acc],
    grants: dict[int, list[tuple]],
    settings: Settings,
    today: dt.date | None = None,
) -> SyncPlan:
    """Compute what to change; pure (no I/O) so a dry run and a real run plan identically."""
    today = today or dt.date.today()
    plan = SyncPlan.for_snapshot(snapshot)
    resolver = (
        RoleResolver(snapshot.groups, settings.ldap.group_roles, settings.ldap.group_depth_limit)
        if snapshot.groups is not None
        else None
    )
    by_key = {a.key: a for a in accounts.values() if a.key}
    taken_subjects = {a.subject_id for a in accounts.values()}
    emp_owner = {a.fields["employee_number"]: a.id for a in accounts.values() if a.fields["employee_number"]}
    leaving: set[int] = set()
    joins, updates, leaves, reenables, grant_acts, revoke_acts = [], [], [], [], [], []

    entries: dict[str, DirectoryEntry] = {}
    for e in sorted(snapshot.users, key=lambda e: e.key):
        if e.key in entries:
            plan.warnings.append(f"duplicate key {e.key}: {e.dn} ignored (also {entries[e.key].dn})")
            continue
        entries[e.key] = e

    def desired_roles(dn: str) -> dict[str, str] | None:
        return resolver.roles_of(dn) if resolver else None

    def role_diff(acc: _Acc, dn: str, reason_hint: str) -> None:
        want = desired_roles(dn)
        if want is None:
            return
        have = {g[1]: g for g in grants.get(acc.id, ()) if g[2] == SOURCE}
        for role in sorted(set(want) - set(have)):
            grant_acts.append(
                {
                    "action": "grant",
                    "account_id": acc.id,
                    "subject_id": acc.subject_id,
                    "role": role,
                    "source_ref": want[role],
                    "reason": f"member of {want[role]}{reason_hint}",
                }
            )
        for role in sorted(set(have) - set(want)):
            gid, _, _, ref = have[role]
            revoke_acts.append(
                {
                    "action": "revoke",
                    "account_id": acc.id,
                    "subject_id": acc.subject_id,
                    "role": role,
                    "grant_id": gid,
                    "source_ref": ref,
                    "reason": f"no longer in a group granting {role}",
                }
            )

    # 1. departures by absence (complete full reads only)
    if snapshot.kind == "full":
        for acc in sorted(accounts.values(), key=lambda a: a.id):
            if acc.key and acc.key not in entries and (acc.status != "disabled" or grants.get(acc.id)):
                leaves.append(
                    {
                        "action": "leave",
                        "account_id": acc.id,
                        "subject_id": acc.subject_id,
                        "reason": GONE,
                        "effective": None,
                    }
                )
                leaving.add(acc.id)

    # 2. people the directory lists
    for key, e in entries.items():
        acc = by_key.get(key)
        wanted = _wanted(e, acc)
        departed = e.disabled_reason
        if acc is None:
            emp = wanted["employee_number"]
            take_from = None
            if emp and emp in emp_owner:
                owner = accounts.get(emp_owner[emp])
                if owner is not None and (owner.status == "disabled" or owner.id in leaving):
                    take_from = owner.id
                else:
                    plan.warnings.append(
                        f"{e.dn}: employee number {emp} already belongs to "
                        f"{owner.subject_id if owner else 'another entry'}; not stored"
                    )
                    wanted["employee_number"] = None
            if wanted["employee_number"]:
                emp_owner[wanted["employee_number"]] = -1
            subject = base = e.profile["username"]
            n = 1
            while subject in taken_subjects:
                n += 1
                subject = f"{base}#{n}"
            taken_subjects.add(subject)
            roles = {} if departed else (desired_roles(e.dn) or {})
            join = {
                "action": "join",
                "key": key,
                "subject_id": subject,
                "fields": {k: _value(v) for k, v in wanted.items()},
                "status": "disabled" if departed else "active",
                "reason": departed or "new in the directory",
                "end_date": _value(e.end_date) if e.end_date and not departed else None,
                "roles": [list(r) for r in sorted(roles.items())],
                "take_employee_number_from": take_from,
            }
            joins.append(join)
            continue

        # profile changes (a rename or move keeps the account: same key)
        changes = {}
        for f in SYNCED_FIELDS:
            new = wanted[f]
            if f == "employee_number" and new and emp_owner.get(new, acc.id) != acc.id:
                if new != acc.fields[f]:
                    plan.warnings.append(
                        f"{e.dn}: employee number {new} belongs to another account; not moved"
                    )
                continue
            if acc.fields[f] != new:
                changes[f] = [_value(acc.fields[f]), _value(new)]
        if changes:
            updates.append(
                {
                    "action": "update",
                    "account_id": acc.id,
                    "subject_id": acc.subject_id,
                    "changes": changes,
                    "reason": "renamed or moved" if "directory_dn" in changes else "attributes changed",
                }
            )

        has_grants = bool(grants.get(acc.id))
        if departed:
            if acc.status != "disabled" or has_grants:
                past_end = e.end_date if e.end_date and e.end_date < today else None
                leaves.append(
                    {
                        "action": "leave",
                        "account_id": acc.id,
                        "subject_id": acc.subject_id,
                        "reason": departed,
                        "effective": _value(past_end),
                    }
                )
                leaving.add(acc.id)
            continue
        if acc.status == "disabled":
            if acc.disabled_by == SOURCE:  # the directory lifts only what it did itself
                roles = desired_roles(e.dn)
                if roles is None:
                    plan.warnings.append(f"{e.dn}: returning employee needs group data; left for a full run")
                    continue
                reenables.append(
                    {
                        "action": "reenable",
                        "account_id": acc.id,
                        "subject_id": acc.subject_id,
                        "reason": "directory: back in the directory and no longer locked",
                        "roles": [list(r) for r in sorted(roles.items())],
                    }
                )
            continue  # disabled by someone else (admin, HR, CLI): final until they undo it
        if e.end_date and e.end_date != acc.end_date:
            leaves.append(
                {
                    "action": "leave",
                    "account_id": acc.id,
                    "subject_id": acc.subject_id,
                    "reason": e.end_reason,
                    "effective": e.end_date.isoformat(),
                }
            )
        role_diff(acc, e.dn, "")

    # 3. roles of active accounts the read did not include (incremental runs with groups loaded)
    if snapshot.kind == "incremental" and resolver is not None:
        for acc in sorted(accounts.values(), key=lambda a: a.id):
            if acc.key and acc.key not in entries and acc.status != "disabled" and acc.fields["directory_dn"]:
                role_diff(acc, acc.fields["directory_dn"], "")

    plan.actions = leaves + updates + joins + reenables + grant_acts + revoke_acts
    if resolver:
        plan.warnings.extend(resolver.warnings)
    return plan


# --- applying -----------------------------------------------------------------------------------


def _date(v):
    return dt.date.fromisoformat(v) if isinstance(v, str) else v


def _join_row(j: dict, now: dt.datetime) -> dict:
    """The account row a join action inserts (a person already departed joins disabled)."""
    f = j["fields"]
    disabled = j["status"] == "disabled"
    return {
        "subject_id": j["subject_id"],
        "directory_key": j["key"],
        **{name: f[name] for name in PROFILE_FIELDS},
        "directory_dn": f["directory_dn"],
        "display_name": f["display_name"] or f["username"],
        "attributes": f.get("attributes") or {},
        "start_date": _date(f["start_date"]),
        "end_date": _date(j["end_date"]),
        "status": j["status"],
        "status_reason": j["reason"] if disabled else None,
        "disabled_by": SOURCE if disabled else None,
        "disabled_at": now if disabled else None,
        "session_epoch": 0,
        "created_at": now,
        "updated_at": now,
    }


def apply_plan(session: Session, plan: SyncPlan, *, run_id: int, actor: str) -> dict[str, int]:
    """Write ``plan`` with bulk statements; tolerant of steps already done (an approved plan may
    be applied after some of it happened by other means). Returns per-action counts applied."""
    now = utcnow()
    applied: dict[str, int] = defaultdict(int)
    events: list[dict] = []
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for a in plan.actions:
        by_kind[a["action"]].append(a)

    # leavers first: they may free employee numbers for joiners
    for a in by_kind["leave"]:
        acc = session.get(Account, a["account_id"])
        if acc is not None and offboard(
            session, acc, reason=a["reason"], source=SOURCE, actor=actor, effective=_date(a["effective"])
        ):
            applied["leave"] += 1

    if by_kind["update"]:
        rows = []
        for a in by_kind["update"]:
            row = {"id": a["account_id"], "updated_at": now}
            for f, (_old, new) in a["changes"].items():
                row[f] = _date(new) if f in DATE_FIELDS else new
            rows.append(row)
            events.append({"account_id": a["account_id"], "kind": "mover", "reason": a["reason"]})
        # rows with different keys must go in separate executemany batches
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in rows:
            groups[tuple(sorted(r))].append(r)
        for batch in groups.values():
            session.execute(update(Account), batch)
        applied["update"] += len(rows)

    ids: dict[str, int] = {}  # directory key -> id of accounts created now
    joins = by_kind["join"]
    if joins:
        existing = set(
            session.scalars(
                select(Account.directory_key).where(Account.directory_key.in_([j["key"] for j in joins]))
            )
        )
        joins = [j for j in joins if j["key"] not in existing]
        freed = [j["take_employee_number_from"] for j in joins if j["take_employee_number_from"]]
        if freed:
            session.execute(
                update(Account).where(Account.id.in_(freed)).values(employee_number=None, updated_at=now)
            )
        rows = [_join_row(j, now) for j in joins]
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            for acc_id, key in session.execute(
                insert(Account).returning(Account.id, Account.directory_key), chunk
            ):
                ids[key] = acc_id
        grant_rows = [
            {
                "account_id": ids[j["key"]],
                "role": role,
                "source": SOURCE,
                "source_ref": ref,
                "granted_at": now,
                "granted_by": actor,
            }
            for j in joins
            for role, ref in j["roles"]
        ]
        if grant_rows:
            session.execute(insert(RoleGrant), grant_rows)
        for j in joins:
            events.append({"account_id": ids[j["key"]], "kind": "joiner", "reason": j["reason"]})
        applied["join"] += len(joins)

    for a in by_kind["reenable"]:
        acc = session.get(Account, a["account_id"])
        if acc is not None and reenable(
            session, acc, reason=a["reason"], source=SOURCE, actor=actor, roles=[tuple(r) for r in a["roles"]]
        ):
            applied["reenable"] += 1

    touched: set[int] = set()
    if by_kind["grant"]:
        held = set(
            session.execute(
                select(RoleGrant.account_id, RoleGrant.role).where(
                    RoleGrant.source == SOURCE,
                    RoleGrant.account_id.in_({a["account_id"] for a in by_kind["grant"]}),
                )
            )
        )
        rows = [
            {
                "account_id": a["account_id"],
                "role": a["role"],
                "source": SOURCE,
                "source_ref": a["source_ref"],
                "granted_at": now,
                "granted_by": actor,
            }
            for a in by_kind["grant"]
            if (a["account_id"], a["role"]) not in held
        ]
        if rows:
            session.execute(insert(RoleGrant), rows)
            session.execute(
                update(Account).where(Account.id.in_({r["account_id"] for r in rows})).values(updated_at=now)
            )
        applied["grant"] += len(rows)
        touched |= {r["account_id"] for r in rows}
    if by_kind["revoke"]:
        gids = [a["grant_id"] for a in by_kind["revoke"]]
        result = session.execute(delete(RoleGrant).where(RoleGrant.id.in_(gids), RoleGrant.source == SOURCE))
        acc_ids = {a["account_id"] for a in by_kind["revoke"]}
        session.execute(
            update(Account)
            .where(Account.id.in_(acc_ids))
            .values(updated_at=now, session_epoch=Account.session_epoch + 1)
        )
        applied["revoke"] += result.rowcount or 0
        touched |= acc_ids
    moved = {e["account_id"] for e in events if e["kind"] == "mover"}
    for acc_id in sorted(touched - moved - set(ids.values())):
        events.append({"account_id": acc_id, "kind": "mover", "reason": "directory roles changed"})

    if events:
        session.execute(
            insert(LifecycleEvent),
            [
                {**e, "reason": (e["reason"] or "")[:200], "source": SOURCE, "actor": actor, "at": now}
                for e in events
            ],
        )
    if plan.actions:
        session.execute(
            insert(SyncAction),
            [
                {
                    "run_id": run_id,
                    "account_id": a.get("account_id") or ids.get(a.get("key")),
                    "directory_key": a.get("key"),
                    "action": a["action"],
                    "detail": describe_action(a),
                    "reason": (a.get("reason") or "")[:200],
                }
                for a in plan.actions
            ],
        )
        audit.record(
            session,
            actor,
            "sync.applied",
            f"sync_run:{run_id}",
            {"kind": plan.kind, "planned": plan.counts(), "applied": dict(applied)},
        )
    session.expire_all()
    return dict(applied)


def describe_action(a: dict) -> str:
    """One line for humans: what happens to whom."""
    who = a.get("subject_id")
    kind = a["action"]
    if kind == "join":
        roles = ", ".join(r for r, _ in a["roles"]) or "no roles"
        state = "" if a["status"] == "active" else f" (disabled: {a['reason']})"
        return f"join {who} ({a['fields']['directory_dn']}) with {roles}{state}"
    if kind == "update":
        parts = [p for f, (old, new) in sorted(a["changes"].items()) for p in _change_texts(f, old, new)]
        return f"update {who}: " + "; ".join(parts)
    if kind == "leave":
        when = (
            f" on {a['effective']}"
            if a.get("effective") and a["effective"] >= dt.date.today().isoformat()
            else ""
        )
        verb = "schedule departure of" if when else "disable"
        return f"{verb} {who}{when}: {a['reason']}"
    if kind == "reenable":
        roles = ", ".join(r for r, _ in a["roles"]) or "no roles"
        return f"re-enable {who} with {roles}: {a['reason']}"
    if kind == "grant":
        return f"grant {a['role']} to {who} ({a['reason']})"
    if kind == "revoke":
        return f"revoke {a['role']} from {who} ({a['reason']})"
    return f"{kind} {who}"


def _change_texts(name: str, old, new) -> list[str]:
    if name != "attributes":
        return [f"{name}: {old!r} -> {new!r}"]
    old, new = old or {}, new or {}
    return [
        f"attributes.{k}: {old.get(k)!r} -> {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


# --- the run ------------------------------------------------------------------------------------


def _last_good(session: Session, *, full_only: bool) -> SyncRun | None:
    q = select(SyncRun).where(SyncRun.status == "succeeded", SyncRun.dry_run.is_(False))
    if full_only:
        q = q.where(SyncRun.kind == "full")
    return session.scalars(q.order_by(SyncRun.id.desc()).limit(1)).first()


def _finish(db: Database, run_id: int, **values) -> None:
    with db.session() as s:
        s.execute(update(SyncRun).where(SyncRun.id == run_id).values(finished_at=utcnow(), **values))


INTERRUPTED = "interrupted: the process running it stopped before it finished"


@dataclass
class _Context:
    """What a run needs from the database before it reads the directory."""

    kind: str
    since: str | None  # incremental: the high-water mark of the last applied run
    last_seen: int | None  # people seen by the last good full run
    accounts: dict[int, _Acc]
    grants: dict[int, list[tuple]]
    subject_attributes: set[str]


def _load_context(session: Session, kind: str) -> _Context:
    last_any = _last_good(session, full_only=False)
    last_full = _last_good(session, full_only=True)
    accounts, grants = load_state(session)
    return _Context(
        kind=kind,
        since=last_any.high_water_mark if (kind == "incremental" and last_any) else None,
        last_seen=last_full.seen if last_full else None,
        accounts=accounts,
        grants=grants,
        subject_attributes=_declared_subject_attributes(session),
    )


def _declared_subject_attributes(session: Session) -> set[str]:
    """The subject attributes of the policy in force (none before a policy is loaded)."""
    from accessd.pdp import revisions

    rev = revisions.current(session)
    return set(revisions.policy_of(rev).catalogue.subject_attributes) if rev else set()


@dataclass
class _Outcome:
    seen: int
    plan: SyncPlan | None  # None: nothing may change; ``reason`` says why
    reason: str | None
    timings: dict[str, float]


def _read_and_plan(
    settings: Settings,
    ctx: _Context,
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
    reason = _too_few(snapshot, ctx, settings)
    if reason:
        return _Outcome(seen, None, reason, timings)
    t1 = time.perf_counter()
    plan = plan_sync(snapshot, ctx.accounts, ctx.grants, settings, today=today)
    timings["plan"] = time.perf_counter() - t1
    return _Outcome(seen, plan, None, timings)


def _too_few(snapshot: DirectorySnapshot, ctx: _Context, settings: Settings) -> str | None:
    """Why a full read is not evidence enough to change anyone (nobody, or far fewer than before)."""
    if snapshot.kind != "full":
        return None
    seen = len(snapshot.users)
    dir_accounts = sum(1 for a in ctx.accounts.values() if a.key and a.status != "disabled")
    if seen == 0 and dir_accounts:
        return (
            f"the directory returned no people under {settings.ldap.user_base} while {dir_accounts} "
            "directory accounts are active; check the bind's read access and the base DN"
        )
    if ctx.last_seen and seen < settings.sync.min_seen_ratio * ctx.last_seen:
        return (
            f"saw {seen} people, fewer than {settings.sync.min_seen_ratio:.0%} of the "
            f"{ctx.last_seen} in the last good full run; nothing changed"
        )
    return None


def _approval_reason(
    plan: SyncPlan, accounts: dict[int, _Acc], settings: Settings, run_id: int
) -> str | None:
    """Why ``plan`` must wait for approval (too many disables or role removals), or None."""
    reductions = plan.reductions()
    active = sum(1 for a in accounts.values() if a.status != "disabled")
    s = settings.sync
    if len(reductions) > s.approval_min_accounts and len(reductions) > s.approval_min_ratio * active:
        return (
            f"would disable or remove roles from {len(reductions)} of {active} active accounts "
            f"(more than {s.approval_min_accounts} and more than {s.approval_min_ratio:.0%}); "
            f"approve with `accessd sync approve {run_id}`"
        )
    return None


def _store(session: Session, run_id: int, plan: SyncPlan, **values) -> None:
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


def _supersede_older(session: Session, run_id: int) -> None:
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


def _fail_interrupted(db: Database) -> None:
    """Mark runs a dead process left ``running`` as failed. Called with the sync lock held: no
    live process can be running one."""
    with db.session() as s:
        s.execute(
            update(SyncRun)
            .where(SyncRun.status.in_(("running", "applying")))
            .values(status="failed", reason=INTERRUPTED, finished_at=utcnow())
        )


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
    changed. Raises SyncBusy, recording nothing, while another process holds the sync lock. Any
    other error marks the run failed and is raised again.
    """
    if kind not in ("full", "incremental"):
        raise ValueError("kind must be full or incremental")
    with SyncLock(db) as lock:
        _fail_interrupted(db)
        with db.session() as s:
            run = SyncRun(kind=kind, dry_run=dry_run, status="running", actor=actor, source=source, counts={})
            s.add(run)
            s.flush()
            run_id = run.id
            ctx = _load_context(s, kind)
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
    db: Database, settings: Settings, run_id: int, ctx: _Context, out: _Outcome, *, dry_run: bool, actor: str
) -> SyncResult:
    """Record a run's outcome: failed, dry, held for approval, or applied."""
    if out.plan is None:
        _finish(db, run_id, status="failed", reason=out.reason, seen=out.seen)
        log.debug("sync run %s failed: %s", run_id, out.reason)
        return SyncResult(run_id, "failed", out.reason, dry_run, out.seen, None, {})
    plan, counts = out.plan, out.plan.counts()
    approval = _approval_reason(plan, ctx.accounts, settings, run_id)
    if dry_run or approval:
        # the plan is stored either way: a dry run to show it, a held run to apply it on approval
        if dry_run:
            status, reason = "succeeded", (f"dry run; a real run {approval}" if approval else "dry run")
        else:
            status, reason = "pending_approval", approval
        with db.session() as s:
            _store(s, run_id, plan, status=status, reason=reason, seen=out.seen)
            if not dry_run:
                _supersede_older(s, run_id)
        return SyncResult(run_id, status, reason, dry_run, out.seen, plan, counts, out.timings)

    t2 = time.perf_counter()
    with db.session() as s:
        applied = apply_plan(s, plan, run_id=run_id, actor=actor) if plan.actions else {}
        reason = None if applied == counts else f"applied {applied}"
        _store(s, run_id, plan, status="succeeded", applied_at=utcnow(), seen=out.seen, reason=reason)
        _supersede_older(s, run_id)
    out.timings["write"] = time.perf_counter() - t2
    return SyncResult(run_id, "succeeded", None, False, out.seen, plan, counts, out.timings)


# --- approval -----------------------------------------------------------------------------------


@dataclass
class ApprovalResult:
    """What ``approve`` did: applied the re-checked plan, or held it again as ``held_run_id``."""

    run_id: int
    applied: dict[str, int]
    held_run_id: int | None = None
    dropped: list[str] = field(default_factory=list)  # approved changes no longer true (described)
    reason: str | None = None


def _reduction_keys(plan: SyncPlan) -> dict[tuple, dict]:
    """Disables, scheduled departures and role removals, keyed by what they do to whom."""
    keys = {}
    for a in plan.actions:
        if a["action"] == "leave":
            keys[("leave", a["account_id"], a.get("effective"))] = a
        elif a["action"] == "revoke":
            keys[("revoke", a["account_id"], a["role"])] = a
    return keys


def _approvable(session: Session, run_id: int) -> SyncRun:
    """The held run, or Conflict saying why it cannot be approved."""
    run = session.get(SyncRun, run_id)
    if run is None:
        raise NotFound(f"no sync run {run_id}")
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
        _fail_interrupted(db)
        lock.set_run(run_id)
        with db.session() as s:
            held = _approvable(s, run_id)
            approved = SyncPlan.from_json(held.plan)
            ctx = _load_context(s, held.kind)
        out = _read_and_plan(settings, ctx, progress=progress, today=today)
        if out.plan is None:
            raise DirectoryUnavailable(
                f"sync run {run_id} stays pending approval: the directory could not be re-read: {out.reason}"
            )
        old, new = _reduction_keys(approved), _reduction_keys(out.plan)
        beyond = set(new) - set(old)
        if beyond and _approval_reason(out.plan, ctx.accounts, settings, run_id):
            return _hold_again(db, settings, run_id, ctx, out, actor, len(beyond))
        dropped = [describe_action(old[k]) for k in sorted(set(old) - set(new), key=str)]
        return _apply_approved(db, run_id, out, actor, dropped)


def _hold_again(
    db: Database, settings: Settings, run_id: int, ctx: _Context, out: _Outcome, actor: str, beyond: int
) -> ApprovalResult:
    """The directory changed beyond what was approved: a new held run replaces ``run_id``."""
    with db.session() as s:
        run = SyncRun(kind=ctx.kind, dry_run=False, status="pending_approval", actor=actor, source="approval")
        s.add(run)
        s.flush()
        reason = (
            f"made when run {run_id} was approved, which did not cover {beyond} of its disables or role "
            f"removals; it {_approval_reason(out.plan, ctx.accounts, settings, run.id)}"
        )
        _store(s, run.id, out.plan, status="pending_approval", reason=reason, seen=out.seen)
        _supersede_older(s, run.id)
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
        _store(s, run_id, plan, status="succeeded", applied_at=utcnow(), seen=out.seen, reason=reason)
        _supersede_older(s, run_id)
        audit.record(s, actor, "sync.approve", f"sync_run:{run_id}", {"applied": applied, "dropped": dropped})
    return ApprovalResult(run_id, dict(applied), dropped=dropped, reason=reason)


def reject(db: Database, run_id: int, actor: str) -> None:
    """Discard a pending run's plan: nothing is applied."""
    with db.session() as s:
        run = s.get(SyncRun, run_id)
        if run is None:
            raise NotFound(f"no sync run {run_id}")
        done = s.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id, SyncRun.status == "pending_approval")
            .values(status="rejected", approved_by=actor, reason=f"rejected by {actor}", finished_at=utcnow())
        ).rowcount
        if done != 1:
            s.refresh(run)
            raise Conflict(f"sync run {run_id} is not pending approval (status {run.status})")
        audit.record(s, actor, "sync.reject", f"sync_run:{run_id}", {})


def list_runs(db: Database, limit: int = 20) -> list[SyncRun]:
    with db.session() as s:
        return list(s.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)))


def get_run(db: Database, run_id: int) -> tuple[SyncRun, list[SyncAction]]:
    with db.session() as s:
        run = s.get(SyncRun, run_id)
        if run is None:
            raise NotFound(f"no sync run {run_id}")
        actions = list(
            s.scalars(select(SyncAction).where(SyncAction.run_id == run_id).order_by(SyncAction.id))
        )
        return run, actions

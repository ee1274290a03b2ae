"""Directory vs accounts -> a typed plan: what one run read, the accounts it compares with, and
one small planning function per action kind (see :mod:`accessd.lifecycle.sync_actions`).

:func:`read_directory` reads users and groups completely (or raises DirectoryUnavailable) into a
:class:`DirectorySnapshot`; :func:`load_state` loads accounts and grants into dicts;
:func:`plan_sync` compares them, pure (no I/O), so that a dry run and a real run plan identically.

Departures: a full read infers a departure from absence; incremental runs read only entries
changed after the high-water mark of the last applied run and never infer departures from
absence -- deletions are caught by the next full run. Groups are re-read in full only when a
group changed or a changed person is new, renamed or returning.

Who may lift a disable: the sync re-enables only accounts whose ``disabled_by`` is ``directory``;
an account disabled by an administrator, HR, SCIM, the CLI or the scheduler stays disabled.

Subject ids: a new account's ``subject_id`` is its username. When that is already taken (a uid
deleted and re-created is a new person with a new entryUUID), the new account gets
``<username>#2`` (``#3``, ...) and the old account keeps ``<username>``, stays disabled and keeps
its history.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd import clock
from accessd.config import Settings
from accessd.lifecycle.directory import Directory
from accessd.lifecycle.directory_entries import DirectoryEntry, DirectoryGroup
from accessd.lifecycle.directory_mapping import PROFILE_FIELDS
from accessd.lifecycle.group_roles import RoleResolver
from accessd.lifecycle.sync_actions import (
    Action,
    Grant,
    Join,
    Leave,
    Reenable,
    Revoke,
    SyncPlan,
    Update,
    in_plan_order,
)
from accessd.models import Account, RoleGrant

SOURCE = "directory"
GONE = "directory: gone from the directory"
# fields the sync keeps equal to the directory (besides roles and status); of ``attributes`` only
# the keys mapped in ldap.attributes (see directory_mapping.subject_attribute_mapping)
SYNCED_FIELDS = ("directory_dn", *PROFILE_FIELDS, "attributes", "start_date")
DATE_FIELDS = {"start_date"}


# --- what the directory holds -------------------------------------------------------------------


@dataclass
class DirectorySnapshot:
    """What one run read. ``groups`` is None when an incremental run did not need them."""

    kind: str
    users: list[DirectoryEntry]
    groups: list[DirectoryGroup] | None
    high_water_mark: str | None
    warnings: list[str] = field(default_factory=list)


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


# --- what accessd holds -------------------------------------------------------------------------


@dataclass
class AccountState:
    """The columns of one account the plan compares (``fields``: SYNCED_FIELDS)."""

    id: int
    subject_id: str
    key: str | None
    status: str
    status_reason: str | None
    end_date: dt.date | None
    fields: dict
    disabled_by: str | None = None


def load_state(session: Session) -> tuple[dict[int, AccountState], dict[int, list[tuple]]]:
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
        accounts[row[0]] = AccountState(
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


# --- planning -----------------------------------------------------------------------------------


def _value(v):
    return v.isoformat() if isinstance(v, dt.date) else v


def _wanted(e: DirectoryEntry, acc: AccountState | None) -> dict:
    """The synced fields as the directory has them. Attribute keys the directory maps are set
    (or removed when the directory has no value); keys it does not map are kept."""
    attributes = {k: v for k, v in (acc.fields["attributes"] if acc else {}).items() if k not in e.attributes}
    attributes.update({k: v for k, v in e.attributes.items() if v is not None})
    return {"directory_dn": e.dn, **e.profile, "attributes": attributes, "start_date": e.start_date}


def plan_sync(
    snapshot: DirectorySnapshot,
    accounts: dict[int, AccountState],
    grants: dict[int, list[tuple]],
    settings: Settings,
    today: dt.date | None = None,
) -> SyncPlan:
    """Compute what to change; pure (no I/O) so a dry run and a real run plan identically.
    End dates before ``today`` (default: the clock's date) have passed."""
    planner = _Planner(snapshot, accounts, grants, settings, today or clock.today())
    actions = planner.actions()
    return SyncPlan(
        kind=snapshot.kind,
        actions=actions,
        warnings=[*snapshot.warnings, *planner.warnings],
        high_water_mark=snapshot.high_water_mark,
    )


class _Planner:
    """One planning pass; its methods each plan one kind of action and keep the shared state
    (subject ids taken, employee numbers owned, accounts leaving) in step."""

    def __init__(
        self,
        snapshot: DirectorySnapshot,
        accounts: dict[int, AccountState],
        grants: dict[int, list[tuple]],
        settings: Settings,
        today: dt.date,
    ):
        self.snapshot = snapshot
        self.accounts = accounts
        self.grants = grants
        self.today = today
        self.resolver = (
            RoleResolver(snapshot.groups, settings.ldap.group_roles, settings.ldap.group_depth_limit)
            if snapshot.groups is not None
            else None
        )
        self.by_key = {a.key: a for a in accounts.values() if a.key}
        self.taken_subjects = {a.subject_id for a in accounts.values()}
        self.emp_owner = {
            a.fields["employee_number"]: a.id for a in accounts.values() if a.fields["employee_number"]
        }
        self.leaving: set[int] = set()
        self.warnings: list[str] = []
        self.entries: dict[str, DirectoryEntry] = {}
        for e in sorted(snapshot.users, key=lambda e: e.key):
            if e.key in self.entries:
                self.warnings.append(f"duplicate key {e.key}: {e.dn} ignored (also {self.entries[e.key].dn})")
                continue
            self.entries[e.key] = e

    def actions(self) -> list[Action]:
        """Every action, in plan order; the resolver's warnings are added last."""
        out: list[Action] = []
        if self.snapshot.kind == "full":  # departures by absence: complete full reads only
            out += self._gone()
        for key, e in self.entries.items():
            acc = self.by_key.get(key)
            out += [self._join(e)] if acc is None else self._existing(acc, e)
        if self.snapshot.kind == "incremental" and self.resolver is not None:
            # roles of active accounts the read did not include (groups were loaded)
            for acc in sorted(self.accounts.values(), key=lambda a: a.id):
                if (
                    acc.key
                    and acc.key not in self.entries
                    and acc.status != "disabled"
                    and acc.fields["directory_dn"]
                ):
                    out += self._role_changes(acc, acc.fields["directory_dn"])
        if self.resolver:
            self.warnings.extend(self.resolver.warnings)
        return in_plan_order(out)

    def _desired_roles(self, dn: str) -> dict[str, str] | None:
        return self.resolver.roles_of(dn) if self.resolver else None

    def _leave(self, acc: AccountState, reason: str | None, effective: dt.date | None) -> Leave:
        """Disable now (no date, or a past one); the account may free its employee number."""
        self.leaving.add(acc.id)
        return Leave(acc.id, acc.subject_id, reason, _value(effective))

    def _gone(self) -> list[Leave]:
        """Directory accounts absent from a full read (and not already disabled without grants)."""
        return [
            self._leave(acc, GONE, None)
            for acc in sorted(self.accounts.values(), key=lambda a: a.id)
            if acc.key
            and acc.key not in self.entries
            and (acc.status != "disabled" or self.grants.get(acc.id))
        ]

    def _join(self, e: DirectoryEntry) -> Join:
        """A new account: a free subject id, an employee number it may take, roles unless departed."""
        wanted = _wanted(e, None)
        emp = wanted["employee_number"]
        take_from = None
        if emp and emp in self.emp_owner:
            owner = self.accounts.get(self.emp_owner[emp])
            if owner is not None and (owner.status == "disabled" or owner.id in self.leaving):
                take_from = owner.id
            else:
                self.warnings.append(
                    f"{e.dn}: employee number {emp} already belongs to "
                    f"{owner.subject_id if owner else 'another entry'}; not stored"
                )
                wanted["employee_number"] = None
        if wanted["employee_number"]:
            self.emp_owner[wanted["employee_number"]] = -1
        subject = base = e.profile["username"]
        n = 1
        while subject in self.taken_subjects:
            n += 1
            subject = f"{base}#{n}"
        self.taken_subjects.add(subject)
        departed = e.disabled_reason
        roles = {} if departed else (self._desired_roles(e.dn) or {})
        return Join(
            key=e.key,
            subject_id=subject,
            fields={k: _value(v) for k, v in wanted.items()},
            status="disabled" if departed else "active",
            reason=departed or "new in the directory",
            end_date=_value(e.end_date) if e.end_date and not departed else None,
            roles=sorted(roles.items()),
            take_employee_number_from=take_from,
        )

    def _existing(self, acc: AccountState, e: DirectoryEntry) -> list[Action]:
        """An account the directory lists: its profile, then its departure, return or roles."""
        out: list[Action] = []
        if update := self._update(acc, e):
            out.append(update)
        if e.disabled_reason:
            if acc.status != "disabled" or self.grants.get(acc.id):
                past_end = e.end_date if e.end_date and e.end_date < self.today else None
                out.append(self._leave(acc, e.disabled_reason, past_end))
            return out
        if acc.status == "disabled":
            if acc.disabled_by == SOURCE and (back := self._reenable(acc, e)):
                out.append(back)
            return out  # disabled by someone else (admin, HR, CLI): final until they undo it
        if e.end_date and e.end_date != acc.end_date:  # a scheduled departure
            out.append(Leave(acc.id, acc.subject_id, e.end_reason, e.end_date.isoformat()))
        return out + self._role_changes(acc, e.dn)

    def _update(self, acc: AccountState, e: DirectoryEntry) -> Update | None:
        """Profile changes (a rename or move keeps the account: same key)."""
        wanted = _wanted(e, acc)
        changes = {}
        for f in SYNCED_FIELDS:
            new = wanted[f]
            if f == "employee_number" and new and self.emp_owner.get(new, acc.id) != acc.id:
                if new != acc.fields[f]:
                    self.warnings.append(
                        f"{e.dn}: employee number {new} belongs to another account; not moved"
                    )
                continue
            if acc.fields[f] != new:
                changes[f] = [_value(acc.fields[f]), _value(new)]
        if not changes:
            return None
        reason = "renamed or moved" if "directory_dn" in changes else "attributes changed"
        return Update(acc.id, acc.subject_id, changes, reason)

    def _reenable(self, acc: AccountState, e: DirectoryEntry) -> Reenable | None:
        """A returning employee the directory itself disabled (it lifts only what it did)."""
        roles = self._desired_roles(e.dn)
        if roles is None:
            self.warnings.append(f"{e.dn}: returning employee needs group data; left for a full run")
            return None
        reason = "directory: back in the directory and no longer locked"
        return Reenable(acc.id, acc.subject_id, reason, sorted(roles.items()))

    def _role_changes(self, acc: AccountState, dn: str) -> list[Grant | Revoke]:
        """Grants for roles the groups give and the account lacks, revokes for the reverse."""
        want = self._desired_roles(dn)
        if want is None:
            return []
        have = {g[1]: g for g in self.grants.get(acc.id, ()) if g[2] == SOURCE}
        grants = [
            Grant(acc.id, acc.subject_id, role, want[role], f"member of {want[role]}")
            for role in sorted(set(want) - set(have))
        ]
        revokes = [
            Revoke(
                acc.id,
                acc.subject_id,
                role,
                have[role][0],
                have[role][3],
                f"no longer in a group granting {role}",
            )
            for role in sorted(set(have) - set(want))
        ]
        return grants + revokes

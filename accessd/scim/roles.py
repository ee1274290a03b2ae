"""Roles from SCIM groups: ``scim.group_roles`` (group displayName -> roles) applied to members.

A member of a mapped group holds each of its roles as a ``RoleGrant(source="scim",
source_ref=<group id>)``; a role two mapped groups give is one grant (the unique key is account,
role, source) whose ``source_ref`` names one of them. :func:`reconcile` brings an account's
``scim`` grants in line with its memberships and the mapping *now*: it runs for every account a
SCIM write touches (the user itself, or every member before and after a group write), so leaving
a group, deleting it, or a changed mapping takes effect at the next write. A disabled account
holds no grant (offboarding removed them all); its memberships stay and count again when it is
re-enabled. Grants from the directory or granted by hand are never touched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from accessd import audit
from accessd.lifecycle import signals
from accessd.lifecycle.states import Source, Status
from accessd.models import Account, RoleGrant, ScimGroup, ScimGroupMember, utcnow

SOURCE = str(Source.SCIM)


class GroupRoles:
    """``scim.group_roles`` read once: group names match case-insensitively; a single role may
    be given as a string."""

    def __init__(self, mapping: Mapping[str, str | list[str]]):
        self._roles: dict[str, tuple[str, ...]] = {}
        for name, roles in (mapping or {}).items():
            roles = [roles] if isinstance(roles, str) else roles
            self._roles[name.casefold()] = tuple(sorted({r.strip() for r in roles if r.strip()}))

    def of(self, display_name: str) -> tuple[str, ...]:
        """The roles membership of the group named ``display_name`` grants (empty: unmapped)."""
        return self._roles.get(display_name.casefold(), ())


def reconcile(session: Session, accounts: Iterable[Account], group_roles: GroupRoles, *, actor: str) -> None:
    """Grant and revoke ``scim`` grants so that each account holds what its groups map to.

    Each account whose roles change gets an audit record per role granted or revoked, a new
    ``updated_at`` (and ``session_epoch`` when a role is revoked), and one ``roles_changed`` signal.
    """
    accounts = {a.id: a for a in accounts}
    if not accounts:
        return
    wanted: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    rows = session.execute(
        select(ScimGroupMember.account_id, ScimGroup.id, ScimGroup.display_name)
        .join(ScimGroup, ScimGroup.id == ScimGroupMember.group_id)
        .where(ScimGroupMember.account_id.in_(list(accounts)))
        .order_by(ScimGroup.id)
    )
    for account_id, group_id, name in rows:
        for role in group_roles.of(name):
            wanted[account_id][role].append(group_id)
    now = utcnow()
    for account in accounts.values():
        roles = {} if account.status == Status.DISABLED else wanted.get(account.id, {})
        held = {g.role: g for g in account.grants if g.source == SOURCE}
        revoked = sorted(set(held) - set(roles))
        granted = sorted(set(roles) - set(held))
        for role in revoked:
            account.grants.remove(held[role])  # delete-orphan cascade deletes the row
        for role, groups in roles.items():
            if role in held and held[role].source_ref not in groups:
                held[role].source_ref = groups[0]  # still held, through another mapped group
        for role in granted:
            account.grants.append(
                RoleGrant(
                    role=role, source=SOURCE, source_ref=roles[role][0], granted_by=actor, granted_at=now
                )
            )
        if not (granted or revoked):
            continue
        account.updated_at = now
        if revoked:
            account.session_epoch = (account.session_epoch or 0) + 1
        session.flush()
        target = f"account:{account.subject_id}"
        for role in granted:
            detail = {"role": role, "source": SOURCE, "source_ref": roles[role][0]}
            audit.record(session, actor, "account.grant", target, detail)
        for role in revoked:
            detail = {"role": role, "source": SOURCE, "source_ref": held[role].source_ref}
            audit.record(session, actor, "account.revoke", target, detail)
        signals.emit(session, account, "roles_changed", roles=sorted(account.roles))


def groups_of(session: Session, account: Account, group_roles: GroupRoles) -> list[dict]:
    """The SCIM groups ``account`` is a member of, each with the roles the mapping gives it now
    (``accessd account show`` prints them: an unmapped group shows no roles)."""
    rows = session.execute(
        select(ScimGroup.id, ScimGroup.display_name)
        .join(ScimGroupMember, ScimGroupMember.group_id == ScimGroup.id)
        .where(ScimGroupMember.account_id == account.id)
        .order_by(ScimGroup.display_name)
    )
    return [{"id": gid, "name": name, "roles": list(group_roles.of(name))} for gid, name in rows]

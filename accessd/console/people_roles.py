"""The roles of the catalogue in force, their place in the role graph (``g`` rows: inherited roles
and legal bases), how many active people hold each, and one role's members, paged, with where
each grant comes from. Roles people hold that the policy in force does not declare are listed
too (``known=False``): such a grant gives nothing until a policy declares the role again.
No Flask; plain data only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from accessd import accounts, clock
from accessd.console.paging import PER_PAGE, Page, offset_of
from accessd.console.people import GrantView, local
from accessd.console.people_access import compiled_in_force
from accessd.db import Database
from accessd.errors import Invalid, NotFound
from accessd.lifecycle.states import Status
from accessd.models import Account, RoleGrant
from accessd.policy.compile import CompiledPolicy, principal_closure, role_parents


@dataclass(frozen=True)
class RoleInfo:
    name: str
    description: str
    inherits: tuple[str, ...]  # roles it inherits directly (g rows)
    bases: tuple[str, ...]  # legal bases it carries, directly or inherited
    inherited_by: tuple[str, ...]  # roles that inherit it directly
    holders: int  # active accounts granted it directly (today)
    known: bool = True  # False: granted to people, but the policy in force does not declare it


@dataclass(frozen=True)
class Member:
    subject_id: str
    display_name: str
    status: str
    grants: tuple[GrantView, ...]  # this role's grants of the person (directory, manual, scim)


def roles(db: Database) -> list[RoleInfo]:
    """Each catalogue role, in catalogue order, with its place in the role graph and how many
    active people hold it; then roles people hold that the policy in force does not declare."""
    with db.session() as s:
        counts = accounts.role_holder_counts(s)
        held = set(s.scalars(select(RoleGrant.role).distinct()))
        _, compiled = compiled_in_force(s)
    out = [_role_info(compiled, name, counts.get(name, 0)) for name in _catalogue_roles(compiled)]
    declared = {r.name for r in out}
    out += [
        RoleInfo(name, "", (), (), (), counts.get(name, 0), known=False) for name in sorted(held - declared)
    ]
    return out


def role(db: Database, name: str, page: int = 1, per_page: int = PER_PAGE) -> tuple[RoleInfo, Page]:
    """The role ``name`` and a page of its members (anyone granted it directly, any status), by
    subject id, each with their grants of it. NotFound unless the catalogue in force declares it
    or someone holds it."""
    if page < 1:
        raise Invalid("page must be 1 or more")
    with db.session() as s:
        _, compiled = compiled_in_force(s)
        members = select(RoleGrant.account_id).where(RoleGrant.role == name)
        total = s.scalar(select(func.count()).select_from(Account).where(Account.id.in_(members)))
        if name not in _catalogue_roles(compiled) and not total:
            raise NotFound(f"no role {name!r} in the policy in force, and nobody holds it")
        info = _role_info(compiled, name, _active_holders(s, name))
        rows = s.execute(
            select(Account.id, Account.subject_id, Account.display_name, Account.status)
            .where(Account.id.in_(members))
            .order_by(Account.subject_id)
            .limit(per_page)
            .offset(offset_of(page, per_page))
        ).all()
        grants: dict[int, list[GrantView]] = {}
        for g in s.scalars(
            select(RoleGrant)
            .where(RoleGrant.role == name, RoleGrant.account_id.in_([r.id for r in rows]))
            .order_by(RoleGrant.source)
        ):
            grants.setdefault(g.account_id, []).append(
                GrantView(g.role, g.source, g.source_ref, g.granted_by, local(g.granted_at))
            )
    items = [Member(r.subject_id, r.display_name, r.status, tuple(grants.get(r.id, ()))) for r in rows]
    return info, Page(items=items, total=total, page=page, per_page=per_page)


def _active_holders(session: Session, name: str) -> int:
    """Active accounts granted ``name`` today (what accounts.role_holder_counts counts, for one
    role, in SQL)."""
    today = clock.today()
    return session.scalar(
        select(func.count())
        .select_from(Account)
        .where(
            Account.id.in_(select(RoleGrant.account_id).where(RoleGrant.role == name)),
            Account.status == Status.ACTIVE,
            or_(Account.start_date.is_(None), Account.start_date <= today),
            or_(Account.end_date.is_(None), Account.end_date >= today),
        )
    )


def _catalogue_roles(compiled: CompiledPolicy | None):
    return compiled.policy.catalogue.roles if compiled is not None else {}


def _role_info(compiled: CompiledPolicy | None, name: str, holders: int) -> RoleInfo:
    if compiled is None or name not in compiled.policy.catalogue.roles:
        return RoleInfo(name, "", (), (), (), holders, known=False)
    cat = compiled.policy.catalogue
    parents = role_parents(compiled.policy)
    direct = parents.get(name, set())
    closure = principal_closure(parents, [name])
    return RoleInfo(
        name=name,
        description=cat.roles[name],
        inherits=tuple(sorted(p for p in direct if p in cat.roles)),
        bases=tuple(sorted(p for p in closure if p in cat.bases)),
        inherited_by=tuple(sorted(c for c, ps in parents.items() if name in ps)),
        holders=holders,
    )

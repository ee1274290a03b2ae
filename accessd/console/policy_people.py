"""The people a policy applies to, as the policy pages need them (no Flask).

- :func:`active_role_sets` -- every ACTIVE account grouped by its set of directly held roles, in
  one query: the input of :func:`accessd.policy.impact.people_impact` and of the lockout guard.
- :func:`role_holders` -- the active accounts a matrix cell covers: holding the role directly or
  a role that inherits it (up to ``limit`` of them, and how many in all).
- :func:`check_editors_remain` -- the lockout guard: a policy that would leave no active account
  able to do admin_ui ``edit_policy`` is refused (nobody could change it back from the UI).

"Active" is what the engine lets decide: status ``active``, started (no start date or one not
after today), not ended (no end date or one not before today) and no departure moment passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from accessd import accounts, clock
from accessd.console import permissions
from accessd.errors import Invalid
from accessd.models import Account, RoleGrant
from accessd.policy.engine import Engine, Subject
from accessd.policy.matrix import inheriting_roles
from accessd.policy.policyset import PolicySet


@dataclass(frozen=True)
class Person:
    account_id: int
    subject_id: str
    display_name: str

    @property
    def label(self) -> str:
        return f"{self.display_name} ({self.subject_id})" if self.display_name else self.subject_id


def _active(stmt):
    today = clock.today()
    now = clock.now().replace(tzinfo=None)  # departure_at is stored as naive UTC
    return stmt.where(
        Account.status == "active",
        or_(Account.start_date.is_(None), Account.start_date <= today),
        or_(Account.end_date.is_(None), Account.end_date >= today),
        or_(Account.departure_at.is_(None), Account.departure_at > now),
    )


def active_role_sets(session: Session) -> dict[frozenset[str], list[Person]]:
    """Active accounts by their set of directly held roles (an account without roles is under
    the empty set). One query, whatever the number of accounts."""
    stmt = _active(
        select(Account.id, Account.subject_id, Account.display_name, RoleGrant.role).outerjoin(
            RoleGrant, RoleGrant.account_id == Account.id
        )
    )
    people: dict[int, Person] = {}
    roles: dict[int, set[str]] = {}
    for acc_id, subject_id, name, role in session.execute(stmt):
        if acc_id not in people:
            people[acc_id] = Person(acc_id, subject_id, name or "")
            roles[acc_id] = set()
        if role is not None:
            roles[acc_id].add(role)
    out: dict[frozenset[str], list[Person]] = {}
    for acc_id, person in people.items():
        out.setdefault(frozenset(roles[acc_id]), []).append(person)
    for persons in out.values():
        persons.sort(key=lambda p: p.subject_id)
    return out


def labels(role_sets: dict[frozenset[str], list[Person]]) -> dict[frozenset[str], list[str]]:
    """The mapping impact previews take: role set -> people's labels."""
    return {rs: [p.label for p in persons] for rs, persons in role_sets.items()}


def role_holders(
    session: Session, policy: PolicySet, role: str, limit: int = 50
) -> tuple[int, list[Person], tuple[str, ...]]:
    """(how many, the first ``limit`` by subject id, the roles counted) of the active accounts
    holding ``role`` or a role that inherits it. Invalid for a role the policy does not declare."""
    if role not in policy.catalogue.roles:
        raise Invalid(f"unknown role {role!r} (declared: {', '.join(policy.catalogue.roles)})")
    via = inheriting_roles(policy, role)
    people = {
        p.account_id: p for rs, persons in active_role_sets(session).items() if rs & set(via) for p in persons
    }
    ordered = sorted(people.values(), key=lambda p: p.subject_id)
    return len(ordered), ordered[:limit], via


def editors(
    session: Session,
    policy: PolicySet,
    action: str = "edit_policy",
    role_sets: dict[frozenset[str], list[Person]] | None = None,
) -> Iterable[Person]:
    """Active accounts that ``policy`` lets do admin_ui ``action``: by role set when the rules
    decide it without conditions, else account by account through the engine. ``role_sets``:
    :func:`active_role_sets`, when the caller has them already."""
    engine = Engine(policy)
    role_sets = active_role_sets(session) if role_sets is None else role_sets
    for roles, persons in role_sets.items():
        table = engine.table_for(Subject("-", roles))
        entry = table.rows.get((permissions.RESOURCE_TYPE, action, permissions.PURPOSE), {}).get(None)
        if entry is None:
            continue
        if entry.static:
            if entry.static.allowed:
                yield from persons
            continue
        by_id = {
            a.id: a
            for a in session.scalars(select(Account).where(Account.id.in_([p.account_id for p in persons])))
        }
        for p in persons:
            if permissions.may(engine, accounts.subject_for(by_id[p.account_id]), action):
                yield p


def check_editors_remain(session: Session, policy: PolicySet, role_sets: dict | None = None) -> None:
    """Invalid when no active account could change the policy in the admin UI afterwards."""
    if next(iter(editors(session, policy, role_sets=role_sets)), None) is None:
        raise Invalid(
            "refused: with this policy no active account could change the policy any more "
            f"(nobody may do {permissions.RESOURCE_TYPE} edit_policy); keep at least one editor"
        )

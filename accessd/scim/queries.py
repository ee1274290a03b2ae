"""What SCIM sees of accessd's tables, in SQL: the accounts it deleted (hidden from it from then
on), one account or group by its SCIM id, the condition a filter narrows the accounts to, and who
is a member of what."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from scim2_models import NotFoundException, ScimFilter
from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator
from sqlalchemy import and_, exists, func, not_, select
from sqlalchemy.orm import Session

from accessd.lifecycle.states import Status
from accessd.models import Account, LifecycleEvent, ScimGroup, ScimGroupMember
from accessd.scim.provider import BAD_TEXT, ENTERPRISE, USER

DELETED = "scim_deleted"  # the lifecycle event kind that hides an account from SCIM
_MAX_ID = 2**31 - 1
_GROUP_ID = re.compile(r"[0-9a-f]{32}")
#: filter attributes (binding URNs) narrowed in SQL, and whether the column compares case-blind
_USER_KEYS = {
    f"{USER}:id": (Account.id, None),
    f"{USER}:userName": (Account.username, False),
    f"{USER}:externalId": (Account.external_id, True),
    f"{ENTERPRISE}:employeeNumber": (Account.employee_number, False),
}

#: an account SCIM deleted, and that nothing re-enabled since
hidden = and_(
    Account.status == Status.DISABLED,
    exists().where(
        LifecycleEvent.account_id == Account.id,
        LifecycleEvent.kind == DELETED,
        LifecycleEvent.at >= Account.disabled_at,
    ),
)
visible = not_(hidden)


def find_account(session: Session, resource_id: str, *, lock: bool = False) -> Account:
    """The visible account ``resource_id`` (404 else); ``lock``: re-read and locked for a write
    (a concurrent write then waits, and its version check sees this one's result)."""
    account = None
    if resource_id.isascii() and resource_id.isdigit() and int(resource_id) <= _MAX_ID:
        stmt = select(Account).where(Account.id == int(resource_id), visible)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        account = session.scalar(stmt)
    if account is None:
        raise NotFoundException(detail=f"User {resource_id!r} not found")
    return account


def find_group(session: Session, resource_id: str, *, lock: bool = False) -> ScimGroup:
    """The group ``resource_id`` (404 else); ``lock`` as for :func:`find_account`."""
    group = None
    if _GROUP_ID.fullmatch(resource_id):
        group = session.get(ScimGroup, resource_id, with_for_update=lock, populate_existing=lock)
    if group is None:
        raise NotFoundException(detail=f"Group {resource_id!r} not found")
    return group


def narrow(scim_filter: ScimFilter[Any]):
    """A SQL condition every account ``scim_filter`` matches satisfies, from an equality on
    ``id``, ``userName``, ``externalId`` or ``employeeNumber`` (None: none found; False: nothing
    matches)."""
    node = scim_filter.ast
    terms = node.terms if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_ else (node,)
    for term in terms:
        if not (isinstance(term, Comparison) and term.op == CompareOperator.eq):
            continue
        if not isinstance(term.value, str):
            continue
        binding = scim_filter.resolve_comparison(term.attr_path, strict=False)
        key = _USER_KEYS.get(binding.urn) if binding is not None else None
        if key is None:
            continue
        column, case_exact = key
        value = term.value
        if BAD_TEXT.search(value):
            return False  # never stored
        if case_exact is None:  # the id
            return (
                column == int(value)
                if value.isascii() and value.isdigit() and int(value) <= _MAX_ID
                else False
            )
        if case_exact:
            return column == value
        if value.isascii():  # SQL lower() is exact for ASCII on both databases
            return func.lower(column) == value.lower()
    return None


def groups_of(session: Session, accounts: list[Account]) -> dict[int, list[ScimGroup]]:
    """Account id -> the groups it is a member of, by group id."""
    found: dict[int, list[ScimGroup]] = defaultdict(list)
    if not accounts:
        return found
    stmt = select(ScimGroupMember.account_id, ScimGroup).join(
        ScimGroup, ScimGroup.id == ScimGroupMember.group_id
    )
    if len(accounts) <= 500:  # more (a search reading every account): all, without an IN list of them
        stmt = stmt.where(ScimGroupMember.account_id.in_([a.id for a in accounts]))
    for account_id, group in session.execute(stmt.order_by(ScimGroup.id)):
        found[account_id].append(group)
    return found


def members_of(session: Session, group_ids: list[str]) -> dict[str, list[int]]:
    """Group id -> the ids of its member accounts, in order."""
    found: dict[str, list[int]] = defaultdict(list)
    if group_ids:
        stmt = (
            select(ScimGroupMember.group_id, ScimGroupMember.account_id)
            .where(ScimGroupMember.group_id.in_(group_ids))
            .order_by(ScimGroupMember.account_id)
        )
        for group_id, account_id in session.execute(stmt):
            found[group_id].append(account_id)
    return found

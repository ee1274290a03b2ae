"""Writing SCIM Users as accounts, through accessd's services: create (or bring back one SCIM
deleted), replace, the uniqueness checks both make, and delete (offboard, leave the groups, hide
from SCIM). Nothing here commits."""

from __future__ import annotations

from typing import Any

from scim2_models import Resource, UniquenessException
from sqlalchemy import delete, func, or_, select

from accessd import accounts, audit
from accessd.lifecycle import offboarding
from accessd.lifecycle.states import Source, Status
from accessd.models import Account, LifecycleEvent, ScimGroup, ScimGroupMember, utcnow
from accessd.scim.documents import fold, user_fields
from accessd.scim.queries import DELETED, hidden
from accessd.scim.writer import Writer, as_scim_errors


def create_user(writer: Writer, resource: Resource[Any]) -> Account:
    """The account of a new User: a new one, or the one SCIM deleted under this userName, back."""
    fields = user_fields(resource)
    existing = check_unique(writer, fields, None)
    if existing is not None:  # a deleted user comes back
        write_user(writer, existing, resource, fields, rehire=True)
        return existing
    with as_scim_errors():
        account = accounts.upsert(
            writer.session,
            subject_id=fields["username"],
            actor=writer.actor,
            source=Source.SCIM,
            reason="created through SCIM",
            event_ref=writer.event_ref,
            origin=str(Source.SCIM),
            **fields,
        )
    if resource.active is False:
        offboarding.offboard(
            writer.session, account, reason="created inactive through SCIM", **writer.lifecycle()
        )
    return account  # in no group yet: nothing to reconcile


def write_user(
    writer: Writer,
    account: Account,
    resource: Resource[Any],
    fields: dict | None = None,
    rehire: bool = False,
) -> None:
    """Replace ``account``'s profile and ``active`` with ``resource`` (``fields`` when read and
    checked already; ``rehire``: a deleted user created again)."""
    if fields is None:
        fields = user_fields(resource)
        check_unique(writer, fields, account)
    with as_scim_errors():
        accounts.upsert(
            writer.session,
            subject_id=account.subject_id,
            actor=writer.actor,
            source=Source.SCIM,
            reason="updated through SCIM",
            event_ref=writer.event_ref,
            **fields,
        )
    lifecycle = writer.lifecycle()
    if resource.active is False and account.status == Status.ACTIVE:
        offboarding.offboard(writer.session, account, reason="set inactive through SCIM", **lifecycle)
    elif resource.active is not False and account.status == Status.DISABLED:
        why = "created again through SCIM" if rehire else "set active through SCIM"
        offboarding.reenable(writer.session, account, reason=why, **lifecycle)
    elif resource.active is not False and account.status == Status.SUSPENDED:
        offboarding.resume(writer.session, account, reason="set active through SCIM", **lifecycle)
    writer.reconcile([account])


def check_unique(writer: Writer, fields: dict, account: Account | None) -> Account | None:
    """Refuse (409) a userName or employeeNumber another account holds, and for a new account
    (``account`` None) a userName that is another account's subject id. Returns the account
    SCIM deleted under this userName, which a creation brings back."""
    session = writer.session
    user_name, number = fields["username"], fields.get("employee_number")
    if user_name.isascii():  # SQL lower() is exact for ASCII on both databases
        same_name = func.lower(Account.username) == user_name.lower()
    else:  # it may not fold this: compare in Python among names of the same length
        same_name = func.length(Account.username) == len(user_name)
    conditions = [same_name, Account.subject_id == user_name]
    if number is not None:
        conditions.append(Account.employee_number == number)
    rows = session.execute(
        select(Account.id, Account.username, Account.subject_id, Account.employee_number).where(
            or_(*conditions)
        )
    ).all()
    key = fold(user_name)
    deleted = None
    if account is None:  # a creation: of a user SCIM deleted?
        same = [r[0] for r in rows if r[1] is not None and fold(r[1]) == key]
        if same:
            deleted = session.scalar(select(Account.id).where(Account.id.in_(same), hidden))
    myself = account.id if account is not None else deleted
    for other_id, other_name, other_subject, other_number in rows:
        if other_id == myself:
            continue
        if number is not None and other_number == number:
            raise UniquenessException(detail=f"employeeNumber {number!r} belongs to another account")
        if other_name is not None and fold(other_name) == key:
            raise UniquenessException(detail=f"userName {user_name!r} is taken")
        if myself is None and other_subject == user_name:
            why = "is the subject id of another account"
            raise UniquenessException(detail=f"userName {user_name!r} {why}")
    return session.get(Account, deleted) if deleted is not None else None


def delete_user(writer: Writer, account: Account) -> None:
    """Offboard ``account``, take it out of its groups and hide it from SCIM; it stays, disabled."""
    session = writer.session
    offboarding.offboard(session, account, reason="deleted through SCIM", **writer.lifecycle())
    groups = list(
        session.scalars(
            select(ScimGroup).join(ScimGroupMember).where(ScimGroupMember.account_id == account.id)
        )
    )
    now = utcnow()
    for group in groups:
        group.updated_at = now
    session.execute(delete(ScimGroupMember).where(ScimGroupMember.account_id == account.id))
    session.add(
        LifecycleEvent(
            account_id=account.id,
            kind=DELETED,
            reason="deleted through SCIM; the account is kept, disabled",
            source=str(Source.SCIM),
            actor=writer.actor,
            at=max(now, account.disabled_at or now),
            event_ref=writer.event_ref[:200] if writer.event_ref else None,
        )
    )
    audit.record(
        session,
        writer.actor,
        "scim.user.delete",
        f"account:{account.subject_id}",
        {"groups": [g.id for g in groups], **writer.ref()},
    )
    session.flush()

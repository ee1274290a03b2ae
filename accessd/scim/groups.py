"""Writing SCIM Groups (``scim_group`` and ``scim_group_member``): create, replace (name and
members), delete, each audited and followed by the roles of every member it touched
(:mod:`accessd.scim.roles`). Nothing here commits."""

from __future__ import annotations

import uuid
from typing import Any

from scim2_models import InvalidValueException, NotFoundException, Resource, UniquenessException
from sqlalchemy import delete, func, select

from accessd import audit
from accessd.models import ScimGroup, ScimGroupMember, utcnow
from accessd.scim.documents import fold
from accessd.scim.queries import find_account, members_of
from accessd.scim.writer import Writer, as_scim_errors


def create_group(writer: Writer, resource: Resource[Any]) -> ScimGroup:
    """A new group named and filled as ``resource`` says."""
    session = writer.session
    check_group_name(writer, resource.display_name, None)
    now = utcnow()
    group = ScimGroup(
        id=uuid.uuid4().hex,
        display_name=resource.display_name,
        external_id=resource.external_id,
        created_at=now,
        updated_at=now,
    )
    with as_scim_errors():
        session.add(group)
        session.flush()
    members = _member_ids(writer, resource)
    session.add_all(ScimGroupMember(group_id=group.id, account_id=i) for i in members)
    session.flush()
    audit.record(
        session,
        writer.actor,
        "scim.group.create",
        f"scim_group:{group.id}",
        {"display_name": group.display_name, "members": len(members), **writer.ref()},
    )
    writer.reconcile(members)
    return group


def write_group(writer: Writer, group: ScimGroup, resource: Resource[Any]) -> None:
    """Replace ``group``'s names and members with ``resource``'s (audited only if one changed)."""
    session = writer.session
    check_group_name(writer, resource.display_name, group.id)
    before = set(members_of(session, [group.id])[group.id])
    after = set(_member_ids(writer, resource))
    changed = {}
    for column, value in (("display_name", resource.display_name), ("external_id", resource.external_id)):
        if getattr(group, column) != value:
            changed[column] = [getattr(group, column), value]
            setattr(group, column, value)
    if before != after:
        changed["members_added"] = sorted(after - before)
        changed["members_removed"] = sorted(before - after)
        session.execute(
            delete(ScimGroupMember).where(
                ScimGroupMember.group_id == group.id, ScimGroupMember.account_id.in_(before - after)
            )
        )
        session.add_all(ScimGroupMember(group_id=group.id, account_id=i) for i in after - before)
    if changed:
        group.updated_at = utcnow()
        with as_scim_errors():
            session.flush()
        audit.record(
            session,
            writer.actor,
            "scim.group.update",
            f"scim_group:{group.id}",
            {**changed, **writer.ref()},
        )
    writer.reconcile(before | after)  # also applies a mapping changed since the last write


def delete_group(writer: Writer, group: ScimGroup) -> None:
    """Delete ``group``; its members lose the roles it gave."""
    session = writer.session
    members = members_of(session, [group.id])[group.id]
    session.execute(delete(ScimGroupMember).where(ScimGroupMember.group_id == group.id))
    session.delete(group)
    session.flush()
    audit.record(
        session,
        writer.actor,
        "scim.group.delete",
        f"scim_group:{group.id}",
        {"display_name": group.display_name, "members": len(members), **writer.ref()},
    )
    writer.reconcile(members)


def check_group_name(writer: Writer, name: str | None, group_id: str | None) -> None:
    """Refuse a missing or too long displayName (400), or one another group has (409)."""
    if not name:
        raise InvalidValueException(detail="displayName is required")
    if len(name) > 200:
        raise InvalidValueException(detail="displayName is longer than 200 characters")
    for other_id, other_name in writer.session.execute(
        select(ScimGroup.id, ScimGroup.display_name).where(func.length(ScimGroup.display_name) == len(name))
    ):
        if other_id != group_id and fold(other_name) == fold(name):
            raise UniquenessException(detail=f"a group named {other_name!r} exists")


def _member_ids(writer: Writer, resource: Resource[Any]) -> list[int]:
    """The accounts ``members`` names; an unknown, deleted or non-User member is refused."""
    ids = []
    for member in resource.members or []:
        if member.type not in (None, "User"):
            raise InvalidValueException(
                detail=f"members: accessd groups hold users only, not {member.type!r}"
            )
        value = member.value or (str(member.ref).rstrip("/").rsplit("/", 1)[-1] if member.ref else "")
        try:
            ids.append(find_account(writer.session, value).id)
        except NotFoundException:
            raise InvalidValueException(detail=f"members: no user with id {value!r}") from None
    return sorted(set(ids))

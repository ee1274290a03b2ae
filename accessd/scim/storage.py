"""The SCIM resources as accessd's own tables: a ``scim2_server`` storage over one SQL session.

Users are accounts (``account``), Groups are ``scim_group`` with ``scim_group_member``; the
library (``scim2_server``) does the protocol -- parsing, PATCH, filters' meaning, ETags, errors --
and calls this storage, which follows the ``ScimStorage`` contract (the library's
``ScimStorageContract`` tests run against it). Every change goes through accessd's services:
:func:`accessd.accounts.upsert` for the profile (joiner and mover events, audit),
:mod:`accessd.lifecycle.offboarding` for ``active`` and deletion, :mod:`accessd.scim.roles` for the
roles groups grant. The request's transaction is the caller's: nothing here commits.

Mapping (see :mod:`accessd.scim.provider` for the published schemas):

* ``id`` is the account's number; ``userName`` the ``username`` (unique, case-insensitive; a new
  account's subject id is its userName and stays when userName changes later); ``externalId``,
  ``displayName``, ``title``, ``emails[0].value`` (one address is kept: the first), the enterprise
  ``employeeNumber`` (unique), ``department`` and ``manager.value`` (the manager's SCIM id) are
  columns of the same names.
* ``active`` is ``status == "active"``. ``active: false`` offboards an active account (a suspended
  one stays suspended); ``active: true`` re-enables a disabled one (a rehire) or resumes a
  suspended one. It is required: accessd must know whether a person may work.
* ``DELETE`` offboards the account and leaves its groups, and SCIM forgets it (404 from then on),
  but the account stays, disabled, with its history: the decision log and audit trail keep
  pointing at it. A ``scim_deleted`` lifecycle event marks it; the account is hidden while it is
  disabled since then. A later POST with the same userName is the same person coming back: the
  account is re-enabled (:func:`accessd.lifecycle.offboarding.reenable`) under its old id with
  the new attributes, and its manual grants are not restored.
* ``meta.version`` is a digest of the resource as served, so it changes exactly when the resource
  does -- a group membership included -- and an update that changes nothing keeps it.

Searches filter, sort and page with the library's own evaluator (``ScimFilter.match``,
``SearchRequest.sort``), so every filter means what RFC 7644 says. Equality on ``id``,
``userName``, ``externalId`` or ``employeeNumber`` (what provisioning clients ask before they
create) narrows the rows in SQL first, and a plain listing pages in SQL; anything else reads every
account once per search.

The parts: :mod:`accessd.scim.documents` (rows as SCIM documents and back),
:mod:`accessd.scim.queries` (what SCIM sees, in SQL), :mod:`accessd.scim.users` and
:mod:`accessd.scim.groups` (the writes), :mod:`accessd.scim.writer` (what every write shares);
this module answers the library and delegates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Union

from scim2_models import (
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    ScimProvider,
    SearchRequest,
)
from scim2_server.storage import ScimStorage, SearchPage
from scim2_server.utils import parametrize
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd.models import Account, ScimGroup
from accessd.scim import groups, queries, users
from accessd.scim import roles as group_roles
from accessd.scim.documents import as_resource, group_document, user_document
from accessd.scim.writer import Writer


class AccountStorage(ScimStorage):
    """Users and Groups over ``session``; writes are made by ``actor`` (``scim:<client>``) and
    recorded with ``event_ref`` (the request's id)."""

    def __init__(
        self,
        session: Session,
        provider: ScimProvider,
        mapping: group_roles.GroupRoles,
        *,
        actor: str,
        event_ref: str | None = None,
    ):
        self.session = session
        self.provider = provider
        self.writer = Writer(session, mapping, actor, event_ref)

    @contextmanager
    def operation(self) -> Iterator[None]:
        """A savepoint per operation: a failed one in a Bulk request leaves the others."""
        with self.session.begin_nested():
            yield

    # -- reading ----------------------------------------------------------------------------

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        if resource_type.name == "User":
            return self._users([queries.find_account(self.session, resource_id)])[0]
        return self._groups([queries.find_group(self.session, resource_id)])[0]

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        names = {rt.name for rt in resource_types}
        scim_filter = search_request.filter
        if names == {"User"} and scim_filter is None and search_request.sort_by is None:
            return self._list_users(search_request)  # a plain listing: paged in SQL
        found: list[Resource[Any]] = []
        if "User" in names:
            stmt = select(Account).where(queries.visible)
            if len(names) == 1 and scim_filter is not None:
                narrowed = queries.narrow(scim_filter)
                if narrowed is False:
                    return SearchPage(0, [])
                if narrowed is not None:
                    stmt = stmt.where(narrowed)
            found += self._users(list(self.session.scalars(stmt.order_by(Account.id))))
        if "Group" in names:
            found += self._groups(list(self.session.scalars(select(ScimGroup).order_by(ScimGroup.id))))
        if scim_filter is not None:
            if not scim_filter.models and found:  # a search at the root: one model per type
                models = tuple(dict.fromkeys(type(r) for r in found))
                scim_filter = parametrize(ScimFilter, Union[models])(str(scim_filter))  # noqa: UP007
            found = [r for r in found if scim_filter.match(r)]
        if search_request.sort_by is not None:
            found = search_request.sort(found)
        start = search_request.start_index_0 or 0
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(len(found), found[start:stop])

    def _list_users(self, search_request: SearchRequest[Any]) -> SearchPage:
        total = self.session.scalar(select(func.count(Account.id)).where(queries.visible))
        stmt = (
            select(Account)
            .where(queries.visible)
            .order_by(Account.id)
            .offset(search_request.start_index_0 or 0)
        )
        if search_request.count is not None:
            stmt = stmt.limit(search_request.count)
        return SearchPage(total, self._users(list(self.session.scalars(stmt))))

    def _users(self, rows: list[Account], memberships: dict | None = None) -> list[Resource[Any]]:
        """The Users of ``rows``; ``memberships`` (account id -> groups) when known already."""
        model = self.provider.model_for("User")
        if memberships is None:
            memberships = queries.groups_of(self.session, rows)
        return [
            as_resource(
                model,
                "User",
                user_document(account, memberships.get(account.id, [])),
                account.created_at,
                account.updated_at,
            )
            for account in rows
        ]

    def _groups(self, rows: list[ScimGroup]) -> list[Resource[Any]]:
        model = self.provider.model_for("Group")
        members = queries.members_of(self.session, [g.id for g in rows])
        return [
            as_resource(model, "Group", group_document(g, members[g.id]), g.created_at, g.updated_at)
            for g in rows
        ]

    # -- writing ----------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        if resource_type.name == "User":
            # in no group: a new account is not yet, a deleted one was taken out of its groups
            return self._users([users.create_user(self.writer, resource)], memberships={})[0]
        return self._groups([groups.create_group(self.writer, resource)])[0]

    def update(
        self, resource_type: ResourceType, resource: Resource[Any], *, expected_version: str | None = None
    ) -> Resource[Any]:
        if resource_type.name == "User":
            account = queries.find_account(self.session, resource.id or "", lock=True)
            self._check_version(self._users([account])[0], expected_version)
            users.write_user(self.writer, account, resource)
            return self._users([account])[0]
        group = queries.find_group(self.session, resource.id or "", lock=True)
        self._check_version(self._groups([group])[0], expected_version)
        groups.write_group(self.writer, group, resource)
        return self._groups([group])[0]

    def delete(
        self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None
    ) -> None:
        if resource_type.name == "User":
            account = queries.find_account(self.session, resource_id, lock=True)
            self._check_version(self._users([account])[0], expected_version)
            users.delete_user(self.writer, account)
        else:
            group = queries.find_group(self.session, resource_id, lock=True)
            self._check_version(self._groups([group])[0], expected_version)
            groups.delete_group(self.writer, group)

    @staticmethod
    def _check_version(current: Resource[Any], expected: str | None) -> None:
        if expected is not None and current.meta.version != expected:
            raise PreconditionFailedException(detail="the resource changed since that version")

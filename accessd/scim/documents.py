"""SCIM documents from accessd's rows and back, without SQL: a User from an account (with its
groups and roles), a Group from a ``scim_group``, either as a ``scim2_models`` resource whose
``meta.version`` digests it; the account columns a User sets; how names compare (:func:`fold`).
The mapping itself is described in :mod:`accessd.scim.storage`."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import UTC
from typing import Any

from scim2_models import InvalidValueException, Meta, Resource

from accessd.lifecycle.states import Status
from accessd.models import Account, ScimGroup
from accessd.scim import roles as group_roles
from accessd.scim.provider import ENTERPRISE, GROUP, USER

#: SCIM attribute -> (account column, the longest text the column holds)
_LIMITS = {
    "userName": ("username", 200),
    "displayName": ("display_name", 200),
    "title": ("title", 200),
    "emails.value": ("email", 320),
    "employeeNumber": ("employee_number", 64),
    "department": ("department", 200),
    "manager.value": ("manager", 1000),
    "externalId": ("external_id", 200),
}


def as_resource(model, name: str, document: dict, created, modified) -> Resource[Any]:
    """``document`` (empty values dropped) as a ``model`` resource of type ``name``; its
    ``meta.version`` is a digest of what is served, so it changes exactly when the resource does."""
    document = {k: v for k, v in document.items() if v not in (None, [], {})}
    resource = model.model_validate(document)
    resource.meta = Meta(
        resource_type=name,
        created=_aware(created),
        last_modified=_aware(modified),
        version=_version(document),
    )
    return resource


def group_document(group: ScimGroup, member_ids: list[int]) -> dict:
    """The Group ``group`` with the accounts ``member_ids`` as its members."""
    return {
        "schemas": [GROUP],
        "id": group.id,
        "externalId": group.external_id,
        "displayName": group.display_name,
        "members": [{"value": str(i), "$ref": f"Users/{i}", "type": "User"} for i in member_ids],
    }


def user_document(account: Account, groups: list[ScimGroup]) -> dict:
    """The User ``account``, a member of ``groups``."""
    user = {
        "schemas": [USER],
        "id": str(account.id),
        "externalId": account.external_id,
        "userName": account.username or account.subject_id,
        "displayName": account.display_name or None,
        "title": account.title,
        "active": account.status == Status.ACTIVE,
        "emails": [{"value": account.email, "type": "work"}] if account.email else None,
        "groups": [
            {"value": g.id, "$ref": f"Groups/{g.id}", "display": g.display_name, "type": "direct"}
            for g in groups
        ],
        "roles": _roles(account, {g.id: g.display_name for g in groups}),
    }
    manager = None
    if account.manager:
        manager = {"value": account.manager}
        if account.manager.isdigit():  # a SCIM id (a directory account's manager is a DN)
            manager["$ref"] = f"Users/{account.manager}"
    enterprise = {
        k: v
        for k, v in (
            ("employeeNumber", account.employee_number),
            ("department", account.department),
            ("manager", manager),
        )
        if v
    }
    if enterprise:
        user["schemas"].append(ENTERPRISE)
        user[ENTERPRISE] = enterprise
    return user


def user_fields(resource: Resource[Any]) -> dict[str, Any]:
    """The account columns a User resource sets (every mapped column: a PUT replaces)."""
    document = resource.model_dump()
    enterprise = document.get(ENTERPRISE) or {}
    emails = document.get("emails") or []
    manager = enterprise.get("manager") or {}
    manager_id = manager.get("value") or (manager.get("$ref") or "").rstrip("/").rsplit("/", 1)[-1] or None
    values = {
        "userName": document.get("userName"),
        "displayName": document.get("displayName") or _composed_name(resource),
        "title": document.get("title"),
        "emails.value": _kept_email(emails),
        "employeeNumber": enterprise.get("employeeNumber"),
        "department": enterprise.get("department"),
        "manager.value": manager_id,
        "externalId": document.get("externalId"),
    }
    if not values["userName"] or values["userName"] != values["userName"].strip():
        raise InvalidValueException(detail="userName must be non-empty, without leading or trailing spaces")
    fields = {}
    for name, (column, limit) in _LIMITS.items():
        value = values[name]
        if value is not None and len(value) > limit:
            raise InvalidValueException(detail=f"{name} is longer than {limit} characters")
        fields[column] = value if value != "" else None
    fields["display_name"] = fields["display_name"] or ""
    return fields


def fold(text: str) -> str:
    """How userName and a group's displayName compare (caseExact false): NFC, lower case."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())


def _aware(moment):
    return moment.replace(tzinfo=UTC) if moment is not None else None


def _version(document: dict) -> str:
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
    return f'W/"{digest[:20]}"'


def _roles(account: Account, group_names: dict[str, str]) -> list[dict]:
    """The account's grants as User ``roles``: the source as ``type``, the granting group (a SCIM
    group's displayName, a directory group's DN) as ``display``."""
    roles = []
    for grant in sorted(account.grants, key=lambda g: (g.role, g.source)):
        display = (
            group_names.get(grant.source_ref) if grant.source == group_roles.SOURCE else grant.source_ref
        )
        roles.append({"value": grant.role, "type": grant.source, "display": display})
    return roles


def _kept_email(emails: list[dict]) -> str | None:
    """The one address accessd keeps: the first of type work, else the first (read back as work)."""
    given = [e for e in emails if e.get("value")]
    work = [e for e in given if (e.get("type") or "").casefold() == "work"]
    return (work or given or [{}])[0].get("value")


def _composed_name(resource: Resource[Any]) -> str | None:
    """A display name from the ``name`` a client sent (not kept itself): ``formatted``, or the
    given and family names."""
    name = (resource.unknown_attributes or {}).get("name")
    if not isinstance(name, dict):
        return None
    if isinstance(name.get("formatted"), str) and name["formatted"].strip():
        return name["formatted"].strip()
    parts = [name.get(k) for k in ("givenName", "familyName")]
    return " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip()) or None

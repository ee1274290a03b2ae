"""What the SCIM server publishes about itself: its schemas, resource types and capabilities.

The schemas are RFC 7643's User, Group and enterprise User, cut down to the attributes accessd
keeps (an attribute a schema lists must read back as it was written, and accessd stores a person
in its own ``account`` columns, not as a SCIM document):

* User: ``userName``, ``displayName``, ``title``, ``active`` (required: accessd must know whether
  a person may work), ``emails`` (one address: ``value``, and ``type`` whose only value is
  ``work``, so that the usual ``emails[type eq "work"].value`` path works), read-only ``groups`` (the
  group memberships) and ``roles`` (the account's grants in accessd: ``value`` the role, ``type``
  its source -- ``directory``, ``manual`` or ``scim`` -- and ``display`` the group granting it;
  this is where ``scim.group_roles`` shows);
* enterprise User: ``employeeNumber``, ``department``, ``manager`` (``value`` and ``$ref``);
* Group: ``displayName`` and ``members`` of type ``User`` (``value``, ``$ref``, ``type``).

A client may send other attributes (``name``, ``phoneNumbers``, a member's ``display``, ...):
they are accepted and dropped, so the usual HR connectors work unchanged (:data:`POLICY`). The
policy also takes the forms Microsoft Entra sends (a ``remove`` carrying a ``value``, a PATCH path
filter that matches no entry yet) and refuses, with 400, any string holding a control character or
a lone surrogate (:func:`comparison_key`), so nothing of the kind reaches the database.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    External,
    Filter,
    Patch,
    Reference,
    ResourceType,
    Schema,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    default_comparison_key,
)
from scim2_server.utils import load_json_resource

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

#: schema -> attribute -> the sub-attributes kept (None: a simple attribute)
KEPT = {
    USER: {
        "userName": None,
        "displayName": None,
        "title": None,
        "active": None,
        "emails": ["value", "type"],
        "groups": ["value", "$ref", "display", "type"],
        "roles": ["value", "display", "type"],
    },
    GROUP: {"displayName": None, "members": ["value", "$ref", "type"]},
    ENTERPRISE: {"employeeNumber": None, "department": None, "manager": ["value", "$ref"]},
}

# control characters and lone surrogates: no attribute accessd keeps is more than one line of text
BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def comparison_key(binding: Any, value: str) -> str:
    """The library's comparison form, refusing text accessd does not store (see the module)."""
    if BAD_TEXT.search(value):
        raise ValueError("the value holds a control character or a lone surrogate")
    return default_comparison_key(binding, value)


POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
    comparison_key=comparison_key,
)


def _cut(schema: dict) -> dict:
    kept = KEPT[schema["id"]]
    schema = copy.deepcopy(schema)
    attributes = []
    for attribute in schema["attributes"]:
        if attribute["name"] not in kept:
            continue
        subs = kept[attribute["name"]]
        if subs is not None:
            attribute["subAttributes"] = [s for s in attribute["subAttributes"] if s["name"] in subs]
        attributes.append(attribute)
    schema["attributes"] = attributes
    if schema["id"] == USER:  # see the module docstring
        next(a for a in attributes if a["name"] == "active")["required"] = True
        roles = next(a for a in attributes if a["name"] == "roles")
        roles["mutability"] = "readOnly"
        roles["description"] = (
            "The roles the account holds in accessd: value the role, type where the grant comes from "
            "(directory, manual or scim), display the group that grants it"
        )
        for sub in roles["subAttributes"]:
            sub["mutability"] = "readOnly"
        emails = next(a for a in attributes if a["name"] == "emails")
        next(s for s in emails["subAttributes"] if s["name"] == "type")["canonicalValues"] = ["work"]
    if schema["id"] == GROUP:  # members are users only (accessd has no nested groups)
        for sub in attributes[1]["subAttributes"]:
            if sub["name"] == "$ref":
                sub["referenceTypes"] = ["User"]
            if sub["name"] == "type":
                sub["canonicalValues"] = ["User"]
    return schema


@cache
def schemas() -> tuple[Schema, ...]:
    """The published schemas: RFC 7643's cut down to :data:`KEPT`."""
    return tuple(Schema.model_validate(_cut(s)) for s in load_json_resource("default-schemas.json"))


def resource_types() -> list[ResourceType]:
    return [
        ResourceType.model_validate(
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": "User",
                "name": "User",
                "description": "An accessd account (a person who asks for access)",
                "endpoint": "/Users",
                "schema": USER,
                "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
            }
        ),
        ResourceType.model_validate(
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": "Group",
                "name": "Group",
                "description": "A group of accounts, mapped to roles by scim.group_roles",
                "endpoint": "/Groups",
                "schema": GROUP,
            }
        ),
    ]


def config(max_results: int, bulk_max_operations: int, max_payload_bytes: int) -> ServiceProviderConfig:
    """The capabilities: PATCH, Bulk, filter, sort and ETags; bearer tokens; no passwords."""
    return ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=True, max_operations=bulk_max_operations, max_payload_size=max_payload_bytes),
        filter=Filter(supported=True, max_results=max_results),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="An accessd API token with scope hr (accessd token create --scope hr)",
                spec_uri=Reference[External]("https://datatracker.ietf.org/doc/html/rfc6750"),
                primary=True,
            )
        ],
    )


def build(max_results: int, bulk_max_operations: int, max_payload_bytes: int) -> ScimProvider:
    """The provider the server serves (its models are built from :func:`schemas`)."""
    return ScimProvider.from_discovery(
        schemas(),
        resource_types(),
        config=config(max_results, bulk_max_operations, max_payload_bytes),
        policy=POLICY,
    )

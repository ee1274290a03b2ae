"""What to read from the directory: attribute mappings, filters and high-water mark syntax.

``OPENLDAP`` and ``ACTIVE_DIRECTORY`` map each mapping key (``key``, ``username``, ``locked``,
...) to the LDAP attribute(s) it is read from; ``ldap.attributes`` overrides any key
(:func:`mapping_for`). Any other key of ``ldap.attributes`` names a subject attribute of the
policy catalogue and the LDAP attribute(s) it is read from (``cost_centre = "departmentNumber"``,
:func:`subject_attribute_mapping`); its value goes to ``DirectoryEntry.attributes`` and from
there to ``account.attributes``.

Filters are built only from configuration plus values escaped with ``escape_filter_chars``
(:func:`changed_since`). :func:`clock_mark` is the high-water mark used when the directory
publishes none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from ldap3.utils.conv import escape_filter_chars

from accessd.config import LdapSettings
from accessd.errors import Invalid
from accessd.models import PROFILE_COLUMNS

# when the directory publishes no contextCSN, the mark is this host's clock less this margin
# (changes in the margin are read twice, harmlessly; a server clock further behind is not covered)
CLOCK_MARGIN = dt.timedelta(minutes=10)

# Attribute mapping: a mapping key -> one attribute name or a list tried in order; "" disables it.
OPENLDAP: dict[str, str | list[str]] = {
    "key": "entryUUID",
    "username": "uid",
    "employee_number": "employeeNumber",
    "display_name": ["displayName", "cn"],
    "email": "mail",
    "department": ["departmentNumber", "ou"],
    "title": "title",
    "manager": "manager",
    "region": "l",
    "start_date": "",
    "end_date": "",  # e.g. "employmentEndDate": a generalizedTime or YYYY-MM-DD date
    "locked": "pwdAccountLockedTime",
    "lockout_time": "",
    "shadow_expire": "shadowExpire",
    "user_account_control": "",
    "account_expires": "",
    "modified": "entryCSN",  # or modifyTimestamp
    "group_member": "member",
    "group_name": "cn",
}

ACTIVE_DIRECTORY: dict[str, str | list[str]] = {
    **OPENLDAP,
    "key": "objectGUID",
    "username": "sAMAccountName",
    "employee_number": ["employeeID", "employeeNumber"],
    "department": "department",
    "locked": "",
    "lockout_time": "lockoutTime",
    "shadow_expire": "",
    "user_account_control": "userAccountControl",
    "account_expires": "accountExpires",
    "modified": "uSNChanged",  # per domain controller: point ldap.url at one DC
}

SEQUENCE_ATTRIBUTES = {"entrycsn", "usnchanged"}

DEFAULT_FILTERS = {
    "openldap": ("(objectClass=inetOrgPerson)", "(objectClass=groupOfNames)"),
    "active_directory": ("(&(objectCategory=person)(objectClass=user))", "(objectClass=group)"),
}

PROFILE_FIELDS = PROFILE_COLUMNS  # the account columns the directory fills


def _names(v) -> list[str]:
    return ([v] if isinstance(v, str) else list(v)) if v else []


def mapping_for(settings: LdapSettings) -> dict[str, list[str]]:
    """The effective attribute mapping: flavour defaults overridden by ``ldap.attributes``."""
    base = ACTIVE_DIRECTORY if settings.flavour == "active_directory" else OPENLDAP
    merged = {**base, **{k: v for k, v in (settings.attributes or {}).items() if k in OPENLDAP}}
    return {k: _names(v) for k, v in merged.items()}


def subject_attribute_mapping(
    settings: LdapSettings, declared: Collection[str] | None
) -> tuple[dict[str, list[str]], list[str]]:
    """The keys of ``ldap.attributes`` that are not mapping keys: subject attributes -> LDAP names.

    ``declared`` is the subject attributes of the policy in force. A key it does not declare is
    not read and gets a warning (a policy change must not stop the sync's leavers). Without
    ``declared`` (None) every such key is rejected as unknown.
    """
    extra = {k: _names(v) for k, v in (settings.attributes or {}).items() if k not in OPENLDAP}
    if declared is None and extra:
        raise Invalid(
            f"ldap.attributes: unknown mapping keys {', '.join(sorted(extra))}; known: "
            f"{', '.join(OPENLDAP)}, or a subject attribute declared in the policy catalogue"
        )
    declared = set(declared or ())
    warnings = [
        f"ldap.attributes: {k} is neither a mapping key nor a subject attribute of the policy in "
        "force; not synced"
        for k in sorted(set(extra) - declared)
    ]
    return {k: v for k, v in extra.items() if k in declared and v}, warnings


def user_attributes(mapping: dict[str, list[str]], extra: dict[str, list[str]]) -> list[str]:
    """The LDAP attributes a user search asks for (mapped keys, subject attributes, lock policy)."""
    names = [a for key, attrs in mapping.items() if not key.startswith("group_") for a in attrs]
    names += [a for attrs in extra.values() for a in attrs]
    if mapping["locked"]:
        names.append("pwdPolicySubentry")
    return sorted(set(names))


def filters_for(settings: LdapSettings) -> tuple[str, str]:
    """The user and group filters; the OpenLDAP defaults switch to AD's for the AD flavour."""
    user_filter, group_filter = settings.user_filter, settings.group_filter
    if settings.flavour == "active_directory":
        ol_user, ol_group = DEFAULT_FILTERS["openldap"]
        ad_user, ad_group = DEFAULT_FILTERS["active_directory"]
        user_filter = ad_user if user_filter == ol_user else user_filter
        group_filter = ad_group if group_filter == ol_group else group_filter
    return user_filter, group_filter


def changed_since(filter_: str, attribute: str, mark: str) -> str:
    """``filter_`` restricted to entries changed after the high-water ``mark`` (escaped).

    Change sequence numbers (OpenLDAP ``entryCSN``, AD ``uSNChanged``) are unique, so "strictly
    after" is exact. Timestamps (``modifyTimestamp``, ``whenChanged``) have one-second resolution,
    so entries from the mark's own second are read again (``>=``) rather than risk missing one.
    """
    value = escape_filter_chars(mark)
    if attribute.lower() in SEQUENCE_ATTRIBUTES:
        return f"(&{filter_}(!({attribute}<={value})))"
    return f"(&{filter_}({attribute}>={value}))"


def clock_mark(attribute: str, now: dt.datetime | None = None) -> str:
    """A high-water mark from this host's clock less ``CLOCK_MARGIN``, in ``attribute``'s syntax
    (a CSN for entryCSN, generalizedTime otherwise): CSNs start with their commit time."""
    t = (now or dt.datetime.now(dt.UTC)) - CLOCK_MARGIN
    if attribute.lower() == "entrycsn":
        return f"{t:%Y%m%d%H%M%S}.{t:%f}Z#000000#000#000000"
    return f"{t:%Y%m%d%H%M%S}Z"

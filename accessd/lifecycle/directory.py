"""Reading people and groups from an LDAP directory (OpenLDAP or Active Directory) with ldap3.

``Directory(settings.ldap)`` binds (plain, ldaps:// or StartTLS) and runs paged searches. Every
failure -- connect, bind, a missing base DN, a page that could not be read, a size or time
limit -- raises :class:`DirectoryUnavailable` with the reason; a search never answers "no users"
when it could not read. Filters are built only from configuration plus values escaped with
``escape_filter_chars``. The bind password is never logged or put in an error message.

Entries are mapped to :class:`DirectoryEntry` with the attribute mapping of the configured
flavour (see ``OPENLDAP`` and ``ACTIVE_DIRECTORY`` below; ``ldap.attributes`` overrides any key).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import ssl
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from accessd.config import LdapSettings
from accessd.errors import DirectoryUnavailable, Invalid

log = logging.getLogger(__name__)

PAGED_RESULTS = "1.2.840.113556.1.4.319"
ADMIN_LOCK = "000001010000Z"  # OpenLDAP ppolicy: locked by an administrator until unlocked
AD_NEVER = (0, 0x7FFFFFFFFFFFFFFF)

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

PROFILE_FIELDS = (
    "username",
    "employee_number",
    "display_name",
    "email",
    "department",
    "title",
    "manager",
    "region",
)


@dataclass(slots=True)
class DirectoryEntry:
    """One person as the directory describes them, already mapped and with departure signals read."""

    key: str
    dn: str
    profile: dict[str, str | None]  # PROFILE_FIELDS
    start_date: dt.date | None = None
    end_date: dt.date | None = None  # last working day, the earliest of all end signals
    end_reason: str | None = None
    disabled_reason: str | None = None  # set when the directory itself disables the person now
    modified: str | None = None


@dataclass(slots=True)
class DirectoryGroup:
    dn: str
    name: str
    members: list[str] = field(default_factory=list)
    modified: str | None = None


def norm_dn(dn: str) -> str:
    """A DN in a form fit for comparison (case and spaces around separators ignored)."""
    return ",".join(part.strip() for part in dn.lower().split(","))


def mapping_for(settings: LdapSettings) -> dict[str, list[str]]:
    """The effective attribute mapping: flavour defaults overridden by ``ldap.attributes``."""
    base = ACTIVE_DIRECTORY if settings.flavour == "active_directory" else OPENLDAP
    merged = {**base, **(settings.attributes or {})}
    unknown = set(merged) - set(OPENLDAP)
    if unknown:
        raise Invalid(
            f"ldap.attributes: unknown mapping keys {', '.join(sorted(unknown))}; "
            f"known: {', '.join(OPENLDAP)}"
        )
    return {k: ([v] if isinstance(v, str) else list(v)) if v else [] for k, v in merged.items()}


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


def mark_order(mark: str):
    """Sort key for high-water marks: numbers (uSNChanged) numerically, others as text."""
    return (0, int(mark), "") if mark.isdigit() else (1, 0, mark)


# --- value parsing ----------------------------------------------------------------------------


def parse_date(value: str) -> dt.date | None:
    """A date from generalizedTime (``20260131000000Z``), ``YYYY-MM-DD`` or ``YYYYMMDD``."""
    v = value.strip()
    try:
        if len(v) >= 10 and v[4] == "-":
            return dt.date.fromisoformat(v[:10])
        if len(v) >= 8 and v[:8].isdigit():
            return dt.date(int(v[:4]), int(v[4:6]), int(v[6:8]))
    except ValueError:
        return None
    return None


def shadow_expire_date(value: str) -> dt.date | None:
    """shadowExpire counts days since 1970-01-01; the account is expired from that day on."""
    try:
        days = int(value)
    except ValueError:
        return None
    if days < 0:
        return None
    return dt.date(1970, 1, 1) + dt.timedelta(days=days)


def ad_filetime(value: str) -> dt.datetime | None:
    """AD accountExpires: 100 ns intervals since 1601-01-01 UTC; 0 and 2**63-1 mean never."""
    try:
        ticks = int(value)
    except ValueError:
        return None
    if ticks in AD_NEVER or ticks < 0:
        return None
    return dt.datetime(1601, 1, 1) + dt.timedelta(microseconds=ticks // 10)


def _guid(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=raw)) if len(raw) == 16 else raw.hex()


# --- the client -------------------------------------------------------------------------------


class Directory:
    """A read-only connection to the directory; use as a context manager."""

    def __init__(
        self,
        settings: LdapSettings,
        *,
        progress: Callable[[int], None] | None = None,
        progress_every: int = 1000,
    ):
        if not settings.url:
            raise Invalid("ldap.url is not configured")
        if not settings.user_base:
            raise Invalid("ldap.user_base is not configured")
        self.settings = settings
        self.mapping = mapping_for(settings)
        self.user_filter, self.group_filter = filters_for(settings)
        self.progress = progress
        self.progress_every = progress_every
        self.conn: ldap3.Connection | None = None
        self._read = 0

    # connection ------------------------------------------------------------------------------

    def __enter__(self) -> Directory:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _server(self) -> ldap3.Server:
        s = self.settings
        tls = None
        if s.url.startswith("ldaps://") or s.start_tls:
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED if s.tls_verify else ssl.CERT_NONE, ca_certs_file=s.ca_file or None
            )
        try:
            return ldap3.Server(
                s.url,
                use_ssl=s.url.startswith("ldaps://"),
                tls=tls,
                get_info=ldap3.NONE,
                connect_timeout=s.timeout_seconds,
            )
        except LDAPException as exc:
            raise DirectoryUnavailable(f"invalid ldap.url {s.url!r}: {exc}") from exc

    def connect(self) -> None:
        s = self.settings
        where = s.url
        conn = ldap3.Connection(
            self._server(),
            user=s.bind_dn or None,
            password=s.bind_password or None,
            auto_bind=ldap3.AUTO_BIND_NONE,
            raise_exceptions=False,
            read_only=True,
            receive_timeout=s.timeout_seconds,
            return_empty_attributes=False,
        )
        try:
            conn.open()
            if s.start_tls and not s.url.startswith("ldaps://") and not conn.start_tls():
                raise DirectoryUnavailable(f"StartTLS with {where} failed: {_describe(conn.result)}")
            if not conn.bind():
                who = s.bind_dn or "anonymous"
                raise DirectoryUnavailable(f"bind to {where} as {who} failed: {_describe(conn.result)}")
        except LDAPException as exc:
            raise DirectoryUnavailable(f"cannot reach the directory at {where}: {_exc_text(exc)}") from None
        self.conn = conn
        log.debug("bound to %s as %s", where, s.bind_dn or "anonymous")

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(LDAPException):
                self.conn.unbind()
            self.conn = None

    # searching -------------------------------------------------------------------------------

    def paged_search(self, base: str, filter_: str, attributes: list[str]) -> Iterator[dict]:
        """Yield every matching entry (``dn``, ``attributes``, ``raw_attributes``) page by page.

        Raises DirectoryUnavailable unless every page was read: callers may treat what they
        receive as complete only when the generator finished without raising.
        """
        if self.conn is None:
            raise DirectoryUnavailable("not connected to the directory")
        s = self.settings
        cookie = None
        pages = 0
        count = 0
        while True:
            try:
                self.conn.search(
                    base,
                    filter_,
                    ldap3.SUBTREE,
                    attributes=attributes,
                    paged_size=s.page_size,
                    paged_cookie=cookie,
                    size_limit=s.size_limit,
                    time_limit=s.timeout_seconds,
                )
            except LDAPException as exc:
                raise DirectoryUnavailable(
                    f"reading {base} failed after {pages} pages ({count} entries): {_exc_text(exc)}; "
                    "the read is incomplete"
                ) from None
            result = self.conn.result
            code = result.get("result")
            if code == 32:
                raise DirectoryUnavailable(f"the base DN {base} does not exist (noSuchObject)")
            if code == 4:
                raise DirectoryUnavailable(
                    f"reading {base} hit a size limit after {count} entries (sizeLimitExceeded); "
                    "raise the server's limit for the bind DN or use paging"
                )
            if code == 3:
                raise DirectoryUnavailable(f"reading {base} hit a time limit (timeLimitExceeded)")
            if code != 0:
                raise DirectoryUnavailable(f"reading {base} failed: {_describe(result)}")
            for item in self.conn.response or ():
                if item.get("type") == "searchResEntry":
                    count += 1
                    self._read += 1
                    if self.progress and self._read % self.progress_every == 0:
                        self.progress(self._read)
                    yield item
            pages += 1
            control = (result.get("controls") or {}).get(PAGED_RESULTS)
            cookie = control["value"]["cookie"] if control else None
            if not cookie:
                return

    def _user_attributes(self) -> list[str]:
        names = [a for key, attrs in self.mapping.items() if not key.startswith("group_") for a in attrs]
        return sorted(set(names))

    def users(self, since: str | None = None) -> Iterator[DirectoryEntry]:
        """Every user (or, with ``since``, those changed at or after that timestamp)."""
        flt = self.user_filter
        if since:
            flt = changed_since(flt, self.mapping["modified"][0], since)
        for item in self.paged_search(self.settings.user_base, flt, self._user_attributes()):
            entry = self.to_entry(item)
            if entry is not None:
                yield entry

    def groups(self, since: str | None = None) -> Iterator[DirectoryGroup]:
        """Every group under ``group_base`` (default: ``user_base``) with its direct members."""
        base = self.settings.group_base or self.settings.user_base
        flt = self.group_filter
        modified = self.mapping["modified"]
        if since:
            flt = changed_since(flt, modified[0], since)
        member_attr = self.mapping["group_member"]
        name_attr = self.mapping["group_name"]
        for item in self.paged_search(base, flt, [*member_attr, *name_attr, *modified]):
            attrs = item["attributes"]
            members = [m for a in member_attr for m in attrs.get(a, ())]
            yield DirectoryGroup(
                dn=item["dn"],
                name=_first(attrs, name_attr) or "",
                members=members,
                modified=_first(attrs, modified),
            )

    # mapping ---------------------------------------------------------------------------------

    def to_entry(self, item: dict) -> DirectoryEntry | None:
        """Map one search result; None (with a warning) when it has no stable key or username."""
        m = self.mapping
        attrs = item["attributes"]
        key = _first(attrs, m["key"])
        if key is None or not isinstance(key, str) or m["key"][0].lower() == "objectguid":
            raw = item.get("raw_attributes", {})
            rk = next((raw[a][0] for a in m["key"] if raw.get(a)), None)
            key = _guid(rk) if isinstance(rk, bytes) else key
        username = _first(attrs, m["username"])
        if not key or not username:
            log.warning("skipping %s: no %s or %s", item["dn"], "/".join(m["key"]), "/".join(m["username"]))
            return None
        profile = {f: _first(attrs, m[f]) for f in PROFILE_FIELDS}
        entry = DirectoryEntry(
            key=str(key).lower(), dn=item["dn"], profile=profile, modified=_first(attrs, m["modified"])
        )
        start = _first(attrs, m["start_date"])
        entry.start_date = parse_date(start) if start else None
        self._read_departure(entry, attrs)
        return entry

    def _read_departure(self, entry: DirectoryEntry, attrs: dict) -> None:
        m = self.mapping
        today = dt.date.today()
        ends: list[tuple[dt.date, str]] = []

        locked = _first(attrs, m["locked"])
        if locked:
            if locked == ADMIN_LOCK:
                entry.disabled_reason = "directory: locked by an administrator (pwdAccountLockedTime)"
            else:
                entry.disabled_reason = f"directory: account locked (pwdAccountLockedTime {locked})"
        uac = _first(attrs, m["user_account_control"])
        if uac and not entry.disabled_reason:
            try:
                if int(uac) & 2:
                    entry.disabled_reason = "directory: account disabled (userAccountControl ACCOUNTDISABLE)"
            except ValueError:
                pass

        end = _first(attrs, m["end_date"])
        if end and (d := parse_date(end)):
            ends.append((d, f"directory: end date {d.isoformat()} ({m['end_date'][0]})"))
        shadow = _first(attrs, m["shadow_expire"])
        if shadow and (d := shadow_expire_date(shadow)):
            ends.append(
                (d - dt.timedelta(days=1), f"directory: account expires {d.isoformat()} (shadowExpire)")
            )
        expires = _first(attrs, m["account_expires"])
        if expires and (t := ad_filetime(expires)):
            last = (t - dt.timedelta(microseconds=1)).date()
            ends.append((last, f"directory: account expires {t:%Y-%m-%d %H:%M} UTC (accountExpires)"))
        if ends:
            entry.end_date, entry.end_reason = min(ends)
            if entry.end_date < today and not entry.disabled_reason:
                entry.disabled_reason = entry.end_reason


def _first(attrs: dict, names: list[str]):
    for name in names:
        value = attrs.get(name)
        if value is None:
            continue
        if isinstance(value, list):
            if value:
                return value[0]
            continue
        return value
    return None


def _describe(result: dict | None) -> str:
    if not result:
        return "no answer"
    text = f"{result.get('description')} (code {result.get('result')})"
    if result.get("message"):
        text += f": {result['message']}"
    return text


def _exc_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"

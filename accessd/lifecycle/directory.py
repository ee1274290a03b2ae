"""Reading people and groups from an LDAP directory (OpenLDAP or Active Directory) with ldap3.

``Directory(settings.ldap)`` binds (plain, ldaps:// or StartTLS) and runs paged searches. Every
failure -- connect, bind, a missing base DN, a page that could not be read, a size or time
limit -- raises :class:`DirectoryUnavailable` with the reason; a search never answers "no users"
when it could not read. Filters are built only from configuration plus values escaped with
``escape_filter_chars``. The bind password is never logged or put in an error message.

Entries are mapped to :class:`DirectoryEntry` with the attribute mapping of the configured
flavour (see ``OPENLDAP`` and ``ACTIVE_DIRECTORY`` below; ``ldap.attributes`` overrides any key).
Any other key of ``ldap.attributes`` names a subject attribute of the policy catalogue and the
LDAP attribute(s) it is read from (``cost_centre = "departmentNumber"``); its value goes to
``DirectoryEntry.attributes`` and from there to ``account.attributes``.

Locks: ``pwdAccountLockedTime = 000001010000Z`` is an administrator's lock, and so is any lock
under a password policy without ``pwdLockoutDuration`` (it lasts until someone unlocks it). A
lock time plus the policy's ``pwdLockoutDuration`` still ahead is a temporary lockout after failed
logins -- anyone can cause one with wrong passwords -- and is no departure (a warning); once that
time has passed the account is not locked at all. On AD, ``lockoutTime`` is such a lockout and
only the ACCOUNTDISABLE bit of ``userAccountControl`` disables.

High-water marks: :meth:`Directory.high_water_mark` reads the point the directory has reached
*before* a run reads anything (contextCSN, highestCommittedUSN), so a change committed while the
pages are read is read again by the next incremental run instead of being skipped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import ssl
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from accessd.config import LdapSettings
from accessd.errors import DirectoryUnavailable, Invalid
from accessd.models import PROFILE_COLUMNS

log = logging.getLogger(__name__)

PAGED_RESULTS = "1.2.840.113556.1.4.319"
ADMIN_LOCK = "000001010000Z"  # OpenLDAP ppolicy: locked by an administrator until unlocked
AD_NEVER = (0, 0x7FFFFFFFFFFFFFFF)
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
    # catalogue subject attributes mapped in ldap.attributes (None: the directory has no value)
    attributes: dict[str, str | None] = field(default_factory=dict)
    warning: str | None = None  # e.g. a temporary lockout: shown, changes nothing


@dataclass(slots=True)
class DirectoryGroup:
    dn: str
    name: str
    members: list[str] = field(default_factory=list)
    modified: str | None = None


def norm_dn(dn: str) -> str:
    """A DN in a form fit for comparison (case and spaces around separators ignored)."""
    return ",".join(part.strip() for part in dn.lower().split(","))


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


def generalized_time(value: str) -> dt.datetime | None:
    """``20260131120000Z`` (fractions ignored) as an aware UTC datetime."""
    try:
        return dt.datetime.strptime(value.strip()[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


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
        subject_attributes: Collection[str] | None = None,
        progress: Callable[[int], None] | None = None,
        progress_every: int = 1000,
    ):
        """``subject_attributes``: the policy's declared subject attributes (which extra keys of
        ``ldap.attributes`` to read); None rejects any key that is not a mapping key."""
        if not settings.url:
            raise Invalid("ldap.url is not configured")
        if not settings.user_base:
            raise Invalid("ldap.user_base is not configured")
        self.settings = settings
        self.mapping = mapping_for(settings)
        self.extra, self.warnings = subject_attribute_mapping(settings, subject_attributes)
        self.user_filter, self.group_filter = filters_for(settings)
        self.progress = progress
        self.progress_every = progress_every
        self.conn: ldap3.Connection | None = None
        self._read = 0
        self._lockout_seconds: dict[str, int] = {}  # password policy DN (normalised) -> duration

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

    def paged_search(
        self, base: str, filter_: str, attributes: list[str], *, counted: bool = True
    ) -> Iterator[dict]:
        """Yield every matching entry (``dn``, ``attributes``, ``raw_attributes``) page by page;
        ``counted`` entries (people and groups, not policies) feed the progress callback.

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
                    self._read += counted
                    if counted and self.progress and self._read % self.progress_every == 0:
                        self.progress(self._read)
                    yield item
            pages += 1
            control = (result.get("controls") or {}).get(PAGED_RESULTS)
            cookie = control["value"]["cookie"] if control else None
            if not cookie:
                return

    def _user_attributes(self) -> list[str]:
        names = [a for key, attrs in self.mapping.items() if not key.startswith("group_") for a in attrs]
        names += [a for attrs in self.extra.values() for a in attrs]
        if self.mapping["locked"]:
            names.append("pwdPolicySubentry")
        return sorted(set(names))

    # before a read ---------------------------------------------------------------------------

    def _base_entry(self, base: str, attributes: list[str]) -> dict:
        """The attributes of one entry (base scope); {} when it cannot be read."""
        try:
            ok = self.conn.search(base, "(objectClass=*)", ldap3.BASE, attributes=attributes)
        except LDAPException:
            return {}
        return self.conn.response[0]["attributes"] if ok and self.conn.response else {}

    @functools.cached_property
    def naming_context(self) -> str | None:
        """The directory suffix that holds ``user_base`` (from the root DSE)."""
        contexts = self._base_entry("", ["namingContexts"]).get("namingContexts", [])
        base = norm_dn(self.settings.user_base)
        matching = [c for c in contexts if base == norm_dn(c) or base.endswith("," + norm_dn(c))]
        return max(matching, key=len) if matching else None

    def high_water_mark(self) -> tuple[str | None, str | None]:
        """The change sequence the directory has reached now, read *before* a run reads entries:
        the next incremental run reads everything changed after it, including changes made while
        this run was reading. Returns (mark, warning).

        entryCSN: the smallest contextCSN of the suffix (one value per provider; the smallest, so
        a change replicated late from any provider is not skipped). uSNChanged: the root DSE's
        highestCommittedUSN (None without one: the next incremental run reads everything).
        Otherwise (timestamps, or OpenLDAP without the syncprov overlay) this host's clock less
        CLOCK_MARGIN.
        """
        attribute = self.mapping["modified"][0]
        if attribute.lower() == "entrycsn" and (suffix := self.naming_context):
            values = self._base_entry(suffix, ["contextCSN"]).get("contextCSN") or []
            if values:
                return min(values), None
        if attribute.lower() == "usnchanged":
            usn = self._base_entry("", ["highestCommittedUSN"]).get("highestCommittedUSN")
            if usn:
                return str(usn[0] if isinstance(usn, list) else usn), None
        if attribute.lower() == "usnchanged":  # no clock can stand in for a USN
            return None, "the directory publishes no highestCommittedUSN; the next incremental run reads all"
        warning = None
        if attribute.lower() == "entrycsn":
            warning = (
                "the directory publishes no contextCSN (load the syncprov overlay); the high-water "
                f"mark is this host's clock less {CLOCK_MARGIN.seconds // 60} minutes"
            )
        return clock_mark(attribute), warning

    def load_password_policies(self) -> None:
        """Read every ppolicy entry's lockout duration (one search of the suffix), before the
        users, so that locks can be classified as they are read."""
        if not self.mapping["locked"]:
            return
        base = self.naming_context or self.settings.user_base
        attributes = ["pwdLockout", "pwdLockoutDuration"]
        for item in self.paged_search(base, "(objectClass=pwdPolicy)", attributes, counted=False):
            attrs = item["attributes"]
            lockout = str(_first(attrs, ["pwdLockout"]) or "FALSE").upper() == "TRUE"
            duration = _first(attrs, ["pwdLockoutDuration"])
            self._lockout_seconds[norm_dn(item["dn"])] = int(duration or 0) if lockout else 0

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
            key=str(key).lower(),
            dn=item["dn"],
            profile=profile,
            modified=_first(attrs, m["modified"]),
            attributes={name: _text(_first(attrs, names)) for name, names in self.extra.items()},
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
            self._read_lock(entry, str(locked), _first(attrs, ["pwdPolicySubentry"]))
        lockout = _first(attrs, m["lockout_time"])
        if lockout and (t := ad_filetime(str(lockout))):
            entry.warning = (
                f"{entry.dn}: locked out since {t:%Y-%m-%d %H:%M} UTC (lockoutTime); not a departure"
            )
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

    def _read_lock(self, entry: DirectoryEntry, locked: str, policy_dn: str | None) -> None:
        """An administrator's lock disables; a temporary lockout after failed logins only warns."""
        if locked == ADMIN_LOCK:
            entry.disabled_reason = "directory: locked by an administrator (pwdAccountLockedTime)"
            return
        policy = policy_dn or self.settings.password_policy_dn
        seconds = self._lockout_seconds.get(norm_dn(policy)) if policy else None
        since = generalized_time(locked)
        why = None
        if seconds is None:
            why = f"password policy {policy} not readable" if policy else "no known password policy"
            self.warnings.append(
                f"{entry.dn}: locked at {locked} with {why}: treated as an administrator's lock; set "
                "ldap.password_policy_dn to the default ppolicy if this is a lockout after failed logins"
            )
        elif seconds == 0:
            why = "no pwdLockoutDuration"
        elif since is None:
            why = "unreadable lock time"
        if why:
            entry.disabled_reason = (
                f"directory: account locked until unlocked (pwdAccountLockedTime {locked}, {why})"
            )
            return
        until = since + dt.timedelta(seconds=seconds)
        if until > dt.datetime.now(dt.UTC):
            entry.warning = (
                f"{entry.dn}: locked out after failed logins until {until:%Y-%m-%d %H:%M:%S} UTC "
                f"(pwdAccountLockedTime {locked} + pwdLockoutDuration {seconds}s); not a departure"
            )


def _text(value) -> str | None:
    if value is None or value == "":
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


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

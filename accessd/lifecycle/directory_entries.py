"""Directory search results -> people and groups: entry mapping, departure signals, LDAP values.

:class:`EntryReader` maps one user search result to a :class:`DirectoryEntry` with the attribute
mapping of :mod:`accessd.lifecycle.directory_mapping`, reading its departure signals (locks, the
AD ACCOUNTDISABLE bit, end dates and account expiry). The value parsers (generalizedTime, dates,
shadowExpire, AD file times, GUIDs) and :func:`norm_dn` live here too.

Locks: ``pwdAccountLockedTime = 000001010000Z`` is an administrator's lock, and so is any lock
under a password policy without ``pwdLockoutDuration`` (it lasts until someone unlocks it). A
lock time plus the policy's ``pwdLockoutDuration`` still ahead is a temporary lockout after failed
logins -- anyone can cause one with wrong passwords -- and is no departure (a warning); once that
time has passed the account is not locked at all. On AD, ``lockoutTime`` is such a lockout and
only the ACCOUNTDISABLE bit of ``userAccountControl`` disables.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field

from accessd import clock
from accessd.lifecycle.directory_mapping import PROFILE_FIELDS

log = logging.getLogger(__name__)

ADMIN_LOCK = "000001010000Z"  # OpenLDAP ppolicy: locked by an administrator until unlocked
AD_NEVER = (0, 0x7FFFFFFFFFFFFFFF)


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


# --- value parsing ----------------------------------------------------------------------------


def generalized_time(value: str) -> dt.datetime | None:
    """``20260131120000Z`` (fractions ignored) as an aware UTC datetime."""
    try:
        return dt.datetime.strptime(value.strip()[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


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


def _text(value) -> str | None:
    if value is None or value == "":
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def first(attrs: dict, names: list[str]):
    """The first value of the first of ``names`` that ``attrs`` has a value for, or None."""
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


# --- mapping ------------------------------------------------------------------------------------


class EntryReader:
    """Maps user search results to :class:`DirectoryEntry` and classifies their locks.

    ``lockout_seconds`` (password policy DN, normalised -> ``pwdLockoutDuration``, 0 without
    lockout) is filled by the directory before users are read; ``warnings`` collects what a read
    should report (a lock under a policy that could not be read).
    """

    def __init__(
        self,
        mapping: dict[str, list[str]],
        extra: dict[str, list[str]],
        password_policy_dn: str,
        warnings: list[str],
    ):
        self.mapping = mapping
        self.extra = extra
        self.password_policy_dn = password_policy_dn
        self.warnings = warnings
        self.lockout_seconds: dict[str, int] = {}

    def to_entry(self, item: dict) -> DirectoryEntry | None:
        """Map one search result; None (with a warning) when it has no stable key or username."""
        m = self.mapping
        attrs = item["attributes"]
        key = first(attrs, m["key"])
        if key is None or not isinstance(key, str) or m["key"][0].lower() == "objectguid":
            raw = item.get("raw_attributes", {})
            rk = next((raw[a][0] for a in m["key"] if raw.get(a)), None)
            key = _guid(rk) if isinstance(rk, bytes) else key
        username = first(attrs, m["username"])
        if not key or not username:
            log.warning("skipping %s: no %s or %s", item["dn"], "/".join(m["key"]), "/".join(m["username"]))
            return None
        profile = {f: first(attrs, m[f]) for f in PROFILE_FIELDS}
        entry = DirectoryEntry(
            key=str(key).lower(),
            dn=item["dn"],
            profile=profile,
            modified=first(attrs, m["modified"]),
            attributes={name: _text(first(attrs, names)) for name, names in self.extra.items()},
        )
        start = first(attrs, m["start_date"])
        entry.start_date = parse_date(start) if start else None
        self._read_departure(entry, attrs)
        return entry

    def _read_departure(self, entry: DirectoryEntry, attrs: dict) -> None:
        m = self.mapping
        today = clock.today()
        ends: list[tuple[dt.date, str]] = []

        locked = first(attrs, m["locked"])
        if locked:
            self._read_lock(entry, str(locked), first(attrs, ["pwdPolicySubentry"]))
        lockout = first(attrs, m["lockout_time"])
        if lockout and (t := ad_filetime(str(lockout))):
            entry.warning = (
                f"{entry.dn}: locked out since {t:%Y-%m-%d %H:%M} UTC (lockoutTime); not a departure"
            )
        uac = first(attrs, m["user_account_control"])
        if uac and not entry.disabled_reason:
            try:
                if int(uac) & 2:
                    entry.disabled_reason = "directory: account disabled (userAccountControl ACCOUNTDISABLE)"
            except ValueError:
                pass

        end = first(attrs, m["end_date"])
        if end and (d := parse_date(end)):
            ends.append((d, f"directory: end date {d.isoformat()} ({m['end_date'][0]})"))
        shadow = first(attrs, m["shadow_expire"])
        if shadow and (d := shadow_expire_date(shadow)):
            ends.append(
                (d - dt.timedelta(days=1), f"directory: account expires {d.isoformat()} (shadowExpire)")
            )
        expires = first(attrs, m["account_expires"])
        if expires and (t := ad_filetime(expires)):
            # the last day worked in the practice's zone: the day of the last valid instant
            last = (t.replace(tzinfo=dt.UTC) - dt.timedelta(microseconds=1)).astimezone(clock.zone()).date()
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
        policy = policy_dn or self.password_policy_dn
        seconds = self.lockout_seconds.get(norm_dn(policy)) if policy else None
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
        if until > clock.now():
            entry.warning = (
                f"{entry.dn}: locked out after failed logins until {until:%Y-%m-%d %H:%M:%S} UTC "
                f"(pwdAccountLockedTime {locked} + pwdLockoutDuration {seconds}s); not a departure"
            )

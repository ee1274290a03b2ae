"""One typed Settings object: built-in defaults < config/*.toml < ACCESSD_* environment.

Layering:
  1. the dataclass defaults below;
  2. ``config/default.toml`` shipped with the repository;
  3. the file named by ``ACCESSD_CONFIG`` (e.g. ``config/production.toml``), if set;
  4. environment variables: ``ACCESSD_<FIELD>`` for top-level fields and
     ``ACCESSD_<SECTION>_<FIELD>`` for sectioned ones (``ACCESSD_LDAP_URL``);
     a secret may also come from a file: ``ACCESSD_LDAP_BIND_PASSWORD_FILE=/run/secrets/x``.

Secrets (fields listed in ``SECRET_FIELDS``) are never accepted from TOML files in the
repository and are masked in ``Settings.describe()``. ``validate()`` returns the list of
problems; ``accessd config check`` prints them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from accessd import clock
from accessd.errors import Invalid

ROOT = Path(__file__).resolve().parent.parent
SECRET_FIELDS = {"secret_key", "bind_password", "sources"}


@dataclass
class LdapSettings:
    url: str = ""  # ldap://host:389, ldaps://host:636
    start_tls: bool = False
    tls_verify: bool = True  # verify the server certificate (ldaps:// and StartTLS)
    ca_file: str = ""  # CA bundle for the server certificate; empty: the system's
    bind_dn: str = ""
    bind_password: str = ""
    user_base: str = ""
    group_base: str = ""
    user_filter: str = "(objectClass=inetOrgPerson)"
    group_filter: str = "(objectClass=groupOfNames)"
    flavour: str = "openldap"  # openldap | active_directory (selects attribute defaults)
    page_size: int = 500
    timeout_seconds: int = 30
    size_limit: int = 0  # 0 = server default
    group_depth_limit: int = 5
    # DN of the default ppolicy (slapd's olcPPolicyDefault), to tell a temporary lockout after
    # failed logins from an administrator's lock; entries with pwdPolicySubentry use their own
    password_policy_dn: str = ""
    # attribute mapping; empty values take the flavour's defaults (see lifecycle/directory.py)
    attributes: dict = field(default_factory=dict)
    # group DN (or cn) -> list of roles
    group_roles: dict = field(default_factory=dict)


@dataclass
class SyncSettings:
    min_seen_ratio: float = 0.5  # a run seeing fewer than this share of the last good run fails
    approval_min_accounts: int = 5  # more than this many departures/strips ...
    approval_min_ratio: float = 0.10  # ... and more than this share needs approval
    incremental_minutes: int = 5
    full_cron: str = "0 2 * * *"  # nightly at 02:00
    progress_every: int = 1000  # the CLI prints a progress line every N directory entries


@dataclass
class ApiSettings:
    max_body_bytes: int = 1_048_576
    max_batch: int = 1000
    max_records: int = 1000
    # field decisions one request may ask for (batch entries x fields, records x fields)
    max_decisions: int = 50_000
    token_cache_seconds: int = 30


@dataclass
class DecisionLogSettings:
    enabled: bool = True
    batch_size: int = 5000  # most records per transaction; the writer wakes when this many wait
    flush_seconds: float = 1.0
    buffer_size: int = 100_000  # records queued per worker before requests wait (backpressure)
    max_wait_seconds: float = 2.0  # a request waits this long for room, then gets 503 + Retry-After
    ready_max_queued: int = 50_000  # /readyz is 503 above this many records queued in all workers
    heartbeat_seconds: float = 2.0  # each worker reports its counters (decision_log_worker) this often
    retention_days: int = 400


@dataclass
class ScimSettings:
    """The SCIM 2.0 server at /scim/v2 (docs/scim.md)."""

    # SCIM group displayName -> list of roles; membership of a mapped group grants them
    # (source "scim"), an unmapped group grants nothing. Names match case-insensitively.
    group_roles: dict = field(default_factory=dict)
    max_results: int = 1000  # most resources one search returns (a page of at most this many)
    bulk_max_operations: int = 1000  # most operations in one /Bulk request


@dataclass
class HrSettings:
    """Signed HR events at /hr/v1/events (docs/hr-events.md)."""

    # HR source name -> its Standard Webhooks secret ("whsec_" + base64 of 24-64 random bytes);
    # a secret: only from the environment, ACCESSD_HR_SOURCES='{"workday": "whsec_..."}' (JSON)
    # or ACCESSD_HR_SOURCES_FILE; `config show` prints the names, never the secrets
    sources: dict = field(default_factory=dict)


@dataclass
class StaleSettings:
    """The daily sweep for stale and orphan accounts (docs/hr-events.md)."""

    action: str = "report"  # report | suspend (stale accounts, through offboarding.suspend)
    days: int = 90  # no decision and no sign-in for this many days makes an account stale
    # the sweep suspends nobody when more than this share of the active accounts would be
    # suspended (an empty or purged decision log is no evidence that nobody works)
    max_ratio: float = 0.25


@dataclass
class SsfSettings:
    """The Shared Signals transmitter (docs/ssf.md): push retries, outbox polling, poll delivery."""

    retry_first_seconds: float = 1.0  # wait before the 2nd push attempt; doubles per attempt ...
    retry_max_seconds: float = 300.0  # ... up to this
    max_attempts: int = 10  # push attempts before a delivery is marked failed (`accessd events`)
    timeout_seconds: float = 5.0  # one push POST (connect + answer)
    # each process's deliverer checks the outbox this often for events other processes queued
    # (its own it sends right after their commit)
    outbox_poll_seconds: float = 0.5
    poll_wait_seconds: float = 5.0  # an RFC 8936 long poll is held at most this long
    max_poll_events: int = 100  # most SETs one poll answer carries (and maxEvents' default)
    key_retention_days: int = 30  # a retired signing key stays in the JWKS this long
    # delivered events are deleted this long after delivery (failed ones are kept for `accessd
    # events retry` the same time after their creation); pending events are never deleted
    outbox_retention_days: int = 30


@dataclass
class AdminSettings:
    """The admin web UI at /admin (docs/admin-ui.md): sign-in throttling, lockout, idle timeout."""

    idle_minutes: int = 30  # a session unused this long is signed out
    max_failures: int = 5  # failed sign-ins (password or second factor) in a row lock the account ...
    lockout_minutes: int = 15  # ... for this long
    # attempts per client address on the sign-in forms (Flask-Limiter syntax); per worker process
    sign_in_rate: str = "10 per minute"
    totp_issuer: str = "accessd"  # the name authenticator apps show


@dataclass
class CacheSettings:
    """Every worker's in-memory accounts, grants, API tokens and policy (docs/scaling.md)."""

    # how often a worker asks the database whether anything changed; on PostgreSQL changes are
    # also pushed (LISTEN/NOTIFY) and this is the fallback
    poll_seconds: float = 0.5
    # a full re-read, the safety net for rows changed by hand (100,000 accounts take seconds)
    full_reload_seconds: float = 3600.0
    # /readyz fails when this worker has not been up to date with the database for this long
    max_lag_seconds: float = 5.0


@dataclass
class SchedulerSettings:
    """Several `accessd scheduler` processes, one of which runs the jobs (docs/lifecycle.md)."""

    # a standby tries to take the lead this often, and the leader renews it this often: a leader
    # that dies is replaced within about this (PostgreSQL; SQLite on its one host)
    retry_seconds: float = 5.0
    # a leader not heard from for this long is gone (a host that vanished: PostgreSQL's keepalives
    # drop its session; SQLite's lease row goes stale), and a leader that could not renew its lead
    # for this long stops starting jobs; at least twice retry_seconds
    lease_seconds: float = 30.0


@dataclass
class Settings:
    database_url: str = ""  # empty: sqlite file under instance_path
    instance_path: str = str(ROOT / "instance")
    policy_dir: str = str(ROOT / "policies")
    # the URL clients reach accessd at (discovery documents name it); never taken from a
    # request's Host header. Empty: http://127.0.0.1:8000, or what `accessd serve` binds.
    public_url: str = ""
    secret_key: str = ""
    # session cookies are Secure (https only), HttpOnly and SameSite=Lax; false only for a local
    # demo over plain http (scripts/run-demo)
    session_cookie_secure: bool = True
    # IANA name; "today" everywhere (start and end dates, the scheduler) is a day in this zone
    timezone: str = "UTC"
    log_level: str = "INFO"
    ldap: LdapSettings = field(default_factory=LdapSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    decision_log: DecisionLogSettings = field(default_factory=DecisionLogSettings)
    ssf: SsfSettings = field(default_factory=SsfSettings)
    scim: ScimSettings = field(default_factory=ScimSettings)
    hr: HrSettings = field(default_factory=HrSettings)
    stale: StaleSettings = field(default_factory=StaleSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or "http://127.0.0.1:8000").rstrip("/")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.instance_path) / 'accessd.sqlite3'}"

    def validate(self) -> list[str]:
        """Return human-readable problems; empty when the settings are usable."""
        problems = []
        url = self.effective_database_url
        if not url.startswith(("sqlite", "postgresql")):
            problems.append(
                f"database_url: unsupported scheme in {url.split(':', 1)[0]!r}; use sqlite or postgresql"
            )
        if not (Path(self.policy_dir) / "model.conf").exists():
            problems.append(f"policy_dir: {self.policy_dir} has no model.conf")
        if self.ldap.url and not self.ldap.url.startswith(("ldap://", "ldaps://")):
            problems.append("ldap.url: must start with ldap:// or ldaps://")
        if self.ldap.flavour not in ("openldap", "active_directory"):
            problems.append("ldap.flavour: must be openldap or active_directory")
        if self.ldap.url and not self.ldap.user_base:
            problems.append("ldap.user_base: required when ldap.url is set")
        if not 0 <= self.sync.min_seen_ratio <= 1:
            problems.append("sync.min_seen_ratio: must be between 0 and 1")
        if self.public_url and not _is_base_url(self.public_url):
            problems.append("public_url: must be an absolute http(s):// URL without query or fragment")
        for name in ("max_body_bytes", "max_batch", "max_records", "max_decisions"):
            if getattr(self.api, name) <= 0:
                problems.append(f"api.{name}: must be positive")
        for name in ("batch_size", "flush_seconds", "buffer_size", "ready_max_queued", "heartbeat_seconds"):
            if getattr(self.decision_log, name) <= 0:
                problems.append(f"decision_log.{name}: must be positive")
        if self.decision_log.max_wait_seconds < 0:
            problems.append("decision_log.max_wait_seconds: must not be negative")
        for name in (
            "retry_first_seconds",
            "retry_max_seconds",
            "max_attempts",
            "timeout_seconds",
            "outbox_poll_seconds",
            "max_poll_events",
            "key_retention_days",
        ):
            if getattr(self.ssf, name) <= 0:
                problems.append(f"ssf.{name}: must be positive")
        if self.ssf.poll_wait_seconds < 0:
            problems.append("ssf.poll_wait_seconds: must not be negative")
        problems.extend(_group_roles_problems("scim.group_roles", self.scim.group_roles))
        for name in ("max_results", "bulk_max_operations"):
            if getattr(self.scim, name) <= 0:
                problems.append(f"scim.{name}: must be positive")
        problems.extend(_hr_sources_problems(self.hr.sources))
        if self.stale.action not in ("report", "suspend"):
            problems.append("stale.action: must be report or suspend")
        if self.stale.days <= 0:
            problems.append("stale.days: must be positive")
        elif self.decision_log.enabled and self.stale.days > self.decision_log.retention_days:
            problems.append(
                "stale.days: more than decision_log.retention_days; older decisions are purged, "
                "so every account would look stale"
            )
        if not 0 <= self.stale.max_ratio <= 1:
            problems.append("stale.max_ratio: must be between 0 and 1")
        for name in ("idle_minutes", "max_failures", "lockout_minutes"):
            if getattr(self.admin, name) <= 0:
                problems.append(f"admin.{name}: must be positive")
        for name in ("poll_seconds", "full_reload_seconds", "max_lag_seconds"):
            if not 0 < getattr(self.cache, name) < 1e9:
                problems.append(f"cache.{name}: must be a positive number of seconds")
        for name in ("retry_seconds", "lease_seconds"):
            if not 0 < getattr(self.scheduler, name) <= 3600:
                problems.append(f"scheduler.{name}: must be a number of seconds above 0, at most 3600")
        if self.scheduler.lease_seconds < 2 * self.scheduler.retry_seconds:
            problems.append(
                "scheduler.lease_seconds: must be at least twice scheduler.retry_seconds "
                "(the leader renews its lead every retry_seconds)"
            )

        return problems

    def warnings(self) -> list[str]:
        """Usable but risky settings; ``accessd config check`` prints them and still succeeds."""
        found = []
        if not self.secret_key:
            found.append("secret_key: not set; `accessd serve` refuses to start without ACCESSD_SECRET_KEY")
        if not self.session_cookie_secure:
            found.append("session_cookie_secure: off; session cookies also go over plain http (demo only)")
        if self.ldap.url.startswith("ldap://") and self.ldap.bind_password and not self.ldap.start_tls:
            found.append(
                "ldap: the bind password is sent in cleartext (ldap:// without start_tls); "
                "use ldaps:// or set ldap.start_tls = true"
            )
        return found

    def describe(self) -> dict:
        """The settings as a dict with secrets masked, passwords in URLs included (safe to print)."""
        return _masked(dataclasses.asdict(self))


def _group_roles_problems(name: str, mapping) -> list[str]:
    """``mapping`` must be group name -> role or list of roles (non-empty text)."""
    if not isinstance(mapping, dict):
        return [f"{name}: must be a table of group name = [roles]"]
    problems = []
    for group, roles in mapping.items():
        roles = [roles] if isinstance(roles, str) else roles
        if not isinstance(roles, list) or not all(isinstance(r, str) and r.strip() for r in roles):
            problems.append(f"{name}: {group!r} must map to a role or a list of roles")
    return problems


def _hr_sources_problems(sources) -> list[str]:
    """``hr.sources`` must map names (used in URLs and records) to distinct Standard Webhooks
    secrets. A problem names the source, never the secret."""
    if not isinstance(sources, dict):
        return ['hr.sources: must be a JSON object of source name -> "whsec_..." secret']
    problems, seen = [], {}
    for name, secret in sources.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
            problems.append(f"hr.sources: {name[:70]!r} must be 1-64 letters, digits, '_', '.', '-'")
            continue
        raw = None
        if isinstance(secret, str) and secret.startswith("whsec_"):
            try:
                raw = base64.b64decode(secret[6:], validate=True)
            except ValueError:
                raw = None
        if raw is None or not 24 <= len(raw) <= 64:
            problems.append(f"hr.sources: the secret of {name!r} must be 'whsec_' + base64 of 24-64 bytes")
        elif raw in seen:
            problems.append(f"hr.sources: {name!r} and {seen[raw]!r} share a secret; each needs its own")
        else:
            seen[raw] = name
    return problems


def _is_rate(text: str) -> bool:
    """Whether Flask-Limiter can read ``text`` as a rate ("10 per minute", "5/second")."""
    from limits import parse  # Flask-Limiter's own parser; only settings validation needs it here

    try:
        parse(text)
    except ValueError:
        return False
    return True


def _is_base_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.query and not parts.fragment


def _masked(d: dict) -> dict:
    return {
        k: (
            {name: "***" for name in v}  # a map of secrets (hr.sources): names shown, values not
            if isinstance(v, dict) and k in SECRET_FIELDS
            else _masked(v)
            if isinstance(v, dict) and k not in ("attributes", "group_roles")
            else ("***" if (k in SECRET_FIELDS and v) else mask_url(v) if k.endswith("url") else v)
        )
        for k, v in d.items()
    }


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: in the user info (``scheme://user:pw@host``)
    and in a ``password=`` query parameter (libpq accepts both). The user info runs to the last
    ``@`` before the query, so an unencoded ``@`` or ``/`` in a password is masked too (when in
    doubt, more is masked, never less)."""
    url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*:)[^?#]*@", r"\1***@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)


def _coerce(value, typ, name: str):
    if typ in (dict, list) or typing.get_origin(typ) in (dict, list):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise Invalid(f"{name}: expected JSON, got {value!r}") from exc
        return value
    if typ is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off", ""):
            return False
        raise Invalid(f"{name}: expected true/false, got {value!r}")
    try:
        return typ(value)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"{name}: expected {typ.__name__}, got {value!r}") from exc


def _apply(obj, data: dict, prefix: str, source: str) -> None:
    hints = typing.get_type_hints(type(obj))
    for key, value in data.items():
        if key not in hints:
            raise Invalid(f"{source}: unknown setting {prefix}{key}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise Invalid(f"{source}: {prefix}{key} must be a table")
            _apply(current, value, f"{prefix}{key}.", source)
        else:
            if key in SECRET_FIELDS and source.endswith(".toml") and value:
                raise Invalid(f"{source}: secret {prefix}{key} must come from the environment, not a file")
            setattr(obj, key, _coerce(value, hints[key], prefix + key))


def _from_env(obj, env: dict, prefix: str) -> None:
    hints = typing.get_type_hints(type(obj))
    for key in hints:
        current = getattr(obj, key)
        name = f"{prefix}{key.upper()}"
        if dataclasses.is_dataclass(current):
            _from_env(current, env, name + "_")
            continue
        if name in env:
            setattr(obj, key, _coerce(env[name], hints[key], name))
        elif f"{name}_FILE" in env:
            path = Path(env[f"{name}_FILE"])
            try:
                setattr(obj, key, _coerce(path.read_text().strip(), hints[key], f"{name}_FILE"))
            except OSError as exc:
                raise Invalid(f"{name}_FILE: cannot read {path}: {exc.strerror}") from exc


def load_settings(env: dict | None = None, overrides: dict | None = None) -> Settings:
    """Build Settings from defaults, TOML files, environment and (for tests) overrides."""
    env = dict(os.environ) if env is None else env
    settings = Settings()
    files = [ROOT / "config" / "default.toml"]
    if env.get("ACCESSD_CONFIG"):
        files.append(Path(env["ACCESSD_CONFIG"]))
    for path in files:
        if not path.exists():
            if path != files[0]:
                raise Invalid(f"ACCESSD_CONFIG: {path} does not exist")
            continue
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise Invalid(f"{path}: {exc}") from exc
        _apply(settings, data, "", str(path))
    _from_env(settings, env, "ACCESSD_")
    if overrides:
        _apply(settings, overrides, "", "overrides")
    try:  # refused here, not in validate(): every command and worker needs the zone to tell dates
        clock.zone_named(settings.timezone)
    except ValueError as exc:
        raise Invalid(f"timezone: {exc}") from None
    if not _is_rate(settings.admin.sign_in_rate):  # refused here too: the sign-in form would fail
        raise Invalid(
            f"admin.sign_in_rate: {settings.admin.sign_in_rate!r} is not a rate such as '10 per minute'"
        )
    return settings

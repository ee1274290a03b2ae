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

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from accessd.errors import Invalid

ROOT = Path(__file__).resolve().parent.parent
SECRET_FIELDS = {"secret_key", "bind_password", "webhook_secret"}


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
    token_cache_seconds: int = 30


@dataclass
class DecisionLogSettings:
    enabled: bool = True
    batch_size: int = 500
    flush_seconds: float = 1.0
    buffer_size: int = 100_000
    retention_days: int = 400


@dataclass
class Settings:
    database_url: str = ""  # empty: sqlite file under instance_path
    instance_path: str = str(ROOT / "instance")
    policy_dir: str = str(ROOT / "policies")
    secret_key: str = ""
    webhook_secret: str = ""
    timezone: str = "UTC"
    log_level: str = "INFO"
    ldap: LdapSettings = field(default_factory=LdapSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    decision_log: DecisionLogSettings = field(default_factory=DecisionLogSettings)

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
        for name in ("max_body_bytes", "max_batch", "max_records"):
            if getattr(self.api, name) <= 0:
                problems.append(f"api.{name}: must be positive")
        return problems

    def describe(self) -> dict:
        """The settings as a dict with secrets masked (safe to print or log)."""
        return _masked(dataclasses.asdict(self))


def _masked(d: dict) -> dict:
    return {
        k: (
            _masked(v)
            if isinstance(v, dict) and k not in ("attributes", "group_roles")
            else ("***" if (k in SECRET_FIELDS and v) else v)
        )
        for k, v in d.items()
    }


def _coerce(value, typ, name: str):
    if typ in (dict, list) or typing.get_origin(typ) in (dict, list):
        if isinstance(value, str):
            import json

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
                setattr(obj, key, path.read_text().strip())
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
    return settings

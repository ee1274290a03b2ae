"""Administrators: accessd accounts with an ``admin_user`` sign-in record.

``accessd admin create`` makes one (the account if it does not exist, the sign-in record, a manual
grant of the console role); what the role allows is the policy's (type ``admin_ui``). A local
password is required unless the account signs in through the directory (it has a DN and an LDAP
directory is configured). The TOTP secret and recovery codes are shown once, at enrolment.

The account changes (create, password, unlock) take the caller's session -- the CLI and the
demo loader make them in their own transactions; the second-factor ones, which only an
administrator's own page and the CLI rescue call, take the database.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

import pyotp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd import accounts, audit, passwords
from accessd.db import Database
from accessd.errors import Conflict, Invalid, NotFound
from accessd.lifecycle.states import Source
from accessd.models import Account, AdminUser, utcnow

CONSOLE_ROLES = ("admin", "helpdesk", "auditor")
RECOVERY_CODES = 10


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for manual entry
    uri: str  # otpauth:// URI for the QR code / authenticator app


def normalise(username: str) -> str:
    """The sign-in name as stored: stripped, lower case, checked text."""
    name = accounts.check_text("username", (username or "").strip(), 200).lower()
    if not name:
        raise Invalid("username is required")
    return name


def get(session: Session, username: str) -> AdminUser:
    admin = session.scalar(select(AdminUser).where(AdminUser.username == normalise(username)))
    if admin is None:
        raise NotFound(f"no administrator {username!r}")
    return admin


def create(
    session: Session,
    *,
    username: str,
    role: str,
    actor: str,
    password: str | None = None,
    display_name: str = "",
    email: str | None = None,
    directory: bool = False,
) -> AdminUser:
    """An administrator for account ``username`` (created when missing), holding ``role``.

    ``password`` is required unless ``directory`` is true (the account signs in with its directory
    password; it must have a directory DN). Conflict when the account is already an administrator.
    """
    name = normalise(username)
    if role not in CONSOLE_ROLES:
        raise Invalid(f"role must be one of {', '.join(CONSOLE_ROLES)}")
    if session.scalar(select(AdminUser.id).where(AdminUser.username == name)) is not None:
        raise Conflict(f"{name!r} is already an administrator")
    account = session.scalar(
        select(Account).where((Account.subject_id == name) | (func.lower(Account.username) == name))
    )
    if directory:
        if account is None or not account.directory_dn:
            raise Invalid(f"{name!r} has no directory entry: sync it first, or give a local password")
        password_hash = None
    else:
        if password is None:
            raise Invalid("a password is required (or --directory for directory sign-in)")
        passwords.check_strength(password, (name, display_name, email or ""))
        password_hash = passwords.hash_password(password)
    if account is None:
        account = accounts.add(
            session,
            accounts.catalogue_in_force(session),
            subject_id=name,
            username=name,
            display_name=display_name or name,
            email=email,
            origin=Source.CLI,
            actor=actor,
            source="manual",
        )
    elif session.scalar(select(AdminUser.id).where(AdminUser.account_id == account.id)) is not None:
        raise Conflict(f"account {account.subject_id!r} is already an administrator")
    accounts.grant(session, account, role, "manual", actor=actor)
    admin = AdminUser(username=name, password_hash=password_hash, account_id=account.id)
    session.add(admin)
    session.flush()
    audit.record(session, actor, "admin.create", f"admin:{name}", {"role": role, "directory": directory})
    return admin


def set_password(session: Session, username: str, password: str, *, actor: str) -> None:
    """Set a new local password (and lift a lockout)."""
    admin = get(session, username)
    passwords.check_strength(password, (admin.username,))
    admin.password_hash = passwords.hash_password(password)
    admin.failed_logins, admin.locked_until = 0, None
    audit.record(session, actor, "admin.password", f"admin:{admin.username}", {})


def unlock(session: Session, username: str, *, actor: str) -> bool:
    admin = get(session, username)
    was_locked = admin.locked_until is not None and admin.locked_until > utcnow()
    admin.failed_logins, admin.locked_until = 0, None
    audit.record(session, actor, "admin.unlock", f"admin:{admin.username}", {})
    return was_locked


def start_totp(db: Database, admin_id: int, issuer: str) -> Enrolment:
    """A new (not yet active) TOTP secret; :func:`confirm_totp` with a code from it turns it on."""
    with db.session() as s:
        admin = _by_id(s, admin_id)
        if admin.totp_enabled_at is not None:
            raise Conflict("two-factor sign-in is already on; turn it off first")
        admin.totp_secret = pyotp.random_base32()
        return _enrolment(admin, issuer)


def pending_enrolment(db: Database, admin_id: int, issuer: str) -> Enrolment | None:
    """The enrolment started and not yet confirmed, if any."""
    with db.session() as s:
        admin = _by_id(s, admin_id)
        if admin.totp_secret is None or admin.totp_enabled_at is not None:
            return None
        return _enrolment(admin, issuer)


def confirm_totp(db: Database, admin_id: int, code: str, *, actor: str) -> list[str]:
    """Turn TOTP on when ``code`` is right; returns the recovery codes (shown once)."""
    with db.session() as s:
        admin = _by_id(s, admin_id)
        if admin.totp_secret is None or admin.totp_enabled_at is not None:
            raise Conflict("start the enrolment first")
        step = totp_step(admin.totp_secret, _digits(code))
        if step is None:
            raise Invalid("that code is not right: enter the 6 digits your authenticator app shows now")
        admin.totp_enabled_at, admin.totp_last_step = utcnow(), step
        codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
        admin.recovery_codes = [passwords.hash_password(c) for c in codes]
        audit.record(s, actor, "admin.totp_enabled", f"admin:{admin.username}", {})
        return codes


def disable_totp(db: Database, username: str, *, actor: str) -> None:
    """Turn TOTP off (the administrator themself, or a rescue from the CLI)."""
    with db.session() as s:
        admin = get(s, username)
        admin.totp_secret, admin.totp_enabled_at, admin.totp_last_step = None, None, None
        admin.recovery_codes = []
        audit.record(s, actor, "admin.totp_disabled", f"admin:{admin.username}", {})


def _enrolment(admin: AdminUser, issuer: str) -> Enrolment:
    uri = pyotp.TOTP(admin.totp_secret).provisioning_uri(name=admin.username, issuer_name=issuer)
    return Enrolment(admin.totp_secret, uri)


def totp_step(secret: str, code: str) -> int | None:
    """The time step (30 s) whose code ``code`` is -- this one or a neighbour, for clock drift --
    or None. Wall-clock time: authenticator apps know no other."""
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = time.time()
    for drift in (0, -1, 1):
        at = now + drift * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            return int(at // totp.interval)
    return None


def _by_id(session: Session, admin_id: int) -> AdminUser:
    admin = session.get(AdminUser, admin_id)
    if admin is None:
        raise NotFound("no such administrator")
    return admin


def _digits(code: str) -> str:
    return "".join(c for c in (code or "") if not c.isspace())[:20]

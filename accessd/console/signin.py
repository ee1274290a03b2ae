"""Signing in to the admin UI, and re-checking a signed-in administrator on every request.

:func:`check_password` is the first step: a local password (argon2id), or an LDAP bind with the
account's DN when a directory is configured and the account came from it. :func:`check_code` is
the second, when TOTP is on (a current code, or a recovery code, which is then used up). Failures
in a row -- of either step -- lock the sign-in for ``admin.lockout_minutes`` after
``admin.max_failures``; a success resets the count. An unknown name, a wrong password and a
disabled account get the same message, so that the form does not tell which names exist.

:func:`load` is what the UI's user loader calls on every request: the account as it is now
(status, roles, session epoch), so that a disabled or offboarded administrator -- by any trigger
-- is signed out at the next click.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accessd import accounts, audit, passwords
from accessd.config import Settings
from accessd.console import admins
from accessd.db import Database
from accessd.errors import AccessdError, Invalid
from accessd.lifecycle import directory
from accessd.models import Account, AdminUser, utcnow
from accessd.policy.engine import Subject

log = logging.getLogger("accessd.signin")

FAILED = "unknown username or wrong password"
# checked against when the name is unknown, so that an unknown name takes as long as a known one
_DUMMY_HASH = passwords.hash_password("not a password: timing equaliser")


class SignInRefused(AccessdError, status=401, code="sign_in_refused"):
    """The credentials were not accepted (or the sign-in is locked); the message says which."""


@dataclass(frozen=True)
class Admin:
    """A signed-in (or half signed-in) administrator as the UI sees them on one request."""

    id: int
    username: str
    account_id: int
    subject: Subject
    display_name: str
    session_epoch: int
    totp_on: bool


def check_password(db: Database, settings: Settings, username: str, password: str) -> Admin:
    """The administrator whose password this is (SignInRefused otherwise). The caller still has
    to ask the policy whether they may use the UI, and for the second factor when ``totp_on``."""
    name = admins.normalise(username)
    if len(password) > passwords.MAX_LENGTH:
        raise Invalid(f"the password may be at most {passwords.MAX_LENGTH} characters long")
    with db.session() as s:
        admin, account = _find(s, name)
        _refuse_if_locked(admin)
        uses_directory = bool(settings.ldap.url and account is not None and account.directory_dn)
        if admin is None and not uses_directory:
            passwords.verify(_DUMMY_HASH, password)
            raise SignInRefused(FAILED)
    # the LDAP bind happens outside any transaction: it may take the directory's timeout
    if uses_directory:
        ok = directory.check_password(settings.ldap, account.directory_dn, password)
    else:
        ok = passwords.verify(admin.password_hash, password)
    if admin is None and not ok:
        raise SignInRefused(FAILED)
    with db.session() as s:
        if admin is None:  # a directory account signing in for the first time
            admin = AdminUser(username=name, account_id=account.id)
            s.add(admin)
            s.flush()
        else:
            admin = s.get(AdminUser, admin.id)
        outcome = _settle(s, settings, admin, ok, "password", password if ok and not uses_directory else None)
    return _outcome(outcome)


def check_code(db: Database, settings: Settings, admin_id: int, code: str) -> Admin:
    """The second step: a TOTP code or an unused recovery code (SignInRefused otherwise)."""
    digits = "".join(c for c in (code or "") if not c.isspace())[:40]
    with db.session() as s:
        admin = s.get(AdminUser, admin_id)
        if admin is None or admin.totp_enabled_at is None:
            raise SignInRefused("start again: sign in with your password")
        _refuse_if_locked(admin)
        ok = bool(digits) and (_use_totp(admin, digits) or _use_recovery_code(admin, digits.lower()))
        outcome = _settle(s, settings, admin, ok, "code")
    return _outcome(outcome)


def load(db: Database, admin_id: int) -> Admin | None:
    """The administrator as they are now, or None when the record or its account is gone."""
    with db.session() as s:
        admin = s.get(AdminUser, admin_id)
        account = s.get(Account, admin.account_id) if admin is not None and admin.account_id else None
        if account is None:
            return None
        return _view(admin, account)


def record_sign_in(db: Database, admin_id: int, ip: str | None) -> None:
    """Stamp the sign-in (the stale-account sweep reads it) and audit it."""
    with db.session() as s:
        admin = s.get(AdminUser, admin_id)
        admin.last_login_at = utcnow()
        audit.record(s, f"admin:{admin.username}", "admin.sign_in", f"admin:{admin.username}", {"ip": ip})


def _find(s: Session, name: str) -> tuple[AdminUser | None, Account | None]:
    admin = s.scalar(select(AdminUser).where(AdminUser.username == name))
    if admin is not None:
        return admin, s.get(Account, admin.account_id) if admin.account_id else None
    account = s.scalar(
        select(Account)
        .where(func.lower(Account.username) == name, Account.directory_dn.is_not(None))
        .limit(1)
    )
    return None, account


def _refuse_if_locked(admin: AdminUser | None) -> None:
    if admin is not None and admin.locked_until is not None and admin.locked_until > utcnow():
        minutes = max(1, int((admin.locked_until - utcnow()).total_seconds() // 60) + 1)
        raise SignInRefused(
            f"too many failed sign-ins: this sign-in is locked for {minutes} more minute(s); "
            "an administrator can lift it with `accessd admin unlock`"
        )


def _outcome(outcome: Admin | str) -> Admin:
    if isinstance(outcome, str):
        raise SignInRefused(outcome)
    return outcome


def _settle(
    s: Session, settings: Settings, admin: AdminUser, ok: bool, step: str, rehash=None
) -> Admin | str:
    """Count a failure (and lock at the limit) or reset the count: the Admin on success, else
    the message to refuse with (returned, not raised, so that the caller's transaction commits)."""
    account = s.get(Account, admin.account_id) if admin.account_id else None
    if not ok or account is None:
        admin.failed_logins = (admin.failed_logins or 0) + 1
        log.info("failed admin sign-in (%s) for %s: %d in a row", step, admin.username, admin.failed_logins)
        if admin.failed_logins >= settings.admin.max_failures:
            admin.failed_logins = 0
            admin.locked_until = utcnow() + dt.timedelta(minutes=settings.admin.lockout_minutes)
            minutes = settings.admin.lockout_minutes
            audit.record(s, "system", "admin.locked", f"admin:{admin.username}", {"minutes": minutes})
            return f"too many failed sign-ins: this sign-in is locked for {minutes} minutes"
        return FAILED if step == "password" else "that code is not right"
    admin.failed_logins, admin.locked_until = 0, None
    if rehash is not None and passwords.needs_rehash(admin.password_hash):
        admin.password_hash = passwords.hash_password(rehash)
    return _view(admin, account)


def _use_totp(admin: AdminUser, code: str) -> bool:
    """A current code not used before (a code seen once -- e.g. over a shoulder -- is spent)."""
    step = admins.totp_step(admin.totp_secret, code)
    if step is None or (admin.totp_last_step is not None and step <= admin.totp_last_step):
        return False
    admin.totp_last_step = step
    return True


def _use_recovery_code(admin: AdminUser, code: str) -> bool:
    for i, hashed in enumerate(admin.recovery_codes or []):
        if passwords.verify(hashed, code):
            admin.recovery_codes = [h for j, h in enumerate(admin.recovery_codes) if j != i]
            return True
    return False


def _view(admin: AdminUser, account: Account) -> Admin:
    return Admin(
        id=admin.id,
        username=admin.username,
        account_id=account.id,
        subject=accounts.subject_for(account),
        display_name=account.display_name or admin.username,
        session_epoch=account.session_epoch or 0,
        totp_on=admin.totp_enabled_at is not None,
    )

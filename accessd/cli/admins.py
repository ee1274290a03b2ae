"""``accessd admin create|password|unlock|reset-2fa|list``: administrators of the admin web UI.

Passwords are read from a prompt (hidden, asked twice) or, for scripts, from standard input with
``--password-stdin``; never from the command line, where other users could see them in ``ps``.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from accessd.cli.base import Context, Group, actor, pass_ctx
from accessd.console import admins
from accessd.models import Account, AdminUser


@click.group("admin", cls=Group)
def admin():
    """Administrators of the admin web UI (roles admin, helpdesk, auditor)."""


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@admin.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(admins.CONSOLE_ROLES), default="admin", show_default=True)
@click.option("--display-name", default="", help="the name shown in the UI")
@click.option("--email")
@click.option("--directory", is_flag=True, help="sign in with the directory password (a synced account)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@pass_ctx
def admin_create(c: Context, username, role, display_name, email, directory, password_stdin):
    """Make USERNAME an administrator: the account (created when missing), a local password (at
    least 12 characters, not easy to guess) unless --directory, and a grant of --role."""
    c.db.upgrade()
    password = None if directory else _password(password_stdin)
    with c.db.session() as s:
        created = admins.create(
            s,
            username=username,
            role=role,
            password=password,
            display_name=display_name,
            email=email,
            directory=directory,
            actor=actor(),
        )
        name = created.username
    click.echo(
        f"administrator {name} created with role {role}; sign in at {c.settings.effective_public_url}/admin"
    )


@admin.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@pass_ctx
def admin_password(c: Context, username, password_stdin):
    """Set a new local password for USERNAME (also lifts a lockout)."""
    password = _password(password_stdin)
    with c.db.session() as s:
        admins.set_password(s, username, password, actor=actor())
    click.echo(f"password of {admins.normalise(username)} changed")


@admin.command("unlock")
@click.argument("username")
@pass_ctx
def admin_unlock(c: Context, username):
    """Lift the sign-in lockout of USERNAME after too many failures."""
    with c.db.session() as s:
        was = admins.unlock(s, username, actor=actor())
    click.echo(
        f"{admins.normalise(username)} unlocked" if was else f"{admins.normalise(username)} was not locked"
    )


@admin.command("reset-2fa")
@click.argument("username")
@pass_ctx
def admin_reset_2fa(c: Context, username):
    """Turn off USERNAME's two-factor sign-in (lost phone and recovery codes)."""
    admins.disable_totp(c.db, username, actor=actor())
    click.echo(f"two-factor sign-in of {admins.normalise(username)} is off")


@admin.command("list")
@pass_ctx
def admin_list(c: Context):
    """Administrators: username, subject id, account status, roles, two-factor on/off, last sign-in."""
    with c.db.session() as s:
        rows = s.execute(
            select(AdminUser, Account)
            .join(Account, Account.id == AdminUser.account_id)
            .order_by(AdminUser.username)
        )
        for a, acc in rows:
            last = f"{a.last_login_at:%Y-%m-%d %H:%M}" if a.last_login_at else "never"
            totp = "2fa on" if a.totp_enabled_at else "2fa off"
            roles = ",".join(sorted(acc.roles)) or "-"
            click.echo(f"{a.username}\t{acc.subject_id}\t{acc.status}\t{roles}\t{totp}\tlast sign-in {last}")


def register(cli: click.Group) -> None:
    cli.add_command(admin)

"""``accessd offboard``: disable an employee everywhere now, or schedule the departure.

Its counterpart, re-enabling, is ``accessd account enable`` (:mod:`accessd.cli.accounts`).
"""

from __future__ import annotations

import datetime as dt

import click
from sqlalchemy import select

from accessd import clock
from accessd.cli.base import Context, actor, pass_ctx
from accessd.errors import NotFound
from accessd.lifecycle.offboarding import offboard as offboard_account
from accessd.models import Account


@click.command("offboard")
@click.argument("subject_id")
@click.option("--reason", required=True, help="recorded on the account and in the audit trail")
@click.option(
    "--on", "effective", type=click.DateTime(["%Y-%m-%d"]), help="last working day (future: scheduled)"
)
@pass_ctx
def offboard(c: Context, subject_id: str, reason: str, effective):
    """Disable an employee everywhere now (or schedule it): the same routine every trigger uses."""
    day = effective.date() if effective else None
    with c.db.session() as s:
        account = s.scalar(select(Account).where(Account.subject_id == subject_id))
        if account is None:
            raise NotFound(f"no account with subject id {subject_id!r}")
        was = (account.status, account.disabled_by, account.status_reason)
        changed = offboard_account(s, account, reason=reason, source="cli", actor=actor(), effective=day)
        click.echo(f"{subject_id}: {_outcome(account, was, changed, day)}")


def _outcome(account: Account, was: tuple, changed: bool, day: dt.date | None) -> str:
    """What `accessd offboard` did, in words: scheduled, offboarded, taken over, or nothing."""
    status, by, reason = was
    if day is not None and day >= clock.today():
        if changed:
            return f"departure scheduled: last working day {day.isoformat()}; access ends after that day"
        if status == "disabled":
            return f"already disabled ({reason}); nothing scheduled"
        return f"departure already scheduled for {day.isoformat()}; nothing changed"
    if not changed:
        return "already offboarded; nothing changed"
    if status == "disabled" and by == "directory":
        return (
            f"offboarded: the directory had disabled the account ({reason}); now recorded as disabled "
            f"by {account.disabled_by}, so the directory will not re-enable it"
        )
    return "offboarded"


def register(cli: click.Group) -> None:
    cli.add_command(offboard)

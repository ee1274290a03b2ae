"""``accessd offboard``: disable an employee everywhere now, or schedule the departure.

Its counterparts are ``accessd account enable`` (rehire), ``account suspend`` / ``account resume``
(leave of absence) and ``account cancel-departure`` (:mod:`accessd.cli.accounts`).
"""

from __future__ import annotations

import datetime as dt

import click
from sqlalchemy import select

from accessd.cli.base import Context, actor, pass_ctx
from accessd.errors import NotFound
from accessd.lifecycle.offboarding import departure_moment, last_day
from accessd.lifecycle.offboarding import offboard as offboard_account
from accessd.lifecycle.states import Source
from accessd.models import Account, utcnow


class Moment(click.ParamType):
    """A last working day (2026-12-31) or an exact moment with its zone (2026-12-31T17:00+01:00)."""

    name = "DATE|DATETIME"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value)
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is neither a date (2026-12-31) nor a time with its zone", param, ctx)
        if moment.tzinfo is None:
            self.fail(f"{value!r} has no time zone: add one, e.g. {value}+01:00 or {value}Z", param, ctx)
        return moment


@click.command("offboard")
@click.argument("subject_id")
@click.option("--reason", required=True, help="recorded on the account and in the audit trail")
@click.option(
    "--on",
    "effective",
    type=Moment(),
    help="last working day, or the exact moment access ends (with its zone); future: scheduled",
)
@pass_ctx
def offboard(c: Context, subject_id: str, reason: str, effective):
    """Disable an employee everywhere now (or schedule it): the same routine every trigger uses."""
    with c.db.session() as s:
        account = s.scalar(select(Account).where(Account.subject_id == subject_id))
        if account is None:
            raise NotFound(f"no account with subject id {subject_id!r}")
        was = (account.status, account.disabled_by, account.status_reason)
        changed = offboard_account(
            s, account, reason=reason, source=Source.CLI, actor=actor(), effective=effective
        )
        click.echo(f"{subject_id}: {_outcome(account, was, changed, effective)}")


def _outcome(account: Account, was: tuple, changed: bool, effective) -> str:
    """What `accessd offboard` did, in words: scheduled, offboarded, taken over, or nothing."""
    status, by, reason = was
    moment = departure_moment(effective) if effective is not None else None
    if moment is not None and moment > utcnow():
        exact = isinstance(effective, dt.datetime)
        when = f"{moment.isoformat()}Z" if exact else effective.isoformat()
        if changed:
            ends = f"access ends at {when}" if exact else "access ends after that day"
            return f"departure scheduled: last working day {last_day(moment).isoformat()}; {ends}"
        if status == "disabled":
            return f"already disabled ({reason}); nothing scheduled"
        return f"departure already scheduled for {when}; nothing changed"
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

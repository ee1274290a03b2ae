"""``accessd account ...``: accounts and manual role grants without a directory.

Every command is a thin shell over :mod:`accessd.accounts` and
:mod:`accessd.lifecycle.offboarding` -- the code the directory sync and offboarding use -- so each
change is audited and reaches every worker the same way. Bad input (an unknown subject or role,
a bad date, a missing reason, a usage mistake) prints one line on stderr and exits 2 with
nothing changed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from accessd import accounts
from accessd.cli.base import Context, Group, actor, pass_ctx
from accessd.errors import Invalid
from accessd.lifecycle import stale
from accessd.lifecycle.offboarding import cancel_departure, reenable, resume, suspend
from accessd.lifecycle.states import Source
from accessd.models import ACCOUNT_STATUSES, Account
from accessd.scim import roles as scim_roles

SOURCE = Source.CLI
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class AccountGroup(Group):
    """Also turns click's usage errors into one line on stderr and exit code 2, as for bad input."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "accessd account"
            click.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(2)


def _date(option: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise Invalid(f"--attribute {item!r}: expected NAME=VALUE")
        if name in out:
            raise Invalid(f"--attribute {name!r} given twice")
        out[name] = value
    return out


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


#: the account a command acts on: the subject id applications send
subject_argument = click.argument("subject_id", metavar="SUBJECT")


@contextmanager
def _account(c: Context, subject_id: str) -> Iterator[tuple[Session, Account]]:
    """A session and the account SUBJECT in it (NotFound when there is none)."""
    with c.db.session() as s:
        yield s, accounts.get_by_subject_id(s, subject_id)


@click.group(cls=AccountGroup)
def account():
    """Accounts without a directory: add, list, show, grant and revoke roles, re-enable.

    Disable an account with `accessd offboard SUBJECT --reason R`. Subject attributes are the
    account's fields under their own names (username, employee_number, display_name, email,
    department, title, manager, region) plus any other attribute declared in the policy
    catalogue (--attribute NAME=VALUE).
    """


@account.command("add")
@subject_argument
@click.option("--name", "display_name", default="", help="display name")
@click.option("--email", help="e-mail address")
@click.option("--department", help="department")
@click.option("--region", help="region")
@click.option("--start", help="first working day, YYYY-MM-DD (decisions deny before it)")
@click.option("--end", help="last working day, YYYY-MM-DD (decisions deny after it)")
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    metavar="NAME=VALUE",
    help="a subject attribute declared in the policy catalogue in force (repeatable)",
)
@pass_ctx
def account_add(c: Context, subject_id, display_name, email, department, region, start, end, attributes):
    """Create an active account SUBJECT.

    SUBJECT is the subject id applications send. Refused when SUBJECT exists, a date is not
    YYYY-MM-DD, --end is before --start, or an --attribute is not declared in the catalogue of
    the policy revision in force.
    """
    start_date, end_date = _date("--start", start), _date("--end", end)
    extra = _pairs(attributes)
    c.db.upgrade()
    with c.db.session() as s:
        catalogue = accounts.catalogue_in_force(s) if extra else None
        acc = accounts.add(
            s,
            catalogue,
            subject_id=subject_id,
            actor=actor(),
            source=SOURCE,
            attributes=extra,
            display_name=display_name,
            email=email or None,
            department=department or None,
            region=region or None,
            start_date=start_date,
            end_date=end_date,
        )
        click.echo(f"{acc.subject_id}: account created (active); grant roles with `accessd account grant`")


@account.command("list")
@click.option("--status", type=click.Choice(ACCOUNT_STATUSES), help="only accounts with this status")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@pass_ctx
def account_list(c: Context, status: str | None, as_json: bool):
    """List accounts, one line each, by subject id.

    Columns (tab-separated, "-" when empty): subject, status, roles, name, e-mail, department,
    region, start date, end date. Streamed: memory stays flat for any number of accounts."""
    with c.db.session() as s:
        for row, roles in accounts.list_accounts(s, status):
            if as_json:
                line = json.dumps(
                    {
                        "subject": row.subject_id,
                        "status": row.status,
                        "roles": roles,
                        "display_name": row.display_name,
                        "email": row.email,
                        "department": row.department,
                        "region": row.region,
                        "start_date": _iso(row.start_date),
                        "end_date": _iso(row.end_date),
                    }
                )
            else:
                cols = (
                    row.subject_id,
                    row.status,
                    ",".join(roles),
                    row.display_name,
                    row.email,
                    row.department,
                    row.region,
                    _iso(row.start_date),
                    _iso(row.end_date),
                )
                line = "\t".join(col or "-" for col in cols)
            click.echo(line)


@account.command("show")
@subject_argument
@click.option(
    "--history",
    "limit",
    default=50,
    show_default=True,
    type=click.IntRange(0),
    help="how many history entries to show, newest (0: all)",
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
@pass_ctx
def account_show(c: Context, subject_id: str, limit: int, as_json: bool):
    """Show an account: attributes, status, grants and history.

    The status comes with its reason and source, each grant with its source (manual or the
    directory group), the history with lifecycle events and audit records, newest last."""
    with _account(c, subject_id) as (s, acc):
        ev = accounts.status_event(s, acc)
        # who disabled it is recorded on the account (typed); otherwise the newest status event says
        source = (acc.disabled_by if acc.status in ("disabled", "suspended") else None) or (
            ev.source if ev else None
        )
        data = {
            "subject": acc.subject_id,
            "status": acc.status,
            "status_reason": acc.status_reason,
            "status_source": source,
            "status_changed_by": ev.actor if ev else None,
            "status_changed_at": _iso(ev.at) if ev else None,
            "start_date": _iso(acc.start_date),
            "end_date": _iso(acc.end_date),
            "departure_at": _iso(acc.departure_at) + "Z" if acc.departure_at else None,
            "disabled_at": _iso(acc.disabled_at),
            "origin": acc.origin,
            "directory_key": acc.directory_key,
            "directory_dn": acc.directory_dn,
            "attributes": accounts.subject_attributes(acc),
            "grants": [
                {
                    "role": g.role,
                    "source": g.source,
                    "source_ref": g.source_ref,
                    "granted_at": _iso(g.granted_at),
                    "granted_by": g.granted_by,
                }
                for g in sorted(acc.grants, key=lambda g: (g.role, g.source))
            ],
            "scim_groups": scim_roles.groups_of(s, acc, scim_roles.GroupRoles(c.settings.scim.group_roles)),
            "history": [{**h, "at": _iso(h["at"])} for h in accounts.history(s, acc, limit or None)],
        }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"subject:     {data['subject']}")
    for name, value in data["attributes"].items():
        click.echo(f"  {name + ':':<18} {value}")
    status = data["status"]
    if data["status_reason"]:
        status += f" -- {data['status_reason']}"
    if source:
        status += f" (source {source}" + (f", by {ev.actor}, {ev.at:%Y-%m-%d %H:%M})" if ev else ")")
    click.echo(f"status:      {status}")
    click.echo(f"dates:       start {data['start_date'] or '-'}, last day {data['end_date'] or '-'}")
    if data["departure_at"] and acc.status != "disabled":
        click.echo(f"departure:   access ends at {data['departure_at']} (scheduled)")
    if acc.directory_key:
        click.echo(f"directory:   {acc.directory_dn or '-'} (key {acc.directory_key})")
    click.echo("grants:" + ("" if data["grants"] else "      none"))
    for g in data["grants"]:
        ref = f" {g['source_ref']}" if g["source_ref"] else ""
        click.echo(
            f"  {g['role']:<20} {g['source']}{ref} (granted {g['granted_at'][:16]} by {g['granted_by']})"
        )
    for g in data["scim_groups"]:  # what each SCIM group grants under scim.group_roles now
        roles = ", ".join(g["roles"]) or "no roles (not in scim.group_roles)"
        click.echo(f"scim group:  {g['name']} -> {roles}")
    click.echo("history:" + ("" if data["history"] else "     none"))
    for h in data["history"]:
        at = h["at"][:19].replace("T", " ")
        if h["type"] == "event":
            click.echo(f"  {at}  {h['what']:<16} source {h['source']}, by {h['actor']}: {h['reason'] or ''}")
        else:
            detail = json.dumps(h["detail"], sort_keys=True)
            click.echo(f"  {at}  {h['what']:<16} by {h['actor']}: {detail}")


@account.command("grant")
@subject_argument
@click.argument("role")
@pass_ctx
def account_grant(c: Context, subject_id: str, role: str):
    """Grant ROLE to SUBJECT manually.

    The grant is kept until revoked or the account is offboarded. ROLE must be a role of the
    catalogue of the policy revision in force."""
    with _account(c, subject_id) as (s, acc):
        held = {(g.role, g.source) for g in acc.grants}
        accounts.grant(s, acc, role, source="manual", actor=actor())
        if (role, "manual") in held:
            click.echo(f"{subject_id}: already holds {role} (manual grant); nothing changed")
            return
        note = (
            " (the account is disabled: it takes effect when re-enabled)" if acc.status == "disabled" else ""
        )
        click.echo(f"{subject_id}: granted {role}{note}")


@account.command("revoke")
@subject_argument
@click.argument("role")
@pass_ctx
def account_revoke(c: Context, subject_id: str, role: str):
    """Revoke SUBJECT's manual grant of ROLE.

    Sessions issued before the revoke end. A role granted through the directory is refused: the
    next sync would restore it (remove the person from the directory group instead)."""
    with _account(c, subject_id) as (s, acc):
        if not accounts.revoke(s, acc, role, actor=actor()):
            known = accounts.catalogue_in_force(s).roles
            if role not in known:
                raise Invalid(f"unknown role {role!r}; the policy in force knows: {', '.join(sorted(known))}")
            click.echo(f"{subject_id}: does not hold {role}; nothing changed")
            return
        still = " (still held through the directory)" if role in acc.roles else ""
        click.echo(f"{subject_id}: revoked {role}{still}")


def _lifecycle_command(name: str, routine, done: str, refused: str, doc: str) -> None:
    """``accessd account NAME SUBJECT --reason R``: one lifecycle routine, its outcome in words."""

    @account.command(name, help=doc)
    @subject_argument
    @click.option("--reason", help="recorded on the account and in the audit trail (required)")
    @pass_ctx
    def command(c: Context, subject_id: str, reason: str | None):
        reason = accounts.check_reason(reason)
        with _account(c, subject_id) as (s, acc):
            if not routine(s, acc, reason=reason, source=SOURCE, actor=actor()):
                click.echo(f"{subject_id}: {refused} (status {acc.status}); nothing changed")
                return
        click.echo(f"{subject_id}: {done}")


_lifecycle_command(
    "enable",
    reenable,
    "re-enabled; grant roles with `accessd account grant`",
    "not disabled",
    "Re-enable the disabled account SUBJECT through the one re-enable routine (source cli). Manual "
    "grants removed at offboarding are not restored: grant them again. An account that comes from "
    "the directory gets its directory roles from the next sync.",
)
_lifecycle_command(
    "suspend",
    suspend,
    "suspended",
    "not active",
    "Suspend the active account SUBJECT (leave of absence): denied from now on, grants kept, "
    "sessions in connected applications ended; `account resume` lifts it.",
)
_lifecycle_command(
    "resume",
    resume,
    "resumed",
    "not suspended",
    "Lift the suspension of SUBJECT: active again with its grants.",
)
_lifecycle_command(
    "cancel-departure",
    cancel_departure,
    "departure cancelled",
    "no departure to cancel",
    "Withdraw the scheduled departure of SUBJECT (not yet carried out): its end date is cleared.",
)


@account.command("stale")
@click.option(
    "--days", type=click.IntRange(min=1), help="idle days that make an account stale (default: stale.days)"
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@pass_ctx
def account_stale(c: Context, days: int | None, as_json: bool):
    """Active accounts with no decision and no sign-in for DAYS days, and accounts no source knows
    any more (orphans), with the evidence; a summary on stderr. Changes nothing."""
    with c.db.session() as s:
        report = stale.find(s, c.settings, days)
    for f in report.findings:
        if as_json:
            click.echo(json.dumps(f.to_json()))
            continue
        what = "+".join(w for w, on in (("stale", f.stale), ("orphan", f.orphan)) if on)
        day = lambda moment: moment.date().isoformat() if moment else "-"  # noqa: E731
        cells = (
            f.subject_id,
            what,
            f.idle_days,
            day(f.last_decision),
            day(f.last_sign_in),
            f.origin,
            f.orphan,
        )
        click.echo("\t".join(str(cell) if cell not in (None, "") else "-" for cell in cells))
    click.echo(
        f"{len(report.stale)} stale (idle {report.days}+ days), {len(report.orphans)} orphans "
        f"of {report.active} active accounts",
        err=True,
    )


def register(cli: click.Group) -> None:
    cli.add_command(account)
    # `accessd accounts ...` names the same commands (the spelling); hidden from --help
    cli.add_command(AccountGroup(name="accounts", commands=account.commands, hidden=True, help=account.help))

"""``accessd decisions``: who read a customer's data, when, for which purpose; and log retention."""

from __future__ import annotations

import json

import click

from accessd.cli.base import Context, Group, pass_ctx
from accessd.pdp import decision_queries


@click.group("decisions", cls=Group, invoke_without_command=True)
@click.option("--resource", help="TYPE:ID, e.g. customer:123 (TYPE alone: every record of the type)")
@click.option("--subject", help="only decisions about this subject id")
@click.option("--since", help="ISO date/time (UTC) or relative: 30d, 12h")
@click.option("--until", help="ISO date/time (UTC), exclusive")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.pass_context
def decisions(ctx: click.Context, resource, subject, since, until, limit, as_json):
    """List logged decisions, newest first (run `accessd decisions purge` for retention)."""
    if ctx.invoked_subcommand is not None:
        return
    if not (resource or subject):
        raise click.UsageError("give --resource TYPE:ID and/or --subject ID")
    c = ctx.ensure_object(Context)
    q = decision_queries.Query(limit=limit, subject_id=subject)
    if resource:
        q.resource_type, q.resource_id = decision_queries.parse_resource(resource)
    if since:
        q.since = decision_queries.parse_time(since, "since")
    if until:
        q.until = decision_queries.parse_time(until, "until")
    rows = decision_queries.search(c.db, q)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo("no decisions found")
        return
    for r in rows:
        fields = ",".join(r["fields"]) if r["fields"] else "(record)"
        res = f"{r['resource']['type']}:{r['resource']['id'] or '-'}"
        click.echo(
            f"{r['at']}  {r['subject']:<16} {r['action']:<7} {res:<18} {fields:<30} "
            f"purpose={r['purpose'] or '-'} {r['decision']} ({r['reason']}) client={r['client'] or '-'} "
            f"rev={r['revision']} id={r['decision_id']}"
        )


@decisions.command("purge")
@click.option(
    "--days", type=click.IntRange(1, None), help="keep this many days (default: decision_log.retention_days)"
)
@pass_ctx
def purge(c: Context, days: int | None):
    """Delete logged decisions older than the retention period."""
    days = days or c.settings.decision_log.retention_days
    with c.db.session() as s:
        n = decision_queries.purge(s, days)
    click.echo(f"deleted {n} decisions older than {days} days")


def register(cli: click.Group) -> None:
    cli.add_command(decisions)

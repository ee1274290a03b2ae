"""``accessd sync ...`` (a directory sync and its runs) and ``accessd scheduler``.

Exit codes besides the CLI's 0/1/2: 3 when another process is running a sync (or applying an
approved one); the single line on stderr names it ("a sync is already running since ..., run N").
That line and exit code come from ``accessd.cli.base.Group``, the CLI's one error map.

The lifecycle modules (the sync pulls in ldap3, the scheduler apscheduler) are imported by the
commands that run them, not at the top: every other CLI call would pay for loading them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys

import click

from accessd.cli.base import Context, Group, actor, pass_ctx


def _source(_ctx, _param, value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,15}", value):
        raise click.BadParameter(
            "a short lower-case name such as cron (letters, digits, - and _; 16 at most)"
        )
    return value


def _progress(count: int) -> None:
    click.echo(f"  ... {count:,} directory entries read", err=True)


def _print_plan(plan: dict | None) -> None:
    from accessd.lifecycle.sync import SyncPlan, describe_action  # lazy: see the module docstring

    if not plan:
        return
    p = SyncPlan.from_json(plan)
    if not p.actions:
        click.echo("  no changes")
    for a in p.actions:
        click.echo(f"  {describe_action(a)}")
    for w in p.warnings:
        click.echo(f"  warning: {w}")


@click.group("sync", cls=Group, invoke_without_command=True)
@click.option(
    "--dry-run", is_flag=True, help="print the plan (joiners, movers, leavers, role changes); change nothing"
)
@click.option("--incremental", is_flag=True, help="read only entries changed since the last applied run")
@click.option("--quiet", "-q", is_flag=True, help="print only the summary line")
@click.option(
    "--source",
    default="cli",
    show_default=True,
    callback=_source,
    help="recorded on the run and shown by `sync runs` (e.g. --source cron in a crontab)",
)
@click.pass_context
def sync(cctx: click.Context, dry_run: bool, incremental: bool, quiet: bool, source: str):
    """Sync employees from the directory (full by default). Subcommands manage runs.

    Exit code 1 when the run failed (nothing was changed; the reason is the one line on stderr),
    3 when another sync is running; a run that needs approval exits 0 and says how to approve it.
    """
    if cctx.invoked_subcommand is not None:
        return
    from accessd.lifecycle.sync import run_sync  # lazy: see the module docstring

    c = cctx.ensure_object(Context)
    c.db.upgrade()
    result = run_sync(
        c.db,
        c.settings,
        kind="incremental" if incremental else "full",
        dry_run=dry_run,
        actor=actor(),
        source=source,
        progress=_progress,
    )
    label = "dry run" if dry_run else "run"
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items()) or "no changes"
    click.echo(f"sync {label} {result.run_id}: {result.status}; {result.seen} people read; {counts}")
    if result.plan is not None and (dry_run or not quiet):
        _print_plan(result.plan.to_json())
    if result.status == "failed":
        click.echo(f"sync run {result.run_id} failed: {result.reason}", err=True)
        sys.exit(1)
    if result.reason and result.reason != "dry run":
        click.echo(f"  {result.reason}")


@sync.command("runs")
@click.option("--limit", default=20, show_default=True)
@pass_ctx
def sync_runs(c: Context, limit: int):
    """List recent sync runs: id, start, duration, kind, source (cli, scheduler, approval, or a
    --source name such as cron), status, people seen, counts, reason."""
    from accessd.lifecycle.sync import list_runs  # lazy: see the module docstring

    for r in list_runs(c.db, limit):
        when = f"{r.started_at:%Y-%m-%d %H:%M:%S}"
        took = f"{(r.finished_at - r.started_at).total_seconds():.1f}s" if r.finished_at else "-"
        kind = r.kind + (" (dry run)" if r.dry_run else "")
        counts = ",".join(f"{k}={v}" for k, v in (r.counts or {}).items()) or "-"
        source = r.source or "-"
        click.echo(
            f"{r.id}\t{when}\t{took}\t{kind}\t{source}\t{r.status}\tseen={r.seen}\t{counts}\t{r.reason or ''}"
        )


@sync.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="print the stored plan as JSON")
@pass_ctx
def sync_show(c: Context, run_id: int, as_json: bool):
    """Show one run: status, reason and its plan (or the actions it applied)."""
    from accessd.lifecycle.sync import get_run  # lazy: see the module docstring

    run, actions = get_run(c.db, run_id)
    if as_json:
        click.echo(json.dumps(run.plan, indent=2))
        return
    dry = " dry run" if run.dry_run else ""
    click.echo(f"run {run.id}: {run.kind}{dry} from {run.source or '-'}, {run.status}, seen {run.seen}")
    if run.reason:
        click.echo(f"  {run.reason}")
    if actions:
        for a in actions:
            click.echo(f"  {a.detail}")
    else:
        _print_plan(run.plan)


@sync.command("approve")
@click.argument("run_id", type=int)
@pass_ctx
def sync_approve(c: Context, run_id: int):
    """Approve a held run: the directory is read again and only what is still true is applied
    (exactly once). Exit code 1 when the plan changed beyond what was approved: a new held run
    replaces it, to approve instead; 3 when another sync is running."""
    from accessd.lifecycle.sync import approve  # lazy: see the module docstring

    result = approve(c.db, c.settings, run_id, actor(), progress=_progress)
    if result.held_run_id is not None:
        click.echo(
            f"run {run_id} not applied: the directory changed beyond what was approved; run "
            f"{result.held_run_id} holds the new plan: `accessd sync show {result.held_run_id}`, then "
            f"`accessd sync approve {result.held_run_id}`",
            err=True,
        )
        sys.exit(1)
    click.echo(
        f"run {run_id} approved and applied: "
        + (", ".join(f"{k} {v}" for k, v in result.applied.items()) or "nothing left to change")
    )
    if result.dropped:
        click.echo(f"  no longer true, not applied ({len(result.dropped)}):")
        for line in result.dropped:
            click.echo(f"    {line}")


@sync.command("reject")
@click.argument("run_id", type=int)
@pass_ctx
def sync_reject(c: Context, run_id: int):
    """Discard a run that is pending approval; nothing of it is applied."""
    from accessd.lifecycle.sync import reject  # lazy: see the module docstring

    reject(c.db, run_id, actor())
    click.echo(f"run {run_id} rejected; nothing was applied")


@click.command("scheduler")
@pass_ctx
def scheduler(c: Context):
    """Run the scheduled jobs (directory syncs, due departures, the stale sweep, retention) until
    interrupted (Ctrl-C or SIGTERM, which hands the lead over at once).

    Run one on each of several hosts: exactly one leads and runs the jobs, the others stand by
    and take over within ``scheduler.retry_seconds`` when it dies (about
    ``scheduler.lease_seconds`` more when its host vanished); the new leader runs once each job
    that missed a fire time meanwhile. Each process logs whether it leads or stands by, and who
    leads. Every process pushes Shared Signals events. See accessd.jobs.
    """
    import signal

    from apscheduler.events import EVENT_SCHEDULER_STARTED  # lazy: see the module docstring
    from apscheduler.schedulers.blocking import BlockingScheduler

    from accessd import jobs  # lazy: see the module docstring
    from accessd.errors import Invalid

    problems = [p for p in c.settings.validate() if p.startswith("scheduler.")]
    if problems:
        raise Invalid(problems[0])
    c.db.upgrade()
    logging.basicConfig(level=c.settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler says "Running job" in every process, standbys too: what ran is logged by accessd
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    sched = BlockingScheduler(timezone=c.settings.timezone)
    cluster = jobs.Cluster(c.db, c.settings, sched)
    jobs.register(sched, c.settings, c.db, cluster=cluster)
    for job in sched.get_jobs():
        click.echo(f"scheduled: {job.name} ({job.trigger})")
    if not c.settings.ldap.url:
        click.echo("not scheduled: directory syncs (set ldap.url / ACCESSD_LDAP_URL to enable them)")
    # the leadership thread starts once the jobs are in the scheduler: taking the lead adds their
    # catch-up runs to it
    sched.add_listener(lambda _event: cluster.start(), EVENT_SCHEDULER_STARTED)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a service stop hands the lead over
    try:
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            sched.start()
    finally:
        cluster.stop()
        with contextlib.suppress(Exception):
            sched.shutdown(wait=False)


def register(cli: click.Group) -> None:
    cli.add_command(sync)
    cli.add_command(scheduler)

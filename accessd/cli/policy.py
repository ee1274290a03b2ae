"""``accessd policy load|export|diff|test``: policy as code.

``policy diff`` and ``policy test`` import their modules (the diff and the test-case runner) when
they run: no other command needs them, and every CLI call would otherwise pay for loading them.
"""

from __future__ import annotations

import sys

import click

from accessd import accounts
from accessd.cli.base import Context, Group, actor, pass_ctx
from accessd.errors import NotFound
from accessd.pdp import revisions
from accessd.policy import load_policy_dir


@click.group("policy", cls=Group)
def policy():
    """Policy as code: load, export, diff and test revisions."""


@policy.command("load")
@click.argument("directory", type=click.Path(file_okay=False))
@pass_ctx
def policy_load(c: Context, directory: str):
    """Validate DIRECTORY and store it as a new numbered revision (the previous stays on error)."""
    c.db.upgrade()
    with c.db.session() as s:
        rev, created = revisions.load_dir(s, directory, actor())
        number = rev.id
    if created:
        click.echo(f"policy revision {number} loaded from {directory} and now in force")
    else:
        click.echo(f"policy unchanged: revision {number} already holds these files")


@policy.command("export")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--revision", type=int, help="revision number (default: the one in force)")
@pass_ctx
def policy_export(c: Context, directory: str, revision: int | None):
    """Write the revision in force (or --revision N) into DIRECTORY."""
    with c.db.session() as s:
        rev = revisions.get(s, revision) if revision else revisions.current(s)
        if rev is None:
            raise NotFound("no policy revision is loaded")
        written = revisions.export(rev, directory)
        click.echo(f"revision {rev.id}: wrote {len(written)} files to {directory}")


@policy.command("diff")
@click.argument("directory", type=click.Path(file_okay=False))
@pass_ctx
def policy_diff(c: Context, directory: str):
    """Show what DIRECTORY would change against the revision in force, before applying it:
    which roles, and how many employees, gain or lose which fields."""
    from accessd.policy.diff import diff_policies  # only this command: see the module docstring

    candidate = load_policy_dir(directory)
    with c.db.session() as s:
        rev = revisions.current(s)
        old = revisions.policy_of(rev) if rev else None
        holders = accounts.role_holder_counts(s)
    click.echo(diff_policies(old, candidate, holders).format())


@policy.command("test")
@click.argument("directory", type=click.Path(file_okay=False), required=False)
@pass_ctx
def policy_test(c: Context, directory: str | None):
    """Run the YAML policy tests in DIRECTORY/tests (default: the configured policy dir)."""
    from accessd.policy.cases import run_policy_tests  # only this command: see the module docstring

    directory = directory or c.settings.policy_dir
    results = run_policy_tests(directory)
    failed = [r for r in results if not r.passed]
    for r in failed:
        click.echo(f"FAIL {r.file}: {r.name}: {r.message}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed or not results:
        if not results:
            click.echo(f"no test cases found in {directory}/tests", err=True)
        sys.exit(1)


def register(cli: click.Group) -> None:
    cli.add_command(policy)

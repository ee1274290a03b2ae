"""The ``accessd`` command line. Every command is a thin shell over a service function.

Exit codes: 0 success, 1 the command ran and found a problem (failing policy tests, a failed
sync), 2 bad input or configuration (the message says what is wrong).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy.exc import DBAPIError

from accessd.config import Settings, load_settings
from accessd.db import Database
from accessd.errors import AccessdError


class Context:
    """Lazily built settings and database for commands."""

    def __init__(self):
        self._settings: Settings | None = None
        self._db: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.settings.effective_database_url)
        return self._db


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli"


class Group(click.Group):
    """Turns accessd errors into a one-line message and exit code 2 instead of a traceback; so
    too a database that cannot be reached or has no (current) schema."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AccessdError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)
        except DBAPIError as exc:
            # the driver's first line says what failed (no password: drivers never print it)
            reason = str(exc.orig).strip().splitlines()[0][:300] if exc.orig else type(exc).__name__
            click.echo(
                f"error: the database failed: {reason} (is it reachable, and is its schema current? "
                "run `accessd init`)",
                err=True,
            )
            sys.exit(2)


@click.group(cls=Group)
def main():
    """accessd: access decisions for customer records and the employee lifecycle."""


@main.command()
@pass_ctx
def init(c: Context):
    """Create or upgrade the database schema (ACCESSD_DATABASE_URL selects the database)."""
    c.db.upgrade()
    click.echo(f"database ready: {_safe_url(c.db.url)}")


@main.command()
@click.option("--admin-password", envvar="ACCESSD_DEMO_ADMIN_PASSWORD", help="password for the demo admin")
@pass_ctx
def demo(c: Context, admin_password: str | None):
    """Load the demo policy (if none is loaded), demo employees, an API token and an admin login."""
    from accessd import demo as demo_data

    c.db.upgrade()
    with c.db.session() as s:
        report = demo_data.load(s, Path(c.settings.policy_dir), actor(), admin_password=admin_password)
    for line in report:
        click.echo(line)


@main.group(cls=Group)
def config():
    """Inspect configuration."""


@config.command("check")
def config_check():
    """Validate the settings (files and environment) and explain what is wrong."""
    try:
        settings = load_settings()
    except AccessdError as exc:
        click.echo(f"invalid: {exc.message}", err=True)
        sys.exit(2)
    problems = settings.validate()
    for p in problems:
        click.echo(f"invalid: {p}", err=True)
    for w in settings.warnings():
        click.echo(f"warning: {w}", err=True)
    if problems:
        sys.exit(2)
    click.echo("configuration ok")


@config.command("show")
def config_show():
    """Print the effective settings (secrets masked)."""
    import json

    click.echo(json.dumps(load_settings().describe(), indent=2, default=str))


@main.group(cls=Group)
def policy():
    """Policy as code: load, export, diff and test revisions."""


@policy.command("load")
@click.argument("directory", type=click.Path(file_okay=False))
@pass_ctx
def policy_load(c: Context, directory: str):
    """Validate DIRECTORY and store it as a new numbered revision (the previous stays on error)."""
    from accessd.pdp import revisions

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
    from accessd.errors import NotFound
    from accessd.pdp import revisions

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
    from accessd import accounts
    from accessd.pdp import revisions
    from accessd.policy.diff import diff_policies
    from accessd.policy.model import load_policy_dir

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
    from accessd.policy.testing import run_policy_tests

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


@main.group(cls=Group)
def token():
    """API tokens for applications."""


@token.command("create")
@click.option("--name", required=True, help="the client's name (unique)")
@click.option("--scope", required=True, type=click.Choice(["decide", "admin", "hr"]))
@click.option("--default-purpose", help="purpose assumed when this client's request names none")
@pass_ctx
def token_create(c: Context, name: str, scope: str, default_purpose: str | None):
    """Create a client; its token is printed once and stored only as a hash."""
    from accessd.pdp import tokens

    c.db.upgrade()
    with c.db.session() as s:
        secret = tokens.create(s, name, scope, default_purpose)
    click.echo(secret)


@token.command("revoke")
@click.option("--name", required=True)
@pass_ctx
def token_revoke(c: Context, name: str):
    """Revoke a client's token (every worker refuses it within about a second)."""
    from accessd.pdp import tokens

    with c.db.session() as s:
        tokens.revoke(s, name)
    click.echo(f"revoked {name}")


@token.command("list")
@pass_ctx
def token_list(c: Context):
    """List clients (never their tokens)."""
    from accessd.pdp import tokens

    with c.db.session() as s:
        for cl in tokens.list_clients(s):
            state = f"revoked {cl.revoked_at:%Y-%m-%d}" if cl.revoked_at else "active"
            purpose = f"\tdefault purpose {cl.default_purpose}" if cl.default_purpose else ""
            click.echo(f"{cl.name}\t{cl.scope}\t{state}{purpose}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=1, show_default=True, type=int, help="threads per worker (>1: gthread)")
@pass_ctx
def serve(c: Context, host: str, port: int, workers: int, threads: int):
    """Run the service under gunicorn (the worker-exit hook flushes the decision log).

    Refuses to start without a secret key (ACCESSD_SECRET_KEY): every worker must sign sessions
    with the same one. Without a configured public_url, the discovery document names the bound
    address. Works from any directory (the app is accessd.wsgi:app).

    Sync workers are the default: measured with bench/http.py they give the best single-decision
    throughput and tail latency here (threads contend for the GIL with the decision-log writer).
    Run more workers than cores behind a buffering proxy for slow clients."""
    import os

    from accessd import gunicorn_conf
    from accessd.errors import Invalid

    if not c.settings.secret_key:
        raise Invalid(
            "no secret key: set ACCESSD_SECRET_KEY (or ACCESSD_SECRET_KEY_FILE) to a long random value, "
            "e.g. $(python3 -c 'import secrets; print(secrets.token_hex(32))')"
        )
    if not c.settings.public_url:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
        os.environ["ACCESSD_PUBLIC_URL"] = f"http://{shown}:{port}"
    command = gunicorn_conf.argv(f"{host}:{port}", workers, threads)
    os.execvp(command[0], command)


def _safe_url(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- command groups contributed by other modules (one line each) ---
from accessd.cli_decisions import decisions  # noqa: E402

main.add_command(decisions)
from accessd.cli_sync import offboard, scheduler, sync  # noqa: E402

for _command in (sync, scheduler, offboard):
    main.add_command(_command)
from accessd.cli_accounts import account  # noqa: E402

main.add_command(account)

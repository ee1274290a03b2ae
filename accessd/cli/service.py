"""``accessd init``, ``accessd demo`` and ``accessd serve``: set up the database and run the service.

``demo`` imports the demo data only when it runs, and the servers' settings are loaded by the
server process, so that other CLI calls do not pay for loading them.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from accessd import servers
from accessd.cli.base import Context, actor, pass_ctx, safe_url
from accessd.errors import Invalid


@click.command("init")
@pass_ctx
def init(c: Context):
    """Create or upgrade the database schema (ACCESSD_DATABASE_URL selects the database)."""
    c.db.upgrade()
    click.echo(f"database ready: {safe_url(c.db.url)}")


@click.command("demo")
@click.option("--admin-password", envvar="ACCESSD_DEMO_ADMIN_PASSWORD", help="password for the demo admin")
@pass_ctx
def demo(c: Context, admin_password: str | None):
    """Load the demo policy (if none is loaded), demo employees, an API token and an admin login."""
    from accessd import demo as demo_data  # only this command: see the module docstring

    c.db.upgrade()
    with c.db.session() as s:
        report = demo_data.load(s, Path(c.settings.policy_dir), actor(), admin_password=admin_password)
    for line in report:
        click.echo(line)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Python threads per worker (granian: blocking threads; gunicorn: >1 selects gthread)",
)
@click.option(
    "--server",
    type=click.Choice(servers.NAMES),
    default=servers.DEFAULT,
    show_default=True,
    help="the HTTP server (docs/server.md compares them)",
)
@pass_ctx
def serve(c: Context, host: str, port: int, workers: int, threads: int, server: str):
    """Run the service under granian (default) or gunicorn; a graceful stop (SIGTERM) writes
    every queued decision record.

    Refuses to start without a secret key (ACCESSD_SECRET_KEY): every worker must sign sessions
    with the same one. Without a configured public_url, the discovery document names the bound
    address. Works from any directory.

    granian is the default: measured with bench/http.py it answers more requests per second at
    no worse p99 than gunicorn's sync workers, and clients that are slow to send their request
    line or headers hold no Python worker (docs/server.md). One thread per worker is the
    default: more threads contend for the GIL with the decision-log writer."""
    if not c.settings.secret_key:
        raise Invalid(
            "no secret key: set ACCESSD_SECRET_KEY (or ACCESSD_SECRET_KEY_FILE) to a long random value, "
            "e.g. $(python3 -c 'import secrets; print(secrets.token_hex(32))')"
        )
    if not c.settings.public_url:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
        os.environ["ACCESSD_PUBLIC_URL"] = f"http://{shown}:{port}"
    os.environ.update(servers.environment(c.settings.instance_path, port))
    command = servers.argv(server, host, port, workers, threads)
    os.execvp(command[0], command)


def register(cli: click.Group) -> None:
    for command in (init, demo, serve):
        cli.add_command(command)

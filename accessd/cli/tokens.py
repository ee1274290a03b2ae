"""``accessd token create|revoke|list``: API tokens for applications."""

from __future__ import annotations

import click

from accessd.cli.base import Context, Group, pass_ctx
from accessd.pdp import tokens


@click.group("token", cls=Group)
def token():
    """API tokens for applications."""


@token.command("create")
@click.option("--name", required=True, help="the client's name (unique)")
@click.option("--scope", required=True, type=click.Choice(["decide", "admin", "hr", "ssf"]))
@click.option("--default-purpose", help="purpose assumed when this client's request names none")
@pass_ctx
def token_create(c: Context, name: str, scope: str, default_purpose: str | None):
    """Create a client; its token is printed once and stored only as a hash."""
    c.db.upgrade()
    with c.db.session() as s:
        secret = tokens.create(s, name, scope, default_purpose)
    click.echo(secret)


@token.command("revoke")
@click.option("--name", required=True)
@pass_ctx
def token_revoke(c: Context, name: str):
    """Revoke a client's token (every worker refuses it within about a second)."""
    with c.db.session() as s:
        tokens.revoke(s, name)
    click.echo(f"revoked {name}")


@token.command("list")
@pass_ctx
def token_list(c: Context):
    """List clients (never their tokens)."""
    with c.db.session() as s:
        for cl in tokens.list_clients(s):
            state = f"revoked {cl.revoked_at:%Y-%m-%d}" if cl.revoked_at else "active"
            purpose = f"\tdefault purpose {cl.default_purpose}" if cl.default_purpose else ""
            click.echo(f"{cl.name}\t{cl.scope}\t{state}{purpose}")


def register(cli: click.Group) -> None:
    cli.add_command(token)

"""``accessd config check`` and ``accessd config show``: inspect the settings."""

from __future__ import annotations

import json
import sys

import click

from accessd.cli.base import Group
from accessd.config import load_settings
from accessd.errors import AccessdError


@click.group("config", cls=Group)
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
    click.echo(json.dumps(load_settings().describe(), indent=2, default=str))


def register(cli: click.Group) -> None:
    cli.add_command(config)

"""The ``accessd`` command line. Every command is a thin shell over a service function.

``main`` is the entry point; each command group lives in its own module here and adds its commands
through ``register(main)``; what they share (context, acting user, error handling) is in ``base``.

Exit codes: 0 success, 1 the command ran and found a problem (failing policy tests, a failed
sync), 2 bad input or configuration (the message says what is wrong).
"""

from __future__ import annotations

import click

from accessd.cli import accounts, admins, config, decisions, events, offboard, policy, service, sync, tokens
from accessd.cli.base import Group


@click.group(cls=Group)
def main():
    """accessd: access decisions for customer records and the employee lifecycle."""


for _module in (service, config, policy, tokens, decisions, sync, offboard, accounts, events, admins):
    _module.register(main)

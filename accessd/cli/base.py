"""What every command shares: the lazily built context, the acting user, the error-handling group."""

from __future__ import annotations

import sys

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from accessd import clock
from accessd.config import Settings, load_settings
from accessd.db import Database
from accessd.errors import AccessdError, SyncBusy

BUSY_EXIT_CODE = 3  # another process holds the sync lock (`accessd sync`, `sync approve`)


class Context:
    """Lazily built settings and database for commands."""

    def __init__(self):
        self._settings: Settings | None = None
        self._db: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
            clock.configure(self._settings.timezone)
        return self._settings

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.settings.effective_database_url)
        return self._db


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def actor() -> str:
    """Who runs the command, as recorded in the audit trail: ``cli:<user>``."""
    import getpass  # not at the top: it loads termios, needed only by commands that record an actor

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli"


class Group(click.Group):
    """The CLI's one map of :mod:`accessd.errors`: a one-line message on stderr and an exit code
    instead of a traceback. ``error: <message>`` and exit code 2, so too for a database that
    cannot be reached or has no (current) schema; SyncBusy prints its message alone (it names
    the running sync) and exits with ``BUSY_EXIT_CODE``, so that a cron job can tell "skipped"
    from "failed"."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SyncBusy as exc:
            click.echo(exc.message, err=True)
            sys.exit(BUSY_EXIT_CODE)
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


def safe_url(url: str) -> str:
    """The database URL without its password."""
    return make_url(url).render_as_string(hide_password=True)

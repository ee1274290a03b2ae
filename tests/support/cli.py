"""Running ``accessd ...`` in-process (click's CliRunner) against a test database."""

from __future__ import annotations

from click.testing import CliRunner

from accessd.cli import main
from accessd.cli.base import Context


def cli(database_url: str, *args: str, code: int = 0, stdin: str | None = None):
    """Run ``accessd ARGS``; assert the exit code and that nothing crashed; the result."""
    ctx = Context()
    result = CliRunner().invoke(
        main, list(args), obj=ctx, input=stdin, env={"ACCESSD_DATABASE_URL": database_url}
    )
    if ctx._db is not None:
        ctx._db.dispose()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, result.output + result.stderr
    return result

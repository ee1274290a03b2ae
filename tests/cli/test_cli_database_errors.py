"""A database the command line cannot use is one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _accessd(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ACCESSD_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "accessd", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{tmp}/never-initialised.sqlite3",  # no schema yet
        "postgresql://nobody:s3cret-pw@127.0.0.1:1/nowhere",  # nothing listens on port 1
    ],
)
def test_an_unusable_database_is_one_clear_line(tmp_path, url):
    proc = _accessd(url.format(tmp=tmp_path), "token", "list")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the database failed")
    assert "accessd init" in lines[0]
    assert "s3cret-pw" not in proc.stderr + proc.stdout

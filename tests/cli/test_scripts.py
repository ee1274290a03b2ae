"""scripts/run-demo installs only what the service needs to run; scripts/setup (what scripts/test
runs) still installs everything. The scripts run for real on a copy of scripts/, with pip,
apt-get and accessd replaced by stubs that record how they were called."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path):
    """A copy of scripts/ with a stub .venv and stub apt-get/sudo; returns (root, env, log)."""
    root = tmp_path / "accessd"
    shutil.copytree(ROOT / "scripts", root / "scripts")
    log = tmp_path / "calls.log"
    log.touch()
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    stubs = tmp_path / "stubs"
    stubs.mkdir()

    def stub(path: Path, body: str) -> None:
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)

    stub(
        venv_bin / "python",
        f'if [ "$1" = -m ] && [ "$2" = pip ]; then echo "pip $*" >> {log}; exit 0; fi\n'
        f'exec {sys.executable} "$@"\n',
    )
    stub(
        venv_bin / "accessd",
        f'echo "accessd $* secret=${{ACCESSD_SECRET_KEY:+set}} '
        f'cookie_secure=${{ACCESSD_SESSION_COOKIE_SECURE-}}" >> {log}\n',
    )
    for tool in ("apt-get", "sudo"):
        stub(stubs / tool, f'echo "{tool} $*" >> {log}\n')
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ACCESSD_SECRET_KEY", "ACCESSD_SESSION_COOKIE"))
    }
    env.update(PATH=f"{stubs}:{env['PATH']}", PYTHON=sys.executable)
    return root, env, log


def test_run_demo_installs_only_the_runtime_and_serves_with_a_secret_over_plain_http(checkout):
    root, env, log = checkout
    proc = subprocess.run(
        [root / "scripts" / "run-demo"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert [c for c in calls if c.startswith("pip")] == [
        "pip -m pip install -q --disable-pip-version-check -e ."
    ]
    assert not [c for c in calls if c.startswith(("apt-get", "sudo"))]
    assert [c.split(" secret")[0] for c in calls if c.startswith("accessd")] == [
        "accessd init",
        "accessd demo",
        "accessd serve --port 8000",
    ]
    assert calls[-1].endswith("secret=set cookie_secure=false")
    assert ". .venv/bin/activate" in proc.stdout


def test_setup_without_runtime_installs_the_test_extras(checkout):
    root, env, log = checkout
    proc = subprocess.run([root / "scripts" / "setup"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pip -m pip install -q --disable-pip-version-check -e .[test]" in log.read_text().splitlines()


def test_setup_refuses_an_unknown_option(checkout):
    root, env, _ = checkout
    proc = subprocess.run([root / "scripts" / "setup", "--runtme"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "usage: scripts/setup [--runtime]" in proc.stderr

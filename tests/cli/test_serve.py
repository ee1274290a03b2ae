"""`accessd serve`: refuses to run without a secret key, runs from any directory (under granian,
the default, and gunicorn), and several gunicorn servers on one machine each get their own
control socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from accessd.db import Database
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
ACCESSD = [sys.executable, "-m", "accessd"]


class Serve:
    """``accessd serve`` started as a user would, from ``cwd``."""

    def __init__(self, instance: Path, cwd: Path, home: Path, *options: str, **env: str):
        self.port = free_port()
        self.instance = instance
        Database(f"sqlite:///{instance / 'accessd.sqlite3'}").upgrade()
        environ = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        environ.update(
            ACCESSD_INSTANCE_PATH=str(instance),
            ACCESSD_SECRET_KEY="s" * 32,
            HOME=str(home),  # where gunicorn would put one shared control socket
            **env,
        )
        self.proc = subprocess.Popen(
            [*ACCESSD, "serve", "--port", str(self.port), *options],
            cwd=cwd,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    pytest.fail("accessd serve did not start: " + self.proc.stderr.read().decode()[-2000:])
                time.sleep(0.1)
        # gunicorn's arbiter opens its control socket on its own schedule, after the workers
        # may already answer: wait for it rather than race it
        while "gunicorn" in options and not self.control_socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    @property
    def control_socket(self) -> Path:
        return self.instance / f"gunicorn-127.0.0.1-{self.port}.ctl"

    def control(self, command: str) -> dict:
        from gunicorn.ctl.client import ControlClient, parse_command

        name, args = parse_command(command)
        with ControlClient(str(self.control_socket), timeout=10) as client:
            return client.send_command(name, args)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_serve_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSD_SECRET_KEY")}
    env["ACCESSD_INSTANCE_PATH"] = str(tmp_path)
    proc = subprocess.run(
        [*ACCESSD, "serve", "--port", str(free_port())], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ACCESSD_SECRET_KEY" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "Listening" not in proc.stderr


@pytest.mark.parametrize("options", [(), ("--server", "gunicorn")], ids=["default", "gunicorn"])
def test_serve_works_from_any_directory_and_names_its_own_address(tmp_path, options):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server = Serve(tmp_path / "instance", elsewhere, tmp_path / "home", *options)
    try:
        with urllib.request.urlopen(server.base + "/.well-known/authzen-configuration") as r:
            discovery = json.load(r)
        assert discovery["policy_decision_point"] == server.base
    finally:
        server.stop()


def test_two_gunicorn_servers_side_by_side_each_have_their_own_control_socket(tmp_path):
    home = tmp_path / "home"
    first = Serve(tmp_path / "one", tmp_path, home, "--server", "gunicorn")
    try:
        second = Serve(tmp_path / "two", tmp_path, home, "--server", "gunicorn")
        try:
            assert first.control_socket.exists() and second.control_socket.exists()
            assert first.control("show stats")["pid"] == first.proc.pid
            assert second.control("show stats")["pid"] == second.proc.pid
            assert not (home / ".gunicorn").exists()  # nothing at the shared default path
        finally:
            second.stop()
        # stopping one leaves the other's socket and service alone
        assert not second.control_socket.exists()
        assert first.control("show stats")["pid"] == first.proc.pid
        assert urllib.request.urlopen(first.base + "/healthz", timeout=5).status == 200
    finally:
        first.stop()

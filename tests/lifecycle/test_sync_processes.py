"""One sync at a time across real processes, on SQLite and PostgreSQL: a second `accessd sync`
answers one line and exit code 3, a run left behind by a killed process is marked failed at the
next start, two `accessd init` on an empty database do not race, and a failure is said once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

from sqlalchemy import select, text

from accessd.db import Database
from accessd.errors import SyncBusy
from accessd.lifecycle.sync import run_sync
from accessd.lifecycle.sync_runs import INTERRUPTED
from accessd.models import SyncRun
from tests.support import free_port
from tests.support.lifecycle import make_settings

BUSY = re.compile(r"^a sync is already running since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, run (\d+)$")


def process_env(overrides: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSD_")}
    return {**env, **overrides}


def accessd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run `accessd ARGS` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "accessd", *args],
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def runs(db) -> list[SyncRun]:
    with db.session() as s:
        return list(s.scalars(select(SyncRun).order_by(SyncRun.id)))


def test_a_second_sync_process_answers_one_line_and_exit_code_3_while_the_first_runs(people, db, cli_env):
    for i in range(6):
        people.add(f"p{i}")
    slow = make_settings(people.server, people, db.url, ldap={"page_size": 2}, sync={"progress_every": 1})
    reading, release = threading.Event(), threading.Event()
    results = []

    def hold_the_read(count: int) -> None:
        if count == 3:
            reading.set()
            release.wait(120)

    first = threading.Thread(
        target=lambda: results.append(run_sync(db, slow, actor="test", progress=hold_the_read))
    )
    first.start()
    try:
        assert reading.wait(60), "the first sync started reading"
        second = accessd(cli_env, "sync")
    finally:
        release.set()
        first.join(120)

    assert second.returncode == 3, second.stderr
    lines = second.stderr.splitlines()
    assert len(lines) == 1 and BUSY.match(lines[0]), second.stderr
    assert BUSY.match(lines[0]).group(1) == str(results[0].run_id)
    assert second.stdout == ""
    assert results[0].status == "succeeded" and results[0].counts == {"join": 6}
    assert [r.id for r in runs(db)] == [results[0].run_id], "the second process recorded no run"


STALLED_SYNC = """
import time
from accessd.config import load_settings
from accessd.db import Database
from accessd.lifecycle.sync import run_sync

settings = load_settings()

def stall(count):
    print("reading", flush=True)
    time.sleep(600)

run_sync(Database(settings.effective_database_url), settings, actor="test", progress=stall)
"""


def test_a_run_left_running_by_a_killed_process_is_marked_failed_when_the_next_one_starts(
    people, db, settings, cli_env
):
    for i in range(4):
        people.add(f"p{i}")
    proc = subprocess.Popen(
        [sys.executable, "-c", STALLED_SYNC],
        env=process_env(cli_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "reading", proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    assert [r.status for r in runs(db)] == ["running"]

    deadline = time.monotonic() + 10  # PostgreSQL drops the dead session's lock within moments
    while True:
        try:
            result = run_sync(db, settings, actor="test")
            break
        except SyncBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

    assert result.status == "succeeded" and result.counts == {"join": 4}
    dead = runs(db)[0]
    assert (dead.status, dead.reason) == ("failed", INTERRUPTED) and dead.finished_at is not None


def test_two_inits_on_an_empty_database_both_succeed_and_migrate_once(empty_database_url):
    env = process_env({"ACCESSD_DATABASE_URL": empty_database_url})
    command = [sys.executable, "-m", "accessd", "init"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    procs.append(
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    )
    outs = [p.communicate(timeout=180) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("database ready" in out for out, _ in outs)
    db = Database(empty_database_url)
    try:
        with db.engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            assert conn.execute(text("SELECT count(*) FROM run_lock")).scalar() == 0
    finally:
        db.dispose()
    assert len(versions) == 1


def test_a_failed_sync_says_why_once_on_stderr(people, cli_env):
    closed_port = free_port()
    env = {
        **cli_env,
        "ACCESSD_LDAP_URL": f"ldap://127.0.0.1:{closed_port}",
        "ACCESSD_LDAP_TIMEOUT_SECONDS": "2",
    }

    out = accessd(env, "sync")

    assert out.returncode == 1
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert out.stderr.startswith("sync run 1 failed: cannot reach the directory at ldap://127.0.0.1:")
